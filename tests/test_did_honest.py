"""Honest DiD (Rambachan & Roth 2023) against R's HonestDiD, diff-diff and known properties.

References (tests/fixtures/did/honest/, see README.md there):

* ``r_published.json``: intervals published by R's HonestDiD (README and vignette, exact
  values from the package's knitr cache and ``VignetteResults.rda``) with their inputs.
* ``diffdiff_results.json``: diff-diff 3.13.0 on literal inputs (FLCI with the exact
  folded-normal quantile; identified sets).
* ``r_rng.json``: R's own normal draws, which we reproduce to match R's simulated
  critical values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.optimize import linprog, minimize  # noqa: E402
from scipy.stats import norm  # noqa: E402

from phm_eval.did import att_gt, honest_did, honest_did_from_event_study, original_ci  # noqa: E402
from phm_eval.did import honest as H  # noqa: E402
from phm_eval.errors import ConfigError  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "did" / "honest"
PUB = json.loads((FIX / "r_published.json").read_text())
DD = json.loads((FIX / "diffdiff_results.json").read_text())
RNG = json.loads((FIX / "r_rng.json").read_text())


def _case(name):
    c = PUB[name]
    return np.array(c["betahat"]), np.array(c["sigma"]), c["num_pre"], c["num_post"]


def _printed(x: float, printed: str) -> bool:
    """True if x prints as R's tibble printed it (3 significant digits)."""
    return float(f"{x:.3g}") == float(printed)


# ----------------------------------------------------------------------------- R's random stream
def test_r_normal_stream_is_reproduced():
    f = lambda k: np.array(RNG[k], dtype=float)  # noqa: E731
    assert np.abs(H._r_rnorm(5, 0) - f("rnorm_seed0")).max() < 1e-15
    assert np.abs(H._r_rnorm(5, 123) - f("rnorm_seed123")).max() < 1e-15
    assert abs(H._FoldedNormal(0.95, 0, False).q(0.0) - f("qfold_095_mu0")) < 1e-14
    assert abs(H._FoldedNormal(0.95, 0, False).q(0.7) - f("qfold_095_mu07")) < 1e-14
    assert np.abs(H._r_rmvnorm(4, f("rmvnorm_sigma"), 0) - f("rmvnorm_seed0")).max() < 1e-14
    lf = H._lf_cv(None, np.array([[1.0, -1.0], [-1.0, 1.0]]), 0.005, 0)
    assert abs(lf - f("lf_cv_pair_0995")) < 1e-14


def test_exact_folded_normal_quantile():
    fold = H._FoldedNormal(0.95, 0, True)
    assert fold.q(0.0) == pytest.approx(norm.ppf(0.975), abs=1e-13)
    for mu in (0.3, 1.7, 6.0):
        c = fold.q(mu)
        assert norm.cdf(c - mu) - norm.cdf(-c - mu) == pytest.approx(0.95, abs=1e-14)


# ----------------------------------------------------------------------------- R: relative magnitudes
# Every published Delta^RM interval is reproduced exactly: its bounds are points of the
# test-inversion grid and the same grid points are accepted (differences are rounding,
# < 1e-15).  Tolerance 1e-12 (values ~0.05; one grid step is ~4e-4).
@pytest.mark.parametrize("key, l_vec", [("relative_magnitude", None),
                                        ("relative_magnitude_average", [0.5, 0.5])])
