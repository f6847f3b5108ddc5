"""Aggregations of group-time ATTs (R's ``did::aggte``).

Every aggregated parameter is a linear function of the ATT(g,t)s with weights
that depend on estimated cohort shares, so its influence function is

``psi_agg = psi @ a + sum_g C_g * w_i * 1{G_i = g} - const``

(the last two terms account for estimating the shares, R's ``wif``).  Keeping
this representation (``a``, ``C``, ``const``) gives analytic standard errors
from the stored influence functions and bootstrap draws from the draws already
made for the ATT(g,t)s, without new passes over the units.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm

from phm_eval.errors import ConfigError, EstimationError

from ._threads import single_threaded_blas
from .bootstrap import boot_summary
from .results import AggteResult, AttGtResult

_TINY = np.sqrt(np.finfo(float).eps) * 10


class _Lin:
    """Influence-function representation of m aggregated parameters."""

    def __init__(self, A: np.ndarray, C: np.ndarray, const: np.ndarray):
        self.A, self.C, self.const = A, C, const  # (k, m), (n_groups, m), (m,)

    def mean_cols(self, idx) -> _Lin:
        return _Lin(self.A[:, idx].mean(axis=1, keepdims=True),
                    self.C[:, idx].mean(axis=1, keepdims=True),
                    np.atleast_1d(self.const[idx].mean()))


def _wif(keep: np.ndarray, pg: np.ndarray, att_keep: np.ndarray, gidx: np.ndarray,
         n_groups: int, m_cols: int = 1):
    """C and const of R's ``wif(keepers) %*% att[keepers]``.

    ``pg`` are the cohort shares of the kept items, ``gidx`` their cohort index.
    """
    spg = pg.sum()
    c = att_keep / spg - np.dot(pg, att_keep) / spg**2
    C = np.zeros(n_groups)
    np.add.at(C, gidx, c)
    return C, float(np.dot(c, pg))


@single_threaded_blas
def aggregate(res: AttGtResult, type: str = "group", min_e=None, max_e=None, balance_e=None,
              cband=None, alp=None, na_rm: bool = False) -> AggteResult:
    """Aggregate ATT(g,t) into overall, event-time, cohort or calendar effects.

    Parameters
    ----------
    res : AttGtResult
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

    def cell_lin(sets) -> _Lin:
        m = len(sets)
        A = np.zeros((k, m))
        C = np.zeros((n_groups, m))
        const = np.zeros(m)
        for j, (idx, with_wif) in enumerate(sets):
            if len(idx) == 0:
                raise EstimationError("no group-time cells fall in this aggregation")
            A[idx, j] = pg[idx] / pg[idx].sum()
            if with_wif:
                C[:, j], const[j] = _wif(idx, pg[idx], att[idx], gcode[idx], n_groups)
        return _Lin(A, C, const)

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
        C, const = _wif(np.arange(n_groups), pgg, part_att, np.arange(n_groups), n_groups)
        wts = pgg / pgg.sum()
        lin = _Lin(parts.A @ wts[:, None], (parts.C @ wts + C)[:, None],
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
    psi_overall = _explicit(res, lin)
    overall_se = _se(res, lin, None if not res.bstrap else boot, psi=psi_overall)[0]
    out = AggteResult(type=type, overall_att=float(overall[0]), overall_se=float(overall_se),
                      alp=alp, min_e=min_e, max_e=max_e, balance_e=balance_e)
    if parts is not None:
        se_parts = _se(res, parts, boot if res.bstrap else None)
        crit = norm.ppf(1 - alp / 2)
        if cband:
            _, c_boot = boot_summary(_bres(res, parts, boot), alp, res.n_eff, res.n)
            if not np.isfinite(c_boot):
                warnings.warn("uniform critical value is not finite; using pointwise "
                              "intervals", stacklevel=2)
            elif c_boot < crit:
                warnings.warn("uniform band narrower than pointwise intervals; using "
                              "pointwise intervals", stacklevel=2)
            else:
                crit = c_boot
        out.egt, out.att_egt, out.se_egt, out.crit_val_egt = egt, part_att, se_parts, crit
        out._source, out._parts = res, parts
    out.influence = psi_overall[:, 0]
    return out


def _explicit(res: AttGtResult, lin: _Lin) -> np.ndarray:
    """Influence functions (n x m) of the aggregated parameters."""
    d = res.data
    out = res.influence.combine(lin.A)
    w = d.unit_weight
    for j, g in enumerate(res.cohort_list):
        sl = d.blocks[g]
        out[sl] += w[sl, None] * lin.C[j][None, :]
    out -= lin.const[None, :]
    return out


def _bres(res: AttGtResult, lin: _Lin, draws: np.ndarray) -> np.ndarray:
    k = len(res.cells)
    n_g = len(res.cohort_list)
    S = draws[:, :k] @ lin.A + draws[:, k:k + n_g] @ lin.C - draws[:, [k + n_g]] * lin.const
    return S / np.sqrt(res.n_eff)


def _by_cluster(res: AttGtResult, psi: np.ndarray) -> np.ndarray:
    """Influence-function rows summed within clusters when clustered (else unchanged)."""
    d = res.data
    if d.unit_cluster is None:
        return psi
    sums = np.zeros((d.n_clusters, psi.shape[1]))
    np.add.at(sums, d.unit_cluster, psi)
    return sums


def _se(res: AttGtResult, lin: _Lin, draws, psi=None) -> np.ndarray:
    if draws is not None:
        se, _ = boot_summary(_bres(res, lin, draws), res.alp, res.n_eff, res.n)
    else:
        rows = _by_cluster(res, _explicit(res, lin) if psi is None else psi)
        se = np.sqrt(np.sum(rows**2, axis=0)) / res.n
    se = np.where(se <= _TINY, np.nan, se)
    return se
