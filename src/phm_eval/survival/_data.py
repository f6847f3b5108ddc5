"""Turning a user's data frame into sorted arrays for the survival estimators.

Every fitter in this subpackage codes outcomes the same way: ``0`` (or the
``censor_code`` given) is censored, ``event_of_interest`` is the event studied,
and any other code is a competing event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from phm_eval.errors import InputError, ParameterError

CENSORED, INTEREST, COMPETING = 0, 1, 2


@dataclass(frozen=True)
class SurvivalArrays:
    """Outcome, design matrix and clusters, sorted by ascending time (stable)."""

    time: np.ndarray
    status: np.ndarray  # CENSORED, INTEREST or COMPETING
    X: np.ndarray
    names: list[str]
    cluster: np.ndarray | None  # integer codes 0..G-1
    order: np.ndarray  # position in the input of each sorted row
    model_spec: object = None  # formulaic spec when a formula was used


def check_finite(values: pd.Series | np.ndarray, column: str, table: str = "data") -> None:
    """Raise :class:`InputError` naming the rows where ``values`` is missing or infinite."""
    arr = np.asarray(values, dtype=float)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(table, "values must be present and finite", column=column,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))


def design_matrix(
    df: pd.DataFrame,
    covariates: Sequence[str] | None,
    formula: str | None,
    exclude: Sequence[str],
    spec: object = None,
    table: str = "data",
) -> pd.DataFrame:
    """Covariates as a float DataFrame, from a column list, a formula or all remaining columns.

    A formula is read by ``formulaic`` (the formula engine lifelines uses); the
    intercept is dropped because the semiparametric models here have none. The
    formulaic model spec is kept in ``.attrs["model_spec"]``; passing it back as
    ``spec`` rebuilds the same columns (same category levels) on new data. ``table``
    names the data frame in messages (e.g. ``"df passed to FineGrayFitter.fit"``).
    """
    if spec is not None or formula is not None:
        from formulaic import model_matrix

        mm = spec.get_model_matrix(df) if spec is not None else model_matrix(formula, df)
        model_spec = mm.model_spec
        out = pd.DataFrame(mm).drop(columns=["Intercept"], errors="ignore").astype(float)
        out.attrs["model_spec"] = model_spec
        return out
    if covariates is None:
        covariates = [c for c in df.columns if c not in set(exclude)]
    missing = [c for c in covariates if c not in df.columns]
    if missing:
        raise ParameterError("covariates", f"names column(s) not in the {table}", missing)
    X = df[list(covariates)]
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise InputError(table, "covariates must be numeric (use a formula for categorical "
                         f"terms): {non_numeric}")
    return X.astype(float)


def competing_arrays(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    event_of_interest: object = 1,
    censor_code: object = 0,
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    cluster_col: str | None = None,
    need_covariates: bool = True,
    table: str = "data",
) -> SurvivalArrays:
    """Validate and sort a competing-risks data frame.

    Parameters
    ----------
    df : DataFrame
        One row per person.
    duration_col, event_col : str
        Follow-up time (non-negative, any unit) and event code.
    event_of_interest, censor_code : object
        The code of the event studied and of censoring; every other code is a
        competing event.
    covariates, formula : optional
        Columns to use (default: all columns except duration, event and cluster), or a
        formulaic formula such as ``"age + C(sex)"``.
    cluster_col : str, optional
        Column identifying clusters (e.g. practice) for robust variances.
    table : str
        How messages name ``df`` (e.g. ``"df passed to FineGrayFitter.fit"``).
    """
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", "must be a pandas DataFrame", type(df).__name__)
    named = [("duration_col", duration_col), ("event_col", event_col)]
    for argument, col in named + ([("cluster_col", cluster_col)] if cluster_col else []):
        if col not in df.columns:
            raise ParameterError(argument, f"names no column of the {table}", col)
    time = df[duration_col].to_numpy(dtype=float)
    check_finite(time, duration_col, table)
    if (time < 0).any():
        bad = np.flatnonzero(time < 0)
        raise InputError(table, "durations must be non-negative", column=duration_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    ev = df[event_col].to_numpy()
    if pd.isna(ev).any():
        bad = np.flatnonzero(pd.isna(ev))
        raise InputError(table, "event codes must be present", column=event_col,
                         rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
    status = np.where(ev == censor_code, CENSORED, np.where(ev == event_of_interest, INTEREST,
                                                            COMPETING)).astype(np.int8)
    exclude = [duration_col, event_col] + ([cluster_col] if cluster_col else [])
    if need_covariates:
        Xdf = design_matrix(df, covariates, formula, exclude, table=table)
        for c in Xdf.columns:
            check_finite(Xdf[c], str(c), table)
        X = Xdf.to_numpy(dtype=float)
        names = [str(c) for c in Xdf.columns]
        model_spec = Xdf.attrs.get("model_spec")
    else:
        X, names, model_spec = np.empty((len(df), 0)), [], None
    cluster = None
    if cluster_col:
        if df[cluster_col].isna().any():
            bad = np.flatnonzero(df[cluster_col].isna().to_numpy())
            raise InputError(table, "cluster identifiers must be present", column=cluster_col,
                             rows=(bad[:5] + 1).tolist(), n_failing=int(bad.size))
        cluster = pd.factorize(df[cluster_col])[0]
    order = np.argsort(time, kind="stable")
    return SurvivalArrays(
        time=time[order], status=status[order], X=X[order], names=names,
        cluster=None if cluster is None else cluster[order], order=order,
        model_spec=model_spec,
    )


def distinct_times(time_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times, the first sorted row at each, and each row's distinct-time index."""
    uniq, first, inverse = np.unique(time_sorted, return_index=True, return_inverse=True)
    return uniq, first, inverse
