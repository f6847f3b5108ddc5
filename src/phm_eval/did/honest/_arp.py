"""Conditional and least-favourable hybrid tests of Andrews, Roth & Pakes for ``A delta <= d``."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import linprog

from ._common import _EPS
from ._critical import _quantile7, _r_rmvnorm, _trunc_norm_quantile

_MAX_BASES = 200_000  # dual-vertex enumeration limit; larger problems solve LPs


class _Dual:
    """The dual polytope ``{x >= 0 : x'[sd, X] = e_1'}`` of ``min eta: y - X d <= eta sd``.

    ``maximize(f)`` returns ``max f'x`` and a maximiser; ``eta(y) = maximize(y)``.  Small
    problems enumerate the vertices once (exact, vectorised); larger ones solve LPs
    with HiGHS (R uses lp_solve and GLPK).
    """

    def __init__(self, X, sd, force_lp=False):
        self.X, self.sd = X, sd
        self.W = np.column_stack([sd, X])
        self.V = None if force_lp else _vertices(self.W)

    def maximize(self, f):
        if self.V is not None:
            if len(self.V) == 0:
                return None, None
            vals = self.V @ f
            i = int(np.argmax(vals))
            return float(vals[i]), self.V[i]
        M, r = self.W.shape
        e1 = np.zeros(r)
        e1[0] = 1.0
        out = linprog(-f, A_eq=self.W.T, b_eq=e1, bounds=(0, None), method="highs-ds")
        if out.status != 0:
            return None, None
        return float(-out.fun), out.x

    def eta_many(self, Y):
        """eta for each row of Y (NaN where the LP has no solution)."""
        if self.V is not None:
            if len(self.V) == 0:
                return np.full(len(Y), np.nan)
            return np.max(Y @ self.V.T, axis=1)
        return np.array([(lambda r: np.nan if r[0] is None else r[0])(self.maximize(y))
                         for y in Y])

    def solve(self, y):
        """R's ``.test_delta_lp_fn``: eta and the dual multipliers (None if no solution)."""
        if self.V is not None:
            return self.maximize(y)
        M, k = self.X.shape
        c = np.zeros(k + 1)
        c[0] = 1.0
        out = linprog(c, A_ub=-self.W, b_ub=-y, bounds=(None, None), method="highs-ds")
        if out.status != 0:
            return None, None
        return float(out.fun), -out.ineqlin.marginals


def _vertices(W):
    """Basic feasible solutions of ``{x >= 0 : W'x = e_1}`` (None if too many to enumerate)."""
    M, r = W.shape
    if np.linalg.matrix_rank(W) < r:
        return None
    if math.comb(M, r) > _MAX_BASES:
        return None
    out = []
    e1 = np.zeros(r)
    e1[0] = 1.0
    combos = np.array(list(itertools.combinations(range(M), r)), dtype=np.int64)
    for start in range(0, len(combos), 20_000):
        cb = combos[start:start + 20_000]
        mats = np.transpose(W[cb], (0, 2, 1))  # W_B' for each basis
        det = np.linalg.det(mats)
        norms = np.prod(np.linalg.norm(mats, axis=2), axis=1)
        ok = np.abs(det) > 1e-10 * norms
        if not ok.any():
            continue
        xb = np.linalg.solve(mats[ok], np.broadcast_to(e1, (int(ok.sum()), r))[..., None])[..., 0]
        feas = np.all(xb >= -1e-12 * np.max(np.abs(xb), axis=1, keepdims=True), axis=1)
        for basis, x in zip(cb[ok][feas], xb[feas], strict=True):
            v = np.zeros(M)
            v[basis] = np.maximum(x, 0.0)
            out.append(v)
    if not out:
        return np.zeros((0, M))
    V = np.array(out)
    _, idx = np.unique(np.round(V / np.max(np.abs(V), axis=1, keepdims=True), 12), axis=0,
                       return_index=True)
    return V[np.sort(idx)]


