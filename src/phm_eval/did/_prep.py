"""Validate long-format input and reshape it once into unit-level arrays.

Everything downstream works on arrays whose rows are units sorted by cohort
(first treated period, 0 = never treated), so that each cohort is a contiguous
block of rows.  For balanced panels the outcome is a units x periods matrix;
for repeated cross-sections and unbalanced panels the rows are observations,
each mapped to a unit (the observation itself for a true cross-section).

The conventions follow R's ``did`` (``pre_process_did``): cohorts later than the
last period (plus anticipation) count as never treated, units treated in the
first period are dropped, unbalanced units are dropped from a panel unless
``allow_unbalanced_panel``.  What is dropped and why is recorded in
``DidData.flow``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from phm_eval.errors import EstimationError, InputError

from . import _kernels as kernels
from ._threads import map_in_threads

logger = logging.getLogger(__name__)

_TABLE = "att_gt data"
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass
class DidData:
    """Unit-level arrays ready for estimation (units sorted by cohort)."""

    panel: bool  # True: balanced panel (wide arrays); False: observation rows
    n: int  # number of units (influence-function rows)
    tlist: np.ndarray  # sorted distinct periods
    glist: np.ndarray  # treated cohorts to estimate
    cohorts: np.ndarray  # sorted distinct cohort values present (0 first if any)
    blocks: dict  # cohort -> slice of unit rows
    unit_cohort: np.ndarray  # (n,) cohort of each unit
    unit_weight: np.ndarray  # (n,) sampling weight of each unit (raw scale)
    _unit_ids: object = field(repr=False)  # unit_ids, or a function computing them once
    covariate_names: list  # design column names, intercept first
    # balanced panel
    Y: np.ndarray | None = None  # (n, T), a view of Y1
    Y1: np.ndarray | None = None  # (n, T + 1): outcomes and a column of ones
    X: np.ndarray | None = None  # (n, p) when covariates are time-invariant
    X_by_period: np.ndarray | None = None  # (T, n, p) when some covariate varies
    # repeated cross-section / unbalanced panel (observation rows, sorted by unit)
    row_y: np.ndarray | None = None
    row_t: np.ndarray | None = None  # period index of each row
    row_unit: np.ndarray | None = None
    row_w: np.ndarray | None = None
    row_X: np.ndarray | None = None
    true_rc: bool = False  # repeated cross-sections: each observation is its own unit
    unit_cluster: np.ndarray | None = None  # (n,) integer cluster codes
    n_clusters: int = 0
    flow: list = field(default_factory=list)  # (step, n_rows_or_units, reason)

    @property
    def unit_ids(self) -> np.ndarray:
        """(n,) original id of each unit (row number for cross-sections)."""
        if callable(self._unit_ids):
            self._unit_ids = self._unit_ids()
        return self._unit_ids


def parse_xformla(xformla: str | None) -> str | None:
    """Return the right-hand side of ``"~ x1 + x2"`` (None for no covariates)."""
    if xformla is None:
        return None
    if not isinstance(xformla, str):
        raise InputError(_TABLE, f"xformla must be a string like '~ x1 + x2', got {xformla!r}")
    text = xformla.strip()
    if "~" in text:
        lhs, _, text = text.partition("~")
        if lhs.strip():
            raise InputError(_TABLE, f"xformla must have no left-hand side, got {xformla!r}")
    text = text.strip()
    if text in ("", "1"):
        return None
    return text


def _design(data: pd.DataFrame, rhs: str | None) -> tuple[np.ndarray | None, list]:
    """Covariate design (without intercept) for every row of ``data``."""
    if rhs is None:
        return None, ["(Intercept)"]
    terms = [t.strip() for t in rhs.split("+")]
    if all(_NAME.match(t) for t in terms) and "1" not in terms:
        missing = [t for t in terms if t not in data.columns]
        if missing:
            raise InputError(_TABLE, "covariate named in xformla is not in the data",
                             column=missing[0])
        cols = []
        for t in terms:
            v = data[t]
            if not (pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v)):
                raise InputError(
                    _TABLE, "covariate must be numeric; write factors as C(name) in xformla",
                    column=t)
            cols.append(v.to_numpy(dtype=float))
        return np.column_stack(cols), ["(Intercept)", *terms]
    try:
        from formulaic import model_matrix
    except ImportError as exc:  # pragma: no cover - formulaic ships with lifelines
        raise InputError(_TABLE, "formula terms beyond plain column names need formulaic") from exc
    try:
        mm = model_matrix("1 + " + rhs, data, na_action="ignore")
    except Exception as exc:
        raise InputError(_TABLE, f"cannot build covariates from xformla '~ {rhs}': {exc}") from exc
    names = list(mm.columns)
    mat = np.asarray(mm, dtype=float)
    keep = [i for i, nm in enumerate(names) if nm != "Intercept"]
    return mat[:, keep], ["(Intercept)", *[names[i] for i in keep]]


def _first_rows(mask: np.ndarray, limit: int = 5) -> list:
    return [int(i) + 1 for i in np.flatnonzero(mask)[:limit]]


def _numeric(data: pd.DataFrame, name: str, role: str) -> np.ndarray:
    col = data[name]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(col):
        raise InputError(_TABLE, f"{role} must be numeric (got {col.dtype})", column=name)
    return col.to_numpy()


def prepare(
    data: pd.DataFrame,
    yname: str,
    tname: str,
    idname: str | None,
    gname: str,
    xformla: str | None,
    control_group: str,
    anticipation: int,
    weightsname: str | None,
    clustervars,
    panel: bool,
    allow_unbalanced_panel: bool,
) -> DidData:
    """Validate ``data`` and reshape it for :func:`att_gt` (see module docstring)."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(_TABLE, "data must be a pandas DataFrame")
    if panel and idname is None:
        raise InputError(_TABLE, "idname is required for panel data (set panel=False for "
                         "repeated cross-sections)")
    extra_cluster = _cluster_var(clustervars, idname)
    needed = [c for c in (yname, tname, idname, gname, weightsname, extra_cluster) if c]
    for c in needed:
        if c not in data.columns:
            raise InputError(_TABLE, "required column is missing", column=c)
    rhs = parse_xformla(xformla)
    flow: list = [("input rows", len(data), "")]

    y = _numeric(data, yname, "the outcome")
    t = _numeric(data, tname, "the time variable")
    g = _numeric(data, gname, "the group (first treated period) variable")
    w = _numeric(data, weightsname, "the weights") if weightsname else None
    Xrows, names = _design(data, rhs)

    y = np.asarray(y, dtype=float)
    if w is not None:
        w = np.asarray(w, dtype=float)
    ids = data[idname].to_numpy() if idname else None
    clus = data[extra_cluster].to_numpy() if extra_cluster else None
    # a finite sum means no NaN or infinity anywhere: one cheap pass in the usual case
    floats = [a for a in (y, t, g, w, Xrows) if a is not None and a.dtype.kind == "f"]
    objects = [a for a in (ids, clus) if a is not None and a.dtype.kind not in "iub"]
    if all(np.isfinite(np.sum(a)) for a in floats) and not objects:
        ok = np.ones(len(y), dtype=bool)
    else:
        ok = np.isfinite(y)
        if t.dtype.kind == "f":
            ok &= np.isfinite(t)
        if g.dtype.kind == "f":
            ok &= ~np.isnan(g)
        if w is not None:
            ok &= np.isfinite(w)
        if Xrows is not None:
            ok &= np.isfinite(Xrows).all(axis=1)
        for a in objects:
            ok &= ~pd.isna(a)
    if not ok.all():
        n_bad = int((~ok).sum())
        logger.warning("dropped %d rows with missing or non-finite values", n_bad)
        flow.append(("dropped rows with missing values", n_bad, "missing or non-finite"))
        y, t, g, w, Xrows, ids, clus = _keep_rows(ok, y, t, g, w, Xrows, ids, clus)
    if len(y) == 0:
        raise InputError(_TABLE, "no rows left after dropping missing values")
    # a balanced panel sorted by unit and period (the usual layout) is checked in one pass
    layout = _sorted_balanced(ids, t, g) if panel and len(flow) == 1 else None
    if (layout["g_min"] if layout is not None else g.min()) < 0:
        bad = g < 0
        raise InputError(_TABLE, "first treated period must be 0 (never treated) or positive",
                         column=gname, rows=_first_rows(bad), n_failing=int(bad.sum()))
    if w is not None and (np.any(w < 0) or not np.mean(w) > 0):
        raise InputError(_TABLE, "weights must be non-negative with a positive mean",
                         column=weightsname)
    if layout is not None:
        return _panel_fast(layout, y=y, g=g, w=w, Xrows=Xrows, names=names, clus=clus,
                               gname=gname, tname=tname, control_group=control_group,
                               anticipation=anticipation, flow=flow,
                               extra_cluster=extra_cluster, weightsname=weightsname)

    tlist = _uniq(t)
    if not np.all(np.equal(np.mod(tlist, 1), 0)):
        raise InputError(_TABLE, "time periods must be whole numbers (e.g. 1, 2, 3 or 2004)",
                         column=tname)
    # cohorts starting after the window behave as never treated within it
    g = np.where(g > tlist[-1] + anticipation, 0.0, g)

    return _assemble(
        y=y, t=t, g=g, w=w, Xrows=Xrows, names=names, ids=ids, clus=clus, tlist=tlist,
        yname=yname, idname=idname, gname=gname, control_group=control_group,
        anticipation=anticipation, panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel, flow=flow,
        extra_cluster=extra_cluster, weightsname=weightsname,
    )


