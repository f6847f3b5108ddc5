"""Known truth: matching removes confounding by indication that biases the naive comparison.

Patients are enrolled in a proactive-care programme more often when frail and
recently admitted, and those patients are admitted more next year anyway. The
programme cuts the admission rate by 20% (rate ratio 0.8), so the true effect on
the treated (SATT) is the mean over enrolled patients of -0.2 x their expected
admissions without the programme, known exactly from the simulation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.matching import NearestNeighborMatcher

COVARIATES = ["age", "female", "prior_emergency_admissions", "efi", "admission_risk"]
RATE_RATIO = 0.8


def simulate(seed: int, n: int = 20_000) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(seed)
    age = rng.integers(65, 100, n)
    female = rng.binomial(1, 0.55, n)
    efi = rng.binomial(36, np.clip(0.05 + 0.006 * (age - 65), 0, 1)) / 36
    prior = rng.poisson(np.exp(-1.2 + 2.5 * efi))
    risk = 1 / (1 + np.exp(-(-3 + 0.03 * (age - 65) + 0.4 * prior + 3 * efi + rng.normal(0, 0.5, n))))
    enrol_lp = -3.6 + 0.6 * prior + 3.0 * efi + 2.5 * risk + 0.01 * (age - 80)
    treated = rng.binomial(1, 1 / (1 + np.exp(-enrol_lp)))
    mu0 = np.exp(-1.6 + 0.35 * prior + 2.0 * efi + 1.5 * risk + 0.01 * (age - 80) - 0.1 * female)
    mu = mu0 * np.where(treated == 1, RATE_RATIO, 1.0)
    y = rng.poisson(mu)
    df = pd.DataFrame(
        {
            "treated": treated,
            "age": age,
            "female": female,
            "prior_emergency_admissions": prior,
            "efi": efi,
            "admission_risk": risk,
            "emergency_admissions_followup": y,
            # Known only in a simulation: expected admissions without the programme.
            "expected_untreated": mu0,
        }
    )
    satt = float(np.mean((RATE_RATIO - 1.0) * mu0[treated == 1]))
    return df, satt


def naive_difference(df: pd.DataFrame) -> float:
    y = df["emergency_admissions_followup"]
    return float(y[df["treated"] == 1].mean() - y[df["treated"] == 0].mean())


def matched_difference(df: pd.DataFrame, matcher: NearestNeighborMatcher) -> tuple[float, float]:
    """Weighted difference in the matched sample, and the true effect in its treated units.

    A caliper can leave the hardest-to-match enrolled patients out, which changes
    the estimand to the effect in the matched treated units; that is the truth to
    compare with.
    """
    md = matcher.fit(df, "treated", COVARIATES).matched_data()
    y, w, t = md["emergency_admissions_followup"], md["weights"], md["treated"] == 1
    estimate = float(np.average(y[t], weights=w[t]) - np.average(y[~t], weights=w[~t]))
    truth = float(np.mean((RATE_RATIO - 1.0) * md.loc[t, "expected_untreated"]))
    return estimate, truth


@pytest.mark.parametrize(
    "matcher",
    [
        NearestNeighborMatcher(),
        NearestNeighborMatcher(ratio=2, replace=True),
        NearestNeighborMatcher(distance="prognostic", prognostic_outcome="emergency_admissions_followup",
                               prognostic_family="poisson"),
    ],
    ids=["ps_1to1_caliper", "ps_2to1_replace", "prognostic_1to1"],
)
def test_matching_recovers_known_effect(matcher):
    df, satt = simulate(seed=2024)
    naive = naive_difference(df)
    matched, truth_matched = matched_difference(df, matcher)
    assert satt == pytest.approx(-0.15, abs=0.01)
    # Naive comparison: the programme looks harmful (more admissions) though it helps.
    assert naive > 0.1
    assert naive - satt > 0.25
    # Matched comparison: within 0.1 admissions per patient (about 3 standard errors)
    # of the truth in the matched treated units, and of the SATT.
    assert abs(matched - truth_matched) < 0.1
    assert abs(matched - satt) < 0.1


@pytest.mark.slow
def test_matching_bias_over_replications():
    """200 replications: mean bias of the matched difference is small, the naive one large."""
    bias_matched, bias_satt, bias_naive = [], [], []
    for seed in range(200):
        df, satt = simulate(seed)
        estimate, truth_matched = matched_difference(df, NearestNeighborMatcher())
        bias_matched.append(estimate - truth_matched)
        bias_satt.append(estimate - satt)
        bias_naive.append(naive_difference(df) - satt)
    bias_matched = np.asarray(bias_matched)
    print(
        f"matched vs truth in matched treated: mean bias {bias_matched.mean():.4f} "
        f"(MC SE {bias_matched.std(ddof=1) / np.sqrt(len(bias_matched)):.4f}), "
        f"SD {bias_matched.std(ddof=1):.4f}, RMSE {np.sqrt(np.mean(bias_matched**2)):.4f}; "
        f"vs SATT: mean bias {np.mean(bias_satt):.4f}; naive mean bias {np.mean(bias_naive):.4f}"
    )
    assert abs(bias_matched.mean()) < 0.02
    assert np.mean(bias_naive) > 0.25
