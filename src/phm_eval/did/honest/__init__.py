"""Sensitivity of an event study to violations of parallel trends ("Honest DiD").

Rambachan & Roth (2023), *A More Credible Approach to Parallel Trends*, Review of
Economic Studies 90(5).  Given event-study coefficients ``betahat`` (pre-periods
first, the reference period left out) and their covariance ``sigma``, the
confidence intervals for ``theta = l' tau_post`` stay valid when the post-period
violation of parallel trends ``delta_post`` is only restricted to a set Delta:

* ``method="smoothness"``: Delta^SD(M), the slope of ``delta`` changes by at most
  ``M`` between consecutive periods (``M = 0``: linear trends).  Fixed-length
  confidence interval (FLCI), R's ``createSensitivityResults`` default.
* ``method="relative_magnitude"``: Delta^RM(Mbar), every post-period change of
  ``delta`` is at most ``Mbar`` times the largest pre-period change.  Conditional
  least-favourable hybrid test of Andrews, Roth & Pakes (ARP) inverted over a
  grid, R's ``createSensitivityResults_relativeMagnitudes`` default.

The algorithms follow R's HonestDiD package (0.2.9) step by step, including its
simulated quantities: the folded-normal quantile of the FLCI (10^6 draws) and the
least-favourable critical value (1,000 draws) are computed from R's own
Mersenne-Twister/inversion normal stream with R's seed (0), so results equal R's
to solver precision (tests/fixtures/did/honest/).  The relative-magnitude grid is
the one R used for the results published in its README (see :func:`honest_did`).  docs/did.md reports the agreement.

>>> res = honest_did(betahat, sigma, num_pre=5, num_post=2, method="smoothness",
...                  m=[0, 0.01, 0.02])
>>> res.summary()        # M, lb, ub, method, delta
>>> res.plot()
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import brentq, linprog
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp
from scipy.stats import norm

from phm_eval.errors import ConfigError, EstimationError

if TYPE_CHECKING:
    from ..results import AggteResult, AttGtResult

__all__ = ["honest_did", "honest_did_from_event_study", "original_ci", "identified_set",
           "event_study_covariance", "HonestDiDResult"]

_EPS = np.finfo(float).eps
_MAX_BASES = 200_000  # dual-vertex enumeration limit; larger problems solve LPs


# ----------------------------------------------------------------------------- result
@dataclass
class HonestDiDResult:
    """Robust confidence intervals over a grid of M (or Mbar).

    Attributes
    ----------
    method : {"smoothness", "relative_magnitude"}
    delta : str
        Restriction, R's label (``"DeltaSD"`` or ``"DeltaRM"``).
    ci_method : str
        ``"FLCI"``, ``"C-LF"`` (conditional least-favourable hybrid) or ``"Conditional"``.
    m : array
        M (smoothness) or Mbar (relative magnitudes).
    lb, ub : arrays
        Robust confidence interval for each value of ``m``.
    original : tuple
        ``(lb, ub)`` of the usual interval ``l'beta_post +- z se`` (R's
        ``constructOriginalCS``).
    estimate, se : float
        ``l'beta_post`` and its standard error.
    alpha : float
    l_vec : array
    grid_step : array or None
        Spacing of the test-inversion grid for each Mbar (relative magnitudes): the
        bounds are grid points, so they are accurate to this step.
    """

    method: str
    delta: str
    ci_method: str
    m: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    original: tuple
    estimate: float
    se: float
    alpha: float
    l_vec: np.ndarray
    num_pre: int
    num_post: int
    grid_step: np.ndarray | None = None
    details: list = field(default_factory=list, repr=False)

    @property
    def m_label(self) -> str:
        return "M" if self.method == "smoothness" else "Mbar"

    def summary(self) -> pd.DataFrame:
        """One row per value of M/Mbar: ``M`` (or ``Mbar``), lb, ub, method, delta."""
        return pd.DataFrame({self.m_label: self.m, "lb": self.lb, "ub": self.ub,
                             "method": self.ci_method, "delta": self.delta})

    def breakdown(self, null: float = 0.0) -> float:
        """Largest M/Mbar of the grid up to which every robust interval excludes ``null``.

        NaN if the smallest value's interval already contains it (the grid says nothing
        finer than its spacing; R's README reads the breakdown value off the same grid).
        """
        order = np.argsort(self.m)
        out = np.nan
        for i in order:
            if self.lb[i] <= null <= self.ub[i] or not np.isfinite(self.lb[i] + self.ub[i]):
                break
            out = float(self.m[i])
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "delta": self.delta, "ci_method": self.ci_method,
                "alpha": self.alpha, "l_vec": [float(x) for x in self.l_vec],
                "original": [float(x) for x in self.original],
                "estimate": float(self.estimate), "se": float(self.se),
                "rows": self.summary().replace({np.nan: None}).to_dict(orient="records")}

    def plot(self, ax=None):
        """Robust intervals against M/Mbar, with the original interval at the left.

        As R's ``createSensitivityPlot``: the original interval is drawn one grid step
        to the left of the smallest M/Mbar.
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4))
        m = np.asarray(self.m, dtype=float)
        gap = float(np.min(np.diff(np.sort(m)))) if len(m) > 1 else 1.0
        gap = gap if gap > 0 else 1.0
        x0 = float(m.min()) - gap
        mid = (self.lb + self.ub) / 2
        ax.errorbar([x0], [self.estimate], yerr=[[self.estimate - self.original[0]],
                                                  [self.original[1] - self.estimate]],
                    fmt="none", color="#d62728", capsize=4, lw=1.6, label="Original")
        ax.errorbar(m, mid, yerr=[mid - self.lb, self.ub - mid], fmt="none", color="#1f77b4",
                    capsize=4, lw=1.6, label=f"{self.ci_method} ({self.delta})")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(self.m_label if self.method == "smoothness" else r"$\bar{M}$")
        ax.set_ylabel(r"$\theta = l'\tau_{post}$")
        ax.set_title("Robust confidence intervals (Rambachan & Roth)")
        ax.legend(fontsize=8, frameon=False, loc="best")
        return ax


