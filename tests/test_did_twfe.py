"""TWFE, TWFE event study and 2x2 DiD against statsmodels and known truths."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from phm_eval.did import att_gt  # noqa: E402
from phm_eval.did.twfe import did_2x2, event_study_twfe, twfe  # noqa: E402
from phm_eval.errors import EstimationError, InputError  # noqa: E402


def staggered(n=300, periods=6, seed=0, dynamic=True, unbalanced=False):
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 3, 4, 5], size=n, p=[0.4, 0.2, 0.2, 0.2])
    x = rng.normal(size=n)
    t = np.arange(1, periods + 1)
    y = (rng.normal(size=n)[:, None] + 0.3 * t + rng.normal(size=(n, periods))
         + 0.2 * x[:, None] * rng.normal(size=(1, periods)))
    e = t[None, :] - g[:, None]
    effect = (1.0 + 0.8 * e + 0.5 * (5 - g[:, None])) if dynamic else np.full_like(y, 2.0)
    y += np.where((g[:, None] > 0) & (e >= 0), effect, 0.0)
    df = pd.DataFrame({"id": np.repeat(np.arange(n), periods), "t": np.tile(t, n),
                       "y": y.ravel(), "g": np.repeat(g, periods),
                       "x": (np.repeat(x, periods) + 0.1 * rng.normal(size=n * periods)),
                       "region": np.repeat(np.arange(n) % 15, periods)})
    if unbalanced:
        df = df.sample(frac=0.85, random_state=seed).sort_values(["id", "t"])
    return df


def _dummy_ols(df, regressors, cluster):
    """OLS with explicit unit and period dummies (the textbook TWFE)."""
    units = pd.get_dummies(df["id"], dtype=float).to_numpy()
    periods = pd.get_dummies(df["t"], dtype=float).to_numpy()[:, 1:]
    X = np.column_stack([df[regressors].to_numpy(float), units, periods])
    # one BLAS thread: threaded SVDs of small matrices stall on a busy machine
    with threadpool_limits(1):
        return sm.OLS(df["y"].to_numpy(), X).fit(cov_type="cluster",
                                                  cov_kwds={"groups": df[cluster].to_numpy()})


@pytest.mark.parametrize("unbalanced", [False, True])
def test_twfe_matches_dummy_regression(unbalanced):
    df = staggered(n=120, unbalanced=unbalanced)
    df["D"] = ((df["g"] > 0) & (df["t"] >= df["g"])).astype(float)
    res = twfe(df, "y", "t", "id", "g", xformla="~ x", clustervars="region")
    ols = _dummy_ols(df, ["D", "x"], "region")
    np.testing.assert_allclose(res.coef, ols.params[:2], rtol=1e-9)
    # units are nested in regions: the absorbed unit effects do not count in K
    n, k_all = len(df), len(ols.params)
    k_nested = 2 + df["t"].nunique()
    factor = np.sqrt((n - k_all) / (n - k_nested))
    np.testing.assert_allclose(res.se, ols.bse[:2] * factor, rtol=1e-8)
    assert res.n_clusters == 15
    assert list(res.summary()["term"]) == ["treated", "x"]


def test_event_study_matches_dummy_regression():
    df = staggered(n=120)
    res = event_study_twfe(df, "y", "t", "id", "g", min_e=-3, max_e=2)
    e = (df["t"] - df["g"]).where(df["g"] > 0)
    e = e.clip(lower=-3, upper=2)
    names = []
    for k in res.event_times:
        name = f"e_{'m' if k < 0 else ''}{abs(int(k))}"
        df[name] = (e == k).astype(float)
        names.append(name)
    ols = _dummy_ols(df, names, "id")
    np.testing.assert_allclose(res.coef, ols.params[:len(names)], rtol=1e-8, atol=1e-10)
    assert -1 not in res.event_times
    ax = res.plot()
    assert len(ax.lines) >= 1


def test_twfe_is_biased_under_heterogeneous_staggered_effects_but_att_gt_is_not():
    df = staggered(n=4000, seed=3, dynamic=True)
    g, t = df["g"], df["t"]
    truth = np.mean([1.0 + 0.8 * (tt - gg) + 0.5 * (5 - gg)
                     for gg, tt in zip(g, t, strict=True) if gg > 0 and tt >= gg])
    tw = twfe(df, "y", "t", "id", "g")
    assert abs(tw.coef[0] - truth) > 5 * tw.se[0]
    cs = att_gt(df, "y", "t", "id", "g", bstrap=False).aggregate("simple")
    assert abs(cs.overall_att - truth) < 3 * cs.overall_se
    # with a constant effect TWFE is fine
    flat = staggered(n=4000, seed=3, dynamic=False)
    tw2 = twfe(flat, "y", "t", "id", "g")
    assert abs(tw2.coef[0] - 2.0) < 3 * tw2.se[0]


def test_two_by_two():
    df = staggered(n=500, seed=5)
    two = df[df["g"].isin([0, 4])].assign(treated=lambda d: (d["g"] == 4).astype(int))
    res = did_2x2(two, "y", "t", "id", "treated", pre=3, post=5)
    wide = two.pivot(index="id", columns="t", values="y")
    dy = wide[5] - wide[3]
    tr = two.drop_duplicates("id").set_index("id")["treated"].loc[wide.index]
    assert res.coef[0] == pytest.approx(dy[tr == 1].mean() - dy[tr == 0].mean(), abs=1e-12)
    ols = smf.ols("dy ~ tr", data=pd.DataFrame({"dy": dy, "tr": tr})).fit(cov_type="HC0")
    assert res.se[0] == pytest.approx(ols.bse["tr"], rel=1e-10)
    cs = att_gt(two.drop(columns="treated"), "y", "t", "id", "g", bstrap=False)
    cell = (cs.group == 4) & (cs.time == 5)
    assert res.coef[0] == pytest.approx(cs.att[cell][0], abs=1e-12)
    with pytest.raises(InputError, match="both be present"):
        did_2x2(two, "y", "t", "id", "treated", pre=3, post=9)


def test_errors():
    df = staggered()
    with pytest.raises(InputError):
        twfe(df, "nosuch", "t", "id", "g")
    with pytest.raises(EstimationError, match="absorbed"):
        twfe(df.assign(z=df["id"] * 1.0), "y", "t", "id", "g", xformla="~ z")
