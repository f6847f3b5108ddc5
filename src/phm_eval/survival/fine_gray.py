"""Fine & Gray (1999) proportional subdistribution hazards regression."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.errors import EstimationError, InputError, ParameterError
from phm_eval.survival import _fine_gray_core as core
from phm_eval.survival._data import competing_arrays, design_matrix
from phm_eval.survival._summary import (
    check_alpha,
    coefficient_table,
    fitted_alias,
    format_table,
    require_fitted,
    short_repr,
)

logger = logging.getLogger(__name__)


class FineGrayFitter:
    """Proportional subdistribution hazards model for one event type among competing events.

    Estimates the subdistribution hazard ratio (SHR) of the event of interest,
    treating people who had a competing event as remaining in the risk set with
    inverse-probability-of-censoring weights (Fine & Gray 1999). Point estimates,
    the robust sandwich variance (including the term for the estimated censoring
    distribution) and predictions agree with R's ``cmprsk::crr`` to rounding error;
    tied times are handled as crr does (Breslow).

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level of the intervals.
    tol : float, default 1e-9
        Newton-Raphson stops when the largest step in a coefficient is below this.
    max_iter : int, default 50
        Maximum number of Newton-Raphson iterations.

    Attributes
    ----------
    params_ : Series
        Log subdistribution hazard ratios, per unit of each covariate.
    variance_matrix_ : DataFrame
        Robust (sandwich) variance of ``params_``; cluster-robust when ``cluster_col``
        was given.
    standard_errors_ : Series
    confidence_intervals_ : DataFrame
        Property: limits on the log scale, at level ``1 - alpha``.
    summary : DataFrame
        Property: columns as lifelines' ``CoxPHFitter.summary``, computed from ``params_``
        and ``standard_errors_`` when asked.
    baseline_cumulative_hazard_ : DataFrame
        Breslow estimate of the cumulative subdistribution hazard at covariates all
        zero (not centred), at each distinct time of the event of interest.
    duration_col_, event_col_, event_of_interest_, censor_code_, cluster_col_, formula_
        The fit's arguments (the names without ``_`` still read them).
    n_obs_, n_events_, n_competing_, n_censored_, n_clusters_ : int
    n_iter_ : int
    converged_ : bool

    Notes
    -----
    Event coding: ``censor_code`` (default 0) is censored, ``event_of_interest``
    is the event studied, any other code is a competing event. The censoring
    distribution is one Kaplan-Meier estimate over everyone (crr's default, no
    ``cengroup``). With ``cluster_col`` the influence terms are summed within each
    cluster before the outer product; with one person per cluster this is crr's
    variance exactly.

    Examples
    --------
    >>> from phm_eval.survival import FineGrayFitter
    >>> fg = FineGrayFitter().fit(df, "years", "outcome", event_of_interest=1,
    ...                           covariates=["age", "frail"])  # doctest: +SKIP
    >>> fg.summary[["exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%"]]  # doctest: +SKIP
    """

    def __init__(self, *, alpha: float = 0.05, tol: float = 1e-9, max_iter: int = 50) -> None:
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    def __repr__(self) -> str:
        fitted = None
        if "params_" in vars(self):
            def fitted() -> str:
                return (f"event_of_interest={self.event_of_interest_!r}, n={self.n_obs_}, "
                        f"events={self.n_events_}, competing={self.n_competing_}, "
                        f"{len(self.params_)} covariate(s)")
        return short_repr(self, {"alpha": self.alpha}, fitted)

    def fit(
        self,
        df: pd.DataFrame,
        duration_col: str,
        event_col: str,
        *,
        event_of_interest: object = 1,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
        censor_code: object = 0,
    ) -> FineGrayFitter:
        """Fit the model.

        Parameters
        ----------
        df : DataFrame
            One row per person.
        duration_col : str
            Time from the index date to the event or censoring (any unit, e.g. years).
        event_col : str
            Event code: ``censor_code`` censored, ``event_of_interest`` the event
            studied, any other value a competing event (e.g. death).
        event_of_interest : object, default 1
        covariates : sequence of str, optional
            Covariate columns; default all columns other than duration, event and cluster.
        formula : str, optional
            A formulaic right-hand side (e.g. ``"age + C(imd_quintile)"``) instead of
            ``covariates``.
        cluster_col : str, optional
            Cluster identifier (e.g. practice) for a cluster-robust variance.
        censor_code : object, default 0

        Returns
        -------
        self
        """
        check_alpha(self.alpha)
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) \
                or self.max_iter < 1:
            raise ParameterError("max_iter", "must be a whole number >= 1", self.max_iter)
        if not self.tol > 0:
            raise ParameterError("tol", "must be positive", self.tol)
        arrays = competing_arrays(df, duration_col, event_col, event_of_interest, censor_code,
                                  covariates, formula, cluster_col,
                                  table="df passed to FineGrayFitter.fit")
        if not arrays.names:
            raise ParameterError("covariates", "at least one covariate is needed", [])
        n_events = int((arrays.status == core.INTEREST).sum())
        if n_events == 0:
            raise EstimationError(f"no rows have the event of interest ({event_of_interest!r})")
        self.duration_col_, self.event_col_ = duration_col, event_col
        self.event_of_interest_, self.censor_code_ = event_of_interest, censor_code
        self.cluster_col_, self.formula_ = cluster_col, formula
        self._covariates = arrays.names
        self._model_spec = arrays.model_spec
        self._x_mean = arrays.X.mean(axis=0)
        X = arrays.X - self._x_mean  # centring avoids overflow in exp(x beta); SHRs are unchanged
        idx = core.build_index(arrays.time, arrays.status)

        beta, sums, info = self._newton(X, idx)
        terms = core.influence_terms(X, idx, sums)
        cov = core.sandwich(info, terms, arrays.cluster)

        names = pd.Index(arrays.names, name="covariate")
        self.params_ = pd.Series(beta, index=names, name="coef")
        self.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        self.information_matrix_ = pd.DataFrame(info, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=names, name="se(coef)")
        self.log_likelihood_ = sums.loglik
        self.log_likelihood_null_ = core.risk_set_sums(np.zeros_like(beta), X, idx).loglik
        times, jumps = core.breslow_jumps(idx, sums)
        # report the baseline at covariates zero, as crr's bfitj, not at the centring means
        jumps = jumps * np.exp(-float(self._x_mean @ beta))
        self.baseline_cumulative_hazard_ = pd.DataFrame(
            {"baseline cumulative hazard": np.cumsum(jumps)}, index=pd.Index(times, name="time"))
        self._baseline_jumps = jumps
        self.n_obs_ = int(arrays.time.size)
        self.n_events_ = n_events
        self.n_competing_ = int((arrays.status == core.COMPETING).sum())
        self.n_censored_ = int((arrays.status == core.CENSORED).sum())
        self.n_clusters_ = None if arrays.cluster is None else int(arrays.cluster.max()) + 1
        return self

    def _newton(self, X: np.ndarray, idx: core.RiskSetIndex):
        beta = np.zeros(X.shape[1])
        sums = core.risk_set_sums(beta, X, idx)
        for iteration in range(1, self.max_iter + 1):
            score, info = core.score_information(X, idx, sums)
            try:
                step = np.linalg.solve(info, score)
            except np.linalg.LinAlgError as exc:
                raise EstimationError("the information matrix is singular: a covariate may be "
                                      "constant or collinear with others") from exc
            # halve the step until the pseudo-likelihood does not fall, as crr does
            for _ in range(30):
                trial = core.risk_set_sums(beta + step, X, idx)
                if np.isfinite(trial.loglik) and trial.loglik >= sums.loglik - 1e-12 * abs(
                        sums.loglik):
                    break
                step = step / 2
            beta, sums = beta + step, trial
            if np.max(np.abs(step)) < self.tol:
                self.n_iter_ = iteration
                self.converged_ = True
                _, info = core.score_information(X, idx, sums)
                return beta, sums, info
        self.n_iter_ = self.max_iter
        self.converged_ = False
        warnings.warn(f"Fine-Gray fit did not converge in {self.max_iter} iterations; "
                      "check for covariates that separate the events", RuntimeWarning,
                      stacklevel=3)
        _, info = core.score_information(X, idx, sums)
        return beta, sums, info

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        require_fitted(self, "params_")

    duration_col = fitted_alias("duration_col_")
    event_col = fitted_alias("event_col_")
    event_of_interest = fitted_alias("event_of_interest_")
    censor_code = fitted_alias("censor_code_")
    cluster_col = fitted_alias("cluster_col_")
    formula = fitted_alias("formula_")

    @property
    def summary(self) -> pd.DataFrame:
        """Coefficient table (lifelines ``CoxPHFitter.summary`` columns; ``exp(coef)`` is the
        subdistribution hazard ratio), computed from ``params_`` and ``standard_errors_``."""
        self._check_fitted()
        return coefficient_table(self.params_, self.standard_errors_, check_alpha(self.alpha))

    @property
    def confidence_intervals_(self) -> pd.DataFrame:
        """Confidence limits of ``params_`` (log scale) at level ``1 - alpha``."""
        table = self.summary
        return table[[c for c in table.columns if c.startswith("coef ")]]

    @property
    def hazard_ratios_(self) -> pd.Series:
        """Subdistribution hazard ratios, ``exp(params_)``."""
        self._check_fitted()
        return np.exp(self.params_).rename("exp(coef)")

    def predict_cumulative_incidence(
        self, df: pd.DataFrame, times: Sequence[float] | np.ndarray | None = None
    ) -> pd.DataFrame:
        """Cumulative incidence of the event of interest for each row of ``df``.

        ``F(t | x) = 1 - exp(-exp(x beta) Lambda0(t))`` with the Breslow baseline, as
        ``cmprsk::predict.crr``.

        Parameters
        ----------
        df : DataFrame
            Covariate values (same columns, or the same formula variables, as in ``fit``).
        times : array-like, optional
            Times at which to evaluate; default the distinct event times.

        Returns
        -------
        DataFrame
            Index ``time``, one column per row of ``df`` (named by ``df.index``).
        """
        self._check_fitted()
        table = "df passed to FineGrayFitter.predict_cumulative_incidence"
        X = design_matrix(df, self._covariates if self.formula_ is None else None, self.formula_,
                          exclude=[], spec=self._model_spec, table=table)
        X = X.reindex(columns=self._covariates)
        if X.isna().any().any():
            raise InputError(table, "covariates missing or not as in fit")
        event_times = self.baseline_cumulative_hazard_.index.to_numpy()
        cumhaz = self.baseline_cumulative_hazard_.iloc[:, 0].to_numpy()
        if times is None:
            times = event_times
        times = np.asarray(times, dtype=float)
        pos = np.searchsorted(event_times, times, side="right") - 1
        base = np.where(pos >= 0, cumhaz[np.clip(pos, 0, None)], 0.0)
        risk = np.exp(X.to_numpy() @ self.params_.to_numpy())
        cif = 1.0 - np.exp(-np.outer(base, risk))
        return pd.DataFrame(cif, index=pd.Index(times, name="time"), columns=df.index)

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the fit and its coefficient table (as lifelines' ``print_summary``)."""
        print(self._summary_text(decimals))

    def _summary_text(self, decimals: int = 3) -> str:
        self._check_fitted()
        lines = [
            "<phm_eval.survival.FineGrayFitter>",
            f"duration col = '{self.duration_col_}'   event col = '{self.event_col_}'   "
            f"event of interest = {self.event_of_interest_!r}",
            f"observations = {self.n_obs_}   events of interest = {self.n_events_}   "
            f"competing = {self.n_competing_}   censored = {self.n_censored_}",
            f"variance = {'cluster-robust on ' + repr(self.cluster_col_) if self.cluster_col_ else 'robust (Fine-Gray sandwich)'}",
            f"log pseudo-likelihood = {self.log_likelihood_:.{decimals}f}   "
            f"null = {self.log_likelihood_null_:.{decimals}f}",
            "",
            format_table(self.summary, decimals),
        ]
        return "\n".join(lines)

    def plot(self, *, ax: Any = None, hazard_ratios: bool = True, **kwargs: Any):
        """Forest plot of the coefficients with confidence intervals; returns the Axes."""
        from phm_eval.survival.plots import forest_plot

        self._check_fitted()
        return forest_plot(self.summary, ax=ax, hazard_ratios=hazard_ratios,
                           xlabel="subdistribution hazard ratio" if hazard_ratios else
                           "log subdistribution hazard ratio", **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the fit."""
        self._check_fitted()
        return {
            "model": "Fine-Gray proportional subdistribution hazards",
            "event_of_interest": repr(self.event_of_interest_),
            "n_obs": self.n_obs_, "n_events": self.n_events_,
            "n_competing": self.n_competing_, "n_censored": self.n_censored_,
            "cluster_col": self.cluster_col_, "n_clusters": self.n_clusters_,
            "alpha": self.alpha, "converged": self.converged_,
            "log_pseudo_likelihood": self.log_likelihood_,
            "coefficients": self.summary.reset_index().to_dict(orient="records"),
            "variance_matrix": self.variance_matrix_.to_numpy().tolist(),
        }
