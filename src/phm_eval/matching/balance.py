"""Covariate balance before and after matching, as MatchIt's ``summary()`` reports it.

Conventions (MatchIt >= 4.5, estimand ATT, ``standardize = TRUE``):

* **Std. mean difference** = (weighted treated mean - weighted control mean) / SD,
  where the SD is that of the *treated group in the full sample*, unweighted,
  both before and after matching, so the two columns share a denominator.
  For a 0/1 variable the variance is p(1 - p) (no n - 1 correction); otherwise
  it is the sample variance (n - 1). When the absolute mean difference is
  below ``sqrt(machine epsilon)`` the raw difference is reported.
* **Variance ratio** = weighted treated variance / weighted control variance
  (reliability-weights formula); not given for 0/1 variables.
* **eCDF mean / max**: mean and maximum absolute difference between the
  weighted empirical CDFs of the groups, evaluated at each distinct value of
  the variable in the whole sample; for 0/1 variables both equal the absolute
  mean difference.
* **Std. pair distance** (after matching only): mean absolute within-pair
  difference, divided by the same SD.

Text and categorical variables are shown as one 0/1 row per level, named
``<column><level>`` as R names them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from phm_eval.matching.scores import category_levels, is_categorical

_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))

#: Column names of :func:`balance_table`, before and after matching.
BALANCE_COLUMNS = [
    "mean_treated_before",
    "mean_control_before",
    "smd_before",
    "var_ratio_before",
    "ecdf_mean_before",
    "ecdf_max_before",
    "mean_treated_after",
    "mean_control_after",
    "smd_after",
    "var_ratio_after",
    "ecdf_mean_after",
    "ecdf_max_after",
    "std_pair_dist_after",
]


def balance_terms(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Numeric columns for the balance table: numbers as they are, one 0/1 column per level.

    Parameters
    ----------
    df : pandas.DataFrame
    columns : sequence of str

    Returns
    -------
    pandas.DataFrame
        Same index as ``df``; float columns.
    """
    out: dict[str, np.ndarray] = {}
    for col in columns:
        x = df[col]
        if is_categorical(x):
            for level in category_levels(x):
                out[f"{col}{level}"] = (x == level).to_numpy(dtype=float)
        else:
            out[col] = x.to_numpy(dtype=float)
    return pd.DataFrame(out, index=df.index)


def _wvar(x: np.ndarray, binary: bool, w: np.ndarray) -> float:
    w = w / w.sum()
    mx = float(np.sum(w * x))
    if binary:
        return mx * (1.0 - mx)
    return float(np.sum(w * (x - mx) ** 2) / (1.0 - np.sum(w**2)))


def _pooled_sd(x: np.ndarray, treat: np.ndarray, binary: bool) -> float:
    # MatchIt's fallback when the treated SD is zero (sampling weights all 1).
    n = x.shape[0]
    if binary:
        v = 0.0
        for g in (True, False):
            xi = x[treat == g]
            sxi = xi.sum()
            v += sxi * (1.0 - sxi / xi.shape[0]) / n
        return float(np.sqrt(v))
    xc = x.copy()
    for g in (True, False):
        xc[treat == g] -= xc[treat == g].mean()
    w_ = np.full(n, 1.0 / n)
    return float(np.sqrt(np.sum(w_ * xc**2) / (1.0 - np.sum(w_**2))))


