"""Group-time average treatment effects (Callaway & Sant'Anna 2021).

:func:`att_gt` mirrors R's ``did::att_gt``: the same arguments, the same choice
of base period and comparison group for every cell, the same scaling of
influence functions, analytic and multiplier-bootstrap standard errors,
uniform confidence bands and the Wald pre-test of parallel trends.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from phm_eval.errors import ConfigError, EstimationError

from . import _kernels as kernels
from ._prep import DidData, prepare
from ._threads import map_in_threads, single_threaded_blas
from .bootstrap import boot_summary
from .estimators import panel_2x2, rc_2x2
from .influence import BlockInfluence
from .results import AttGtResult, wald_pretest

logger = logging.getLogger(__name__)

_TINY = np.sqrt(np.finfo(float).eps) * 10
EST_METHODS = ("dr", "ipw", "reg", "dr_imp")


@dataclass(frozen=True)
class Cell:
    """One group-time cell: cohort ``g`` in period ``tlist[c]`` against ``tlist[base]``."""

    col: int
    g: float
    c: int  # index of the cell's period in tlist
    base: int  # index of the base period in tlist
    post: bool
    controls: tuple  # cohorts in the comparison group
    zero: bool  # universal base period cell (ATT fixed at 0)
    cov_period: int  # period whose covariates (and weights) are used


def plan_cells(tlist: np.ndarray, glist: np.ndarray, cohorts: np.ndarray, base_period: str,
               anticipation: int, control_group: str) -> list:
    """The (g, t) cells, their base periods and comparison cohorts, in R's order."""
    T = len(tlist)
    tfac = 0 if base_period == "universal" else 1
    cells = []
    for g in glist:
        pre_idx = np.flatnonzero(tlist + anticipation < g)
        pret_g = int(pre_idx[-1]) if len(pre_idx) else None
        for t in range(T - tfac):
            c = t + tfac
            pret = t
            if base_period == "universal":
                pret = pret_g
            if g <= tlist[c]:
                pret = pret_g
            if pret is None:
                warnings.warn(f"no pre-treatment period for cohort {g:g}; cohort dropped",
                              stacklevel=3)
                break
            zero = base_period == "universal" and pret == c
            if control_group == "nevertreated":
                ctrl = tuple(h for h in cohorts if h == 0)
            else:
                thr = tlist[max(t, pret) + tfac] + anticipation
                ctrl = tuple(h for h in cohorts if h == 0 or (h > thr and h != g))
            cells.append(Cell(col=len(cells), g=float(g), c=c, base=pret,
                              post=bool(g <= tlist[c]) and not zero, controls=ctrl,
                              zero=zero, cov_period=min(pret, c)))
    return cells


