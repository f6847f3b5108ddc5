"""Honest DiD for an event study from ``att_gt``: its covariance and the robust intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from phm_eval.errors import ConfigError, EstimationError

from .intervals import honest_did
from .result import HonestDiDResult

if TYPE_CHECKING:
    from ..results import AggteResult, AttGtResult


def event_study_covariance(res: AttGtResult, agg: AggteResult | None = None,
                           *,
                           min_e: float | None = None, max_e: float | None = None,
                           balance_e: int | None = None, na_rm: bool = False) -> tuple:
    """Event times, estimates and covariance of a dynamic aggregation (R's ``aggte``).

    The covariance is that of the estimates, ``psi' psi / n^2`` from the event-time
    influence functions (cluster sums when clustered), the scale of the analytic
    standard errors ``se_egt`` (R's ``honest_did.AGGTEobj`` uses the same
    ``t(inf) %*% inf / n / n``).  Bootstrapped ``se_egt`` are not used.

    Parameters
    ----------
    res : AttGtResult
    agg : AggteResult, optional
        A dynamic aggregation of ``res``; its window (``min_e``, ``max_e``,
        ``balance_e``) and its event-time influence functions are used.
    min_e, max_e, balance_e, na_rm
        As :func:`~phm_eval.did.aggregate` (when ``agg`` is not given).

    Returns
    -------
    egt, beta, V : arrays
    """
    from ..aggregate import aggregate

    if agg is not None:
        if agg.type != "dynamic":
            raise ConfigError(f"need a dynamic aggregation (event study), got type {agg.type!r}")
        if agg._source is not res:
            raise ConfigError("agg is not a dynamic aggregation of res")
        es = agg
    else:
        es = aggregate(res, "dynamic", min_e=min_e, max_e=max_e, balance_e=balance_e,
                       cband=False, na_rm=na_rm)
    V = es.covariance_egt()
    beta = np.asarray(es.att_egt, dtype=float)
    return np.asarray(es.egt, dtype=float), beta, V


def honest_did_from_event_study(res: AttGtResult, agg: AggteResult | None = None, *,
                                e: int = 0, l_vec: npt.ArrayLike | None = None,
                                method: str = "relative_magnitude",
                                m: float | Sequence[float] | None = None,
                                alpha: float | None = None, min_e: float | None = None,
                                max_e: float | None = None, balance_e: int | None = None,
                                na_rm: bool = False,
                                grid_points: int = 100, **kwargs) -> HonestDiDResult:
    """Honest DiD for an event study from :func:`~phm_eval.did.att_gt` (R's ``honest_did``).

    As the ``honest_did.AGGTEobj`` function of HonestDiD's README: needs
    ``base_period="universal"``; the reference event time (``-1 - anticipation``, fixed
    at 0) is dropped; earlier event times are the pre-periods, later ones (including
    anticipation periods) the post-periods; event times must be consecutive.

    Parameters
    ----------
    res : AttGtResult
    agg : AggteResult, optional
        Dynamic aggregation of ``res`` whose window to use (else ``min_e``, ``max_e``,
        ``balance_e``, ``na_rm`` as :func:`~phm_eval.did.aggregate`).
    e : int
        Event time of interest when ``l_vec`` is not given (default 0, on impact).
    l_vec : array, optional
        Weights over the post-period event times instead of ``e``.
    method, m, alpha, grid_points, **kwargs
        As :func:`honest_did` (``alpha`` defaults to the ``att_gt`` call's; the grid has
        100 points as in R's ``honest_did``).

    Returns
    -------
    HonestDiDResult
    """
    if res.config.get("base_period") != "universal":
        raise ConfigError("honest_did needs an event study with base_period='universal' "
                          "(varying base periods do not measure pre-trends against one "
                          "reference period)")
    egt, beta, V = event_study_covariance(res, agg, min_e=min_e, max_e=max_e,
                                          balance_e=balance_e, na_rm=na_rm)
    ref = -1.0 - float(res.config.get("anticipation", 0))
    pre, post = egt[egt < ref], egt[egt > ref]
    if np.any(np.diff(egt) != 1):
        raise ConfigError("honest_did needs consecutive event times; got "
                          f"{[float(x) for x in egt]}")
    keep = egt != ref
    if ref in egt:
        zero = np.flatnonzero(egt == ref)[0]
        if abs(beta[zero]) > 1e-12 or V[zero, zero] > 1e-20:
            raise EstimationError(f"the reference event time {ref:g} is not normalised to 0")
    if len(pre) == 0 or len(post) == 0:
        raise ConfigError("honest_did needs at least one pre-period and one post-period "
                          f"event time besides the reference {ref:g}; got {list(egt)}")
    if l_vec is None:
        if e not in post:
            raise ConfigError(f"event time e={e} is not among the post-periods {list(post)}")
        l_vec = (post == e).astype(float)
    alpha = res.alp if alpha is None else alpha
    return honest_did(beta[keep], V[np.ix_(keep, keep)], len(pre), len(post), method=method,
                      m=m, l_vec=l_vec, alpha=alpha, grid_points=grid_points, **kwargs)
