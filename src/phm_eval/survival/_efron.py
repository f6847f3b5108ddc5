"""Efron-tie risk-set quantities of the Cox model, as R's survival package computes them.

Each of ``d`` deaths tied at a time is treated as a separate term in which the
tied deaths count ``1, (d-1)/d, ..., 1/d`` in the risk set. Expanding the deaths
into these terms lets every sum over a risk set become a cumulative sum, so score
residuals (``coxscore2``), the information matrix and the time-weighted score test
behind ``cox.zph`` (``zph1``) are linear in the number of rows.

Arrays are sorted by ascending time; ``X`` should be centred for numerical stability.

Strata (R's ``strata()``): rows sorted by stratum, then time, and every risk set
is confined to its stratum. The distinct "times" are then distinct (stratum, time)
pairs, and every cumulative sum restarts at a stratum's first row, so one
vectorised pass serves any number of strata (thousands of matched sets included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phm_eval.survival._data import distinct_times


@dataclass
class EfronTerms:
    """One entry per death: its distinct-time index, Efron fraction, mean and hazard.

    With strata a "distinct time" is a distinct (stratum, time) pair; ``group_start``
    then holds, for each, the index of the first distinct time of its stratum.
    """

    inverse: np.ndarray  # distinct-time index of each row
    k: np.ndarray  # distinct-time index of each term
    frac: np.ndarray  # (rank within the tie) / d
    xbar: np.ndarray  # (n_deaths, p)
    hazard: np.ndarray  # 1 / working denominator
    n_deaths: np.ndarray  # deaths at each distinct time
    risk: np.ndarray  # exp(x beta) per row
    n_times: int
    group_start: np.ndarray | None = None  # first distinct time of each one's stratum

    def cumsum(self, values: np.ndarray) -> np.ndarray:
        """Cumulative sum over distinct times (axis 0), restarting at each stratum."""
        return cumsum_within(values, self.group_start)


@dataclass(frozen=True)
class StrataLayout:
    """Distinct (stratum, time) groups of rows sorted by stratum, then time."""

    first: np.ndarray  # first row of each group
    inverse: np.ndarray  # group of each row
    row_end: np.ndarray  # one past the last row of each group's stratum
    group_start: np.ndarray  # first group of each group's stratum


def strata_layout(time: np.ndarray, strata: np.ndarray) -> StrataLayout:
    """Groups of equal (stratum, time) for rows sorted by ``strata`` then ``time``."""
    n = time.size
    new_stratum = np.ones(n, dtype=bool)
    new_stratum[1:] = strata[1:] != strata[:-1]
    new_group = new_stratum.copy()
    new_group[1:] |= time[1:] != time[:-1]
    first = np.flatnonzero(new_group)
    inverse = np.cumsum(new_group) - 1
    stratum_first_row = np.flatnonzero(new_stratum)
    stratum_of_row = np.cumsum(new_stratum) - 1
    row_end = np.append(stratum_first_row[1:], n)[stratum_of_row[first]]
    group_start = inverse[stratum_first_row][stratum_of_row[first]]
    return StrataLayout(first=first, inverse=inverse, row_end=row_end, group_start=group_start)


def cumsum_within(values: np.ndarray, group_start: np.ndarray | None) -> np.ndarray:
    """Cumulative sum along axis 0, restarting where ``group_start`` says a stratum begins."""
    cs = np.cumsum(values, axis=0)
    if group_start is None:
        return cs
    zero = np.zeros((1,) + cs.shape[1:])
    return cs - np.concatenate((zero, cs))[group_start]


def _reverse_cumsum(values: np.ndarray) -> np.ndarray:
    """``out[i] = sum(values[i:])`` along axis 0, with a trailing zero row."""
    rc = np.cumsum(values[::-1], axis=0)[::-1]
    zero = np.zeros((1,) + rc.shape[1:])
    return np.concatenate((rc, zero))


def efron_terms(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,
    beta: np.ndarray,
    strata: np.ndarray | None = None,
) -> EfronTerms:
    """Working risk-set means and hazards of every Efron term.

    Parameters
    ----------
    time, event, X, beta
        Rows sorted by time (by stratum, then time, when ``strata`` is given).
    strata : ndarray of int, optional
        Stratum code of each row (non-decreasing); risk sets stay within strata.
    """
    risk = np.exp(X @ beta)
    rx = X * risk[:, None]
    group_start = None
    if strata is None:
        uniq, first, inverse = distinct_times(time)
        n_times = uniq.size
        r0 = np.cumsum(risk[::-1])[::-1][first]
        r1 = np.cumsum(rx[::-1], axis=0)[::-1][first]
    else:
        layout = strata_layout(time, strata)
        first, inverse, group_start = layout.first, layout.inverse, layout.group_start
        n_times = first.size
        # risk set of a group: its stratum's rows from the group's first row on
        rc0, rc1 = _reverse_cumsum(risk), _reverse_cumsum(rx)
        r0 = rc0[first] - rc0[layout.row_end]
        r1 = rc1[first] - rc1[layout.row_end]
    ev = event.astype(bool)
    nd = np.bincount(inverse, weights=ev, minlength=n_times)
    d0 = np.bincount(inverse, weights=risk * ev, minlength=n_times)
    d1 = np.zeros_like(r1)
    np.add.at(d1, inverse[ev], rx[ev])
    k = inverse[ev]
    # rank of each death within its tie: deaths are contiguous once sorted by time
    start = np.searchsorted(k, k, side="left")
    frac = (np.arange(k.size) - start) / nd[k]
    den = r0[k] - frac * d0[k]
    xbar = (r1[k] - frac[:, None] * d1[k]) / den[:, None]
    return EfronTerms(inverse=inverse, k=k, frac=frac, xbar=xbar, hazard=1.0 / den,
                      n_deaths=nd, risk=risk, n_times=n_times, group_start=group_start)


def log_partial_likelihood(X: np.ndarray, event: np.ndarray, beta: np.ndarray,
                           t: EfronTerms) -> float:
    """Efron log partial likelihood (unchanged by centring ``X``: one term per death)."""
    ev = event.astype(bool)
    return float(X[ev].sum(axis=0) @ beta + np.log(t.hazard).sum())


def score(X: np.ndarray, event: np.ndarray, t: EfronTerms) -> np.ndarray:
    """Score vector: sum over deaths of the covariates minus the Efron risk-set means."""
    return X[event.astype(bool)].sum(axis=0) - t.xbar.sum(axis=0)


def newton_raphson(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,
    strata: np.ndarray | None = None,
    precision: float = 1e-12,
    max_iter: int = 100,
) -> tuple[np.ndarray, EfronTerms, float, int]:
    """Maximise the (stratified) Efron partial likelihood from ``beta = 0``.

    Newton steps with step halving when the log-likelihood falls, as R's
    ``coxph`` does. Stops when the largest step is below ``precision`` or the
    log-likelihood no longer changes beyond rounding.

    Returns
    -------
    beta, terms at beta, log partial likelihood, iterations used

    Raises
    ------
    numpy.linalg.LinAlgError
        Singular information matrix.
    RuntimeError
        No convergence within ``max_iter`` (e.g. a coefficient diverging).
    """
    ev = event.astype(bool)
    beta = np.zeros(X.shape[1])
    terms = efron_terms(time, ev, X, beta, strata)
    loglik = log_partial_likelihood(X, ev, beta, terms)
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(information(X, ev, terms), score(X, ev, terms))
        new_beta = beta + step
        new_terms = efron_terms(time, ev, X, new_beta, strata)
        new_loglik = log_partial_likelihood(X, ev, new_beta, new_terms)
        halvings = 0
        while not new_loglik >= loglik - 1e-12 * abs(loglik) and halvings < 30:
            step = step / 2
            new_beta = beta + step
            new_terms = efron_terms(time, ev, X, new_beta, strata)
            new_loglik = log_partial_likelihood(X, ev, new_beta, new_terms)
            halvings += 1
        change = abs(new_loglik - loglik)
        beta, terms, loglik = new_beta, new_terms, new_loglik
        if np.max(np.abs(step)) <= precision or (
                halvings == 0 and change <= 4 * np.finfo(float).eps * abs(loglik)):
            return beta, terms, loglik, it
    raise RuntimeError(f"no convergence in {max_iter} Newton-Raphson iterations")


def _weighted_information(
    X: np.ndarray, event: np.ndarray, t: EfronTerms, g_terms: np.ndarray
) -> np.ndarray:
    """``sum_terms g * Var_term(x)`` with Efron's down-weighted deaths."""
    n_t = t.n_times
    haz_g = np.bincount(t.k, weights=t.hazard * g_terms, minlength=n_t)
    frac_haz_g = np.bincount(t.k, weights=t.frac * t.hazard * g_terms, minlength=n_t)
    w = t.risk * (t.cumsum(haz_g)[t.inverse] - np.where(event, frac_haz_g[t.inverse], 0.0))
    return (X * w[:, None]).T @ X - (t.xbar * g_terms[:, None]).T @ t.xbar


