"""Risk-model pipelines: construction, known-truth recovery, coefficients and importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import ConfigError
from phm_eval.risk.config import DEFAULT_NUMERIC
from phm_eval.risk.develop import example_risk_features
from phm_eval.risk.models import feature_importance, make_model, model_coefficients
from phm_eval.risk.validation import c_statistic, calibration_metrics

# The model's default predictors, as the risk package declares them.
NUMERIC = list(DEFAULT_NUMERIC)
CATEGORICAL = ["sex", "ethnicity", "imd_quintile"]
FLAGS = [f"ltc_flag_{j:02d}" for j in range(10)]
Y = "emergency_admission_12m"


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    # BLAS (behind L-BFGS-B) and OpenMP (boosting) threads spin on a busy shared machine
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return example_risk_features(20_000, seed=11), example_risk_features(
        50_000, seed=12
    )


def _known_truth(dev: pd.DataFrame, val: pd.DataFrame) -> None:
    model = make_model("penalised_logistic", NUMERIC, CATEGORICAL, binary_features=FLAGS)
    model.fit(dev, dev[Y])
    p = model.predict_proba(val)[:, 1]
    m = calibration_metrics(val[Y], p, smooth=False)
    assert 0.9 <= m["calibration_slope"] <= 1.1
    assert abs(m["calibration_in_the_large"]) < 0.05
    true_c = c_statistic(val[Y], val["true_risk"])
    assert m["c_statistic"] == pytest.approx(true_c, abs=0.01)


def test_known_truth_penalised_logistic(frames):
    """Data from a known logistic model: slope within 0.9-1.1, c within 0.01 of the truth."""
    _known_truth(*frames)


@pytest.mark.slow
def test_known_truth_large_and_fast():
    """200,000 to develop, 1,000,000 to validate; the 1M-row fit must take well under 2 min."""
    import time

    dev = example_risk_features(200_000, seed=21)
    val = example_risk_features(1_000_000, seed=22)
    _known_truth(dev, val)
    for name in ("penalised_logistic", "gradient_boosting"):
        model = make_model(name, NUMERIC, CATEGORICAL, binary_features=FLAGS, seed=0)
        start = time.perf_counter()
        model.fit(val, val[Y])
        assert time.perf_counter() - start < 90.0, name


def test_gradient_boosting_fits_and_is_calibrated(frames):
    dev, val = frames
    model = make_model(
        "gradient_boosting", NUMERIC, CATEGORICAL, binary_features=FLAGS, seed=0
    )
    model.fit(dev, dev[Y])
    assert model.named_steps["model"].n_iter_ < 300  # early stopping engaged
    p = model.predict_proba(val)[:, 1]
    m = calibration_metrics(val[Y], p, smooth=False)
    assert 0.85 <= m["calibration_slope"] <= 1.15
    assert m["c_statistic"] == pytest.approx(c_statistic(val[Y], val["true_risk"]), abs=0.02)


def test_unknown_categories_and_missing_values_at_prediction(frames):
    dev, _ = frames
    model = make_model("penalised_logistic", NUMERIC, CATEGORICAL, binary_features=FLAGS)
    model.fit(dev.head(5000), dev[Y].head(5000))
    new = dev.head(3).copy()
    new.loc[new.index[0], "ethnicity"] = "Not in training"
    new.loc[new.index[1], "efi_score"] = np.nan
    p = model.predict_proba(new)[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_coefficients_recover_known_effect(frames):
    dev, _ = frames
    model = make_model("penalised_logistic", NUMERIC, CATEGORICAL, binary_features=FLAGS)
    model.fit(dev, dev[Y])
    coef = model_coefficients(model).set_index("term")["coefficient"]
    # numeric predictors are standardised: per-unit effect = coefficient / SD. True log-odds
    # ratio per unit eFI is 2.0 (standard error here about 0.35, so allow about 3 SE)
    per_unit_efi = coef["numeric__efi_score"] / dev["efi_score"].std()
    assert per_unit_efi == pytest.approx(2.0, abs=1.0)
    # flags 00-04 carry effects 0.3, 0.2, 0.2, 0.1, 0.1; flags 05-09 none
    real = np.mean([coef[f"binary__ltc_flag_{j:02d}"] for j in range(5)])
    null = np.mean([coef[f"binary__ltc_flag_{j:02d}"] for j in range(5, 10)])
    assert real - null == pytest.approx(0.18, abs=0.13)


def test_feature_importance_ranks_prior_admissions_high(frames):
    dev, _ = frames
    model = make_model("penalised_logistic", NUMERIC, CATEGORICAL, binary_features=FLAGS)
    model.fit(dev, dev[Y])
    table = feature_importance(model, dev, dev[Y], max_rows=3000, n_repeats=2, seed=0)
    top = table["feature"].head(4).tolist()
    assert "n_emergency_admissions_1y" in top or "age" in top
    assert table.set_index("feature").loc["ltc_flag_09", "importance_mean"] < 0.005


def test_penalty_tuned_by_cross_validation(frames):
    dev, val = frames
    model = make_model(
        "penalised_logistic", NUMERIC, CATEGORICAL, binary_features=FLAGS, C="cv", seed=0
    )
    model.fit(dev.head(5000), dev[Y].head(5000))
    chosen = float(np.ravel(model.named_steps["model"].C_)[0])
    assert 1e-4 <= chosen <= 1e3
    p = model.predict_proba(val)[:, 1]
    assert c_statistic(val[Y], p) > 0.65
    assert model_coefficients(model)["term"].iloc[0] == "intercept"


def test_bad_names_rejected():
    with pytest.raises(ConfigError):
        make_model("random_forest", NUMERIC, CATEGORICAL)
    with pytest.raises(ConfigError):
        make_model("penalised_logistic", ["sex"], ["sex"])
    with pytest.raises(ConfigError):
        make_model("penalised_logistic", NUMERIC, CATEGORICAL, C="lots")


def test_nullable_dtypes_and_integer_coded_categories(frames):
    dev, _ = frames
    data = dev.head(3000).copy()
    data["imd_quintile"] = pd.to_numeric(data["imd_quintile"]).astype("Int64")
    data["n_ltc"] = data["n_ltc"].astype("Int64")
    data.loc[data.index[:5], "n_ltc"] = pd.NA
    data["ltc_flag_00"] = data["ltc_flag_00"].astype("boolean")
    for name in ("penalised_logistic", "gradient_boosting"):
        model = make_model(name, NUMERIC, CATEGORICAL, binary_features=FLAGS, seed=0)
        model.fit(data, data[Y])
        assert np.isfinite(model.predict_proba(data)[:, 1]).all()
    levels = model.named_steps["features"].named_transformers_["categorical"][-1].categories_
    assert list(levels[2]) == ["1", "2", "3", "4", "5", "missing"]  # not "1.0", "2.0", ...


def test_tolerance_option_tightens_the_fit(frames):
    """``tol`` reaches the solver; a tight tolerance lands closer to the optimum than the
    default (the gradient of the penalised log-likelihood is smaller)."""
    dev, _ = frames

    def gradient_norm(model):
        fitted = model.fit(dev, dev[Y])
        X = fitted.named_steps["features"].transform(dev)
        lr = fitted.named_steps["model"]
        p = lr.predict_proba(X)[:, 1]
        grad = X.T @ (p - dev[Y].to_numpy()) + lr.coef_.ravel() / lr.C
        return np.linalg.norm(grad), lr.tol

    loose, tol_loose = gradient_norm(make_model("penalised_logistic", NUMERIC, CATEGORICAL,
                                                binary_features=FLAGS))
    tight, tol_tight = gradient_norm(make_model("penalised_logistic", NUMERIC, CATEGORICAL,
                                                binary_features=FLAGS, tol=1e-8))
    assert (tol_loose, tol_tight) == (1e-4, 1e-8)
    assert tight < loose
    with pytest.raises(ConfigError, match="tol"):
        make_model("penalised_logistic", NUMERIC, CATEGORICAL, tol=0)
