"""RobustCoxPHFitter(strata=) against R survival::coxph(... + strata() + cluster()).

Fixtures (``tests/fixtures/survival/cox_strata.R``) come from real data sets shipped
with R's survival package:

- ``colon``: recurrence and death strata (``etype``), two rows per patient clustered
  on ``id``; 920 events at 788 distinct (stratum, day) times.
- ``bladder``: the Wei-Lin-Weissfeld model, strata on recurrence number, clustered on
  patient; 112 events at 68 distinct (stratum, month) times (heavily tied).
- ``lung``: two stratum columns (sex by ECOG score, one stratum a single row), plain
  robust (per-row) variance without clusters.
- ``retinopathy``: matched pairs (two eyes per patient, one treated), 197 strata,
  robust variance without clusters.
- ``rats``: character strata (sex), clustered on litter.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import InputError, ParameterError
from phm_eval.survival import RobustCoxPHFitter

matplotlib.use("Agg")

FIX = Path(__file__).parent / "fixtures" / "survival"

# tag: duration, event, covariates, strata, cluster
MODELS = {
    "colon": ("time", "status", ["rx_lev", "rx_lev5fu", "sex", "age", "obstruct", "node4"],
              "etype", "id"),
    "bladder": ("stop", "event", ["rx", "size", "number"], "enum", "id"),
    "lung": ("time", "status", ["age", "wt_loss", "ph_karno"], ["sex", "ph_ecog"], None),
    "retinopathy": ("futime", "status", ["trt", "risk"], "id", None),
    "rats": ("time", "status", ["rx"], "sex", "litter"),
}


def _data(tag: str) -> pd.DataFrame:
    return pd.read_csv(FIX / f"coxstrata_{tag}_data.csv")


def _ref(tag: str) -> pd.DataFrame:
    return pd.read_csv(FIX / f"coxstrata_{tag}_coef.csv").set_index("term")


def _fit(tag: str, data: pd.DataFrame | None = None, **kwargs) -> RobustCoxPHFitter:
    duration, event, covs, strata, cluster = MODELS[tag]
    options = {"covariates": covs, "strata": strata, "cluster_col": cluster, "robust": True}
    options.update(kwargs)
    return RobustCoxPHFitter().fit(_data(tag) if data is None else data, duration, event,
                                   **options)


class _Fits(dict):
    """Each model fitted on first use, so one failing data set fails only its tests."""

    def __missing__(self, tag: str) -> RobustCoxPHFitter:
        self[tag] = _fit(tag)
        return self[tag]


@pytest.fixture(scope="module")
def fits() -> dict[str, RobustCoxPHFitter]:
    return _Fits()


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag", list(MODELS))
def test_coefficients_robust_and_naive_se_match_coxph(fits, tag):
    fit, ref = fits[tag], _ref(tag)
    covs = MODELS[tag][2]
    assert list(fit.params_.index) == covs == list(ref.index)
    np.testing.assert_allclose(fit.params_, ref["coef"], atol=1e-6, rtol=0)
    # R's default stopping rule (eps = 1e-9 on the log-likelihood) leaves its
    # coefficients up to 2e-9 from the optimum; the tight refit agrees far closer
    np.testing.assert_allclose(fit.params_, ref["coef_tight"], atol=1e-10, rtol=0)
    np.testing.assert_allclose(fit.standard_errors_, ref["se_robust"], rtol=1e-4)
    np.testing.assert_allclose(fit.standard_errors_, ref["se_robust_tight"], rtol=1e-8)
    np.testing.assert_allclose(fit.naive_standard_errors_, ref["se_naive"], rtol=1e-4)
    var = pd.read_csv(FIX / f"coxstrata_{tag}_var.csv").set_index("term")
    # R stores the variance without dimnames: rows and columns are in model order
    np.testing.assert_allclose(fit.variance_matrix_.to_numpy(), var.to_numpy(),
                               rtol=1e-6, atol=1e-12)


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag", list(MODELS))
def test_log_partial_likelihood_and_counts_match_coxph(fits, tag):
    fit, ref = fits[tag], _ref(tag)
    assert fit.log_likelihood_ == pytest.approx(ref["loglik"].iloc[0], abs=1e-6)
    assert fit.log_likelihood_null_ == pytest.approx(ref["loglik_null"].iloc[0], abs=1e-8)
    assert fit.n_obs_ == ref["n"].iloc[0]
    assert fit.n_events_ == ref["nevent"].iloc[0]
    assert fit.n_strata_ == ref["nstrata"].iloc[0]
    assert fit.n_clusters_ == (None if MODELS[tag][4] is None
                               else _data(tag)[MODELS[tag][4]].nunique())


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag", list(MODELS))
def test_summary_table_matches_summary_coxph(fits, tag):
    """summary(fit): exp(coef), robust se, z, Pr(>|z|) and the 95% limits of exp(coef)."""
    table, ref = fits[tag].summary, _ref(tag)
    np.testing.assert_allclose(table["exp(coef)"], ref["exp_coef"], rtol=1e-6)
    np.testing.assert_allclose(table["se(coef)"], ref["se_robust"], rtol=1e-4)
    np.testing.assert_allclose(table["z"], ref["z"], rtol=1e-4)
    np.testing.assert_allclose(table["p"], ref["p"], rtol=1e-3)
    np.testing.assert_allclose(table["exp(coef) lower 95%"], ref["exp_lower95"], rtol=1e-4)
    np.testing.assert_allclose(table["exp(coef) upper 95%"], ref["exp_upper95"], rtol=1e-4)


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag", ["colon", "bladder"])
@pytest.mark.parametrize("transform", ["km", "identity", "rank", "log"])
def test_stratified_proportional_hazards_test_matches_cox_zph(fits, tag, transform):
    ref = pd.read_csv(FIX / f"coxstrata_{tag}_zph.csv")
    ref = ref[ref["transform"] == transform].set_index("term")
    ours = fits[tag].check_proportional_hazards(transform)
    # bladder: R's coefficients are 2e-9 from the optimum, which moves the chi-squares ~1e-7
    np.testing.assert_allclose(ours["chisq"], ref["chisq"], rtol=1e-6)
    np.testing.assert_allclose(ours["p"], ref["p"], rtol=1e-5)
    assert list(ours["df"]) == list(ref["df"])


@pytest.mark.r_fixture
def test_clusters_and_strata_both_matter(fits):
    """Dropping the clusters, or the strata, moves the answer away from R's."""
    ref = _ref("colon")
    per_row = _fit("colon", cluster_col=None)
    assert np.max(np.abs(per_row.standard_errors_ / ref["se_robust"] - 1)) > 0.1
    # the per-row sandwich is R's robust variance without cluster(): naive SEs unchanged
    np.testing.assert_allclose(per_row.naive_standard_errors_, ref["se_naive"], rtol=1e-4)
    unstratified = RobustCoxPHFitter().fit(_data("colon"), "time", "status",
                                           covariates=MODELS["colon"][2], cluster_col="id")
    assert unstratified.lifelines_model_ is not None
    assert np.max(np.abs(unstratified.params_ - ref["coef"])) > 1e-3


