"""Non-parametric cumulative incidence in the presence of competing risks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.errors import EstimationError, InputError
from phm_eval.survival._cuminc_core import Curve, cinc, gray_stratum
from phm_eval.survival._data import check_finite

logger = logging.getLogger(__name__)


def _as_series(values: Any, name: str) -> pd.Series:
    return values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(
        np.asarray(values), name=name)


class CumulativeIncidenceFitter:
    """Aalen-Johansen cumulative incidence by cause and group, with Gray's test.

    Estimates, variances and Gray's (1988) test statistics agree with R's
    ``cmprsk::cuminc`` to rounding error (its delta-method variance with tie
    corrections; its test, optionally stratified, with weight ``(1 - F(t-))^rho``).

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level of pointwise intervals.
    rho : float, default 0
        Power of the weight function in Gray's test (0 is cuminc's default).
    censor_code : object, default 0
        Event code meaning censored; every other code is an event type.

    Attributes
    ----------
    cumulative_incidence_ : DataFrame
        Long format: ``group``, ``cause``, ``time``, ``estimate``, ``variance``,
        ``lower``, ``upper``; one row at time 0 and one at each distinct time of an
        event of that cause in that group.
    tests_ : DataFrame or None
        Gray's test per cause: ``statistic``, ``df``, ``p`` (when there are groups).

    Notes
    -----
    Pointwise confidence limits use the log(-log) transform,
    ``exp(-exp(log(-log F) +- z se / |F log F|))``, which keeps them in (0, 1);
    cuminc itself reports only variances.
    """

    def __init__(self, alpha: float = 0.05, rho: float = 0.0, censor_code: object = 0) -> None:
        self.alpha = alpha
        self.rho = rho
        self.censor_code = censor_code

    def fit(
        self,
        durations: Sequence[float] | pd.Series | np.ndarray,
        events: Sequence[object] | pd.Series | np.ndarray,
        groups: Sequence[object] | pd.Series | np.ndarray | None = None,
        strata: Sequence[object] | pd.Series | np.ndarray | None = None,
        causes: Sequence[object] | None = None,
    ) -> CumulativeIncidenceFitter:
        """Estimate cumulative incidence curves (and Gray's test if ``groups`` is given).

        Parameters
        ----------
        durations : array-like
            Follow-up times (non-negative).
        events : array-like
            Event codes; ``censor_code`` is censored.
        groups : array-like, optional
            Groups to compare (e.g. intervention arm). Curves are estimated per group.
        strata : array-like, optional
            Strata for Gray's test only (the test is summed over strata).
        causes : sequence, optional
            Causes to estimate; default every event code present.

        Returns
        -------
        self
        """
        t = _as_series(durations, "duration").astype(float)
        e = _as_series(events, "event")
        check_finite(t, "duration")
        if (t < 0).any():
            raise InputError("data", "durations must be non-negative", column="duration")
        if e.isna().any():
            raise InputError("data", "event codes must be present", column="event")
        n = len(t)
        g = _as_series(groups, "group") if groups is not None else pd.Series(np.ones(n, int))
        s = _as_series(strata, "stratum") if strata is not None else pd.Series(np.ones(n, int))
        if len(e) != n or len(g) != n or len(s) != n:
            raise InputError("data", "durations, events, groups and strata must be equally long")
        if g.isna().any() or s.isna().any():
            raise InputError("data", "groups and strata must be present")

        order = np.argsort(t.to_numpy(), kind="stable")
        time = t.to_numpy()[order]
        ev = e.to_numpy()[order]
        failed = ev != self.censor_code
        group_levels = np.array(sorted(pd.unique(g)))
        group = np.searchsorted(group_levels, g.to_numpy()[order])
        stratum = pd.factorize(s.to_numpy()[order], sort=True)[0]
        if causes is None:
            causes = sorted(pd.unique(ev[failed]))
        if len(causes) == 0:
            raise EstimationError("no events: every row is censored")

        self.groups_ = list(group_levels)
        self.causes_ = list(causes)
        self._curves: dict[tuple[object, object], Curve] = {}
        rows = []
        zcrit = stats.norm.ppf(1 - self.alpha / 2)
        for cause in causes:
            for k, level in enumerate(group_levels):
                m = group == k
                curve = cinc(time[m], failed[m], ev[m] == cause)
                self._curves[(level, cause)] = curve
                frame = pd.DataFrame({
                    "group": level, "cause": cause,
                    "time": np.concatenate(([0.0], curve.time)),
                    "estimate": np.concatenate(([0.0], curve.estimate)),
                    "variance": np.concatenate(([0.0], curve.variance)),
                })
                rows.append(frame)
        table = pd.concat(rows, ignore_index=True)
        table["lower"], table["upper"] = _loglog_limits(table["estimate"], table["variance"],
                                                        zcrit)
        self.cumulative_incidence_ = table

        self.tests_ = None
        if len(group_levels) > 1:
            self.tests_ = self._gray_tests(time, ev, failed, group, stratum, len(group_levels))
        return self

    def _gray_tests(self, time, ev, failed, group, stratum, ng) -> pd.DataFrame:
        out = []
        for cause in self.causes_:
            mark = np.where(ev == cause, 1, np.where(failed, 2, 0))
            score = np.zeros(ng - 1)
            var = np.zeros((ng - 1, ng - 1))
            for k in np.unique(stratum):
                m = stratum == k
                sc, v = gray_stratum(time[m], mark[m], group[m], ng, self.rho)
                score += sc
                var += v
            if np.linalg.matrix_rank(var) < ng - 1:
                logger.warning("Gray's test for cause %r: singular variance, no statistic", cause)
                stat = np.nan
            else:
                stat = float(score @ np.linalg.solve(var, score))
            out.append({"cause": cause, "statistic": stat, "df": ng - 1,
                        "p": float(stats.chi2.sf(stat, ng - 1))})
        return pd.DataFrame(out).set_index("cause")

    def _check_fitted(self) -> None:
        if not hasattr(self, "cumulative_incidence_"):
            raise EstimationError("call fit() before using the estimates")

    def at(self, times: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """Estimates and variances at given times (as ``cmprsk::timepoints``).

        The curve is right-continuous; a time after the group's last follow-up gives NaN.

        Returns
        -------
        DataFrame
            Columns ``group``, ``cause``, ``time``, ``estimate``, ``variance``,
            ``lower``, ``upper``.
        """
        self._check_fitted()
        times = np.sort(np.unique(np.asarray(times, dtype=float)))
        zcrit = stats.norm.ppf(1 - self.alpha / 2)
        rows = []
        for (level, cause), c in self._curves.items():
            pos = np.searchsorted(c.time, times, side="right") - 1
            est = np.where(pos >= 0, c.estimate[np.clip(pos, 0, None)] if c.time.size else 0.0,
                           0.0)
            var = np.where(pos >= 0, c.variance[np.clip(pos, 0, None)] if c.time.size else 0.0,
                           0.0)
            beyond = times > c.max_time
            est, var = np.where(beyond, np.nan, est), np.where(beyond, np.nan, var)
            rows.append(pd.DataFrame({"group": level, "cause": cause, "time": times,
                                      "estimate": est, "variance": var}))
        table = pd.concat(rows, ignore_index=True)
        table["lower"], table["upper"] = _loglog_limits(table["estimate"], table["variance"],
                                                        zcrit)
        return table

    def summary(self) -> pd.DataFrame:
        """Gray's test table if groups were compared, otherwise the curves."""
        self._check_fitted()
        return self.tests_ if self.tests_ is not None else self.cumulative_incidence_

    def plot(self, ax: Any = None, cause: object = None, ci: bool = True, **kwargs: Any):
        """Step plot of the cumulative incidence of one cause (default the first), by group."""
        from phm_eval.survival.plots import plot_step_curves

        self._check_fitted()
        cause = self.causes_[0] if cause is None else cause
        part = self.cumulative_incidence_[self.cumulative_incidence_["cause"] == cause]
        if part.empty:
            raise InputError("plot", f"cause {cause!r} was not estimated")
        ends = []
        for level in self.groups_:
            curve = self._curves[(level, cause)]
            last = part[part["group"] == level].iloc[[-1]].copy()
            last["time"] = curve.max_time
            ends.append(last)
        part = pd.concat([part, *ends], ignore_index=True)
        return plot_step_curves(part, ax=ax, by="group", band=("lower", "upper") if ci else None,
                                ylabel=f"cumulative incidence of {cause}", **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready curves and tests."""
        self._check_fitted()
        out: dict[str, Any] = {
            "alpha": self.alpha, "rho": self.rho,
            "groups": [str(g) for g in self.groups_], "causes": [str(c) for c in self.causes_],
            "curves": self.cumulative_incidence_.astype({"group": str, "cause": str})
            .to_dict(orient="records"),
        }
        if self.tests_ is not None:
            out["gray_test"] = self.tests_.reset_index().astype({"cause": str}).to_dict(
                orient="records")
        return out


def _loglog_limits(est: pd.Series, var: pd.Series, zcrit: float) -> tuple[np.ndarray, np.ndarray]:
    f = est.to_numpy(dtype=float)
    se = np.sqrt(np.clip(var.to_numpy(dtype=float), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(-np.log(f))
        se_g = se / np.abs(f * np.log(f))
        a = np.exp(-np.exp(g - zcrit * se_g))
        b = np.exp(-np.exp(g + zcrit * se_g))
    lower, upper = np.minimum(a, b), np.maximum(a, b)
    degenerate = (f <= 0) | (f >= 1) | ~np.isfinite(se_g)
    lower = np.where(degenerate, f, lower)
    upper = np.where(degenerate, f, upper)
    return lower, upper


def cumulative_incidence(
    durations: Sequence[float] | pd.Series | np.ndarray,
    events: Sequence[object] | pd.Series | np.ndarray,
    event_of_interest: object = 1,
    groups: Sequence[object] | pd.Series | np.ndarray | None = None,
    strata: Sequence[object] | pd.Series | np.ndarray | None = None,
    alpha: float = 0.05,
    censor_code: object = 0,
) -> CumulativeIncidenceFitter:
    """Cumulative incidence of ``event_of_interest`` (by group, with Gray's test).

    A shortcut for ``CumulativeIncidenceFitter(...).fit(..., causes=[event_of_interest])``.
    """
    return CumulativeIncidenceFitter(alpha=alpha, censor_code=censor_code).fit(
        durations, events, groups=groups, strata=strata, causes=[event_of_interest])
