"""Estimating equations and sandwich variance of the Fine & Gray (1999) model.

The numbers reproduce ``cmprsk::crr`` (R): inverse-probability-of-censoring
weights from one Kaplan-Meier estimate of the censoring distribution taken just
before each time, Breslow handling of tied failure times, and the robust variance
``I^-1 (sum_i (eta_i + psi_i)(eta_i + psi_i)') I^-1`` in which ``psi_i`` carries
the extra variability from estimating the censoring distribution (Fine & Gray
1999, section 3). cmprsk loops over people in Fortran (cubic time in the
variance); here every sum over a risk set is a cumulative sum, so a fit is
linear in the number of rows.

All arrays are sorted by ascending time; ``status`` is 0 censored, 1 the event
of interest, 2 a competing event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phm_eval.survival._data import CENSORED, COMPETING, INTEREST, distinct_times


@dataclass(frozen=True)
class RiskSetIndex:
    """Precomputed time structure shared by every evaluation at a new ``beta``."""

    n: int
    inverse: np.ndarray  # distinct-time index of each row
    first: np.ndarray  # first row at each distinct time
    g_minus: np.ndarray  # censoring survival just before each distinct time
    n_cens: np.ndarray  # censorings at each distinct time
    n_fail: np.ndarray  # events of interest at each distinct time
    fail_k: np.ndarray  # distinct-time indices with an event of interest
    uniq: np.ndarray
    is_fail: np.ndarray
    is_comp: np.ndarray
    is_cens: np.ndarray
    g_row: np.ndarray  # censoring survival just before each row's time


def build_index(time: np.ndarray, status: np.ndarray) -> RiskSetIndex:
    """Distinct times and the Kaplan-Meier estimate of the censoring distribution.

    The censoring survival is evaluated just before each time, ``G(t-)``, as crr
    does; its "events" are censorings and everyone with a time ``>= t`` is at risk.
    """
    uniq, first, inverse = distinct_times(time)
    n = time.size
    is_cens = status == CENSORED
    is_fail = status == INTEREST
    n_cens = np.bincount(inverse, weights=is_cens, minlength=uniq.size)
    n_fail = np.bincount(inverse, weights=is_fail, minlength=uniq.size)
    at_risk = n - first
    g_after = np.cumprod(1.0 - n_cens / at_risk)
    g_minus = np.concatenate(([1.0], g_after[:-1]))
    return RiskSetIndex(
        n=n, inverse=inverse, first=first, g_minus=g_minus, n_cens=n_cens, n_fail=n_fail,
        fail_k=np.flatnonzero(n_fail > 0), uniq=uniq, is_fail=is_fail,
        is_comp=status == COMPETING, is_cens=is_cens, g_row=g_minus[inverse],
    )


@dataclass
class RiskSetSums:
    """Weighted risk-set sums at each distinct event-of-interest time."""

    loglik: float
    s0: np.ndarray  # (m,)
    xbar: np.ndarray  # (m, p)
    risk: np.ndarray  # exp(x beta) per row
    a_k: np.ndarray  # d / S0 on the distinct-time grid (0 where no event)
    b_k: np.ndarray  # d G(s-) / S0 on the grid


def by_time(values: np.ndarray, idx: RiskSetIndex) -> np.ndarray:
    """Sums of sorted rows within each distinct time."""
    return np.add.reduceat(values, idx.first, axis=0)


def _before(per_time: np.ndarray) -> np.ndarray:
    """Sums over distinct times strictly before each distinct time."""
    out = np.zeros_like(per_time)
    out[1:] = np.cumsum(per_time, axis=0)[:-1]
    return out


def risk_set_sums(beta: np.ndarray, X: np.ndarray, idx: RiskSetIndex) -> RiskSetSums:
    """S0 and the weighted mean covariate over the subdistribution risk sets.

    At an event time ``s`` the risk set is everyone still under observation
    (weight 1) plus everyone who had a competing event earlier, with weight
    ``G(s-) / G(t_i-)``.
    """
    eta = X @ beta
    risk = np.exp(eta)
    # sum rows within each distinct time first: later cumulative sums run over times, not rows
    risk_k = by_time(risk, idx)
    rx_k = by_time(X * risk[:, None], idx)
    comp_w = np.where(idx.is_comp, risk / idx.g_row, 0.0)
    comp_k = by_time(comp_w, idx)
    compx_k = by_time(X * comp_w[:, None], idx)
    k = idx.fail_k
    g = idx.g_minus[k]
    # at-risk rows (time >= s) plus competing rows strictly before s, reweighted by G(s-)
    s0 = np.cumsum(risk_k[::-1])[::-1][k] + g * _before(comp_k)[k]
    s1 = np.cumsum(rx_k[::-1], axis=0)[::-1][k] + g[:, None] * _before(compx_k)[k]
    d = idx.n_fail[idx.fail_k]
    loglik = float(eta[idx.is_fail].sum() - np.sum(d * np.log(s0)))
    a_k = np.zeros(idx.uniq.size)
    b_k = np.zeros(idx.uniq.size)
    a_k[idx.fail_k] = d / s0
    b_k[idx.fail_k] = d * g / s0
    return RiskSetSums(loglik=loglik, s0=s0, xbar=s1 / s0[:, None], risk=risk, a_k=a_k, b_k=b_k)


def score_information(
    X: np.ndarray, idx: RiskSetIndex, sums: RiskSetSums
) -> tuple[np.ndarray, np.ndarray]:
    """Score vector and observed information of the log pseudo-likelihood."""
    d = idx.n_fail[idx.fail_k]
    score = X[idx.is_fail].sum(axis=0) - d @ sums.xbar
    # sum_j d_j S2_j / S0_j, rewritten as X' diag(w) X with each row's accumulated weight
    cum_a = np.cumsum(sums.a_k)
    b_after = sums.b_k.sum() - np.cumsum(sums.b_k)
    w = sums.risk * (cum_a[idx.inverse]
                     + np.where(idx.is_comp, b_after[idx.inverse] / idx.g_row, 0.0))
    info = (X * w[:, None]).T @ X - (sums.xbar * d[:, None]).T @ sums.xbar
    return score, info


def influence_terms(X: np.ndarray, idx: RiskSetIndex, sums: RiskSetSums) -> np.ndarray:
    """Per-row ``eta_i + psi_i`` of Fine & Gray (1999), as computed by crr's ``crrvv``.

    ``eta_i`` is the row's subdistribution martingale score; ``psi_i`` is its
    contribution through the Kaplan-Meier estimate of the censoring distribution.
    """
    a_k, b_k = sums.a_k, sums.b_k
    xbar_k = np.zeros((idx.uniq.size, X.shape[1]))
    xbar_k[idx.fail_k] = sums.xbar
    inv = idx.inverse
    cum_a = np.cumsum(a_k)
    cum_ax = np.cumsum(a_k[:, None] * xbar_k, axis=0)
    cum_b = np.cumsum(b_k)
    cum_bx = np.cumsum(b_k[:, None] * xbar_k, axis=0)
    b_after = cum_b[-1] - cum_b
    bx_after = cum_bx[-1] - cum_bx
    r = sums.risk
    eta = -r[:, None] * (X * cum_a[inv][:, None] - cum_ax[inv])
    comp_scale = np.where(idx.is_comp, r / idx.g_row, 0.0)
    eta -= comp_scale[:, None] * (X * b_after[inv][:, None] - bx_after[inv])
    fail = idx.is_fail
    eta[fail] += X[fail] - xbar_k[inv[fail]]

    # q(u) at each distinct time u: competing rows before u, weighted over event times >= u
    c0_before = _before(by_time(comp_scale, idx))
    c1_before = _before(by_time(X * comp_scale[:, None], idx))
    b_from = b_after + b_k
    bx_from = bx_after + b_k[:, None] * xbar_k
    q = c1_before * b_from[:, None] - c0_before[:, None] * bx_from
    y = (idx.n - idx.first).astype(float)
    cum_q = np.cumsum(q * (idx.n_cens / y**2)[:, None], axis=0)
    psi = -cum_q[inv]
    cens = idx.is_cens
    psi[cens] += q[inv[cens]] / y[inv[cens], None]
    return eta + psi


def sandwich(info: np.ndarray, terms: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """``I^-1 B I^-1`` with ``B`` the outer products of (cluster-summed) influence terms."""
    if cluster is not None:
        ncl = int(cluster.max()) + 1
        summed = np.zeros((ncl, terms.shape[1]))
        np.add.at(summed, cluster, terms)
        terms = summed
    meat = terms.T @ terms
    inv_info = np.linalg.inv(info)
    return inv_info @ meat @ inv_info.T


def breslow_jumps(idx: RiskSetIndex, sums: RiskSetSums) -> tuple[np.ndarray, np.ndarray]:
    """Distinct event times and jumps ``d / S0`` of the baseline cumulative subdistribution hazard."""
    return idx.uniq[idx.fail_k], idx.n_fail[idx.fail_k] / sums.s0
