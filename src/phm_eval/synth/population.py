"""Practices, PCNs and registered people: age, sex, deprivation, ethnicity, registration.

Dates are held as integer days since 1970-01-01 (``numpy.int64``) inside the generator and turned
into dates only when the tables are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Registered population of England by five-year age band (per cent), ONS mid-year estimates
# rounded; 0-15 about 18-19 %, 65+ about 19 %, 85+ about 2.5 %.
AGE_BAND_SHARE = np.array(
    [5.8, 6.2, 6.0, 5.6, 6.0, 6.7, 6.9, 6.7, 6.3, 6.6, 6.9, 6.6, 5.7, 5.0, 5.1, 3.7, 2.6, 1.6,
     0.7, 0.2]
)
# Older people die in the years before the reference date; drawing them a little more often makes
# the registered population on that date England-like (factors found by calibration).
SURVIVAL_CORRECTION = np.r_[np.ones(13), [1.05, 1.1, 1.2, 1.35, 1.6, 1.9, 2.3]]
# England and Wales Census 2021, high-level ethnic groups (White, Asian, Black, Mixed, Other).
ETHNICITY_GROUPS = np.array(["White", "Asian", "Black", "Mixed", "Other"])
ETHNICITY_SHARE = np.array([0.810, 0.096, 0.042, 0.030, 0.022])
UNKNOWN_ETHNICITY_SHARE = 0.05
DAYS_PER_YEAR = 365.25


def to_days(date: str | pd.Timestamp) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int((pd.Timestamp(date) - pd.Timestamp("1970-01-01")).days)


@dataclass
class Structure:
    """Practices with their PCN and area deprivation."""

    practice_id: np.ndarray
    pcn_id: np.ndarray
    icb_id: np.ndarray
    list_size: np.ndarray
    imd_centre: np.ndarray
    minority_multiplier: np.ndarray

    def subset(self, practices: np.ndarray) -> Structure:
        """These practices only (an index array), in the same order."""
        return Structure(**{name: getattr(self, name)[practices] for name in (
            "practice_id", "pcn_id", "icb_id", "list_size", "imd_centre",
            "minority_multiplier")})

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"practice_id": self.practice_id, "pcn_id": self.pcn_id, "icb_id": self.icb_id}
        )


def build_structure(params: dict, rng: np.random.Generator) -> Structure:
    """Split ``n_patients`` into PCNs of 30k-50k and practices of 5k-15k (configurable)."""
    n = int(params["n_patients"])
    pcn_lo, pcn_hi = params["pcn_size"]
    prac_lo, prac_hi = params["practice_size"]
    kmin, kmax = params["practices_per_pcn"]
    n_pcn = max(1, int(round(n / ((pcn_lo + pcn_hi) / 2))))
    pcn_sizes = _split(n, n_pcn, rng, pcn_lo, pcn_hi)
    practice_ids, pcn_ids, sizes, centres, minority = [], [], [], [], []
    n_icb = max(1, int(round(n / 1_000_000)))
    pcn_centre = rng.uniform(1.5, 9.5, size=n_pcn)
    for p, pcn_n in enumerate(pcn_sizes):
        k = int(np.clip(round(pcn_n / ((prac_lo + prac_hi) / 2)), kmin, kmax))
        # Keep practice sizes within their range where the PCN size allows.
        k = int(np.clip(k, -(-pcn_n // prac_hi), max(1, pcn_n // prac_lo)))
        for s in _split(pcn_n, k, rng, prac_lo, prac_hi):
            practice_ids.append(f"SYNPR{len(practice_ids) + 1:05d}")
            pcn_ids.append(f"SYNPCN{p + 1:04d}")
            sizes.append(s)
            centres.append(float(np.clip(pcn_centre[p] + rng.normal(0, 1.0), 1.0, 10.0)))
            minority.append(float(np.exp(rng.normal(0, 0.6))))
    icb = np.array([f"SYNICB{1 + (i * n_icb) // n_pcn:02d}" for i in range(n_pcn)])
    pcn_index = np.array([int(x[6:]) - 1 for x in pcn_ids])
    return Structure(
        practice_id=np.array(practice_ids),
        pcn_id=np.array(pcn_ids),
        icb_id=icb[pcn_index],
        list_size=np.array(sizes, dtype=np.int64),
        imd_centre=np.array(centres),
        minority_multiplier=np.array(minority),
    )


def _split(total: int, k: int, rng: np.random.Generator, lo: int = 1,
           hi: int | None = None) -> list[int]:
    """Split ``total`` into ``k`` parts of similar size, each within [lo, hi] when feasible."""
    if k <= 1:
        return [total]
    hi = hi or total
    lo = min(lo, total // k)
    hi = max(hi, -(-total // k))
    parts = np.full(k, lo, dtype=np.int64)
    remaining = total - parts.sum()
    room = np.full(k, hi - lo, dtype=np.int64)
    while remaining > 0:
        open_ = room > 0
        w = rng.dirichlet(np.full(int(open_.sum()), 12.0))
        add = np.zeros(k, dtype=np.int64)
        add[open_] = np.minimum(np.floor(w * remaining).astype(np.int64), room[open_])
        if add.sum() == 0:
            add[np.flatnonzero(open_)[0]] = 1
        parts += add
        room -= add
        remaining = total - parts.sum()
    return parts.tolist()


@dataclass
class People:
    """Patient-level attributes as arrays (one element per patient)."""

    patient_id: np.ndarray
    practice_index: np.ndarray
    sex: np.ndarray
    dob: np.ndarray
    ethnicity: np.ndarray
    imd_decile: np.ndarray
    reg_start: np.ndarray
    reg_end_candidate: np.ndarray  # day of leaving the practice if alive (may be after study end)
    health: np.ndarray  # latent general health (higher = worse), standard normal-ish

    @property
    def n(self) -> int:
        return len(self.patient_id)

    def age_at(self, day: np.ndarray | int) -> np.ndarray:
        return (np.asarray(day) - self.dob) / DAYS_PER_YEAR


def build_people(params: dict, structure: Structure, rng: np.random.Generator,
                 first_id: int = 0) -> People:
    """Draw registered people with England-like age/sex structure and clustered deprivation."""
    n = int(structure.list_size.sum())
    data_start = to_days(params["data_start"])
    study_end = to_days(params["study_end"])
    practice_index = np.repeat(np.arange(len(structure.list_size)), structure.list_size)

    # Age on the reference date (the study midpoint) follows England's structure; people with a
    # date of birth after the data start are the births during the window.
    reference = (to_days(params["study_start"]) + study_end) // 2
    share = AGE_BAND_SHARE * SURVIVAL_CORRECTION
    share = share / share.sum()
    band = rng.choice(len(share), size=n, p=share)
    age_ref = band * 5 + rng.uniform(0, 5, size=n)
    # Babies born after the reference date keep the youngest band filled to the study end.
    after_ref = (study_end - reference) / DAYS_PER_YEAR
    youngest = band == 0
    age_ref[youngest] = rng.uniform(-after_ref, 5, size=int(youngest.sum()))
    dob = reference - age_ref * DAYS_PER_YEAR
    born_in_window = dob > data_start
    window_years = (study_end - data_start) / DAYS_PER_YEAR
    # Month precision: the first of the month, as GP extracts usually give.
    dob = _first_of_month(dob.astype(np.int64))
    age_end = (study_end - dob) / DAYS_PER_YEAR

    p_female = np.clip(0.49 + 0.16 * np.clip(age_end - 70, 0, 30) / 30, 0, 1)
    sex = np.where(rng.random(n) < p_female, "F", "M")

    imd = np.rint(structure.imd_centre[practice_index] + rng.normal(0, 1.6, size=n))
    imd = np.clip(imd, 1, 10).astype(np.int64)

    # Ethnic minority share rises in more deprived areas and varies between practices.
    deprivation = (5.5 - imd) / 4.5
    minority_scale = structure.minority_multiplier[practice_index] * np.exp(0.45 * deprivation)
    p_min = np.clip(ETHNICITY_SHARE[1:].sum() * minority_scale, 0, 0.8)
    is_minority = rng.random(n) < p_min
    minority_group = rng.choice(
        ETHNICITY_GROUPS[1:], size=n, p=ETHNICITY_SHARE[1:] / ETHNICITY_SHARE[1:].sum()
    )
    ethnicity = np.where(is_minority, minority_group, "White").astype(object)
    ethnicity[rng.random(n) < UNKNOWN_ETHNICITY_SHARE] = "Unknown"

    # Registration: most people registered before the window; a turnover share joins during it.
    joins_in_window = (rng.random(n) < 0.035 * window_years) | born_in_window
    reg_start = np.where(
        joins_in_window,
        data_start + rng.uniform(0, study_end - data_start - 1, size=n),
        data_start - rng.exponential(8 * DAYS_PER_YEAR, size=n),
    ).astype(np.int64)
    reg_start = np.maximum(reg_start, dob + np.where(born_in_window, 14, 0))
    reg_start = np.minimum(reg_start, study_end - 1)
    leave_rate = float(params["annual_deregistration"])
    reg_end_candidate = (
        np.maximum(reg_start, data_start) + rng.exponential(DAYS_PER_YEAR / leave_rate, size=n)
    ).astype(np.int64)

    health = rng.normal(0, 1, size=n) + 0.3 * deprivation
    order = np.arange(n) + int(first_id)  # later pieces of a population number on
    patient_id = np.char.add("SYN", np.char.zfill(order.astype(str), 8))
    return People(
        patient_id=patient_id,
        practice_index=practice_index,
        sex=sex,
        dob=dob,
        ethnicity=ethnicity,
        imd_decile=imd,
        reg_start=reg_start,
        reg_end_candidate=reg_end_candidate,
        health=health,
    )


def _first_of_month(days: np.ndarray) -> np.ndarray:
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)