def _lf_cv(dual: _Dual | None, sigma, kappa, seed, sims=1000):
    """R's ``.compute_least_favorable_cv`` (``dual`` None: no nuisance parameters)."""
    xi = _r_rmvnorm(sims, sigma, seed)
    if dual is None:
        eta = np.max(xi / np.sqrt(np.diag(sigma)), axis=1)
    else:
        eta = dual.eta_many(xi)
        eta = eta[np.isfinite(eta)]
    return _quantile7(eta, 1 - kappa)


def _roundeps(x):
    return 0.0 if abs(x) < _EPS ** 0.75 else x


def _vlo_vup_dual(eta, s_T, gamma, sigma, dual: _Dual):
    """R's ``.vlo_vup_dual_fn`` (shortcut iterations, then bisection to 1e-6)."""
    tol_c = tol_eq = 1e-6
    sg = float(gamma @ sigma @ gamma)
    sigma_b = math.sqrt(sg)
    low0, high0 = min(-100.0, eta - 20 * sigma_b), max(100.0, eta + 20 * sigma_b)
    maxiters, switchiters = 10_000, 10
    bvec = sigma @ gamma / sg

    def check(c):
        val, x = dual.maximize(s_T + bvec * c)
        return (val is not None and abs(c - val) <= tol_eq), x

    ok, _ = check(eta)
    if not ok:
        return eta, math.inf

    def side(start, upper):
        ok, x = check(start)
        if ok:
            return math.inf if upper else -math.inf
        dif, iters = 0.0, 1
        mid = _roundeps(float(x @ s_T)) / (1 - float(x @ bvec))
        while True:
            ok, x = check(mid)
            if ok or iters >= maxiters:
                break
            iters += 1
            if iters >= switchiters:
                dif = tol_c + 1
                break
            mid = _roundeps(float(x @ s_T)) / (1 - float(x @ bvec))
        lo, hi = (eta, mid) if upper else (mid, eta)
        while dif > tol_c and iters < maxiters:
            iters += 1
            mid = (hi + lo) / 2
            if check(mid)[0] == upper:
                lo = mid
            else:
                hi = mid
            dif = hi - lo
        return mid

    return side(low0, False), side(high0, True)


def _conditional_test(y, X, sigma, alpha, hybrid, kappa, lf_cv, dual: _Dual) -> bool:
    """R's ``.lp_conditional_test_fn``: True if the test rejects."""
    M, k = X.shape
    eta, lam = dual.solve(y)
    if eta is None:  # LP without solution: R does not reject
        return False
    if hybrid == "LF":
        mod_size = (alpha - kappa) / (1 - kappa)
        if eta > lf_cv:
            return True
    else:
        mod_size = alpha
    B = lam > 1e-6
    degenerate = int(B.sum()) != k + 1
    XB = X[B]
    full_rank = min(XB.shape) > 0 and np.linalg.matrix_rank(XB) == min(XB.shape)
    if degenerate or not full_rank:
        sg2 = float(lam @ sigma @ lam)
        if abs(sg2) < _EPS:
            return eta > 0
        s_T = y - (sigma @ lam) / sg2 * float(lam @ y)
        vlo, vup = _vlo_vup_dual(eta, s_T, lam, sigma, dual)
        sb = math.sqrt(sg2)
    else:
        sd = np.sqrt(np.diag(sigma))
        Bc = ~B
        mat = np.column_stack([sd[B], XB])
        inv = np.linalg.solve(mat, np.eye(M)[B])
        gam_b = np.column_stack([sd[Bc], X[Bc]]) @ inv - np.eye(M)[Bc]
        v_b = inv[0]
        s2 = float(v_b @ sigma @ v_b)
        sb = math.sqrt(s2)
        rho = gam_b @ sigma @ v_b / s2
        with np.errstate(divide="ignore", invalid="ignore"):
            mm = -(gam_b @ y) / rho + float(v_b @ y)
        vlo = float(np.max(mm[rho > 0])) if np.any(rho > 0) else -math.inf
        vup = float(np.min(mm[rho < 0])) if np.any(rho < 0) else math.inf
    zlo = vlo / sb
    zup = (min(vup, lf_cv) if hybrid == "LF" else vup) / sb
    stat = eta / sb
    if not (zlo <= stat <= zup):
        return False
    cval = max(0.0, _trunc_norm_quantile(1 - mod_size, zlo, zup))
    return stat > cval


