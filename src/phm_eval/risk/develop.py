"""Develop and validate an emergency-admission risk model, end to end (TRIPOD+AI).

Takes patient-level feature frames (one row per patient at an index date, with the outcome
``emergency_admission_12m``) and runs the validation designs TRIPOD+AI asks for:

* **apparent and optimism-corrected performance** (Harrell's bootstrap: the whole fitting
  procedure repeated in ``n_optimism_bootstrap`` resamples; optimism = mean of performance
  in the resample minus performance of that model in the original data);
* **internal-external cross-validation** by a cluster column (PCN or practice): fit on all
  other clusters, validate on the held-out one; pooled and per-cluster performance and a
  random-effects (DerSimonian-Laird) summary of the c-statistic on the logit scale;
* **temporal validation**: develop at an earlier index date, validate at a later one;
* clinical utility (decision curve, risk tiers), subgroup performance and the Riley et al.
  sample-size check; then a model card.

This module holds the orchestration, :func:`develop_risk_model`; the parts live in their own
modules and every public name is importable from here too: :mod:`.config`
(:class:`RiskModelConfig`), :mod:`.fitting` (feature preparation), :mod:`.designs` (the
validation designs), :mod:`.meta_analysis`, :mod:`.results` (their result objects),
:mod:`.artefacts` (:class:`RiskModelReport` and writing it) and :mod:`.examples`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from phm_eval.errors import EstimationError
from phm_eval.risk.artefacts import RiskModelReport
from phm_eval.risk.config import (
    AGE_BAND_LABELS,
    AGE_BANDS,
    CORE_METRICS,
    DEFAULT_CATEGORICAL,
    DEFAULT_NUMERIC,
    DEFAULT_SUBGROUPS,
    RiskModelConfig,
)
from phm_eval.risk.designs import (
    IECV_FALLBACK_UNITS,
    MIN_IECV_CLUSTERS,
    bootstrap_optimism,
    choose_iecv_cluster,
    cluster_folds,
    evaluate_predictions,
    internal_external_cv,
    temporal_validation,
)
from phm_eval.risk.examples import example_risk_features
from phm_eval.risk.fitting import (
    candidate_parameters,
    fit_pipeline,
    missing_data_summary,
    one_blas_thread,
    outcome_values,
    predict_risk,
    resolve_features,
    without_bootstrap,
)
from phm_eval.risk.meta_analysis import random_effects_c_statistic
from phm_eval.risk.results import (
    IECVClusterChoice,
    IECVResult,
    TemporalValidationResult,
    ValidationResult,
)
from phm_eval.risk.sample_size import riley_minimum

logger = logging.getLogger(__name__)

__all__ = [
    "AGE_BANDS",
    "AGE_BAND_LABELS",
    "CORE_METRICS",
    "DEFAULT_CATEGORICAL",
    "DEFAULT_NUMERIC",
    "DEFAULT_SUBGROUPS",
    "IECVClusterChoice",
    "IECVResult",
    "IECV_FALLBACK_UNITS",
    "MIN_IECV_CLUSTERS",
    "RiskModelConfig",
    "RiskModelReport",
    "TemporalValidationResult",
    "ValidationResult",
    "bootstrap_optimism",
    "candidate_parameters",
    "choose_iecv_cluster",
    "cluster_folds",
    "develop_risk_model",
    "evaluate_predictions",
    "example_risk_features",
    "internal_external_cv",
    "missing_data_summary",
    "random_effects_c_statistic",
    "temporal_validation",
]


@one_blas_thread
def develop_risk_model(
    features: pd.DataFrame,
    config: RiskModelConfig | Mapping[str, Any] | None = None,
    *,
    validation_features: pd.DataFrame | None = None,
    output_dir: str | Path | None = None,
    run_iecv: bool = True,
    anticipated_c_statistic: float = 0.75,
    model_card_options: Mapping[str, Any] | None = None,
    report_json_dir: str | Path | None = None,
    n_jobs: int | None = None,
) -> RiskModelReport:
    """Develop the risk model and validate it by every design the data allow.

    Parameters
    ----------
    features : pandas.DataFrame
        Development frame: one row per patient at the (earlier) index date, with the
        configured features, ``config.cluster`` and the outcome.
    config : RiskModelConfig or mapping, optional
        The ``risk:`` configuration block.
    validation_features : pandas.DataFrame, optional
        Frame at a later index date for temporal validation.
    output_dir : path, optional
        If given, figures, a JSON report and ``model_card.md`` are written there.
    run_iecv : bool, default True
        Run internal-external cross-validation by ``config.cluster`` when it has at least
        ``config.min_iecv_clusters`` usable clusters, else by practice, else not at all; the
        choice and its reason are in ``report.iecv_choice`` and in ``to_dict()``
        (``internal_external.cluster``, ``requested_cluster`` and ``note``).
    anticipated_c_statistic : float, default 0.75
        For the Riley sample-size check (routine-data admission models report 0.7-0.8).
    model_card_options : mapping, optional
        Keyword arguments for :func:`phm_eval.risk.model_card.render_model_card` (free text,
        and ``policy`` or ``disclose`` to apply disclosure control to every count in the card).
    report_json_dir : path, optional
        Where ``risk_model_report.json`` (unrounded counts: not for release) is written;
        defaults to ``output_dir``.
    n_jobs : int, optional
        Validation designs computed side by side, in threads (the apparent performance and
        temporal validation beside the internal-external cross-validation's refits). Each
        design has its own seed, so the report is identical for any value; more threads need
        the memory of one more model fit. Default: the cores this process may use, at most 2.

    Returns
    -------
    RiskModelReport
    """
    if not isinstance(config, RiskModelConfig):
        config = RiskModelConfig.from_dict(config)
    y = outcome_values(features, config)
    if y.min() == y.max():
        raise EstimationError("the development data hold only one outcome class")
    model = fit_pipeline(features, config)
    choice = None
    if run_iecv and config.cluster:
        choice = choose_iecv_cluster(features, config)
        if choice.note:
            logger.warning("%s", choice.note)
    designs: dict[str, Callable[[], Any]] = {}
    if choice is not None and choice.cluster is not None:
        designs["iecv"] = lambda: replace(
            internal_external_cv(features, config, cluster=choice.cluster, start=model),
            choice=choice)
    designs["apparent"] = lambda: evaluate_predictions(
        y, predict_risk(model, features), without_bootstrap(config), frame=features,
        label="apparent")
    if config.n_optimism_bootstrap > 0:
        designs["optimism"] = lambda: bootstrap_optimism(features, config, model=model)
    if validation_features is not None:
        designs["temporal"] = lambda: temporal_validation(features, validation_features, config,
                                                          model=model)
    done = _run_side_by_side(designs, n_jobs)
    apparent, optimism = done["apparent"], done.get("optimism")
    iecv, temporal = done.get("iecv"), done.get("temporal")
    n_par = candidate_parameters(features, config)
    sample = riley_minimum(max(n_par, 1), float(y.mean()), c_statistic=anticipated_c_statistic)
    report = RiskModelReport(
        config=config,
        model=model,
        apparent=apparent,
        optimism=optimism,
        iecv=iecv,
        temporal=temporal,
        sample_size=sample,
        n_parameters=n_par,
        missing=missing_data_summary(features, config),
        n=len(features),
        events=int(y.sum()),
        feature_sets=resolve_features(features, config),
        development_frame=features,
        iecv_choice=choice,
    )
    if output_dir is not None:
        report.write(output_dir, report_json_dir=report_json_dir,
                     **dict(model_card_options or {}))
    return report


def _run_side_by_side(tasks: Mapping[str, Callable[[], Any]], n_jobs: int | None
                      ) -> dict[str, Any]:
    """Each task's result, the tasks run in up to ``n_jobs`` threads in the order given.

    The heavy work of the validation designs (model fits, sorting, bootstrap sums) is in numpy,
    scipy and scikit-learn code that releases the GIL, so two designs take little more than
    the longer of the two. A task's exception is raised as it would be without threads.
    """
    if n_jobs is None:
        n_jobs = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count() or 1)
    workers = max(1, min(int(n_jobs), len(tasks)))
    if workers == 1:
        return {name: task() for name, task in tasks.items()}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="risk-design") as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}
