"""Non-parametric cumulative incidence in the presence of competing risks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.errors import EstimationError, InputError, ParameterError
from phm_eval.survival._cuminc_core import Curve, cinc, gray_stratum
from phm_eval.survival._data import check_finite
from phm_eval.survival._summary import SummaryFrame, check_alpha, require_fitted, short_repr

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
    groups_, causes_ : list
        The groups compared and the causes estimated.
    summary : DataFrame
        Property: Gray's test table when groups were compared, otherwise the curves.

    Notes
    -----
    Pointwise confidence limits use the log(-log) transform,
    ``exp(-exp(log(-log F) +- z se / |F log F|))``, which keeps them in (0, 1);
    cuminc itself reports only variances.
    """

    def __init__(self, *, alpha: float = 0.05, rho: float = 0.0, censor_code: object = 0) -> None:
        self.alpha = alpha
        self.rho = rho
        self.censor_code = censor_code

    def __repr__(self) -> str:
        fitted = None
        if "cumulative_incidence_" in vars(self):
            def fitted() -> str:
                causes = ", ".join(map(str, self.causes_))
                return f"n={self.n_obs_}, {len(self.groups_)} group(s), causes: {causes}"
        return short_repr(self, {"alpha": self.alpha, "rho": self.rho}, fitted)

    def fit(
        self,
        durations: Sequence[float] | pd.Series | np.ndarray,
        events: Sequence[object] | pd.Series | np.ndarray,
        groups: Sequence[object] | pd.Series | np.ndarray | None = None,
        strata: Sequence[object] | pd.Series | np.ndarray | None = None,
        *,
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
        zcrit = stats.norm.ppf(1 - check_alpha(self.alpha) / 2)
        where = "CumulativeIncidenceFitter.fit"
        t = _as_series(durations, "duration").astype(float)
        e = _as_series(events, "event")
        check_finite(t, "duration", f"durations passed to {where}")
        bad = np.flatnonzero(t.to_numpy() < 0)
        if bad.size:
            raise InputError(f"durations passed to {where}", "durations must be non-negative",
                             rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
        bad = np.flatnonzero(e.isna().to_numpy())
        if bad.size:
            raise InputError(f"events passed to {where}", "event codes must be present",
                             rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
        n = len(t)
        g = _as_series(groups, "group") if groups is not None else pd.Series(np.ones(n, int))
        s = _as_series(strata, "stratum") if strata is not None else pd.Series(np.ones(n, int))
        for argument, values in (("events", e), ("groups", g), ("strata", s)):
            if len(values) != n:
                raise ParameterError(argument, f"must be as long as durations ({n} values)",
                                     f"{len(values)} values")
        for argument, values in (("groups", g), ("strata", s)):
            bad = np.flatnonzero(values.isna().to_numpy())
            if bad.size:
                raise InputError(f"{argument} passed to {where}", f"{argument} must be present",
                                 rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))

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
        self.n_obs_ = n
        self._curves: dict[tuple[object, object], Curve] = {}
        rows = []
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
        require_fitted(self, "cumulative_incidence_")

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
        zcrit = stats.norm.ppf(1 - check_alpha(self.alpha) / 2)
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

    @property
    def summary(self) -> pd.DataFrame:
        """Gray's test table if groups were compared, otherwise the curves.

        A property; ``summary()``, its former spelling, returns the same table.
        """
        self._check_fitted()
        table = self.tests_ if self.tests_ is not None else self.cumulative_incidence_
        return SummaryFrame(table)

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the groups, causes and Gray's test (or, without groups, the curves)."""
        self._check_fitted()
        with pd.option_context("display.max_columns", None, "display.width", 200):
            table = pd.DataFrame(self.summary).to_string(
                float_format=lambda v: f"{v:.{decimals}f}")
        print("\n".join([
            "<phm_eval.survival.CumulativeIncidenceFitter> (Aalen-Johansen, cmprsk::cuminc)",
            f"observations = {self.n_obs_}   groups = {self.groups_}   causes = {self.causes_}",
            "Gray's test:" if self.tests_ is not None else "cumulative incidence:",
            table,
        ]))

    def plot(self, *, ax: Any = None, cause: object = None, ci: bool = True, **kwargs: Any):
        """Step plot of the cumulative incidence of one cause (default the first), by group."""
        from phm_eval.survival.plots import plot_step_curves

        self._check_fitted()
        cause = self.causes_[0] if cause is None else cause
        part = self.cumulative_incidence_[self.cumulative_incidence_["cause"] == cause]
        if part.empty:
            raise ParameterError("cause", f"was not estimated (estimated: {self.causes_})",
                                 cause)
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
    *,
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