def _cluster_var(clustervars, idname) -> str | None:
    if clustervars is None:
        return None
    if isinstance(clustervars, str):
        clustervars = [clustervars]
    extra = [c for c in clustervars if c and c != idname]
    if len(extra) > 1:
        raise InputError(_TABLE, "at most one cluster variable besides idname is supported")
    return extra[0] if extra else None


def _keep_rows(keep: np.ndarray, *arrays: np.ndarray | None) -> tuple:
    """Each array's rows where ``keep`` (a mask or index) selects them; None stays None."""
    return tuple(a[keep] if a is not None else None for a in arrays)


# The sample rules of R's ``pre_process_did``, shared by the general path (:func:`_assemble`,
# on rows) and the fast path for sorted balanced panels (:func:`_panel_fast`, on units x
# periods): each path filters its own arrays, the rules and their flow entries are here.

def _comparison_cutoff(cohorts: np.ndarray, control_group: str, anticipation: int):
    """First period to drop when no unit is never treated, else None.

    Without never-treated units the not-yet-treated comparison group is empty from the
    last cohort's first treated period (less anticipation) on; with
    ``control_group="nevertreated"`` there is no comparison group at all (an error).
    """
    if np.any(cohorts == 0):
        return None
    if control_group == "nevertreated":
        raise EstimationError(
            "no never-treated units (first treated period 0, or later than the last "
            "period) are available as the comparison group; use "
            "control_group='notyettreated'")
    return cohorts.max() - anticipation