# ----------------------------------------------------------------------------- public API
def honest_did(betahat: npt.ArrayLike, sigma: npt.ArrayLike, num_pre: int, num_post: int,
               method: str = "relative_magnitude", m: float | Sequence[float] | None = None,
               l_vec: npt.ArrayLike | None = None, alpha: float = 0.05, ci_method: str | None = None,
               grid_points: int = 1000, grid_lb: float | None = None,
               grid_ub: float | None = None, seed: int = 0,
               exact_quantile: bool = False) -> HonestDiDResult:
    """Robust confidence intervals for ``l' tau_post`` under Delta^SD(M) or Delta^RM(Mbar).

    Parameters
    ----------
    betahat : array (num_pre + num_post,)
        Event-study coefficients, pre-periods first (earliest first), without the
        reference period (normalised to 0, the period just before treatment).
    sigma : array (num_pre + num_post, num_pre + num_post)
        Covariance matrix **of the estimates** (not of ``sqrt(n)`` times them).
    num_pre, num_post : int
        Numbers of pre- and post-period coefficients.
    method : {"relative_magnitude", "smoothness"}
        Delta^RM(Mbar) (R's ``createSensitivityResults_relativeMagnitudes``) or
        Delta^SD(M) (R's ``createSensitivityResults``).
    m : float or sequence of float, optional
        Values of Mbar (relative magnitudes) or M (smoothness, in the units of
        ``betahat``).  Defaults as R: ten values on [0, 2] for Mbar; for M ten values
        from 0 to the one-sided 95% upper bound of the largest pre-period second
        difference (R's ``DeltaSD_upperBound_Mpre``).
    l_vec : array (num_post,), optional
        Weights defining ``theta``; default the first post-period effect.
    alpha : float
        1 - confidence level.
    ci_method : str, optional
        Smoothness: ``"FLCI"`` (only).  Relative magnitudes: ``"C-LF"`` (default,
        conditional least-favourable hybrid) or ``"Conditional"`` (ARP conditional test).
    grid_points, grid_lb, grid_ub
        Test-inversion grid for relative magnitudes (R's ``gridPoints``, ``grid.lb``,
        ``grid.ub``).  The default grid is centred at ``l'beta_post`` with half-width
        ``Mbar * sum_t t |l_t| * maxpre + 20 se`` (``maxpre`` the largest absolute change
        between consecutive pre-periods, ``se`` that of ``l'beta_post``): the grid of
        HonestDiD pull request #53 ("to match Stata's improvement"), with which the
        results published in HonestDiD's README were computed; HonestDiD 0.2.9 (GitHub master) uses ``[-20 se, 20 se]``
        around 0 instead (pass ``grid_lb=-20 * se, grid_ub=20 * se``).  The interval
        bounds are grid points (accurate to the grid step).
    seed : int
        Seed of R's random-number stream used for the simulated critical values (R's
        ``seed``, default 0).
    exact_quantile : bool
        Smoothness: use the exact folded-normal quantile instead of R's simulated one
        (10^6 draws).  The half-lengths then differ from R's by about 1e-3 relative.

    Returns
    -------
    HonestDiDResult
    """
    b, S, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if method == "smoothness":
        ci_method = "FLCI" if ci_method is None else ci_method
        if ci_method != "FLCI":
            raise ConfigError("smoothness restrictions support ci_method='FLCI' only, got "
                              f"{ci_method!r}")
        ms = _m_grid(m, lambda: _default_m_smoothness(b, S, num_pre))
        fold = _FoldedNormal(1 - alpha, seed, exact_quantile)
        prob = _FLCIProblem(S, num_pre, num_post, lv)
        lbs, ubs, details = [], [], []
        for mm in ms:
            out = prob.flci(b, mm, fold)
            lbs.append(out["lb"])
            ubs.append(out["ub"])
            details.append(out)
        delta, step = "DeltaSD", None
    elif method == "relative_magnitude":
        ci_method = "C-LF" if ci_method is None else ci_method
        if ci_method not in ("C-LF", "Conditional"):
            raise ConfigError("relative magnitudes support ci_method 'C-LF' or 'Conditional', "
                              f"got {ci_method!r}")
        ms = _m_grid(m, lambda: np.linspace(0.0, 2.0, 10))
        if grid_points < 2:
            raise ConfigError(f"grid_points must be at least 2, got {grid_points}")
        hybrid = "LF" if ci_method == "C-LF" else "ARP"
        lbs, ubs, details, steps = [], [], [], []
        for mm in ms:
            lo, hi = _rm_grid_bounds(b, S, num_pre, num_post, lv, mm)
            lo = lo if grid_lb is None else float(grid_lb)
            hi = hi if grid_ub is None else float(grid_ub)
            if not lo < hi:
                raise ConfigError(f"grid_lb ({lo}) must be below grid_ub ({hi})")
            grid = np.linspace(lo, hi, int(grid_points))
            steps.append(grid[1] - grid[0])
            acc = _rm_accept(b, S, num_pre, num_post, lv, mm, alpha, hybrid, grid, seed)
            lbs.append(grid[acc].min() if acc.any() else np.nan)
            ubs.append(grid[acc].max() if acc.any() else np.nan)
            if not acc.any():
                warnings.warn(f"no value of the grid is accepted at Mbar = {mm:g}; widen "
                              "grid_lb/grid_ub", stacklevel=2)
            elif acc[0] or acc[-1]:
                warnings.warn(f"the confidence set at Mbar = {mm:g} reaches the end of the "
                              "grid; widen grid_lb/grid_ub", stacklevel=2)
            details.append({"grid": grid, "accept": acc})
        delta, step = "DeltaRM", np.array(steps)
    else:
        raise ConfigError("method must be 'relative_magnitude' or 'smoothness', got "
                          f"{method!r}")
    olb, oub, est, se = _original(b, S, num_pre, lv, alpha)
    return HonestDiDResult(method=method, delta=delta, ci_method=ci_method, m=ms,
                           lb=np.array(lbs, dtype=float), ub=np.array(ubs, dtype=float),
                           original=(olb, oub), estimate=est, se=se, alpha=alpha, l_vec=lv,
                           num_pre=num_pre, num_post=num_post, grid_step=step,
                           details=details)


