"""Coverage of att_gt confidence intervals on simulated panels with known effects.

Slow (run with ``pytest -m slow``).  Each replication draws 1,000 units over 6
periods: cohorts first treated in periods 3, 4, 5 and never treated; a
covariate whose mean differs by cohort and that drives outcome trends (so
parallel trends hold only given the covariate); effects that vary by cohort,
event time and covariate.  The true ATT(g,t) is ``tau(g, e) + 0.3 E[x | G=g]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.did import att_gt

N_UNITS, PERIODS = 1000, 6
COHORTS = np.array([0, 3, 4, 5])
SHARES = np.array([0.4, 0.2, 0.2, 0.2])
X_MEAN = {0: 0.0, 3: 0.5, 4: -0.3, 5: 0.2}


def tau(g, e):
    return 1.0 + 0.4 * e + 0.3 * (g - 3)


def true_att(g, t):
    return tau(g, t - g) + 0.3 * X_MEAN[g] if t >= g else 0.0


def simulate(rng: np.random.Generator) -> pd.DataFrame:
    g = rng.choice(COHORTS, size=N_UNITS, p=SHARES)
    x = np.array([X_MEAN[v] for v in g]) + rng.normal(size=N_UNITS)
    t = np.arange(1, PERIODS + 1)
    alpha = rng.normal(size=N_UNITS) + 0.5 * x
    y = alpha[:, None] + 0.2 * t + 0.3 * x[:, None] * t + rng.normal(size=(N_UNITS, PERIODS))
    e = t[None, :] - g[:, None]
    treated = (g[:, None] > 0) & (e >= 0)
    effect = tau(g[:, None], e) + 0.3 * x[:, None] + 0.5 * rng.normal(size=(N_UNITS, 1))
    y = y + np.where(treated, effect, 0.0)
    return pd.DataFrame({"id": np.repeat(np.arange(N_UNITS), PERIODS),
                         "t": np.tile(t, N_UNITS), "y": y.ravel(),
                         "g": np.repeat(g, PERIODS), "x": np.repeat(x, PERIODS)})


def _true_simple(res) -> float:
    """Population analogue of the simple aggregation (cohort-share weights)."""
    post = res.post
    w = np.array([SHARES[list(COHORTS).index(g)] for g in res.group[post]])
    att = np.array([true_att(g, t) for g, t in zip(res.group[post], res.time[post],
                                                   strict=True)])
    return float(np.sum(w * att) / w.sum())


def _true_dynamic(res):
    e_all = res.time - res.group
    out = {}
    for e in np.unique(e_all):
        m = e_all == e
        w = np.array([SHARES[list(COHORTS).index(g)] for g in res.group[m]])
        att = np.array([true_att(g, t) for g, t in zip(res.group[m], res.time[m], strict=True)])
        out[e] = float(np.sum(w * att) / w.sum())
    return out


@pytest.mark.slow
def test_pointwise_intervals_cover_95_percent():
    rng = np.random.default_rng(20240607)
    reps = 1000
    cell_hits, simple_hits, dyn_hits = [], [], []
    for _ in range(reps):
        res = att_gt(simulate(rng), "y", "t", "id", "g", xformla="~ x", est_method="dr",
                     bstrap=False)
        s = res.summary()
        truth = np.array([true_att(g, t) for g, t in zip(s["group"], s["time"], strict=True)])
        cell_hits.append(((s["ci_low"] <= truth) & (truth <= s["ci_high"]))[s["post"]].mean())
        simple = res.aggregate("simple")
        lo, hi = simple.overall_ci
        simple_hits.append(lo <= _true_simple(res) <= hi)
        dyn = res.aggregate("dynamic", cband=False)
        td = _true_dynamic(res)
        z = 1.959963984540054
        dyn_hits.append(np.mean([abs(a - td[e]) <= z * se for e, a, se in
                                 zip(dyn.egt, dyn.att_egt, dyn.se_egt, strict=True) if e >= 0]))
    cells, simple, dyn = np.mean(cell_hits), np.mean(simple_hits), np.mean(dyn_hits)
    print(f"\ncoverage over {reps} replications: ATT(g,t) post cells {cells:.3f}, "
          f"simple ATT {simple:.3f}, event-time effects {dyn:.3f}")
    for c in (cells, simple, dyn):
        assert 0.93 <= c <= 0.97


@pytest.mark.slow
def test_uniform_band_covers_95_percent():
    rng = np.random.default_rng(7)
    reps = 500
    band_hits, cell_hits = [], []
    for r in range(reps):
        res = att_gt(simulate(rng), "y", "t", "id", "g", xformla="~ x", est_method="dr",
                     bstrap=True, biters=999, seed=r)
        dyn = res.aggregate("dynamic")
        td = _true_dynamic(res)
        inside = [abs(a - td[e]) <= dyn.crit_val_egt * se
                  for e, a, se in zip(dyn.egt, dyn.att_egt, dyn.se_egt, strict=True)]
        band_hits.append(all(inside))
        s = res.summary()
        truth = np.array([true_att(g, t) for g, t in zip(s["group"], s["time"], strict=True)])
        cell_hits.append(bool(np.all((s["ci_low"] <= truth) & (truth <= s["ci_high"]))))
    band, cells = np.mean(band_hits), np.mean(cell_hits)
    print(f"\nuniform-band coverage over {reps} replications: event study {band:.3f}, "
          f"all ATT(g,t) {cells:.3f}")
    assert 0.93 <= band <= 0.97
    assert 0.93 <= cells <= 0.97