def _note_dropped_periods(flow: list, n_rows: int, cutoff, n_periods_left: int) -> None:
    """Record the periods dropped by :func:`_comparison_cutoff`; at least two must remain."""
    flow.append(("dropped rows from periods with no not-yet-treated comparison units",
                 n_rows, f"periods >= {cutoff}"))
    if n_periods_left < 2:
        raise EstimationError("fewer than two periods remain after dropping periods "
                              "without not-yet-treated comparison units")


def _treated_too_early(cohort: np.ndarray, first, anticipation: int) -> np.ndarray:
    """Units already treated in the first period (given anticipation): no pre-period."""
    return (cohort > 0) & (cohort <= first + anticipation)


def _note_dropped_early(flow: list, n_units: int, first, anticipation: int) -> None:
    logger.warning("dropped %d units already treated in the first period", n_units)
    flow.append(("dropped units treated in the first period", n_units,
                 f"first treated period <= {first + anticipation}"))


def _treated_cohorts(present: np.ndarray, first, anticipation: int, control_group: str,
                     gname: str) -> np.ndarray:
    """Cohorts to estimate among the cohorts ``present`` (sorted): treated after the first
    period (plus anticipation) and, without never-treated units and unless only
    never-treated comparisons are asked for, before the last cohort (its comparison group
    would be empty)."""
    glist = present[(present > 0) & (present > first + anticipation)]
    if len(glist) and control_group != "nevertreated" and not np.any(present == 0):
        glist = glist[glist < present.max()]
    if len(glist) == 0:
        raise InputError(_TABLE, "no treated cohorts to estimate: the group variable must hold "
                         "the first treated period (0 for never treated)", column=gname)
    return glist