def _ecdf_stats(x: np.ndarray, treat: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    w = w.astype(float).copy()
    for g in (True, False):
        w[treat == g] /= w[treat == g].sum()
    order = np.argsort(x, kind="stable")
    x_ord = x[order]
    t_ord = treat[order]
    w_ord = w[order]
    first_group = t_ord == t_ord[0]
    signed = np.where(first_group, -w_ord, w_ord)
    ediff = np.abs(np.cumsum(signed))[np.append(np.diff(x_ord) != 0, True)]
    return float(ediff.mean()), float(ediff.max())


def term_balance(
    x: np.ndarray,
    treat: np.ndarray,
    weights: np.ndarray | None = None,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """Balance statistics for one variable, as MatchIt's ``bal1var`` computes them.

    Parameters
    ----------
    x : numpy.ndarray
        The variable for every unit.
    treat : numpy.ndarray of bool
    weights : numpy.ndarray, optional
        Matching weights; ``None`` for the unmatched sample.
    pairs : (treated_rows, control_rows), optional
        Row positions of matched pairs, for the pair distance.

    Returns
    -------
    dict
        ``mean_treated``, ``mean_control``, ``smd``, ``var_ratio``,
        ``ecdf_mean``, ``ecdf_max``, ``std_pair_dist`` (NaN where undefined).
    """
    x = np.asarray(x, dtype=float)
    treat = np.asarray(treat, dtype=bool)
    unweighted = weights is None
    w = np.ones_like(x) if unweighted else np.asarray(weights, dtype=float)
    binary = bool(np.all((x == 0) | (x == 1)))
    x1, x0 = x[treat], x[~treat]
    w1, w0 = w[treat], w[~treat]
    too_small = np.count_nonzero(w1) < 2 and np.count_nonzero(w0) < 2
    out = dict.fromkeys(
        ("mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max",
         "std_pair_dist"),
        float("nan"),
    )
    out["mean_treated"] = float(np.sum(x1 * w1) / np.sum(w1))
    out["mean_control"] = float(np.sum(x0 * w0) / np.sum(w0))
    mdiff = out["mean_treated"] - out["mean_control"]

    pair_dist = float("nan")
    if not unweighted and pairs is not None and len(pairs[0]) > 0:
        pair_dist = float(np.mean(np.abs(x[pairs[0]] - x[pairs[1]])))

    if abs(mdiff) > _SQRT_EPS:
        if not too_small:
            sd = float(np.sqrt(_wvar(x1, binary, np.ones_like(x1))))
            if not np.isfinite(sd) or sd < _SQRT_EPS:
                sd = _pooled_sd(x, treat, binary)
            out["smd"] = mdiff / sd
            if not unweighted:
                out["std_pair_dist"] = pair_dist / sd if abs(pair_dist) > 1e-8 else pair_dist
    else:
        out["smd"] = mdiff
        if not unweighted:
            out["std_pair_dist"] = pair_dist

    if binary:
        out["ecdf_mean"] = out["ecdf_max"] = abs(mdiff)
    elif not too_small:
        out["var_ratio"] = _wvar(x1, binary, w1) / _wvar(x0, binary, w0)
        out["ecdf_mean"], out["ecdf_max"] = _ecdf_stats(x, treat, w)
    return out


def balance_table(
    terms: pd.DataFrame,
    treat: np.ndarray,
    weights: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    distance: np.ndarray | None = None,
) -> pd.DataFrame:
    """Balance of every term before and after matching (MatchIt ``summary()``, ATT).

    Parameters
    ----------
    terms : pandas.DataFrame
        Numeric columns (see :func:`balance_terms`), one row per unit.
    treat : numpy.ndarray of bool
    weights : numpy.ndarray
        Matching weights (0 for unmatched units).
    pairs : (treated_rows, control_rows), optional
        Matched pairs for the standardised pair distance.
    distance : numpy.ndarray, optional
        The matching score; shown first, as row ``"distance"``.

    Returns
    -------
    pandas.DataFrame
        Index ``term``; columns :data:`BALANCE_COLUMNS`.
    """
    rows: dict[str, dict[str, float]] = {}
    items: list[tuple[str, np.ndarray]] = []
    if distance is not None:
        items.append(("distance", np.asarray(distance, dtype=float)))
    items.extend((name, terms[name].to_numpy(dtype=float)) for name in terms.columns)
    for name, x in items:
        before = term_balance(x, treat)
        after = term_balance(x, treat, weights, pairs)
        row = {f"{k}_before": v for k, v in before.items() if k != "std_pair_dist"}
        row.update({f"{k}_after": v for k, v in after.items()})
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")[BALANCE_COLUMNS]
    table.index.name = "term"
    return table


def distinct_covariates(df: pd.DataFrame, covariates: Sequence[str],
                        exact: Sequence[str]) -> list[str]:
    """The balance table's covariates, each characteristic once: the matching covariates
    without those that repeat a level of an exact-matching column (a 0/1 ``female`` beside an
    exact ``sex``, whose ``sexF`` row is the same numbers), then the exact columns.

    Parameters
    ----------
    df : pandas.DataFrame
        The matched data (covariates and exact columns).
    covariates, exact : sequence of str

    Returns
    -------
    list of str
        For :meth:`~phm_eval.matching.MatchResult.balance`.
    """
    exact = [c for c in exact if c not in covariates]
    levels = balance_terms(df, exact) if exact else pd.DataFrame(index=df.index)
    keep = []
    for col in covariates:
        x = pd.to_numeric(df[col], errors="coerce") if not is_categorical(df[col]) else None
        repeats = x is not None and any(
            np.array_equal(x.to_numpy(dtype=float), levels[t].to_numpy(), equal_nan=True)
            for t in levels.columns)
        if not repeats:
            keep.append(col)
    return keep + exact
