"""Writing what a development run found: :class:`RiskModelReport` is
:class:`~phm_eval.risk.results.RiskModelResults` with :meth:`~RiskModelReport.write` (figures,
``risk_model_report.json`` and the model card)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phm_eval.jsonio import write_json
from phm_eval.risk.fitting import outcome_values
from phm_eval.risk.model_card import write_model_card
from phm_eval.risk.results import RiskModelResults

__all__ = [
    "RiskModelReport",
]


@dataclass(frozen=True, repr=False)
class RiskModelReport(RiskModelResults):
    """Everything the model card reports (:class:`~phm_eval.risk.results.RiskModelResults`),
    and writing it out (:meth:`write`): what :func:`~phm_eval.risk.develop.develop_risk_model`
    returns.
    """

    def write(
        self,
        output_dir: str | Path,
        *,
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
            seed=report.config.seed,
        )
        name = "feature_importance"
    if table is not None:
        save(name, lambda ax: plot_feature_importance(table, ax=ax))
    return paths