def original_ci(betahat: npt.ArrayLike, sigma: npt.ArrayLike, num_pre: int, num_post: int,
                l_vec: npt.ArrayLike | None = None, alpha: float = 0.05) -> tuple:
    """Usual interval for ``l' beta_post`` (R's ``constructOriginalCS``): ``(lb, ub)``."""
    b, S, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    lo, hi, _, _ = _original(b, S, num_pre, lv, alpha)
    return lo, hi


def identified_set(betahat: npt.ArrayLike, num_pre: int, num_post: int,
                   method: str = "relative_magnitude", m: float = 1.0,
                   l_vec: npt.ArrayLike | None = None) -> tuple:
    """Bounds of the identified set of ``l' tau_post`` taking ``betahat`` as the truth.

    ``delta_pre = beta_pre`` and ``delta`` in Delta^SD(M) or Delta^RM(Mbar) (R's
    internal ``.compute_IDset_DeltaSD`` / ``.compute_IDset_DeltaRM``; Delta^RM is the
    union over the location and sign of the largest pre-period change).  Returns
    ``(nan, nan)`` when no ``delta`` in Delta matches ``beta_pre`` (R instead returns
    the point ``l' beta_post``).
    """
    b = np.asarray(betahat, dtype=float).ravel()
    n = num_pre + num_post
    if len(b) != n:
        raise ConfigError(f"betahat has {len(b)} entries but num_pre + num_post = {n}")
    lv = _l_vec(l_vec, num_post)
    if not (np.isfinite(m) and m >= 0):
        raise ConfigError(f"m must be a finite number >= 0, got {m}")
    if method == "smoothness":
        comps = [(_a_sd(num_pre, num_post), None)]
        rhs_const = float(m)
    elif method == "relative_magnitude":
        comps = [(_create_a_rm(num_pre, num_post, m, s, pos), None)
                 for s in range(-(num_pre - 1), 1) for pos in (True, False)]
        rhs_const = 0.0
    else:
        raise ConfigError(f"method must be 'relative_magnitude' or 'smoothness', got {method!r}")
    theta = float(lv @ b[num_pre:])
    lows, highs = [], []
    c = np.concatenate([np.zeros(num_pre), lv])
    a_eq = np.hstack([np.eye(num_pre), np.zeros((num_pre, num_post))])
    for A, _ in comps:
        rhs = np.full(A.shape[0], rhs_const)
        kw = dict(A_ub=A, b_ub=rhs, A_eq=a_eq, b_eq=b[:num_pre], bounds=(None, None),
                  method="highs")
        rmin, rmax = linprog(c, **kw), linprog(-c, **kw)
        if rmin.status == 0 and rmax.status == 0:
            lows.append(theta + rmax.fun)   # theta - max l'delta_post
            highs.append(theta - rmin.fun)  # theta - min l'delta_post
    if not lows:
        return np.nan, np.nan
    return float(min(lows)), float(max(highs))