def _assemble(*, y, t, g, w, Xrows, names, ids, clus, tlist, yname, idname, gname,
              control_group, anticipation, panel, allow_unbalanced_panel, flow,
              extra_cluster, weightsname) -> DidData:
    first = tlist[0]
    cutoff = _comparison_cutoff(_uniq(g), control_group, anticipation)
    if cutoff is not None:
        keep = t < cutoff
        y, t, g, w, Xrows, ids, clus = _keep_rows(keep, y, t, g, w, Xrows, ids, clus)
        tlist = _uniq(t)
        _note_dropped_periods(flow, int((~keep).sum()), cutoff, len(tlist))

    early = _treated_too_early(g, first, anticipation)
    if early.any():
        _note_dropped_early(flow, len(pd.unique(ids[early])) if panel else int(early.sum()),
                            first, anticipation)
        y, t, g, w, Xrows, ids, clus = _keep_rows(~early, y, t, g, w, Xrows, ids, clus)
        tlist = _uniq(t)
    glist = _treated_cohorts(_uniq(g), tlist[0], anticipation, control_group, gname)

    if not panel:
        return _cross_section(y=y, t=t, g=g, w=w, Xrows=Xrows, names=names, ids=None,
                              clus=clus, tlist=tlist, glist=glist, flow=flow,
                              true_rc=True, extra_cluster=extra_cluster)

    # ---- panel: map rows to (unit, period) ------------------------------------------
    scattered = _scatter_panel(y, t, g, w, Xrows, ids, clus, tlist, idname, gname,
                               extra_cluster, allow_unbalanced_panel, flow)
    if isinstance(scattered[0], str):  # unbalanced and allowed: observation-level path
        return _cross_section(y=y, t=t, g=g, w=w, Xrows=Xrows, names=names,
                              ids=scattered[1:], clus=clus, tlist=tlist, glist=glist,
                              flow=flow, true_rc=False, extra_cluster=extra_cluster)
    uid, unit_g, Yw, wmat, Xw, unit_clus, n_units = scattered

    return _finish_panel(uid, unit_g, Yw, wmat, Xw, unit_clus, tlist, glist, names, flow,
                         weightsname)


