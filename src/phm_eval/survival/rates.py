"""Event-rate ratios (e.g. emergency admissions per person-year) from a negative binomial GLM,
and the Poisson GLM with (cluster-)robust standard errors for counts that are not overdispersed."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.errors import EstimationError, InputError
from phm_eval.survival._data import check_finite, design_matrix
from phm_eval.survival._summary import coefficient_table, format_table

logger = logging.getLogger(__name__)


class DispersionError(EstimationError):
    """The negative binomial dispersion cannot be estimated (not positive, or its maximum
    likelihood did not converge). ``reason`` says which, in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class NegativeBinomialRateResults:
    """Fitted negative binomial rate model.

    ``params`` are log rate ratios (per unit of each covariate); ``exp(coef)`` in
    :meth:`summary` is the rate ratio. ``theta = 1 / alpha`` is R's ``glm.nb``
    shape parameter (variance ``mu + alpha mu^2``).
    """

    params: pd.Series
    bse: pd.Series
    cov_params: pd.DataFrame
    alpha: float
    alpha_se: float
    log_likelihood: float
    n_obs: int
    cov_type: str
    conf_level_alpha: float
    n_clusters: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def theta(self) -> float:
        """R's ``theta`` (``1 / alpha``)."""
        return 1.0 / self.alpha

    def summary(self) -> pd.DataFrame:
        """Coefficient table (lifelines layout; ``exp(coef)`` is the rate ratio)."""
        return coefficient_table(self.params, self.bse, self.conf_level_alpha)

    def rate_ratio(self, term: str) -> dict[str, float]:
        """Rate ratio of one term with its confidence limits and p-value."""
        if term not in self.params.index:
            raise InputError("rate model", f"term {term!r} is not in the model")
        row = self.summary().loc[term]
        lower = next(c for c in row.index if c.startswith("exp(coef) lower"))
        upper = next(c for c in row.index if c.startswith("exp(coef) upper"))
        return {"rate_ratio": float(row["exp(coef)"]), "lower": float(row[lower]),
                "upper": float(row[upper]), "p": float(row["p"])}

    def print_summary(self, decimals: int = 3) -> str:
        """Readable summary (returned, not printed)."""
        text = "\n".join([
            "Negative binomial rate model (log person-time offset)",
            f"observations = {self.n_obs}   variance = {self.cov_type}"
            + (f" ({self.n_clusters} clusters)" if self.n_clusters else ""),
            f"alpha = {self.alpha:.{decimals + 2}f}   theta = {self.theta:.{decimals + 2}f}   "
            f"log-likelihood = {self.log_likelihood:.{decimals}f}", "",
            format_table(self.summary(), decimals),
        ])
        logger.info("\n%s", text)
        return text

    def plot(self, ax: Any = None, **kwargs: Any):
        """Forest plot of rate ratios (intercept omitted); returns the Axes."""
        from phm_eval.survival.plots import forest_plot

        table = self.summary().drop(index=["Intercept"], errors="ignore")
        return forest_plot(table, ax=ax, hazard_ratios=True, xlabel="rate ratio", **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "model": "negative binomial (NB2) GLM, log link, log person-time offset",
            "n_obs": self.n_obs, "cov_type": self.cov_type, "n_clusters": self.n_clusters,
            "alpha": self.alpha, "theta": self.theta, "log_likelihood": self.log_likelihood,
            "coefficients": self.summary().reset_index().to_dict(orient="records"),
        }