def test_relative_magnitudes_match_published_readme(key, l_vec):
    b, S, npre, npost = _case("ehec_twfe")
    ref = PUB["ehec_twfe"][key]
    res = honest_did(b, S, npre, npost, m=ref["Mbar"], l_vec=l_vec,
                     grid_points=ref["grid_points"])
    np.testing.assert_allclose(res.lb, ref["lb"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.ub, ref["ub"], rtol=0, atol=1e-12)
    assert list(res.summary()["method"]) == ["C-LF"] * len(ref["Mbar"])
    if "printed_lb" in ref:  # README's printed table
        assert all(_printed(x, p) for x, p in zip(res.lb, ref["printed_lb"], strict=True))
        assert all(_printed(x, p) for x, p in zip(res.ub, ref["printed_ub"], strict=True))
    if "original" in ref:
        np.testing.assert_allclose(res.original, ref["original"], rtol=0, atol=1e-15)


def test_relative_magnitudes_match_published_sun_abraham():
    b, S, npre, npost = _case("ehec_sunab")  # 10 pre-periods, 6 post-periods
    ref = PUB["ehec_sunab"]["relative_magnitude"]
    res = honest_did(b, S, npre, npost, m=ref["Mbar"], grid_points=ref["grid_points"])
    np.testing.assert_allclose(res.lb, ref["lb"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.ub, ref["ub"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.original, PUB["ehec_sunab"]["original"], rtol=0, atol=1e-15)


@pytest.mark.filterwarnings("ignore:some cohorts have very few units")
@pytest.mark.filterwarnings("ignore:Wald pre-test not reported")
def test_event_study_from_att_gt_matches_published_callaway_santanna():
    """att_gt -> aggregate -> honest_did_from_event_study against R's did + honest_did."""
    ref = PUB["ehec_cs"]
    df = pd.read_csv(FIX / "ehec_cs.csv")
    res = att_gt(df, yname="dins", tname="year", idname="stfips", gname="yexp2",
                 control_group="notyettreated", base_period="universal", bstrap=False)
    agg = res.aggregate("dynamic", min_e=-5, max_e=5)
    egt, beta, V = H.event_study_covariance(res, agg)
    np.testing.assert_array_equal(egt, ref["egt"])
    np.testing.assert_allclose(beta, ref["att_egt"], rtol=0, atol=1e-15)
    VR = np.array(ref["V"])
    assert np.abs(V - VR).max() < 1e-13 * np.abs(VR).max()  # V/n scale, not V
    # the covariance is that of the estimates: its diagonal gives the analytic se_egt
    np.testing.assert_allclose(np.sqrt(np.diag(V))[egt != -1], agg.se_egt[egt != -1],
                               rtol=1e-12)
    rm = ref["relative_magnitude"]
    out = honest_did_from_event_study(res, agg, e=0, m=rm["Mbar"])
    assert (out.num_pre, out.num_post) == (4, 6)
    np.testing.assert_allclose(out.lb, rm["lb"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.ub, rm["ub"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.original, ref["original"], rtol=0, atol=1e-15)
    # the same without passing the aggregation
    again = honest_did_from_event_study(res, e=0, m=rm["Mbar"][:1], min_e=-5, max_e=5)
    assert again.lb[0] == out.lb[0] and again.ub[0] == out.ub[0]


# ----------------------------------------------------------------------------- R: smoothness (FLCI)
def test_smoothness_matches_published_readme():
    """Delta^SD FLCI: R's numbers to 1e-11 for M > 0.

    At M = 0 R's interval is centred 1e-5 away (0.03% of its length): R takes h from
    CVXR's minimum-variance solve, 4e-6 (relative) above the true minimum, and any
    estimator within that slack; with R's own h our estimator reproduces R's centre to
    1.4e-10.  Ours is the exact minimum-variance estimator (as diff-diff's, below), so
    its lower bound prints as 0.0260 where R printed 0.0259.
    """
    b, S, npre, npost = _case("ehec_twfe")
    ref = PUB["ehec_twfe"]["smoothness"]
    res = honest_did(b, S, npre, npost, method="smoothness", m=ref["M"])
    lb, ub = np.array(ref["lb"]), np.array(ref["ub"])
    np.testing.assert_allclose(res.lb[1:], lb[1:], rtol=0, atol=1e-11)
    np.testing.assert_allclose(res.ub[1:], ub[1:], rtol=0, atol=1e-11)
    assert abs(res.lb[0] - lb[0]) < 2e-5 and abs(res.ub[0] - ub[0]) < 2e-5
    assert abs((res.ub[0] - res.lb[0]) - (ub[0] - lb[0])) < 2e-7  # R's h is slightly larger
    printed = [(x, p) for x, p in zip(res.lb, ref["printed_lb"], strict=True)][1:]
    printed += list(zip(res.ub, ref["printed_ub"], strict=True))
    assert all(_printed(x, p) for x, p in printed)
    # R's M = 0 interval from R's h: centre of the least-bias estimator with that sd
    prob = H._FLCIProblem(S, npre, npost, np.array([1.0, 0.0]))
    h_r = (ub[0] - lb[0]) / 2 / H._FoldedNormal(0.95, 0, False).q(0.0)
    assert 0 < h_r / prob.hmin - 1 < 1e-5
    _, u = prob.bias(h_r)
    centre = np.concatenate([prob.lpre(u), [1.0, 0.0]]) @ b
    assert abs(centre - (lb[0] + ub[0]) / 2) < 1e-9


def test_smoothness_matches_printed_readme_with_control():
    b, S, npre, npost = _case("ehec_twfe_control")
    ref = PUB["ehec_twfe_control"]["smoothness"]
    res = honest_did(b, S, npre, npost, method="smoothness", m=ref["M"])
    assert all(_printed(x, p) for x, p in zip(res.lb, ref["printed_lb"], strict=True))
    assert all(_printed(x, p) for x, p in zip(res.ub, ref["printed_ub"], strict=True))


def test_smoothness_matches_vignette_lovenheim_willen():
    """9 pre-periods, 23 post-periods, theta = effect after 15 years (R vignette).

    Half-lengths agree to 1e-7 (relative).  The centres differ by up to 3.7e-4 for M > 0
    (2e-5 of the length) and 2.0e-3 at M = 0 (4e-4 of the length): the centre is the
    optimal weights times betahat, and R's weights come from ECOS at its tolerance (at
    M = 0 R's h is the exact minimum, 1e-10, so there the whole difference is ECOS's
    solution of a problem whose feasible set is one point).  Our weights are exact:
    checked against an independent solver below and against diff-diff.
    """
    b, S, npre, npost = _case("lw")
    ref = PUB["lw"]["smoothness"]
    res = honest_did(b, (S + S.T) / 2, npre, npost, method="smoothness", m=ref["M"],
                     l_vec=ref["l_vec"])
    lb, ub = np.array(ref["lb"]), np.array(ref["ub"])
    np.testing.assert_allclose(res.ub - res.lb, ub - lb, rtol=1e-7)
    centre_diff = np.abs((res.lb + res.ub) / 2 - (lb + ub) / 2)
    assert centre_diff[0] < 2.5e-3
    assert centre_diff[1:].max() < 5e-4


def test_original_ci_matches_vignette_benzarti_carloni():
    b, S, npre, npost = _case("bc")
    np.testing.assert_allclose(original_ci(b, S, npre, npost), PUB["bc"]["original"],
                               rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- diff-diff
@pytest.mark.parametrize("name", list(DD["cases"]))
@pytest.mark.parametrize("lname", ["first", "average"])
def test_flci_matches_diffdiff(name, lname):
    """diff-diff 3.13 uses the exact folded-normal quantile, as exact_quantile=True.

    Half-lengths agree to 1e-7 (relative; ours are never longer, observed <= 7e-9: we
    optimise h exactly, diff-diff on a grid).  Centres agree to 1e-4 of the interval
    length (observed <= 3.6e-5): diff-diff's weights come from SLSQP.
    """
    c = DD["cases"][name]
    ref = c["smoothness"][lname]
    res = honest_did(np.array(c["betahat"]), np.array(c["sigma"]), c["num_pre"],
                     c["num_post"], method="smoothness", m=ref["M"], l_vec=c["l_vec"][lname],
                     exact_quantile=True)
    w_ref = np.array(ref["ci_ub"]) - np.array(ref["ci_lb"])
    w = res.ub - res.lb
    np.testing.assert_allclose(w, w_ref, rtol=1e-7)
    assert np.all(w <= w_ref * (1 + 1e-9))
    assert np.max(np.abs(res.lb - np.array(ref["ci_lb"])) / w) < 1e-4
    assert np.max(np.abs(res.ub - np.array(ref["ci_ub"])) / w) < 1e-4


@pytest.mark.parametrize("name", list(DD["cases"]))
@pytest.mark.parametrize("lname", ["first", "average"])
def test_identified_sets_match_diffdiff(name, lname):
    c = DD["cases"][name]
    b, npre, npost, lv = np.array(c["betahat"]), c["num_pre"], c["num_post"], c["l_vec"][lname]
    for method, key in (("smoothness", "M"), ("relative_magnitude", "Mbar")):
        ref = c[method][lname]
        got = np.array([H.identified_set(b, npre, npost, method=method, m=m, l_vec=lv) for m in ref[key]])
        exp = np.column_stack([ref["id_lb"], ref["id_ub"]]).astype(float)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))  # empty when beta_pre
        np.testing.assert_allclose(got, exp, rtol=0, atol=1e-12)     # breaks Delta^SD(M)


# ----------------------------------------------------------------------------- invariants
def test_smoothness_m0_is_linear_extrapolation():
    """With an exactly linear pre-trend every linear-trend-unbiased estimator equals the
    linear extrapolation, so the M = 0 interval is centred on it (and contains it)."""
    slope, tau = 0.013, np.array([0.2, 0.35, 0.1])
    t_pre, t_post = np.arange(-4, 0), np.arange(1, 4)
    b = np.concatenate([slope * t_pre, tau + slope * t_post])
    rng = np.random.default_rng(3)
    A = rng.normal(size=(7, 7))
    S = (A @ A.T + 7 * np.eye(7)) * 1e-4
    for lv in ([1, 0, 0], [0, 0, 1], [0.2, 0.3, 0.5]):
        res = honest_did(b, S, 4, 3, method="smoothness", m=[0.0], l_vec=lv)
        extrapolated = float(np.dot(lv, tau))
        assert (res.lb[0] + res.ub[0]) / 2 == pytest.approx(extrapolated, abs=1e-12)
        assert res.lb[0] < extrapolated < res.ub[0]
    # real data: the OLS line through the pre-period coefficients (and 0 at t = 0)
    b, S, npre, npost = _case("ehec_twfe")
    t = np.arange(-npre, 0)
    slope = float(t @ b[:npre] / (t @ t))
    res = honest_did(b, S, npre, npost, method="smoothness", m=[0.0])
    assert res.lb[0] < b[npre] - slope < res.ub[0]


@pytest.mark.parametrize("case", ["ehec_twfe", "lw", "bc"])
def test_smoothness_intervals_widen_with_m(case):
    b, S, npre, npost = _case(case)
    S = (S + S.T) / 2
    lv = PUB["lw"]["smoothness"]["l_vec"] if case == "lw" else None
    scale = math.sqrt(S[npre, npre])
    ms = np.linspace(0, 0.5 * scale, 8)
    res = honest_did(b, S, npre, npost, method="smoothness", m=ms, l_vec=lv,
                     exact_quantile=case != "ehec_twfe")
    width = res.ub - res.lb
    assert np.all(np.diff(width) >= -1e-12 * width[0])


def test_relative_magnitude_intervals_widen_with_mbar():
    b, S, npre, npost = _case("ehec_twfe")
    res = honest_did(b, S, npre, npost, m=[0, 0.25, 0.5, 1, 1.5, 2], grid_points=400)
    step = res.grid_step
    assert np.all(np.diff(res.lb) <= step[1:] + 1e-12)  # nested up to one grid step
    assert np.all(np.diff(res.ub) >= -step[1:] - 1e-12)
    assert np.all(np.diff(res.ub - res.lb) > 0)
    # identified sets are nested exactly
    ids = np.array([H.identified_set(b, npre, npost, method="relative_magnitude", m=m) for m in res.m])
    assert np.all(np.diff(ids[:, 0]) <= 1e-15) and np.all(np.diff(ids[:, 1]) >= -1e-15)
    # the published README reading: significant up to Mbar = 1.5, not at 2
    assert res.breakdown() == 1.5


@pytest.mark.parametrize("lv", [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [2.0, -1.0]])
def test_mbar_zero_identifies_theta_under_parallel_trends(lv):
    """Delta^RM(0) forces delta_post = 0 (R: no post-period change of the trend), so the
    identified set is the point l' beta_post."""
    b, S, npre, npost = _case("ehec_twfe")
    lo, hi = H.identified_set(b, npre, npost, method="relative_magnitude", m=0.0,
                                l_vec=lv)
    assert lo == pytest.approx(np.dot(lv, b[npre:]), abs=1e-15)
    assert hi == pytest.approx(lo, abs=1e-15)


@pytest.mark.parametrize("npost, lv", [(1, [1.0]), (2, [1.0, 0.0]), (2, [0.0, 1.0])])
def test_mbar_zero_conditional_interval_is_the_original(npost, lv):
    """At Mbar = 0 the ARP conditional test of a single period's effect is the two-sided
    z test: its interval is the original one up to one grid step."""
    b, S, npre, _ = _case("ehec_twfe")
    b, S = b[:npre + npost], S[:npre + npost, :npre + npost]
    res = honest_did(b, S, npre, npost, m=[0.0], l_vec=lv, ci_method="Conditional",
                     grid_points=2001)
    step = res.grid_step[0]
    assert 0 <= res.lb[0] - res.original[0] <= step
    assert 0 <= res.original[1] - res.ub[0] <= step


def test_mbar_zero_lf_hybrid_one_post_period_closed_form():
    """One post-period, Mbar = 0: two moments +-(beta_1 - theta).  R's LF hybrid first
    rejects beyond the simulated least-favourable value, then runs the conditional test
    at level (alpha - kappa) / (1 - kappa) on a half-normal: theta_hat +- z se with
    z = Phi^-1(1 - (alpha - kappa) / (2 (1 - kappa)))."""
    b, S, npre, _ = _case("ehec_twfe")
    b, S = b[:npre + 1], S[:npre + 1, :npre + 1]
    res = honest_did(b, S, npre, 1, m=[0.0], grid_points=4001)
    level = (0.05 - 0.005) / (1 - 0.005)
    z = norm.ppf(1 - level / 2)
    se = math.sqrt(S[npre, npre])
    step = res.grid_step[0]
    assert abs(res.lb[0] - (b[npre] - z * se)) <= step
    assert abs(res.ub[0] - (b[npre] + z * se)) <= step


@pytest.mark.parametrize("mbar", [0.0, 0.5, 1.5])
def test_one_post_period_two_code_paths_agree(mbar):
    """R has a separate ARP test without nuisance parameters (one post-period); for the
    conditional test it must agree with the general test with zero nuisance parameters."""
    b, S, npre, _ = _case("ehec_twfe")
    b, S = b[:npre + 1], S[:npre + 1, :npre + 1]
    lo, hi = H._rm_grid_bounds(b, S, npre, 1, np.array([1.0]), mbar)
    grid = np.linspace(lo, hi, 300)
    for s in range(-(npre - 1), 1):
        for pos in (True, False):
            A = H._create_a_rm(npre, 1, mbar, s, pos)
            rows = np.flatnonzero(A[:, -1] != 0)
            d = np.zeros(A.shape[0])
            a1 = H._arp_accept_no_nuisance(b, S, npre, A[rows], d[rows], np.array([1.0]), 0.05,
                                           "ARP", 0.005, grid, 0)
            a2 = H._arp_accept_nuisance(b, S, npre, 1, A, d, np.array([1.0]), 0.05, "ARP",
                                        0.005, grid, rows, 0)
            np.testing.assert_array_equal(a1, a2)


def test_dual_vertices_and_lp_agree():
    """The enumerated dual vertices give the LP's value and multipliers (HiGHS)."""
    b, S, npre, npost = _case("ehec_sunab")
    A = H._create_a_rm(npre, npost, 1.0, -3, True)
    rows = np.flatnonzero(np.any(A[:, npre:] != 0, axis=1))
    AG = A[:, npre:] @ np.linalg.inv(H._construct_gamma(np.eye(npost)[0]))
    X = AG[rows, 1:]
    Sy = (A @ S @ A.T)[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(Sy))
    dv, dl = H._Dual(X, sd), H._Dual(X, sd, force_lp=True)
    assert dv.V is not None and dl.V is None
    rng = np.random.default_rng(5)
    for _ in range(20):
        y = rng.normal(size=len(rows)) * sd
        e1, l1 = dv.solve(y)
        e2, l2 = dl.solve(y)
        assert e1 == pytest.approx(e2, abs=1e-10)
        np.testing.assert_allclose(l1, l2, atol=1e-8)
        assert l2 @ sd == pytest.approx(1.0) and np.abs(l2 @ X).max() < 1e-10


def test_lp_path_matches_vertex_path():
    b, S, npre, npost = _case("ehec_twfe")
    lv = np.array([1.0, 0.0])
    A = H._create_a_rm(npre, npost, 1.0, 0, True)
    rows = np.flatnonzero(np.any(A[:, npre:] != 0, axis=1))
    lo, hi = H._rm_grid_bounds(b, S, npre, npost, lv, 1.0)
    grid = np.linspace(lo, hi, 12)
    args = (b, S, npre, npost, A, np.zeros(A.shape[0]), lv, 0.05, "LF", 0.005, grid, rows, 0)
    np.testing.assert_array_equal(H._arp_accept_nuisance(*args),
                                  H._arp_accept_nuisance(*args, force_lp=True))


def test_least_bias_weights_match_a_generic_solver():
    """The exact least-worst-case-bias estimator at sd <= h (lasso homotopy) against
    SLSQP on the same convex problem."""
    b, S, npre, npost = _case("lw")
    prob = H._FLCIProblem((S + S.T) / 2, npre, npost, np.array(PUB["lw"]["smoothness"]["l_vec"]))
    assert np.all(np.diff(prob.qs) <= 1e-12 * prob.qs[0])
    m = len(prob.p)
    for h in np.linspace(prob.hmin * 1.001, prob.h0 * 0.999, 4):
        bias, u = prob.bias(h)
        assert prob.qf(u) == pytest.approx(h * h, rel=1e-10)
        scale = 1 / (h * h)
        cons = {"type": "ineq",
                "fun": lambda x, h=h, scale=scale: scale * (h * h - prob.qf(x[:m] - x[m:]))}
        x0 = np.concatenate([np.maximum(prob.path[-1][1], 0), np.maximum(-prob.path[-1][1], 0)])
        out = minimize(lambda x: x.sum(), x0, jac=lambda x: np.ones(2 * m), constraints=[cons],
                       bounds=[(0, None)] * (2 * m), method="SLSQP",
                       options={"ftol": 1e-14, "maxiter": 3000})
        assert np.abs(u).sum() <= out.fun * (1 + 1e-7)
        assert np.abs(u).sum() == pytest.approx(out.fun, rel=1e-5)


# ----------------------------------------------------------------------------- API and errors
def test_result_object():
    b, S, npre, npost = _case("ehec_twfe")
    res = honest_did(b, S, npre, npost, method="smoothness", m=[0, 0.01, 0.02, 0.03])
    s = res.summary()
    assert list(s.columns) == ["M", "lb", "ub", "method", "delta"]
    assert set(s["delta"]) == {"DeltaSD"} and set(s["method"]) == {"FLCI"}
    assert res.breakdown() == 0.02  # README: "breakdown value ... M of about 0.03"
    d = res.to_dict()
    assert d["rows"][0]["M"] == 0 and len(d["rows"]) == 4
    ax = res.plot()
    assert len(ax.collections) >= 2
    rm = honest_did(b, S, npre, npost, m=[0.5, 1.0], grid_points=50)
    assert list(rm.summary().columns)[0] == "Mbar"
    rm.plot()


def test_default_grids_follow_r():
    b, S, npre, npost = _case("ehec_twfe")
    res = honest_did(b, S, npre, npost, method="smoothness")
    A = H._a_sd(npre, 0)
    mub = np.max(A @ b[:npre] + norm.ppf(0.95) * np.sqrt(np.diag(A @ S[:npre, :npre] @ A.T)))
    np.testing.assert_allclose(res.m, np.linspace(0, mub, 10))
    np.testing.assert_allclose(H._m_grid(None, lambda: np.linspace(0, 2, 10)),
                               np.linspace(0, 2, 10))


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma=np.eye(6)), "6 x 6|7 x 7"),
    (dict(num_pre=4), "num_pre \\+ num_post"),
    (dict(sigma=np.diag([1.0, 1, 1, 1, 1, 1, -1e-3])), "positive semi-definite"),
    (dict(sigma=np.eye(7) + np.triu(np.ones((7, 7)), 1) * 0.1), "not symmetric"),
    (dict(betahat=np.ones((7, 2))), "vector"),
    (dict(betahat=np.r_[np.ones(6), np.nan]), "finite"),
    (dict(l_vec=[1.0, 0.0, 0.0]), "l_vec"),
    (dict(m=[-0.1]), "M/Mbar"),
    (dict(method="sdrm"), "method"),
    (dict(ci_method="FLCI"), "relative magnitudes"),
    (dict(method="smoothness", ci_method="C-LF"), "smoothness"),
    (dict(alpha=1.5), "alpha"),
    (dict(num_pre=0, num_post=7), "num_pre"),
])
def test_bad_inputs_raise_clear_errors(kwargs, match):
    b, S, npre, npost = _case("ehec_twfe")
    call = dict(betahat=b, sigma=S, num_pre=npre, num_post=npost, m=[1.0], grid_points=20)
    call.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        honest_did(**call)


