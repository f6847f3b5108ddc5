"""Deaths and hospital spells (emergency, elective, maternity) with clustering and readmissions.

Emergency admissions follow a Poisson process whose yearly rate is
``exp(r0 + age effect + 0.12 * eFI deficits + deprivation) * G_i * E_iy``: ``G_i`` is a persistent
unobserved frailty and ``E_iy`` a transient year-to-year shock (both gamma, mean 1). Selecting
people on a recent admission therefore selects high shocks, which do not persist: this is the
regression to the mean a naive before/after evaluation mistakes for benefit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import definitions
from .population import DAYS_PER_YEAR, People, to_days

# Unobserved admission-proneness barely raises mortality: a strong link would deplete the
# admission-prone among older people over calendar time (the population is closed), and risk
# models developed in one year would be miscalibrated in the next for that reason alone.
MORTALITY_FRAILTY = 0.0
# The emergency methods are the analysis's own definition (same order as before: draws use it).
EMERGENCY_METHODS = np.array(definitions.EMERGENCY_METHODS)
EMERGENCY_METHOD_SHARE = np.array([0.70, 0.08, 0.02, 0.03, 0.02, 0.02, 0.06, 0.03, 0.02, 0.02])
# Common primary diagnoses of emergency spells (ICD-10), with relative weights.
EMERGENCY_DIAGNOSES = np.array(
    ["J18.9", "N39.0", "R07.4", "R10.4", "J44.1", "I50.0", "I48.9", "I21.9", "I63.9", "S72.0",
     "S06.0", "R55", "E11.9", "F05.9", "K92.2", "A41.9", "L03.1", "R41.0", "E86", "J22",
     "K35.8", "O26.9", "J45.9", "G40.9", "R06.0"]
)
EMERGENCY_DIAGNOSIS_WEIGHT = np.array(
    [8, 6, 8, 7, 4, 3, 3, 2, 2, 2, 2, 4, 1, 1, 1, 2, 3, 1, 2, 4, 2, 1, 2, 1, 3], dtype=float
)
ELECTIVE_DIAGNOSES = np.array(["H25.9", "M17.1", "M16.1", "K80.2", "N40", "C18.9", "Z51.1",
                               "K40.9", "I25.1", "C50.9"])


@dataclass
class Spells:
    """Hospital spells as arrays (one element per spell)."""

    patient: np.ndarray
    admission: np.ndarray
    discharge: np.ndarray
    method: np.ndarray
    emergency: np.ndarray
    primary: np.ndarray
    parent: np.ndarray  # index of the spell a readmission follows (-1 if none)

    @property
    def n(self) -> int:
        return len(self.patient)

    def subset(self, keep: np.ndarray) -> Spells:
        index = np.flatnonzero(keep)
        remap = np.full(self.n, -1)
        remap[index] = np.arange(len(index))
        parent = self.parent[index]
        parent = np.where(parent >= 0, remap[np.maximum(parent, 0)], -1)
        return Spells(self.patient[index], self.admission[index], self.discharge[index],
                      self.method[index], self.emergency[index], self.primary[index], parent)


def age_effect(age: np.ndarray) -> np.ndarray:
    """Log-rate of emergency admission by age, before frailty (infants and the old highest)."""
    return np.select(
        [age < 5, age < 16, age < 45, age < 65],
        [0.55, -0.5, -0.35, -0.1],
        default=0.03 * (age - 65),
    )


def segments(params: dict) -> np.ndarray:
    """Start days of yearly segments from data start to study end, plus the end (exclusive)."""
    start, end = to_days(params["data_start"]), to_days(params["study_end"]) + 1
    edges = list(range(start, end, 365))
    return np.array(edges + [end], dtype=np.int64)


def draw_deaths(
    people: People, deficits_end: np.ndarray, log_frailty: np.ndarray, params: dict,
    rng: np.random.Generator,
) -> np.ndarray:
    """Day of death (or -1) while registered in the data window, calibrated to crude mortality."""
    edges = segments(params)
    mid = (edges[0] + edges[-1]) // 2
    age_mid = people.age_at(mid)
    linear = 0.095 * (age_mid - 80) + 0.10 * deficits_end + MORTALITY_FRAILTY * log_frailty
    target = float(params["annual_mortality"])
    alive_mid = people.dob <= mid
    lo, hi = -15.0, 5.0
    for _ in range(50):
        m0 = (lo + hi) / 2
        rate = (1 - np.exp(-np.exp(m0 + linear[alive_mid]))).mean()
        lo, hi = (m0, hi) if rate < target else (lo, m0)
    m0 = (lo + hi) / 2
    death = np.full(people.n, -1, dtype=np.int64)
    entry = np.maximum(people.reg_start, edges[0])
    for s_edge, e_edge in zip(edges[:-1], edges[1:], strict=True):
        s = np.maximum(s_edge, entry)
        e = np.minimum(e_edge, people.reg_end_candidate)
        at_risk = (death < 0) & (e > s)
        age = people.age_at(s)
        h = np.exp(m0 + 0.095 * (age - 80) + 0.10 * deficits_end + MORTALITY_FRAILTY * log_frailty)
        p = 1 - np.exp(-h * (e - s) / DAYS_PER_YEAR)
        dies = at_risk & (rng.random(people.n) < p)
        day = s + np.floor(rng.random(people.n) * np.maximum(e - s, 1)).astype(np.int64)
        death = np.where(dies, day, death)
    return death


def exit_day(people: People, death: np.ndarray, params: dict) -> np.ndarray:
    """First day no longer observed: death, leaving the practice, or the day after study end."""
    end = to_days(params["study_end"]) + 1
    out = np.minimum(people.reg_end_candidate, end)
    return np.where(death >= 0, np.minimum(death, out), out)


def draw_emergency(
    people: People, deficits_by_segment: np.ndarray, log_frailty: np.ndarray, exit_: np.ndarray,
    death: np.ndarray, params: dict, rng: np.random.Generator,
) -> Spells:
    """Emergency spells (control potential outcome: no programme) for every patient."""
    edges = segments(params)
    deprivation = (5.5 - people.imd_decile) / 4.5
    transient_shape = float(params["admission_transient_shape"])
    n_seg = len(edges) - 1
    entry = np.maximum(people.reg_start, edges[0])

    def linear(k: int) -> np.ndarray:
        age = people.age_at((edges[k] + edges[k + 1]) // 2)
        return age_effect(age) + 0.12 * deficits_by_segment[:, k] + 0.15 * deprivation

    # Calibrate r0 so the overall expected rate over registered person-time hits the target.
    # Terminal spells and readmissions come on top of the Poisson process: about a tenth.
    target = float(params["emergency_admission_rate"]) / 1.1
    num = den = 0.0
    mult = np.exp(log_frailty)
    exposures = []
    for k in range(n_seg):
        s = np.maximum(edges[k], entry)
        e = np.minimum(edges[k + 1], exit_)
        expo = np.clip(e - s, 0, None) / DAYS_PER_YEAR
        exposures.append((s, e, expo))
        num += float((np.exp(linear(k)) * mult * expo).sum())
        den += float(expo.sum())
    r0 = np.log(target * den / num)

    pats, days = [], []
    for k in range(n_seg):
        s, e, expo = exposures[k]
        shock = rng.gamma(transient_shape, 1 / transient_shape, size=people.n)
        lam = np.exp(r0 + linear(k)) * mult * shock * expo
        counts = rng.poisson(lam)
        idx = np.repeat(np.arange(people.n), counts)
        width = (e - s)[idx]
        pats.append(idx)
        days.append(s[idx] + np.floor(rng.random(len(idx)) * width).astype(np.int64))
    patient = np.concatenate(pats)
    admission = np.concatenate(days)

    # End-of-life spells: many deaths happen in hospital after an emergency admission.
    dead = np.flatnonzero(death >= 0)
    p_terminal = 0.45
    terminal = dead[rng.random(len(dead)) < p_terminal]
    t_adm = np.maximum(death[terminal] - rng.integers(0, 15, size=len(terminal)), entry[terminal])
    patient = np.concatenate([patient, terminal])
    admission = np.concatenate([admission, t_adm])
    is_terminal = np.r_[np.zeros(len(admission) - len(terminal), bool), np.ones(len(terminal), bool)]

    deficits_end = deficits_by_segment[:, -1]
    los = _length_of_stay(people, patient, admission, deficits_end, rng)
    discharge = admission + los
    discharge = np.where(is_terminal, death[patient], discharge)
    parent = np.full(len(patient), -1)

    # Readmissions within 30 days of discharge ("failed discharges").
    p_readmit = np.clip(
        float(params["readmission_probability"]) * np.exp(0.06 * (deficits_end[patient] - 4)),
        0, 0.6,
    )
    readmit = (~is_terminal) & (rng.random(len(patient)) < p_readmit)
    r_idx = np.flatnonzero(readmit)
    r_adm = discharge[r_idx] + rng.integers(1, 31, size=len(r_idx))
    ok = r_adm < exit_[patient[r_idx]]
    r_idx, r_adm = r_idx[ok], r_adm[ok]
    r_pat = patient[r_idx]
    r_los = _length_of_stay(people, r_pat, r_adm, deficits_end, rng)
    patient = np.concatenate([patient, r_pat])
    admission = np.concatenate([admission, r_adm])
    discharge = np.concatenate([discharge, r_adm + r_los])
    parent = np.concatenate([parent, r_idx])

    n = len(patient)
    method = rng.choice(EMERGENCY_METHODS, size=n, p=EMERGENCY_METHOD_SHARE)
    primary = rng.choice(
        EMERGENCY_DIAGNOSES, size=n, p=EMERGENCY_DIAGNOSIS_WEIGHT / EMERGENCY_DIAGNOSIS_WEIGHT.sum()
    )
    spells = Spells(patient, admission, discharge, method, np.ones(n, bool), primary, parent)
    return _clip_to_observation(spells, exit_, death, params)


def _length_of_stay(people, patient, admission, deficits, rng) -> np.ndarray:
    age = (admission - people.dob[patient]) / DAYS_PER_YEAR
    median = np.exp(0.7 + 0.05 * deficits[patient] + 0.02 * np.clip(age - 60, 0, None))
    los = np.rint(median * np.exp(rng.normal(0, 0.9, size=len(patient))))
    same_day = rng.random(len(patient)) < 0.25
    return np.where(same_day, 0, np.clip(los, 1, 120)).astype(np.int64)


def draw_planned(
    people: People, exit_: np.ndarray, death: np.ndarray, params: dict, rng: np.random.Generator
) -> Spells:
    """Elective and maternity spells (not outcomes, but part of a realistic extract)."""
    edges = segments(params)
    entry = np.maximum(people.reg_start, edges[0])
    expo = np.clip(exit_ - entry, 0, None) / DAYS_PER_YEAR
    age = people.age_at((edges[0] + edges[-1]) // 2)
    rate = float(params["elective_admission_rate"]) * np.exp(0.02 * (age - 50))
    n_el = rng.poisson(rate * expo)
    fertile = (people.sex == "F") & (age >= 16) & (age <= 45)
    n_mat = rng.poisson(np.where(fertile, 0.055, 0.0) * expo)
    out = []
    for counts, kind in ((n_el, "elective"), (n_mat, "maternity")):
        idx = np.repeat(np.arange(people.n), counts)
        width = np.maximum(exit_[idx] - entry[idx], 1)
        adm = entry[idx] + np.floor(rng.random(len(idx)) * width).astype(np.int64)
        if kind == "elective":
            los = np.where(rng.random(len(idx)) < 0.7, 0, rng.integers(1, 8, size=len(idx)))
            method = rng.choice(np.array(["11", "12", "13"]), size=len(idx), p=[0.6, 0.25, 0.15])
            dx = rng.choice(ELECTIVE_DIAGNOSES, size=len(idx))
        else:
            los = rng.integers(0, 4, size=len(idx))
            method = rng.choice(np.array(["31", "32"]), size=len(idx), p=[0.8, 0.2])
            dx = np.full(len(idx), "O80")
        out.append(Spells(idx, adm, adm + los, method, np.zeros(len(idx), bool), dx,
                          np.full(len(idx), -1)))
    merged = Spells(*[np.concatenate([getattr(s, f) for s in out]) for f in
                      ("patient", "admission", "discharge", "method", "emergency", "primary",
                       "parent")])
    return _clip_to_observation(merged, exit_, death, params)


def _clip_to_observation(spells: Spells, exit_, death, params) -> Spells:
    """Keep spells starting while observed; discharges end by death and by the study end."""
    end = to_days(params["study_end"])
    keep = spells.admission < exit_[spells.patient]
    spells = spells.subset(keep)
    d = death[spells.patient]
    discharge = np.where(d >= 0, np.minimum(spells.discharge, d), spells.discharge)
    spells.discharge = np.minimum(np.maximum(discharge, spells.admission), end)
    return spells