def test_matches_lifelines_stratified_fit_with_ties():
    """An independent implementation: lifelines' stratified Efron fit (ties, no clusters).

    Its sandwich ignores ties, so the SEs are compared on tie-free times only.
    """
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.integers(0, 2, n).astype(float),
                       "s": rng.integers(0, 5, n)})
    raw = rng.exponential(np.exp(-0.5 * df["x"] + 0.3 * df["z"] + 0.2 * df["s"]))
    df["event"] = rng.integers(0, 2, n)
    df["time"] = np.ceil(raw * 20)  # about 60 distinct times: many ties within strata
    ll = CoxPHFitter().fit(df, "time", "event", strata=["s"],
                           fit_options={"precision": 1e-12, "r_precision": 1e-15})
    ours = RobustCoxPHFitter().fit(df, "time", "event", strata="s")
    np.testing.assert_allclose(ours.params_, ll.params_[["x", "z"]], atol=1e-8)
    np.testing.assert_allclose(ours.naive_standard_errors_, ll.standard_errors_[["x", "z"]],
                               rtol=1e-6)
    assert ours.log_likelihood_ == pytest.approx(ll.log_likelihood_, abs=1e-8)

    df["time"] = raw  # distinct times: lifelines' sandwich is then exact
    ll = CoxPHFitter().fit(df, "time", "event", strata=["s"], robust=True,
                           fit_options={"precision": 1e-12, "r_precision": 1e-15})
    ours = RobustCoxPHFitter().fit(df, "time", "event", strata="s", robust=True)
    np.testing.assert_allclose(ours.standard_errors_, ll.standard_errors_[["x", "z"]],
                               rtol=1e-6)


