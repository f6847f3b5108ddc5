"""Event-rate ratios (e.g. emergency admissions per person-year) from a negative binomial GLM,
and the Poisson GLM with (cluster-)robust standard errors for counts that are not overdispersed."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.errors import EstimationError, InputError, ParameterError
from phm_eval.survival._data import check_finite, design_matrix
from phm_eval.survival._summary import (
    SummaryFrame,
    check_alpha,
    coefficient_table,
    fitted_alias,
    format_table,
    require_fitted,
    short_repr,
)
from phm_eval.survival.jackknife import cluster_jackknife

logger = logging.getLogger(__name__)

#: How clustered standard errors are computed: the cluster sandwich (CV1, R's
#: ``sandwich::vcovCL``) or the leave-one-cluster-out jackknife (CV3J, ``sandwich::vcovJK``).
CLUSTER_VARIANCES = ("sandwich", "jackknife")


class DispersionError(EstimationError):
    """The negative binomial dispersion cannot be estimated (not positive, or its maximum
    likelihood did not converge). ``reason`` says which, in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (str(self), self.reason))


class _RateModel:
    """What the two rate models share: settings, the coefficient table, rate ratios,
    printing and plotting. ``fit`` (in the subclasses) returns the model itself."""

    _model_name = ""

    def __init__(self, *, alpha: float = 0.05, cluster_correction: bool = True,
                 cluster_variance: str = "sandwich") -> None:
        self.alpha = alpha
        self.cluster_correction = cluster_correction
        self.cluster_variance = cluster_variance

    def _check_settings(self) -> None:
        check_alpha(self.alpha)
        if self.cluster_variance not in CLUSTER_VARIANCES:
            raise ParameterError("cluster_variance", f"must be one of {CLUSTER_VARIANCES}",
                                 self.cluster_variance)

    def _clustered(self, bread: np.ndarray, scores: np.ndarray, groups: np.ndarray, *,
                   X: np.ndarray, y: np.ndarray, offset: np.ndarray, params: np.ndarray,
                   dispersion: float, kind: str) -> tuple[np.ndarray, str]:
        """The clustered variance this model was set up for, and its ``cov_type_`` words."""
        if self.cluster_variance == "jackknife":
            cov, _ = cluster_jackknife(X, y, offset, params, groups, dispersion=dispersion)
            return cov, "cluster jackknife (CV3J)"
        cov = _cluster_sandwich(bread, scores, groups, self.cluster_correction)
        return cov, kind + (" (HC1)" if self.cluster_correction else " (HC0)")

    def __repr__(self) -> str:
        fitted = None
        if "params_" in vars(self):
            def fitted() -> str:
                return f"n={self.n_obs_}, {len(self.params_)} term(s), {self._fit_words()}"
        return short_repr(self, {"alpha": self.alpha,
                                 "cluster_correction": self.cluster_correction,
                                 "cluster_variance": self.cluster_variance}, fitted)

    def _fit_words(self) -> str:
        clusters = f" on {self.cluster_col_!r}" if self.cluster_col_ else ""
        return f"{self.cov_type_}{clusters}"

    def _check_fitted(self) -> None:
        require_fitted(self, "params_")

    def _store(self, names: pd.Index, params: np.ndarray, cov: np.ndarray, *, count_col: str,
               person_time_col: str, cluster_col: str | None, log_likelihood: float,
               n_obs: int, cov_type: str, n_clusters: int | None) -> None:
        self.count_col_, self.person_time_col_ = count_col, person_time_col
        self.cluster_col_ = cluster_col
        self.params_ = pd.Series(params, index=names, name="coef")
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=names, name="se(coef)")
        self.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        self.log_likelihood_ = log_likelihood
        self.n_obs_ = n_obs
        self.cov_type_ = cov_type
        self.n_clusters_ = n_clusters

    # former names, from when ``fit`` returned a separate results object
    params = fitted_alias("params_")
    bse = fitted_alias("standard_errors_")
    cov_params = fitted_alias("variance_matrix_")
    log_likelihood = fitted_alias("log_likelihood_")
    n_obs = fitted_alias("n_obs_")
    cov_type = fitted_alias("cov_type_")
    n_clusters = fitted_alias("n_clusters_")

    @property
    def conf_level_alpha(self) -> float:
        """Former name of ``alpha`` (one minus the confidence level)."""
        return self.alpha

    @property
    def summary(self) -> pd.DataFrame:
        """Coefficient table (lifelines layout; ``exp(coef)`` is the rate ratio), computed from
        ``params_`` and ``standard_errors_`` at ``alpha``.

        A property; ``summary()``, its former spelling, returns the same table.
        """
        self._check_fitted()
        return SummaryFrame(coefficient_table(self.params_, self.standard_errors_,
                                              check_alpha(self.alpha)))

    def rate_ratio(self, term: str) -> dict[str, float]:
        """Rate ratio of one term with its confidence limits and p-value."""
        self._check_fitted()
        if term not in self.params_.index:
            raise ParameterError("term", f"is not in the model (terms: {list(self.params_.index)})",
                                 term)
        row = self.summary.loc[term]
        lower = next(c for c in row.index if c.startswith("exp(coef) lower"))
        upper = next(c for c in row.index if c.startswith("exp(coef) upper"))
        return {"rate_ratio": float(row["exp(coef)"]), "lower": float(row[lower]),
                "upper": float(row[upper]), "p": float(row["p"])}

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the fit and its coefficient table (as lifelines' ``print_summary``)."""
        print(self._summary_text(decimals))

    def _summary_text(self, decimals: int = 3) -> str:
        self._check_fitted()
        return "\n".join([
            self._model_name,
            f"observations = {self.n_obs_}   variance = {self.cov_type_}"
            + (f" ({self.n_clusters_} clusters)" if self.cluster_col_ else ""),
            self._fit_statistics(decimals), "",
            format_table(self.summary, decimals),
        ])

    def _fit_statistics(self, decimals: int) -> str:
        return f"log-likelihood = {self.log_likelihood_:.{decimals}f}"

    def plot(self, *, ax: Any = None, **kwargs: Any):
        """Forest plot of rate ratios (intercept omitted); returns the Axes."""
        from phm_eval.survival.plots import forest_plot

        table = pd.DataFrame(self.summary).drop(index=["Intercept"], errors="ignore")
        return forest_plot(table, ax=ax, hazard_ratios=True, xlabel="rate ratio", **kwargs)


class NegativeBinomialRateModel(_RateModel):
    """Negative binomial (NB2) regression of event counts with a log person-time offset.

    The dispersion (``dispersion_``; variance ``mu + dispersion mu^2``) is estimated by
    maximum likelihood (statsmodels' discrete ``NegativeBinomial``); coefficients and
    model-based standard errors then come from the GLM at that dispersion (expected
    information), which is how R's ``MASS::glm.nb`` reports them. Cluster-robust standard
    errors (e.g. by practice) use the GLM score, with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` by default, equal to R's ``sandwich::vcovCL(type = "HC1")``;
    ``cluster_correction=False`` gives ``type = "HC0", cadjust = FALSE``.
    ``cluster_variance="jackknife"`` gives the leave-one-cluster-out jackknife instead
    (CV3J, R's ``sandwich::vcovJK(center = "mean")``; the refits keep the dispersion at its
    estimate, see :mod:`phm_eval.survival.jackknife`), which is not biased downwards when a
    few clusters carry much of the information.

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level (never the dispersion: that is ``dispersion_``).
    cluster_correction : bool, default True
        The sandwich's small-sample factor (HC1); unused by the jackknife.
    cluster_variance : {"sandwich", "jackknife"}, default "sandwich"
        How clustered standard errors are computed when ``fit`` gets ``cluster_col``.

    Attributes
    ----------
    params_ : Series
        Log rate ratios per unit of each covariate, ``Intercept`` first.
    standard_errors_ : Series
    variance_matrix_ : DataFrame
        Model-based, or cluster-robust when ``cluster_col`` was given.
    dispersion_, dispersion_se_ : float
        The NB2 dispersion and its standard error (statsmodels' ``alpha``).
    theta_ : float
        R's ``glm.nb`` shape parameter, ``1 / dispersion_``.
    log_likelihood_ : float
    n_obs_, n_clusters_ : int
    cov_type_ : str
        ``"model-based"``, ``"cluster-robust (HC1)"`` / ``"(HC0)"`` or
        ``"cluster jackknife (CV3J)"``.
    summary : DataFrame
        Property: the coefficient table; ``exp(coef)`` is the rate ratio.

    ``params``, ``bse``, ``cov_params``, ``theta``, ``log_likelihood``, ``n_obs``,
    ``n_clusters`` and ``cov_type`` still read these (``fit`` used to return a separate
    results object with those names).

    Examples
    --------
    >>> nb = NegativeBinomialRateModel().fit(df, "emergency_admissions", "person_years",
    ...                                      covariates=["treated", "age"],
    ...                                      cluster_col="practice_id")  # doctest: +SKIP
    >>> nb.rate_ratio("treated")  # doctest: +SKIP
    """

    _model_name = "Negative binomial rate model (log person-time offset)"

    def fit(
        self,
        df: pd.DataFrame,
        count_col: str,
        person_time_col: str,
        *,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
    ) -> NegativeBinomialRateModel:
        """Fit the model.

        Parameters
        ----------
        df : DataFrame
            One row per person (or per person-period).
        count_col : str
            Number of events (e.g. emergency admissions), non-negative integers.
        person_time_col : str
            Time at risk (e.g. person-years), strictly positive; enters as ``log`` offset.
        covariates, formula : optional
            Covariate columns (default all others) or a formulaic right-hand side; an
            intercept is always included.
        cluster_col : str, optional
            Cluster identifier for cluster-robust standard errors.

        Returns
        -------
        self

        Raises
        ------
        DispersionError
            If the dispersion is not positive or its maximum likelihood does not converge
            (fit :class:`PoissonRateModel` instead).
        """
        import statsmodels.api as sm
        from statsmodels.discrete.discrete_model import NegativeBinomial

        self._check_settings()
        y, X, offset = _prepare(df, count_col, person_time_col, covariates, formula,
                                cluster_col, "df passed to NegativeBinomialRateModel.fit")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # discrete-model Newton steps solve small systems; GLM's IRLS takes a pinv of X
            poisson = sm.Poisson(y, X, offset=offset).fit(method="newton", disp=0)
            start = np.append(poisson.params.to_numpy(), 0.5)
            nb = NegativeBinomial(y, X, offset=offset, loglike_method="nb2").fit(
                start_params=start, method="newton", maxiter=200, tol=1e-12, disp=0)
        if not nb.mle_retvals.get("converged", True):
            raise DispersionError("negative binomial maximum likelihood did not converge",
                                  "dispersion not estimable: maximum likelihood did not "
                                  "converge")
        dispersion = float(nb.params.iloc[-1])
        if not dispersion > 0:
            raise DispersionError("estimated dispersion is not positive: the counts are not "
                                  "overdispersed (use a Poisson model)",
                                  "dispersion not positive")
        glm = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=dispersion), offset=offset)
        res = glm.fit(start_params=nb.params.to_numpy()[:-1], tol=1e-12)
        # (X'WX)^-1 with IRLS weights: the expected information, as glm.nb and sandwich use
        cov = np.asarray(res.normalized_cov_params)
        groups = None
        cov_type = "model-based"
        if cluster_col:
            groups = pd.factorize(df[cluster_col])[0]
            params = res.params.to_numpy()
            cov, cov_type = self._clustered(cov, glm.score_obs(params), groups,
                                            X=X.to_numpy(), y=y, offset=offset, params=params,
                                            dispersion=dispersion, kind="cluster-robust")
        self._store(pd.Index(X.columns, name="covariate"), res.params.to_numpy(), cov,
                    count_col=count_col, person_time_col=person_time_col,
                    cluster_col=cluster_col, log_likelihood=float(nb.llf), n_obs=int(y.size),
                    cov_type=cov_type,
                    n_clusters=None if groups is None else int(groups.max()) + 1)
        self.dispersion_ = dispersion
        self.dispersion_se_ = float(nb.bse.iloc[-1])
        return self

    @property
    def theta_(self) -> float:
        """R's ``theta`` (``1 / dispersion_``)."""
        self._check_fitted()
        return 1.0 / self.dispersion_

    theta = fitted_alias("theta_")

    def _fit_words(self) -> str:
        return f"dispersion={self.dispersion_:.4g}, {super()._fit_words()}"

    def _fit_statistics(self, decimals: int) -> str:
        return (f"dispersion = {self.dispersion_:.{decimals + 2}f}   "
                f"theta = {self.theta_:.{decimals + 2}f}   "
                f"log-likelihood = {self.log_likelihood_:.{decimals}f}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (``alpha`` is one minus the confidence level)."""
        self._check_fitted()
        return {
            "model": "negative binomial (NB2) GLM, log link, log person-time offset",
            "n_obs": self.n_obs_, "cov_type": self.cov_type_, "n_clusters": self.n_clusters_,
            "alpha": self.alpha, "dispersion": self.dispersion_, "theta": self.theta_,
            "log_likelihood": self.log_likelihood_,
            "coefficients": self.summary.reset_index().to_dict(orient="records"),
        }


class PoissonRateModel(_RateModel):
    """Poisson regression of event counts with a log person-time offset and robust SEs.

    The same mean model as :class:`NegativeBinomialRateModel` (intercept, covariates, offset
    ``log(person_time)``), for when the negative binomial dispersion is not positive or not
    estimable. Standard errors are always the sandwich: clustered on ``cluster_col`` when
    given, else on each row (heteroskedasticity-robust), with the factor
    ``G/(G-1) * (N-1)/(N-K)`` by default (R's ``sandwich::vcovCL(type = "HC1")``; with one
    row per cluster this is ``vcovHC(type = "HC1")``), or none with
    ``cluster_correction=False`` (HC0), or the leave-one-cluster-out jackknife with
    ``cluster_variance="jackknife"`` (CV3J). Either keeps the Wald intervals valid whatever
    the counts' dispersion (under-, equi- or overdispersed), because the Poisson score
    equations stay unbiased when only the mean model is right.

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level.
    cluster_correction : bool, default True
    cluster_variance : {"sandwich", "jackknife"}, default "sandwich"

    Attributes
    ----------
    params_, standard_errors_, variance_matrix_, log_likelihood_, n_obs_, n_clusters_,
    cov_type_, summary
        As :class:`NegativeBinomialRateModel` (``n_clusters_`` counts rows when no
        ``cluster_col`` was given).
    pearson_dispersion_ : float
        Pearson chi-square over residual degrees of freedom.
    """

    _model_name = "Poisson rate model (log person-time offset, robust SEs)"

    def fit(
        self,
        df: pd.DataFrame,
        count_col: str,
        person_time_col: str,
        *,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
    ) -> PoissonRateModel:
        """Fit the model (arguments as :meth:`NegativeBinomialRateModel.fit`).

        Returns
        -------
        self

        Raises
        ------
        EstimationError
            If the maximum likelihood does not converge or gives non-finite estimates.
        """
        import statsmodels.api as sm

        self._check_settings()
        y, X, offset = _prepare(df, count_col, person_time_col, covariates, formula,
                                cluster_col, "df passed to PoissonRateModel.fit")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Poisson(y, X, offset=offset).fit(method="newton", maxiter=200,
                                                      tol=1e-12, disp=0)
        params = fit.params.to_numpy()
        if not fit.mle_retvals.get("converged", True) or not np.all(np.isfinite(params)):
            raise EstimationError("Poisson maximum likelihood did not converge")
        mu = np.exp(X.to_numpy() @ params + offset)
        Xa = X.to_numpy()
        # canonical link: expected = observed information, X' diag(mu) X
        bread = np.linalg.inv(Xa.T @ (mu[:, None] * Xa))
        scores = (y - mu)[:, None] * Xa
        if cluster_col:
            groups = pd.factorize(df[cluster_col])[0]
            kind = "cluster-robust"
        else:
            groups = np.arange(y.size)
            kind = "robust"
        cov, cov_type = self._clustered(bread, scores, groups, X=Xa, y=y, offset=offset,
                                        params=params, dispersion=0.0, kind=kind)
        k = Xa.shape[1]
        self._store(pd.Index(X.columns, name="covariate"), params, cov, count_col=count_col,
                    person_time_col=person_time_col, cluster_col=cluster_col,
                    log_likelihood=float(fit.llf), n_obs=int(y.size),
                    cov_type=cov_type,
                    n_clusters=int(groups.max()) + 1)
        self.pearson_dispersion_ = float(np.sum((y - mu) ** 2 / mu) / max(y.size - k, 1))
        return self

    pearson_dispersion = fitted_alias("pearson_dispersion_")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        self._check_fitted()
        return {
            "model": "Poisson GLM, log link, log person-time offset, robust (sandwich) SEs",
            "n_obs": self.n_obs_, "cov_type": self.cov_type_, "n_clusters": self.n_clusters_,
            "pearson_dispersion": self.pearson_dispersion_,
            "log_likelihood": self.log_likelihood_,
            "coefficients": self.summary.reset_index().to_dict(orient="records"),
        }


#: Former names of the fitted models (``fit`` used to return separate results objects).
NegativeBinomialRateResults = NegativeBinomialRateModel
PoissonRateResults = PoissonRateModel


def _prepare(
    df: pd.DataFrame,
    count_col: str,
    person_time_col: str,
    covariates: Sequence[str] | None,
    formula: str | None,
    cluster_col: str | None,
    table: str,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Checked counts, design matrix (intercept first) and log person-time offset.

    ``table`` names ``df`` in messages (e.g. ``"df passed to PoissonRateModel.fit"``).
    """
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", "must be a pandas DataFrame", type(df).__name__)
    named = [("count_col", count_col), ("person_time_col", person_time_col)]
    for argument, col in named + ([("cluster_col", cluster_col)] if cluster_col else []):
        if col not in df.columns:
            raise ParameterError(argument, f"names no column of the {table}", col)
    y = df[count_col].to_numpy(dtype=float)
    pt = df[person_time_col].to_numpy(dtype=float)
    check_finite(y, count_col, table)
    check_finite(pt, person_time_col, table)
    bad = np.flatnonzero((y < 0) | (np.floor(y) != y))
    if bad.size:
        raise InputError(table, "counts must be non-negative integers", column=count_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    bad = np.flatnonzero(pt <= 0)
    if bad.size:
        raise InputError(table, "person-time must be positive", column=person_time_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    exclude = [count_col, person_time_col] + ([cluster_col] if cluster_col else [])
    X = design_matrix(df, covariates, formula, exclude, table=table)
    for c in X.columns:
        check_finite(X[c], str(c), table)
    X.insert(0, "Intercept", 1.0)
    offset = np.log(pt)
    return y, X, offset


def _cluster_sandwich(
    bread: np.ndarray, scores: np.ndarray, groups: np.ndarray, correction: bool
) -> np.ndarray:
    """Cluster-robust variance ``c * B (sum_g s_g s_g') B``.

    The bread ``B`` is the inverse expected information. statsmodels' own
    ``cov_type="cluster"`` uses the observed Hessian instead, which for the
    negative binomial's (non-canonical) log link differs from R's
    ``sandwich::vcovCL`` by a few per cent in small samples.
    """
    n, k = scores.shape
    n_groups = int(groups.max()) + 1
    if n_groups < 2:
        raise EstimationError("cluster-robust variance needs at least two clusters")
    summed = np.zeros((n_groups, k))
    np.add.at(summed, groups, scores)
    c = (n_groups / (n_groups - 1)) * ((n - 1) / (n - k)) if correction else 1.0
    return c * bread @ (summed.T @ summed) @ bread