def _finish_panel(uid, unit_g, Yw, wmat, Xw, unit_clus, tlist, glist, names, flow,
                  weightsname, cohort_codes=None) -> DidData:
    """Sort units by cohort and store the arrays used by the estimators."""
    n_units, T = Yw.shape
    if cohort_codes is None:
        codes, vals = pd.factorize(unit_g)
        uniq, remap = np.unique(np.asarray(vals, dtype=float), return_inverse=True)
        cohort_codes = (remap[codes], uniq)
    codes, uniq = cohort_codes
    counts = np.bincount(codes, minlength=len(uniq))
    used = counts > 0
    cohorts = uniq[used]
    counts = counts[used]
    ucode = (np.cumsum(used) - 1)[codes]
    # one extra column of ones: without covariates [Y, 1] is each block's factor
    Y1 = np.empty((n_units, T + 1))
    if np.all(ucode[1:] >= ucode[:-1]):
        rank = None
        Y1[:, :T] = Yw
        Y1[:, T] = 1.0
    else:
        # counting sort; long panels in two halves (the same halves whatever the number of
        # threads), each scattering its rows in its own thread
        rank = np.empty(n_units, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        halves = 2 if n_units >= 50_000 else 1
        bounds = np.linspace(0, n_units, halves + 1).astype(int)
        next_pos = []
        for h in range(halves):
            next_pos.append(starts.copy())
            starts = starts + np.bincount(ucode[bounds[h]:bounds[h + 1]], minlength=len(counts))

        def scatter(h):
            kernels.scatter_by_code(Yw, ucode, bounds[h], bounds[h + 1], next_pos[h], Y1, 1.0,
                                    rank)

        map_in_threads(scatter, range(halves))

    def take(a):
        return _in_cohort_order(a, rank)

    unit_g = np.repeat(cohorts, counts)  # the cohorts in sorted order
    Y = Y1[:, :T]
    weights = np.ones(n_units)
    if wmat is not None:
        if np.any(np.abs(wmat - wmat[:, :1]) > 1e-8 * np.maximum(1.0, np.abs(wmat[:, :1]))):
            raise InputError(_TABLE, "sampling weights must be constant within a unit for "
                             "panel data", column=weightsname)
        weights = take(wmat[:, 0]).astype(float)
    X = Xbp = None
    if Xw is not None:
        if all(kernels.first_varying_row(Xw[:, :, j]) < 0 for j in range(Xw.shape[2])):
            X = np.ascontiguousarray(take(Xw[:, 0, :]))
        else:
            Xbp = np.ascontiguousarray(np.transpose(take(Xw), (1, 0, 2)))
    data = DidData(
        panel=True, n=n_units, tlist=tlist, glist=glist, cohorts=cohorts,
        blocks=_blocks(unit_g, cohorts), unit_cohort=unit_g,
        unit_weight=weights, _unit_ids=partial(_in_cohort_order, np.asarray(uid), rank),
        covariate_names=names,
        Y=Y, Y1=Y1, X=X, X_by_period=Xbp, flow=flow,
    )
    if unit_clus is not None:
        data.unit_cluster, data.n_clusters = _recode(take(unit_clus))
    flow.append(("units analysed", n_units, f"{T} periods, balanced panel"))
    return data


def _in_cohort_order(a: np.ndarray, rank: np.ndarray | None) -> np.ndarray:
    """``a`` with row ``i`` moved to ``rank[i]`` (unchanged when ``rank`` is None)."""
    if rank is None:
        return a
    out = np.empty(a.shape, dtype=a.dtype)
    if a.ndim == 1:
        out[rank] = a
    else:
        kernels.scatter_rows(a.reshape(len(a), -1), rank, out.reshape(len(a), -1))
    return out


def _uniq(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (hash-based, faster than a full sort for long columns)."""
    return np.sort(pd.unique(a))


def _sorted_balanced(ids, t, g, max_distinct: int = 64) -> dict | None:
    """One pass over rows sorted by unit then period and balanced (else None): unit ids,
    periods, the first unit whose group varies over time (-1 if none), cohort codes (None
    when there are too many cohorts to code by a scan) and the smallest group. Long panels
    are scanned in two halves by two threads; other id types are checked with numpy."""
    if t.dtype.kind not in "iuf" or g.dtype.kind not in "iuf":
        return None
    if ids.dtype.kind not in "iuf":
        return _sorted_balanced_generic(ids, t, g)
    T = kernels.leading_run(ids)
    if T == 0 or len(ids) % T:
        return None
    n = len(ids) // T
    parts = 2 if n * T >= 200_000 else 1
    bounds = np.linspace(0, n, parts + 1).astype(int)

    def scan(span):
        return kernels.scan_sorted_units(ids, t, g, T, span[0], span[1], max_distinct)

    found = map_in_threads(scan, zip(bounds[:-1], bounds[1:], strict=True))
    if not all(f[0] for f in found):
        return None
    varying = next((f[1] for f in found if f[1] >= 0), -1)
    codes = None
    if all(f[4] for f in found):
        # merge the halves' codes: distinct values in order of first appearance
        distinct = list(found[0][3])
        pieces = []
        for f in found:
            remap = np.empty(len(f[3]), dtype=np.int64)
            for i, v in enumerate(f[3]):
                if v not in distinct:
                    distinct.append(v)
                remap[i] = distinct.index(v)
            pieces.append(remap[f[2]] if len(f[2]) else f[2])
        if len(distinct) <= max_distinct:
            codes = (np.concatenate(pieces), np.asarray(distinct, dtype=g.dtype))
    return {"uid": ids[::T], "tlist": np.asarray(t[:T], dtype=float), "varying": varying,
            "codes": codes, "g_min": min(f[5] for f in found)}


def _sorted_balanced_generic(ids, t, g) -> dict | None:
    """:func:`_sorted_balanced` for ids of any comparable type (strings, say), in numpy."""
    N = len(ids)
    if N == 0:
        return None
    head = ids[: min(N, 4096)]
    change = head != head[0]
    if not change.any():
        change = ids != ids[0]
    T = int(np.argmax(change)) if change.any() else N
    if N % T:
        return None
    n = N // T
    tlist = t[:T]
    if T > 1 and not np.all(tlist[1:] > tlist[:-1]):
        return None
    if not (t.reshape(n, T) == tlist).all():
        return None
    idm = ids.reshape(n, T)
    if T > 1 and not (idm[:, 1:] == idm[:, :1]).all():
        return None
    first = idm[:, 0]
    try:
        if not np.all(first[1:] > first[:-1]):
            return None
    except TypeError:  # ids that cannot be ordered
        return None
    gm = g.reshape(n, T)
    varying = np.flatnonzero(~(gm == gm[:, :1]).all(axis=1))
    return {"uid": first, "tlist": np.asarray(tlist, dtype=float),
            "varying": int(varying[0]) if len(varying) else -1, "codes": None,
            "g_min": g.min()}


def _panel_fast(layout, *, y, g, w, Xrows, names, clus, gname, tname, control_group,
                anticipation, flow, extra_cluster, weightsname) -> DidData:
    """Balanced panel already sorted by unit and period: work on units x periods views."""
    uid, tlist = layout["uid"], layout["tlist"]
    if not np.all(np.equal(np.mod(tlist, 1), 0)):
        raise InputError(_TABLE, "time periods must be whole numbers (e.g. 1, 2, 3 or 2004)",
                         column=tname)
    n, T = len(uid), len(tlist)
    gm = g.reshape(n, T)
    if layout["varying"] >= 0:
        _check_rows_constant(gm, gname, uid,
                             "first treated period must be the same in every period for a unit")
    # cohorts are coded in the scan (or by one hash pass); the rest works on the few values
    if layout["codes"] is not None:
        codes, vals = layout["codes"]
    else:
        codes, vals = pd.factorize(gm[:, 0])
    vals = np.array(vals, dtype=float)
    vals[vals > tlist[-1] + anticipation] = 0.0
    uniq, remap = np.unique(vals, return_inverse=True)
    codes = remap[codes]
    unit_g = uniq[codes]
    Yw = y.reshape(n, T)
    wmat = w.reshape(n, T) if w is not None else None
    Xw = Xrows.reshape(n, T, -1) if Xrows is not None else None
    unit_clus = None
    if clus is not None:
        ccode = pd.factorize(clus)[0].reshape(n, T)
        _check_rows_constant(ccode, extra_cluster, uid,
                             "cluster variable must not change over time within a unit")
        unit_clus = ccode[:, 0]
    cutoff = _comparison_cutoff(uniq, control_group, anticipation)
    if cutoff is not None:
        keep_t = tlist < cutoff
        _note_dropped_periods(flow, int((~keep_t).sum()) * n, cutoff, int(keep_t.sum()))
        cols = np.flatnonzero(keep_t)
        tlist = tlist[cols]
        Yw = Yw[:, cols]
        wmat = wmat[:, cols] if wmat is not None else None
        Xw = Xw[:, cols] if Xw is not None else None
    early = _treated_too_early(uniq, tlist[0], anticipation)[codes]
    if early.any():
        _note_dropped_early(flow, int(early.sum()), tlist[0], anticipation)
        uid, unit_g, Yw, codes, wmat, Xw, unit_clus = _keep_rows(
            ~early, uid, unit_g, Yw, codes, wmat, Xw, unit_clus)
    present = uniq[np.bincount(codes, minlength=len(uniq)) > 0]
    glist = _treated_cohorts(present, tlist[0], anticipation, control_group, gname)
    return _finish_panel(uid, unit_g, Yw, wmat, Xw, unit_clus, tlist, glist, names, flow,
                         weightsname, cohort_codes=(codes, uniq))


def _check_rows_constant(mat, column, uid, rule):
    if kernels.first_varying_row(mat) < 0:
        return
    bad = ~(mat == mat[:, :1]).all(axis=1)
    if bad.any():
        raise InputError(_TABLE, rule, column=column, keys=[str(u) for u in uid[bad][:5]],
                         n_failing=int(bad.sum()))


def _scatter_panel(y, t, g, w, Xrows, ids, clus, tlist, idname, gname, extra_cluster,
                   allow_unbalanced_panel, flow):
    """General panel reshape (any row order); drops unbalanced units unless allowed."""
    T = len(tlist)
    uinv, uid = pd.factorize(ids, sort=True)
    uid = np.asarray(uid)
    uinv = uinv.astype(np.int64)
    n_units = len(uid)
    tcode = np.searchsorted(tlist, t).astype(np.int64)
    key_counts = np.bincount(uinv * T + tcode, minlength=n_units * T)
    if key_counts.max() > 1:
        dup = np.flatnonzero(key_counts > 1)[:5]
        raise InputError(_TABLE, "each unit may appear at most once per period",
                         column=idname, keys=[str(uid[k // T]) for k in dup],
                         n_failing=int((key_counts > 1).sum()))
    _check_constant(g, uinv, n_units, gname, uid,
                    "first treated period must be the same in every period for a unit")
    if clus is not None:
        ccode = pd.factorize(clus)[0]
        _check_constant(ccode.astype(float), uinv, n_units, extra_cluster, uid,
                        "cluster variable must not change over time within a unit")
    per_unit = np.bincount(uinv, minlength=n_units)
    if not np.all(per_unit == T):
        if allow_unbalanced_panel:
            return "unbalanced", uid, uinv
        full = per_unit == T
        n_drop = int((~full).sum())
        logger.warning("dropped %d units not observed in every period (balanced panel)", n_drop)
        flow.append(("dropped units missing some periods", n_drop,
                     "balanced panel required (allow_unbalanced_panel=False)"))
        keep = full[uinv]
        if not keep.any():
            raise EstimationError("no unit is observed in every period; set "
                                  "allow_unbalanced_panel=True or panel=False")
        y, g, tcode, w, Xrows, clus = _keep_rows(keep, y, g, tcode, w, Xrows, clus)
        uinv = (np.cumsum(full) - 1)[uinv[keep]]
        uid = uid[full]
        n_units = len(uid)
    unit_g = np.empty(n_units)
    unit_g[uinv] = g
    Yw = np.empty((n_units, T))
    Yw[uinv, tcode] = y
    wmat = None
    if w is not None:
        wmat = np.empty((n_units, T))
        wmat[uinv, tcode] = w
    Xw = None
    if Xrows is not None:
        Xw = np.empty((n_units, T, Xrows.shape[1]))
        Xw[uinv, tcode, :] = Xrows
    unit_clus = None
    if clus is not None:
        unit_clus = np.empty(n_units, dtype=np.int64)
        unit_clus[uinv] = pd.factorize(clus)[0]
    return uid, unit_g, Yw, wmat, Xw, unit_clus, n_units


def _check_constant(values, uinv, n_units, column, uid, rule):
    lo = np.full(n_units, np.inf)
    hi = np.full(n_units, -np.inf)
    np.minimum.at(lo, uinv, values)
    np.maximum.at(hi, uinv, values)
    bad = lo != hi
    if bad.any():
        raise InputError(_TABLE, rule, column=column, keys=[str(u) for u in uid[bad][:5]],
                         n_failing=int(bad.sum()))


def _blocks(sorted_cohort: np.ndarray, cohorts: np.ndarray) -> dict:
    starts = np.searchsorted(sorted_cohort, cohorts, side="left")
    ends = np.searchsorted(sorted_cohort, cohorts, side="right")
    return {float(c): slice(int(s), int(e)) for c, s, e in zip(cohorts, starts, ends, strict=True)}


def _recode(codes: np.ndarray):
    uniq, inv = np.unique(codes, return_inverse=True)
    return inv.astype(np.int64), len(uniq)


def _cross_section(*, y, t, g, w, Xrows, names, ids, clus, tlist, glist, flow, true_rc,
                   extra_cluster) -> DidData:
    """Observation-level arrays; units are rows (true_rc) or panel ids (unbalanced)."""
    N = len(y)
    if true_rc:
        unit_of_row = np.arange(N)
        uid = np.arange(N)
        unit_g = g
        n_units = N
    else:
        uid, unit_of_row = ids
        n_units = len(uid)
        unit_g = np.empty(n_units)
        unit_g[unit_of_row] = g
    cohorts = _uniq(unit_g)
    order = np.argsort(np.searchsorted(cohorts, unit_g).astype(np.int16), kind="stable")
    rank = np.empty(n_units, dtype=np.int64)
    rank[order] = np.arange(n_units)
    row_unit = rank[unit_of_row]
    row_order = np.argsort(row_unit, kind="stable")
    w_rows = np.ones(N) if w is None else w.astype(float)
    # per-unit weight as R's aggte uses it: the unit's mean weight over its rows
    unit_w = np.bincount(row_unit, weights=w_rows, minlength=n_units) / np.bincount(
        row_unit, minlength=n_units)
    data = DidData(
        panel=False, n=n_units, tlist=tlist, glist=glist, cohorts=cohorts,
        blocks=_blocks(unit_g[order], cohorts), unit_cohort=unit_g[order],
        unit_weight=unit_w, _unit_ids=np.asarray(uid)[order], covariate_names=names,
        row_y=y[row_order], row_t=np.searchsorted(tlist, t[row_order]),
        row_unit=row_unit[row_order], row_w=w_rows[row_order],
        row_X=Xrows[row_order] if Xrows is not None else None, flow=flow, true_rc=true_rc,
    )
    if clus is not None:
        cc = np.empty(n_units, dtype=np.int64)
        cc[row_unit] = pd.factorize(clus)[0]
        data.unit_cluster, data.n_clusters = _recode(cc)
    flow.append(("units analysed", n_units,
                 "repeated cross-sections" if true_rc else "unbalanced panel"))
    return data
