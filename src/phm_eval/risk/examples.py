"""Synthetic data with a known risk model, for examples, tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from phm_eval import DEFAULT_SEED
from phm_eval.errors import renamed_argument

__all__ = [
    "example_risk_features",
]


def example_risk_features(
    n: int = 20_000,
    *,
    seed: int | np.random.Generator = DEFAULT_SEED,
    n_practices: int = 40,
    practices_per_pcn: int = 5,
    n_ltc_flags: int = 10,
    intercept_shift: float = 0.0,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Synthetic feature frame with a known risk model, for examples, tests and benchmarks.

    The outcome is drawn from a logistic model linear in the features (age, frailty, prior
    admissions, deprivation, sex, ethnicity and the first five long-term-condition flags);
    the true risk is kept in ``true_risk``. ``intercept_shift`` moves the baseline log-odds
    (e.g. a later cohort with a different admission rate).

    ``seed`` (default ``phm_eval.DEFAULT_SEED``, 1; it was 0) makes the frame reproducible;
    ``random_state`` is its former name, still accepted with a ``DeprecationWarning``
    (``seed=1`` counts as not given then).
    """
    seed = renamed_argument("example_risk_features", "seed", seed, "random_state",
                            random_state, default=DEFAULT_SEED)
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 100, n)
    sex = rng.choice(["F", "M"], n)
    ethnicity = rng.choice(
        ["White", "Asian", "Black", "Mixed", "Other", "Unknown"],
        n,
        p=[0.8, 0.08, 0.04, 0.03, 0.02, 0.03],
    )
    imd = rng.integers(1, 11, n)
    n_ltc = rng.poisson(np.clip((age - 18) / 25, 0, None))
    efi = np.clip(rng.beta(1.5, 12, n) + n_ltc * 0.01, 0, 1)
    ea1 = rng.poisson(0.1 + 0.05 * n_ltc)
    ea2 = ea1 + rng.poisson(0.1 + 0.05 * n_ltc)
    practice = rng.integers(0, n_practices, n)
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i:07d}" for i in range(n)],
            "practice_id": [f"K{j:03d}" for j in practice],
            "pcn_id": [f"U{j // practices_per_pcn:02d}" for j in practice],
            "age": age,
            "sex": sex,
            "ethnicity": ethnicity,
            "imd_decile": imd.astype(float),
            "imd_quintile": ((imd + 1) // 2).astype(str),
            "n_ltc": n_ltc,
            "efi_score": efi,
            "n_emergency_admissions_1y": ea1,
            "n_emergency_admissions_2y": ea2,
            "bed_days_1y": rng.poisson(2 * ea1),
            "n_medications": rng.poisson(1 + n_ltc),
            "n_gp_events_1y": rng.poisson(3 + 2 * n_ltc),
            "hfrs": rng.gamma(1, 2, n) * (ea1 > 0),
        }
    )
    flags = rng.random((n, n_ltc_flags)) < 0.08
    for j in range(n_ltc_flags):
        frame[f"ltc_flag_{j:02d}"] = flags[:, j]
    weights = np.array([0.3, 0.2, 0.2, 0.1, 0.1])[: min(5, n_ltc_flags)]
    lp = (
        -3.2
        + intercept_shift
        + 0.025 * (age - 60)
        + 0.45 * ea1
        + 0.1 * ea2
        + 2.0 * efi
        + 0.08 * n_ltc
        - 0.05 * (imd - 5)
        + 0.1 * (sex == "M")
        + 0.2 * (ethnicity == "Black")
        + flags[:, : weights.size] @ weights
    )
    frame["true_risk"] = expit(lp)
    frame["emergency_admission_12m"] = rng.binomial(1, frame["true_risk"].to_numpy())
    missing_imd = rng.random(n) < 0.03
    frame.loc[missing_imd, "imd_decile"] = np.nan
    frame.loc[missing_imd, "imd_quintile"] = None
    return frame