def event_study_covariance(res: AttGtResult, agg: AggteResult | None = None,
                           min_e: float | None = None, max_e: float | None = None,
                           balance_e: int | None = None, na_rm: bool = False) -> tuple:
    """Event times, estimates and covariance of a dynamic aggregation (R's ``aggte``).

    The covariance is that of the estimates, ``psi' psi / n^2`` from the event-time
    influence functions (cluster sums when clustered), the scale of the analytic
    standard errors ``se_egt`` (R's ``honest_did.AGGTEobj`` uses the same
    ``t(inf) %*% inf / n / n``).  Bootstrapped ``se_egt`` are not used.

    Parameters
    ----------
    res : AttGtResult
    agg : AggteResult, optional
        A dynamic aggregation of ``res``; its window (``min_e``, ``max_e``,
        ``balance_e``) and its event-time influence functions are used.
    min_e, max_e, balance_e, na_rm
        As :func:`~phm_eval.did.aggregate` (when ``agg`` is not given).

    Returns
    -------
    egt, beta, V : arrays
    """
    from ..aggregate import aggregate

    if agg is not None:
        if agg.type != "dynamic":
            raise ConfigError(f"need a dynamic aggregation (event study), got type {agg.type!r}")
        if agg._source is not res:
            raise ConfigError("agg is not a dynamic aggregation of res")
        es = agg
    else:
        es = aggregate(res, "dynamic", min_e=min_e, max_e=max_e, balance_e=balance_e,
                       cband=False, na_rm=na_rm)
    V = es.covariance_egt()
    beta = np.asarray(es.att_egt, dtype=float)
    return np.asarray(es.egt, dtype=float), beta, V


