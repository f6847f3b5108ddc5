"""Influence-function algebra of linear aggregations of group-time ATTs.

Every aggregated parameter is a linear function of the ATT(g,t)s with weights that depend
on estimated cohort shares, so its influence function is

``psi_agg = psi @ A + sum_g C_g * w_i * 1{G_i = g} - const``

(the last two terms account for estimating the shares, R's ``wif``).  :class:`Lin` keeps
this representation (``A``, ``C``, ``const``); the functions here turn it into influence
functions, bootstrap sums and standard errors from what :func:`~phm_eval.did.att_gt`
stored, without new passes over the units.  Both :mod:`.aggregate` and the result objects
use them; this module imports neither.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .bootstrap import boot_summary

#: Standard errors at or below this are numerically zero (reported as NaN).
TINY = np.sqrt(np.finfo(float).eps) * 10


class GroupTimeEstimates(Protocol):
    """What aggregation reads from group-time estimates (an
    :class:`~phm_eval.did.results.AttGtResult`)."""

    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    alp: float
    n: int
    cells: list
    data: Any
    influence: Any
    bstrap: bool
    cband: bool

    @property
    def n_eff(self) -> int: ...

    @property
    def cohort_list(self) -> np.ndarray: ...

    def bootstrap_draws(self) -> np.ndarray: ...


class Lin:
    """Influence-function representation of m aggregated parameters.

    Parameters
    ----------
    A : ndarray, (k, m)
        Weights of the k cells.
    C : ndarray, (n_groups, m)
        Coefficients of the cohort-share terms.
    const : ndarray, (m,)
        Constant subtracted.
    """

    def __init__(self, A: np.ndarray, C: np.ndarray, const: np.ndarray):
        self.A, self.C, self.const = A, C, const

    def mean_cols(self, idx: Any) -> Lin:
        """The mean of the parameters ``idx``, as one parameter."""
        return Lin(self.A[:, idx].mean(axis=1, keepdims=True),
                   self.C[:, idx].mean(axis=1, keepdims=True),
                   np.atleast_1d(self.const[idx].mean()))


def wif(keep: np.ndarray, pg: np.ndarray, att_keep: np.ndarray, gidx: np.ndarray,
        n_groups: int, m_cols: int = 1) -> tuple[np.ndarray, float]:
    """C and const of R's ``wif(keepers) %*% att[keepers]``.

    ``pg`` are the cohort shares of the kept items, ``gidx`` their cohort index.
    """
    spg = pg.sum()
    c = att_keep / spg - np.dot(pg, att_keep) / spg**2
    C = np.zeros(n_groups)
    np.add.at(C, gidx, c)
    return C, float(np.dot(c, pg))


def influence(res: GroupTimeEstimates, lin: Lin) -> np.ndarray:
    """Influence functions (n x m) of the aggregated parameters."""
    d = res.data
    out = res.influence.combine(lin.A)
    w = d.unit_weight
    for j, g in enumerate(res.cohort_list):
        sl = d.blocks[g]
        out[sl] += w[sl, None] * lin.C[j][None, :]
    out -= lin.const[None, :]
    return out


def bootstrap_sums(res: GroupTimeEstimates, lin: Lin, draws: np.ndarray) -> np.ndarray:
    """Bootstrap draws of the aggregated parameters from the cells' draws
    (:meth:`~phm_eval.did.results.AttGtResult.bootstrap_draws`), scaled by ``sqrt(n_eff)``."""
    k = len(res.cells)
    n_g = len(res.cohort_list)
    S = draws[:, :k] @ lin.A + draws[:, k:k + n_g] @ lin.C - draws[:, [k + n_g]] * lin.const
    return S / np.sqrt(res.n_eff)


def by_cluster(res: GroupTimeEstimates, psi: np.ndarray) -> np.ndarray:
    """Influence-function rows summed within clusters when clustered (else unchanged)."""
    d = res.data
    if d.unit_cluster is None:
        return psi
    sums = np.zeros((d.n_clusters, psi.shape[1]))
    np.add.at(sums, d.unit_cluster, psi)
    return sums


def standard_errors(res: GroupTimeEstimates, lin: Lin, draws: np.ndarray | None,
                    psi: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap (with ``draws``) or analytic standard errors; numerically zero ones NaN.

    ``psi``, the influence functions of ``lin`` when already computed, saves recomputing
    them for the analytic standard errors.
    """
    if draws is not None:
        se, _ = boot_summary(bootstrap_sums(res, lin, draws), res.alp, res.n_eff, res.n)
    else:
        rows = by_cluster(res, influence(res, lin) if psi is None else psi)
        se = np.sqrt(np.sum(rows**2, axis=0)) / res.n
    se = np.where(se <= TINY, np.nan, se)
    return se