class NegativeBinomialRateModel:
    """Negative binomial (NB2) regression of event counts with a log person-time offset.

    The dispersion ``alpha`` is estimated by maximum likelihood (statsmodels'
    discrete ``NegativeBinomial``); coefficients and model-based standard errors
    then come from the GLM at that ``alpha`` (expected information), which is how
    R's ``MASS::glm.nb`` reports them. Cluster-robust standard errors (e.g. by
    practice) use the GLM score, with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` by default, equal to R's
    ``sandwich::vcovCL(type = "HC1")``; ``cluster_correction=False`` gives
    ``type = "HC0", cadjust = FALSE``.

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level.
    cluster_correction : bool, default True

    Examples
    --------
    >>> res = NegativeBinomialRateModel().fit(df, "emergency_admissions", "person_years",
    ...                                       covariates=["treated", "age"],
    ...                                       cluster_col="practice_id")  # doctest: +SKIP
    >>> res.rate_ratio("treated")  # doctest: +SKIP
    """

    def __init__(self, alpha: float = 0.05, cluster_correction: bool = True) -> None:
        self.alpha = alpha
        self.cluster_correction = cluster_correction

    def fit(
        self,
        df: pd.DataFrame,
        count_col: str,
        person_time_col: str,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
    ) -> NegativeBinomialRateResults:
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
        NegativeBinomialRateResults
        """
        import statsmodels.api as sm
        from statsmodels.discrete.discrete_model import NegativeBinomial

        y, X, offset = _prepare(df, count_col, person_time_col, covariates, formula,
                                cluster_col)

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
        alpha_hat = float(nb.params.iloc[-1])
        if not alpha_hat > 0:
            raise DispersionError("estimated dispersion is not positive: the counts are not "
                                  "overdispersed (use a Poisson model)",
                                  "dispersion not positive")
        glm = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha_hat), offset=offset)
        res = glm.fit(start_params=nb.params.to_numpy()[:-1], tol=1e-12)
        # (X'WX)^-1 with IRLS weights: the expected information, as glm.nb and sandwich use
        cov = np.asarray(res.normalized_cov_params)
        groups = None
        cov_type = "model-based"
        if cluster_col:
            groups = pd.factorize(df[cluster_col])[0]
            cov = _cluster_sandwich(cov, glm.score_obs(res.params.to_numpy()), groups,
                                    self.cluster_correction)
            cov_type = "cluster-robust" + (" (HC1)" if self.cluster_correction else " (HC0)")
        names = pd.Index(X.columns, name="covariate")
        return NegativeBinomialRateResults(
            params=pd.Series(res.params.to_numpy(), index=names, name="coef"),
            bse=pd.Series(np.sqrt(np.diag(cov)), index=names, name="se(coef)"),
            cov_params=pd.DataFrame(cov, index=names, columns=names),
            alpha=alpha_hat, alpha_se=float(nb.bse.iloc[-1]),
            log_likelihood=float(nb.llf), n_obs=int(y.size), cov_type=cov_type,
            conf_level_alpha=self.alpha,
            n_clusters=None if groups is None else int(groups.max()) + 1,
        )


@dataclass
class PoissonRateResults:
    """Fitted Poisson rate model with (cluster-)robust standard errors.

    ``params`` are log rate ratios; the sandwich variance keeps the Wald intervals valid
    whatever the counts' dispersion (under-, equi- or overdispersed), because the Poisson
    score equations stay unbiased when only the mean model is right.
    """

    params: pd.Series
    bse: pd.Series
    cov_params: pd.DataFrame
    log_likelihood: float
    n_obs: int
    cov_type: str
    conf_level_alpha: float
    n_clusters: int
    pearson_dispersion: float

    def summary(self) -> pd.DataFrame:
        """Coefficient table (lifelines layout; ``exp(coef)`` is the rate ratio)."""
        return coefficient_table(self.params, self.bse, self.conf_level_alpha)

    rate_ratio = NegativeBinomialRateResults.rate_ratio

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "model": "Poisson GLM, log link, log person-time offset, robust (sandwich) SEs",
            "n_obs": self.n_obs, "cov_type": self.cov_type, "n_clusters": self.n_clusters,
            "pearson_dispersion": self.pearson_dispersion,
            "log_likelihood": self.log_likelihood,
            "coefficients": self.summary().reset_index().to_dict(orient="records"),
        }


class PoissonRateModel:
    """Poisson regression of event counts with a log person-time offset and robust SEs.

    The same mean model as :class:`NegativeBinomialRateModel` (intercept, covariates, offset
    ``log(person_time)``), for when the negative binomial dispersion is not positive or not
    estimable. Standard errors are always the sandwich: clustered on ``cluster_col`` when
    given, else on each row (heteroskedasticity-robust), with the factor
    ``G/(G-1) * (N-1)/(N-K)`` by default (R's ``sandwich::vcovCL(type = "HC1")``; with one
    row per cluster this is ``vcovHC(type = "HC1")``), or none with
    ``cluster_correction=False`` (HC0).

    Parameters
    ----------
    alpha : float, default 0.05
        One minus the confidence level.
    cluster_correction : bool, default True
    """

    def __init__(self, alpha: float = 0.05, cluster_correction: bool = True) -> None:
        self.alpha = alpha
        self.cluster_correction = cluster_correction

    def fit(
        self,
        df: pd.DataFrame,
        count_col: str,
        person_time_col: str,
        covariates: Sequence[str] | None = None,
        formula: str | None = None,
        cluster_col: str | None = None,
    ) -> PoissonRateResults:
        """Fit the model (arguments as :meth:`NegativeBinomialRateModel.fit`).

        Returns
        -------
        PoissonRateResults

        Raises
        ------
        EstimationError
            If the maximum likelihood does not converge or gives non-finite estimates.
        """
        import statsmodels.api as sm

        y, X, offset = _prepare(df, count_col, person_time_col, covariates, formula,
                                cluster_col)
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
        cov = _cluster_sandwich(bread, scores, groups, self.cluster_correction)
        names = pd.Index(X.columns, name="covariate")
        k = Xa.shape[1]
        return PoissonRateResults(
            params=pd.Series(params, index=names, name="coef"),
            bse=pd.Series(np.sqrt(np.diag(cov)), index=names, name="se(coef)"),
            cov_params=pd.DataFrame(cov, index=names, columns=names),
            log_likelihood=float(fit.llf), n_obs=int(y.size),
            cov_type=kind + (" (HC1)" if self.cluster_correction else " (HC0)"),
            conf_level_alpha=self.alpha, n_clusters=int(groups.max()) + 1,
            pearson_dispersion=float(np.sum((y - mu) ** 2 / mu) / max(y.size - k, 1)),
        )


def _prepare(
    df: pd.DataFrame,
    count_col: str,
    person_time_col: str,
    covariates: Sequence[str] | None,
    formula: str | None,
    cluster_col: str | None,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Checked counts, design matrix (intercept first) and log person-time offset."""
    for col in (count_col, person_time_col) + ((cluster_col,) if cluster_col else ()):
        if col not in df.columns:
            raise InputError("data", f"column '{col}' not found")
    y = df[count_col].to_numpy(dtype=float)
    pt = df[person_time_col].to_numpy(dtype=float)
    check_finite(y, count_col)
    check_finite(pt, person_time_col)
    bad = np.flatnonzero((y < 0) | (np.floor(y) != y))
    if bad.size:
        raise InputError("data", "counts must be non-negative integers", column=count_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    bad = np.flatnonzero(pt <= 0)
    if bad.size:
        raise InputError("data", "person-time must be positive", column=person_time_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    exclude = [count_col, person_time_col] + ([cluster_col] if cluster_col else [])
    X = design_matrix(df, covariates, formula, exclude)
    for c in X.columns:
        check_finite(X[c], str(c))
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