def test_input_order_and_stratum_labels_do_not_matter(fits):
    base = fits["bladder"]
    data = _data("bladder")
    shuffled = data.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["enum"] = shuffled["enum"].map({1: "fourth", 2: "third", 3: "second", 4: "first"})
    again = _fit("bladder", shuffled, strata=["enum"])
    np.testing.assert_allclose(again.params_, base.params_, atol=1e-10)
    np.testing.assert_allclose(again.standard_errors_, base.standard_errors_, rtol=1e-8)
    assert again.log_likelihood_ == pytest.approx(base.log_likelihood_, abs=1e-9)


def test_one_stratum_equals_the_unstratified_fit():
    data = pd.read_csv(FIX / "competing_risks.csv").assign(one="all")
    covs = ["age", "frail", "imd"]
    plain = RobustCoxPHFitter().fit(data, "time", "status", covariates=covs,
                                    cluster_col="practice_id", event_of_interest=1)
    one = RobustCoxPHFitter().fit(data, "time", "status", covariates=covs, strata="one",
                                  cluster_col="practice_id", event_of_interest=1)
    np.testing.assert_allclose(one.params_, plain.params_, atol=1e-9)
    np.testing.assert_allclose(one.standard_errors_, plain.standard_errors_, rtol=1e-7)
    assert one.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-9)
    pd.testing.assert_frame_equal(one.check_proportional_hazards(),
                                  plain.check_proportional_hazards(), rtol=1e-6)


def test_default_covariates_leave_out_strata_and_reporting(fits, capsys):
    data = _data("rats")
    fit = RobustCoxPHFitter().fit(data.drop(columns="litter"), "time", "status", strata="sex")
    assert list(fit.params_.index) == ["rx"]
    assert fit.lifelines_model_ is None
    assert fit.strata == ["sex"] and fit.n_strata_ == 2
    fits["rats"].print_summary()
    text = capsys.readouterr().out
    assert "stratified Cox" in text and "strata = sex (2 strata)" in text and "cluster-robust on 'litter'" in text
    record = fits["lung"].to_dict()
    assert record["strata"] == ["sex", "ph_ecog"] and record["n_strata"] == 7
    assert fits["colon"].plot().get_xscale() == "log"


def test_stratum_input_errors():
    data = _data("rats")
    fit = RobustCoxPHFitter()
    with pytest.raises(ParameterError, match="not found"):
        fit.fit(data, "time", "status", covariates=["rx"], strata="litter_size")
    with pytest.raises(InputError, match="must be present"):
        fit.fit(data.assign(sex=data["sex"].where(data.index != 7)), "time", "status",
                covariates=["rx"], strata="sex")
    with pytest.raises(ParameterError, match="also in covariates"):
        fit.fit(data, "time", "status", covariates=["rx", "sex"], strata="sex")
    with pytest.raises(ParameterError, match="cluster"):
        fit.fit(data, "time", "status", covariates=["rx"], strata="litter", cluster_col="litter")
    with pytest.raises(ParameterError, match="at least one column"):
        fit.fit(data, "time", "status", covariates=["rx"], strata=[])


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
def test_diverging_coefficient_is_reported(caplog):
    """Monotone likelihood (every death has x = 1, before any x = 0 row): R warns."""
    rng = np.random.default_rng(2)
    n = 200
    df = pd.DataFrame({"s": rng.integers(0, 4, n), "z": rng.normal(size=n),
                       "x": rng.integers(0, 2, n).astype(float)})
    df["time"] = np.where(df["x"] == 1, rng.uniform(0, 1, n), rng.uniform(1, 2, n)).round(2)
    df["event"] = (df["x"] == 1).astype(int)
    with caplog.at_level("WARNING", logger="phm_eval.survival.cox"):
        fit = RobustCoxPHFitter().fit(df, "time", "event", covariates=["x", "z"], strata="s")
    assert "converged before x;" in caplog.text
    assert fit.params_["x"] > 10
    caplog.clear()
    with caplog.at_level("WARNING", logger="phm_eval.survival.cox"):
        _fit("rats")
    assert "may be infinite" not in caplog.text
