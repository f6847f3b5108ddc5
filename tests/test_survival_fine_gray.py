"""FineGrayFitter against R cmprsk::crr (committed fixtures) and a known truth."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import EstimationError, InputError
from phm_eval.survival import FineGrayFitter
from phm_eval.survival.simulate import simulate_fine_gray

matplotlib.use("Agg")

FIX = Path(__file__).parent / "fixtures" / "survival"
COVS = ["age", "frail", "imd"]
PROFILES = pd.DataFrame({"age": [0.0, 1.0, -1.0], "frail": [0, 1, 0], "imd": [5, 2, 9]})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "competing_risks.csv")


@pytest.fixture(scope="module", params=[1, 2])
def fitted(request, data):
    cause = request.param
    return cause, FineGrayFitter().fit(data, "time", "status", event_of_interest=cause,
                                       covariates=COVS)


@pytest.mark.r_fixture
def test_coefficients_and_se_match_crr(fitted):
    cause, fg = fitted
    ref = pd.read_csv(FIX / f"crr_cause{cause}_coef.csv").set_index("term")
    # crr's default stopping rule (gtol=1e-6) leaves ~5e-7 of slack; the tight fit is exact
    np.testing.assert_allclose(fg.params_[COVS], ref["coef"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(fg.params_[COVS], ref["coef_tight"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(fg.standard_errors_[COVS], ref["se"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(fg.standard_errors_[COVS], ref["se_tight"], atol=1e-9, rtol=0)
    assert fg.log_likelihood_ == pytest.approx(ref["loglik"].iloc[0], abs=1e-6)
    assert fg.log_likelihood_null_ == pytest.approx(ref["loglik_null"].iloc[0], abs=1e-6)


@pytest.mark.r_fixture
def test_variance_and_information_match_crr(fitted):
    cause, fg = fitted
    var = pd.read_csv(FIX / f"crr_cause{cause}_var.csv").set_index("term")
    inv = pd.read_csv(FIX / f"crr_cause{cause}_invinf.csv").set_index("term")
    np.testing.assert_allclose(fg.variance_matrix_.loc[COVS, COVS], var.loc[COVS, COVS],
                               atol=1e-10, rtol=1e-8)
    np.testing.assert_allclose(np.linalg.inv(fg.information_matrix_.loc[COVS, COVS]),
                               inv.to_numpy(), atol=1e-10, rtol=1e-8)


@pytest.mark.r_fixture
def test_baseline_and_predictions_match_crr(fitted):
    cause, fg = fitted
    bf = pd.read_csv(FIX / f"crr_cause{cause}_bfitj.csv")
    base = fg.baseline_cumulative_hazard_
    np.testing.assert_allclose(base.index, bf["time"], atol=1e-12)
    np.testing.assert_allclose(base.iloc[:, 0], np.cumsum(bf["bfitj"]), rtol=1e-8)
    pred = pd.read_csv(FIX / f"crr_cause{cause}_predict.csv")
    ours = fg.predict_cumulative_incidence(PROFILES, pred["time"])
    np.testing.assert_allclose(ours.to_numpy(), pred[["profile1", "profile2", "profile3"]],
                               atol=1e-10)


def test_summary_layout_and_intervals(data, capsys):
    fg = FineGrayFitter(alpha=0.1).fit(data, "time", "status", event_of_interest=1,
                                       covariates=COVS)
    s = fg.summary
    assert list(s.columns[:7]) == ["coef", "exp(coef)", "se(coef)", "coef lower 90%",
                                   "coef upper 90%", "exp(coef) lower 90%",
                                   "exp(coef) upper 90%"]
    np.testing.assert_allclose(s["coef upper 90%"] - s["coef"], 1.6448536 * s["se(coef)"],
                               rtol=1e-6)
    np.testing.assert_allclose(s["exp(coef)"], np.exp(s["coef"]))
    assert s.loc["age", "p"] < 1e-6
    assert fg.print_summary() is None
    assert "frail" in capsys.readouterr().out
    d = fg.to_dict()
    assert d["n_events"] == int((data["status"] == 1).sum())
    assert d["coefficients"][0]["covariate"] == "age"


def test_formula_equals_columns(data):
    a = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, covariates=COVS)
    b = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, formula="age + frail + imd")
    np.testing.assert_allclose(a.params_, b.params_[COVS], atol=1e-12)
    c = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, formula="age + C(imd_group)")
    assert len(c.params_) == 3


def test_singleton_clusters_reproduce_crr_variance(data):
    base = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, covariates=COVS)
    single = FineGrayFitter().fit(data.assign(cl=np.arange(len(data))), "time", "status", event_of_interest=1,
                                  covariates=COVS, cluster_col="cl")
    np.testing.assert_allclose(single.standard_errors_, base.standard_errors_, rtol=1e-12)
    clustered = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, covariates=COVS,
                                     cluster_col="practice_id")
    np.testing.assert_allclose(clustered.params_, base.params_, atol=1e-12)
    assert clustered.n_clusters_ == data["practice_id"].nunique()
    assert not np.allclose(clustered.standard_errors_, base.standard_errors_, rtol=1e-3)


def test_row_order_and_event_codes_do_not_matter(data):
    a = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, covariates=COVS)
    shuffled = data.sample(frac=1.0, random_state=3)
    recoded = shuffled.assign(status=shuffled["status"].map({0: "cens", 1: "adm", 2: "death"}))
    b = FineGrayFitter().fit(recoded, "time", "status", event_of_interest="adm",
                             censor_code="cens", covariates=COVS)
    np.testing.assert_allclose(a.params_, b.params_, atol=1e-10)
    np.testing.assert_allclose(a.standard_errors_, b.standard_errors_, rtol=1e-10)


def test_input_errors(data):
    with pytest.raises(InputError, match="time"):
        FineGrayFitter().fit(data.assign(time=data["time"].where(data.index != 4)), "time",
                             "status", event_of_interest=1, covariates=COVS)
    with pytest.raises(InputError, match="non-negative"):
        FineGrayFitter().fit(data.assign(time=-data["time"]), "time", "status", event_of_interest=1,
                             covariates=COVS)
    with pytest.raises(EstimationError):
        FineGrayFitter().fit(data, "time", "status", event_of_interest=7, covariates=COVS)
    with pytest.raises(EstimationError, match="singular"):
        FineGrayFitter().fit(data.assign(k=1.0), "time", "status", event_of_interest=1, covariates=["age", "k"])


def test_plot_returns_axes(data):
    fg = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, covariates=COVS)
    ax = fg.plot()
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == COVS


def test_recovers_known_shr_in_large_sample():
    truth = np.log(0.8)
    df = simulate_fine_gray(50_000, beta=(truth, 0.5), seed=1)
    fg = FineGrayFitter().fit(df, "time", "event", event_of_interest=1)
    se = fg.standard_errors_["treated"]
    assert abs(fg.params_["treated"] - truth) < 4 * se
    assert abs(fg.params_["x"] - 0.5) < 4 * fg.standard_errors_["x"]
    assert se < 0.02


@pytest.mark.slow
def test_interval_coverage_over_replications():
    """95% intervals for a true SHR of 0.8 cover about 95% of the time (1,000 samples of 500)."""
    truth = np.log(0.8)
    reps = 1000
    est, se, covered = np.empty(reps), np.empty(reps), np.empty(reps, bool)
    for r in range(reps):
        fg = FineGrayFitter().fit(simulate_fine_gray(500, beta=(truth, 0.5), seed=10_000 + r),
                                  "time", "event", event_of_interest=1)
        est[r], se[r] = fg.params_["treated"], fg.standard_errors_["treated"]
        lo, hi = fg.confidence_intervals_.loc["treated"]
        covered[r] = lo <= truth <= hi
    # Monte Carlo standard error of a 95% coverage over 1,000 samples is 0.7 points
    assert 0.93 <= covered.mean() <= 0.97
    assert abs(est.mean() - truth) < 0.02
    assert se.mean() / est.std() == pytest.approx(1.0, abs=0.1)


def test_prediction_with_formula_keeps_category_levels(data):
    fg = FineGrayFitter().fit(data, "time", "status", event_of_interest=1, formula="age + C(imd_group)")
    one = pd.DataFrame({"age": [0.5], "imd_group": ["low"]}, index=["p"])
    pred = fg.predict_cumulative_incidence(one, [1.0, 2.0])
    x = np.array([0.5, 1.0, 0.0])  # levels sorted: high (reference), low, mid
    assert list(fg.params_.index) == ["age", "C(imd_group)[T.low]", "C(imd_group)[T.mid]"]
    base = fg.baseline_cumulative_hazard_.iloc[:, 0]
    lam = base[base.index <= 2.0].iloc[-1]
    assert pred.loc[2.0, "p"] == pytest.approx(1 - np.exp(-np.exp(x @ fg.params_) * lam))


def test_without_competing_events_equals_cox_with_lin_wei_variance():
    """No competing events and no tied times: Fine-Gray is the Cox model and its
    variance the Lin-Wei robust sandwich (psi vanishes)."""
    from phm_eval.survival import RobustCoxPHFitter

    rng = np.random.default_rng(4)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.integers(0, 2, n).astype(float)})
    df["time"] = rng.exponential(np.exp(-0.4 * df["x"] + 0.3 * df["z"]))
    df["event"] = (rng.uniform(size=n) < 0.7).astype(int)
    fg = FineGrayFitter().fit(df, "time", "event", event_of_interest=1, covariates=["x", "z"])
    cox = RobustCoxPHFitter().fit(df, "time", "event", covariates=["x", "z"], robust=True)
    np.testing.assert_allclose(fg.params_, cox.params_, atol=1e-7)
    np.testing.assert_allclose(fg.standard_errors_, cox.standard_errors_, rtol=1e-6)