@single_threaded_blas
def att_gt(
    data: pd.DataFrame,
    yname: str,
    tname: str,
    idname: str | None,
    gname: str,
    xformla: str | None = None,
    control_group: str = "nevertreated",
    est_method: str = "dr",
    anticipation: int = 0,
    base_period: str = "varying",
    weightsname: str | None = None,
    clustervars=None,
    bstrap: bool = True,
    biters: int = 1000,
    cband: bool = True,
    alp: float = 0.05,
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    seed=None,
    multiplier: str = "rademacher",
) -> AttGtResult:
    """Group-time average treatment effects with staggered adoption.

    The signature mirrors R's ``did::att_gt`` and keeps R's argument names (``xformla``,
    ``bstrap``, ``biters``, ``alp``...) and positions after the data, so R code translates
    argument for argument; it is therefore the exception to the package's conventions
    (``seed``, ``alpha`` and ``n_bootstrap`` elsewhere, options keyword-only).

    Parameters
    ----------
    data : DataFrame
        Long format: one row per unit and period (panel) or per observation.
    yname, tname, idname, gname : str
        Outcome, period (whole numbers), unit id and first treated period
        (0 = never treated) columns, as in R's ``did``.  ``idname`` may be None
        for repeated cross-sections.
    xformla : str, optional
        Covariates as ``"~ x1 + x2"`` (formulaic syntax beyond plain names).
        With panel data they are taken from the earlier of a cell's two periods.
    control_group : {"nevertreated", "notyettreated"}
    est_method : {"dr", "ipw", "reg", "dr_imp"}
        Doubly robust (R's default, ``DRDID::drdid_panel``), normalised inverse
        probability weighting, outcome regression, or the improved doubly
        robust estimator (``DRDID::drdid_imp_panel``).
    anticipation : int
        Number of periods before treatment in which effects may already occur.
    base_period : {"varying", "universal"}
    weightsname : str, optional
        Sampling weights (constant within unit for panel data).
    clustervars : str or list, optional
        A cluster variable besides ``idname`` (constant within unit).
    bstrap, biters, cband, alp
        Multiplier bootstrap on/off, draws, uniform band, significance level.
    panel, allow_unbalanced_panel : bool
    seed : int or numpy Generator, optional
        Seed for the bootstrap multipliers.
    multiplier : {"rademacher", "mammen"}
        Multiplier distribution (R's ``did`` uses Rademacher).

    Returns
    -------
    AttGtResult
    """
    _validate_args(control_group, est_method, base_period, anticipation, biters, alp, multiplier)
    dd = prepare(data, yname, tname, idname, gname, xformla, control_group, anticipation,
                 weightsname, clustervars, panel, allow_unbalanced_panel)
    cells = plan_cells(dd.tlist, dd.glist, dd.cohorts, base_period, anticipation, control_group)
    if not cells:
        raise EstimationError("no group-time cells can be estimated")
    _check_sizes(dd, control_group)
    k = len(cells)
    infl = BlockInfluence(dd.n, k, dd.blocks)
    att = np.zeros(k)
    if dd.panel:
        _estimate_panel(dd, cells, est_method, att, infl)
    else:
        _estimate_rc(dd, cells, est_method, att, infl)

    n = dd.n
    cluster_sums = None
    if dd.unit_cluster is not None and not bstrap:
        cluster_sums = infl.cluster_sums(dd.unit_cluster, dd.n_clusters)
        sumsq = np.sum(cluster_sums**2, axis=0)
    else:
        sumsq = infl.column_sumsq()
    se = np.sqrt(sumsq) / n
    se[se <= _TINY] = np.nan
    zero_na = np.isnan(se)

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    res = AttGtResult(
        group=np.array([c.g for c in cells]), time=dd.tlist[[c.c for c in cells]],
        att=att, se=se, crit_val=norm.ppf(1 - alp / 2), alp=alp, n=n,
        cells=cells, data=dd, influence=infl, bstrap=bstrap, biters=biters, cband=cband,
        multiplier=multiplier, rng=rng,
        config=dict(yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
                    control_group=control_group, est_method=est_method,
                    anticipation=anticipation, base_period=base_period,
                    weightsname=weightsname, clustervars=clustervars, panel=panel,
                    allow_unbalanced_panel=allow_unbalanced_panel, bstrap=bstrap,
                    biters=biters, cband=cband, alp=alp, multiplier=multiplier),
        cluster_sums=cluster_sums,
    )
    if bstrap:
        draws = res.bootstrap_draws()
        bres = draws[:, :k] / np.sqrt(res.n_eff)
        bse, crit = boot_summary(bres[:, ~zero_na], alp, res.n_eff, n)
        se = se.copy()
        se[~zero_na] = bse
        se[se <= _TINY] = np.nan
        res = replace(res, se=se)
        if cband and len(dd.tlist) > 2:
            if not np.isfinite(crit):
                warnings.warn("uniform critical value is not finite; using pointwise "
                              "intervals", stacklevel=2)
            else:
                if crit >= 7:
                    warnings.warn("the uniform critical value is very large (>= 7); the "
                                  "band may be unreliable with so few units per cohort",
                                  stacklevel=2)
                res = replace(res, crit_val=crit)
    res = replace(res, zero_se=zero_na)
    stat, df, pvalue = wald_pretest(res, zero_na)
    return replace(res, wald_stat=stat, wald_df=df, wald_pvalue=pvalue)


def _validate_args(control_group, est_method, base_period, anticipation, biters, alp,
                   multiplier):
    if control_group not in ("nevertreated", "notyettreated"):
        raise ConfigError("control_group must be 'nevertreated' or 'notyettreated', got "
                          f"{control_group!r}")
    if est_method not in EST_METHODS:
        raise ConfigError(f"est_method must be one of {EST_METHODS}, got {est_method!r}")
    if base_period not in ("varying", "universal"):
        raise ConfigError(f"base_period must be 'varying' or 'universal', got {base_period!r}")
    if not (isinstance(anticipation, int | np.integer) and anticipation >= 0):
        raise ConfigError(f"anticipation must be a non-negative whole number, got "
                          f"{anticipation!r}")
    if not (isinstance(biters, int | np.integer) and biters >= 1):
        raise ConfigError(f"biters must be a positive whole number, got {biters!r}")
    if not (0 < alp < 1):
        raise ConfigError(f"alp must lie strictly between 0 and 1, got {alp!r}")
    if multiplier not in ("rademacher", "mammen"):
        raise ConfigError(f"multiplier must be 'rademacher' or 'mammen', got {multiplier!r}")


