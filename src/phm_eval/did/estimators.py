"""Two-group, two-period DiD estimators with their influence functions.

The panel estimators take a matrix of outcome changes (one column per
group-time cell that shares the same treated and comparison units and the same
covariates), so the propensity score is fitted once and the outcome
regressions are solved for all columns at once.

Formulas follow Sant'Anna & Zhao (2020) as implemented in R's ``DRDID``:
``reg_did_panel``/``reg_did_rc`` (outcome regression), ``std_ipw_did_panel``/
``std_ipw_did_rc`` (normalised IPW), ``drdid_panel``/``drdid_rc`` (locally
efficient doubly robust, used by R's ``did`` for ``est_method="dr"``) and
``drdid_imp_panel``/``drdid_imp_rc`` (improved doubly robust, with the
propensity score fitted by covariate calibration and weighted least squares
outcome regressions).  Influence functions are on the scale of the 2x2 sample:
``att_hat - att = mean(psi) + o_p(n^-1/2)``.  Sampling weights are normalised to
mean one within the sample, propensity scores are capped at ``1 - 1e-6`` and
comparison units with a score above ``trim_level`` get zero weight, as in
``DRDID``.
"""

from __future__ import annotations

import numpy as np

from phm_eval.errors import EstimationError

from . import _kernels as kernels

TRIM_LEVEL = 0.995
_EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- fits
def logit_fit(D: np.ndarray, X: np.ndarray, w: np.ndarray, *, max_iter: int = 100,
              tol: float = 1e-10) -> np.ndarray:
    """Weighted logistic regression by Newton-Raphson; returns fitted probabilities.

    ``X`` includes the intercept column.  With an intercept-only design the
    maximum-likelihood fit is the weighted share of treated units.  ``tol`` bounds
    the remaining error of the (standardised) coefficients relative to their size:
    iterations stop after a step smaller than ``sqrt(tol)``, since Newton's error
    after a step of size ``s`` is of order ``s**2``.
    """
    if X.shape[1] == 1:
        return np.full(len(D), np.dot(w, D) / w.sum())
    p = X.shape[1]
    beta = np.zeros(p)
    share = np.dot(w, D) / w.sum()
    beta[0] = np.log(share / (1 - share))
    # centre and scale the non-intercept columns for a well-conditioned Newton step
    mu = X[:, 1:].mean(axis=0)
    sd = X[:, 1:].std(axis=0)
    sd[sd == 0] = 1.0
    Z = np.empty_like(X)
    Z[:, 0] = 1.0
    Z[:, 1:] = (X[:, 1:] - mu) / sd
    Z = np.ascontiguousarray(Z)
    D = np.ascontiguousarray(D, dtype=float)
    w = np.ascontiguousarray(w, dtype=float)
    grad = np.empty(p)
    H = np.empty((p, p))
    for _ in range(max_iter):
        kernels.logit_gradient_hessian(Z, D, w, beta, grad, H)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError as exc:
            raise EstimationError("propensity score model is singular; consider removing "
                                  "covariates") from exc
        beta = beta + step
        # Newton converges quadratically: after a step of size s the error is of order s^2,
        # so a step below sqrt(tol) leaves an error below tol without another pass
        if np.max(np.abs(step)) < np.sqrt(tol) * (1 + np.max(np.abs(beta))):
            break
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 50:
            break
    eta = Z @ beta
    return 1.0 / (1.0 + np.exp(-eta))


