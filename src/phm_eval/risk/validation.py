"""Performance of a risk model's predicted probabilities: discrimination and calibration.

Definitions follow Harrell's ``rms::val.prob`` so that numbers agree with what an R analyst
would report (TRIPOD+AI items 23a and 23b):

* ``calibration_intercept`` and ``calibration_slope`` are the two coefficients of the logistic
  recalibration model ``logit P(y=1) = a + b * logit(p)``, estimated jointly (val.prob's
  "Intercept" and "Slope").
* ``calibration_in_the_large`` is ``a`` with ``b`` fixed at 1 (``logit(p)`` as an offset):
  0 means the average predicted risk matches the observed event rate.
* ``emax``, ``e90`` and ``eavg`` are the maximum, 90th percentile and mean absolute difference
  between the predictions and a nonparametric calibration curve fitted by
  ``lowess(p, y, iter = 0)`` (R's default span 2/3 and ``delta = 1%`` of the range),
  evaluated at every observation. ``eavg`` is also known as the integrated calibration index.
* ``r2_nagelkerke`` is Nagelkerke's R2 of the predictions taken as given (no refitting):
  it can be negative when predictions are worse than the overall event rate.
* ``c_statistic`` is the exact area under the ROC curve (Mann-Whitney, ties count 1/2) and
  ``dxy = 2 * (c - 1/2)``. val.prob's own C is computed after binning predictions into
  5,000 equal-width bins, so it can differ from the exact value in the sixth decimal place.

Probabilities of exactly 0 or 1 have infinite logits: for the logit-based quantities they are
clipped to ``[1e-12, 1 - 1e-12]`` (val.prob drops them instead).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from phm_eval import DEFAULT_SEED
from phm_eval.errors import EstimationError, renamed_argument

logger = logging.getLogger(__name__)

_EPS = 1e-12

__all__ = [
    "bootstrap_metrics",
    "c_statistic",
    "calibration_curve",
    "calibration_metrics",
    "delong_ci",
    "lowess_r",
    "subgroup_metrics",
]


# ---------------------------------------------------------------------------------------------
# input checks


def _as_outcome_and_prob(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_prob has {p.size}")
    if y.size == 0:
        raise EstimationError("no observations to evaluate")
    if np.isnan(y).any() or np.isnan(p).any():
        raise ValueError("y_true and y_prob must not contain missing values")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must contain only 0 and 1")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must lie in [0, 1]")
    return y, p


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q / (1.0 - q))


# ---------------------------------------------------------------------------------------------
# logistic regression by Newton-Raphson (small designs, many rows)


def _fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray | None = None,
    *,
    start: np.ndarray | None = None,
    tol: float = 1e-11,
    max_iter: int = 100,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximum-likelihood logistic regression; returns (coef, covariance, deviance).

    Converges far more tightly than R's ``lrm.fit`` defaults, so coefficients agree with
    ``glm(..., epsilon = 1e-14)`` to about 1e-10. ``weights`` are frequency weights (a row
    with weight 2 counts as two rows).
    """
    n, k = X.shape
    off = np.zeros(n) if offset is None else offset
    w = np.ones(n) if weights is None else weights
    beta = np.zeros(k) if start is None else np.asarray(start, dtype=float).copy()

    def evaluate(b: np.ndarray) -> tuple[float, np.ndarray]:
        """Deviance and fitted probabilities from one exp and one log1p per row."""
        eta = X @ b + off
        e = np.exp(-np.abs(eta))
        # log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|)), without overflow
        dev = 2.0 * float(np.dot(w, np.maximum(eta, 0.0) + np.log1p(e) - y * eta))
        mu = np.where(eta >= 0, 1.0, e) / (1.0 + e)
        return dev, mu

    dev, mu = evaluate(beta)
    for _ in range(max_iter):
        score = X.T @ (w * (y - mu))
        info = (X * (w * mu * (1.0 - mu))[:, None]).T @ X
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError as exc:
            raise EstimationError("logistic calibration model is singular") from exc
        # step-halving keeps Newton stable when the start is far from the optimum
        for _half in range(30):
            new = beta + step
            new_dev, new_mu = evaluate(new)
            if np.isfinite(new_dev) and new_dev <= dev + 1e-9 * max(1.0, abs(dev)):
                break
            step = step / 2.0
        else:
            break
        beta, dev, mu = new, new_dev, new_mu
        if np.max(np.abs(step)) < tol:
            break
    info = (X * (w * mu * (1.0 - mu))[:, None]).T @ X
    cov = np.linalg.pinv(info)
    return beta, cov, dev


