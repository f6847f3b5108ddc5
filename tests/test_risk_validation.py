"""phm_eval.risk.validation against rms::val.prob, glm, Hmisc::somers2 and pROC.

Reference values: tests/fixtures/risk/val_prob.R on val_prob_data.csv (rms 6.5.0, pROC 1.18.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import EstimationError
from phm_eval.risk import validation as V

FIX = Path(__file__).parent / "fixtures" / "risk"
DATASETS = ["continuous", "tied"]

# val.prob name -> our key
VAL_PROB_KEYS = {
    "R2": "r2_nagelkerke",
    "D": "discrimination_index_D",
    "U": "unreliability_index_U",
    "Q": "quality_index_Q",
    "Brier": "brier",
    "Intercept": "calibration_intercept",
    "Slope": "calibration_slope",
    "Emax": "emax",
    "E90": "e90",
    "Eavg": "eavg",
    "S:z": "spiegelhalter_z",
    "S:p": "spiegelhalter_p",
}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "val_prob_data.csv")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIX / "val_prob_expected.json").read_text())


def _split(data: pd.DataFrame, ds: str) -> tuple[np.ndarray, np.ndarray]:
    part = data[data["dataset"] == ds]
    return part["y"].to_numpy(dtype=float), part["p"].to_numpy(dtype=float)


@pytest.mark.r_fixture
@pytest.mark.parametrize("ds", DATASETS)
def test_calibration_metrics_match_val_prob(data, expected, ds):
    y, p = _split(data, ds)
    ours = V.calibration_metrics(y, p)
    ref = expected[ds]["val_prob"]
    for r_name, key in VAL_PROB_KEYS.items():
        assert ours[key] == pytest.approx(ref[r_name], abs=1e-6), r_name
    # intercept/slope agree much more tightly with a fully converged glm
    assert ours["calibration_intercept"] == pytest.approx(expected[ds]["glm_intercept"], abs=1e-9)
    assert ours["calibration_slope"] == pytest.approx(expected[ds]["glm_slope"], abs=1e-9)
    assert ours["calibration_in_the_large"] == pytest.approx(expected[ds]["citl"], abs=1e-9)
    assert ours["oe_ratio"] == pytest.approx(expected[ds]["oe_ratio"], abs=1e-12)
    # predictions are too extreme and too high: the metrics must say so
    assert ours["calibration_slope"] < 0.7
    assert ours["calibration_in_the_large"] < -0.5


@pytest.mark.r_fixture
@pytest.mark.parametrize("ds", DATASETS)
def test_c_statistic_exact_and_val_prob_binned(data, expected, ds):
    y, p = _split(data, ds)
    ref = expected[ds]
    c = V.c_statistic(y, p)
    assert c == pytest.approx(ref["somers2_C"], abs=1e-12)
    assert c == pytest.approx(ref["proc_auc"], abs=1e-12)
    assert V.calibration_metrics(y, p)["dxy"] == pytest.approx(ref["somers2_Dxy"], abs=1e-12)
    # val.prob's C differs only through its 5,000-bin grouping of predictions
    assert V._binned_c(y, p) == pytest.approx(ref["val_prob"]["C (ROC)"], abs=1e-12)
    assert c == pytest.approx(ref["val_prob"]["C (ROC)"], abs=1e-5)


@pytest.mark.r_fixture
@pytest.mark.parametrize("ds", DATASETS)
def test_lowess_matches_r(data, ds):
    y, p = _split(data, ds)
    ref = pd.read_csv(FIX / "val_prob_lowess.csv")
    ref = ref[ref["dataset"] == ds]
    xs, fit = V.lowess_r(p, y)
    np.testing.assert_allclose(xs, ref["x"].to_numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(fit, ref["fit"].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.r_fixture
@pytest.mark.parametrize("ds", DATASETS)
def test_delong_matches_proc(data, expected, ds):
    y, p = _split(data, ds)
    ref = expected[ds]
    dl = V.delong_ci(y, p)
    assert dl["se"] ** 2 == pytest.approx(ref["proc_delong_var"], rel=1e-9)
    assert dl["lower"] == pytest.approx(ref["proc_delong_lower"], abs=1e-10)
    assert dl["upper"] == pytest.approx(ref["proc_delong_upper"], abs=1e-10)


def test_lowess_textbook_cases():
    # a straight line is fitted exactly by local linear regression
    x = np.linspace(0, 1, 50)
    _, fit = V.lowess_r(x, 3 * x + 1)
    np.testing.assert_allclose(fit, 3 * x + 1, atol=1e-12)
    # all x tied: every point gets the mean of y
    _, fit = V.lowess_r(np.ones(6), np.array([0, 1, 0, 1, 1, 1.0]))
    np.testing.assert_allclose(fit, np.full(6, 4 / 6), atol=1e-12)


def test_perfect_calibration_by_construction():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.6, 200_000)
    y = rng.binomial(1, p).astype(float)
    m = V.calibration_metrics(y, p, smooth=False)
    assert m["calibration_slope"] == pytest.approx(1.0, abs=0.03)
    assert m["calibration_in_the_large"] == pytest.approx(0.0, abs=0.02)
    assert m["oe_ratio"] == pytest.approx(1.0, abs=0.01)


def test_c_statistic_hand_example():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, tie, 0.4>0.1) -> 3.5/4
    assert V.c_statistic([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_single_class_raises():
    with pytest.raises(EstimationError):
        V.calibration_metrics([0, 0, 0], [0.1, 0.2, 0.3])


def test_bootstrap_metrics_intervals(data):
    y, p = _split(data, "continuous")
    table = V.bootstrap_metrics(y, p, n_bootstrap=60, seed=3)
    c = table.loc["c_statistic"]
    assert c["lower"] < c["estimate"] < c["upper"]
    dl = table.loc["c_statistic_delong"]
    # percentile and DeLong intervals for c agree in width to within ~40% at B = 60
    width_boot = c["upper"] - c["lower"]
    width_dl = dl["upper"] - dl["lower"]
    assert width_boot == pytest.approx(width_dl, rel=0.4)
    slope = table.loc["calibration_slope"]
    assert slope["upper"] < 1.0  # miscalibration is detected, not just estimated
    again = V.bootstrap_metrics(y, p, n_bootstrap=60, seed=3)
    pd.testing.assert_frame_equal(table, again)


@pytest.mark.parametrize("dataset", DATASETS)
def test_resampled_metrics_equal_metrics_of_the_resample(data, dataset):
    """The weighted fast path gives the metrics of the copied resample (ties included)."""
    y, p = _split(data, dataset)
    y, p = np.asarray(y, float), np.asarray(p, float)
    fast = V._ResampledMetrics(y, p, start=V.calibration_metrics(y, p, smooth=False))
    rng = np.random.default_rng(11)
    for _ in range(5):
        idx = rng.integers(0, y.size, size=y.size)
        expected = V.calibration_metrics(y[idx], p[idx], smooth=False)
        got = fast(np.bincount(idx, minlength=y.size).astype(float))
        for key, value in got.items():
            assert value == pytest.approx(expected[key], rel=1e-9, abs=1e-10), key


def test_calibration_curve_methods(data):
    y, p = _split(data, "continuous")
    loess = V.calibration_curve(y, p, method="loess", n_points=20)
    spline = V.calibration_curve(y, p, method="spline", n_points=20)
    # both show the over-prediction at high risk, and roughly agree with each other
    assert (loess["observed"].iloc[-5:] < loess["predicted"].iloc[-5:]).all()
    assert np.max(np.abs(loess["observed"] - spline["observed"])) < 0.08
    assert ((spline["lower"] <= spline["observed"]) & (spline["observed"] <= spline["upper"])).all()


def test_subgroup_metrics_counts_and_values(data):
    y, p = _split(data, "continuous")
    df = pd.DataFrame({"y": y, "p": p, "sex": np.where(np.arange(y.size) % 2 == 0, "F", "M")})
    df.loc[:9, "sex"] = None
    table = V.subgroup_metrics(df, "y", "p", by=["sex"])
    assert list(table["group"]) == ["F", "M", "missing"]
    assert table["n"].sum() == y.size
    assert table["events"].sum() == y.sum()
    f = df[df["sex"] == "F"]
    row = table.set_index("group").loc["F"]
    assert row["c_statistic"] == pytest.approx(V.c_statistic(f["y"], f["p"]), abs=1e-12)
    assert row["oe_ratio"] == pytest.approx(f["y"].sum() / f["p"].sum(), abs=1e-12)