def _check_sizes(dd: DidData, control_group: str) -> None:
    """R's ``did`` warns about cohorts with fewer than (covariates + 5) units."""
    need = len(dd.covariate_names) - 1 + 5
    sizes = {c: sl.stop - sl.start for c, sl in dd.blocks.items()}
    if dd.true_rc:  # R counts observations per period
        T = len(dd.tlist)
        sizes = {c: s / T for c, s in sizes.items()}
    small = [c for c, s in sizes.items() if s < need]
    if not small:
        return
    if 0.0 in small and control_group == "nevertreated":
        raise EstimationError(
            f"the never-treated group has only {sizes[0.0]:g} units, too few to serve as the "
            "comparison group; try control_group='notyettreated'")
    warnings.warn("some cohorts have very few units, which may cause estimation problems: "
                  + ", ".join(f"{c:g}" for c in small), stacklevel=3)


def _where(cell: Cell, tlist) -> str:
    return f"cohort {cell.g:g} in period {tlist[cell.c]:g}"


def _estimate_panel(dd: DidData, cells: list, method: str, att: np.ndarray,
                    infl: BlockInfluence) -> None:
    groups: dict = {}
    for cell in cells:
        if cell.zero:
            continue
        key = (cell.g, cell.controls, cell.cov_period if dd.X_by_period is not None else -1)
        groups.setdefault(key, []).append(cell)
    n = dd.n
    no_covariates = dd.X is None and dd.X_by_period is None
    cache: dict = {}
    tasks: list = []

    unweighted = no_covariates and bool(np.all(dd.unit_weight == 1.0))

    def moments(c):
        """Block factor [w * Y, w] and its (sum of w, w'Y), computed once per cohort.

        With weights the factor is [w (Y - m), w], m the cohort's mean outcome: every
        estimate uses Y only through differences between periods, so the shift changes
        nothing but keeps the outcome's level (costs in the thousands, say) out of the
        products formed from the factor (standard errors, the single-precision bootstrap).
        """
        if c not in cache:
            sl = dd.blocks[c]
            if unweighted:
                # the factor [Y, 1] ends in ones: its column sums are the last row of M'M,
                # which the standard errors need anyway
                M = dd.Y1[sl]
                MtM = M.T @ M
                colsum = MtM[-1]
            else:
                M = dd.Y1[sl] * dd.unit_weight[sl][:, None]
                level = M[:, :-1].sum() / max(M[:, -1].sum() * (M.shape[1] - 1),
                                              np.finfo(float).tiny)
                M[:, :-1] -= level * M[:, -1:]
                MtM = None
                colsum = np.ones(len(M)) @ M  # BLAS; faster than sum(axis=0) here
            infl.set_factor(c, M, MtM)
            cache[c] = (colsum[-1], colsum[:-1])
        return cache[c]

    for (g, controls, cov_period), cl in groups.items():
        members = [g, *controls]
        slices = [dd.blocks[c] for c in members]
        sizes = [s.stop - s.start for s in slices]
        n_tr, n_co = sizes[0], sum(sizes[1:])
        where = _where(cl[0], dd.tlist)
        if n_tr == 0:
            raise EstimationError(f"no units in {where}")
        if n_co == 0:
            raise EstimationError(f"no comparison units for {where}")
        cs = np.array([c.c for c in cl])
        bs = np.array([c.base for c in cl])
        cols = [c.col for c in cl]
        n1 = n_tr + n_co
        if no_covariates:
            att[cols] = _difference_in_means(dd, members, slices, cs, bs, cols, n / n1, infl,
                                             where, moments)
            continue
        tasks.append((members, slices, sizes, cs, bs, cols, cov_period, where))

    def fit(task):
        members, slices, sizes, cs, bs, cols, cov_period, where = task
        n_tr, n_co = sizes[0], sum(sizes[1:])
        dY = kernels.stacked_differences(dd.Y, np.array([s.start for s in slices]),
                                         np.array([s.stop for s in slices]), cs, bs)
        D = np.zeros(n_tr + n_co)
        D[:n_tr] = 1.0
        w = np.concatenate([dd.unit_weight[s] for s in slices])
        if dd.X is not None:
            X = _with_intercept(np.concatenate([dd.X[s] for s in slices]))
        else:
            X = _with_intercept(np.concatenate([dd.X_by_period[cov_period][s] for s in slices]))
        if n_co < X.shape[1]:
            raise EstimationError(f"too few comparison units for {where}: {n_co} units for "
                                  f"{X.shape[1]} regression coefficients")
        a, psi = panel_2x2(dY, D, X, w, method, where=where)
        psi *= n / (n_tr + n_co)
        return a, psi

    # cells of different cohorts are independent: fit them in worker threads; results are
    # stored in a fixed order
    fitted = map_in_threads(fit, tasks)
    for (members, _, sizes, _, _, cols, _, _), (a, psi) in zip(tasks, fitted, strict=True):
        att[cols] = a
        start = 0
        for c, size in zip(members, sizes, strict=True):
            infl.add(c, cols, psi[start:start + size])
            start += size


