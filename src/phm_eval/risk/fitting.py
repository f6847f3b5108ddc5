"""Preparing a feature frame and fitting the configured model to it.

:func:`candidate_parameters` and :func:`missing_data_summary` are public; the other functions
are the shared steps of the validation designs (:mod:`phm_eval.risk.designs`) and of
:func:`~phm_eval.risk.develop.develop_risk_model`: resolve the configured feature columns,
read the outcome, build, fit and predict the pipeline, with single-threaded BLAS.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from phm_eval.errors import EstimationError, InputError
from phm_eval.risk.config import AGE_BAND_LABELS, AGE_BANDS, RiskModelConfig
from phm_eval.risk.models import make_model

__all__ = [
    "candidate_parameters",
    "missing_data_summary",
]


def one_blas_thread(func: Any) -> Any:
    """Run with single-threaded BLAS.

    scipy's L-BFGS-B (behind LogisticRegression) makes many small BLAS calls; with threaded
    BLAS on a busy machine they spin and a fit runs 2-5 times slower (measured at 4,000 and
    300,000 rows on 2 cores).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# preparing frames


def resolve_features(df: pd.DataFrame, config: RiskModelConfig) -> dict[str, list[str]]:
    """Feature columns by kind (``numeric``, ``categorical``, ``spline``, ``binary``).

    ``binary_features="auto"`` takes every boolean column not listed elsewhere; a listed
    column absent from ``df`` raises :class:`~phm_eval.errors.InputError`.
    """
    numeric = list(config.numeric_features)
    categorical = list(config.categorical_features)
    spline = [f for f in config.spline_features if f in numeric or f not in categorical]
    if config.binary_features == "auto":
        listed = set(numeric) | set(categorical) | set(spline) | {config.outcome}
        binary = [c for c in df.columns if pd.api.types.is_bool_dtype(df[c]) and c not in listed]
    else:
        binary = list(config.binary_features)
    wanted = dict.fromkeys(numeric + categorical + spline + binary)
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InputError(
            "features",
            f"feature column(s) named in the risk configuration are missing: {', '.join(missing)}",
        )
    return {"numeric": numeric, "categorical": categorical, "spline": spline, "binary": binary}


def outcome_values(df: pd.DataFrame, config: RiskModelConfig,
                   *,
                   table: str = "features") -> np.ndarray:
    """The 0/1 outcome as floats; a missing column or another value raises
    :class:`~phm_eval.errors.InputError` naming ``table``."""
    if config.outcome not in df.columns:
        raise InputError(table, f"outcome column '{config.outcome}' is missing")
    y = df[config.outcome]
    bad = ~y.isin([0, 1, True, False])
    if bad.any():
        rows = list(np.flatnonzero(bad.to_numpy())[:5] + 1)
        raise InputError(
            table,
            "outcome must be 0 or 1 with no missing values",
            column=config.outcome,
            rows=rows,
            n_failing=int(bad.sum()),
        )
    return y.astype(float).to_numpy()


def with_age_band(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``age_band`` column derived from ``age`` (unchanged if it has one or
    has no ``age``)."""
    if "age_band" in df.columns or "age" not in df.columns:
        return df
    out = df.copy()
    out["age_band"] = pd.cut(
        out["age"], bins=list(AGE_BANDS), labels=list(AGE_BAND_LABELS), right=False
    ).astype("object")
    return out


def build_pipeline(df: pd.DataFrame, config: RiskModelConfig) -> Pipeline:
    """The configured, unfitted pipeline for the feature columns of ``df``."""
    f = resolve_features(df, config)
    return make_model(
        config.model,
        f["numeric"],
        f["categorical"],
        spline_features=f["spline"],
        binary_features=f["binary"],
        seed=config.seed,
        **dict(config.model_options),
    )


def fit_pipeline(df: pd.DataFrame, config: RiskModelConfig) -> Pipeline:
    """The configured pipeline fitted to ``df`` (both outcome classes needed)."""
    y = outcome_values(df, config)
    if y.min() == y.max():
        raise EstimationError("the development data hold only one outcome class")
    return build_pipeline(df, config).fit(df, y)


def predict_risk(model: Pipeline, df: pd.DataFrame) -> np.ndarray:
    """Predicted probability of the outcome for each row of ``df``."""
    return model.predict_proba(df)[:, 1]


def candidate_parameters(df: pd.DataFrame, config: RiskModelConfig) -> int:
    """Degrees of freedom the logistic model spends: the count for Riley's criteria."""
    f = resolve_features(df, config)
    n_knots = int(dict(config.model_options).get("n_knots", 5))
    count = len(f["spline"]) * (n_knots + 3 - 2)  # cubic B-splines without the bias column
    for col in f["numeric"]:
        if col in f["spline"]:
            continue
        count += 1 + int(df[col].isna().any())  # a missing indicator costs one more
    for col in f["categorical"]:
        levels = df[col].astype("object").fillna("missing").nunique()
        count += max(levels - 1, 0)
    return count + len(f["binary"])


def missing_data_summary(df: pd.DataFrame, config: RiskModelConfig) -> pd.DataFrame:
    """Number and percentage missing per predictor (TRIPOD+AI item 9/20)."""
    f = resolve_features(df, config)
    cols = list(dict.fromkeys(f["spline"] + f["numeric"] + f["categorical"] + f["binary"]))
    n_missing = df[cols].isna().sum()
    return pd.DataFrame(
        {
            "feature": cols,
            "n_missing": n_missing.to_numpy(),
            "percent_missing": (100.0 * n_missing / max(len(df), 1)).to_numpy(),
        }
    )


def without_bootstrap(config: RiskModelConfig) -> RiskModelConfig:
    """``config`` with ``n_bootstrap=0`` (no confidence intervals by bootstrap)."""
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values["n_bootstrap"] = 0
    return RiskModelConfig(**values)
