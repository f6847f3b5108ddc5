"""Model card in Markdown, organised by the TRIPOD+AI checklist (Collins et al., BMJ 2024).

Sections: intended use; source of data; participants; outcome; predictors; sample size;
missing data; model; performance with confidence intervals; calibration; clinical utility;
performance by subgroup (fairness); limitations. Numbers come from a
:class:`~phm_eval.risk.develop.RiskModelReport`; free text (data source, setting, intended
use, limitations) from the caller.

Counts in the subgroup, risk-tier and per-cluster tables are shown as computed unless a
``disclose`` function is given (e.g. one applying the project's disclosure-control policy):
pass one before releasing a card built from patient records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from phm_eval.risk.develop import RiskModelReport

__all__ = ["render_model_card", "write_model_card"]

DEFAULT_LIMITATIONS = (
    "Predictors come from coded records; conditions that are not coded, or coded "
    "differently between practices, are missed, and this varies by practice system.",
    "The outcome counts emergency admissions to hospitals in the linked data only; "
    "admissions elsewhere and deaths before admission are not counted as events.",
    "Risk is predicted under current care. Patients flagged and then managed differently "
    "will change the outcomes the model is later validated on (performative prediction).",
    "A high predicted risk does not identify patients whose admissions are preventable; "
    "clinical review is needed before any patient is offered an intervention.",
    "Calibration drifts as admission rates change: recalibrate the intercept at each "
    "new index date and re-check calibration by subgroup.",
)

_METRIC_LABELS = {
    "c_statistic": "c-statistic",
    "c_statistic_delong": "c-statistic (DeLong CI)",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept (slope estimated)",
    "calibration_in_the_large": "Calibration-in-the-large",
    "oe_ratio": "Observed/expected events",
    "brier": "Brier score",
    "r2_nagelkerke": "Nagelkerke R2",
    "emax": "Emax",
    "e90": "E90",
    "eavg": "Eavg (ICI)",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value.is_integer() and abs(value) >= 10:
            return f"{int(value):,}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(frame: pd.DataFrame, columns: Mapping[str, str], digits: int = 3) -> str:
    """Markdown table of selected columns, renamed."""
    cols = [c for c in columns if c in frame.columns]
    head = "| " + " | ".join(columns[c] for c in cols) + " |"
    rule = "| " + " | ".join("---" for _ in cols) + " |"
    body = [
        "| " + " | ".join(_fmt(row[c], digits) for c in cols) + " |"
        for _, row in frame[cols].iterrows()
    ]
    return "\n".join([head, rule, *body])


def _ci_table(intervals: pd.DataFrame) -> str:
    frame = intervals.reset_index().rename(columns={"index": "metric"})
    frame["metric"] = frame["metric"].map(lambda m: _METRIC_LABELS.get(m, m))
    frame["95% CI"] = [
        f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(frame["lower"], frame["upper"], strict=True)
    ]
    return _table(
        frame,
        {"metric": "Metric", "estimate": "Estimate", "95% CI": "95% CI", "method": "Method"},
    )


def _figure(figures: Mapping[str, str], key: str, caption: str) -> list[str]:
    if key in figures:
        return [f"![{caption}]({figures[key]})", ""]
    return []


def render_model_card(
    report: RiskModelReport,
    *,
    title: str = "Emergency admission risk model",
    intended_use: str = (
        "To rank registered patients of a Primary Care Network by their risk of an emergency "
        "hospital admission in the next 12 months, so that multidisciplinary teams can review "
        "those at highest risk for proactive care (Network Contract DES). Not for use in "
        "individual clinical diagnosis or to withhold care."
    ),
    data_source: str = "Linked primary-care records and hospital admitted-patient spells.",
    setting: str = "General practices in England.",
    outcome_definition: str = (
        "At least one emergency hospital admission (admission method beginning with 2; "
        "spells, not episodes) within 12 months after the index date."
    ),
    eligibility: str = "Patients registered at the index date.",
    figures: Mapping[str, str] | None = None,
    limitations: Sequence[str] = (),
    disclose: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> str:
    """Markdown text of the model card.

    Parameters
    ----------
    report : RiskModelReport
        From :func:`phm_eval.risk.develop.develop_risk_model`.
    title, intended_use, data_source, setting, outcome_definition, eligibility : str
        Free text for the corresponding TRIPOD+AI items.
    figures : mapping, optional
        Figure key (``calibration``, ``roc``, ``decision_curve``, ``coefficients``,
        ``feature_importance``, ``calibration_by_<column>``) to a path relative to the card.
    limitations : sequence of str
        Added to the default limitations.
    disclose : callable, optional
        Applied to every table with patient counts (subgroups, risk tiers, clusters) before
        it is rendered; it receives and returns a DataFrame with the same columns.
    """
    protect = disclose or (lambda frame: frame)
    figures = dict(figures or {})
    cfg = report.config
    main = report.primary_validation()
    lines: list[str] = [f"# {title}", ""]
    lines += [
        "Reported following TRIPOD+AI (Collins et al., BMJ 2024;385:e078378).",
        "",
        "## Intended use",
        "",
        intended_use,
        "",
        "## Source of data",
        "",
        f"{data_source} Setting: {setting}",
        "",
    ]
    if report.temporal is not None:
        lines += [
            "The model was developed at an earlier index date and validated at a later one "
            "(temporal validation).",
            "",
        ]
    lines += [
        "## Participants",
        "",
        f"{eligibility} Development sample: {report.n:,} patients, {report.events:,} with the "
        f"outcome ({100 * report.events / max(report.n, 1):.2f}%).",
    ]
    if report.temporal is not None:
        v = report.temporal.validation.metrics
        lines.append(
            f"Temporal validation sample: {int(v['n']):,} patients, {int(v['events']):,} with "
            f"the outcome ({100 * v['observed_risk']:.2f}%)."
        )
    lines += ["", "## Outcome", "", outcome_definition, "", "## Predictors", ""]
    sets = report.feature_sets or {
        "numeric": list(cfg.numeric_features),
        "spline": list(cfg.spline_features),
        "categorical": list(cfg.categorical_features),
        "binary": [] if cfg.binary_features == "auto" else list(cfg.binary_features),
    }
    continuous = [c for c in sets["numeric"] if c not in sets["spline"]]
    binary = sets["binary"]
    lines += [
        f"- Continuous/count: {', '.join(continuous) or 'none'}",
        f"- Modelled with a cubic spline: {', '.join(sets['spline']) or 'none'}",
        f"- Categorical: {', '.join(sets['categorical']) or 'none'}",
    ]
    lines += [f"- Binary flags: {', '.join(binary) if binary else 'none'}", ""]
    ss = report.sample_size
    adequate = ss.is_adequate(report.n)
    lines += [
        "## Sample size",
        "",
        f"Candidate parameters: {report.n_parameters}. Minimum sample size by the criteria of "
        f"Riley et al. (BMJ 2020;368:m441), assuming Cox-Snell R2 = {ss.r2_cs:.3f} "
        f"({ss.r2_source}) and outcome proportion {ss.prevalence:.3f}:",
        "",
        _table(
            ss.summary(),
            {"criterion": "Criterion", "n": "n", "events": "Events", "epp": "Events/parameter"},
            digits=1,
        ),
        "",
        f"The development sample ({report.n:,}) "
        + ("meets" if adequate else "does **not** meet")
        + " the minimum.",
        "",
        "## Missing data",
        "",
        "Numeric predictors: median imputation with a missing-value indicator (logistic model) "
        "or native missing-value handling (gradient boosting). Categorical predictors: missing "
        "is its own category. Binary flags: absent code = 0.",
        "",
        _table(
            report.missing[report.missing["n_missing"] > 0],
            {"feature": "Predictor", "n_missing": "Missing", "percent_missing": "%"},
            digits=1,
        )
        if (report.missing["n_missing"] > 0).any()
        else "No predictor has missing values.",
        "",
        "## Model",
        "",
        f"Type: `{cfg.model}`. Options: {dict(cfg.model_options) or 'defaults'}. "
        f"Random seed {cfg.random_state}.",
        "",
    ]
    lines += _figure(figures, "coefficients", "Coefficients")
    lines += _figure(figures, "feature_importance", "Permutation importance")
    lines += ["## Performance", ""]
    lines += [
        _table(
            report.summary().reset_index().rename(columns={"index": "design"}),
            {
                "design": "Design",
                "c_statistic": "c-statistic",
                "calibration_slope": "Calibration slope",
                "calibration_in_the_large": "CITL",
                "brier": "Brier",
                "oe_ratio": "O/E",
            },
        ),
        "",
    ]
    if report.optimism is not None:
        lines += [
            f"Optimism from {int(report.optimism['n_bootstrap'].iloc[0])} bootstrap refits of "
            "the whole modelling procedure (Harrell).",
            "",
        ]
    if len(main.intervals):
        lines += [f"### {main.label.capitalize()}: estimates with 95% confidence intervals", ""]
        lines += [_ci_table(main.intervals), ""]
    if report.iecv is not None:
        meta = report.iecv.meta
        lines += [
            f"### Internal-external cross-validation by `{report.iecv.cluster}`",
            "",
            f"Random-effects summary c-statistic {meta['c_statistic']:.3f} "
            f"(95% CI {meta['lower']:.3f} to {meta['upper']:.3f}; 95% prediction interval "
            f"{_fmt(meta['prediction_lower'])} to {_fmt(meta['prediction_upper'])}; "
            f"{meta['k']} clusters, I2 = {100 * meta['i2']:.0f}%).",
            "",
            _table(
                protect(report.iecv.per_cluster),
                {
                    "cluster": "Cluster",
                    "n": "n",
                    "events": "Events",
                    "c_statistic": "c",
                    "calibration_slope": "Slope",
                    "calibration_in_the_large": "CITL",
                    "oe_ratio": "O/E",
                },
            ),
            "",
        ]
    m = main.metrics
    lines += [
        "## Calibration",
        "",
        f"In the {main.label}: calibration-in-the-large {m['calibration_in_the_large']:.3f}, "
        f"calibration slope {m['calibration_slope']:.3f}, observed/expected "
        f"{m['oe_ratio']:.3f}; from the loess calibration curve Emax {_fmt(m['emax'])}, "
        f"E90 {_fmt(m['e90'])}, Eavg {_fmt(m['eavg'])}.",
        "",
    ]
    lines += _figure(figures, "calibration", "Calibration curve")
    lines += _figure(figures, "roc", "ROC curve")
    lines += ["## Clinical utility", ""]
    dc = main.decision.table
    pick = dc[dc["threshold"].round(4).isin([0.05, 0.1, 0.2, 0.3])]
    lines += [
        "Net benefit (Vickers & Elkin 2006) of flagging patients at or above a risk threshold:",
        "",
        _table(
            pick,
            {
                "threshold": "Threshold",
                "net_benefit_model": "Model",
                "net_benefit_treat_all": "Flag all",
                "flag_rate": "Flagged",
                "interventions_avoided_per_100": "Needless flags avoided /100",
            },
        ),
        "",
    ]
    lines += _figure(figures, "decision_curve", "Decision curve")
    lines += [
        "Performance when the top of the risk distribution is flagged:",
        "",
        _table(
            protect(main.tiers),
            {
                "tier": "Tier",
                "n_flagged": "Flagged",
                "risk_threshold": "Risk threshold",
                "sensitivity": "Sensitivity",
                "ppv": "PPV",
                "lift": "Lift",
            },
        ),
        "",
        "## Performance by subgroup",
        "",
    ]
    if len(main.subgroups):
        lines += [
            _table(
                protect(main.subgroups),
                {
                    "variable": "Variable",
                    "group": "Group",
                    "n": "n",
                    "events": "Events",
                    "c_statistic": "c",
                    "oe_ratio": "O/E",
                    "calibration_in_the_large": "CITL",
                    "calibration_slope": "Slope",
                },
            ),
            "",
        ]
        for key in sorted(figures):
            if key.startswith("calibration_by_"):
                lines += _figure(figures, key, f"Calibration by {key[len('calibration_by_') :]}")
    else:
        lines += ["No subgroup columns were available.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {text}" for text in (*DEFAULT_LIMITATIONS, *limitations)]
    if not adequate:
        lines.append("- The development sample is smaller than the Riley et al. minimum.")
    lines.append("")
    return "\n".join(lines)


def write_model_card(path: str | Path, report: RiskModelReport, **kwargs: Any) -> Path:
    """Write :func:`render_model_card` to ``path``; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_model_card(report, **kwargs), encoding="utf-8")
    return out
