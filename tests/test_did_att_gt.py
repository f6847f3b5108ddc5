"""att_gt behaviour: input checks, data layouts, bootstrap, results objects."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from phm_eval.did import att_gt  # noqa: E402
from phm_eval.errors import ConfigError, EstimationError, InputError  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "did"
ARGS = dict(yname="y", tname="period", idname="id", gname="first_treated")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(FIX / "panel.csv")


def fit(df, **kw):
    opts = dict(ARGS, bstrap=False)
    opts.update(kw)
    return att_gt(df, **opts)


# ----------------------------------------------------------------------------- inputs
def test_missing_column(panel):
    with pytest.raises(InputError, match="required column is missing") as err:
        fit(panel.drop(columns="y"))
    assert err.value.column == "y"
    with pytest.raises(InputError, match="not in the data"):
        fit(panel, xformla="~ nosuch")


def test_non_numeric_or_fractional_periods(panel):
    with pytest.raises(InputError, match="time variable must be numeric"):
        fit(panel.assign(period=panel["period"].map(lambda v: f"p{v}")))
    with pytest.raises(InputError, match="whole numbers"):
        fit(panel.assign(period=panel["period"] + 0.5))


def test_group_must_be_constant_within_unit(panel):
    bad = panel.copy()
    bad.loc[(bad["id"] == 5) & (bad["period"] == 2), "first_treated"] = 4
    bad.loc[(bad["id"] == 5) & (bad["period"] != 2), "first_treated"] = 0
    with pytest.raises(InputError, match="same in every period") as err:
        fit(bad)
    assert err.value.keys == ["5"]
    # the general (unsorted) path reports it too
    with pytest.raises(InputError, match="same in every period"):
        fit(bad.sample(frac=1, random_state=1))


def test_duplicate_unit_periods(panel):
    dup = pd.concat([panel, panel.iloc[[10]]])
    with pytest.raises(InputError, match="at most once per period"):
        fit(dup)


def test_no_never_treated_units(panel):
    treated = panel[panel["first_treated"] > 0]
    with pytest.raises(EstimationError, match="no never-treated units"):
        fit(treated)
    # not-yet-treated comparisons still work: periods from the last cohort's start are
    # dropped and the last cohort only serves as a comparison group (as R's did)
    res = fit(treated, control_group="notyettreated")
    assert set(res.group) == {3.0, 4.0}
    assert res.time.max() == 4
    assert any("no not-yet-treated" in f[0] for f in res.data.flow)


def test_tiny_never_treated_group(panel):
    never = panel.loc[panel["first_treated"] == 0, "id"].unique()[:4]
    small = panel[(panel["first_treated"] > 0) | panel["id"].isin(never)]
    assert small.loc[small["first_treated"] == 0, "id"].nunique() < 6
    with pytest.raises(EstimationError, match="too few to serve"):
        fit(small)


def test_bad_arguments(panel):
    for kw in (dict(est_method="ols"), dict(control_group="all"), dict(base_period="x"),
               dict(anticipation=-1), dict(alp=1.5), dict(biters=0),
               dict(multiplier="normal")):
        with pytest.raises(ConfigError):
            fit(panel, **kw)


def test_weights_checked(panel):
    with pytest.raises(InputError, match="non-negative"):
        fit(panel.assign(w=-panel["w"]), weightsname="w")
    with pytest.raises(InputError, match="constant within a unit"):
        fit(panel.assign(w=panel["w"] + panel["period"]), weightsname="w")


def test_formula_terms(panel):
    simple = fit(panel, xformla="~ x")
    same = fit(panel, xformla="x")
    np.testing.assert_array_equal(simple.att, same.att)
    quad = fit(panel, xformla="~ x + I(x**2)")
    assert quad.data.covariate_names[-1] == "I(x ** 2)"
    assert not np.allclose(quad.att, simple.att)


# ----------------------------------------------------------------------------- layouts
def test_row_order_does_not_matter(panel):
    ref = fit(panel, xformla="~ x")
    shuffled = fit(panel.sample(frac=1, random_state=3), xformla="~ x")
    np.testing.assert_allclose(shuffled.att, ref.att, atol=1e-12)
    np.testing.assert_allclose(shuffled.se, ref.se, rtol=1e-10)


def test_cohort_sort_paths_agree():
    """Units already in cohort order (no sort) and in id order (counting sort in two
    halves) give the same estimates and SEs; the result can be pickled."""
    rng = np.random.default_rng(8)
    n, T = 60_000, 5
    g = np.sort(rng.choice([0, 3, 4], size=n))  # cohort order
    t = np.arange(1, T + 1)
    y = rng.normal(size=(n, T)) + 0.1 * t + np.where((g[:, None] > 0) & (t >= g[:, None]),
                                                      0.5, 0.0)
    def frame(ids):
        order = np.argsort(ids)
        return pd.DataFrame({"id": np.repeat(ids[order], T), "period": np.tile(t, n),
                             "y": y[order].ravel(), "first_treated": np.repeat(g[order], T)})

    in_order = fit(frame(np.arange(n)))
    ids = rng.permutation(n)
    shuffled = fit(frame(ids))
    # influence-function rows map back to the input's unit ids and cohorts
    cohort_of = dict(zip(ids, g, strict=True))
    unit_ids = shuffled.data.unit_ids
    assert sorted(unit_ids) == list(range(n))
    assert all(cohort_of[u] == c for u, c in
               zip(unit_ids[::997], shuffled.data.unit_cohort[::997], strict=True))
    np.testing.assert_allclose(shuffled.att, in_order.att, atol=1e-12)
    np.testing.assert_allclose(shuffled.se, in_order.se, rtol=1e-10)
    a, b = in_order.aggregate("simple"), shuffled.aggregate("simple")
    assert b.overall_se == pytest.approx(a.overall_se, rel=1e-10)
    import pickle

    again = pickle.loads(pickle.dumps(fit(frame(ids))))
    np.testing.assert_array_equal(again.data.unit_ids, unit_ids)


def test_units_missing_periods_are_dropped(panel):
    holes = panel[~((panel["id"] <= 30) & (panel["period"] == 2))]
    res = fit(holes)
    assert res.n == panel["id"].nunique() - 30
    assert ("dropped units missing some periods", 30,
            "balanced panel required (allow_unbalanced_panel=False)") in res.data.flow
    # the unbalanced estimator keeps them
    assert fit(holes, allow_unbalanced_panel=True).n == panel["id"].nunique()


def test_missing_outcomes_are_dropped_and_counted(panel):
    gaps = panel.copy()
    gaps.loc[gaps.index[:5], "y"] = np.nan
    res = fit(gaps)
    assert ("dropped rows with missing values", 5, "missing or non-finite") in res.data.flow
    assert res.n == panel["id"].nunique() - 1


def test_improved_dr_runs_and_agrees_without_covariates(panel):
    a = fit(panel, est_method="dr_imp")
    b = fit(panel, est_method="dr")
    np.testing.assert_allclose(a.att, b.att, atol=1e-12)
    c = fit(panel, est_method="dr_imp", xformla="~ x")
    d = fit(panel, est_method="dr", xformla="~ x")
    post = c.post
    # both are consistent for the same ATT(g,t)
    assert np.max(np.abs(c.att[post] - d.att[post]) / d.se[post]) < 0.5


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_se_close_to_analytic_and_clustering(panel):
    analytic = fit(panel, xformla="~ x")
    boot = fit(panel, xformla="~ x", bstrap=True, biters=999, seed=11)
    np.testing.assert_allclose(boot.se, analytic.se, rtol=0.12)
    assert boot.crit_val > 1.96
    mammen = fit(panel, xformla="~ x", bstrap=True, biters=999, seed=11, multiplier="mammen")
    np.testing.assert_allclose(mammen.se, analytic.se, rtol=0.12)
    cl_analytic = fit(panel, xformla="~ x", clustervars="cluster")
    cl_boot = fit(panel, xformla="~ x", clustervars=["id", "cluster"], bstrap=True,
                  biters=999, seed=11)
    assert cl_boot.n_eff == 37
    np.testing.assert_allclose(cl_boot.se, cl_analytic.se, rtol=0.25)
    assert cl_boot.wald_stat is None  # R's did does not report it with bootstrap clustering


@pytest.mark.parametrize("kw", [dict(weightsname="w"), dict(clustervars="cluster"), {}])
def test_bootstrap_without_covariates(panel, kw):
    """No-covariate influence functions are stored factored; the bootstrap uses them."""
    analytic = fit(panel, **kw)
    boot = fit(panel, bstrap=True, biters=999, seed=3, **kw)
    np.testing.assert_allclose(boot.se, analytic.se, rtol=0.15 if kw else 0.12)
    es_a, es_b = analytic.aggregate("dynamic"), boot.aggregate("dynamic")
    np.testing.assert_allclose(es_b.se_egt, es_a.se_egt, rtol=0.2, equal_nan=True)
    assert es_b.overall_se == pytest.approx(es_a.overall_se, rel=0.15)


@pytest.mark.parametrize("kw", [{}, dict(weightsname="w")])
def test_bootstrap_does_not_depend_on_the_outcome_level(panel, kw):
    """Adding a constant to the outcome changes no estimate or influence function; the
    single-precision bootstrap must not let the level in (costs run to thousands)."""
    base = fit(panel, bstrap=True, biters=999, seed=4, **kw)
    shifted = fit(panel.assign(y=panel["y"] + 1e5), bstrap=True, biters=999, seed=4, **kw)
    np.testing.assert_allclose(shifted.att, base.att, atol=1e-8)
    np.testing.assert_allclose(shifted.se, base.se, rtol=1e-4)
    assert shifted.crit_val == pytest.approx(base.crit_val, rel=1e-3)


def test_bootstrap_draws_do_not_depend_on_threads(panel):
    from phm_eval.did.bootstrap import multiplier_sums

    rng = np.random.default_rng(0)
    blocks = [(np.arange(3000), np.array([0, 2]), rng.normal(size=(3000, 2)), None),
              (np.arange(5000), np.array([1, 2]), rng.normal(size=(5000, 2)), None)]
    one = multiplier_sums(blocks, 8000, 3, 300, np.random.default_rng(5), n_threads=1,
                          tile_rows=1024)
    two = multiplier_sums(blocks, 8000, 3, 300, np.random.default_rng(5), n_threads=2,
                          tile_rows=1024)
    np.testing.assert_allclose(one, two, rtol=1e-6)
    # Rademacher sums have mean 0 and covariance M'M
    M = np.zeros((8000, 3))
    M[:3000][:, [0, 2]] = blocks[0][2]
    M[3000:][:, [1, 2]] = blocks[1][2]
    var = np.diag(M.T @ M)
    np.testing.assert_allclose(one.var(axis=0), var, rtol=0.25)
    assert np.all(np.abs(one.mean(axis=0)) < 4 * np.sqrt(var / len(one)))


# ----------------------------------------------------------------------------- results
def test_summary_dict_and_plots(panel):
    res = fit(panel, xformla="~ x", bstrap=True, biters=200, seed=1)
    s = res.summary()
    assert list(s.columns[:6]) == ["group", "time", "att", "se", "ci_low", "ci_high"]
    np.testing.assert_allclose(s["ci_high"] - s["att"], res.crit_val * s["se"])
    d = res.to_dict()
    json.dumps(d)
    assert len(d["cells"]) == len(res.att)
    assert res.pretest()["df"] == int(np.sum(res.group > res.time))
    ax = res.plot()
    assert len(ax.containers) == 2 * 3  # pre and post series for each cohort
    es = res.aggregate("dynamic")
    assert es.summary()["term"].tolist()[0] == "overall"
    assert len(es.plot().containers) == 2
    assert len(res.aggregate("simple").plot().containers) == 1
    json.dumps(es.to_dict())
    assert es.influence.shape == (res.n,)
    # the aggregated influence function reproduces the analytic standard error
    an = fit(panel, xformla="~ x").aggregate("dynamic")
    assert np.sqrt(np.sum(an.influence**2)) / res.n == pytest.approx(an.overall_se, rel=1e-12)


def test_influence_function_layout(panel):
    res = fit(panel, xformla="~ x")
    psi = res.influence_function()
    assert psi.shape == (res.n, len(res.att))
    np.testing.assert_allclose(np.sqrt((psi**2).sum(axis=0)) / res.n, res.se, rtol=1e-12)
    V = res.V
    np.testing.assert_allclose(np.sqrt(np.diag(V) / res.n), res.se, rtol=1e-12)


def test_pretest_excluding_anticipation_periods():
    """An effect that starts one period early (allowed by anticipation=1) makes R's pre-test,
    which includes that period, reject; the test over earlier periods does not."""
    rng = np.random.default_rng(12)
    n, T = 4000, 6
    g = rng.choice([0, 4, 5], size=n)
    t = np.arange(1, T + 1)
    y = rng.normal(size=(n, 1)) + 0.2 * t + rng.normal(size=(n, T))
    y += np.where((g[:, None] > 0) & (t[None, :] >= g[:, None] - 1), 1.0, 0.0)
    df = pd.DataFrame({"id": np.repeat(np.arange(n), T), "period": np.tile(t, n),
                       "y": y.ravel(), "first_treated": np.repeat(g, T)})
    res = fit(df, anticipation=1, base_period="universal")
    assert res.pretest()["pvalue"] < 1e-6
    clean = res.pretest(exclude_anticipation=True)
    assert clean["pvalue"] > 0.001
    # the statistic is the Wald form over the cells before the anticipation period
    pre = np.flatnonzero((res.group - 1 > res.time) & np.isfinite(res.se))
    assert clean["df"] == len(pre)
    b = res.att[pre]
    V = res.covariance(pre)
    assert clean["statistic"] == pytest.approx(res.n * b @ np.linalg.solve(V, b), rel=1e-10)
    # without anticipation both are R's test
    plain = fit(df)
    assert plain.pretest(exclude_anticipation=True) == plain.pretest()