def _nagelkerke(events: float, n: float, dev_given: float) -> tuple[float, float]:
    """Null deviance (intercept only) and Nagelkerke's R2 for a model of deviance
    ``dev_given`` on ``n`` rows with ``events`` events."""
    prevalence = events / n
    dev_null = -2.0 * (events * np.log(prevalence) + (n - events) * np.log1p(-prevalence))
    r2 = (1.0 - np.exp(-(dev_null - dev_given) / n)) / (1.0 - np.exp(-dev_null / n))
    return float(dev_null), float(r2)


def _recalibration(y: np.ndarray, logit: np.ndarray, weights: np.ndarray | None = None,
                   start: Mapping[str, float] | None = None) -> dict[str, float]:
    """Calibration intercept and slope (``y ~ logit``) and calibration-in-the-large (intercept
    with ``logit`` as offset); ``weights`` are frequency weights, ``start`` an earlier result
    to start the fits from."""
    X = np.column_stack([np.ones_like(logit), logit])
    slope_start, citl_start = np.array([0.0, 1.0]), None
    if start is not None:
        slope_start = np.array([start["calibration_intercept"], start["calibration_slope"]])
        citl_start = np.array([start["calibration_in_the_large"]])
    coef, _cov, dev_recal = _fit_logistic(X, y, start=slope_start, weights=weights)
    citl, _, _ = _fit_logistic(X[:, :1], y, offset=logit, start=citl_start, weights=weights)
    return {
        "calibration_intercept": float(coef[0]),
        "calibration_slope": float(coef[1]),
        "calibration_in_the_large": float(citl[0]),
        "_deviance_recalibrated": dev_recal,
    }


# ---------------------------------------------------------------------------------------------
# discrimination


