"""NegativeBinomialRateModel against R MASS::glm.nb and sandwich::vcovCL (fixtures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import InputError, ParameterError
from phm_eval.survival import NegativeBinomialRateModel

matplotlib.use("Agg")

FIX = Path(__file__).parent / "fixtures" / "survival"
COVS = ["age", "frail", "imd"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "competing_risks.csv")


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return pd.read_csv(FIX / "glmnb_coef.csv").set_index("term").rename(
        index={"(Intercept)": "Intercept"})


@pytest.mark.r_fixture
def test_coefficients_se_and_theta_match_glm_nb(data, ref):
    res = NegativeBinomialRateModel().fit(data, "admissions", "person_years", covariates=COVS)
    terms = ["Intercept"] + COVS
    np.testing.assert_allclose(res.params[terms], ref["coef"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(res.params[terms], ref["coef"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(res.bse[terms], ref["se"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(res.bse[terms], ref["se"], atol=1e-7, rtol=0)
    assert res.theta == pytest.approx(ref["theta"].iloc[0], rel=1e-6)
    assert 2 * res.log_likelihood == pytest.approx(ref["twologlik"].iloc[0], abs=1e-6)
    assert res.cov_type == "model-based"


@pytest.mark.r_fixture
@pytest.mark.parametrize("correction, column", [(True, "se_cluster_hc1"),
                                                (False, "se_cluster_hc0")])
def test_cluster_robust_se_matches_vcovcl(data, ref, correction, column):
    res = NegativeBinomialRateModel(cluster_correction=correction).fit(
        data, "admissions", "person_years", covariates=COVS, cluster_col="practice_id")
    terms = ["Intercept"] + COVS
    np.testing.assert_allclose(res.bse[terms], ref[column], atol=1e-7, rtol=0)
    assert res.n_clusters == data["practice_id"].nunique()


def test_rate_ratio_summary_and_formula(data, capsys):
    res = NegativeBinomialRateModel(alpha=0.1).fit(data, "admissions", "person_years",
                                                   formula="age + frail + imd")
    rr = res.rate_ratio("frail")
    assert rr["rate_ratio"] == pytest.approx(np.exp(res.params["frail"]))
    z = 1.6448536269514722
    assert rr["upper"] == pytest.approx(np.exp(res.params["frail"] + z * res.bse["frail"]))
    assert rr["lower"] < rr["rate_ratio"] < rr["upper"]
    assert "exp(coef) lower 90%" in res.summary.columns
    assert "exp(coef) lower 90%" in res.summary().columns  # the former spelling
    res.print_summary()
    assert "theta" in capsys.readouterr().out
    assert res.to_dict()["coefficients"][1]["covariate"] == "age"
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == COVS


def test_recovers_known_rate_ratio():
    rng = np.random.default_rng(2)
    n = 20_000
    treated = rng.integers(0, 2, n)
    pt = rng.uniform(0.2, 2.0, n)
    mu = pt * np.exp(-2.0 + np.log(0.75) * treated)
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # theta = 2, alpha = 0.5
    df = pd.DataFrame({"y": y, "pt": pt, "treated": treated})
    res = NegativeBinomialRateModel().fit(df, "y", "pt", covariates=["treated"])
    assert abs(res.params["treated"] - np.log(0.75)) < 4 * res.bse["treated"]
    assert res.dispersion_ == pytest.approx(0.5, abs=4 * res.dispersion_se_)
    assert res.alpha == 0.05  # alpha is one minus the confidence level, never the dispersion


def test_input_errors(data):
    with pytest.raises(InputError, match="person-time"):
        NegativeBinomialRateModel().fit(data.assign(person_years=0.0), "admissions",
                                        "person_years", covariates=COVS)
    with pytest.raises(InputError, match="non-negative integers"):
        NegativeBinomialRateModel().fit(data.assign(admissions=data["admissions"] + 0.5),
                                        "admissions", "person_years", covariates=COVS)
    res = NegativeBinomialRateModel().fit(data, "admissions", "person_years", covariates=COVS)
    with pytest.raises(ParameterError, match="term"):
        res.rate_ratio("nope")