def honest_did_from_event_study(res: AttGtResult, agg: AggteResult | None = None, *,
                                e: int = 0, l_vec: npt.ArrayLike | None = None,
                                method: str = "relative_magnitude",
                                m: float | Sequence[float] | None = None,
                                alpha: float | None = None, min_e: float | None = None,
                                max_e: float | None = None, balance_e: int | None = None,
                                na_rm: bool = False,
                                grid_points: int = 100, **kwargs) -> HonestDiDResult:
    """Honest DiD for an event study from :func:`~phm_eval.did.att_gt` (R's ``honest_did``).

    As the ``honest_did.AGGTEobj`` function of HonestDiD's README: needs
    ``base_period="universal"``; the reference event time (``-1 - anticipation``, fixed
    at 0) is dropped; earlier event times are the pre-periods, later ones (including
    anticipation periods) the post-periods; event times must be consecutive.

    Parameters
    ----------
    res : AttGtResult
    agg : AggteResult, optional
        Dynamic aggregation of ``res`` whose window to use (else ``min_e``, ``max_e``,
        ``balance_e``, ``na_rm`` as :func:`~phm_eval.did.aggregate`).
    e : int
        Event time of interest when ``l_vec`` is not given (default 0, on impact).
    l_vec : array, optional
        Weights over the post-period event times instead of ``e``.
    method, m, alpha, grid_points, **kwargs
        As :func:`honest_did` (``alpha`` defaults to the ``att_gt`` call's; the grid has
        100 points as in R's ``honest_did``).

    Returns
    -------
    HonestDiDResult
    """
    if res.config.get("base_period") != "universal":
        raise ConfigError("honest_did needs an event study with base_period='universal' "
                          "(varying base periods do not measure pre-trends against one "
                          "reference period)")
    egt, beta, V = event_study_covariance(res, agg, min_e=min_e, max_e=max_e,
                                          balance_e=balance_e, na_rm=na_rm)
    ref = -1.0 - float(res.config.get("anticipation", 0))
    pre, post = egt[egt < ref], egt[egt > ref]
    if np.any(np.diff(egt) != 1):
        raise ConfigError("honest_did needs consecutive event times; got "
                          f"{[float(x) for x in egt]}")
    keep = egt != ref
    if ref in egt:
        zero = np.flatnonzero(egt == ref)[0]
        if abs(beta[zero]) > 1e-12 or V[zero, zero] > 1e-20:
            raise EstimationError(f"the reference event time {ref:g} is not normalised to 0")
    if len(pre) == 0 or len(post) == 0:
        raise ConfigError("honest_did needs at least one pre-period and one post-period "
                          f"event time besides the reference {ref:g}; got {list(egt)}")
    if l_vec is None:
        if e not in post:
            raise ConfigError(f"event time e={e} is not among the post-periods {list(post)}")
        l_vec = (post == e).astype(float)
    alpha = res.alp if alpha is None else alpha
    return honest_did(beta[keep], V[np.ix_(keep, keep)], len(pre), len(post), method=method,
                      m=m, l_vec=l_vec, alpha=alpha, grid_points=grid_points, **kwargs)


# ----------------------------------------------------------------------------- inputs
def _check_inputs(betahat, sigma, num_pre, num_post, l_vec):
    b = np.asarray(betahat, dtype=float)
    if b.ndim == 2 and 1 in b.shape:
        b = b.ravel()
    if b.ndim != 1:
        raise ConfigError(f"betahat must be a vector, got shape {np.shape(betahat)}")
    for name, v in (("num_pre", num_pre), ("num_post", num_post)):
        if int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {v}")
    n = len(b)
    if num_pre + num_post != n:
        raise ConfigError(f"betahat has {n} coefficients but num_pre + num_post = "
                          f"{num_pre} + {num_post} = {num_pre + num_post}")
    S = np.asarray(sigma, dtype=float)
    if S.shape != (n, n):
        raise ConfigError(f"sigma must be a {n} x {n} matrix to match betahat, got shape "
                          f"{S.shape}")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(S))):
        raise ConfigError("betahat and sigma must be finite")
    scale = max(float(np.max(np.abs(S))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(S - S.T)))
    if asym > 1e-8 * scale:
        raise ConfigError(f"sigma is not symmetric (largest asymmetry {asym:.3g})")
    S = (S + S.T) / 2
    ev = np.linalg.eigvalsh(S)
    if ev[0] < -1e-10 * max(ev[-1], 0.0) or ev[-1] <= 0:
        raise ConfigError("sigma is not positive semi-definite (smallest eigenvalue "
                          f"{ev[0]:.3g}); it must be the covariance matrix of betahat")
    if np.any(np.diag(S) <= 0):
        raise ConfigError("sigma has a zero variance on its diagonal")
    return b, S, _l_vec(l_vec, num_post)