def calibration_fit(D: np.ndarray, X: np.ndarray, w: np.ndarray, *, max_iter: int = 100,
                    tol: float = 1e-10) -> np.ndarray:
    """Propensity score by covariate calibration (Graham, Pinto & Egel 2012).

    Minimises ``mean(w * ((1 - D) * exp(X g) - D * X g))``, whose first-order
    condition makes the odds-weighted comparison units reproduce the treated
    units' weighted covariate sums exactly (``DRDID::pscore.cal``).  The loss is
    convex, so Newton's method from the logit fit converges to the unique
    minimiser.
    """
    p = X.shape[1]
    share = np.dot(w, D) / w.sum()
    if p == 1:
        # calibration on the intercept alone: odds = sum(w D) / sum(w (1 - D))
        odds = np.dot(w, D) / np.dot(w, 1 - D)
        return np.full(len(D), odds / (1 + odds))
    ps0 = logit_fit(D, X, w)
    ps0 = np.clip(ps0, 1e-12, 1 - 1e-12)
    mu = X[:, 1:].mean(axis=0)
    sd = X[:, 1:].std(axis=0)
    sd[sd == 0] = 1.0
    Z = np.empty_like(X)
    Z[:, 0] = 1.0
    Z[:, 1:] = (X[:, 1:] - mu) / sd
    # start from the logit index (least squares on the logit scale)
    gam = np.linalg.lstsq(Z, np.log(ps0 / (1 - ps0)), rcond=None)[0]
    if not np.all(np.isfinite(gam)):
        gam = np.zeros(p)
        gam[0] = np.log(share / (1 - share))
    c = 1 - D
    for _ in range(max_iter):
        e = np.exp(np.clip(Z @ gam, -700, 700))
        grad = Z.T @ (w * (c * e - D))
        H = (Z * (w * c * e)[:, None]).T @ Z
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError as exc:
            raise EstimationError("calibrated propensity score is singular; consider removing "
                                  "covariates") from exc
        # damped Newton keeps the convex loss decreasing from poor starts
        loss = np.dot(w, c * e - D * (Z @ gam))
        t = 1.0
        for _ in range(60):
            new = gam - t * step
            e_new = np.exp(np.clip(Z @ new, -700, 700))
            if np.dot(w, c * e_new - D * (Z @ new)) <= loss + 1e-12 * abs(loss):
                break
            t /= 2
        gam = new
        if np.max(np.abs(t * step)) < tol * (1 + np.max(np.abs(gam))):
            break
    idx = Z @ gam
    return 1.0 / (1.0 + np.exp(-idx))


def _wls(X: np.ndarray, Y: np.ndarray, w: np.ndarray, mask: np.ndarray, what: str) -> np.ndarray:
    """Weighted least squares of each column of ``Y`` on ``X`` over ``mask`` rows."""
    Xm = X[mask]
    wm = w[mask]
    XtWX = (Xm * wm[:, None]).T @ Xm
    _check_rcond(XtWX, what)
    XtWY = (Xm * wm[:, None]).T @ Y[mask]
    return np.linalg.solve(XtWX, XtWY)


def _check_rcond(M: np.ndarray, what: str) -> None:
    if M.shape[0] == 1:
        if not M[0, 0] > 0:
            raise EstimationError(f"{what}: no units with positive weight")
        return
    try:
        rc = 1.0 / np.linalg.cond(M, 1)
    except np.linalg.LinAlgError:
        rc = 0.0
    if not np.isfinite(rc) or rc < _EPS:
        raise EstimationError(f"{what}: the covariate matrix is singular or ill-conditioned; "
                              "consider centring, rescaling or removing covariates")


def _ps_parts(D, X, w, trim_level):
    ps = np.minimum(logit_fit(D, X, w), 1 - 1e-6)
    trim = np.ones(len(D), dtype=bool)
    ctrl = D == 0
    trim[ctrl] = ps[ctrl] < trim_level
    info = kernels.weighted_gram(np.ascontiguousarray(X), w * ps * (1 - ps))
    _check_rcond(info, "propensity score")
    H = np.linalg.inv(info) * len(D)
    return ps, trim.astype(float), H


def check_overlap(ps: np.ndarray, where: str) -> None:
    """R's ``did`` refuses cells whose fitted propensity score reaches 0.999."""
    if np.max(ps) >= 0.999:
        raise EstimationError(
            f"overlap fails for {where}: a fitted propensity score reaches 0.999, so some "
            "treated units have no comparable untreated units; use fewer covariates or "
            "est_method='reg'")


# ----------------------------------------------------------------------------- panel
def panel_2x2(dY: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray, method: str,
              *,
              where: str = "this cell", trim_level: float = TRIM_LEVEL):
    """ATT and influence functions for each column of ``dY`` (panel data).

    Parameters
    ----------
    dY : (n, m) array
        Outcome change (post minus base period) for each unit and cell.
    D : (n,) array of 0/1
        Treated-cohort indicator (the rest are comparison units).
    X : (n, p) array
        Covariates including the intercept column.
    w : (n,) array
        Sampling weights (normalised here to mean one).
    method : {"dr", "ipw", "reg", "dr_imp"}

    Returns
    -------
    att : (m,) array
    psi : (n, m) array
        Influence functions on the 2x2-sample scale.
    """
    n = len(D)
    D = D.astype(float)
    w = w / w.mean()
    if method == "reg":
        return _panel_reg(dY, D, X, w, n)
    if method == "ipw":
        return _panel_ipw(dY, D, X, w, n, where, trim_level)
    if method == "dr":
        return _panel_dr(dY, D, X, w, n, where, trim_level)
    if method == "dr_imp":
        return _panel_dr_imp(dY, D, X, w, n, where, trim_level)
    raise ValueError(method)


