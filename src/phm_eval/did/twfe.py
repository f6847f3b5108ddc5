"""Comparison estimators: two-way fixed effects, its event study, and a 2x2 DiD.

These are the regressions evaluations used before staggered-adoption methods;
under staggered timing with heterogeneous effects TWFE weights some cells
negatively (Goodman-Bacon 2021), which is why :func:`att_gt` is the primary
estimator.  Unit and period effects are absorbed by alternating projections
(exact in one sweep for balanced, unweighted panels).  Standard errors are
cluster-robust (CR1), by default by unit, with the small-sample factor
``G/(G-1) * (N-1)/(N-K)`` where ``K`` counts the slope coefficients, the period
effects, and the unit effects unless units are nested in clusters (R
``fixest``'s default).

They take :func:`att_gt`'s column arguments and R names (``xformla``, ``clustervars``,
``weightsname``, ``alp``) so the comparison is written as the primary estimate is; their
options are keyword-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from phm_eval.convention import ResultConvention
from phm_eval.errors import EstimationError, InputError

from ._prep import _design, parse_xformla
from ._threads import single_threaded_blas
from .estimators import panel_2x2

_TABLE = "twfe data"


@dataclass(frozen=True, repr=False)
class RegressionResult(ResultConvention):
    """Coefficients of a fixed-effects regression with cluster-robust errors (read-only)."""

    terms: list
    coef: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    n_obs: int
    n_clusters: int
    alp: float = 0.05
    event_times: np.ndarray | None = None  # event study: relative period of each term
    kind: str = "twfe"
    extra: dict = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "terms": list(self.terms), "n_obs": int(self.n_obs),
                "n_clusters": int(self.n_clusters)}

    def _summary_table(self) -> pd.DataFrame:
        """term, estimate, se, z, p, ci_low, ci_high (normal reference, as ``fixest``'s
        large-sample default is t with G-1 df; we report normal quantiles)."""
        z = self.coef / self.se
        q = norm.ppf(1 - self.alp / 2)
        return pd.DataFrame({"term": self.terms, "estimate": self.coef, "se": self.se,
                             "z": z, "p": 2 * norm.sf(np.abs(z)),
                             "ci_low": self.coef - q * self.se,
                             "ci_high": self.coef + q * self.se})

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_obs": self.n_obs, "n_clusters": self.n_clusters,
                "coefficients": self.summary().to_dict(orient="records")}

    def plot(self, *, ax=None):
        """Event-study coefficients (reference period drawn at zero) or the estimate."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 4))
        q = norm.ppf(1 - self.alp / 2)
        if self.event_times is not None:
            e = np.append(self.event_times, -1)
            b = np.append(self.coef[: len(self.event_times)], 0.0)
            s = np.append(self.se[: len(self.event_times)], 0.0)
            order = np.argsort(e)
            ax.errorbar(e[order], b[order], yerr=q * s[order], fmt="o", capsize=3,
                        color="#1f77b4")
            ax.axvline(-0.5, color="black", lw=0.6, ls=":")
            ax.set_xlabel("event time (reference: -1)")
            ax.set_title("TWFE event study")
        else:
            ax.errorbar(range(len(self.coef)), self.coef, yerr=q * self.se, fmt="o", capsize=3)
            ax.set_xticks(range(len(self.coef)), self.terms)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("estimate")
        return ax


# ----------------------------------------------------------------------------- helpers
def _columns(data, *names):
    for c in names:
        if c is not None and c not in data.columns:
            raise InputError(_TABLE, "required column is missing", column=c)