def _l_vec(l_vec, num_post):
    if l_vec is None:
        lv = np.zeros(num_post)
        lv[0] = 1.0
        return lv
    lv = np.asarray(l_vec, dtype=float).ravel()
    if len(lv) != num_post:
        raise ConfigError(f"l_vec has length {len(lv)} but there are {num_post} post-periods")
    if not np.all(np.isfinite(lv)) or not np.any(lv != 0):
        raise ConfigError("l_vec must be finite and not all zero")
    return lv


def _m_grid(m, default):
    ms = np.atleast_1d(np.asarray(default() if m is None else m, dtype=float))
    if ms.ndim != 1 or len(ms) == 0 or not np.all(np.isfinite(ms)) or np.any(ms < 0):
        raise ConfigError(f"M/Mbar values must be finite numbers >= 0, got {m}")
    return ms


def _original(b, S, num_pre, lv, alpha):
    est = float(lv @ b[num_pre:])
    se = math.sqrt(float(lv @ S[num_pre:, num_pre:] @ lv))
    z = norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se, est, se


def _default_m_smoothness(b, S, num_pre):
    """R: ``seq(0, DeltaSD_upperBound_Mpre(...), length.out = 10)``."""
    if num_pre == 1:
        return np.linspace(0.0, math.sqrt(S[0, 0]), 10)
    A = _a_sd(num_pre, 0)
    diffs = A @ b[:num_pre]
    se = np.sqrt(np.diag(A @ S[:num_pre, :num_pre] @ A.T))
    mub = float(np.max(diffs + norm.ppf(0.95) * se))
    return np.linspace(0.0, max(mub, 0.0), 10)


def _rm_grid_bounds(b, S, num_pre, num_post, lv, mbar):
    """Default test-inversion grid for Delta^RM(Mbar) (HonestDiD pull request #53)."""
    se = math.sqrt(float(lv @ S[num_pre:, num_pre:] @ lv))
    maxpre = float(np.max(np.abs(np.diff(np.append(b[:num_pre], 0.0))))) if num_pre > 1 \
        else abs(float(b[0]))
    centre = float(lv @ b[num_pre:])
    half = mbar * float(np.arange(1, num_post + 1) @ np.abs(lv)) * maxpre + 20 * se
    return centre - half, centre + half


# ----------------------------------------------------------------------------- R's normal stream
@lru_cache(maxsize=8)
def _r_rnorm(n: int, seed: int) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (Mersenne-Twister, inversion), read-only.

    R seeds its generator by scrambling ``seed`` with an LCG (``RNG_Init``), draws
    uniforms ``y * 2^-32`` and turns two of them into one normal by inversion with
    2^27 resolution (``norm_rand``).  numpy's MT19937 gives the same 32-bit stream
    once given R's state.
    """
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    key = []
    for _ in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        key.append(s)
    bg = np.random.MT19937()
    bg.state = {"bit_generator": "MT19937",
                "state": {"key": np.array(key[1:], dtype=np.uint32), "pos": 624}}
    u = bg.random_raw(2 * n).astype(np.float64) * 2.3283064365386963e-10
    half = 0.5 * 2.328306437080797e-10
    u = np.where(u <= 0.0, half, np.where(1.0 - u <= 0.0, 1.0 - half, u)).reshape(n, 2)
    big = 134217728.0
    z = ndtri((np.floor(big * u[:, 0]) + u[:, 1]) / big)
    z.setflags(write=False)
    return z


def _r_rmvnorm(n: int, sigma: np.ndarray, seed: int) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (eigen square root)."""
    p = sigma.shape[0]
    lam, vec = np.linalg.eigh((sigma + sigma.T) / 2)
    root = (vec * np.sqrt(np.maximum(lam, 0.0))) @ vec.T
    return _r_rnorm(n * p, seed).reshape(n, p) @ root.T


