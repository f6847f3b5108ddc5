"""Regular medicines (repeat prescriptions) per patient, for polypharmacy and issue events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .population import DAYS_PER_YEAR, People, to_days


@dataclass
class Medicines:
    """One row per (patient, regular drug): drug index into the medication code list, the first
    and last day it is issued and the issue interval in days."""

    patient: np.ndarray
    drug: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    interval: np.ndarray
    n_drugs: np.ndarray  # per patient

    def active_count(self, day: int, n_patients: int) -> np.ndarray:
        """Distinct regular drugs issued in the 365 days up to ``day`` per patient."""
        active = (self.start <= day) & (self.stop > day - 365)
        return np.bincount(self.patient[active], minlength=n_patients)


def generate_medicines(
    people: People,
    deficit_count_end: np.ndarray,
    params: dict,
    n_products: int,
    rng: np.random.Generator,
    target_polypharmacy_65: float = 0.5,
) -> Medicines:
    """Draw regular medicines; the number rises with morbidity and age.

    The intercept is solved so that about ``target_polypharmacy_65`` of people aged 65+ have five
    or more regular drugs by the end of the window.
    """
    study_end = to_days(params["study_end"])
    data_start = to_days(params["data_start"])
    age = people.age_at(study_end)
    linear = 0.22 * deficit_count_end + 0.012 * np.clip(age - 40, 0, None)
    older = age >= 65
    lo, hi = -8.0, 4.0
    from scipy.stats import poisson

    for _ in range(50):
        mid = (lo + hi) / 2
        share = poisson.sf(4, np.exp(mid + linear[older])).mean()
        lo, hi = (mid, hi) if share < target_polypharmacy_65 else (lo, mid)
    mu = np.exp((lo + hi) / 2 + linear) * np.where(age < 18, 0.3, 1.0)
    n_drugs = np.minimum(rng.poisson(mu), min(15, n_products))
    patient = np.repeat(np.arange(people.n), n_drugs)
    # Distinct drugs per patient: a random permutation prefix per patient.
    keys = rng.random((len(patient),))
    drug = _distinct_draws(patient, n_drugs, n_products, keys, rng)
    # Most regular drugs were started before the data window; some start during it, and some
    # stop, so the number on repeat stays roughly stable over calendar time.
    started_before = rng.random(len(patient)) < 0.8
    start = np.where(
        started_before,
        data_start - rng.exponential(5 * DAYS_PER_YEAR, size=len(patient)),
        data_start + rng.uniform(0, study_end - data_start, size=len(patient)),
    ).astype(np.int64)
    start = np.maximum(start, people.dob[patient] + 2 * 365)
    stops = rng.random(len(patient)) < 0.2
    stop = np.where(
        stops, start + rng.uniform(30, 3 * 365, size=len(patient)).astype(np.int64), study_end
    )
    interval = rng.choice(np.array([28, 56]), size=len(patient), p=[0.6, 0.4])
    return Medicines(patient, drug, start, np.minimum(stop, study_end), interval, n_drugs)


def _distinct_draws(patient, n_drugs, n_products, keys, rng):
    """For each patient draw ``n_drugs`` distinct product indices without replacement."""
    # Rank within patient 0..k-1, then map through a per-patient random offset and a fixed
    # random permutation: (offset + rank * step) mod n is distinct for step coprime with n.
    rank = np.arange(len(patient)) - np.repeat(np.cumsum(n_drugs) - n_drugs, n_drugs)
    offset = rng.integers(0, n_products, size=len(n_drugs))[patient]
    step = _coprime_step(n_products, rng)
    perm = rng.permutation(n_products)
    return perm[(offset + rank * step) % n_products]


def _coprime_step(n: int, rng: np.random.Generator) -> int:
    from math import gcd

    candidates = [s for s in range(1, n) if gcd(s, n) == 1] or [1]
    return int(rng.choice(candidates))