def _panel_reg(dY, D, X, w, n):
    ctrl = D == 0
    beta = _wls(X, dY, w, ctrl, "outcome regression for comparison units")
    out = X @ beta
    w_tr = w * D
    m_tr = w_tr.mean()
    eta_tr = (w_tr @ dY) / n / m_tr
    eta_co = (w_tr @ out) / n / m_tr
    att = eta_tr - eta_co
    wc = w * (1 - D)
    XpX = (X * wc[:, None]).T @ X / n
    M1 = (w_tr @ X) / n
    a = X @ np.linalg.solve(XpX, M1)
    inf_treat = w_tr[:, None] * (dY - eta_tr) / m_tr
    inf_cont = (w_tr[:, None] * (out - eta_co) + (wc * a)[:, None] * (dY - out)) / m_tr
    return att, inf_treat - inf_cont


def _panel_ipw(dY, D, X, w, n, where, trim_level):
    ps, trim, H = _ps_parts(D, X, w, trim_level)
    if X.shape[1] > 1:
        check_overlap(ps, where)
    w_tr = trim * w * D
    w_co = trim * w * ps * (1 - D) / (1 - ps)
    m_tr, m_co = w_tr.mean(), w_co.mean()
    eta_tr = (w_tr @ dY) / n / m_tr
    eta_co = (w_co @ dY) / n / m_co
    att = eta_tr - eta_co
    inf_treat = w_tr[:, None] * (dY - eta_tr) / m_tr
    resid_co = w_co[:, None] * (dY - eta_co)
    M2 = X.T @ resid_co / n
    asy_ps = (w * (D - ps))[:, None] * X @ H
    inf_cont = (resid_co + asy_ps @ M2) / m_co
    return att, inf_treat - inf_cont


def _panel_dr(dY, D, X, w, n, where, trim_level):
    """DRDID's ``drdid_panel``, evaluated separately on treated and comparison rows.

    On treated rows the comparison weights vanish and on comparison rows the
    treated weights do, so each row set needs only its own terms; the rank-(p+1)
    parts are one small matrix product per set.
    """
    k = int(D.sum())
    if not (np.all(D[:k] == 1) and np.all(D[k:] == 0)):
        order = np.argsort(-D, kind="stable")
        att, psi_sorted = _panel_dr(dY[order], D[order], X[order], w[order], n, where,
                                    trim_level)
        psi = np.empty_like(psi_sorted)
        psi[order] = psi_sorted
        return att, psi
    ps, trim, H = _ps_parts(D, X, w, trim_level)
    if X.shape[1] > 1:
        check_overlap(ps, where)
    X = np.ascontiguousarray(X)
    dY = np.ascontiguousarray(dY)
    T_, C_ = slice(0, k), slice(k, n)
    XT, XC, wC, dYT, dYC = X[T_], X[C_], w[C_], dY[T_], dY[C_]
    w_tr = w[T_]  # trimming never removes treated units
    w_co = trim[C_] * wC * ps[C_] / (1 - ps[C_])
    # outcome regression on comparison units, and the sums the influence function needs,
    # without forming the residuals: X' W (dY - X beta) = X' W dY - (X' W X) beta
    XtWX = kernels.weighted_gram(XC, wC)
    _check_rcond(XtWX, "outcome regression for comparison units")
    cross = kernels.weighted_crossprods(XC, dYC, np.column_stack([wC, w_co]))
    beta = np.linalg.solve(XtWX, cross[0])
    sT, sC = w_tr @ XT, w_co @ XC
    m_tr, m_co = w_tr.sum() / n, w_co.sum() / n
    eta_tr = (w_tr @ dYT - sT @ beta) / n / m_tr
    eta_co = (w_co @ dYC - sC @ beta) / n / m_co
    att = eta_tr - eta_co
    sol = np.linalg.solve(XtWX / n, np.column_stack([sT, sC]) / n)
    M2 = (cross[1] - kernels.weighted_gram(XC, w_co) @ beta - np.outer(sC, eta_co)) / n
    # psi_i = a_i (dY_i - X_i beta) + l0_i eta_tr + l1_i eta_co - s_i X_i H M2 / m_co
    coef_C = wC * (XC @ (sol[:, 1] / m_co - sol[:, 0] / m_tr)) - w_co / m_co
    a = np.concatenate([w_tr / m_tr, coef_C])
    l0 = np.concatenate([-w_tr / m_tr, np.zeros(n - k)])
    l1 = np.concatenate([np.zeros(k), w_co / m_co])
    psi = kernels.dr_influence(dY, X, beta, a, l0, l1, w * (D - ps), H @ M2 / m_co,
                               eta_tr, eta_co)
    return att, psi


