"""Cox proportional hazards with R-matching (cluster-)robust standard errors.

lifelines fits the coefficients (Efron ties). Its sandwich variance, however,
uses score residuals that ignore tied times ("This does not handle ties, so if
there are high number of ties, results may significantly differ from other
software": lifelines 0.15.0 changelog, PR #496; the ``_compute_score_within_strata``
source still carries "TODO: doesn't handle ties") and loops over rows in
Python. With tied event dates, which daily NHS data always have, its robust SEs
differ from R's ``coxph(..., cluster = )``. Here the Efron score residuals are
computed as ``survival`` does, and the robust variance is R's
``crossprod(rowsum(dfbeta, cluster))``.

With ``strata`` (R's ``strata()``) each stratum has its own baseline hazard. lifelines
fits stratified models with a Python loop over strata (about a minute for 3,000
matched sets), so stratified coefficients come from a Newton-Raphson here whose
every risk-set sum is one vectorised pass over rows sorted by stratum, then time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.errors import EstimationError, InputError, ParameterError
from phm_eval.survival import _efron
from phm_eval.survival._data import INTEREST, competing_arrays, distinct_times
from phm_eval.survival._summary import (
    check_alpha,
    coefficient_table,
    fitted_alias,
    format_table,
    require_fitted,
    short_repr,
)

logger = logging.getLogger(__name__)


class RobustCoxPHFitter:
    """Cox model (lifelines ``CoxPHFitter``, Efron ties) with R's robust variance and PH test.

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level.
    precision : float, default 1e-12
        Convergence tolerance passed to lifelines (its default, 1e-7, can leave
        coefficients ~1e-6 from R's).

    Attributes
    ----------
    params_ : Series
        Log hazard ratios.
    variance_matrix_ : DataFrame
        Robust variance when ``robust`` (default whenever ``cluster_col`` is given),
        otherwise the model-based inverse information.
    naive_variance_matrix_ : DataFrame
        Inverse information (R's ``naive.var``).
    standard_errors_, confidence_intervals_
        As in lifelines, from ``variance_matrix_``.
    summary : DataFrame
        Property: lifelines' ``CoxPHFitter.summary`` columns, computed from ``params_`` and
        ``standard_errors_`` when asked.
    log_likelihood_, log_likelihood_null_ : float
        Log partial likelihood at the estimates and at zero (R's ``loglik``).
    lifelines_model_ : lifelines.CoxPHFitter or None
        The underlying fit (for baseline hazards and predictions); ``None`` for a
        stratified fit, whose coefficients are fitted here.
    duration_col_, event_col_, cluster_col_ : str or None
        The columns used (the names without ``_`` still read them).
    robust_ : bool
        Whether ``variance_matrix_`` is the sandwich.
    strata_ : list of str or None
        The stratifying columns; ``n_strata_`` counts their distinct combinations.
    n_obs_, n_events_, n_clusters_ : int

    Examples
    --------
    >>> cox = RobustCoxPHFitter().fit(df, "years", "admitted", covariates=["treated", "age"],
    ...                               cluster_col="practice_id")  # doctest: +SKIP
    >>> cox.summary.loc["treated", "exp(coef)"]  # doctest: +SKIP

    Stratified on matched sets (a baseline hazard per set), clustered on practice:

    >>> RobustCoxPHFitter().fit(df, "years", "admitted", covariates=["treated"],
    ...                         strata="matched_set", cluster_col="practice_id")  # doctest: +SKIP
    """

    def __init__(self, *, alpha: float = 0.05, precision: float = 1e-12) -> None:
        self.alpha = alpha
        self.precision = precision

    def __repr__(self) -> str:
        fitted = None
        if "params_" in vars(self):
            def fitted() -> str:
                text = f"n={self.n_obs_}, events={self.n_events_}, {len(self.params_)} covariate(s)"
                return text + (f", {self.n_strata_} strata" if self.strata_ else "")
        return short_repr(self, {"alpha": self.alpha}, fitted)

    def fit(
        self,
        df: pd.DataFrame,
        duration_col: str,
        event_col: str,
        *,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
        robust: bool | None = None,
        event_of_interest: object = None,
        strata: str | Sequence[str] | None = None,
    ) -> RobustCoxPHFitter:
        """Fit the model.

        Parameters
        ----------
        df : DataFrame
        duration_col, event_col : str
            Follow-up time and event indicator.
        covariates, formula : optional
            Covariate columns (default all others) or a formulaic right-hand side.
        cluster_col : str, optional
            Cluster identifier (e.g. practice); implies ``robust=True``.
        robust : bool, optional
            Use the sandwich variance (R ``robust=TRUE``); default ``cluster_col is not None``.
        event_of_interest : object, optional
            If given, rows with this code are events and every other code is censored
            (a cause-specific hazard); otherwise any non-zero value is an event.
        strata : str or sequence of str, optional
            Column(s) whose distinct combinations get separate baseline hazards
            (R ``strata()``, lifelines ``strata``): the partial likelihood is the sum
            of each stratum's Efron partial likelihood, risk sets stay within strata.
            Stratum columns are not covariates.

        Returns
        -------
        self
        """
        from lifelines import CoxPHFitter
        from lifelines.exceptions import ConvergenceError

        alpha = check_alpha(self.alpha)
        table = "df passed to RobustCoxPHFitter.fit"
        strata_cols = _strata_columns(df, strata, (duration_col, event_col, cluster_col))
        if strata_cols and covariates is None and formula is None:
            # the default "all other columns" leaves the stratum columns out
            covariates = [c for c in df.columns
                          if c not in {duration_col, event_col, cluster_col, *strata_cols}]
        elif strata_cols and covariates is not None:
            both = [c for c in covariates if c in strata_cols]
            if both:
                raise ParameterError("strata", "names column(s) that are also in covariates",
                                     both)
        if event_of_interest is None:
            df = df.assign(**{event_col: (df[event_col].fillna(0) != 0).astype(int)})
            event_of_interest = 1
        arrays = competing_arrays(df, duration_col, event_col, event_of_interest, censor_code=None,
                                  covariates=covariates, formula=formula, cluster_col=cluster_col,
                                  table=table)
        event = arrays.status == INTEREST
        if not event.any():
            raise EstimationError("no events to fit a Cox model to")
        if not arrays.names:
            raise ParameterError("covariates", "at least one covariate is needed", [])
        robust = cluster_col is not None if robust is None else robust
        names = arrays.names
        time, X, cluster, stratum = arrays.time, arrays.X, arrays.cluster, None
        if strata_cols:
            codes = _strata_codes(df, strata_cols, table)[arrays.order]
            by_stratum = np.argsort(codes, kind="stable")  # then by time: rows were time-sorted
            time, event, X, stratum = (time[by_stratum], event[by_stratum], X[by_stratum],
                                       codes[by_stratum])
            cluster = None if cluster is None else cluster[by_stratum]
        x_mean = X.mean(axis=0)
        X = X - x_mean
        if strata_cols:
            model = None
            try:
                beta, terms, loglik, _ = _efron.newton_raphson(time, event, X, stratum,
                                                               precision=self.precision)
            except (np.linalg.LinAlgError, RuntimeError) as exc:
                raise EstimationError(f"Cox model did not converge: {exc}") from exc
            # R's check: a Newton step still large at convergence means a coefficient
            # heading to infinity (monotone likelihood, e.g. no events in one group)
            last_step = np.linalg.solve(_efron.information(X, event, terms),
                                        _efron.score(X, event, terms))
            infinite = np.abs(last_step) > 1e-6 * np.maximum(1.0, np.abs(beta))
            if infinite.any():
                logger.warning("log-likelihood converged before %s; coefficient(s) may be "
                               "infinite", ", ".join(np.array(names)[infinite]))
        else:
            work = pd.DataFrame(arrays.X, columns=names)
            work["__T"], work["__E"] = arrays.time, event.astype(int)
            model = CoxPHFitter(alpha=alpha)
            try:
                model.fit(work, "__T", "__E",
                          fit_options={"precision": self.precision, "r_precision": 1e-15})
            except ConvergenceError as exc:
                raise EstimationError(f"Cox model did not converge: {exc}") from exc
            beta = model.params_[names].to_numpy()
            loglik = float(model.log_likelihood_)
            terms = _efron.efron_terms(time, event, X, beta)
        zero = np.zeros(len(names))
        self.log_likelihood_null_ = _efron.log_partial_likelihood(
            X, event, zero, _efron.efron_terms(time, event, X, zero, stratum))
        info = _efron.information(X, event, terms)
        naive = np.linalg.inv(info)
        idx = pd.Index(names, name="covariate")
        self.naive_variance_matrix_ = pd.DataFrame(naive, index=idx, columns=idx)
        if robust:
            dfbeta = _efron.score_residuals(X, event, terms) @ naive
            if cluster is not None:
                summed = np.zeros((int(cluster.max()) + 1, len(names)))
                np.add.at(summed, cluster, dfbeta)
                dfbeta = summed
            cov = dfbeta.T @ dfbeta
        else:
            cov = naive
        self.duration_col_, self.event_col_ = duration_col, event_col
        self.cluster_col_ = cluster_col
        self.robust_ = robust
        self.strata_ = strata_cols or None
        self.n_strata_ = None if stratum is None else int(stratum.max()) + 1
        self.lifelines_model_ = model
        self.params_ = pd.Series(beta, index=idx, name="coef")
        self.variance_matrix_ = pd.DataFrame(cov, index=idx, columns=idx)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=idx, name="se(coef)")
        self.naive_standard_errors_ = pd.Series(np.sqrt(np.diag(naive)), index=idx,
                                                name="se(coef)")
        self.log_likelihood_ = loglik
        self.n_obs_, self.n_events_ = int(arrays.time.size), int(event.sum())
        self.n_clusters_ = None if arrays.cluster is None else int(arrays.cluster.max()) + 1
        self._zph_inputs = (time, event, X, terms)
        return self

    def _check_fitted(self) -> None:
        require_fitted(self, "params_")

    duration_col = fitted_alias("duration_col_")
    event_col = fitted_alias("event_col_")
    cluster_col = fitted_alias("cluster_col_")
    robust = fitted_alias("robust_")
    strata = fitted_alias("strata_")

    @property
    def summary(self) -> pd.DataFrame:
        """Coefficient table (lifelines ``CoxPHFitter.summary`` columns), computed from
        ``params_`` and ``standard_errors_`` at ``alpha``."""
        self._check_fitted()
        return coefficient_table(self.params_, self.standard_errors_, check_alpha(self.alpha))

    @property
    def confidence_intervals_(self) -> pd.DataFrame:
        """Confidence limits of ``params_`` (log hazard ratios) at level ``1 - alpha``."""
        table = self.summary
        return table[[c for c in table.columns if c.startswith("coef ")]]

    def check_proportional_hazards(self, transform: str = "km") -> pd.DataFrame:
        """Score test of proportional hazards, as R ``survival::cox.zph`` (survival >= 3.0).

        The signature mirrors R's ``cox.zph(fit, transform)``: ``transform`` may be given by
        position.

        For each covariate, the score test of adding ``x * g(t)`` to the model at the
        fitted coefficients, using the full information matrix; ``GLOBAL`` tests all
        at once. This is the test R has reported since survival 3.0; it differs from
        the older approximation from scaled Schoenfeld residuals that lifelines'
        ``proportional_hazard_test`` follows. The test is model-based: it ignores
        ``cluster_col``, as R's does. With strata the risk sets are stratified and
        ``g`` is computed from all rows' times (the Kaplan-Meier ignores strata), as in R.

        Parameters
        ----------
        transform : {"km", "identity", "rank", "log"}
            ``g(t)``: ``"km"`` (R's default) is one minus the left-continuous
            Kaplan-Meier estimate at t.

        Returns
        -------
        DataFrame
            Index covariates and ``GLOBAL``; columns ``chisq``, ``df``, ``p``.
        """
        self._check_fitted()
        time, event, X, terms = self._zph_inputs
        # rows are sorted by time, or by stratum then time: transform on sorted times
        order = np.argsort(time, kind="stable")
        uniq, first, inverse = distinct_times(time[order])
        if transform == "identity":
            g = uniq.copy()
        elif transform == "log":
            g = np.log(uniq)
        elif transform == "km":
            deaths = np.bincount(inverse, weights=event[order], minlength=uniq.size)
            surv = np.cumprod(1 - deaths / (time.size - first))
            g = 1 - np.concatenate(([1.0], surv[:-1]))
        elif transform == "rank":
            # R ranks every row's time (ties averaged) and uses the value at each death
            from scipy.stats import rankdata

            g = rankdata(time[order])[first]
        else:
            raise ParameterError("transform", "must be 'km', 'identity', 'rank' or 'log'",
                                 transform)
        g_row = np.empty(time.size)
        g_row[order] = g[inverse]
        g_row -= g_row[event].mean()
        g_times = np.empty(terms.n_times)
        g_times[terms.inverse] = g_row
        u, imat = _efron.zph_score_test(X, event, terms, g_times)
        p = X.shape[1]
        rows = []
        for j in range(p):
            keep = list(range(p)) + [p + j]
            uu = u[keep]
            rows.append(float(uu @ np.linalg.solve(imat[np.ix_(keep, keep)], uu)))
        rows.append(float(u @ np.linalg.solve(imat, u)))
        dfs = [1] * p + [p]
        return pd.DataFrame({"chisq": rows, "df": dfs, "p": stats.chi2.sf(rows, dfs)},
                            index=pd.Index(list(self.params_.index) + ["GLOBAL"],
                                           name="covariate"))

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the fit and its coefficient table (as lifelines' ``print_summary``)."""
        print(self._summary_text(decimals))

    def _summary_text(self, decimals: int = 3) -> str:
        self._check_fitted()
        var = ("cluster-robust on " + repr(self.cluster_col_) if self.cluster_col_ else
               "robust" if self.robust_ else "model-based")
        text = "\n".join([
            "<phm_eval.survival.RobustCoxPHFitter> " + (
                "(stratified Cox, Efron ties)" if self.strata_
                else "(lifelines CoxPHFitter, Efron ties)"),
            f"observations = {self.n_obs_}   events = {self.n_events_}   variance = {var}",
            *([f"strata = {', '.join(self.strata_)} ({self.n_strata_} strata)"]
              if self.strata_ else []),
            f"partial log-likelihood = {self.log_likelihood_:.{decimals}f}", "",
            format_table(self.summary, decimals),
        ])
        return text

    def plot(self, *, ax: Any = None, hazard_ratios: bool = True, **kwargs: Any):
        """Forest plot of hazard ratios with confidence intervals; returns the Axes."""
        from phm_eval.survival.plots import forest_plot

        self._check_fitted()
        return forest_plot(self.summary, ax=ax, hazard_ratios=hazard_ratios,
                           xlabel="hazard ratio" if hazard_ratios else "log hazard ratio",
                           **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the fit."""
        self._check_fitted()
        return {
            "model": "Cox proportional hazards (Efron ties)",
            "n_obs": self.n_obs_, "n_events": self.n_events_,
            "cluster_col": self.cluster_col_, "n_clusters": self.n_clusters_,
            "robust": self.robust_, "alpha": self.alpha,
            "strata": self.strata_, "n_strata": self.n_strata_,
            "partial_log_likelihood": self.log_likelihood_,
            "coefficients": self.summary.reset_index().to_dict(orient="records"),
        }


def _strata_columns(
    df: pd.DataFrame, strata: str | Sequence[str] | None, reserved: Sequence[str | None]
) -> list[str]:
    """``strata`` as a list of existing columns (empty when not stratified)."""
    if strata is None:
        return []
    cols = [strata] if isinstance(strata, str) else list(strata)
    if not cols:
        raise ParameterError("strata", "must name at least one column (or be None)", strata)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParameterError("strata", "names column(s) not found in df", missing)
    clash = [c for c in cols if c in reserved]
    if clash:
        raise ParameterError("strata", "names column(s) also used as duration, event or "
                             "cluster", clash)
    return cols


def _strata_codes(df: pd.DataFrame, cols: list[str], table: str) -> np.ndarray:
    """Integer code per row of each distinct combination of the stratum columns."""
    values = df[cols]
    missing = values.isna().any(axis=1).to_numpy()
    if missing.any():
        bad = np.flatnonzero(missing)
        raise InputError(table, "stratum values must be present", column=", ".join(cols),
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    return values.groupby(cols, sort=True, observed=True).ngroup().to_numpy()
