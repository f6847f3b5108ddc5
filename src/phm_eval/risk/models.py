"""Risk models as scikit-learn pipelines, chosen by name from the configuration.

Two models are offered:

``"penalised_logistic"``
    L2-penalised logistic regression. Numeric predictors are median-imputed (with a missing
    indicator) and standardised; ``spline_features`` (default age) enter as cubic B-splines
    with knots at quantiles, linear beyond the boundary knots (close to a natural spline);
    categorical predictors are one-hot encoded with missing values as their own level;
    binary flags pass through as 0/1. The inverse penalty ``C`` is fixed (default 1.0, which
    on standardised predictors and hundreds of thousands of rows is almost no shrinkage) or
    ``"cv"`` to tune it by cross-validated log-loss.

``"gradient_boosting"``
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` with native categorical
    splits (categories ordinal-encoded inside the pipeline), native handling of missing
    values and early stopping on a 10% validation split.

Both take a pandas DataFrame with the named columns and return probabilities from
``predict_proba(X)[:, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    SplineTransformer,
    StandardScaler,
)

from phm_eval import DEFAULT_SEED
from phm_eval.errors import ConfigError, renamed_argument

MODEL_NAMES = ("penalised_logistic", "gradient_boosting")

__all__ = ["MODEL_NAMES", "make_model", "model_coefficients", "feature_importance"]


def _to_float(X: Any) -> Any:
    # via pandas so nullable Int64/boolean columns turn pd.NA into NaN
    return pd.DataFrame(X).astype("float64").to_numpy()


def _category_labels(column: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(column):
        present = column.dropna()
        if len(present) and bool(np.all(np.mod(present, 1) == 0)):
            # 3.0 and 3 are the same category (integer codes read back with missing values)
            column = column.astype("Int64")
    return column.astype("object").where(column.notna(), "missing").astype(str)


def _to_str_object(X: Any) -> Any:
    frame = pd.DataFrame(X)
    # missing categories become their own level; everything else compared as text
    return frame.apply(_category_labels).to_numpy()


def _check_names(
    numeric: Sequence[str], categorical: Sequence[str], spline: Sequence[str], binary: Sequence[str]
) -> None:
    seen: dict[str, str] = {}
    for role, names in (
        ("numeric", numeric),
        ("categorical", categorical),
        ("binary", binary),
    ):
        for name in names:
            if name in seen:
                raise ConfigError(f"feature '{name}' is listed as both {seen[name]} and {role}")
            seen[name] = role
    for name in spline:
        if name in categorical or name in binary:
            raise ConfigError(f"spline feature '{name}' must be numeric")


def make_model(
    name: str,
    numeric_features: Sequence[str],
    categorical_features: Sequence[str],
    *,
    spline_features: Sequence[str] = ("age",),
    binary_features: Sequence[str] = (),
    seed: int | None = None,
    C: float | str = 1.0,
    n_knots: int = 5,
    cv_folds: int = 3,
    max_iter: int = 300,
    learning_rate: float = 0.1,
    max_leaf_nodes: int = 31,
    min_samples_leaf: int = 100,
    l2_regularization: float = 1.0,
    tol: float = 1e-4,
    random_state: int | None = None,
) -> Pipeline:
    """Build an unfitted risk-model pipeline.

    Parameters
    ----------
    name : {"penalised_logistic", "gradient_boosting"}
        Which model.
    numeric_features : sequence of str
        Continuous or count predictors (e.g. ``efi_score``, ``n_emergency_admissions_1y``).
        Spline features may appear here too; they are then modelled by the spline only.
    categorical_features : sequence of str
        Categorical predictors (e.g. ``sex``, ``ethnicity``, ``imd_quintile``).
    spline_features : sequence of str, default ("age",)
        Numeric predictors given a cubic spline in the logistic model (ignored by boosting,
        which is nonlinear anyway). Must have no missing values.
    binary_features : sequence of str
        0/1 or boolean flags (e.g. long-term-condition flags).
    seed : int, optional
        Seed for early-stopping splits and cross-validation folds (scikit-learn's
        ``random_state``); ``None`` (not given) is ``phm_eval.DEFAULT_SEED``.
    C : float or "cv", default 1.0
        Inverse L2 penalty for the logistic model; ``"cv"`` tunes it over 8 values from
        1e-4 to 1e3 by ``cv_folds``-fold cross-validated log-loss.
    n_knots : int, default 5
        Spline knots, placed at quantiles of the training data.
    cv_folds : int, default 3
        Folds for ``C="cv"``.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Boosting settings: the iteration cap for early stopping and the usual tree settings.
    tol : float, default 1e-4
        Convergence tolerance of the logistic model's L-BFGS solver (scikit-learn's
        default). The default leaves coefficients within about 1e-3 of the optimum, which
        moves per-cluster calibration slopes by a few thousandths; ``1e-8`` converges
        tightly for final reports at several times the fitting time.
    random_state : int, optional
        Former name of ``seed``, still accepted with a ``DeprecationWarning``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        With steps ``"features"`` (a ColumnTransformer) and ``"model"``.
    """
    seed = renamed_argument("make_model", "seed", seed, "random_state", random_state)
    seed = DEFAULT_SEED if seed is None else seed
    numeric = [f for f in numeric_features if f not in spline_features]
    spline = list(spline_features)
    categorical = list(categorical_features)
    binary = list(binary_features)
    _check_names(numeric, categorical, spline, binary)
    if name == "penalised_logistic":
        if not (isinstance(tol, int | float) and tol > 0):
            raise ConfigError(f"risk model tol must be a positive number, not {tol!r}")
        return _penalised_logistic(
            numeric, categorical, spline, binary, C, n_knots, cv_folds, seed, float(tol)
        )
    if name == "gradient_boosting":
        return _gradient_boosting(
            numeric + spline,
            categorical,
            binary,
            seed=seed,
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
        )
    raise ConfigError(f"risk model '{name}' is unknown; choose one of {', '.join(MODEL_NAMES)}")


def _penalised_logistic(
    numeric: list[str],
    categorical: list[str],
    spline: list[str],
    binary: list[str],
    C: float | str,
    n_knots: int,
    cv_folds: int,
    seed: int | None,
    tol: float = 1e-4,
) -> Pipeline:
    transformers: list[tuple[str, Any, list[str]]] = []
    if spline:
        transformers.append(
            (
                "spline",
                SplineTransformer(
                    n_knots=n_knots,
                    degree=3,
                    knots="quantile",
                    extrapolation="linear",
                    include_bias=False,
                ),
                spline,
            )
        )
    if numeric:
        transformers.append(
            (
                "numeric",
                make_pipeline(
                    FunctionTransformer(_to_float, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(_to_str_object, feature_names_out="one-to-one"),
                    OneHotEncoder(handle_unknown="ignore", drop=None, sparse_output=False),
                ),
                categorical,
            )
        )
    if binary:
        transformers.append(
            (
                "binary",
                make_pipeline(
                    FunctionTransformer(_to_float, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
                ),
                binary,
            )
        )
    features = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    if C == "cv":
        model: Any = LogisticRegressionCV(
            Cs=np.logspace(-4, 3, 8),
            cv=cv_folds,
            l1_ratios=(0.0,),
            scoring="neg_log_loss",
            max_iter=500,
            tol=tol,
            random_state=seed,
            use_legacy_attributes=False,
        )
    else:
        if isinstance(C, str):
            raise ConfigError(f"risk model C must be a positive number or 'cv', not '{C}'")
        if C <= 0:
            raise ConfigError("risk model C must be positive")
        model = LogisticRegression(C=float(C), l1_ratio=0.0, max_iter=500, tol=tol)
    return Pipeline([("features", features), ("model", model)])


def _gradient_boosting(
    numeric: list[str],
    categorical: list[str],
    binary: list[str],
    *,
    seed: int | None,
    **settings: Any,
) -> Pipeline:
    transformers: list[tuple[str, Any, list[str]]] = []
    if categorical:
        transformers.append(
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(_to_str_object, feature_names_out="one-to-one"),
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                    ),
                ),
                categorical,
            )
        )
    numeric_all = numeric + binary
    if numeric_all:
        transformers.append(
            (
                "numeric",
                FunctionTransformer(_to_float, feature_names_out="one-to-one"),
                numeric_all,
            )
        )
    features = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    is_categorical = [True] * len(categorical) + [False] * len(numeric_all)
    model = HistGradientBoostingClassifier(
        categorical_features=is_categorical if categorical else None,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
        **settings,
    )
    return Pipeline([("features", features), ("model", model)])


def model_coefficients(pipeline: Pipeline) -> pd.DataFrame:
    """Coefficients of a fitted penalised logistic pipeline, on the transformed scale.

    Numeric predictors are standardised, so their coefficients are log-odds ratios per
    standard deviation; spline terms are per basis function and best read from a plot.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``coefficient``, ``odds_ratio``; the intercept first.
    """
    model = pipeline.named_steps["model"]
    if not hasattr(model, "coef_"):
        raise TypeError("model_coefficients needs a fitted penalised_logistic pipeline")
    names = pipeline.named_steps["features"].get_feature_names_out()
    coef = np.concatenate([np.ravel(model.intercept_), np.ravel(model.coef_)])
    terms = ["intercept", *names]
    return pd.DataFrame({"term": terms, "coefficient": coef, "odds_ratio": np.exp(coef)})


def feature_importance(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: Any,
    *,
    n_repeats: int = 3,
    max_rows: int = 20_000,
    seed: int | None = None,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Permutation importance of each input column: the drop in c-statistic when shuffled.

    Works for either model. Computed on a random subsample of at most ``max_rows`` rows.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A fitted pipeline from :func:`make_model`.
    X : pandas.DataFrame
        Rows to score, with the pipeline's input columns.
    y : array-like
        0/1 outcome of ``X``.
    n_repeats : int, default 3
        Shuffles per column (scikit-learn's ``n_repeats``).
    max_rows : int, default 20000
        Largest subsample scored.
    seed : int, optional
        Seed of the subsample and the shuffles; ``None`` (not given) is
        ``phm_eval.DEFAULT_SEED``.
    random_state : int, optional
        Former name of ``seed``, still accepted with a ``DeprecationWarning``.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``importance_mean``, ``importance_sd``, sorted by importance.
    """
    seed = renamed_argument("feature_importance", "seed", seed, "random_state", random_state)
    seed = DEFAULT_SEED if seed is None else seed
    y_arr = np.asarray(y)
    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        rows = rng.choice(len(X), size=max_rows, replace=False)
        X = X.iloc[rows]
        y_arr = y_arr[rows]
    used = list(pipeline.named_steps["features"].feature_names_in_)
    result = permutation_importance(
        pipeline,
        X[used],
        y_arr,
        scoring="roc_auc",
        n_repeats=n_repeats,
        random_state=seed,
    )
    table = pd.DataFrame(
        {
            "feature": used,
            "importance_mean": result.importances_mean,
            "importance_sd": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False, ignore_index=True)