def _panel_dr_imp(dY, D, X, w, n, where, trim_level):
    ps = np.minimum(calibration_fit(D, X, w), 1 - 1e-6)
    if X.shape[1] > 1:
        check_overlap(ps, where)
    trim = np.ones(n)
    ctrl = D == 0
    trim[ctrl] = (ps[ctrl] < trim_level).astype(float)
    odds_w = w * ps / (1 - ps)
    beta = _wls(X, dY, odds_w, ctrl, "weighted outcome regression for comparison units")
    R = dY - X @ beta
    summand = (trim * (1 - (1 - D) / (1 - ps)))[:, None] * R
    m_d = (D * w).mean()
    att = (w @ summand) / n / m_d
    psi = (w * trim)[:, None] * (summand - D[:, None] * att) / m_d
    return att, psi


# ----------------------------------------------------------------------------- cross-sections
def rc_2x2(y: np.ndarray, post: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray,
           method: str, *, where: str = "this cell", trim_level: float = TRIM_LEVEL):
    """ATT and influence function for repeated cross-section data (one cell).

    ``y`` is the outcome of each observation, ``post`` marks the later period.
    For ``dr`` the pre-period outcome-regression terms of the influence function
    enter with the sign given by differentiating the estimator (R's
    ``DRDID::drdid_rc`` adds them, which changes analytic standard errors
    slightly when the propensity model does not balance covariates exactly).
    """
    n = len(D)
    D = D.astype(float)
    post = post.astype(float)
    w = w / w.mean()
    if method == "reg":
        return _rc_reg(y, post, D, X, w, n)
    if method == "ipw":
        return _rc_ipw(y, post, D, X, w, n, where, trim_level)
    if method == "dr":
        return _rc_dr(y, post, D, X, w, n, where, trim_level)
    if method == "dr_imp":
        return _rc_dr_imp(y, post, D, X, w, n, where, trim_level)
    raise ValueError(method)


def _lin_rep(X, weights_ols, resid, n, what):
    XpX = (X * weights_ols[:, None]).T @ X / n
    _check_rcond(XpX, what)
    return (weights_ols * resid)[:, None] * X @ np.linalg.inv(XpX)


def _rc_reg(y, post, D, X, w, n):
    Y = y[:, None]
    pre_c = (D == 0) & (post == 0)
    post_c = (D == 0) & (post == 1)
    b_pre = _wls(X, Y, w, pre_c, "pre-period outcome regression for comparison units")[:, 0]
    b_post = _wls(X, Y, w, post_c, "post-period outcome regression for comparison units")[:, 0]
    out_pre, out_post = X @ b_pre, X @ b_post
    w_tp = w * D * (1 - post)
    w_tq = w * D * post
    w_c = w * D
    eta_tp = np.mean(w_tp * y) / w_tp.mean()
    eta_tq = np.mean(w_tq * y) / w_tq.mean()
    eta_c = np.mean(w_c * (out_post - out_pre)) / w_c.mean()
    att = (eta_tq - eta_tp) - eta_c
    asy_pre = _lin_rep(X, w * (1 - D) * (1 - post), y - out_pre, n, "pre-period regression")
    asy_post = _lin_rep(X, w * (1 - D) * post, y - out_post, n, "post-period regression")
    inf_treat = ((w_tq * y - w_tq * eta_tq) / w_tq.mean()
                 - (w_tp * y - w_tp * eta_tp) / w_tp.mean())
    M1 = (w_c @ X) / n
    inf_cont = (w_c * (out_post - out_pre) - w_c * eta_c + asy_post @ M1
                - asy_pre @ M1) / w_c.mean()
    return np.array([att]), (inf_treat - inf_cont)[:, None]


