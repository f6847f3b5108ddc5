"""The proactive-care programme: staggered roll-out, risk-based enrolment and its true effect.

Units (practices or PCNs) adopt in waves, some never. At adoption each unit case-finds patients
aged 65+ with moderate/severe frailty or a recent emergency admission, and enrols a share of them
over the following months, favouring people recently admitted, as real programmes do. After
enrolment each emergency admission of an enrolled patient is prevented with probability
``1 - HR`` (thinning a Poisson process multiplies its intensity by HR), so the programme's true
effect is a rate ratio HR on emergency admissions; readmissions that followed a prevented
admission are prevented with it. Both potential outcomes are kept for the truth file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from .population import DAYS_PER_YEAR, People, Structure, to_days
from .utilisation import Spells

EFI_CATEGORIES = np.array(["fit", "mild", "moderate", "severe"])


def efi_category(deficits: np.ndarray) -> np.ndarray:
    """eFI category from integer deficit counts (0-4, 5-8, 9-12, 13+)."""
    return EFI_CATEGORIES[np.searchsorted([5, 9, 13], deficits, side="right")]


@dataclass
class Programme:
    """Roll-out and enrolment outcome."""

    rollout: pd.DataFrame  # unit-level: pcn_id, practice_id (or empty), programme, start_date
    unit_start: np.ndarray  # per patient: adoption day of their unit (-1 = never)
    enrolled: np.ndarray  # per patient bool
    enrolment_day: np.ndarray  # per patient (-1 if not enrolled)
    eligible: np.ndarray  # per patient bool (at their unit's adoption)
    eligible_reason: np.ndarray  # "frailty", "recent_admission", "both", ""
    deficits_at_start: np.ndarray
    recent_admissions: np.ndarray
    hazard_ratio: np.ndarray  # per patient true rate ratio if enrolled (1 otherwise)
    prevented: np.ndarray  # per emergency spell: True if the programme prevented it


def run_programme(
    people: People, structure: Structure, spells: Spells, deficits_at, exit_: np.ndarray,
    params: dict, rng: np.random.Generator,
) -> Programme:
    """Roll the programme out, enrol patients and thin their later emergency admissions.

    ``deficits_at(day_per_patient)`` returns each patient's eFI deficit count on that day.
    """
    prog = params["programme"]
    unit_level = prog["rollout_unit"]
    if unit_level == "practice":
        units = structure.practice_id
        unit_of_patient = people.practice_index
    else:
        units, inverse = np.unique(structure.pcn_id, return_inverse=True)
        unit_of_patient = inverse[people.practice_index]
    n_units = len(units)
    waves = [to_days(w) for w in prog["waves"]]
    order = rng.permutation(n_units)
    n_never = int(round(float(prog["never_share"]) * n_units))
    if n_units > 1:
        n_never = min(max(n_never, 1), n_units - 1)
    unit_start = np.full(n_units, -1, dtype=np.int64)
    adopters = order[n_never:]
    for i, u in enumerate(adopters):
        unit_start[u] = waves[i % len(waves)]

    start = unit_start[unit_of_patient]
    adopts = start >= 0
    # Case-finding runs through the enrolment window: each patient is considered on one day of
    # it and judged on the history available that day, so the enrolment decision and the
    # baseline an evaluation measures at enrolment look at the same past.
    delay = rng.integers(0, int(prog["enrolment_window_days"]) + 1, size=people.n)
    s = np.where(adopts, start + delay, 0)
    elig = prog["eligibility"]
    age = people.age_at(s)
    alive_registered = adopts & (people.reg_start <= s) & (exit_ > s)
    deficits = np.where(adopts, deficits_at(s), 0)
    recent = _count_in_window(spells, s, 365, people.n) * adopts
    frail = deficits >= int(elig["min_efi_deficits"])
    admitted = recent >= int(elig["min_recent_emergency_admissions"])
    eligible = alive_registered & (age >= float(elig["min_age"])) & (frail | admitted)
    reason = np.where(frail & admitted, "both", np.where(frail, "frailty", "recent_admission"))
    reason = np.where(eligible, reason, "")

    # Enrolment probability: logistic in recent admissions and frailty, intercept solved so the
    # enrolled share of eligible patients matches the scenario.
    w = float(prog["recent_admission_weight"])
    linear = w * np.minimum(recent, 4) + 0.08 * (deficits - 9)
    target = float(prog["enrolment_share"])
    lo, hi = -20.0, 20.0
    if eligible.any():
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expit(mid + linear[eligible]).mean() < target else (lo, mid)
    p = expit((lo + hi) / 2 + linear)
    chosen = eligible & (rng.random(people.n) < p)
    day = s
    enrolled = chosen & (day < exit_)
    enrolment_day = np.where(enrolled, day, -1)

    hr = np.full(people.n, float(prog["hazard_ratio"]))
    by_cat = prog.get("hazard_ratio_by_efi_category")
    if by_cat:
        cat = efi_category(deficits)
        hr = np.array([float(by_cat[c]) for c in cat])
    hr = np.where(enrolled, hr, 1.0)

    # Thinning: admissions after enrolment survive with probability HR.
    e_day = enrolment_day[spells.patient]
    after = (e_day >= 0) & (spells.admission >= e_day) & spells.emergency
    prevented = after & (rng.random(spells.n) >= hr[spells.patient])
    has_parent = spells.parent >= 0
    prevented = prevented | (has_parent & prevented[np.maximum(spells.parent, 0)])

    rollout = pd.DataFrame(
        {
            "pcn_id": (structure.pcn_id if unit_level == "practice" else units),
            "practice_id": (structure.practice_id if unit_level == "practice" else None),
            "programme": prog["name"],
            "start_date": [
                (pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(d))).date() if d >= 0
                else None
                for d in unit_start
            ],
        }
    )
    rollout = rollout[rollout["start_date"].notna()].reset_index(drop=True)
    rollout["start_date"] = pd.array(rollout["start_date"], dtype="object")
    return Programme(
        rollout=rollout,
        unit_start=start,
        enrolled=enrolled,
        enrolment_day=enrolment_day,
        eligible=eligible,
        eligible_reason=reason,
        deficits_at_start=deficits,
        recent_admissions=recent,
        hazard_ratio=hr,
        prevented=prevented,
    )


def _count_in_window(spells: Spells, day: np.ndarray, width: int, n: int) -> np.ndarray:
    """Emergency admissions in [day - width, day) per patient."""
    d = day[spells.patient]
    hit = spells.emergency & (spells.admission < d) & (spells.admission >= d - width)
    return np.bincount(spells.patient[hit], minlength=n)


def truth_summary(people: People, spells: Spells, prog: Programme, exit_: np.ndarray,
                  params: dict) -> dict:
    """Realised potential outcomes among the enrolled, 12 months after enrolment."""
    enrolled = np.flatnonzero(prog.enrolled)
    e_day = prog.enrolment_day
    pd_ = spells.patient
    in_window = (
        spells.emergency
        & (e_day[pd_] >= 0)
        & (spells.admission >= e_day[pd_])
        & (spells.admission < e_day[pd_] + 365)
    )
    y0 = np.bincount(pd_[in_window], minlength=people.n)[enrolled]
    y1 = np.bincount(pd_[in_window & ~prog.prevented], minlength=people.n)[enrolled]
    follow = np.clip(np.minimum(exit_[enrolled], e_day[enrolled] + 365) - e_day[enrolled], 0, None)
    py = follow.sum() / DAYS_PER_YEAR
    before = (
        spells.emergency & (e_day[pd_] >= 0) & (spells.admission < e_day[pd_])
        & (spells.admission >= e_day[pd_] - 365)
    )
    y_before = np.bincount(pd_[before], minlength=people.n)[enrolled]
    out = {
        "n_enrolled": int(len(enrolled)),
        "n_eligible": int(prog.eligible.sum()),
        "person_years_12m": float(py),
        "admissions_12m_without_programme": int(y0.sum()),
        "admissions_12m_with_programme": int(y1.sum()),
        "admissions_12m_before_enrolment": int(y_before.sum()),
    }
    if py > 0 and y0.sum() > 0:
        out["realised_rate_ratio_12m"] = float(y1.sum() / y0.sum())
        out["att_admissions_per_1000_person_years_12m"] = float(1000 * (y1.sum() - y0.sum()) / py)
    return out
