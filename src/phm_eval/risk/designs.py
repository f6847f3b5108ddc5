"""Validation designs (TRIPOD+AI): the performance of one set of predictions
(:func:`evaluate_predictions`), Harrell's bootstrap optimism correction
(:func:`bootstrap_optimism`), internal-external cross-validation by cluster
(:func:`internal_external_cv`, with :func:`choose_iecv_cluster` and :func:`cluster_folds`) and
temporal validation (:func:`temporal_validation`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from phm_eval.errors import ConfigError, EstimationError, InputError
from phm_eval.risk.config import CORE_METRICS, RiskModelConfig
from phm_eval.risk.decision_curve import (
    decision_curve,
    risk_tier_metrics,
)
from phm_eval.risk.fitting import (
    build_pipeline,
    fit_pipeline,
    one_blas_thread,
    outcome_values,
    predict_risk,
    resolve_features,
    with_age_band,
    without_bootstrap,
)
from phm_eval.risk.meta_analysis import random_effects_c_statistic
from phm_eval.risk.results import (
    IECVClusterChoice,
    IECVResult,
    TemporalValidationResult,
    ValidationResult,
)
from phm_eval.risk.validation import (
    _as_outcome_and_prob,
    bootstrap_metrics,
    calibration_curve,
    calibration_metrics,
    delong_ci,
    subgroup_metrics,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IECV_FALLBACK_UNITS",
    "MIN_IECV_CLUSTERS",
    "bootstrap_optimism",
    "choose_iecv_cluster",
    "cluster_folds",
    "evaluate_predictions",
    "internal_external_cv",
    "temporal_validation",
]


def evaluate_predictions(
    y_true: Any,
    y_prob: Any,
    config: RiskModelConfig | None = None,
    *,
    frame: pd.DataFrame | None = None,
    label: str = "validation",
) -> ValidationResult:
    """All validation outputs for one set of predictions.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome and predicted risk.
    config : RiskModelConfig, optional
        Thresholds, tiers, subgroups and bootstrap settings.
    frame : pandas.DataFrame, optional
        Rows aligned with ``y_true`` holding the subgroup columns.
    label : str
        Name of the design.
    """
    config = config or RiskModelConfig()
    y, p = _as_outcome_and_prob(y_true, y_prob)
    metrics = calibration_metrics(y, p)
    intervals = (
        bootstrap_metrics(y, p, n_bootstrap=config.n_bootstrap, seed=config.seed)
        if config.n_bootstrap > 0
        else pd.DataFrame()
    )
    groups = pd.DataFrame()
    subgroups = pd.DataFrame()
    if frame is not None:
        frame = with_age_band(frame)
        cols = [c for c in config.subgroups if c in frame.columns]
        absent = sorted(set(config.subgroups) - set(cols))
        if absent:
            logger.warning("subgroup column(s) not in the data: %s", ", ".join(absent))
        groups = frame[cols].reset_index(drop=True)
        work = groups.assign(_y=y, _p=p)
        subgroups = subgroup_metrics(work, "_y", "_p", by=cols) if cols else pd.DataFrame()
    return ValidationResult(
        label=label,
        metrics=metrics,
        intervals=intervals,
        calibration=calibration_curve(y, p),
        decision=decision_curve(y, p, thresholds=config.thresholds, label=label),
        tiers=risk_tier_metrics(y, p, top_fractions=config.risk_tiers),
        subgroups=subgroups,
        y=y,
        p=p,
        groups=groups,
    )


@one_blas_thread
def bootstrap_optimism(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    n_bootstrap: int | None = None,
    model: Pipeline | None = None,
) -> pd.DataFrame:
    """Harrell's bootstrap optimism correction of apparent performance.

    Each replicate refits the whole pipeline (including spline knots, imputation and, with
    ``C="cv"``, the penalty) to a resample, scores it on that resample and on the original
    data; the mean difference is the optimism.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data.
    config : RiskModelConfig, optional
    n_bootstrap : int, optional
        Replicates; default ``config.n_optimism_bootstrap``.
    model : Pipeline, optional
        The model already fitted to ``df`` (refitted if omitted).

    Returns
    -------
    pandas.DataFrame
        Indexed by metric (c-statistic, calibration slope, calibration-in-the-large, Brier,
        O/E), with ``apparent``, ``optimism``, ``corrected``, ``optimism_sd`` and
        ``n_bootstrap``.
    """
    config = config or RiskModelConfig()
    b_total = config.n_optimism_bootstrap if n_bootstrap is None else int(n_bootstrap)
    if b_total < 1:
        raise ConfigError("bootstrap optimism needs at least one replicate")
    y = outcome_values(df, config)
    fitted = model if model is not None else fit_pipeline(df, config)
    apparent = calibration_metrics(y, predict_risk(fitted, df), smooth=False)
    rng = np.random.default_rng(config.seed)
    diffs = []
    template = build_pipeline(df, config)
    for b in range(b_total):
        idx = rng.integers(0, len(df), size=len(df))
        boot = df.iloc[idx]
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        mb = clone(template).fit(boot, yb)
        in_boot = calibration_metrics(yb, predict_risk(mb, boot), smooth=False)
        in_orig = calibration_metrics(y, predict_risk(mb, df), smooth=False)
        diffs.append([in_boot[m] - in_orig[m] for m in CORE_METRICS])
        logger.debug("optimism bootstrap %d/%d done", b + 1, b_total)
    if not diffs:
        raise EstimationError("no bootstrap replicate had both outcome classes")
    d = np.asarray(diffs)
    optimism = d.mean(axis=0)
    table = pd.DataFrame(
        {
            "apparent": [apparent[m] for m in CORE_METRICS],
            "optimism": optimism,
            "corrected": [apparent[m] for m in CORE_METRICS] - optimism,
            "optimism_sd": d.std(axis=0, ddof=1) if len(d) > 1 else np.nan,
            "n_bootstrap": len(d),
        },
        index=pd.Index(CORE_METRICS, name="metric"),
    )
    return table


#: Fewest clusters with a usable c-statistic for internal-external cross-validation. The
#: random-effects summary's 95% prediction interval, which shows how performance varies between
#: clusters (the point of internal-external validation), uses a t distribution on k - 2 degrees
#: of freedom (Riley et al., BMJ 2011;342:d549): three clusters are the fewest that give one.
#: "Usable" means at least ``min_cluster_events`` events and as many non-events (default 5),
#: enough for a held-out c-statistic and its DeLong standard error.
MIN_IECV_CLUSTERS = 3

#: Smaller units tried, in order, when the configured cluster has too few usable clusters.
IECV_FALLBACK_UNITS = ("practice_id",)


def _cluster_counts(df: pd.DataFrame, y: np.ndarray, col: str, min_events: int
                    ) -> tuple[int, int]:
    labels = df[col].astype("object").where(df[col].notna(), "missing")
    counts = pd.DataFrame({"c": labels.to_numpy(), "y": y}).groupby("c")["y"].agg(["sum", "size"])
    usable = np.minimum(counts["sum"], counts["size"] - counts["sum"]) >= min_events
    return len(counts), int(usable.sum())


def _unit(col: str, n: int = 1) -> str:
    """The clustering column in words, plural unless ``n`` is 1 ("PCN", "2 practices")."""
    word = {"pcn_id": "PCN", "practice_id": "practice"}.get(col, col.removesuffix("_id"))
    return word if n == 1 else word + ("es" if word.endswith(("s", "ch")) else "s")


def choose_iecv_cluster(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    fallback: Sequence[str] = IECV_FALLBACK_UNITS,
) -> IECVClusterChoice:
    """Choose the unit internal-external cross-validation leaves out.

    The configured ``config.cluster`` (e.g. ``pcn_id``) is used when at least
    ``config.min_iecv_clusters`` (default :data:`MIN_IECV_CLUSTERS`, 3) of its clusters have
    ``config.min_cluster_events`` events and as many non-events; otherwise the first unit of
    ``fallback`` (practice) that has enough, with a note; otherwise none (validation skipped,
    with a note). A 2-PCN extract is thus validated practice by practice.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data with the outcome and the cluster columns.
    config : RiskModelConfig, optional
    fallback : sequence of str
        Smaller units to try, in order (those absent from ``df`` are passed over).

    Returns
    -------
    IECVClusterChoice
    """
    config = config or RiskModelConfig()
    requested = config.cluster
    minimum = int(config.min_iecv_clusters)
    min_events = max(int(config.min_cluster_events), 2)
    y = outcome_values(df, config)
    reasons = []
    first: tuple[int, int] | None = None
    for col in dict.fromkeys([c for c in (requested, *fallback) if c]):
        if col not in df.columns:
            if col == requested:
                reasons.append(f"the {col} column is missing")
            continue
        n, usable = _cluster_counts(df, y, col, min_events)
        first = first or (n, usable)
        if usable >= minimum:
            note = None
            if col != requested:
                note = (f"internal-external validation by {_unit(col)} instead of "
                        f"{_unit(requested or '')}: " + "; ".join(reasons))
            return IECVClusterChoice(col, requested, n, usable, minimum, note)
        reasons.append(f"{n} {_unit(col, n)}, {usable} with at least {min_events} patients "
                       f"with and {min_events} without the outcome, where at least {minimum} "
                       "are needed")
    n, usable = first or (0, 0)
    return IECVClusterChoice(None, requested, n, usable, minimum,
                             "internal-external validation not run: " + "; ".join(reasons))


def _warm_started(model: Pipeline, start: Pipeline | None) -> Pipeline:
    """``model`` set to start a logistic fit from ``start``'s coefficients (else unchanged)."""
    if start is None:
        return model
    final, fitted = model.named_steps.get("model"), start.named_steps.get("model")
    if not (isinstance(final, LogisticRegression) and isinstance(fitted, LogisticRegression)
            and hasattr(fitted, "coef_")):
        return model
    final.set_params(warm_start=True)
    final.coef_ = fitted.coef_.copy()
    final.intercept_ = fitted.intercept_.copy()
    return model