def _rc_ps(D, X, w, trim_level, where, calibrated=False):
    fit = calibration_fit if calibrated else logit_fit
    ps = np.minimum(fit(D, X, w), 1 - 1e-6)
    if X.shape[1] > 1:
        check_overlap(ps, where)
    trim = np.ones(len(D))
    ctrl = D == 0
    trim[ctrl] = (ps[ctrl] < trim_level).astype(float)
    return ps, trim


def _rc_ipw(y, post, D, X, w, n, where, trim_level):
    ps, trim = _rc_ps(D, X, w, trim_level, where)
    info = kernels.weighted_gram(np.ascontiguousarray(X), w * ps * (1 - ps))
    _check_rcond(info, "propensity score")
    H = np.linalg.inv(info) * n
    w_tp = trim * w * D * (1 - post)
    w_tq = trim * w * D * post
    odds = ps / (1 - ps)
    w_cp = trim * w * odds * (1 - D) * (1 - post)
    w_cq = trim * w * odds * (1 - D) * post
    a_tp = np.mean(w_tp * y) / w_tp.mean()
    a_tq = np.mean(w_tq * y) / w_tq.mean()
    a_cp = np.mean(w_cp * y) / w_cp.mean()
    a_cq = np.mean(w_cq * y) / w_cq.mean()
    att = (a_tq - a_tp) - (a_cq - a_cp)
    inf_treat = w_tq * (y - a_tq) / w_tq.mean() - w_tp * (y - a_tp) / w_tp.mean()
    inf_cont = w_cq * (y - a_cq) / w_cq.mean() - w_cp * (y - a_cp) / w_cp.mean()
    M2_pre = (w_cp * (y - a_cp)) @ X / n / w_cp.mean()
    M2_post = (w_cq * (y - a_cq)) @ X / n / w_cq.mean()
    asy_ps = (w * (D - ps))[:, None] * X @ H
    inf_cont = inf_cont + asy_ps @ (M2_post - M2_pre)
    return np.array([att]), (inf_treat - inf_cont)[:, None]


def _rc_dr(y, post, D, X, w, n, where, trim_level):
    ps, trim = _rc_ps(D, X, w, trim_level, where)
    info = kernels.weighted_gram(np.ascontiguousarray(X), w * ps * (1 - ps))
    _check_rcond(info, "propensity score")
    H = np.linalg.inv(info) * n
    Y = y[:, None]
    masks = {
        "cp": (D == 0) & (post == 0), "cq": (D == 0) & (post == 1),
        "tp": (D == 1) & (post == 0), "tq": (D == 1) & (post == 1),
    }
    b = {k: _wls(X, Y, w, m, f"outcome regression ({k})")[:, 0] for k, m in masks.items()}
    o = {k: X @ v for k, v in b.items()}
    out_c = post * o["cq"] + (1 - post) * o["cp"]
    odds = ps / (1 - ps)
    w_tp = trim * w * D * (1 - post)
    w_tq = trim * w * D * post
    w_cp = trim * w * odds * (1 - D) * (1 - post)
    w_cq = trim * w * odds * (1 - D) * post
    w_d = trim * w * D
    r = y - out_c
    a_tp = np.mean(w_tp * r) / w_tp.mean()
    a_tq = np.mean(w_tq * r) / w_tq.mean()
    a_cp = np.mean(w_cp * r) / w_cp.mean()
    a_cq = np.mean(w_cq * r) / w_cq.mean()
    dpost = o["tq"] - o["cq"]
    dpre = o["tp"] - o["cp"]
    a_dq = np.mean(w_d * dpost) / w_d.mean()
    a_dq1 = np.mean(w_tq * dpost) / w_tq.mean()
    a_dp = np.mean(w_d * dpre) / w_d.mean()
    a_dp0 = np.mean(w_tp * dpre) / w_tp.mean()
    att = (a_tq - a_tp) - (a_cq - a_cp) + (a_dq - a_dq1) - (a_dp - a_dp0)

    asy = {
        "cp": _lin_rep(X, w * (1 - D) * (1 - post), y - o["cp"], n, "pre-period regression"),
        "cq": _lin_rep(X, w * (1 - D) * post, y - o["cq"], n, "post-period regression"),
        "tp": _lin_rep(X, w * D * (1 - post), y - o["tp"], n, "treated pre-period regression"),
        "tq": _lin_rep(X, w * D * post, y - o["tq"], n, "treated post-period regression"),
    }
    asy_ps = (w * (D - ps))[:, None] * X @ H
    inf_tp = w_tp * (r - a_tp) / w_tp.mean()
    inf_tq = w_tq * (r - a_tq) / w_tq.mean()
    M1_post = -(w_tq * post) @ X / n / w_tq.mean()
    M1_pre = -(w_tp * (1 - post)) @ X / n / w_tp.mean()
    inf_treat_or = asy["cq"] @ M1_post - asy["cp"] @ M1_pre
    inf_cp = w_cp * (r - a_cp) / w_cp.mean()
    inf_cq = w_cq * (r - a_cq) / w_cq.mean()
    M2_pre = (w_cp * (r - a_cp)) @ X / n / w_cp.mean()
    M2_post = (w_cq * (r - a_cq)) @ X / n / w_cq.mean()
    inf_cont_ps = asy_ps @ (M2_post - M2_pre)
    M3_post = -(w_cq * post) @ X / n / w_cq.mean()
    M3_pre = -(w_cp * (1 - post)) @ X / n / w_cp.mean()
    inf_cont_or = asy["cq"] @ M3_post - asy["cp"] @ M3_pre
    inf_eff = ((w_d * (dpost - a_dq) / w_d.mean() - w_tq * (dpost - a_dq1) / w_tq.mean())
               - (w_d * (dpre - a_dp) / w_d.mean() - w_tp * (dpre - a_dp0) / w_tp.mean()))
    mom_post = (w_d / w_d.mean() - w_tq / w_tq.mean()) @ X / n
    mom_pre = (w_d / w_d.mean() - w_tp / w_tp.mean()) @ X / n
    inf_or = (asy["tq"] - asy["cq"]) @ mom_post - (asy["tp"] - asy["cp"]) @ mom_pre
    inf_treat = inf_tq - inf_tp + inf_treat_or
    inf_cont = inf_cq - inf_cp + inf_cont_ps + inf_cont_or
    psi = inf_treat - inf_cont + inf_eff + inf_or
    return np.array([att]), psi[:, None]


