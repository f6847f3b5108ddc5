"""Efron-tie risk-set quantities of the Cox model, as R's survival package computes them.

Each of ``d`` deaths tied at a time is treated as a separate term in which the
tied deaths count ``1, (d-1)/d, ..., 1/d`` in the risk set. Expanding the deaths
into these terms lets every sum over a risk set become a cumulative sum, so score
residuals (``coxscore2``), the information matrix and the time-weighted score test
behind ``cox.zph`` (``zph1``) are linear in the number of rows.

Arrays are sorted by ascending time; ``X`` should be centred for numerical stability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phm_eval.survival._data import distinct_times


@dataclass
class EfronTerms:
    """One entry per death: its distinct-time index, Efron fraction, mean and hazard."""

    inverse: np.ndarray  # distinct-time index of each row
    k: np.ndarray  # distinct-time index of each term
    frac: np.ndarray  # (rank within the tie) / d
    xbar: np.ndarray  # (n_deaths, p)
    hazard: np.ndarray  # 1 / working denominator
    n_deaths: np.ndarray  # deaths at each distinct time
    risk: np.ndarray  # exp(x beta) per row
    n_times: int


def efron_terms(time: np.ndarray, event: np.ndarray, X: np.ndarray, beta: np.ndarray) -> EfronTerms:
    """Working risk-set means and hazards of every Efron term."""
    uniq, first, inverse = distinct_times(time)
    risk = np.exp(X @ beta)
    rx = X * risk[:, None]
    r0 = np.cumsum(risk[::-1])[::-1][first]
    r1 = np.cumsum(rx[::-1], axis=0)[::-1][first]
    ev = event.astype(bool)
    nd = np.bincount(inverse, weights=ev, minlength=uniq.size)
    d0 = np.bincount(inverse, weights=risk * ev, minlength=uniq.size)
    d1 = np.zeros_like(r1)
    np.add.at(d1, inverse[ev], rx[ev])
    k = inverse[ev]
    # rank of each death within its tie: deaths are contiguous once sorted by time
    start = np.searchsorted(k, k, side="left")
    frac = (np.arange(k.size) - start) / nd[k]
    den = r0[k] - frac * d0[k]
    xbar = (r1[k] - frac[:, None] * d1[k]) / den[:, None]
    return EfronTerms(inverse=inverse, k=k, frac=frac, xbar=xbar, hazard=1.0 / den,
                      n_deaths=nd, risk=risk, n_times=uniq.size)


def _weighted_information(
    X: np.ndarray, event: np.ndarray, t: EfronTerms, g_terms: np.ndarray
) -> np.ndarray:
    """``sum_terms g * Var_term(x)`` with Efron's down-weighted deaths."""
    n_t = t.n_times
    haz_g = np.bincount(t.k, weights=t.hazard * g_terms, minlength=n_t)
    frac_haz_g = np.bincount(t.k, weights=t.frac * t.hazard * g_terms, minlength=n_t)
    w = t.risk * (np.cumsum(haz_g)[t.inverse] - np.where(event, frac_haz_g[t.inverse], 0.0))
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
    ch, xh = np.cumsum(haz_k), np.cumsum(hx_k, axis=0)
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

    ``g_times`` is the centred time transform at each distinct time.
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
