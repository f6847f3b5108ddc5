"""Long-term conditions and eFI deficits with onset dates, calibrated to published prevalence.

Each condition's presence by the end of the data window follows a logistic model in age,
deprivation and latent health; its intercept is solved numerically so that the prevalence in its
target population matches the target. Conditions share latent health, so deficits cluster in the
same people and the eFI has the spread seen in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from .population import DAYS_PER_YEAR, People, to_days


@dataclass(frozen=True)
class ConditionSpec:
    """How one condition or deficit is generated.

    ``target`` is the prevalence in ``population`` (``all`` ages, or ``older`` = 65+) by the end
    of the data window; ``age_slope`` is the log-odds change per decade of age (centred at 50);
    ``load`` the log-odds per SD of latent health; ``efi_deficit`` the eFI deficit the condition
    counts towards, if any.
    """

    name: str
    target: float
    population: str
    min_age: float
    age_slope: float
    dep_slope: float
    load: float
    duration_years: float
    source: str  # "ltc" or "efi"
    efi_deficit: str | None = None


# Long-term conditions: QOF-like registered prevalence, all ages (brief and shared/domain.md).
LTC_SPECS = [
    ConditionSpec("hypertension", 0.14, "all", 18, 0.62, 0.15, 0.5, 10, "ltc", "hypertension"),
    ConditionSpec("diabetes", 0.07, "all", 5, 0.40, 0.35, 0.6, 8, "ltc", "diabetes"),
    ConditionSpec("asthma", 0.06, "all", 2, 0.0, 0.2, 0.4, 12, "ltc", "respiratory-disease"),
    ConditionSpec("copd", 0.02, "all", 35, 0.65, 0.6, 0.7, 7, "ltc", "respiratory-disease"),
    ConditionSpec("chd", 0.03, "all", 30, 0.80, 0.35, 0.7, 9, "ltc", "chd"),
    ConditionSpec("atrial_fibrillation", 0.02, "all", 30, 1.00, 0.05, 0.6, 6, "ltc",
                  "atrial-fibrillation"),
    ConditionSpec("heart_failure", 0.01, "all", 30, 1.00, 0.3, 0.9, 4, "ltc", "heart-failure"),
    ConditionSpec("ckd", 0.04, "all", 18, 1.00, 0.2, 0.7, 6, "ltc", "ckd"),
    ConditionSpec("dementia", 0.008, "all", 50, 1.50, 0.1, 0.8, 3, "ltc", "cognitive-problems"),
    ConditionSpec("smi", 0.01, "all", 16, 0.0, 0.6, 0.5, 12, "ltc"),
    ConditionSpec("learning_disability", 0.005, "all", 0, -0.1, 0.2, 0.3, 30, "ltc"),
    ConditionSpec("cancer", 0.035, "all", 18, 0.65, 0.0, 0.4, 6, "ltc"),
    ConditionSpec("epilepsy", 0.008, "all", 0, 0.0, 0.3, 0.4, 15, "ltc"),
    ConditionSpec("stroke_tia", 0.018, "all", 30, 0.90, 0.3, 0.7, 7, "ltc", "stroke-tia"),
    ConditionSpec("autism", 0.01, "all", 2, -0.5, 0.0, 0.1, 10, "ltc"),
    ConditionSpec("depression", 0.12, "all", 16, 0.0, 0.35, 0.6, 8, "ltc"),
    ConditionSpec("osteoarthritis", 0.10, "all", 35, 0.65, 0.2, 0.5, 9, "ltc", "arthritis"),
]

# eFI deficits that are not long-term conditions above: prevalence among people 65+.
_OLDER_DEFICITS = {
    "activity-limitation": 0.04, "anaemia": 0.12, "dizziness": 0.12, "dyspnoea": 0.09,
    "falls": 0.10, "foot-problems": 0.08, "fragility-fracture": 0.06, "hearing-loss": 0.18,
    "heart-valve-disease": 0.04, "housebound": 0.04, "hypotension": 0.06,
    "mobility-problems": 0.08, "osteoporosis": 0.11, "parkinsons": 0.025, "peptic-ulcer": 0.07,
    "pvd": 0.04, "care-requirement": 0.04, "skin-ulcer": 0.05, "sleep-disturbance": 0.12,
    "social-vulnerability": 0.05, "thyroid-disorders": 0.13, "urinary-incontinence": 0.10,
    "urinary-system-disease": 0.12, "vision-problems": 0.18, "weight-loss": 0.04,
}
# Deficits of disability and dependency load more heavily on latent health than common ones.
_HEAVY = {"activity-limitation", "housebound", "care-requirement", "mobility-problems",
          "skin-ulcer", "weight-loss", "falls", "social-vulnerability", "urinary-incontinence"}
DEFICIT_SPECS = [
    ConditionSpec(name, min(0.6, 1.5 * target), "older", 40, 0.35, 0.15,
                  0.7 if name in _HEAVY else 0.4, 5, "efi", name)
    for name, target in _OLDER_DEFICITS.items()
]
ALL_SPECS = LTC_SPECS + DEFICIT_SPECS
NEVER = np.iinfo(np.int64).max // 4  # onset day meaning "never"


@dataclass
class Conditions:
    """Onset day of each condition per patient (``NEVER`` when absent)."""

    names: list[str]
    onset: np.ndarray  # (n_patients, n_conditions) int64
    specs: list[ConditionSpec]

    def column(self, name: str) -> np.ndarray:
        return self.onset[:, self.names.index(name)]

    def present_by(self, day: int | np.ndarray) -> np.ndarray:
        """Boolean (n, k): condition recorded on or before ``day``."""
        return self.onset <= np.asarray(day).reshape(-1, 1)

    def efi_deficit_onsets(self) -> tuple[list[str], np.ndarray]:
        """Onset of each eFI deficit: the earliest onset among conditions mapped to it."""
        deficits = sorted({s.efi_deficit for s in self.specs if s.efi_deficit})
        out = np.full((self.onset.shape[0], len(deficits)), NEVER, dtype=np.int64)
        for j, spec in enumerate(self.specs):
            if spec.efi_deficit:
                k = deficits.index(spec.efi_deficit)
                out[:, k] = np.minimum(out[:, k], self.onset[:, j])
        return deficits, out


CALIBRATION_SAMPLE = 200_000


def _solve_intercept(linear: np.ndarray, target: float, mask: np.ndarray) -> float:
    """Intercept ``a`` with mean(expit(a + linear[mask])) == target, by bisection.

    Large populations are calibrated on an evenly spaced subsample (the mean of 200,000 draws
    is accurate to well under 0.1 percentage points), which keeps the cost constant.
    """
    sub = linear[mask]
    if sub.size > CALIBRATION_SAMPLE:
        sub = sub[:: sub.size // CALIBRATION_SAMPLE + 1]
    if sub.size == 0:
        return -20.0
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if expit(mid + sub).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate_conditions(
    people: People, params: dict, rng: np.random.Generator, specs: list[ConditionSpec] = ALL_SPECS,
    calibrate_on: np.ndarray | None = None,
) -> Conditions:
    """Draw presence and onset day of every condition for every patient.

    ``calibrate_on`` restricts the population whose prevalence must hit the targets (e.g. people
    still registered and alive at the study end, as a prevalence survey would count them).
    """
    study_end = to_days(params["study_end"])
    age_end = people.age_at(study_end)
    deprivation = (5.5 - people.imd_decile) / 4.5
    older = age_end >= 65
    onset = np.full((people.n, len(specs)), NEVER, dtype=np.int64)
    for j, spec in enumerate(specs):
        eligible = age_end >= spec.min_age
        linear = (
            spec.age_slope * (age_end - 50) / 10
            + spec.dep_slope * deprivation
            + spec.load * people.health
        )
        mask = older if spec.population == "older" else np.ones(people.n, dtype=bool)
        if calibrate_on is not None:
            mask = mask & calibrate_on
        # Prevalence among everyone in the target population, including those too young to have
        # the condition (who contribute zero).
        a = _solve_intercept(np.where(eligible, linear, -np.inf), spec.target, mask)
        p = np.where(eligible, expit(a + linear), 0.0)
        u = rng.random(people.n)
        present = u < p
        if spec.age_slope > 0.05:
            # Onset at the age where the person's probability curve crosses their own draw:
            # present on any date exactly when old enough, so prevalence at a given age does
            # not drift over calendar time.
            other = linear - spec.age_slope * (age_end - 50) / 10
            with np.errstate(divide="ignore"):
                onset_age = 50 + 10 * (logit(np.clip(u, 1e-12, 1)) - a - other) / spec.age_slope
        else:
            onset_age = spec.min_age + rng.random(people.n) * np.clip(age_end - spec.min_age, 0,
                                                                      None)
        onset_age = np.maximum(onset_age, spec.min_age)
        day = (people.dob + onset_age * DAYS_PER_YEAR).astype(np.int64)
        onset[:, j] = np.where(present, np.minimum(day, study_end), NEVER)
    return Conditions(names=[s.name for s in specs], onset=onset, specs=list(specs))