def _quantile7(x: np.ndarray, p: float) -> float:
    """R's ``quantile(x, p)`` (type 7)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    index = 1 + (n - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    part = np.partition(x, sorted({lo - 1, hi - 1}))
    qlo = part[lo - 1]
    xhi = part[hi - 1]
    h = index - lo
    if index > lo and xhi != qlo:
        return float((1 - h) * qlo + h * xhi)
    return float(qlo)


class _FoldedNormal:
    """Quantile ``p`` of ``|N(mu, 1)|``: R's simulation (10^6 draws) or exact."""

    def __init__(self, p: float, seed: int, exact: bool):
        self.p, self.exact = p, exact
        self.draws = None if exact else _r_rnorm(1_000_000, seed)
        self._cache: dict = {}

    def q(self, mu: float) -> float:
        if mu in self._cache:
            return self._cache[mu]
        if self.exact:
            a = abs(mu)
            f = lambda c: ndtr(c - a) - ndtr(-c - a) - self.p  # noqa: E731
            out = brentq(f, 0.0, a + 10.0, xtol=1e-15, rtol=4 * _EPS, maxiter=200)
        else:
            out = _quantile7(np.abs(self.draws + mu), self.p)
        self._cache[mu] = out
        return out


# ----------------------------------------------------------------------------- smoothness: FLCI
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


# ----------------------------------------------------------------------------- Delta matrices
def _a_sd(num_pre, num_post):
    """R's ``.create_A_SD``: +- second differences (delta_0 = 0 dropped)."""
    n = num_pre + num_post
    At = np.zeros((n - 1, n + 1))
    for r in range(n - 1):
        At[r, r:r + 3] = (1.0, -2.0, 1.0)
    At = np.delete(At, num_pre, axis=1)
    return np.vstack([At, -At])


def _create_a_rm(num_pre, num_post, mbar, s, max_positive):
    """R's ``.create_A_RM``: Delta^RM with the largest pre-period change at ``s``."""
    n = num_pre + num_post
    At = np.zeros((n, n + 1))
    for r in range(n):
        At[r, r:r + 2] = (-1.0, 1.0)
    v = np.zeros(n + 1)
    v[num_pre + s - 1:num_pre + s + 1] = (-1.0, 1.0)
    if not max_positive:
        v = -v
    ub = np.vstack([np.tile(v, (num_pre, 1)), np.tile(mbar * v, (num_post, 1))])
    A = np.vstack([At - ub, -At - ub])
    A = A[np.sum(A * A, axis=1) > 1e-10]
    return np.delete(A, num_pre, axis=1)


# ----------------------------------------------------------------------------- ARP machinery
def _trunc_norm_quantile(p, lo, hi, mu=0.0, sd=1.0):
    """Quantile ``p`` of N(mu, sd^2) truncated to [lo, hi] (R's ``TruncatedNormal::norminvp``)."""
    a, b = (lo - mu) / sd, (hi - mu) / sd
    if not a < b:
        return math.nan
    if a > 0:  # upper tail: work with survival functions on the log scale
        la, lb = log_ndtr(-a), log_ndtr(-b)
        lq = la + math.log1p(-p * -math.expm1(lb - la)) if np.isfinite(lb) else \
            la + math.log1p(-p)
        return mu - sd * float(ndtri_exp(lq))
    la, lb = log_ndtr(a), log_ndtr(b)
    if np.isfinite(la):
        lq = lb + math.log1p(-(1 - p) * -math.expm1(la - lb))
    else:
        lq = lb + math.log(p)
    return mu + sd * float(ndtri_exp(lq))


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


def _rm_accept(b, S, num_pre, num_post, lv, mbar, alpha, hybrid, grid, seed, force_lp=False):
    """R's ``computeConditionalCS_DeltaRM``: union over the location and sign of the
    largest pre-period change of the ARP confidence sets (post-period moments only)."""
    kappa = alpha / 10
    acc = np.zeros(len(grid), dtype=bool)
    for s in range(-(num_pre - 1), 1):
        for pos in (True, False):
            A = _create_a_rm(num_pre, num_post, mbar, s, pos)
            d = np.zeros(A.shape[0])
            if num_post > 1:
                rows = np.flatnonzero(np.any(A[:, num_pre:] != 0, axis=1))
                acc |= _arp_accept_nuisance(b, S, num_pre, num_post, A, d, lv, alpha, hybrid,
                                            kappa, grid, rows, seed, force_lp=force_lp)
            else:
                rows = np.flatnonzero(A[:, -1] != 0)
                acc |= _arp_accept_no_nuisance(b, S, num_pre, A[rows], d[rows], lv, alpha,
                                               hybrid, kappa, grid, seed)
    return acc


# ----------------------------------------------------------------------------- event study