@pytest.mark.filterwarnings("ignore:some cohorts have very few units")
@pytest.mark.filterwarnings("ignore:Wald pre-test not reported")
def test_event_study_needs_universal_base_period():
    df = pd.read_csv(FIX / "ehec_cs.csv")
    res = att_gt(df, yname="dins", tname="year", idname="stfips", gname="yexp2",
                 control_group="notyettreated", bstrap=False)
    with pytest.raises(ConfigError, match="universal"):
        honest_did_from_event_study(res, min_e=-5, max_e=5)
    res = att_gt(df, yname="dins", tname="year", idname="stfips", gname="yexp2",
                 control_group="notyettreated", base_period="universal", bstrap=False)
    with pytest.raises(ConfigError, match="dynamic"):
        honest_did_from_event_study(res, res.aggregate("group"))
    with pytest.raises(ConfigError, match="post-periods"):
        honest_did_from_event_study(res, e=7, min_e=-5, max_e=5)
    with pytest.raises(ConfigError, match="pre-period"):
        honest_did_from_event_study(res, min_e=0, max_e=5)


# ----------------------------------------------------------------------------- coverage
def _worst_case_delta(v, npre, npost, M):
    """delta in Delta^SD(M) maximising the bias v'delta of the affine estimator v'beta."""
    A = H._a_sd(npre, npost)
    out = linprog(-v, A_ub=A, b_ub=np.full(len(A), M), bounds=(None, None), method="highs")
    return out.x, -out.fun


