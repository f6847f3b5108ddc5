"""Result objects of the validation designs: one set of predictions
(:class:`ValidationResult`), internal-external cross-validation (:class:`IECVResult`, with the
choice of its unit, :class:`IECVClusterChoice`) and temporal validation
(:class:`TemporalValidationResult`), and all of a development run's results together
(:class:`RiskModelResults`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from phm_eval.convention import ResultConvention
from phm_eval.risk.config import CORE_METRICS, RiskModelConfig
from phm_eval.risk.decision_curve import DecisionCurve
from phm_eval.risk.sample_size import SampleSizeResult

__all__ = [
    "IECVClusterChoice",
    "IECVResult",
    "RiskModelResults",
    "TemporalValidationResult",
    "ValidationResult",
    "records",
]


@dataclass(frozen=True, repr=False)
class ValidationResult(ResultConvention):
    """Performance of predictions in one validation sample.

    Attributes
    ----------
    label : str
        Design, e.g. ``"apparent"``, ``"temporal"`` or ``"internal-external (pooled)"``.
    metrics : dict
        :func:`~phm_eval.risk.validation.calibration_metrics`.
    intervals : pandas.DataFrame
        :func:`~phm_eval.risk.validation.bootstrap_metrics` (empty when ``n_bootstrap=0``).
    calibration : pandas.DataFrame
        Loess calibration curve.
    decision : DecisionCurve
    tiers : pandas.DataFrame
    subgroups : pandas.DataFrame
    y, p : ndarray
        Outcome and predictions, for figures.
    """

    label: str
    metrics: dict[str, float]
    intervals: pd.DataFrame
    calibration: pd.DataFrame
    decision: DecisionCurve
    tiers: pd.DataFrame
    subgroups: pd.DataFrame
    y: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    groups: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def _repr_fields(self) -> dict[str, Any]:
        return {"label": self.label, "n": len(self.y),
                **{k: round(float(self.metrics[k]), 4) for k in ("c_statistic",)
                   if k in self.metrics}}

    def _summary_table(self) -> pd.DataFrame:
        """Point estimates with confidence intervals, one row per metric."""
        if len(self.intervals):
            return self.intervals.copy()
        return pd.DataFrame({"estimate": pd.Series(self.metrics)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (no patient-level data)."""
        return {
            "label": self.label,
            "metrics": self.metrics,
            "intervals": records(self.intervals.reset_index()) if len(self.intervals) else [],
            "decision_curve": records(self.decision.table),
            "risk_tiers": records(self.tiers),
            "subgroups": records(self.subgroups),
        }

    def plot_calibration(self, *, ax: Any = None, by: str | None = None) -> Any:
        """Calibration curve, overall or by a subgroup column; returns the Axes."""
        from phm_eval.risk.plots import plot_calibration

        groups = None
        if by is not None:
            if by not in self.groups.columns:
                raise KeyError(f"no subgroup column '{by}' kept with these predictions")
            groups = self.groups[by].to_numpy()
        return plot_calibration(self.y, self.p, groups=groups, ax=ax, label=self.label)

    def plot_roc(self, *, ax: Any = None) -> Any:
        """ROC curve; returns the Axes."""
        from phm_eval.risk.plots import plot_roc

        return plot_roc(self.y, self.p, ax=ax, label=self.label)

    def plot_decision_curve(self, *, ax: Any = None) -> Any:
        """Decision curve; returns the Axes."""
        return self.decision.plot(ax=ax)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts (NaN as None)."""
    return json.loads(frame.to_json(orient="records"))


@dataclass(frozen=True, repr=False)
class IECVResult(ResultConvention):
    """Internal-external cross-validation by cluster.

    Attributes
    ----------
    per_cluster : pandas.DataFrame
        One row per held-out cluster: ``cluster``, ``n``, ``events``, ``c_statistic``,
        ``c_se``, ``calibration_slope``, ``calibration_in_the_large``, ``oe_ratio``, ``brier``.
    pooled : ValidationResult
        All held-out predictions stacked.
    meta : dict
        :func:`random_effects_c_statistic` over clusters with enough events.
    cluster : str
        The cluster column.
    choice : IECVClusterChoice, optional
        How the cluster column was chosen (requested column, counts, fallback note).
    """

    per_cluster: pd.DataFrame
    pooled: ValidationResult
    meta: dict[str, Any]
    cluster: str
    choice: IECVClusterChoice | None = None

    def _repr_fields(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "clusters": len(self.per_cluster)}

    def _summary_table(self) -> pd.DataFrame:
        """Per-cluster table."""
        return self.per_cluster.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        out = {
            "cluster": self.cluster,
            "per_cluster": records(self.per_cluster),
            "pooled": self.pooled.to_dict(),
            "random_effects_c_statistic": self.meta,
        }
        if self.choice is not None:
            out |= {k: v for k, v in self.choice.to_dict().items() if k != "cluster"}
        return out


@dataclass(frozen=True)
class IECVClusterChoice:
    """Which unit internal-external cross-validation leaves out, and why.

    Attributes
    ----------
    cluster : str or None
        Column used; None when no unit has enough usable clusters (validation skipped).
    requested : str or None
        The configured column (``config.cluster``).
    n_clusters, n_usable_clusters : int
        Levels of ``cluster`` (of ``requested`` when skipped), and how many have enough
        events and non-events for a c-statistic.
    min_clusters : int
        The minimum applied.
    note : str or None
        Why the requested unit was not used (None when it was).
    """

    cluster: str | None
    requested: str | None
    n_clusters: int
    n_usable_clusters: int
    min_clusters: int
    note: str | None = None

    @property
    def fell_back(self) -> bool:
        """True when the unit used is not the one requested."""
        return self.cluster != self.requested

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {"cluster": self.cluster, "requested_cluster": self.requested,
                "n_clusters": self.n_clusters, "n_usable_clusters": self.n_usable_clusters,
                "min_usable_clusters": self.min_clusters, "note": self.note}


@dataclass(frozen=True, repr=False)
class TemporalValidationResult(ResultConvention):
    """A model developed at one index date and validated at a later one."""

    model: Pipeline = field(repr=False)
    development: ValidationResult
    validation: ValidationResult

    def _repr_fields(self) -> dict[str, Any]:
        return {"development": self.development.label, "validation": self.validation.label}

    def _summary_table(self) -> pd.DataFrame:
        """Apparent (development) and temporal-validation estimates side by side."""
        return pd.DataFrame(
            {
                "development": pd.Series(self.development.metrics),
                "validation": pd.Series(self.validation.metrics),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {"development": self.development.to_dict(), "validation": self.validation.to_dict()}


@dataclass(frozen=True, repr=False)
class RiskModelResults(ResultConvention):
    """Everything a development run found, and the model card reports.

    :func:`~phm_eval.risk.develop.develop_risk_model` returns it as a
    :class:`~phm_eval.risk.artefacts.RiskModelReport`, which adds writing it out.

    Attributes
    ----------
    config : RiskModelConfig
    model : Pipeline
        Final model, fitted to all development data.
    apparent : ValidationResult
    optimism : pandas.DataFrame or None
    iecv : IECVResult or None
    temporal : TemporalValidationResult or None
    sample_size : SampleSizeResult
    n_parameters : int
    missing : pandas.DataFrame
    n, events : int
        Development sample.
    """

    config: RiskModelConfig
    model: Pipeline = field(repr=False)
    apparent: ValidationResult
    optimism: pd.DataFrame | None
    iecv: IECVResult | None
    temporal: TemporalValidationResult | None
    sample_size: SampleSizeResult
    n_parameters: int
    missing: pd.DataFrame
    n: int
    events: int
    feature_sets: dict[str, list[str]] = field(default_factory=dict)
    development_frame: pd.DataFrame | None = field(default=None, repr=False)
    iecv_choice: IECVClusterChoice | None = None

    def _repr_fields(self) -> dict[str, Any]:
        return {"model": self.config.model, "n": int(self.n), "events": int(self.events),
                "n_parameters": int(self.n_parameters)}

    def _summary_table(self) -> pd.DataFrame:
        """Headline metrics by design (rows) for c-statistic, calibration and Brier."""
        rows = {"apparent": self.apparent.metrics}
        if self.optimism is not None:
            rows["optimism-corrected"] = self.optimism["corrected"].to_dict()
        if self.iecv is not None:
            rows["internal-external (pooled)"] = self.iecv.pooled.metrics
        if self.temporal is not None:
            rows["temporal validation"] = self.temporal.validation.metrics
        return pd.DataFrame(rows).T.reindex(columns=list(CORE_METRICS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (aggregate statistics only)."""
        return {
            "config": self.config.to_dict(),
            "n": self.n,
            "events": self.events,
            "n_parameters": self.n_parameters,
            "features": self.feature_sets,
            "sample_size": self.sample_size.to_dict(),
            "missing": records(self.missing),
            "apparent": self.apparent.to_dict(),
            "optimism": records(self.optimism.reset_index())
            if self.optimism is not None
            else None,
            "internal_external": self._iecv_dict(),
            "temporal": self.temporal.to_dict() if self.temporal is not None else None,
        }

    def _iecv_dict(self) -> dict[str, Any] | None:
        if self.iecv is not None:
            return self.iecv.to_dict()
        if self.iecv_choice is not None:  # skipped: say why, the results are null
            return self.iecv_choice.to_dict() | {"per_cluster": [], "pooled": None,
                                                 "random_effects_c_statistic": None}
        return None

    def primary_validation(self) -> ValidationResult:
        """The most external validation available: temporal, else IECV, else apparent."""
        if self.temporal is not None:
            return self.temporal.validation
        if self.iecv is not None:
            return self.iecv.pooled
        return self.apparent