def _demean(M: np.ndarray, unit: np.ndarray, time: np.ndarray, w: np.ndarray,
            tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """Remove weighted unit and period means from each column of ``M``."""
    M = M.copy()
    n_u, n_t = unit.max() + 1, time.max() + 1
    wu = np.bincount(unit, weights=w, minlength=n_u)
    wt = np.bincount(time, weights=w, minlength=n_t)
    scale = np.maximum(np.abs(M).max(axis=0), 1.0)
    for _ in range(max_iter):
        change = 0.0
        for codes, wsum, size in ((unit, wu, n_u), (time, wt, n_t)):
            means = np.column_stack([np.bincount(codes, weights=w * M[:, j], minlength=size)
                                     for j in range(M.shape[1])]) / wsum[:, None]
            M -= means[codes]
            change = max(change, float(np.max(np.abs(means).max(axis=0) / scale)))
        if change < tol:
            return M
    raise EstimationError("two-way demeaning did not converge")


def _fit(y, X, unit, time, w, cluster, terms, alp, nested_units):
    Z = _demean(np.column_stack([y, X]), unit, time, w)
    yd, Xd = Z[:, 0], Z[:, 1:]
    keep = np.abs(Xd).max(axis=0) > 1e-10
    if not keep.all():
        dropped = [t for t, k in zip(terms, keep, strict=True) if not k]
        raise EstimationError(f"regressors absorbed by the fixed effects: {dropped}")
    XtWX = (Xd * w[:, None]).T @ Xd
    try:
        bread = np.linalg.inv(XtWX)
    except np.linalg.LinAlgError as exc:
        raise EstimationError("the regressors are collinear") from exc
    beta = bread @ ((Xd * w[:, None]).T @ yd)
    resid = yd - Xd @ beta
    scores = Xd * (w * resid)[:, None]
    codes, G = np.unique(cluster, return_inverse=True)[1], len(np.unique(cluster))
    if G < 2:
        raise EstimationError("cluster-robust standard errors need at least two clusters")
    S = np.zeros((G, Xd.shape[1]))
    np.add.at(S, codes, scores)
    N = len(y)
    K = Xd.shape[1] + (time.max()) + (0 if nested_units else unit.max())
    adj = G / (G - 1) * (N - 1) / (N - K - 1)
    V = bread @ (S.T @ S) @ bread * adj
    return RegressionResult(terms=list(terms), coef=beta, se=np.sqrt(np.diag(V)), vcov=V,
                            n_obs=N, n_clusters=G, alp=alp)


def _prepare(data, yname, tname, idname, gname, xformla, clustervars, weightsname):
    _columns(data, yname, tname, idname, gname, weightsname,
             *([clustervars] if isinstance(clustervars, str) else clustervars or []))
    rhs = parse_xformla(xformla)
    Xc, names = _design(data, rhs)
    cols = [yname, tname, gname] + ([weightsname] if weightsname else [])
    ok = data[cols].notna().all(axis=1).to_numpy() & data[idname].notna().to_numpy()
    if Xc is not None:
        ok &= np.isfinite(Xc).all(axis=1)
    d = data.loc[ok]
    Xc = Xc[ok] if Xc is not None else None
    unit = pd.factorize(d[idname])[0]
    tcodes, tvals = pd.factorize(d[tname], sort=True)
    w = d[weightsname].to_numpy(float) if weightsname else np.ones(len(d))
    cl = clustervars if clustervars is not None else idname
    if not isinstance(cl, str):
        cl = [c for c in cl if c != idname]
        cl = cl[0] if cl else idname
    cluster = pd.factorize(d[cl])[0]
    # units are nested in clusters when no unit spans two clusters
    nested = bool(np.all(pd.Series(cluster).groupby(unit).nunique() == 1))
    return d, Xc, names[1:], unit, tcodes, np.asarray(tvals), w, cluster, nested


@single_threaded_blas
def twfe(data: pd.DataFrame, yname: str, tname: str, idname: str, gname: str,
         *,
         xformla: str | None = None, clustervars=None, weightsname: str | None = None,
         alp: float = 0.05) -> RegressionResult:
    """Static TWFE regression ``y_it = a_i + l_t + b D_it + x_it'c + e_it``.

    ``D_it = 1`` from the first treated period ``gname`` on (0 = never treated).

    Returns
    -------
    RegressionResult
        First coefficient ``treated`` is the TWFE estimate.
    """
    d, Xc, names, unit, tcode, tvals, w, cluster, nested = _prepare(
        data, yname, tname, idname, gname, xformla, clustervars, weightsname)
    g = d[gname].to_numpy(float)
    t = d[tname].to_numpy(float)
    D = ((g > 0) & (t >= g)).astype(float)
    X = D[:, None] if Xc is None else np.column_stack([D, Xc])
    res = _fit(d[yname].to_numpy(float), X, unit, tcode, w, cluster, ["treated", *names],
               alp, nested)
    return replace(res, kind="twfe")


@single_threaded_blas
def event_study_twfe(data: pd.DataFrame, yname: str, tname: str, idname: str, gname: str,
                     *,
                     xformla: str | None = None, clustervars=None,
                     weightsname: str | None = None, min_e: int | None = None,
                     max_e: int | None = None, alp: float = 0.05) -> RegressionResult:
    """Dynamic TWFE: indicators for each event time ``t - g`` except ``-1``.

    Never-treated units have no indicators.  Event times below ``min_e`` or above
    ``max_e`` are binned into the end points.  Period gaps are measured in the
    units of ``tname``.
    """
    d, Xc, names, unit, tcode, tvals, w, cluster, nested = _prepare(
        data, yname, tname, idname, gname, xformla, clustervars, weightsname)
    g = d[gname].to_numpy(float)
    e = d[tname].to_numpy(float) - g
    treated = g > 0
    if min_e is not None:
        e = np.where(treated & (e < min_e), min_e, e)
    if max_e is not None:
        e = np.where(treated & (e > max_e), max_e, e)
    levels = np.unique(e[treated])
    levels = levels[levels != -1]
    if len(levels) == 0:
        raise EstimationError("no treated unit-periods to form event-time indicators")
    E = np.column_stack([(treated & (e == k)).astype(float) for k in levels])
    X = E if Xc is None else np.column_stack([E, Xc])
    terms = [f"e={int(k)}" for k in levels] + list(names)
    res = _fit(d[yname].to_numpy(float), X, unit, tcode, w, cluster, terms, alp, nested)
    return replace(res, event_times=levels, kind="event_study_twfe")


@single_threaded_blas
def did_2x2(data: pd.DataFrame, yname: str, tname: str, idname: str, treatname: str,
            pre, post, *, xformla: str | None = None, est_method: str = "reg",
            weightsname: str | None = None, alp: float = 0.05) -> RegressionResult:
    """Two-group, two-period DiD on a balanced panel (``pre`` and ``post`` periods).

    ``treatname`` marks units treated in ``post`` (constant within unit).  Without
    covariates every ``est_method`` is the difference in mean outcome changes;
    the standard error comes from its influence function, as in R's ``DRDID``.
    """
    _columns(data, yname, tname, idname, treatname, weightsname)
    two = data[data[tname].isin([pre, post])]
    wide = two.pivot_table(index=idname, columns=tname, values=yname, aggfunc="first")
    if pre not in wide.columns or post not in wide.columns:
        raise InputError(_TABLE, f"periods {pre} and {post} must both be present", column=tname)
    wide = wide.dropna()
    first = two[two[tname] == pre].drop_duplicates(idname).set_index(idname).loc[wide.index]
    D = first[treatname].to_numpy(float)
    if not set(np.unique(D)) <= {0.0, 1.0} or D.min() == D.max():
        raise InputError(_TABLE, "treatment must be 0/1 with both groups present",
                         column=treatname)
    rhs = parse_xformla(xformla)
    Xc, names = _design(first.reset_index(), rhs)
    X = np.ones((len(D), 1)) if Xc is None else np.column_stack([np.ones(len(D)), Xc])
    w = first[weightsname].to_numpy(float) if weightsname else np.ones(len(D))
    dY = (wide[post] - wide[pre]).to_numpy()[:, None]
    att, psi = panel_2x2(dY, D, X, w, est_method, where=f"periods {pre} and {post}")
    n = len(D)
    se = np.sqrt(np.sum(psi[:, 0] ** 2)) / n
    return RegressionResult(terms=["att"], coef=att, se=np.array([se]),
                            vcov=np.array([[se**2]]), n_obs=n, n_clusters=n, alp=alp,
                            kind="did_2x2")
