"""Aggregations of group-time ATTs (R's ``did::aggte``) and their result, :class:`AggteResult`.

Every aggregated parameter is a linear function of the ATT(g,t)s with weights that depend
on estimated cohort shares; :mod:`._linalg` turns that representation into influence
functions, standard errors and bootstrap draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from phm_eval.convention import ResultConvention
from phm_eval.errors import ConfigError, EstimationError

from ._linalg import (
    GroupTimeEstimates,
    Lin,
    bootstrap_sums,
    by_cluster,
    influence,
    standard_errors,
    wif,
)
from ._threads import single_threaded_blas
from .bootstrap import boot_summary


@single_threaded_blas
def aggregate(res: GroupTimeEstimates, type: str = "group", min_e=None, max_e=None,
              balance_e=None, cband=None, alp=None, na_rm: bool = False) -> AggteResult:
    """Aggregate ATT(g,t) into overall, event-time, cohort or calendar effects.

    The signature mirrors R's ``did::aggte`` and keeps R's argument names (``alp``,
    ``balance_e``, ``na_rm`` for ``na.rm``), as :func:`~phm_eval.did.att_gt` does; it is
    therefore an exception to the package's conventions (``alpha``, options keyword-only).

    Parameters
    ----------
    res : AttGtResult
        Group-time ATTs from :func:`~phm_eval.did.att_gt` (anything with the attributes
        of :class:`~phm_eval.did._linalg.GroupTimeEstimates`).
    type : {"simple", "dynamic", "group", "calendar"}
    min_e, max_e : float, optional
        Event-time window (``max_e`` also limits the cells used by the other types).
    balance_e : int, optional
        Dynamic only: keep cohorts observed for at least ``balance_e`` periods after
        treatment.
    cband : bool, optional
        Uniform band over event times/cohorts/periods (defaults to the ``att_gt`` call).
    alp : float, optional
        Significance level (defaults to the ``att_gt`` call).
    na_rm : bool, default False
        Drop cells whose ATT(g,t) could not be estimated (NaN), as R's ``aggte(na.rm = TRUE)``;
        without it such cells raise an error, so an aggregate never silently loses cells.

    Returns
    -------
    AggteResult
    """
    if type not in ("simple", "dynamic", "group", "calendar"):
        raise ConfigError("type must be 'simple', 'dynamic', 'group' or 'calendar', got "
                          f"{type!r}")
    alp = res.alp if alp is None else alp
    cband = res.cband if cband is None else cband
    lo_e = -np.inf if min_e is None else float(min_e)
    hi_e = np.inf if max_e is None else float(max_e)
    d = res.data
    k = len(res.cells)
    glist = res.cohort_list
    n_groups = len(glist)

    # R works on positions in the sorted union of periods and cohorts
    gt = np.unique(np.concatenate([d.tlist, glist]))
    t_idx = np.searchsorted(gt, res.time) + 1.0
    g_idx = np.searchsorted(gt, res.group) + 1.0
    gcode = np.searchsorted(glist, res.group)
    w = d.unit_weight
    pgg = np.array([w[d.blocks[g]].sum() for g in glist]) / d.n
    pg = pgg[gcode]
    att = res.att
    ok = np.isfinite(att)
    if not ok.all() and not na_rm:
        missing = ", ".join(f"({g:g}, {t:g})" for g, t in zip(res.group[~ok], res.time[~ok],
                                                             strict=True))
        raise EstimationError(f"ATT(g,t) is missing for {int((~ok).sum())} cell(s) (group, "
                              f"time): {missing}; aggregate(..., na_rm=True) drops them")
    keepers = np.flatnonzero((g_idx <= t_idx) & (t_idx <= g_idx + hi_e) & ok)

    def cell_lin(sets) -> Lin:
        m = len(sets)
        A = np.zeros((k, m))
        C = np.zeros((n_groups, m))
        const = np.zeros(m)
        for j, (idx, with_wif) in enumerate(sets):
            if len(idx) == 0:
                raise EstimationError("no group-time cells fall in this aggregation")
            A[idx, j] = pg[idx] / pg[idx].sum()
            if with_wif:
                C[:, j], const[j] = wif(idx, pg[idx], att[idx], gcode[idx], n_groups)
        return Lin(A, C, const)

    egt = None
    if type == "simple":
        lin = cell_lin([(keepers, True)])
        overall = np.array([np.sum(att[keepers] * pg[keepers]) / pg[keepers].sum()])
        parts, part_att = None, None
    elif type == "group":
        sets = []
        for g in glist:
            idx = np.flatnonzero((res.group == g) & (g_idx <= t_idx) & (t_idx <= g_idx + hi_e)
                                 & ok)
            sets.append((idx, False))
        parts = cell_lin(sets)
        part_att = np.array([att[idx].mean() for idx, _ in sets])
        egt = glist
        C, const = wif(np.arange(n_groups), pgg, part_att, np.arange(n_groups), n_groups)
        wts = pgg / pgg.sum()
        lin = Lin(parts.A @ wts[:, None], (parts.C @ wts + C)[:, None],
                  np.atleast_1d(parts.const @ wts + const))
        overall = np.array([np.sum(part_att * pgg) / pgg.sum()])
    elif type == "dynamic":
        e_all = res.time - res.group
        include = ok.copy()
        eseq = np.unique(e_all[include])
        if balance_e is not None:
            include = ((res.time.max() - res.group) >= balance_e) & ok
            eseq = np.unique(e_all[include])
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - res.time.max() + gt[0])]
        eseq = eseq[(eseq >= lo_e) & (eseq <= hi_e)]
        if len(eseq) == 0:
            raise EstimationError("no event times fall within the requested window; adjust "
                                  "min_e, max_e or balance_e")
        sets = [(np.flatnonzero((e_all == e) & include & ok), True) for e in eseq]
        parts = cell_lin(sets)
        part_att = np.array([np.sum(att[idx] * pg[idx]) / pg[idx].sum() for idx, _ in sets])
        egt = eseq
        epos = np.flatnonzero(eseq >= 0)
        if len(epos) == 0:
            raise EstimationError("no non-negative event times in the window")
        lin = parts.mean_cols(epos)
        overall = np.array([part_att[epos].mean()])
    else:  # calendar
        tl = np.unique(t_idx)
        tl = tl[tl >= g_idx.min()]
        tl = [tt for tt in tl if np.any((t_idx == tt) & (g_idx <= t_idx) & ok)]
        if not tl:
            raise EstimationError("no calendar periods with post-treatment cells")
        sets = [(np.flatnonzero((t_idx == tt) & (g_idx <= t_idx) & ok), True) for tt in tl]
        parts = cell_lin(sets)
        part_att = np.array([np.sum(att[idx] * pg[idx]) / pg[idx].sum() for idx, _ in sets])
        egt = gt[np.array(tl, dtype=int) - 1]
        lin = parts.mean_cols(np.arange(len(tl)))
        overall = np.array([part_att.mean()])

    boot = res.bootstrap_draws() if (res.bstrap or (cband and parts is not None)) else None
    psi_overall = influence(res, lin)
    overall_se = standard_errors(res, lin, None if not res.bstrap else boot, psi=psi_overall)[0]
    found = {"type": type, "overall_att": float(overall[0]), "overall_se": float(overall_se),
             "alp": alp, "min_e": min_e, "max_e": max_e, "balance_e": balance_e,
             "influence": psi_overall[:, 0]}
    if parts is not None:
        se_parts = standard_errors(res, parts, boot if res.bstrap else None)
        crit = norm.ppf(1 - alp / 2)
        if cband:
            _, c_boot = boot_summary(bootstrap_sums(res, parts, boot), alp, res.n_eff, res.n)
            if not np.isfinite(c_boot):
                warnings.warn("uniform critical value is not finite; using pointwise "
                              "intervals", stacklevel=2)
            elif c_boot < crit:
                warnings.warn("uniform band narrower than pointwise intervals; using "
                              "pointwise intervals", stacklevel=2)
            else:
                crit = c_boot
        found.update(egt=egt, att_egt=part_att, se_egt=se_parts, crit_val_egt=crit,
                     _source=res, _parts=parts)
    return AggteResult(**found)


@dataclass(frozen=True, repr=False)
class AggteResult(ResultConvention):
    """Aggregated treatment effects (R's ``aggte``; read-only).

    Attributes
    ----------
    type : str
    overall_att, overall_se : float
    egt : array
        Event times (dynamic), cohorts (group) or periods (calendar).
    att_egt, se_egt : arrays
    crit_val_egt : float
        Critical value for the band over ``egt`` (uniform when bootstrapped).
    """

    type: str
    overall_att: float
    overall_se: float
    alp: float
    egt: np.ndarray | None = None
    att_egt: np.ndarray | None = None
    se_egt: np.ndarray | None = None
    crit_val_egt: float | None = None
    influence: np.ndarray | None = field(default=None, repr=False)
    min_e: float | None = None
    max_e: float | None = None
    balance_e: int | None = None
    _source: object = field(default=None, repr=False)  # the AttGtResult aggregated
    _parts: object = field(default=None, repr=False)  # linear map from cells to att_egt

    def influence_egt(self) -> np.ndarray:
        """Influence functions of ``att_egt`` (units x event times, cohorts or periods),
        including the terms for estimated cohort shares, on the scale of the cells'."""
        if self._parts is None:
            raise ValueError("this aggregation has no event-time, cohort or period estimates")
        return influence(self._source, self._parts)

    def covariance_egt(self) -> np.ndarray:
        """Analytic covariance matrix of ``att_egt``: ``psi' psi / n^2`` over units (over
        clusters when clustered), whose diagonal is the analytic ``se_egt`` squared."""
        rows = by_cluster(self._source, self.influence_egt())
        V = rows.T @ rows / self._source.n ** 2
        return (V + V.T) / 2

    @property
    def overall_ci(self) -> tuple:
        z = norm.ppf(1 - self.alp / 2)
        return (self.overall_att - z * self.overall_se, self.overall_att + z * self.overall_se)

    def _repr_fields(self) -> dict[str, Any]:
        return {"type": self.type, "overall_att": round(self.overall_att, 6),
                "overall_se": round(self.overall_se, 6),
                "terms": 0 if self.egt is None else len(self.egt)}

    def _summary_table(self) -> pd.DataFrame:
        """Overall row then one row per event time / cohort / period."""
        lo, hi = self.overall_ci
        rows = [{"term": "overall", "value": np.nan, "att": self.overall_att,
                 "se": self.overall_se, "ci_low": lo, "ci_high": hi}]
        if self.egt is not None:
            half = self.crit_val_egt * self.se_egt
            label = {"dynamic": "event_time", "group": "group", "calendar": "time"}[self.type]
            for e, a, s, h in zip(self.egt, self.att_egt, self.se_egt, half, strict=True):
                rows.append({"term": label, "value": e, "att": a, "se": s,
                             "ci_low": a - h, "ci_high": a + h})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {
            "type": self.type, "overall_att": float(self.overall_att),
            "overall_se": _f(self.overall_se), "alp": self.alp,
            "rows": self.summary().replace({np.nan: None}).to_dict(orient="records"),
            "crit_val_egt": _f(self.crit_val_egt),
        }

    def plot(self, *, ax=None):
        """Event-study plot (dynamic) or estimates by cohort/period with intervals."""
        from .plots import plot_aggte

        return plot_aggte(self, ax=ax)


def _f(x):
    return None if x is None or not np.isfinite(x) else float(x)