def _rc_dr_imp(y, post, D, X, w, n, where, trim_level):
    ps, trim = _rc_ps(D, X, w, trim_level, where, calibrated=True)
    Y = y[:, None]
    odds_w = w * ps / (1 - ps)
    cp = (D == 0) & (post == 0)
    cq = (D == 0) & (post == 1)
    o_cp = X @ _wls(X, Y, odds_w, cp, "weighted pre-period regression")[:, 0]
    o_cq = X @ _wls(X, Y, odds_w, cq, "weighted post-period regression")[:, 0]
    o_tp = X @ _wls(X, Y, w, (D == 1) & (post == 0), "treated pre-period regression")[:, 0]
    o_tq = X @ _wls(X, Y, w, (D == 1) & (post == 1), "treated post-period regression")[:, 0]
    out_c = post * o_cq + (1 - post) * o_cp
    odds = ps / (1 - ps)
    w_tp = w * D * (1 - post)
    w_tq = w * D * post
    w_cp = trim * w * odds * (1 - D) * (1 - post)
    w_cq = trim * w * odds * (1 - D) * post
    w_d = w * D
    r = y - out_c
    a_tp = np.mean(w_tp * r) / w_tp.mean()
    a_tq = np.mean(w_tq * r) / w_tq.mean()
    a_cp = np.mean(w_cp * r) / w_cp.mean()
    a_cq = np.mean(w_cq * r) / w_cq.mean()
    dpost = o_tq - o_cq
    dpre = o_tp - o_cp
    a_dq = np.mean(w_d * dpost) / w_d.mean()
    a_dq1 = np.mean(w_tq * dpost) / w_tq.mean()
    a_dp = np.mean(w_d * dpre) / w_d.mean()
    a_dp0 = np.mean(w_tp * dpre) / w_tp.mean()
    att = (a_tq - a_tp) - (a_cq - a_cp) + (a_dq - a_dq1) - (a_dp - a_dp0)
    inf_treat = w_tq * (r - a_tq) / w_tq.mean() - w_tp * (r - a_tp) / w_tp.mean()
    inf_cont = w_cq * (r - a_cq) / w_cq.mean() - w_cp * (r - a_cp) / w_cp.mean()
    inf_eff = ((w_d * (dpost - a_dq) / w_d.mean() - w_tq * (dpost - a_dq1) / w_tq.mean())
               - (w_d * (dpre - a_dp) / w_d.mean() - w_tp * (dpre - a_dp0) / w_tp.mean()))
    return np.array([att]), (inf_treat - inf_cont + inf_eff)[:, None]
