"""Result object of :func:`~phm_eval.did.att_gt`, :class:`AttGtResult`.

:class:`~phm_eval.did.aggregate.AggteResult`, the result of its aggregations, is defined with
them in :mod:`.aggregate` and importable from here too.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

from phm_eval.convention import ResultConvention

from .aggregate import AggteResult, aggregate
from .bootstrap import multiplier_sums

__all__ = ["AggteResult", "AttGtResult", "wald_pretest"]

logger = logging.getLogger(__name__)


def wald_pretest(res: AttGtResult, zero_se: np.ndarray, *, anticipation: int = 0):
    """R's pre-test: ``n b' V^-1 b`` over cells with ``time < group - anticipation`` (R:
    ``anticipation = 0``, all cells before the group's first treated period), chi-squared.

    Returns (statistic, degrees of freedom, p-value), or Nones when unavailable.
    """
    if res.data.unit_cluster is not None and res.bstrap:
        logger.info("Wald pre-test not reported: clustered inference uses the bootstrap")
        return None, None, None
    pre = np.flatnonzero((res.group - anticipation > res.time) & ~zero_se)
    if len(pre) == 0:
        return None, None, None
    b = res.att[pre]
    Vp = res.covariance(pre)
    if np.any(~np.isfinite(Vp)) or 1.0 / np.linalg.cond(Vp, 1) <= np.finfo(float).eps:
        warnings.warn("Wald pre-test not reported: singular covariance matrix", stacklevel=3)
        return None, None, None
    W = float(res.n * b @ np.linalg.solve(Vp, b))
    q = len(pre)
    return W, q, float(chi2.sf(W, q))


@dataclass(frozen=True, repr=False)
class AttGtResult(ResultConvention):
    """Group-time ATTs with standard errors, uniform band and pre-test (read-only).

    ``summary`` is the table of cells (a DataFrame property; ``summary()`` also works),
    ``print_summary()`` prints it; the bootstrap draws are computed once, when first asked.

    Attributes
    ----------
    group, time, att, se : arrays, one entry per cell
    crit_val : float
        Critical value for the (uniform, when bootstrapped) confidence band.
    wald_stat, wald_df, wald_pvalue : pre-test of parallel trends (None if unavailable)
    n : int
        Number of units (influence-function rows).
    """

    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    se: np.ndarray
    crit_val: float
    alp: float
    n: int
    cells: list
    data: object
    influence: object
    bstrap: bool
    biters: int
    cband: bool
    multiplier: str
    rng: np.random.Generator
    config: dict
    wald_stat: float | None = None
    wald_df: int | None = None
    wald_pvalue: float | None = None
    cluster_sums: np.ndarray | None = field(default=None, repr=False)
    _draws: np.ndarray | None = field(default=None, repr=False)
    zero_se: np.ndarray | None = field(default=None, repr=False)  # cells with a zero SE

    # ------------------------------------------------------------------ basics
    @property
    def V(self) -> np.ndarray:
        """Analytic covariance of ``sqrt(n) (att - ATT)`` (R's ``V_analytical``)."""
        return self.covariance()

    def covariance(self, cells=None) -> np.ndarray:
        """``psi' psi / n`` for the given cells (all by default); cluster sums when
        clustered without the bootstrap, as R's ``did``."""
        idx = np.arange(len(self.cells)) if cells is None else np.asarray(cells)
        if self.cluster_sums is not None:
            S = self.cluster_sums[:, idx]
            return S.T @ S / self.n
        return self.influence.gram(idx) / self.n

    @property
    def post(self) -> np.ndarray:
        return np.array([c.post for c in self.cells])

    @property
    def n_eff(self) -> int:
        """Number of independent sampling units (clusters when clustered)."""
        d = self.data
        return d.n_clusters if d.unit_cluster is not None else self.n

    @property
    def cohort_list(self) -> np.ndarray:
        return np.asarray(self.data.glist, dtype=float)

    def _repr_fields(self) -> dict[str, Any]:
        return {"cells": len(self.cells), "n": int(self.n),
                "est_method": self.config.get("est_method"),
                "control_group": self.config.get("control_group"), "bstrap": self.bstrap}

    def _summary_table(self) -> pd.DataFrame:
        """One row per cell: group, time, att, se, ci_low, ci_high, post."""
        half = self.crit_val * self.se
        return pd.DataFrame({
            "group": self.group, "time": self.time, "att": self.att, "se": self.se,
            "ci_low": self.att - half, "ci_high": self.att + half, "post": self.post,
        })

    def pretest(self, *, exclude_anticipation: bool = False) -> dict:
        """Wald pre-test of parallel trends (statistic, degrees of freedom, p-value).

        Parameters
        ----------
        exclude_anticipation : bool
            False (default): R's test, over every cell before its cohort's first
            treated period, which includes the ``anticipation`` periods just before
            it. True: only cells before the anticipation periods, so that effects
            already starting in them (which anticipation allows) do not count as
            a violation of parallel trends. The same without anticipation.
        """
        if exclude_anticipation and self.config.get("anticipation", 0) > 0:
            zero_se = self.zero_se if self.zero_se is not None else np.isnan(self.se)
            stat, df, p = wald_pretest(self, zero_se, anticipation=self.config["anticipation"])
            return {"statistic": stat, "df": df, "pvalue": p}
        return {"statistic": self.wald_stat, "df": self.wald_df, "pvalue": self.wald_pvalue}

    def influence_function(self) -> np.ndarray:
        """Dense (n units x k cells) influence functions, units sorted by cohort."""
        return self.influence.to_dense()

    def to_dict(self) -> dict:
        s = self.summary()
        return {
            "cells": s.assign(post=s.post.astype(bool)).replace({np.nan: None}).to_dict(
                orient="records"),
            "crit_val": float(self.crit_val), "alp": self.alp, "n": int(self.n),
            "pretest": self.pretest(), "flow": [list(f) for f in self.data.flow],
            "config": {k: v for k, v in self.config.items()},
        }

    def plot(self, *, ax=None):
        """ATT(g,t) with confidence intervals by period, one series per cohort."""
        from .plots import plot_att_gt

        return plot_att_gt(self, ax=ax)

    def aggregate(self, type: str = "group", min_e: float | None = None,
                  max_e: float | None = None, balance_e: int | None = None,
                  cband: bool | None = None, alp: float | None = None,
                  na_rm: bool = False):
        """Aggregate cells as R's ``aggte`` (``simple``, ``dynamic``, ``group``, ``calendar``).

        Mirrors R's signature and names, as :func:`~phm_eval.did.aggregate.aggregate`.
        """
        return aggregate(self, type=type, min_e=min_e, max_e=max_e, balance_e=balance_e,
                         cband=cband, alp=alp, na_rm=na_rm)

    # ------------------------------------------------------------------ bootstrap
    def bootstrap_draws(self) -> np.ndarray:
        """Multiplier-bootstrap sums, (biters x (k + n_groups + 1)), computed once.

        Columns: the k cells, then ``sum_i v_i w_i 1{G_i = g}`` for each treated
        cohort ``g`` and ``sum_i v_i``; the last two give the bootstrap of the
        terms that account for estimating the cohort shares in aggregations.
        """
        if self._draws is None:
            object.__setattr__(self, "_draws", _draws(self))  # a cache, not a change
        return self._draws


def _draws(res: AttGtResult) -> np.ndarray:
    d = res.data
    k = len(res.cells)
    glist = list(res.cohort_list)
    n_g = len(glist)
    ones_col = k + n_g
    ncols = k + n_g + 1
    built = res.influence.built
    if d.unit_cluster is not None:
        cl, ncl = d.unit_cluster, d.n_clusters
        M = np.zeros((ncl, ncols))
        M[:, :k] = res.influence.cluster_sums(cl, ncl)
        for j, g in enumerate(glist):
            sl = d.blocks[g]
            np.add.at(M[:, k + j], cl[sl], d.unit_weight[sl])
        M[:, ones_col] = np.bincount(cl, minlength=ncl)
        blocks = [(np.arange(ncl), np.arange(ncols), M, None)]
        n_rows = ncl
    else:
        blocks = []
        for c, sl in d.blocks.items():
            size = sl.stop - sl.start
            if size == 0:
                continue
            w = d.unit_weight[sl]
            b = built.get(c)
            extra_cols = [ones_col] if c not in glist else [k + glist.index(c), ones_col]
            if b is not None and b.A is not None:
                # factored block [w * Y, w]: its last column is w; add ones if weighted
                M, r = b.M, b.M.shape[1]
                unweighted = bool(np.all(w == 1.0))
                width = r if unweighted else r + 1
                if not unweighted:
                    M = [M, np.ones((size, 1))]
                E = np.zeros((width, len(extra_cols)))
                if c in glist:
                    E[r - 1, 0] = 1.0
                E[r - 1 if unweighted else r, -1] = 1.0
                A = np.zeros((width, b.A.shape[1]))
                A[:r] = b.A
                blocks.append((sl, np.concatenate([b.cols, extra_cols]), M,
                               np.column_stack([A, E])))
                continue
            cols = b.cols if b is not None else np.zeros(0, dtype=np.int64)
            mat = b.M if b is not None else np.zeros((size, 0))
            r = mat.shape[1]
            if c in glist and not np.all(w == 1.0):
                blocks.append((sl, np.concatenate([cols, extra_cols]),
                               [mat, w[:, None], np.ones((size, 1))], None))
                continue
            # the extra columns are all ones here (the cohort-share column of an unweighted
            # treated cohort is its weights, all 1; a comparison-only block has just the
            # ones): draw one column of ones and copy it with A
            A = np.zeros((r + 1, r + len(extra_cols)))
            A[:r, :r] = np.eye(r)
            A[r, r:] = 1.0
            blocks.append((sl, np.concatenate([cols, extra_cols]),
                           [mat, np.ones((size, 1))], A))
        n_rows = d.n
    return multiplier_sums(blocks, n_rows, ncols, res.biters, res.rng, kind=res.multiplier)
