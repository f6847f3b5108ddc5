"""Leave-one-cluster-out jackknife of the rate models against R glm refits (fixtures).

``tests/fixtures/survival/jackknife.R`` refits R's ``glm`` without each cluster on three real
R datasets (MASS::epil, clustered on the patient; MASS::quine; MASS::Insurance) and writes
the jackknife standard errors, ``(G - 1) / G * sum_g (b_g - mean b)^2`` (sandwich::vcovJK's
``center = "mean"``); the negative binomial's refits keep theta at glm.nb's estimate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import EstimationError, ParameterError
from phm_eval.survival import NegativeBinomialRateModel
from phm_eval.survival.jackknife import cluster_jackknife
from phm_eval.survival.rates import PoissonRateModel

FIX = Path(__file__).parent / "fixtures" / "survival"


def _case(name: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    data = pd.read_csv(FIX / f"jackknife_{name}_data.csv")
    ref = pd.read_csv(FIX / f"jackknife_{name}.csv").set_index("term")
    covariates = [c for c in data.columns if c not in ("y", "person_time", "cluster")]
    return data, ref, covariates


@pytest.mark.r_fixture
@pytest.mark.parametrize("name", ["epil", "quine"])
def test_negative_binomial_jackknife_matches_r(name):
    data, ref, covariates = _case(name)
    model = NegativeBinomialRateModel(cluster_variance="jackknife").fit(
        data, "y", "person_time", covariates=covariates, cluster_col="cluster")
    assert model.theta_ == pytest.approx(ref["theta"].iloc[0], rel=1e-6)
    np.testing.assert_allclose(model.params_[ref.index], ref["coef_nb"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.standard_errors_[ref.index], ref["se_jack_nb"],
                               rtol=1e-6, atol=0)
    assert model.cov_type_ == "cluster jackknife (CV3J)"
    assert model.n_clusters_ == ref["n_clusters"].iloc[0]


@pytest.mark.r_fixture
@pytest.mark.parametrize("name", ["epil", "quine", "insurance"])
def test_poisson_jackknife_matches_r(name):
    data, ref, covariates = _case(name)
    model = PoissonRateModel(cluster_variance="jackknife").fit(
        data, "y", "person_time", covariates=covariates, cluster_col="cluster")
    np.testing.assert_allclose(model.params_[ref.index], ref["coef_pois"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(model.standard_errors_[ref.index], ref["se_jack_pois"],
                               rtol=1e-6, atol=0)


def test_jackknife_is_larger_than_the_sandwich_with_few_clusters():
    # epil: 59 patients; the sandwich (CV1) is known to be small with few, unequal clusters
    data, _, covariates = _case("epil")
    spec = dict(covariates=covariates, cluster_col="cluster")
    sandwich = NegativeBinomialRateModel().fit(data, "y", "person_time", **spec)
    jack = NegativeBinomialRateModel(cluster_variance="jackknife").fit(
        data, "y", "person_time", **spec)
    np.testing.assert_allclose(jack.params_, sandwich.params_, rtol=0, atol=0)
    assert (jack.standard_errors_ > sandwich.standard_errors_).all()


def test_leave_one_out_estimates_are_exact_refits():
    data, _, covariates = _case("epil")
    model = PoissonRateModel().fit(data, "y", "person_time", covariates=covariates)
    X = np.column_stack([np.ones(len(data)), data[covariates].to_numpy(float)])
    y = data["y"].to_numpy(float)
    offset = np.log(data["person_time"].to_numpy(float))
    groups = pd.factorize(data["cluster"])[0]
    _, loo = cluster_jackknife(X, y, offset, model.params_.to_numpy(), groups)
    for g in (0, 17, 58):
        keep = groups != g
        refit = PoissonRateModel().fit(data[keep], "y", "person_time", covariates=covariates)
        np.testing.assert_allclose(loo[g], refit.params_.to_numpy(), atol=1e-8, rtol=0)


def test_a_cluster_the_model_cannot_lose_is_an_error():
    # the only treated rows are one cluster: without it, "treated" is not identified
    df = pd.DataFrame({"y": [1, 2, 0, 3, 1, 2], "pt": 1.0, "treated": [1, 1, 0, 0, 0, 0],
                       "cl": [0, 0, 1, 1, 2, 2]})
    with pytest.raises(EstimationError, match="not identified without"):
        PoissonRateModel(cluster_variance="jackknife").fit(
            df, "y", "pt", covariates=["treated"], cluster_col="cl")


def test_unknown_cluster_variance_is_a_parameter_error():
    data, _, covariates = _case("quine")
    with pytest.raises(ParameterError, match="cluster_variance"):
        NegativeBinomialRateModel(cluster_variance="bootstrap").fit(
            data, "y", "person_time", covariates=covariates, cluster_col="cluster")


@pytest.mark.parametrize("dispersion", [0.0, 0.8])
def test_many_clusters_expanded_refits_equal_exact_refits(dispersion):
    # Above exact_max clusters the refits come from the third-order expansion of the rest of
    # the data's score (the most influential made exact); they must equal exact refits.
    import statsmodels.api as sm

    rng = np.random.default_rng(7)
    sizes = rng.choice([1, 2, 3, 6], size=700, p=[0.3, 0.4, 0.2, 0.1])
    groups = np.repeat(np.arange(sizes.size), sizes)
    n = groups.size
    X = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=(n, 2))])
    mu = np.exp(-0.3 + 0.4 * X[:, 1] + 0.3 * X[:, 2])
    y = (rng.poisson(mu) if dispersion == 0 else
         rng.negative_binomial(1 / dispersion, 1 / (1 + dispersion * mu))).astype(float)
    offset = np.log(rng.uniform(0.2, 1.0, n))
    # rows in no particular order of cluster, and cluster codes not in order of first row (as
    # pd.factorize of matched-set clusters gives them)
    shuffle = rng.permutation(n)
    X, y, offset = X[shuffle], y[shuffle], offset[shuffle]
    groups = rng.permutation(sizes.size)[groups[shuffle]]
    family = (sm.families.Poisson() if dispersion == 0
              else sm.families.NegativeBinomial(alpha=dispersion))
    params = sm.GLM(y, X, family=family, offset=offset).fit(tol=1e-13).params
    exact, loo_exact = cluster_jackknife(X, y, offset, params, groups, dispersion=dispersion,
                                         exact_max=10_000)
    for exact_max in (0, 50):
        expanded, loo = cluster_jackknife(X, y, offset, params, groups,
                                          dispersion=dispersion, exact_max=exact_max)
        np.testing.assert_allclose(loo, loo_exact, atol=1e-7, rtol=0)
        np.testing.assert_allclose(np.sqrt(np.diag(expanded)), np.sqrt(np.diag(exact)),
                                   rtol=1e-5)