def c_statistic(y_true: Any, y_prob: Any) -> float:
    """Area under the ROC curve (concordance), ties in ``y_prob`` counted as one half.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Observed outcome.
    y_prob : array-like of float
        Predicted risk (any monotone score works).

    Returns
    -------
    float
        The c-statistic; NaN when only one outcome class is present.
    """
    y = np.asarray(y_true, dtype=float).ravel()
    score = np.asarray(y_prob, dtype=float).ravel()
    if y.shape != score.shape:
        raise ValueError(f"y_true has {y.size} values but y_prob has {score.size}")
    if not np.isin(y, (0.0, 1.0)).all() or np.isnan(score).any():
        raise ValueError("y_true must be 0/1 and y_prob free of missing values")
    return _auc(y, score)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    n1 = float(y.sum())
    n0 = float(y.size - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _binned_c(y: np.ndarray, p: np.ndarray, n_bins: int = 5000) -> float:
    """val.prob's C: predictions grouped into ``n_bins`` equal-width bins before ranking.

    Kept to show (in tests) that the only difference from the exact c-statistic is binning.
    """
    prob = expit(np.clip(_logit(p), -30.0, 30.0))
    return _auc(y, np.floor(n_bins * prob + 1.0))


def delong_ci(y_true: Any, y_prob: Any, *, alpha: float = 0.05) -> dict[str, float]:
    """c-statistic with DeLong's standard error and a normal-theory confidence interval.

    Uses the structural components of DeLong, DeLong & Clarke-Pearson (Biometrics 1988),
    computed with mid-ranks (Sun & Xu, IEEE Signal Process Lett 2014). The interval is
    ``c +/- z * se`` truncated to [0, 1], as ``pROC::ci.auc(method = "delong")``.

    Returns
    -------
    dict
        ``c_statistic``, ``se``, ``lower``, ``upper``.
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    pos = p[y == 1]
    neg = p[y == 0]
    m, n = pos.size, neg.size
    if m < 2 or n < 2:
        raise EstimationError("DeLong interval needs at least two events and two non-events")
    tx = stats.rankdata(pos)
    ty = stats.rankdata(neg)
    tz = stats.rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    se = float(np.sqrt(var))
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    return {
        "c_statistic": float(auc),
        "se": se,
        "lower": float(max(0.0, auc - z * se)),
        "upper": float(min(1.0, auc + z * se)),
    }


# ---------------------------------------------------------------------------------------------
# R-compatible lowess (iter = 0)


def _advance_window(x: np.ndarray, i: int, nleft: int, ns: int) -> int:
    """Slide the ``ns``-point window right while that brings its far edge closer to x[i]."""
    n = x.size
    last_left = n - ns  # window then ends at the last point
    xi = x[i]

    def moves(k: int) -> bool:
        return (xi - x[k]) > (x[k + ns] - xi)

    if nleft >= last_left or not moves(nleft):
        return nleft
    lo, hi = nleft, last_left  # moves(lo) is True; find the first k > lo where it is False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if moves(mid):
            lo = mid
        else:
            hi = mid
    return hi


def _local_fit(
    x: np.ndarray, y: np.ndarray, i: int, nleft: int, nright: int, x_range: float
) -> float | None:
    xs = x[i]
    h = max(xs - x[nleft], x[nright] - xs)
    h9 = 0.999 * h
    h1 = 0.001 * h
    # the window extends past nright over ties; it ends at the first point right of xs
    # farther than h9 away
    lo = max(nleft, int(np.searchsorted(x, xs, side="right")))
    hi = x.size
    while lo < hi:
        mid = (lo + hi) // 2
        if x[mid] - xs > h9:
            hi = mid
        else:
            lo = mid + 1
    end = lo
    xw = x[nleft:end]
    r = np.abs(xw - xs)
    t = r / h if h > 0 else np.zeros_like(r)
    t3 = t * t * t
    u = 1.0 - t3
    w = np.where(r <= h9, np.where(r <= h1, 1.0, u * u * u), 0.0)
    a = w.sum()
    if a <= 0.0:
        return None
    w = w / a
    if h > 0.0:
        a = float(np.sum(w * xw))
        b = xs - a
        c = float(np.sum(w * (xw - a) * (xw - a)))
        if np.sqrt(c) > 0.001 * x_range:
            b = b / c
            w = w * (b * (xw - a) + 1.0)
    return float(np.sum(w * y[nleft:end]))


def lowess_r(
    x: Any, y: Any, *, f: float = 2.0 / 3.0, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Locally weighted linear regression exactly as R's ``lowess(x, y, f, iter = 0)``.

    Follows Cleveland's algorithm as implemented in R (tricube weights over the nearest
    ``floor(f * n)`` points, local fits only at points at least ``delta`` apart with linear
    interpolation between them, tied x values sharing one fit). No robustness iterations,
    which is how ``rms::val.prob`` calls it.

    Parameters
    ----------
    x, y : array-like
        Data; NaN not allowed.
    f : float
        Span, the fraction of points in each local fit.
    delta : float, optional
        Distance within which fits are interpolated; default ``0.01 * (max(x) - min(x))``.

    Returns
    -------
    (x_sorted, fitted) : tuple of ndarray
        As R's ``lowess`` returns them: x in increasing order and the fit at each.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError("x and y must have the same length")
    n = xa.size
    if n == 0:
        raise ValueError("x is empty")
    order = np.argsort(xa, kind="stable")
    xs = xa[order]
    ys = ya[order]
    if n < 2:
        return xs, ys.copy()
    x_range = float(xs[-1] - xs[0])
    if delta is None:
        delta = 0.01 * x_range
    ns = max(2, min(n, int(f * n + 1e-7)))
    fit = np.empty(n)
    nleft = 0
    last = -1
    i = 0
    while True:
        if nleft + ns - 1 < n - 1:
            nleft = _advance_window(xs, i, nleft, ns)
        value = _local_fit(xs, ys, i, nleft, nleft + ns - 1, x_range)
        fit[i] = ys[i] if value is None else value
        if last < i - 1:
            denom = xs[i] - xs[last]
            j = np.arange(last + 1, i)
            alpha = (xs[j] - xs[last]) / denom
            fit[j] = alpha * fit[i] + (1.0 - alpha) * fit[last]
        last = i
        cut = xs[last] + delta
        ties_end = int(np.searchsorted(xs, xs[last], side="right"))
        fit[last + 1 : ties_end] = fit[last]
        last = ties_end - 1
        beyond = int(np.searchsorted(xs, cut, side="right"))
        i = max(last + 1, beyond - 1)
        if last >= n - 1:
            break
    return xs, fit


def _smooth_errors(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    xs, fit = lowess_r(p, y)
    # approx(..., xout = p, ties = mean) at the data points: the fit at each p
    order = np.argsort(p, kind="stable")
    cal = np.empty_like(fit)
    cal[order] = fit
    err = np.abs(p - cal)
    return {
        "emax": float(err.max()),
        "e90": float(np.quantile(err, 0.9)),
        "eavg": float(err.mean()),
    }


# ---------------------------------------------------------------------------------------------
# the metrics table


def calibration_metrics(y_true: Any, y_prob: Any, *, smooth: bool = True) -> dict[str, float]:
    """Discrimination and calibration of predicted risks, as ``rms::val.prob``.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Observed outcome (e.g. ``emergency_admission_12m``).
    y_prob : array-like of float
        Predicted probability of the outcome.
    smooth : bool, default True
        Compute the lowess-based ``emax``, ``e90`` and ``eavg`` (the slowest part on
        millions of rows).

    Returns
    -------
    dict
        ``n``, ``events``, ``observed_risk``, ``mean_predicted_risk``, ``oe_ratio``
        (observed / expected events), ``c_statistic``, ``dxy``, ``r2_nagelkerke``,
        ``brier``, ``calibration_intercept``, ``calibration_slope``,
        ``calibration_in_the_large``, ``emax``, ``e90``, ``eavg``, ``discrimination_index_D``,
        ``unreliability_index_U``, ``quality_index_Q``, ``spiegelhalter_z``,
        ``spiegelhalter_p``. See the module docstring for definitions.
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    n = float(y.size)
    events = float(y.sum())
    if events == 0 or events == n:
        raise EstimationError("calibration metrics need both events and non-events")
    logit = _logit(p)
    prevalence = events / n
    dev_given = float(2.0 * np.sum(np.logaddexp(0.0, logit) - y * logit))
    dev_null, r2 = _nagelkerke(events, n, dev_given)
    lr = dev_null - dev_given
    recal = _recalibration(y, logit)
    u_chisq = dev_given - recal.pop("_deviance_recalibrated")
    d_index = (lr - 1.0) / n
    u_index = (u_chisq - 2.0) / n
    spi_num = np.sum((y - p) * (1.0 - 2.0 * p))
    spi_den = np.sqrt(np.sum((1.0 - 2.0 * p) ** 2 * p * (1.0 - p)))
    spi_z = float(spi_num / spi_den) if spi_den > 0 else float("nan")
    c = _auc(y, p)
    out: dict[str, float] = {
        "n": n,
        "events": events,
        "observed_risk": prevalence,
        "mean_predicted_risk": float(p.mean()),
        "oe_ratio": float(events / p.sum()),
        "c_statistic": c,
        "dxy": 2.0 * c - 1.0,
        "r2_nagelkerke": float(r2),
        "brier": float(np.mean((p - y) ** 2)),
        **recal,
    }
    if smooth:
        out.update(_smooth_errors(y, p))
    else:
        out.update({"emax": float("nan"), "e90": float("nan"), "eavg": float("nan")})
    out.update(
        {
            "discrimination_index_D": float(d_index),
            "unreliability_index_U": float(u_index),
            "quality_index_Q": float(d_index - u_index),
            "spiegelhalter_z": spi_z,
            "spiegelhalter_p": float(2.0 * stats.norm.sf(abs(spi_z))),
        }
    )
    return out


# ---------------------------------------------------------------------------------------------
# bootstrap confidence intervals

_BOOT_METRICS = (
    "c_statistic",
    "calibration_intercept",
    "calibration_slope",
    "calibration_in_the_large",
    "oe_ratio",
    "brier",
    "r2_nagelkerke",
    "emax",
    "e90",
    "eavg",
)


def bootstrap_metrics(
    y_true: Any,
    y_prob: Any,
    *,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    smooth: bool = False,
    seed: int | np.random.Generator | None = None,
    n_boot: int | None = None,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Percentile bootstrap confidence intervals for :func:`calibration_metrics`.

    Rows are resampled with replacement ``n_bootstrap`` times with the model's predictions held
    fixed (uncertainty from the validation sample only). The c-statistic also gets DeLong's
    analytic interval.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome and predicted risk.
    n_bootstrap : int, default 200
        Bootstrap replicates (``RiskModelConfig.n_bootstrap``).
    alpha : float, default 0.05
        1 - confidence level.
    smooth : bool, default False
        Also bootstrap the lowess-based Emax/E90/Eavg (slow on large data).
    seed : int or Generator, optional
        Seed of the resamples; ``None`` (not given) is ``phm_eval.DEFAULT_SEED``.
    n_boot, random_state : optional
        Former names of ``n_bootstrap`` and ``seed``, still accepted with a
        ``DeprecationWarning``.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric, with columns ``estimate``, ``lower``, ``upper``, ``method``
        (``percentile bootstrap`` or ``DeLong``) and ``n_boot`` (the replicates used:
        the column keeps its name, which saved reports hold).
    """
    n_bootstrap = renamed_argument("bootstrap_metrics", "n_bootstrap", n_bootstrap, "n_boot",
                                   n_boot, default=200)
    seed = renamed_argument("bootstrap_metrics", "seed", seed, "random_state", random_state)
    seed = DEFAULT_SEED if seed is None else seed
    y, p = _as_outcome_and_prob(y_true, y_prob)
    rng = np.random.default_rng(seed)
    point = calibration_metrics(y, p, smooth=smooth)
    names = [m for m in _BOOT_METRICS if smooth or m not in ("emax", "e90", "eavg")]
    draws = np.full((n_bootstrap, len(names)), np.nan)
    n = y.size
    failed = 0
    resampled = _ResampledMetrics(y, p, start=point)
    for b in range(n_bootstrap):
        idx = rng.integers(0, n, size=n)
        try:
            if smooth:
                res = calibration_metrics(y[idx], p[idx], smooth=True)
            else:
                res = resampled(np.bincount(idx, minlength=n).astype(float))
        except EstimationError:
            failed += 1
            continue
        draws[b] = [res[m] for m in names]
    if failed:
        logger.warning("%d of %d bootstrap samples had a single outcome class", failed, n_bootstrap)
    lo, hi = np.nanquantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    table = pd.DataFrame(
        {
            "estimate": [point[m] for m in names],
            "lower": lo,
            "upper": hi,
            "method": "percentile bootstrap",
            "n_boot": n_bootstrap - failed,
        },
        index=pd.Index(names, name="metric"),
    )
    dl = delong_ci(y, p, alpha=alpha)
    table.loc["c_statistic_delong"] = [
        dl["c_statistic"],
        dl["lower"],
        dl["upper"],
        "DeLong",
        0,
    ]
    return table


class _ResampledMetrics:
    """The bootstrap metrics of a resample given as frequency weights (row counts).

    Equal to ``calibration_metrics(y[idx], p[idx], smooth=False)`` for the resample ``idx`` with
    ``weights = bincount(idx)``, without copying or re-sorting a million rows per replicate:
    the predictions are ranked once, and the calibration models start from the full-sample fit.
    """

    def __init__(self, y: np.ndarray, p: np.ndarray, start: dict[str, float]) -> None:
        self.y, self.p = y, p
        self.logit = _logit(p)
        self.loss = np.logaddexp(0.0, self.logit) - y * self.logit
        self.sq_error = (p - y) ** 2
        _, self.tie_group = np.unique(p, return_inverse=True)
        self.n_groups = int(self.tie_group.max()) + 1
        self.start = start

    def __call__(self, w: np.ndarray) -> dict[str, float]:
        y = self.y
        keep = w > 0
        w, y_k = w[keep], y[keep]
        n = float(w.sum())
        events = float(np.dot(w, y_k))
        if events == 0 or events == n:
            raise EstimationError("calibration metrics need both events and non-events")
        group = self.tie_group[keep]
        pos = np.bincount(group, w * y_k, minlength=self.n_groups)
        neg = np.bincount(group, w * (1.0 - y_k), minlength=self.n_groups)
        below = np.cumsum(neg) - neg
        c = float(np.dot(pos, below + 0.5 * neg) / (events * (n - events)))
        _, r2 = _nagelkerke(events, n, 2.0 * float(np.dot(w, self.loss[keep])))
        recal = _recalibration(y_k, self.logit[keep], weights=w, start=self.start)
        recal.pop("_deviance_recalibrated")
        return {
            "c_statistic": c,
            **recal,
            "oe_ratio": events / float(np.dot(w, self.p[keep])),
            "brier": float(np.dot(w, self.sq_error[keep]) / n),
            "r2_nagelkerke": float(r2),
        }


# ---------------------------------------------------------------------------------------------
# flexible calibration curve


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis (Harrell's ``rcspline.eval`` with ``norm = 2``)."""
    k = knots.size
    tk, tk1 = knots[-1], knots[-2]
    scale = (tk - knots[0]) ** 2
    cols = [x]
    for j in range(k - 2):
        tj = knots[j]
        term = (
            np.clip(x - tj, 0, None) ** 3
            - np.clip(x - tk1, 0, None) ** 3 * (tk - tj) / (tk - tk1)
            + np.clip(x - tk, 0, None) ** 3 * (tk1 - tj) / (tk - tk1)
        )
        cols.append(term / scale)
    return np.column_stack(cols)


def calibration_curve(
    y_true: Any,
    y_prob: Any,
    *,
    method: str = "loess",
    n_points: int = 100,
    n_knots: int = 4,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Flexible (smoothed) calibration curve: observed risk as a function of predicted risk.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome and predicted risk.
    method : {"loess", "spline"}
        ``"loess"``: R's ``lowess(p, y, iter = 0)`` as val.prob draws it. ``"spline"``: a
        logistic regression of the outcome on a restricted cubic spline of ``logit(p)``
        (knots at Harrell's default quantiles), with pointwise confidence limits.
    n_points : int
        Grid size, spanning the 1st to 99th percentile of the predictions.
    n_knots : int
        Spline knots (3 to 5) for ``method="spline"``.
    alpha : float
        1 - confidence level of the spline's pointwise band.

    Returns
    -------
    pandas.DataFrame
        ``predicted``, ``observed`` and, for splines, ``lower`` and ``upper``.
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    grid = np.linspace(*np.quantile(p, [0.01, 0.99]), n_points)
    if method == "loess":
        xs, fit = lowess_r(p, y)
        ux, first = np.unique(xs, return_index=True)
        observed = np.interp(grid, ux, fit[first])
        return pd.DataFrame({"predicted": grid, "observed": observed})
    if method != "spline":
        raise ValueError("method must be 'loess' or 'spline'")
    probs = {3: [0.10, 0.5, 0.90], 4: [0.05, 0.35, 0.65, 0.95], 5: [0.05, 0.275, 0.5, 0.725, 0.95]}
    if n_knots not in probs:
        raise ValueError("n_knots must be 3, 4 or 5")
    lp = _logit(p)
    knots = np.unique(np.quantile(lp, probs[n_knots]))
    if knots.size < 3:
        raise EstimationError("too few distinct predictions for a spline calibration curve")
    X = np.column_stack([np.ones_like(lp), _rcs_basis(lp, knots)])
    coef, cov, _ = _fit_logistic(X, y)
    G = np.column_stack([np.ones(n_points), _rcs_basis(_logit(grid), knots)])
    eta = G @ coef
    se = np.sqrt(np.einsum("ij,jk,ik->i", G, cov, G))
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    return pd.DataFrame(
        {
            "predicted": grid,
            "observed": expit(eta),
            "lower": expit(eta - z * se),
            "upper": expit(eta + z * se),
        }
    )


# ---------------------------------------------------------------------------------------------
# subgroups


def subgroup_metrics(
    df: pd.DataFrame,
    y: str,
    p: str,
    by: Sequence[str],
    *,
    min_events: int = 1,
) -> pd.DataFrame:
    """Performance within subgroups (TRIPOD+AI item 23a: fairness across groups).

    Each column in ``by`` is taken on its own (not crossed with the others).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient.
    y, p : str
        Columns holding the outcome (0/1) and the predicted risk.
    by : sequence of str
        Grouping columns, e.g. ``["sex", "age_band", "ethnicity", "imd_quintile"]``.
        Missing values form their own group, labelled ``"missing"``.
    min_events : int, default 1
        Groups with fewer events or non-events than this get NaN for c-statistic and slope.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``group``, ``n``, ``events``, ``observed_risk``,
        ``mean_predicted_risk``, ``oe_ratio``, ``c_statistic``, ``c_lower``, ``c_upper``
        (DeLong 95%), ``calibration_in_the_large``, ``calibration_slope``.
    """
    rows = []
    for var in by:
        if var not in df.columns:
            raise KeyError(f"subgroup column '{var}' not in the data")
        labels = df[var].astype("object").where(df[var].notna(), "missing")
        for level, part in df.groupby(labels, sort=True, observed=True):
            yy, pp = _as_outcome_and_prob(part[y].to_numpy(), part[p].to_numpy())
            n = yy.size
            events = float(yy.sum())
            row: dict[str, Any] = {
                "variable": var,
                "group": level,
                "n": n,
                "events": events,
                "observed_risk": events / n,
                "mean_predicted_risk": float(pp.mean()),
                "oe_ratio": float(events / pp.sum()) if pp.sum() > 0 else float("nan"),
                "c_statistic": float("nan"),
                "c_lower": float("nan"),
                "c_upper": float("nan"),
                "calibration_in_the_large": float("nan"),
                "calibration_slope": float("nan"),
            }
            enough = min(events, n - events) >= max(min_events, 1)
            if enough:
                lp = _logit(pp)
                recal = _recalibration(yy, lp)
                row["calibration_in_the_large"] = recal["calibration_in_the_large"]
                row["calibration_slope"] = recal["calibration_slope"]
                row["c_statistic"] = _auc(yy, pp)
                if min(events, n - events) >= 2:
                    dl = delong_ci(yy, pp)
                    row["c_lower"], row["c_upper"] = dl["lower"], dl["upper"]
            rows.append(row)
    return pd.DataFrame(rows)