@pytest.mark.parametrize("lv", [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [1.0, -1.0, 0.5]])
def test_flci_bias_is_the_worst_case_over_delta_sd(lv):
    """R's closed-form worst-case bias of the FLCI estimator is the maximum of v'delta over
    Delta^SD(M) for non-negative l (and an upper bound for signed l)."""
    b, S, npre, npost = _case("bc")
    S3 = S[:npre + 3, :npre + 3]
    M = 0.05
    res = honest_did(b[:npre + 3], S3, npre, 3, method="smoothness", m=[M], l_vec=lv)
    d = res.details[0]
    _, worst = _worst_case_delta(d["weights"], npre, 3, M)
    if min(lv) >= 0:
        assert worst == pytest.approx(M * d["bias"], rel=1e-9)
    else:
        assert worst <= M * d["bias"] * (1 + 1e-9)


@pytest.mark.slow
def test_coverage_under_restrictions():
    """Simulated coverage of 95% intervals when delta satisfies the restriction.

    Smoothness: at the worst-case delta of Delta^SD(M) for the FLCI estimator the
    coverage is exactly 95% in theory (2,000 draws: 95.5%).  Relative magnitudes: post-
    period changes of delta equal to Mbar times the largest pre-period change (300
    draws; the test is conservative, 99.8% with 600 draws).
    """
    rng = np.random.default_rng(2024)
    npre, npost = 4, 2
    corr = 0.4 ** np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
    S = corr * 0.01**2
    L = np.linalg.cholesky(S)
    tau = np.array([0.03, 0.04])
    M = 0.004
    v = honest_did(np.zeros(6), S, npre, npost, method="smoothness", m=[M],
                   exact_quantile=True).details[0]["weights"]
    delta_sd, _ = _worst_case_delta(v, npre, npost, M)
    hits = 0
    for _ in range(2000):
        b = delta_sd + np.r_[np.zeros(npre), tau] + L @ rng.normal(size=6)
        res = honest_did(b, S, npre, npost, method="smoothness", m=[M], exact_quantile=True)
        hits += res.lb[0] <= tau[0] <= res.ub[0]
    assert abs(hits / 2000 - 0.95) < 0.015
    pre = np.r_[-0.004, -0.002, -0.003, -0.001]
    big = np.abs(np.diff(np.append(pre, 0.0))).max()
    delta_rm = np.r_[pre, big, 2 * big]  # Mbar = 1: each post change equals the largest
    hits = 0
    for _ in range(300):
        b = delta_rm + np.r_[np.zeros(npre), tau] + L @ rng.normal(size=6)
        res = honest_did(b, S, npre, npost, m=[1.0], grid_points=200)
        hits += res.lb[0] <= tau[0] <= res.ub[0]
    assert hits / 300 >= 0.93
