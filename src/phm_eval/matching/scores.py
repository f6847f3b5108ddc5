"""Scores to match on: propensity scores and prognostic scores.

The propensity score is the logistic regression of treatment on the covariates,
fitted by iteratively reweighted least squares as R's ``glm(family = binomial())``
does, so that it agrees with MatchIt's ``distance = "glm"`` to rounding error.
The prognostic score (Hansen 2008, *Biometrika* 95:481-488) is the outcome
predicted from the covariates by a model fitted on the comparison group only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from phm_eval.errors import EstimationError, InputError, ParameterError

logger = logging.getLogger(__name__)

Family = Literal["binomial", "poisson", "gaussian"]


def covariate_design(
    df: pd.DataFrame, covariates: Sequence[str], *, intercept: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Model matrix for the covariates, coded as R's ``model.matrix`` codes them.

    Numeric and boolean columns enter as they are. Text and categorical columns
    enter as indicator columns for every level but the first (treatment
    contrasts); text levels are sorted, a pandas ``Categorical`` keeps its own
    order, and levels absent from the data are dropped, as in R.

    Parameters
    ----------
    df : pandas.DataFrame
        The data.
    covariates : sequence of str
        Column names.
    intercept : bool, default True
        Prepend a column of ones named ``"(Intercept)"``.

    Returns
    -------
    X : numpy.ndarray of shape (n, p)
    names : list of str
        Column names, ``<column><level>`` for indicator columns as R names them.
    """
    columns: list[np.ndarray] = []
    names: list[str] = []
    if intercept:
        columns.append(np.ones(len(df)))
        names.append("(Intercept)")
    for col in covariates:
        x = df[col]
        if is_categorical(x):
            levels = category_levels(x)
            for level in levels[1:]:
                columns.append((x == level).to_numpy(dtype=float))
                names.append(f"{col}{level}")
        else:
            columns.append(x.to_numpy(dtype=float))
            names.append(col)
    return np.column_stack(columns) if columns else np.empty((len(df), 0)), names


def is_categorical(x: pd.Series) -> bool:
    """True when a column is coded as levels (text or pandas categorical), not numbers."""
    return not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x))


def category_levels(x: pd.Series) -> list[object]:
    """Levels present in the data, in R's factor order (sorted text, or the categorical's order)."""
    if isinstance(x.dtype, pd.CategoricalDtype):
        present = set(x.dropna().unique())
        return [c for c in x.cat.categories if c in present]
    return sorted(x.dropna().unique(), key=str)