@one_blas_thread
def cluster_folds(labels: np.ndarray, max_folds: int) -> np.ndarray:
    """Fold of each row: one fold per cluster when there are at most ``max_folds`` clusters,
    else clusters grouped into ``max_folds`` folds of about equal size (largest cluster first
    into the smallest fold; deterministic, ties by label)."""
    levels, codes, sizes = np.unique(labels.astype(str), return_inverse=True,
                                     return_counts=True)
    if len(levels) <= max_folds:
        return codes
    order = sorted(range(len(levels)), key=lambda i: (-sizes[i], levels[i]))
    totals = np.zeros(max_folds)
    fold_of = np.empty(len(levels), dtype=int)
    for i in order:
        fold = int(np.argmin(totals))
        fold_of[i] = fold
        totals[fold] += sizes[i]
    return fold_of[codes]


def internal_external_cv(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    cluster: str | None = None,
    start: Pipeline | None = None,
) -> IECVResult:
    """Internal-external cross-validation: leave one cluster (PCN or practice) out at a time.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data with the cluster column.
    config : RiskModelConfig, optional
    cluster : str, optional
        Cluster column; default ``config.cluster``.
    start : Pipeline, optional
        The model fitted on all of ``df``. A penalised logistic model of each fold then starts
        its optimiser from these coefficients (warm start): the same optimum, reached in fewer
        iterations, since leaving one cluster out moves the coefficients little.

    Returns
    -------
    IECVResult
    """
    config = config or RiskModelConfig()
    col = cluster or config.cluster
    if not col:
        raise ConfigError("internal-external cross-validation needs a cluster column")
    if col not in df.columns:
        raise InputError("features", f"cluster column '{col}' is missing")
    y = outcome_values(df, config)
    labels = df[col].astype("object").where(df[col].notna(), "missing").to_numpy()
    levels = pd.unique(labels)
    if levels.size < 2:
        raise EstimationError(f"internal-external cross-validation needs at least two {col}s")
    template = build_pipeline(df, config)
    p_all = np.full(len(df), np.nan)
    folds = cluster_folds(labels, int(config.iecv_max_folds))
    for fold in np.unique(folds):
        held = folds == fold
        train_y = y[~held]
        if train_y.min() == train_y.max():
            raise EstimationError(f"leaving out fold {fold} of {col}s leaves one outcome class")
        model = _warm_started(clone(template), start).fit(df.loc[~held], train_y)
        p_all[held] = predict_risk(model, df.loc[held])
    rows = []
    for level in levels:
        held = labels == level
        p = p_all[held]
        yy = y[held]
        ev = float(yy.sum())
        row: dict[str, Any] = {"cluster": level, "n": int(held.sum()), "events": ev}
        row.update(dict.fromkeys(("c_statistic", "c_se", *CORE_METRICS[1:]), np.nan))
        row["oe_ratio"] = ev / p.sum() if p.sum() > 0 else np.nan
        row["brier"] = float(np.mean((p - yy) ** 2))
        if min(ev, yy.size - ev) >= max(config.min_cluster_events, 2):
            m = calibration_metrics(yy, p, smooth=False)
            dl = delong_ci(yy, p)
            row.update({k: m[k] for k in CORE_METRICS})
            row["c_se"] = dl["se"]
        rows.append(row)
    per_cluster = pd.DataFrame(rows)
    ordered = ["cluster", "n", "events", "c_statistic", "c_se", *CORE_METRICS[1:]]
    per_cluster = per_cluster[ordered]
    pooled = evaluate_predictions(y, p_all, config, frame=df, label="internal-external (pooled)")
    meta = random_effects_c_statistic(per_cluster["c_statistic"], per_cluster["c_se"])
    return IECVResult(per_cluster=per_cluster, pooled=pooled, meta=meta, cluster=col)


@one_blas_thread
def temporal_validation(
    development: pd.DataFrame,
    validation: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    model: Pipeline | None = None,
) -> TemporalValidationResult:
    """Fit on the earlier index date's features and validate on the later one's.

    Patients may appear in both frames (a person is at risk at both dates); the outcome
    windows must not overlap, which is the feature extraction's job.
    """
    config = config or RiskModelConfig()
    fitted = model if model is not None else fit_pipeline(development, config)
    y_dev = outcome_values(development, config)
    y_val = outcome_values(validation, config, table="validation features")
    resolve_features(validation, config)
    dev = evaluate_predictions(
        y_dev,
        predict_risk(fitted, development),
        without_bootstrap(config),
        frame=development,
        label="development (apparent)",
    )
    val = evaluate_predictions(
        y_val, predict_risk(fitted, validation), config, frame=validation, label="temporal validation"
    )
    return TemporalValidationResult(model=fitted, development=dev, validation=val)