def _construct_gamma(lv):
    """R's ``.construct_Gamma``: invertible matrix with first row l (pivots of rref[l, I])."""
    n = len(lv)
    cols = [lv]
    for j in range(n):
        if len(cols) == n:
            break
        e = np.zeros(n)
        e[j] = 1.0
        if np.linalg.matrix_rank(np.column_stack(cols + [e])) > len(cols):
            cols.append(e)
    return np.array(cols)


def _arp_accept_nuisance(b, S, num_pre, num_post, A, d, lv, alpha, hybrid, kappa, grid,
                         rows, seed, force_lp=False):
    """R's ``.ARP_computeCI``: acceptance of each theta of the grid."""
    post = slice(num_pre, num_pre + num_post)
    AG = A[:, post] @ np.linalg.inv(_construct_gamma(lv))
    a1, X = AG[rows, 0], AG[rows, 1:]
    Y = (A @ b - d)[rows]
    Sy = (A @ S @ A.T)[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(Sy))
    dual = _Dual(X, sd, force_lp=force_lp)
    lf = _lf_cv(dual, Sy, kappa, seed) if hybrid == "LF" else math.nan
    return np.array([not _conditional_test(Y - a1 * th, X, Sy, alpha, hybrid, kappa, lf, dual)
                     for th in grid])


def _test_no_nuisance(y, sigma, A, d, alpha, hybrid, kappa, lf_cv) -> bool:
    """R's ``.testInIdentifiedSet`` / ``.testInIdentifiedSet_LF_Hybrid``: True if rejects.

    As R, the LF hybrid here does not cap the truncation at the least-favourable critical
    value (the test with nuisance parameters does).
    """
    SA = A @ sigma @ A.T
    st = np.sqrt(np.diag(SA))
    At, dt = A / st[:, None], d / st
    moments = At @ y - dt
    j = int(np.argmax(moments))
    top = float(moments[j])
    if hybrid == "LF":
        if top > lf_cv:
            return True
        level = (alpha - kappa) / (1 - kappa)
    else:
        level = alpha
    gamma = At[j]
    Abar = At - At[j][None, :]
    dbar = dt - dt[j]
    sg = float(gamma @ sigma @ gamma)
    c = sigma @ gamma / sg
    z = y - c * float(gamma @ y)
    Ac = Abar @ c
    with np.errstate(divide="ignore", invalid="ignore"):
        obj = (dbar - Abar @ z) / Ac
    vlo = float(np.max(obj[Ac < 0])) if np.any(Ac < 0) else -math.inf
    vup = float(np.min(obj[Ac > 0])) if np.any(Ac > 0) else math.inf
    cval = max(0.0, _trunc_norm_quantile(1 - level, vlo, vup, mu=float(dt[j]),
                                         sd=math.sqrt(sg)))
    return top + float(dt[j]) > cval


def _arp_accept_no_nuisance(b, S, num_pre, A, d, lv, alpha, hybrid, kappa, grid, seed):
    """R's ``.APR_computeCI_NoNuis`` (one post-period; theta = l * tau)."""
    lf = _lf_cv(None, A @ S @ A.T, kappa, seed) if hybrid == "LF" else math.nan
    e = np.zeros(len(b))
    e[num_pre] = 1.0 / float(lv[0])
    return np.array([not _test_no_nuisance(b - e * th, S, A, d, alpha, hybrid, kappa, lf)
                     for th in grid])
