"""Smoothness restriction Delta^SD(M): its constraint matrix, default M grid and optimal FLCI."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from phm_eval.errors import EstimationError

from ._common import _EPS
from ._critical import _FoldedNormal


def _a_sd(num_pre, num_post):
    """R's ``.create_A_SD``: +- second differences (delta_0 = 0 dropped)."""
    n = num_pre + num_post
    At = np.zeros((n - 1, n + 1))
    for r in range(n - 1):
        At[r, r:r + 3] = (1.0, -2.0, 1.0)
    At = np.delete(At, num_pre, axis=1)
    return np.vstack([At, -At])


def _default_m_smoothness(b, S, num_pre):
    """R: ``seq(0, DeltaSD_upperBound_Mpre(...), length.out = 10)``."""
    if num_pre == 1:
        return np.linspace(0.0, math.sqrt(S[0, 0]), 10)
    A = _a_sd(num_pre, 0)
    diffs = A @ b[:num_pre]
    se = np.sqrt(np.diag(A @ S[:num_pre, :num_pre] @ A.T))
    mub = float(np.max(diffs + norm.ppf(0.95) * se))
    return np.linspace(0.0, max(mub, 0.0), 10)


class _FLCIProblem:
    """Optimal FLCI for Delta^SD(M) as R's ``findOptimalFLCI``.

    The affine estimator is ``l' beta_post + sum_i lpre_i beta_pre_i`` with the
    pre-period weights written, as R does, through slope weights ``w`` (``lpre = D w``,
    ``D`` first differences) and their cumulative sums ``u = cumsum(w)``; linear-trend
    unbiasedness fixes ``u_K = sum_s s l_s``.  Its worst-case bias over Delta^SD(1) is
    R's ``constant + sum_i |u_i|`` and its variance a quadratic ``q(u)``.  The smallest
    bias at a standard deviation ``h`` (R solves a second-order cone programme with
    ECOS for each ``h``) is found exactly from the piecewise-linear path of
    ``argmin ||u||_1 + q(u) / (2 t)`` over ``t`` (a lasso homotopy).
    """

    def __init__(self, S, num_pre, num_post, lv):
        K = num_pre
        self.K, self.num_pre, self.lv = K, num_pre, lv
        self.target = float(np.arange(1, num_post + 1) @ lv)
        self.const = sum(abs(float(np.arange(1, s + 1) @ lv[num_post - s:]))
                         for s in range(1, num_post + 1)) - self.target
        D = np.eye(K) - np.eye(K, k=-1)
        G = D @ D  # cumulative sums -> pre-period weights
        Spre, Spp = S[:K, :K], S[:K, K:] @ lv
        cpost = float(lv @ S[K:, K:] @ lv)
        Gu, g = G[:, :K - 1], G[:, K - 1]
        T = self.target
        self.G, self.Gu, self.g = G, Gu, g
        self.Q = Gu.T @ Spre @ Gu
        self.p = Gu.T @ (Spre @ g * T + Spp)
        self.r = T * T * float(g @ Spre @ g) + 2 * T * float(g @ Spp) + cpost
        try:
            self.path = _lasso_path(self.Q, self.p)
        except np.linalg.LinAlgError as exc:
            raise EstimationError("the covariance of the pre-period coefficients is singular; "
                                  "the FLCI needs it to be positive definite") from exc
        self.qs = np.array([self.qf(u) for _, u in self.path])
        self.h0 = math.sqrt(max(self.r, 0.0))
        self.hmin = math.sqrt(max(self.qs[-1], 0.0))

    def qf(self, u):
        return float(u @ self.Q @ u + 2 * self.p @ u + self.r)

    def u_at(self, h):
        """Cumulative slope weights of least worst-case bias with sd <= h (None if h < hmin)."""
        h2 = h * h
        qs = self.qs
        if self.K == 1 or h2 >= qs[0]:
            return self.path[0][1]
        if h2 <= qs[-1]:
            return self.path[-1][1] if h2 >= qs[-1] * (1 - 1e-12) - 1e-300 else None
        k = int(np.flatnonzero(qs >= h2)[-1])  # qs is non-increasing along the path
        u0, u1 = self.path[k][1], self.path[k + 1][1]
        du = u1 - u0
        a = float(du @ self.Q @ du)
        bb = 2 * float(du @ (self.Q @ u0 + self.p))
        c = qs[k] - h2
        if a <= 0:
            lam = -c / bb if bb != 0 else 0.0
        else:
            disc = max(bb * bb - 4 * a * c, 0.0)
            # smaller root (q decreases from qs[k] to qs[k + 1] on [0, 1]), stable form
            lam = 2 * c / (-bb + math.sqrt(disc)) if bb < 0 else (-bb - math.sqrt(disc)) / (2 * a)
        lam = min(max(lam, 0.0), 1.0)
        return u0 + lam * du

    def bias(self, h):
        """Worst-case bias over Delta^SD(1) of the best estimator with sd <= h (inf if none)."""
        u = self.u_at(h)
        if u is None:
            return math.inf, None
        return self.const + abs(self.target) + float(np.abs(u).sum()), u

    def lpre(self, u):
        return self.Gu @ u + self.g * self.target

    def flci(self, b, M, fold: _FoldedNormal, num_points: int = 100) -> dict:
        """R's ``.findOptimalFLCI_helper`` then ``findOptimalFLCI``."""
        def f(h):
            bias, _ = self.bias(h)
            if not np.isfinite(bias):
                return math.nan
            return fold.q(M * bias / h) * h

        a, bnd = self.hmin, self.h0
        hstar = _derivative_bisection(f, a, bnd, num_points)
        if not np.isfinite(hstar):  # R falls back on a grid of 100 values of h
            grid = np.linspace(a, bnd, num_points)
            vals = np.array([f(h) if h > 0 else math.nan for h in grid])
            if not np.any(np.isfinite(vals)):
                raise EstimationError("the FLCI optimisation failed for every h")
            hstar = float(grid[np.nanargmin(vals)])
        bias, u = self.bias(hstar)
        if u is None:  # hstar at hmin up to rounding
            u = self.path[-1][1]
            bias = self.const + abs(self.target) + float(np.abs(u).sum())
        half = fold.q(M * bias / hstar) * hstar if hstar > 0 else 0.0
        v = np.concatenate([self.lpre(u), self.lv])
        centre = float(v @ b)
        return {"lb": centre - half, "ub": centre + half, "centre": centre,
                "halflength": half, "h": hstar, "bias": bias, "weights": v}


