"""RobustCoxPHFitter against R survival::coxph(cluster=) and cox.zph (committed fixtures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import EstimationError, ParameterError
from phm_eval.survival import RobustCoxPHFitter

matplotlib.use("Agg")

FIX = Path(__file__).parent / "fixtures" / "survival"
COVS = ["age", "frail", "imd"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "competing_risks.csv")


@pytest.fixture(scope="module")
def clustered(data) -> RobustCoxPHFitter:
    return RobustCoxPHFitter().fit(data, "time", "status", covariates=COVS,
                                   cluster_col="practice_id", event_of_interest=1)


@pytest.mark.r_fixture
def test_coefficients_and_cluster_robust_se_match_coxph(clustered):
    ref = pd.read_csv(FIX / "coxph_cluster_coef.csv").set_index("term")
    np.testing.assert_allclose(clustered.params_[COVS], ref["coef"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(clustered.standard_errors_[COVS], ref["se_robust"], atol=1e-4,
                               rtol=0)
    np.testing.assert_allclose(clustered.naive_standard_errors_[COVS], ref["se_naive"],
                               atol=1e-6, rtol=0)
    assert clustered.log_likelihood_ == pytest.approx(ref["loglik"].iloc[0], abs=1e-6)
    var = pd.read_csv(FIX / "coxph_cluster_var.csv").set_index("term")
    # R stores the robust variance without dimnames: rows and columns are in model order
    np.testing.assert_allclose(clustered.variance_matrix_.loc[COVS, COVS], var.to_numpy(),
                               atol=1e-8)


@pytest.mark.r_fixture
def test_per_person_robust_se_matches_coxph(data):
    ref = pd.read_csv(FIX / "coxph_robust_coef.csv").set_index("term")
    fit = RobustCoxPHFitter().fit(data.assign(event1=(data["status"] == 1).astype(int)),
                                  "time", "event1", covariates=COVS, robust=True)
    np.testing.assert_allclose(fit.standard_errors_[COVS], ref["se_robust"], atol=1e-4, rtol=0)


@pytest.mark.r_fixture
def test_lifelines_own_cluster_se_differs_with_ties(data, clustered):
    """The reason for the wrapper: lifelines' sandwich ignores ties (~5e-4 off here)."""
    from lifelines import CoxPHFitter

    df = data.assign(event1=(data["status"] == 1).astype(int))
    ll = CoxPHFitter().fit(df[["time", "event1", "practice_id"] + COVS], "time", "event1",
                           cluster_col="practice_id")
    ref = pd.read_csv(FIX / "coxph_cluster_coef.csv").set_index("term")
    assert np.max(np.abs(ll.standard_errors_[COVS] - ref["se_robust"])) > 3e-4
    assert np.max(np.abs(clustered.standard_errors_[COVS] - ref["se_robust"])) < 1e-8


@pytest.mark.r_fixture
@pytest.mark.parametrize("transform", ["km", "identity", "rank", "log"])
def test_proportional_hazards_test_matches_cox_zph(clustered, transform):
    ref = pd.read_csv(FIX / f"coxzph_{transform}.csv").set_index("term")
    ours = clustered.check_proportional_hazards(transform)
    np.testing.assert_allclose(ours["chisq"], ref["chisq"], rtol=1e-8)
    np.testing.assert_allclose(ours["p"], ref["p"], rtol=1e-7)
    assert list(ours["df"]) == list(ref["df"])


def test_without_ties_matches_lifelines_robust():
    """With distinct times, our sandwich and lifelines' agree (checks the residuals)."""
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(11)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.integers(0, 2, n).astype(float)})
    df["time"] = rng.exponential(np.exp(-0.5 * df["x"]))
    df["event"] = rng.integers(0, 2, n)
    df["cl"] = rng.integers(0, 20, n)
    ll = CoxPHFitter().fit(df, "time", "event", cluster_col="cl")
    ours = RobustCoxPHFitter().fit(df, "time", "event", covariates=["x", "z"], cluster_col="cl")
    np.testing.assert_allclose(ours.standard_errors_, ll.standard_errors_[["x", "z"]], rtol=1e-5)


def test_summary_plot_dict_and_errors(clustered, data, capsys):
    assert clustered.n_clusters_ == data["practice_id"].nunique()
    assert clustered.print_summary() is None
    assert "cluster-robust" in capsys.readouterr().out
    assert clustered.plot().get_xscale() == "log"
    assert clustered.to_dict()["n_events"] == int((data["status"] == 1).sum())
    naive = RobustCoxPHFitter().fit(data, "time", "status", covariates=COVS,
                                    event_of_interest=1)
    np.testing.assert_allclose(naive.standard_errors_, clustered.naive_standard_errors_)
    with pytest.raises(ParameterError, match="transform"):
        clustered.check_proportional_hazards("sqrt")
    with pytest.raises(EstimationError):
        RobustCoxPHFitter().fit(data.assign(status=0), "time", "status", covariates=COVS)
