"""Robust confidence intervals over a grid of M or Mbar, and the usual interval."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from phm_eval.errors import ConfigError

from ._common import _check_inputs, _m_grid, _original
from ._critical import _FoldedNormal
from .relative_magnitude import _rm_accept, _rm_grid_bounds
from .result import HonestDiDResult
from .smoothness import _default_m_smoothness, _FLCIProblem


def honest_did(betahat: npt.ArrayLike, sigma: npt.ArrayLike, num_pre: int, num_post: int,
               *,
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
                *,
                l_vec: npt.ArrayLike | None = None, alpha: float = 0.05) -> tuple:
    """Usual interval for ``l' beta_post`` (R's ``constructOriginalCS``): ``(lb, ub)``."""
    b, S, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec)
    lo, hi, _, _ = _original(b, S, num_pre, lv, alpha)
    return lo, hi
