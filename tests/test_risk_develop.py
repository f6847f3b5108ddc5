"""Validation designs and orchestration: IECV, bootstrap optimism, temporal validation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from phm_eval.errors import ConfigError, InputError
from phm_eval.risk.develop import (
    RiskModelConfig,
    bootstrap_optimism,
    candidate_parameters,
    develop_risk_model,
    example_risk_features,
    internal_external_cv,
    random_effects_c_statistic,
    temporal_validation,
)
from phm_eval.risk.validation import c_statistic

Y = "emergency_admission_12m"


@pytest.fixture(autouse=True)
def _single_thread():
    # BLAS and OpenMP threads spin on a busy shared machine
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return example_risk_features(4000, seed=5, n_practices=12, practices_per_pcn=3)


@pytest.fixture(scope="module")
def config() -> RiskModelConfig:
    return RiskModelConfig(n_bootstrap=20, n_optimism_bootstrap=4, min_cluster_events=5)


def test_random_effects_equal_variances_by_hand():
    # with equal within-study variances v, DerSimonian-Laird gives
    # tau2 = sample variance of logit(c) - v, and the summary is the plain mean
    yi = np.array([0.8, 1.0, 1.3, 0.7])
    v = 0.01
    c = expit(yi)
    se = np.sqrt(v) * c * (1 - c)
    res = random_effects_c_statistic(c, se)
    tau2 = np.var(yi, ddof=1) - v
    assert res["tau2"] == pytest.approx(tau2, rel=1e-10)
    assert res["c_statistic"] == pytest.approx(expit(yi.mean()), rel=1e-10)
    se_mu = np.sqrt((v + tau2) / 4)
    assert res["lower"] == pytest.approx(expit(yi.mean() - 1.959963984540054 * se_mu), rel=1e-9)
    assert res["k"] == 4


def test_random_effects_homogeneous_is_fixed_effect():
    c = np.array([0.7, 0.7, 0.7])
    se = np.array([0.01, 0.02, 0.03])
    res = random_effects_c_statistic(c, se)
    assert res["tau2"] == 0.0 and res["c_statistic"] == pytest.approx(0.7)


def test_iecv_held_out_predictions_come_from_other_clusters(small, config):
    res = internal_external_cv(small, config)
    table = res.per_cluster
    assert set(table["cluster"]) == set(small["pcn_id"])
    assert table["n"].sum() == len(small)
    assert res.pooled.metrics["n"] == len(small)
    # refit without one cluster by hand: its c-statistic must match the table's
    from phm_eval.risk.fitting import build_pipeline as _build

    first = table.iloc[0]
    held = (small["pcn_id"] == first["cluster"]).to_numpy()
    model = _build(small, config).fit(small.loc[~held], small.loc[~held, Y])
    p = model.predict_proba(small.loc[held])[:, 1]
    assert first["c_statistic"] == pytest.approx(c_statistic(small.loc[held, Y], p), abs=1e-12)
    assert 0.6 < res.meta["c_statistic"] < 0.8
    assert res.meta["k"] <= len(table)


def test_iecv_warm_start_reaches_the_same_fits_in_fewer_iterations(small, config):
    from phm_eval.risk.designs import _warm_started
    from phm_eval.risk.fitting import build_pipeline as _build

    full = _build(small, config).fit(small, small[Y])
    cold = internal_external_cv(small, config)
    warm = internal_external_cv(small, config, start=full)
    for metric, tol in (("c_statistic", 2e-3), ("calibration_slope", 1e-2)):
        assert np.allclose(cold.per_cluster[metric], warm.per_cluster[metric], atol=tol), metric
    held = (small["pcn_id"] == small["pcn_id"].iloc[0]).to_numpy()
    fold_cold = _build(small, config).fit(small.loc[~held], small.loc[~held, Y])
    fold_warm = _warm_started(_build(small, config), full).fit(small.loc[~held],
                                                               small.loc[~held, Y])
    iters = (fold_cold.named_steps["model"].n_iter_[0], fold_warm.named_steps["model"].n_iter_[0])
    assert iters[1] < iters[0]


def test_bootstrap_optimism_is_positive_for_c_and_shrinks_slope(small, config):
    table = bootstrap_optimism(small, config, n_bootstrap=4)
    c = table.loc["c_statistic"]
    assert c["optimism"] > 0
    assert c["corrected"] == pytest.approx(c["apparent"] - c["optimism"])
    assert table.loc["calibration_slope", "corrected"] < 1.0
    assert (table["n_bootstrap"] == 4).all()


def test_temporal_validation_detects_a_shift_in_baseline_risk(config):
    early = example_risk_features(6000, seed=7)
    later = example_risk_features(6000, seed=8, intercept_shift=0.5)
    res = temporal_validation(early, later, config)
    # predictions are too low by 0.5 on the log-odds scale at the later date
    assert res.validation.metrics["calibration_in_the_large"] == pytest.approx(0.5, abs=0.15)
    assert res.development.metrics["calibration_in_the_large"] == pytest.approx(0.0, abs=0.02)
    assert res.validation.metrics["oe_ratio"] > 1.2


def test_config_errors(small):
    with pytest.raises(ConfigError):
        RiskModelConfig.from_dict({"model": "penalised_logistic", "n_boot": 10})
    with pytest.raises(ConfigError):
        RiskModelConfig.from_dict({"model": "xgboost"})
    with pytest.raises(InputError):
        develop_risk_model(small.drop(columns=["efi_score"]), {"n_optimism_bootstrap": 0})
    bad = small.copy()
    bad.loc[bad.index[3], Y] = 2
    with pytest.raises(InputError):
        develop_risk_model(bad, {"n_optimism_bootstrap": 0})


def test_candidate_parameters_count(small):
    cfg = RiskModelConfig()
    # age spline 6 + 9 numeric + 1 missing indicator (imd_decile) + sex 1 + ethnicity 5
    # + imd_quintile 5 (5 levels + missing) + 10 flags
    assert candidate_parameters(small, cfg) == 6 + 9 + 1 + 1 + 5 + 5 + 10


def test_develop_writes_model_card(tmp_path, small, config):
    later = example_risk_features(3000, seed=9, n_practices=12, practices_per_pcn=3)
    report = develop_risk_model(small, config, validation_features=later, output_dir=tmp_path)
    card = (tmp_path / "model_card.md").read_text()
    for heading in (
        "## Intended use",
        "## Source of data",
        "## Participants",
        "## Outcome",
        "## Predictors",
        "## Sample size",
        "## Missing data",
        "## Model",
        "## Performance",
        "## Calibration",
        "## Clinical utility",
        "## Performance by subgroup",
        "## Limitations",
    ):
        assert heading in card, heading
    assert "- Binary flags: Long-term condition: flag 00" in card
    c_val = report.temporal.validation.metrics["c_statistic"]
    assert f"{c_val:.3f}" in card
    for name in ("calibration.png", "roc.png", "decision_curve.png", "coefficients.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert f"]({name})" in card
    summary = report.summary()
    assert list(summary.index) == [
        "apparent",
        "optimism-corrected",
        "internal-external (pooled)",
        "temporal validation",
    ]
    assert (tmp_path / "risk_model_report.json").exists()


def test_gradient_boosting_report_lists_flags_and_importance(tmp_path):
    data = example_risk_features(3000, seed=13)
    cfg = {"model": "gradient_boosting", "n_bootstrap": 0, "n_optimism_bootstrap": 0}

    def redact(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(n_flagged="[redacted]") if "n_flagged" in frame else frame

    report = develop_risk_model(
        data,
        cfg,
        output_dir=tmp_path,
        run_iecv=False,
        model_card_options={"disclose": redact, "title": "Test card"},
    )
    card = (tmp_path / "model_card.md").read_text()
    assert card.startswith("# Test card")
    assert card.count("[redacted]") == 3  # one per risk tier
    assert "- Binary flags: Long-term condition: flag 00, Long-term condition: flag 01" in card
    assert (tmp_path / "feature_importance.png").stat().st_size > 1000
    assert report.iecv is None and report.optimism is None
    # 3,000 patients is below the Riley minimum for ~37 parameters: the card must say so
    assert not report.sample_size.is_adequate(report.n)
    assert "does **not** meet" in card


def test_designs_side_by_side_give_the_same_report(small, config):
    """The validation designs run in threads (n_jobs) give the report they give one after
    another: each design has its own seed and nothing is shared between them but read-only
    data."""
    import json

    validation = example_risk_features(1_500, seed=8)
    settings = {**config.to_dict(), "n_optimism_bootstrap": 2, "n_bootstrap": 10}
    reports = {
        n_jobs: json.dumps(develop_risk_model(small, settings, validation_features=validation,
                                              n_jobs=n_jobs).to_dict(),
                           sort_keys=True, default=str)
        for n_jobs in (1, 3)
    }
    assert reports[1] == reports[3]
    report = json.loads(reports[3])
    assert {"apparent", "optimism", "internal_external", "temporal"} <= set(report)
    assert report["temporal"] != report["apparent"]