@dataclass(frozen=True, eq=False, repr=False)
class GLMFit:
    """A fitted generalised linear model (the parts matching needs; read-only).

    Attributes
    ----------
    coef : numpy.ndarray
        Coefficients on the linear-predictor scale, aliased columns set to 0.
    names : list of str
        Names of the coefficients.
    family : str
        ``"binomial"`` (logit link), ``"poisson"`` (log link) or ``"gaussian"`` (identity).
    converged : bool
        Whether the IRLS iterations met the tolerance.
    n_iter : int
        Iterations used.
    summary : pandas.DataFrame
        Property: the coefficients, one row per term.
    """

    coef: np.ndarray
    names: list[str]
    family: str
    converged: bool
    n_iter: int

    def __repr__(self) -> str:
        return (f"<GLMFit(family={self.family!r}): {len(self.names)} term(s), "
                f"converged={self.converged}, {self.n_iter} iteration(s)>")

    @property
    def summary(self) -> pd.DataFrame:
        """Coefficients on the linear-predictor scale, one row per term."""
        return pd.DataFrame({"coef": np.asarray(self.coef, dtype=float)},
                            index=pd.Index(self.names, name="term"))

    def linear_predictor(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor ``X @ coef``."""
        return X @ self.coef

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fitted mean on the response scale (probability, rate or mean)."""
        return _inverse_link(self.family, self.linear_predictor(X))


def _inverse_link(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "binomial":
        return 1.0 / (1.0 + np.exp(-eta))
    if family == "poisson":
        return np.exp(eta)
    return eta


def fit_glm(
    X: np.ndarray,
    y: np.ndarray,
    *,
    family: Family = "binomial",
    max_iter: int = 50,
    tol: float = 1e-8,
    names: Sequence[str] | None = None,
) -> GLMFit:
    """Fit a GLM by iteratively reweighted least squares, starting as R's ``glm`` does.

    Iterates until the relative change in deviance, ``|dev - dev_old| / (|dev| + 0.1)``,
    is below ``tol``. The default is R's ``glm.control(epsilon = 1e-8)``: stopping
    at the same iteration as R gives the same scores to about 1e-14, which keeps
    near-ties between candidate controls resolved as MatchIt resolves them.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, p)
        Design matrix including any intercept column.
    y : numpy.ndarray of shape (n,)
        Response: 0/1 for binomial, non-negative counts for poisson.
    family : {"binomial", "poisson", "gaussian"}
        Error distribution with its canonical link.
    max_iter : int, default 50
    tol : float, default 1e-8
    names : sequence of str, optional
        Coefficient names.

    Returns
    -------
    GLMFit
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    names = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]
    if family == "gaussian":
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        return GLMFit(coef, names, family, True, 1)
    if family == "binomial":
        mu = (y + 0.5) / 2.0
        eta = np.log(mu / (1.0 - mu))
    elif family == "poisson":
        mu = y + 0.1
        eta = np.log(mu)
    else:
        raise ParameterError("family", "must be 'binomial', 'poisson' or 'gaussian'", family)

    dev_old = _deviance(family, y, mu)
    coef = np.zeros(X.shape[1])
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        if family == "binomial":
            mu_eta = mu * (1.0 - mu)
            var = mu * (1.0 - mu)
        else:
            mu_eta = mu
            var = mu
        z = eta + (y - mu) / mu_eta
        w = np.sqrt(mu_eta**2 / var)
        coef, *_ = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)
        eta = X @ coef
        if family == "binomial":
            # Keep fitted probabilities off 0 and 1, as R's binomial()$linkinv does.
            eps = np.finfo(float).eps
            mu = np.clip(1.0 / (1.0 + np.exp(-eta)), eps, 1.0 - eps)
        else:
            mu = np.exp(eta)
        dev = _deviance(family, y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    if not converged:
        logger.warning("IRLS did not converge in %d iterations (family=%s)", max_iter, family)
    if family == "binomial":
        p = 1.0 / (1.0 + np.exp(-eta))
        if np.any(p > 1 - 10 * np.finfo(float).eps) or np.any(p < 10 * np.finfo(float).eps):
            logger.warning("fitted probabilities numerically 0 or 1: the groups may be separable")
    return GLMFit(coef, names, family, converged, n_iter)


def _deviance(family: str, y: np.ndarray, mu: np.ndarray) -> float:
    if family == "binomial":
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.where(y > 0, y * np.log(y / mu), 0.0)
            t0 = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
        return float(2.0 * np.sum(t1 + t0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(t - (y - mu)))


def propensity_score(
    df: pd.DataFrame,
    treatment_col: str,
    covariates: Sequence[str],
    *,
    scale: Literal["linear", "probability"] = "linear",
) -> tuple[np.ndarray, GLMFit]:
    """Propensity score from a main-effects logistic regression.

    Parameters
    ----------
    df : pandas.DataFrame
    treatment_col : str
        0/1 (or boolean) treatment indicator.
    covariates : sequence of str
    scale : {"linear", "probability"}, default "linear"
        ``"linear"`` returns the log-odds (MatchIt ``link = "linear.logit"``),
        ``"probability"`` the fitted probability (MatchIt ``link = "logit"``).

    Returns
    -------
    score : numpy.ndarray
    model : GLMFit
    """
    X, names = covariate_design(df, covariates)
    y = df[treatment_col].to_numpy(dtype=float)
    model = fit_glm(X, y, family="binomial", names=names)
    eta = model.linear_predictor(X)
    return (eta if scale == "linear" else _inverse_link("binomial", eta)), model


def prognostic_score(
    df: pd.DataFrame,
    treatment_col: str,
    covariates: Sequence[str],
    outcome_col: str,
    *,
    family: Family = "gaussian",
    scale: Literal["linear", "probability"] = "linear",
) -> tuple[np.ndarray, GLMFit]:
    """Prognostic score: outcome predicted by a model fitted on the comparison group only.

    Fitting on controls only keeps the treatment's effect out of the score
    (Hansen 2008). The outcome must be measured before or apart from the
    outcome the evaluation estimates, or the match peeks at the answer; a usual
    choice is the same outcome in a pre-period.

    Parameters
    ----------
    df : pandas.DataFrame
    treatment_col : str
    covariates : sequence of str
    outcome_col : str
        Outcome used to build the score (may be missing for treated units).
    family : {"gaussian", "binomial", "poisson"}, default "gaussian"
        ``"poisson"`` suits counts such as emergency admissions.
    scale : {"linear", "probability"}, default "linear"
        Score on the linear-predictor scale, or on the response scale.

    Returns
    -------
    score : numpy.ndarray
        Predicted for every row (treated and controls).
    model : GLMFit
    """
    X, names = covariate_design(df, covariates)
    controls = df[treatment_col].to_numpy(dtype=float) == 0
    y = df[outcome_col].to_numpy(dtype=float)[controls]
    if np.any(~np.isfinite(y)):
        bad = np.flatnonzero(controls)[~np.isfinite(y)]
        raise InputError(
            "df passed to prognostic_score",
            "the prognostic outcome must be present for every comparator",
            column=outcome_col,
            rows=[int(i) + 1 for i in bad[:5]],
            n_failing=len(bad),
        )
    if controls.sum() <= X.shape[1]:
        raise EstimationError("too few comparators to fit the prognostic model")
    model = fit_glm(X[controls], y, family=family, names=names)
    eta = model.linear_predictor(X)
    return (eta if scale == "linear" else _inverse_link(family, eta)), model
