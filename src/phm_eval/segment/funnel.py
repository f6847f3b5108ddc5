"""Funnel-plot control limits for rates (Spiegelhalter, Stat Med 2005;24:1185).

A unit (practice) with ``n`` registered patients and ``y`` events is compared with a target
rate ``theta`` (events per patient; by default the pooled rate of all units, sum y / sum n).
Under the null hypothesis ``y ~ Poisson(theta * n)``, and the control limits at level ``L``
(95% and 99.8% by default, about 2 and 3 standard deviations) are the ``(1 - L) / 2`` and
``(1 + L) / 2`` quantiles of ``y / n``.

``method="exact"`` (the default) uses Poisson quantiles made continuous by Spiegelhalter's
interpolation (2005, appendix A.1.1): with ``r_p`` the smallest integer such that
``P(Y <= r_p) >= p`` and ``alpha = (P(Y <= r_p) - p) / (P(Y <= r_p) - P(Y <= r_p - 1))``,
the limit is ``(r_p - alpha) / n`` (truncated at 0). These are prediction limits for an
in-control unit, not confidence intervals around each unit's own rate (the chi-squared
"exact" intervals of some packages, such as FunnelPlotR, are the latter).
``method="normal"`` uses ``theta +/- z * sqrt(theta / n)``, truncated at 0.

All rates are returned per ``per`` patients (1,000 by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.errors import InputError


def _level_name(level: float) -> str:
    return f"{level * 100:g}"


def poisson_limit(expected: np.ndarray, p: float) -> np.ndarray:
    """Interpolated ``p``-quantile of Poisson(``expected``) counts (Spiegelhalter 2005).

    Returns ``r_p - alpha``: a continuous count, at least ``-1`` before truncation.
    """
    mu = np.asarray(expected, dtype=float)
    r = stats.poisson.ppf(p, mu)
    upper = stats.poisson.cdf(r, mu)
    lower = stats.poisson.cdf(r - 1, mu)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(upper > lower, (upper - p) / (upper - lower), 0.0)
    return r - alpha


def funnel_limits(
    denominator: Sequence[float] | np.ndarray | pd.Series,
    target: float,
    *,
    levels: Sequence[float] = (0.95, 0.998),
    method: str = "exact",
    per: float = 1000.0,
) -> pd.DataFrame:
    """Lower and upper control limits of a rate at each denominator.

    Parameters
    ----------
    denominator : array-like
        Unit sizes (e.g. registered list sizes); must be positive.
    target : float
        Target rate in events per unit of denominator (not per ``per``).
    levels : sequence of float
        Two-sided coverage of each pair of limits (0.95 and 0.998 by default).
    method : {"exact", "normal"}
        Interpolated Poisson quantiles or the normal approximation.
    per : float
        Scale of the returned rates (1,000 = per 1,000 patients).

    Returns
    -------
    pandas.DataFrame
        ``denominator``, ``expected`` (``target * denominator``), ``target_rate`` and, per
        level, ``lower_<L>`` and ``upper_<L>`` (e.g. ``lower_95``, ``upper_99.8``), all rates
        per ``per``.
    """
    n = np.asarray(denominator, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InputError("funnel", "denominators must be positive numbers")
    if not np.isfinite(target) or target < 0:
        raise InputError("funnel", f"target rate must be a non-negative number, got {target}")
    if method not in ("exact", "normal"):
        raise InputError("funnel", f"method must be 'exact' or 'normal', got {method!r}")
    out = pd.DataFrame({"denominator": n, "expected": target * n, "target_rate": target * per})
    for level in levels:
        if not 0 < level < 1:
            raise InputError("funnel", f"levels must lie in (0, 1), got {level}")
        lo_p, hi_p = (1 - level) / 2, (1 + level) / 2
        if method == "exact":
            lower = poisson_limit(target * n, lo_p) / n
            upper = poisson_limit(target * n, hi_p) / n
        else:
            z = stats.norm.ppf(hi_p)
            half = z * np.sqrt(target / n)
            lower, upper = target - half, target + half
        name = _level_name(level)
        out[f"lower_{name}"] = np.maximum(lower, 0.0) * per
        out[f"upper_{name}"] = np.maximum(upper, 0.0) * per
    return out


def funnel_data(
    table: pd.DataFrame,
    count_col: str,
    denominator_col: str,
    target: float | None = None,
    *,
    levels: Sequence[float] = (0.95, 0.998),
    method: str = "exact",
    per: float = 1000.0,
) -> pd.DataFrame:
    """Each unit's rate, its control limits and whether it lies outside them.

    Rows with a missing count or denominator (e.g. suppressed by disclosure control) or a
    zero denominator are dropped; ``.attrs["n_dropped"]`` says how many.

    Parameters
    ----------
    table : DataFrame
        One row per unit with a count column and a denominator column.
    count_col, denominator_col : str
    target : float, optional
        Target rate in events per unit of denominator; default the pooled rate of the rows kept.
    levels, method, per
        As :func:`funnel_limits`.

    Returns
    -------
    pandas.DataFrame
        The kept rows with ``rate`` (per ``per``), the limit columns of :func:`funnel_limits`,
        ``z`` (``(y - expected) / sqrt(expected)``) and ``outside_<L>`` flags (``"high"``,
        ``"low"`` or ``""``) per level.
    """
    for col in (count_col, denominator_col):
        if col not in table.columns:
            raise InputError("funnel", f"column '{col}' is missing", column=col)
    y = pd.to_numeric(table[count_col], errors="coerce").astype(float)
    n = pd.to_numeric(table[denominator_col], errors="coerce").astype(float)
    keep = y.notna() & n.notna() & (n > 0)
    data = table.loc[keep].copy()
    y, n = y[keep].to_numpy(), n[keep].to_numpy()
    if len(data) == 0:
        raise InputError("funnel", "no rows with a count and a positive denominator")
    theta = float(y.sum() / n.sum()) if target is None else float(target)
    limits = funnel_limits(n, theta, levels=levels, method=method, per=per)
    data["rate"] = y / n * per
    for col in limits.columns:
        if col != "denominator":
            data[col] = limits[col].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        data["z"] = (y - theta * n) / np.sqrt(theta * n)
    for level in levels:
        name = _level_name(level)
        data[f"outside_{name}"] = np.select(
            [data["rate"] > data[f"upper_{name}"], data["rate"] < data[f"lower_{name}"]],
            ["high", "low"], default="",
        )
    data.attrs["n_dropped"] = int((~keep).sum())
    data.attrs["target"] = theta
    data.attrs["method"] = method
    data.attrs["levels"] = list(levels)
    return data


def limits_curve(
    n_min: float, n_max: float, target: float, *, levels: Sequence[float] = (0.95, 0.998),
    method: str = "exact", per: float = 1000.0, points: int = 200,
) -> pd.DataFrame:
    """Control limits on a grid of denominators, for drawing the funnel."""
    lo = max(1.0, float(n_min) * 0.8)
    hi = max(lo * 1.01, float(n_max) * 1.1)
    grid = np.unique(np.round(np.geomspace(lo, hi, points)))
    return funnel_limits(grid, target, levels=levels, method=method, per=per)


