"""Analytic power and minimum detectable effect: hand calculations and simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from phm_eval.evaluate.effects import rate_ratio
from phm_eval.evaluate.power import (
    MDEResult,
    design_effect,
    design_effect_from_se,
    detectable_reduction_sentence,
    estimate_between_unit_cv,
    itt_log_rate_ratio_variance,
    itt_to_enrolled,
    mde_from_frame,
    mde_itt_panel,
    mde_rate_ratio,
    nb_log_rate_ratio_variance,
    power_from_se,
    power_rate_ratio,
)

Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.80)  # 2.8016


def _fixed_point(variance, multiplier, start=-0.3, steps=200):
    """Hand solution of -b = multiplier * sqrt(variance(b)) by fixed-point iteration."""
    b = start
    for _ in range(steps):
        b = -multiplier * math.sqrt(variance(b))
    return math.exp(b)


# ------------------------------------------------------------------------ hand calculations
def test_nb_variance_is_zhu_lakkis_by_hand():
    # (1/100)(1/(0.5*0.8*1) + 1/2) + (1/100)(1/(0.5*1) + 1/2) = 0.03 + 0.025
    v = nb_log_rate_ratio_variance(100, 100, 0.5, 0.8, 1.0, theta=2.0)
    assert v == pytest.approx(0.055, rel=1e-12)
    # unequal arms and exposures: (1/50)(1/(0.2*0.7*0.5) + 1/4) + (1/150)(1/(0.2*0.9) + 1/4)
    v = nb_log_rate_ratio_variance(50, 150, 0.2, 0.7, 0.5, 0.9, theta=4.0)
    hand = (1 / 0.07 + 0.25) / 50 + (1 / 0.18 + 0.25) / 150
    assert v == pytest.approx(hand, rel=1e-12)


def test_poisson_variance_is_one_over_the_expected_events():
    v = nb_log_rate_ratio_variance(400, 400, 0.25, 0.8, 1.0)
    assert v == pytest.approx(1 / (400 * 0.25 * 0.8) + 1 / (400 * 0.25), rel=1e-12)


def test_mde_solves_the_power_equation_by_hand():
    # 500 per arm, 0.4 admissions per person-year, 0.9 years each, theta 1.2, DEFF 1.3
    res = mde_rate_ratio(500, 500, 0.4, 0.9, theta=1.2, design_effect=1.3)

    def variance(b):
        rr = math.exp(b)
        return 1.3 * ((1 / (0.4 * rr * 0.9) + 1 / 1.2) / 500 + (1 / (0.4 * 0.9) + 1 / 1.2) / 500)

    assert Z == pytest.approx(2.801585, abs=1e-6)
    assert res.mde_rate_ratio == pytest.approx(_fixed_point(variance, Z), abs=1e-9)
    # by hand at RR = 0.65655: 1.3 * ((1/(0.36 RR) + 1/1.2) + (1/0.36 + 1/1.2)) / 500 = 0.022556,
    # sqrt = 0.15018, times 2.8016 = 0.42075 = -log(0.65655)
    assert res.mde_rate_ratio == pytest.approx(0.65655, abs=5e-5)
    # at the MDE the power is 80 % (the opposite tail adds < 1e-6)
    assert power_rate_ratio(res.mde_rate_ratio, 500, 500, 0.4, 0.9, theta=1.2,
                            design_effect=1.3) == pytest.approx(0.80, abs=1e-5)
    assert res.se_log_rr == pytest.approx(-math.log(res.mde_rate_ratio) / Z, rel=1e-9)
    assert res.reduction_percent == pytest.approx(100 * (1 - res.mde_rate_ratio))


def test_design_effect_acts_like_a_smaller_sample():
    # Var is proportional to DEFF / n, so DEFF 2 equals halving both arms: exactly.
    a = mde_rate_ratio(600, 1200, 0.3, 1.0, theta=2.0, design_effect=2.0).mde_rate_ratio
    b = mde_rate_ratio(300, 600, 0.3, 1.0, theta=2.0).mde_rate_ratio
    assert a == pytest.approx(b, abs=1e-10)
    assert design_effect(20, 0.05) == pytest.approx(1.95)
    assert design_effect(20, 0.05, cv_cluster_size=0.5) == pytest.approx(1 + (1.25 * 20 - 1)
                                                                        * 0.05)
    assert design_effect_from_se(0.12, 0.10) == pytest.approx(1.44)


def test_more_comparators_and_less_dispersion_detect_smaller_effects():
    base = mde_rate_ratio(300, 300, 0.5, 1.0, theta=1.5).mde_rate_ratio
    assert mde_rate_ratio(300, 900, 0.5, 1.0, theta=1.5).mde_rate_ratio > base
    assert mde_rate_ratio(300, 300, 0.5, 1.0, theta=15).mde_rate_ratio > base
    assert mde_rate_ratio(300, 300, 0.5, 1.0, theta=1.5, alpha=0.01).mde_rate_ratio < base
    assert mde_rate_ratio(300, 300, 0.5, 1.0, theta=1.5, power=0.9).mde_rate_ratio < base


def test_tiny_design_has_no_mde_and_says_so():
    res = mde_rate_ratio(5, 5, 0.05, 0.5, theta=0.5)
    assert math.isnan(res.mde_rate_ratio)
    assert "too small" in res.sentence()


def _frame(n1, n0, rate, t, seed=0, units=None):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"treated": np.r_[np.ones(n1, int), np.zeros(n0, int)],
                       "person_years": t, "patient_id": np.arange(n1 + n0)})
    df["emergency_admissions"] = rng.poisson(rate * t * rng.gamma(2.0, 0.5, n1 + n0))
    if units is not None:
        df["practice_id"] = units
    return df


def test_frame_mde_equals_closed_form_without_covariates():
    # Equal person-time and no covariates: the information matrix gives Zhu & Lakkis exactly,
    # with the comparators' rate (the intercept-only NB mean is the sample mean).
    df = _frame(200, 400, 0.5, 0.8)
    res = mde_from_frame(df, theta=2.0)
    comparators = df[df["treated"] == 0]
    rate0 = comparators["emergency_admissions"].sum() / comparators["person_years"].sum()
    closed = mde_rate_ratio(200, 400, rate0, 0.8, theta=2.0)
    assert res.mde_rate_ratio == pytest.approx(closed.mde_rate_ratio, abs=1e-7)
    assert res.inputs["rate_control"] == pytest.approx(rate0)
    estimated = mde_from_frame(df)  # theta estimated from the comparators
    assert 0 < estimated.inputs["theta"] < np.inf
    assert isinstance(estimated, MDEResult)


def test_between_unit_variance_term_by_hand():
    # Units wholly in one arm add k^2 (1/c1 + 1/c0) with equal information per unit; units
    # contributing equally to both arms cancel.
    n = 400
    separate = np.r_[np.repeat(["A", "B"], n // 2), np.repeat(["C", "D", "E", "F"], n // 4)]
    df = _frame(n, n, 0.5, 1.0, units=separate)
    df["emergency_admissions"] = 1  # mu identical for every row
    base = mde_from_frame(df, theta=np.inf)
    k = 0.2
    clustered = mde_from_frame(df, theta=np.inf, unit_col="practice_id", between_unit_cv=k)
    v0 = -math.log(base.mde_rate_ratio) / Z
    extra = k ** 2 * (1 / 2 + 1 / 4)
    # hand: the same fixed point with the extra variance
    mu = 1.0

    def variance(b):
        return 1 / (n * mu * math.exp(b)) + 1 / (n * mu) + extra

    assert base.se_log_rr == pytest.approx(v0)
    assert clustered.mde_rate_ratio == pytest.approx(_fixed_point(variance, Z), abs=1e-8)
    shared = np.tile(["A", "B", "C", "D"], n // 2)
    df_shared = _frame(n, n, 0.5, 1.0, units=shared)
    df_shared["emergency_admissions"] = 1
    same = mde_from_frame(df_shared, theta=np.inf, unit_col="practice_id", between_unit_cv=k)
    assert same.mde_rate_ratio == pytest.approx(base.mde_rate_ratio, abs=1e-10)


def test_itt_variance_by_hand():
    # post only: [1/(0.18*1000) + 0.04]/10 + [1/(0.2*1000) + 0.04]/10
    v = itt_log_rate_ratio_variance(10, 10, 1000, 0.2, 0.9, 0.2)
    assert v == pytest.approx((1 / 180 + 0.04) / 10 + (1 / 200 + 0.04) / 10, rel=1e-12)
    # person-level overdispersion theta = 2, 0.5 person-years per person
    v = itt_log_rate_ratio_variance(8, 12, 1000, 0.2, 0.9, 0.2, theta=2.0,
                                    person_years_per_person=0.5)
    hand = ((1 + 0.18 * 0.5 / 2) / 180 + 0.04) / 8 + ((1 + 0.2 * 0.5 / 2) / 200 + 0.04) / 12
    assert v == pytest.approx(hand, rel=1e-12)
    # with a pre-period of 800 person-years and correlation 0.75 between periods
    v = itt_log_rate_ratio_variance(10, 10, 1000, 0.2, 0.9, 0.2,
                                    pre_person_years_per_unit=800, period_correlation=0.75)
    pre = 1 / (0.2 * 800)
    hand = (1 / 180 + pre + 2 * 0.04 * 0.25) / 10 + (1 / 200 + pre + 2 * 0.04 * 0.25) / 10
    assert v == pytest.approx(hand, rel=1e-12)


def test_itt_mde_uses_t_quantiles_and_converts_to_the_enrolled_scale():
    res = mde_itt_panel(6, 6, 2000, 0.3, 0.15, enrolled_share=0.4)
    mult = stats.t.ppf(0.975, 10) + stats.t.ppf(0.8, 10)
    hand = _fixed_point(lambda b: itt_log_rate_ratio_variance(6, 6, 2000, 0.3, math.exp(b),
                                                              0.15), mult)
    assert res.mde_rate_ratio == pytest.approx(hand, abs=1e-9)
    normal = mde_itt_panel(6, 6, 2000, 0.3, 0.15, small_sample=False)
    assert normal.mde_rate_ratio > res.mde_rate_ratio  # t quantiles: a larger reduction needed
    assert res.inputs["mde_enrolled_equivalent"] == pytest.approx(
        1 - (1 - res.mde_rate_ratio) / 0.4)
    assert itt_to_enrolled(0.94, 0.3) == pytest.approx(0.8)
    assert math.isnan(itt_to_enrolled(0.5, 0.3))


def test_sentence_rounds_towards_less_sensitivity():
    assert detectable_reduction_sentence(0.7612) == (
        "this evaluation could reliably detect a reduction of 24 % or more (a rate ratio of "
        "0.76 or lower, with 80 % power)")
    # 23.1 % is rounded up to 24 %, never down to 23 %
    assert "reduction of 24 % or more" in detectable_reduction_sentence(0.769)
    assert "reduction of 25 % or more" in detectable_reduction_sentence(0.75)
    assert "0.5 % or more" in detectable_reduction_sentence(0.9952)
    assert "too small" in detectable_reduction_sentence(float("nan"))
    with pytest.raises(ValueError):
        detectable_reduction_sentence(1.1)
    res = mde_rate_ratio(500, 500, 0.4, 0.9, theta=1.2)
    assert res.to_dict()["sentence"] == res.sentence()
    assert res.summary().loc[0, "mde_rate_ratio"] == res.mde_rate_ratio


# ------------------------------------------------------------------------------- simulation
def test_empirical_power_at_the_analytic_mde_is_80_percent():
    """400 negative binomial data sets at the MDE, analysed by the pipeline's estimator (NB2
    rate model, log person-time offset, SEs robust on the person, Poisson fallback): the share with an interval wholly
    below 1 is near 0.80 (Monte Carlo SE 0.02)."""
    n1, n0, rate, t, theta = 250, 500, 0.6, 0.75, 1.5
    mde = mde_rate_ratio(n1, n0, rate, t, theta=theta).mde_rate_ratio
    assert mde == pytest.approx(0.6606, abs=1e-4)
    rng = np.random.default_rng(20240401)
    treated = np.r_[np.ones(n1), np.zeros(n0)]
    mu = rate * t * np.where(treated == 1, mde, 1.0)
    hits = 0
    reps = 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            y = rng.negative_binomial(theta, theta / (theta + mu))
            df = pd.DataFrame({"emergency_admissions": y, "person_years": t,
                               "treated": treated, "patient_id": np.arange(n1 + n0)})
            hits += rate_ratio(df).ci_high < 1
    # 0.855 here; 0.829 over 2,000 replicates: the normal approximation is slightly
    # conservative at this size (the log of a small arm's mean rate is skewed)
    assert 0.75 < hits / reps < 0.88, hits / reps


def test_empirical_itt_power_at_the_analytic_mde_is_80_percent():
    """Units with log-normal rates (CV k) and Poisson counts, pre and post periods correlated
    rho; t-test of the change in log rate between arms: power at the MDE is 0.80."""
    c1, c0, y, y_pre, rate, k, rho = 8, 10, 3000, 3000, 0.25, 0.2, 0.7
    res = mde_itt_panel(c1, c0, y, rate, k, pre_person_years_per_unit=y_pre,
                        period_correlation=rho)
    rng = np.random.default_rng(7)
    reps = 4000
    s2 = math.log(1 + k ** 2)
    cov = s2 * np.array([[1, rho], [rho, 1]])
    u = rng.multivariate_normal([-s2 / 2, -s2 / 2], cov, size=(reps, c1 + c0))
    arm = np.r_[np.ones(c1), np.zeros(c0)]
    pre = rng.poisson(rate * y_pre * np.exp(u[..., 0]))
    post = rng.poisson(rate * y * np.exp(u[..., 1]) * np.where(arm == 1, res.mde_rate_ratio, 1))
    change = np.log(post / y) - np.log(pre / y_pre)
    t = stats.ttest_ind(change[:, :c1], change[:, c1:], axis=1)
    empirical = np.mean((t.pvalue < 0.05) & (t.statistic < 0))
    assert abs(empirical - 0.80) < 0.04, empirical


def test_between_unit_cv_moment_estimate():
    # rates 0.1, 0.2, 0.3 on 1,000 person-years each: s^2 = 0.01, Poisson part 0.2/1000,
    # k^2 = (0.01 - 0.0002) / 0.04 = 0.245
    k = estimate_between_unit_cv([100, 200, 300], [1000, 1000, 1000])
    assert k == pytest.approx(math.sqrt(0.245), rel=1e-12)
    assert estimate_between_unit_cv([10, 10], [100, 100]) == 0.0
    # simulation: 400 units, gamma rates with CV 0.2, Poisson counts on 2,000 person-years
    rng = np.random.default_rng(1)
    y = rng.uniform(1000, 3000, 400)
    events = rng.poisson(0.2 * rng.gamma(25, 1 / 25, 400) * y)
    assert estimate_between_unit_cv(events, y) == pytest.approx(0.2, abs=0.025)


def test_power_from_se_two_tails():
    assert power_from_se(1.0, 0.1) == pytest.approx(0.05)
    assert power_from_se(math.exp(-Z * 0.1), 0.1) == pytest.approx(0.80, abs=1e-4)
