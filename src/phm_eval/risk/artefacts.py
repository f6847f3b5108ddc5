"""What a development run produced, :class:`RiskModelReport`, and writing it out: figures,
``risk_model_report.json`` and the model card."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from phm_eval.jsonio import write_json
from phm_eval.risk.config import CORE_METRICS, RiskModelConfig
from phm_eval.risk.fitting import outcome_values
from phm_eval.risk.model_card import write_model_card
from phm_eval.risk.results import (
    IECVClusterChoice,
    IECVResult,
    TemporalValidationResult,
    ValidationResult,
    records,
)
from phm_eval.risk.sample_size import SampleSizeResult

__all__ = [
    "RiskModelReport",
]


@dataclass
class RiskModelReport:
    """Everything the model card reports.

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

    def summary(self) -> pd.DataFrame:
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

    def write(
        self,
        output_dir: str | Path,
        report_json_dir: str | Path | None = None,
        **card_kwargs: Any,
    ) -> dict[str, Path]:
        """Write figures, ``risk_model_report.json`` and ``model_card.md``.

        Parameters
        ----------
        output_dir : path
            Folder of the figures and the model card.
        report_json_dir : path, optional
            Folder of ``risk_model_report.json``, the full report with unrounded counts
            (development and validation sizes, events, true and false positives at every
            threshold, missing values...).  Defaults to ``output_dir``; a workflow that
            releases ``output_dir`` puts it under the results folder's ``internal/``.
        **card_kwargs
            For :func:`phm_eval.risk.model_card.render_model_card` (``policy`` or
            ``disclose`` for disclosure control of the card's counts).

        Returns
        -------
        dict of str to Path
            Every file written: figure names, ``"report"`` and ``"model_card"``.
        """
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = _write_figures(self, out)
        json_dir = Path(report_json_dir) if report_json_dir is not None else out
        json_dir.mkdir(parents=True, exist_ok=True)
        report_path = json_dir / "risk_model_report.json"
        write_json(report_path, self.to_dict())  # NaN as null: strict JSON
        paths["report"] = report_path
        figures = {k: v.name for k, v in paths.items() if v.suffix == ".png"}
        paths["model_card"] = write_model_card(
            out / "model_card.md", self, figures=figures, **card_kwargs
        )
        return paths


def _write_figures(report: RiskModelReport, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phm_eval.risk.models import feature_importance, model_coefficients
    from phm_eval.risk.plots import plot_feature_importance

    main = report.primary_validation()
    paths: dict[str, Path] = {}

    def save(name: str, draw: Any) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        draw(ax)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths[name] = path

    save("calibration", lambda ax: main.plot_calibration(ax=ax))
    for col in main.groups.columns:
        save(f"calibration_by_{col}", lambda ax, c=col: main.plot_calibration(ax=ax, by=c))
    save("roc", lambda ax: main.plot_roc(ax=ax))
    save("decision_curve", lambda ax: main.plot_decision_curve(ax=ax))
    table = None
    if report.config.model == "penalised_logistic":
        table, name = model_coefficients(report.model), "coefficients"
    elif report.development_frame is not None:
        data = report.development_frame
        # permutation importance on a subsample keeps this to seconds
        table = feature_importance(
            report.model,
            data,
            outcome_values(data, report.config),
            random_state=report.config.random_state,
        )
        name = "feature_importance"
    if table is not None:
        save(name, lambda ax: plot_feature_importance(table, ax=ax))
    return paths