def _difference_in_means(dd, members, slices, cs, bs, cols, scale, infl, where, moments):
    """Closed form shared by all estimators without covariates.

    With an intercept-only design the outcome regression is the comparison
    group's weighted mean change, the propensity score is the treated share,
    and DR, IPW and REG all reduce to the difference in weighted mean changes
    with influence function ``w (dY - mean_tr) / mean(w D)`` for treated and
    ``-w (dY - mean_co) / mean(w (1 - D))`` for comparison units (2x2 scale).
    These are linear in each unit's ``[w * Y, w]``, so they are stored factored.
    """
    n1 = sum(s.stop - s.start for s in slices)
    T = dd.Y.shape[1]
    sums = [moments(c) for c in members]  # (sum of w, w'Y) per block
    sw_tr = sums[0][0]
    sw_co = sum(m[0] for m in sums[1:])
    if sw_tr <= 0 or sw_co <= 0:
        raise EstimationError(f"no treated or comparison units with positive weight in {where}")
    if sw_tr / (sw_tr + sw_co) >= 0.995:
        # DRDID trims comparison units whose propensity score reaches the 0.995 limit
        raise EstimationError(f"comparison group too small relative to the treated cohort in "
                              f"{where} (treated share >= 0.995)")
    mean_tr = (sums[0][1][cs] - sums[0][1][bs]) / sw_tr
    mean_co = sum(m[1][cs] - m[1][bs] for m in sums[1:]) / sw_co
    m = len(cs)
    ar = np.arange(m)
    for k, c in enumerate(members):
        factor = scale * n1 / (sw_tr if k == 0 else -sw_co)
        A = np.zeros((T + 1, m))
        np.add.at(A, (cs, ar), factor)
        np.add.at(A, (bs, ar), -factor)
        A[T] = -factor * (mean_tr if k == 0 else mean_co)
        infl.add_factored(c, cols, A)
    return mean_tr - mean_co


def _with_intercept(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(X)), X])


def _estimate_rc(dd: DidData, cells: list, method: str, att: np.ndarray,
                 infl: BlockInfluence) -> None:
    n = dd.n
    row_cohort = dd.unit_cohort[dd.row_unit]
    rows_by_t = [np.flatnonzero(dd.row_t == j) for j in range(len(dd.tlist))]
    for cell in cells:
        if cell.zero:
            continue
        members = np.array([cell.g, *cell.controls])
        rows = np.sort(np.concatenate([rows_by_t[cell.c], rows_by_t[cell.base]]))
        rows = rows[np.isin(row_cohort[rows], members)]
        D = (row_cohort[rows] == cell.g).astype(float)
        post = (dd.row_t[rows] == cell.c).astype(float)
        where = _where(cell, dd.tlist)
        empty = [label for label, cnt in (
            ("treated units in the cell period", np.sum(D * post)),
            ("treated units in the base period", np.sum(D * (1 - post))),
            ("comparison units in the cell period", np.sum((1 - D) * post)),
            ("comparison units in the base period", np.sum((1 - D) * (1 - post)))) if cnt == 0]
        if empty:
            # As R's did: the cell is not estimable (NA) and the others are still estimated;
            # aggregations then need na_rm=True (R's aggte(na.rm = TRUE)).
            warnings.warn(f"ATT(g,t) not estimable (NaN) for {where}: no {empty[0]}",
                          stacklevel=3)
            att[cell.col] = np.nan
            continue
        X = (_with_intercept(dd.row_X[rows]) if dd.row_X is not None
             else np.ones((len(rows), 1)))
        a, psi = rc_2x2(dd.row_y[rows], post, D, X, dd.row_w[rows], method, where=where)
        att[cell.col] = a[0]
        per_unit = np.bincount(dd.row_unit[rows], weights=psi[:, 0] * (n / len(rows)),
                               minlength=n)
        for c in members:
            sl = dd.blocks[float(c)]
            infl.add(float(c), [cell.col], per_unit[sl][:, None])


