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


def rollout_units(structure: Structure, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The roll-out units (practices or PCNs, sorted PCN ids) and each practice's unit index."""
    if params["programme"]["rollout_unit"] == "practice":
        return structure.practice_id, np.arange(len(structure.practice_id))
    units, inverse = np.unique(structure.pcn_id, return_inverse=True)
    return units, inverse


def decide_rollout(structure: Structure, params: dict, rng: np.random.Generator) -> dict:
    """Which units adopt and when: ``{unit id: adoption day, or -1 for never}``.

    Units are put in a random order; the first ``never_share`` of them (at least one, and not
    all, when there are two or more) never adopt and the rest adopt in the scenario's waves in
    turn.
    """
    prog = params["programme"]
    units, _ = rollout_units(structure, params)
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
    return dict(zip(units.tolist(), unit_start.tolist(), strict=True))


def run_programme(
    people: People, structure: Structure, spells: Spells, deficits_at, exit_: np.ndarray,
    params: dict, rng: np.random.Generator, adoption: dict | None = None,
) -> Programme:
    """Roll the programme out, enrol patients and thin their later emergency admissions.

    ``deficits_at(day_per_patient)`` returns each patient's eFI deficit count on that day.
    ``adoption`` (``{unit id: adoption day or -1}``, from :func:`decide_rollout`) is given when
    the population is generated in pieces, so that the roll-out is decided once for the whole
    ICS; otherwise it is decided here, with ``rng``.
    """
    prog = params["programme"]
    unit_level = prog["rollout_unit"]
    units, unit_of_practice = rollout_units(structure, params)
    unit_of_patient = unit_of_practice[people.practice_index]
    if adoption is None:
        adoption = decide_rollout(structure, params, rng)
    unit_start = np.array([adoption[u] for u in units.tolist()], dtype=np.int64)

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


#: Pre-roll-out months before the first adoption month at which the ITT population is fixed
#: (as ``phm_eval.evaluate.population_panel.DEFAULT_PRE_MONTHS``, restated here so that the truth
#: does not depend on the analysis code it checks).
ITT_PRE_MONTHS = 12
_EPOCH = pd.Timestamp("1970-01-01")


def _first_full_month(day: pd.Timestamp) -> pd.Timestamp:
    first = day.to_period("M").to_timestamp()
    return first if day == first else (day.to_period("M") + 1).to_timestamp()


def itt_population_truth(people: People, structure: Structure, spells: Spells, prog: Programme,
                         exit_: np.ndarray, deficits_on, params: dict,
                         first_adoption_day: int | None = None) -> tuple[dict, pd.DataFrame]:
    """The population-level effect (intention to treat) the generator implies, and its pieces.

    The population: everyone registered on the eligibility date (the day before the month
    ``ITT_PRE_MONTHS`` months before the first adoption month, or the day before the study
    start if later) aged ``min_age``+ (whole years) with ``min_efi_deficits`` eFI deficits or
    ``min_recent_emergency_admissions`` emergency admissions in the 365 days up to that date:
    the programme's own eligibility rules, fixed before any unit adopts. ``deficits_on(date)``
    returns every patient's eFI deficit count on that date; the generator passes the eFI of the
    written record (:func:`phm_eval.frailty.efi`), so the population is the one an analyst
    finds in the data (the generator's internal deficit count differs from the coded record's
    for a few per cent of people). Each member is followed
    in their unit (practice or PCN, the roll-out unit) month by month from the first full month
    after that date to the last full month of the study: month ``[a, b]`` is ``(a - 1, min(b,
    exit)]`` (the shared definitions). Both potential outcomes are known: emergency admissions
    without the programme (every spell drawn) and with it (the spells not prevented, i.e. what
    the admissions table holds), so the realised effect of the programme on the unit's eligible
    population in each month after its adoption month is exact: it is the share enrolled times
    the effect, realised.

    Aggregated as the estimand of :func:`phm_eval.evaluate.population.population_itt`: within
    each adoption cohort and month the units' rates (per 1,000 person-months) are averaged with
    weights equal to their eligible person-months before the first adoption month, and the cells
    (cohort, month after adoption) are averaged with weights equal to their person-months.

    ``first_adoption_day`` is the first adoption day of the whole ICS when this is one piece
    of a population generated in pieces (the eligibility date depends on it); by default the
    first adoption among these people's units.

    Returns
    -------
    truth : dict
        ``rate_ratio`` (with / without the programme), ``rate_difference_per_1000_person_months``,
        the rates, pooled ratios, shares and the ``definition`` in words.
    by_unit_month : pandas.DataFrame
        ``unit, month, adoption_month, post, person_days, admissions_without_programme,
        admissions_with_programme, weight``.
    """
    from ..definitions import age_on

    prog_params = params["programme"]
    elig = prog_params["eligibility"]
    level = prog_params["rollout_unit"]
    unit_names = (structure.practice_id if level == "practice" else structure.pcn_id)
    unit_of = unit_names[people.practice_index]
    adopted = prog.unit_start >= 0
    if not adopted.any() and first_adoption_day is None:
        return {"definition": "no unit adopted the programme"}, pd.DataFrame()
    start_of_unit = pd.Series(prog.unit_start, index=unit_of).groupby(level=0).max()
    adopt_month = {u: (_first_full_month(_EPOCH + pd.Timedelta(days=int(d))) if d >= 0
                       else pd.NaT) for u, d in start_of_unit.items()}
    if first_adoption_day is None:
        first_adoption = min(m for m in adopt_month.values() if pd.notna(m))
    else:
        # one piece of a population generated in pieces (its units may all be never-adopters)
        first_adoption = _first_full_month(_EPOCH + pd.Timedelta(days=int(first_adoption_day)))
    study_start = pd.Timestamp(params["study_start"])
    study_end = pd.Timestamp(params["study_end"])
    e_date = max(first_adoption - pd.DateOffset(months=ITT_PRE_MONTHS) - pd.Timedelta(days=1),
                 study_start - pd.Timedelta(days=1))
    first_month = max(_first_full_month(e_date + pd.Timedelta(days=1)),
                      _first_full_month(study_start))
    last_month = study_end.to_period("M").to_timestamp()
    if (study_end + pd.Timedelta(days=1)).day != 1:
        last_month = (study_end.to_period("M") - 1).to_timestamp()
    months = pd.date_range(first_month, last_month, freq="MS")
    e = int((e_date - _EPOCH).days)

    dob_dates = _EPOCH + pd.to_timedelta(people.dob, unit="D")
    age = age_on(dob_dates, e_date)
    registered = (people.dob <= e) & (people.reg_start <= e) & (exit_ > e)
    observed = spells.emergency & ~prog.prevented
    recent_hit = observed & (spells.admission > e - 365) & (spells.admission <= e)
    recent = np.bincount(spells.patient[recent_hit], minlength=people.n)
    frail = np.asarray(deficits_on(e_date)) >= int(elig["min_efi_deficits"])
    admitted = recent >= int(elig["min_recent_emergency_admissions"])
    cohort = registered & (age >= float(elig["min_age"])) & (frail | admitted)
    members = np.flatnonzero(cohort)

    starts = np.array([(m - _EPOCH).days for m in months], dtype=np.int64)
    ends = np.array([((m + pd.offsets.MonthEnd(0)) - _EPOCH).days for m in months],
                    dtype=np.int64)
    # person-days: (a - 1, min(b, exit)]
    upper = np.minimum(ends[None, :], exit_[members, None])
    days = np.clip(upper - (starts[None, :] - 1), 0, None)
    in_cohort = np.zeros(people.n, dtype=bool)
    in_cohort[members] = True
    sp = spells.emergency & in_cohort[spells.patient]
    pat, adm_day = spells.patient[sp], spells.admission[sp]
    k = np.searchsorted(starts, adm_day, side="right") - 1  # month index of each admission
    ok = (k >= 0) & (adm_day <= ends[np.clip(k, 0, None)]) & (adm_day <= exit_[pat])
    pat, k, kept = pat[ok], k[ok], ~prog.prevented[sp][ok]
    units_sorted = np.array(sorted(set(unit_names)))
    u_member = np.searchsorted(units_sorted, unit_of[members])
    u_spell = np.searchsorted(units_sorted, unit_of[pat])
    n_u, n_m = len(units_sorted), len(months)
    person_days = np.zeros((n_u, n_m))
    np.add.at(person_days, u_member, days)
    a0 = np.zeros((n_u, n_m))
    a1 = np.zeros((n_u, n_m))
    np.add.at(a0, (u_spell, k), 1.0)
    np.add.at(a1, (u_spell[kept], k[kept]), 1.0)

    has_cohort = np.bincount(u_member, minlength=n_u) > 0
    complete = has_cohort & (person_days > 0).all(axis=1)
    pm = person_days / (DAYS_PER_YEAR / 12)
    pre = months < first_adoption
    weight = pm[:, pre].sum(axis=1)
    adoption = pd.to_datetime(pd.Series([adopt_month.get(u, pd.NaT) for u in units_sorted],
                                        dtype="object")).to_numpy(dtype="datetime64[ns]")
    post = (~np.isnat(adoption))[:, None] & (months.values[None, :] >= adoption[:, None])
    post &= complete[:, None]
    month_grid = np.broadcast_to(months.values[None, :], (n_u, n_m))
    table = pd.DataFrame({
        "unit": np.repeat(units_sorted, n_m),
        "month": month_grid.ravel(),
        "adoption_month": np.repeat(adoption, n_m),
        "post": post.ravel(),
        "person_days": person_days.ravel().astype(np.int64),
        "admissions_without_programme": a0.ravel().astype(np.int64),
        "admissions_with_programme": a1.ravel().astype(np.int64),
        "weight": np.repeat(weight, n_m),
    })
    table = table[np.repeat(has_cohort, n_m)].reset_index(drop=True)
    att, rate1 = _itt_rates(table)  # nan in a piece without adopting units
    rate0 = rate1 - att
    enrolled_members = prog.enrolled[members]
    adopting_members = adopted[members]
    after_enrolment = (prog.enrolment_day[pat] >= 0) & (adm_day[ok] >= prog.enrolment_day[pat])
    post_spell = post[u_spell, k]
    truth = {
        "rate_ratio": float(rate1 / rate0) if rate0 else float("nan"),
        "rate_difference_per_1000_person_months": float(att),
        "rate_with_programme_per_1000_person_months": float(rate1),
        "rate_without_programme_per_1000_person_months": float(rate0),
        "pooled_rate_ratio": (float(a1[post].sum() / a0[post].sum()) if a0[post].sum()
                              else float("nan")),
        "admissions_without_programme": int(a0[post].sum()),
        "admissions_with_programme": int(a1[post].sum()),
        "person_months": float(pm[post].sum()),
        "share_of_admissions_after_enrolment": float(
            np.sum(post_spell & after_enrolment) / max(np.sum(post_spell), 1)),
        "share_enrolled_of_population_in_adopting_units": float(
            enrolled_members[adopting_members].mean()) if adopting_members.any() else 0.0,
        # the counts behind the two shares (to combine pieces of a population)
        "admissions_after_enrolment_in_adopted_months": int(np.sum(post_spell & after_enrolment)),
        "admissions_in_adopted_months": int(np.sum(post_spell)),
        "n_enrolled_in_adopting_units": int(enrolled_members[adopting_members].sum()),
        "n_population_in_adopting_units": int(adopting_members.sum()),
        "n_population": int(len(members)),
        "unit": level,
        "eligibility_date": str(e_date.date()),
        "first_month": str(months[0].date()),
        "last_month": str(months[-1].date()),
        "first_adoption_month": str(first_adoption.date()),
        "definition": (
            "Intention to treat on the population the programme is for: everyone registered on "
            "the eligibility date (the day before the month 12 months before the first adoption "
            "month, or the day before the study start if later) aged "
            f"{elig['min_age']}+ with {elig['min_efi_deficits']}+ eFI deficits (of the coded record) or "
            f"{elig['min_recent_emergency_admissions']}+ emergency admissions in the 365 days "
            f"up to it, followed by {level} and calendar month (person-time while registered "
            "and alive) from the next full month to the study end. Effect in the unit-months "
            "from each unit's adoption month (first full month on or after its start date): "
            "emergency admissions with the programme (observed) against without it (every "
            "admission drawn, prevented or not), i.e. the share enrolled times the effect, "
            "realised. Unit rates per 1,000 person-months are averaged within adoption cohort "
            "and month weighted by the unit's eligible person-months before the first adoption "
            "month, and cohort-months weighted by their person-months; rate_ratio = with / "
            "(with - difference)."
        ),
    }
    return truth, table


def combine_itt_truth(pieces: list[dict], table: pd.DataFrame) -> dict:
    """The ITT truth of a population generated in pieces (whole units in each piece).

    ``pieces`` are the pieces' truths from :func:`itt_population_truth` (made with the same
    ``first_adoption_day``) and ``table`` their ``by_unit_month`` tables concatenated. The
    estimand is recomputed from the table exactly as :func:`itt_population_truth` computes it
    (unit rates averaged within adoption cohort and month with the units' pre-adoption
    person-month weights, cells weighted by their person-months); counts are added.
    """
    pieces = [p for p in pieces if "n_population" in p]
    if not pieces or not table["post"].any():
        return {"definition": "no unit adopted the programme"}
    post = table[table["post"]]
    pm = post["person_days"] / (DAYS_PER_YEAR / 12)
    att, rate1 = _itt_rates(table)
    rate0 = rate1 - att
    a0 = int(post["admissions_without_programme"].sum())
    a1 = int(post["admissions_with_programme"].sum())

    def total(key: str) -> int:
        return int(sum(p[key] for p in pieces))

    # the descriptive entries (dates, unit, definition) from a piece with adopters
    out = dict(next((p for p in pieces if p["admissions_in_adopted_months"]), pieces[0]))
    out.update({
        "rate_ratio": rate1 / rate0,
        "rate_difference_per_1000_person_months": att,
        "rate_with_programme_per_1000_person_months": rate1,
        "rate_without_programme_per_1000_person_months": rate0,
        "pooled_rate_ratio": a1 / a0 if a0 else float("nan"),
        "admissions_without_programme": a0,
        "admissions_with_programme": a1,
        "person_months": float(pm.sum()),
        "n_population": total("n_population"),
        "admissions_after_enrolment_in_adopted_months": total(
            "admissions_after_enrolment_in_adopted_months"),
        "admissions_in_adopted_months": total("admissions_in_adopted_months"),
        "n_enrolled_in_adopting_units": total("n_enrolled_in_adopting_units"),
        "n_population_in_adopting_units": total("n_population_in_adopting_units"),
    })
    out["share_of_admissions_after_enrolment"] = (
        out["admissions_after_enrolment_in_adopted_months"]
        / max(out["admissions_in_adopted_months"], 1))
    out["share_enrolled_of_population_in_adopting_units"] = (
        out["n_enrolled_in_adopting_units"] / out["n_population_in_adopting_units"]
        if out["n_population_in_adopting_units"] else 0.0)
    return out


def combine_realised_truth(pieces: list[dict]) -> dict:
    """:func:`truth_summary` of a population generated in pieces: counts added, ratios redone."""
    keys = ("n_enrolled", "n_eligible", "admissions_12m_without_programme",
            "admissions_12m_with_programme", "admissions_12m_before_enrolment")
    out: dict = {key: int(sum(p[key] for p in pieces)) for key in keys}
    out["person_years_12m"] = float(sum(p["person_years_12m"] for p in pieces))
    out = {key: out[key] for key in ("n_enrolled", "n_eligible", "person_years_12m", *keys[2:])}
    y0, y1 = out["admissions_12m_without_programme"], out["admissions_12m_with_programme"]
    py = out["person_years_12m"]
    if py > 0 and y0 > 0:
        out["realised_rate_ratio_12m"] = y1 / y0
        out["att_admissions_per_1000_person_years_12m"] = 1000 * (y1 - y0) / py
    return out


def _itt_rates(table: pd.DataFrame) -> tuple[float, float]:
    """The ITT estimand from a unit-month table (``itt_population.parquet``): the rate
    difference and the rate with the programme, per 1,000 person-months.

    Within each adoption cohort and month after adoption (the ``post`` rows) the units' rates
    are averaged with their pre-adoption person-month weights; the cells are averaged with
    weights equal to their person-months. ``nan`` when no unit-month is after adoption.
    """
    post = table[table["post"]]
    if post.empty:
        return float("nan"), float("nan")
    pm = (post["person_days"] / (DAYS_PER_YEAR / 12)).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = np.where(pm > 0, 1000 * post["admissions_without_programme"].to_numpy() / pm, 0.0)
        r1 = np.where(pm > 0, 1000 * post["admissions_with_programme"].to_numpy() / pm, 0.0)
    w = post["weight"].to_numpy()
    cells = pd.DataFrame({"g": post["adoption_month"].to_numpy(),
                          "m": post["month"].to_numpy(), "w": w, "pm": pm,
                          "wd": w * (r1 - r0), "w1": w * r1})
    by_cell = cells.groupby(["g", "m"], sort=True)[["w", "pm", "wd", "w1"]].sum()
    total_pm = by_cell["pm"].sum()
    att = float((by_cell["pm"] * by_cell["wd"] / by_cell["w"]).sum() / total_pm)
    rate1 = float((by_cell["pm"] * by_cell["w1"] / by_cell["w"]).sum() / total_pm)
    return att, rate1
