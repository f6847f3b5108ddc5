"""2x2 estimators against R's DRDID and against numerical influence functions.

``drdid_results.json`` comes from ``make_drdid_fixtures.R`` (R's DRDID 1.2.3
sourced directly).  Every estimator's ATT and influence function must match,
except the influence function of the repeated cross-section doubly robust
estimator: DRDID's ``drdid_rc`` adds the pre-period outcome-regression terms
where differentiation subtracts them.  There the numerical derivative of the
estimator decides, and it agrees with ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_eval.did.estimators import calibration_fit, logit_fit, panel_2x2, rc_2x2
from phm_eval.errors import EstimationError

FIX = Path(__file__).parent / "fixtures" / "did"
REF = json.loads((FIX / "drdid_results.json").read_text())
METHODS = ("reg", "ipw", "dr", "dr_imp")


@pytest.fixture(scope="module")
def samples():
    df = pd.read_csv(FIX / "panel.csv")
    keep = df["first_treated"].isin([0, 4])
    pre = df[keep & (df["period"] == 3)].reset_index(drop=True)
    post = df[keep & (df["period"] == 5)].reset_index(drop=True)
    panel = dict(dY=(post["y"] - pre["y"]).to_numpy()[:, None],
                 D=(pre["first_treated"] == 4).to_numpy(float),
                 X=np.column_stack([np.ones(len(pre)), pre["x"]]), w=pre["w"].to_numpy())
    rc = pd.concat([pre[pre["id"] % 2 == 1], post[post["id"] % 2 == 0]]).reset_index(drop=True)
    cross = dict(y=rc["y"].to_numpy(), post=(rc["period"] == 5).to_numpy(float),
                 D=(rc["first_treated"] == 4).to_numpy(float),
                 X=np.column_stack([np.ones(len(rc)), rc["x"]]), w=rc["w"].to_numpy())
    return panel, cross


def _panel(s, method, w=None):
    return panel_2x2(s["dY"], s["D"], s["X"], s["w"] if w is None else w, method)


def _rc(s, method, w=None):
    return rc_2x2(s["y"], s["post"], s["D"], s["X"], s["w"] if w is None else w, method)


@pytest.mark.parametrize("method", METHODS)
def test_panel_estimators_match_drdid(samples, method):
    att, psi = _panel(samples[0], method)
    ref = REF["panel"][method]
    assert att[0] == pytest.approx(ref["att"], abs=1e-10)
    np.testing.assert_allclose(psi[:, 0], ref["inf"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_cross_section_estimators_match_drdid(samples, method):
    att, psi = _rc(samples[1], method)
    ref = REF["rc"][method]
    assert att[0] == pytest.approx(ref["att"], abs=1e-10)
    if method == "dr":
        # DRDID's sign slip moves only comparison units observed before
        r_inf = np.asarray(ref["inf"])
        differs = np.abs(psi[:, 0] - r_inf) > 1e-8
        s = samples[1]
        assert differs.any()
        assert np.all((s["D"][differs] == 0) & (s["post"][differs] == 0)) or np.all(
            s["post"][differs] == 0)
    else:
        np.testing.assert_allclose(psi[:, 0], ref["inf"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", ["panel", "rc"])
@pytest.mark.parametrize("method", METHODS)
def test_influence_function_is_the_derivative_of_the_estimator(samples, kind, method):
    """psi_i = n * d att / d eps for weight w_i -> w_i (1 + eps) (empirical influence).

    The improved DR estimator for cross-sections keeps DRDID's influence function,
    which leaves out estimation effects of the treated-group regressions that vanish
    only asymptotically; there the two must give nearly the same standard error.
    """
    s = samples[0] if kind == "panel" else samples[1]
    fit = _panel if kind == "panel" else _rc
    att, psi = fit(s, method)
    n = len(s["w"])
    rng = np.random.default_rng(1)
    eps = 1e-6
    rows = rng.choice(n, 150 if (kind, method) == ("rc", "dr_imp") else 8, replace=False)
    numeric = np.empty(len(rows))
    for j, i in enumerate(rows):
        w = s["w"].copy()
        w[i] *= 1 + eps
        bumped, _ = fit(s, method, w=w)
        numeric[j] = (bumped[0] - att[0]) / eps * n
    if (kind, method) == ("rc", "dr_imp"):
        se_num, se_if = np.sqrt(np.mean(numeric**2)), np.sqrt(np.mean(psi[rows, 0] ** 2))
        assert se_if == pytest.approx(se_num, rel=0.05)
        assert np.corrcoef(numeric, psi[rows, 0])[0, 1] > 0.99
    else:
        np.testing.assert_allclose(numeric, psi[rows, 0], rtol=1e-4, atol=1e-5)


def test_no_covariate_estimators_coincide(samples):
    s = dict(samples[0])
    s["X"] = s["X"][:, :1]
    fits = [_panel(s, m) for m in METHODS]
    for att, psi in fits[1:]:
        assert att[0] == pytest.approx(fits[0][0][0], abs=1e-12)
        np.testing.assert_allclose(psi, fits[0][1], atol=1e-10)


def test_propensity_fits():
    rng = np.random.default_rng(3)
    x = rng.normal(size=4000)
    X = np.column_stack([np.ones_like(x), x])
    D = (rng.random(4000) < 1 / (1 + np.exp(-(-0.5 + 0.8 * x)))).astype(float)
    w = rng.uniform(0.5, 2, size=4000)
    import statsmodels.api as sm

    ref = sm.GLM(D, X, family=sm.families.Binomial(), freq_weights=w).fit(tol=1e-12)
    np.testing.assert_allclose(logit_fit(D, X, w), ref.fittedvalues, rtol=1e-9)
    ps = calibration_fit(D, X, w)
    odds = ps / (1 - ps)
    # calibration: odds-weighted comparison covariate sums equal the treated sums
    np.testing.assert_allclose((w * (1 - D) * odds) @ X, (w * D) @ X, rtol=1e-9)


def test_separation_is_reported():
    x = np.linspace(-3, 3, 200)
    X = np.column_stack([np.ones_like(x), x])
    D = (x > 0.5).astype(float)
    with pytest.raises(EstimationError, match="overlap"):
        panel_2x2(np.ones((200, 1)), D, X, np.ones(200), "dr")