def _derivative_bisection(f, a, b, num_points):
    """R's ``.findOptimalCIDerivativeBisection``: NaN on failure."""
    failtol = math.sqrt(_EPS)
    dif = min((b - a) / num_points, abs(b) * _EPS ** (1 / 3))
    if not dif > 0:
        return a
    fa, fb = f(a), f(b)
    fpa = (f(a + dif) - fa) / dif
    fpb = (f(b - dif) - fb) / -dif
    it = 1
    maxiter = 10 * math.ceil(math.log(abs(b - a) / dif) / math.log(2))
    if math.isnan(fa) or math.isnan(fb) or not fpa <= fpb:
        return math.nan
    if fpb < 0:
        return b
    if fpa > 0:
        return a
    failed = False
    while not failed and abs(b - a) > dif:
        it += 1
        x = (a + b) / 2
        fpx = (f(x + dif) - f(x - dif)) / (2 * dif)
        failed = (fpx > fpb + failtol) or (fpx + failtol < fpa) or it > maxiter
        if fpx > 0:
            b = x
        else:
            a = x
    return math.nan if failed else (a + b) / 2


def _lasso_path(Q, p, tol=1e-12):
    """Breakpoints ``(t, u)`` of ``argmin_u u'Qu/2 + p'u + t ||u||_1``, t from max|p| to 0.

    Piecewise linear in ``t``: on an active set ``A`` with signs ``s``,
    ``u_A = -Q_AA^{-1} (p_A + t s_A)``; variables leave when they reach 0 and join
    when their gradient reaches ``t`` in absolute value.  At ``t = 0`` it is the
    minimiser of ``q``; at ``t >= max|p|`` it is 0.
    """
    m = len(p)
    if m == 0:
        return [(0.0, np.zeros(0))]
    t = float(np.max(np.abs(p)))
    if t == 0:
        return [(0.0, np.zeros(m))]
    scale = t
    active = [int(np.argmax(np.abs(p)))]
    signs = {active[0]: -np.sign(p[active[0]])}
    u = np.zeros(m)
    path = [(t, u.copy())]
    for _ in range(50 * m + 50):
        A = np.array(active)
        sA = np.array([signs[i] for i in active])
        QA = Q[np.ix_(A, A)]
        a_A = -np.linalg.solve(QA, p[A])
        b_A = -np.linalg.solve(QA, sA)
        best, event = 0.0, None
        lim = t * (1 - 1e-10)
        for j, i in enumerate(active):  # leaving: u_i(t') = 0
            if b_A[j] != 0:
                tz = -a_A[j] / b_A[j]
                if best < tz < lim:
                    best, event = tz, ("leave", i)
        inactive = [j for j in range(m) if j not in signs]
        if inactive:
            In = np.array(inactive)
            al = Q[np.ix_(In, A)] @ a_A + p[In]
            be = Q[np.ix_(In, A)] @ b_A
            for j, aj, bj in zip(inactive, al, be, strict=True):
                for sgn in (1.0, -1.0):  # gradient reaches +t or -t
                    den = sgn - bj
                    if abs(den) > tol:
                        tz = aj / den
                        if best < tz < lim:
                            best, event = tz, ("join", j, -sgn)
        t = best
        u = np.zeros(m)
        u[A] = a_A + t * b_A
        if event is not None and event[0] == "leave":
            u[event[1]] = 0.0
        path.append((t, u.copy()))
        if event is None or t <= tol * scale:
            if t > 0:
                u = np.zeros(m)
                u[A] = a_A
                path.append((0.0, u))
            break
        if event[0] == "leave":
            active.remove(event[1])
            del signs[event[1]]
        else:
            active.append(event[1])
            signs[event[1]] = event[2]
        if not active:  # cannot happen for positive definite Q
            break
    return path