def information(X: np.ndarray, event: np.ndarray, t: EfronTerms) -> np.ndarray:
    """Observed information matrix (inverse of the model-based variance)."""
    return _weighted_information(X, event.astype(bool), t, np.ones(t.k.size))


def score_residuals(X: np.ndarray, event: np.ndarray, t: EfronTerms) -> np.ndarray:
    """Per-row score residuals with Efron ties (``residuals.coxph(type = "score")``)."""
    ev = event.astype(bool)
    n_t, p = t.n_times, X.shape[1]
    haz_k = np.bincount(t.k, weights=t.hazard, minlength=n_t)
    hx_k = np.zeros((n_t, p))
    np.add.at(hx_k, t.k, t.xbar * t.hazard[:, None])
    ch, xh = t.cumsum(haz_k), t.cumsum(hx_k)
    resid = -t.risk[:, None] * (X * ch[t.inverse][:, None] - xh[t.inverse])
    # deaths: own term (x - mean xbar over the tie) and the part of the hazard not charged
    mean_xbar = np.zeros((n_t, p))
    np.add.at(mean_xbar, t.k, t.xbar)
    mean_xbar /= np.maximum(t.n_deaths, 1)[:, None]
    fh = np.bincount(t.k, weights=t.frac * t.hazard, minlength=n_t)
    fhx = np.zeros((n_t, p))
    np.add.at(fhx, t.k, t.xbar * (t.frac * t.hazard)[:, None])
    kd = t.inverse[ev]
    xd = X[ev]
    resid[ev] += xd - mean_xbar[kd] + t.risk[ev, None] * (xd * fh[kd][:, None] - fhx[kd])
    return resid


def zph_score_test(
    X: np.ndarray, event: np.ndarray, t: EfronTerms, g_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score vector and 2p x 2p information for adding ``x * g(t)`` terms (``zph1``).

    ``g_times`` is the centred time transform at each distinct time (each distinct
    (stratum, time) with strata).
    """
    ev = event.astype(bool)
    g = g_times[t.k]
    u2 = (X[ev] * g_times[t.inverse[ev]][:, None]).sum(axis=0) - g @ t.xbar
    i11 = _weighted_information(X, ev, t, np.ones_like(g))
    i12 = _weighted_information(X, ev, t, g)
    i22 = _weighted_information(X, ev, t, g * g)
    p = X.shape[1]
    imat = np.block([[i11, i12], [i12.T, i22]])
    return np.concatenate((np.zeros(p), u2)), imat
