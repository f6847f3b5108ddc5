"""Model card in Markdown, organised by the TRIPOD+AI checklist (Collins et al., BMJ 2024).

Sections: intended use; source of data; participants; outcome; predictors; sample size;
missing data; model; performance with confidence intervals; calibration; clinical utility;
performance by subgroup (fairness); limitations. Numbers come from a
:class:`~phm_eval.risk.artefacts.RiskModelReport`; free text (data source, setting, intended
use, limitations) from the caller.

Counts (patients, outcomes, missing values, events per cluster, subgroup and risk-tier
counts) are shown as computed unless disclosure control is asked for: pass ``policy`` (a
:class:`~phm_eval.disclosure.DisclosurePolicy`) or a ``disclose`` function (as the workflow's
risk stage does) before releasing a card built from patient records.  With either, every
count in the card, in prose and in tables, is disclosure-controlled, percentages are computed
from the disclosed counts, and statistics of groups with suppressed counts are suppressed.

:func:`model_card_html` renders the card as an HTML fragment, with its figures embedded, for
the commissioner report.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from phm_eval.labels import label

if TYPE_CHECKING:
    from phm_eval.disclosure import DisclosurePolicy
    from phm_eval.risk.results import RiskModelResults

__all__ = ["card_disclosure", "model_card_html", "render_model_card", "write_model_card"]

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


Disclose = Callable[[pd.DataFrame], pd.DataFrame]


def card_disclosure(policy: DisclosurePolicy) -> Disclose:
    """The function that discloses a table of the card under ``policy``.

    Count columns are those whose name labels a count (``n``, ``events``, ``n_flagged``,
    ``true_positives``...; :func:`~phm_eval.disclosure.check.is_count_label`); every other
    numeric column is a statistic of the people counted by ``events`` (or the first count),
    suppressed when that count is.  Returns text cells, ``policy.marker`` where suppressed.
    """
    from phm_eval.disclosure import apply_disclosure
    from phm_eval.disclosure.check import is_count_label

    def disclose(frame: pd.DataFrame) -> pd.DataFrame:
        counts = [c for c in frame.columns
                  if is_count_label(c, policy) and pd.api.types.is_numeric_dtype(frame[c])]
        if not counts:
            return frame
        numeric = [c for c in frame.select_dtypes("number").columns if c not in counts]
        base = "events" if "events" in counts else counts[0]
        out = apply_disclosure(frame.reset_index(drop=True), policy, count_cols=counts,
                               stat_cols={c: base for c in numeric})
        return out.formatted(decimals=3)

    return disclose


class _Counts:
    """Counts as the card shows them: disclosed by ``policy`` or ``disclose``, else as computed."""

    def __init__(self, policy: DisclosurePolicy | None, disclose: Disclose | None) -> None:
        self.policy = policy
        self.frame = disclose or (card_disclosure(policy) if policy is not None else None)
        self.active = self.frame is not None

    def value(self, x: float) -> float | None:
        """The disclosed count (None when suppressed)."""
        if not self.active:
            return float(x)
        shown = self.frame(pd.DataFrame({"n": [int(x)]}))["n"].iloc[0]
        number = pd.to_numeric(str(shown).replace(",", ""), errors="coerce")
        return None if pd.isna(number) else float(number)

    def text(self, x: float) -> str:
        value = self.value(x)
        if value is None:
            return self.policy.marker if self.policy is not None else "*"
        return f"{int(value):,}"

    def percent(self, part: float, whole: float, digits: int = 2) -> str:
        """``part / whole`` in percent, from the disclosed counts; empty when suppressed."""
        top, bottom = self.value(part), self.value(whole)
        if top is None or bottom is None or bottom <= 0:
            return ""
        return f"{100 * top / bottom:.{1 if self.active else digits}f}%"

    def column(self, frame: pd.DataFrame, col: str) -> pd.Series:
        """A column of counts, disclosed (text, marker where suppressed)."""
        if not self.active:
            return frame[col]
        out = self.frame(pd.DataFrame({"n": frame[col].astype(int).to_numpy()}))["n"]
        return pd.Series(out.to_numpy(), index=frame.index)


def _ceil_to(x: float, base: int) -> int:
    return int(math.ceil(float(x) / base) * base)


def render_model_card(
    report: RiskModelResults,
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
    disclose: Disclose | None = None,
    policy: DisclosurePolicy | None = None,
) -> str:
    """Markdown text of the model card.

    Parameters
    ----------
    report : RiskModelResults
        A :class:`~phm_eval.risk.artefacts.RiskModelReport`, from
        :func:`phm_eval.risk.develop.develop_risk_model`.
    title, intended_use, data_source, setting, outcome_definition, eligibility : str
        Free text for the corresponding TRIPOD+AI items.
    figures : mapping, optional
        Figure key (``calibration``, ``roc``, ``decision_curve``, ``coefficients``,
        ``feature_importance``, ``calibration_by_<column>``) to a path relative to the card.
    limitations : sequence of str
        Added to the default limitations.
    disclose : callable, optional
        Applied to every table with patient counts (subgroups, risk tiers, clusters) before
        it is rendered; it receives and returns a DataFrame with the same columns.  Counts
        in prose and in the missing-data table go through it as one-column tables named
        ``n``.
    policy : DisclosurePolicy, optional
        Disclosure rules for every count in the card; builds ``disclose`` with
        :func:`card_disclosure` when that is not given.  With ``policy`` or ``disclose``,
        percentages come from the disclosed counts and the Riley sample sizes are rounded up
        to a multiple of the rounding base.
    """
    counts = _Counts(policy, disclose)
    protect = counts.frame or (lambda frame: frame)
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
        f"{eligibility} Development sample: {counts.text(report.n)} patients, "
        f"{counts.text(report.events)} with the outcome"
        + _brackets(counts.percent(report.events, report.n)) + ".",
    ]
    if report.temporal is not None:
        v = report.temporal.validation.metrics
        lines.append(
            f"Temporal validation sample: {counts.text(v['n'])} patients, "
            f"{counts.text(v['events'])} with the outcome"
            + _brackets(counts.percent(v["events"], v["n"])) + "."
        )
    if counts.active:
        lines += ["", "Counts in this card are disclosure-controlled"
                  + (f": {policy.describe()[0].lower()}{policy.describe()[1:]}"
                     if policy is not None else ".")]
    lines += ["", "## Outcome", "", outcome_definition, "", "## Predictors", ""]
    sets = report.feature_sets or {
        "numeric": list(cfg.numeric_features),
        "spline": list(cfg.spline_features),
        "categorical": list(cfg.categorical_features),
        "binary": [] if cfg.binary_features == "auto" else list(cfg.binary_features),
    }
    continuous = [c for c in sets["numeric"] if c not in sets["spline"]]
    binary = sets["binary"]
    def named(columns: list[str]) -> str:
        return ", ".join(label("covariate", c) for c in columns) or "none"

    lines += [
        f"- Continuous/count: {named(continuous)}",
        f"- Modelled with a cubic spline: {named(sets['spline'])}",
        f"- Categorical: {named(sets['categorical'])}",
    ]
    lines += [f"- Binary flags: {named(binary)}", ""]
    ss = report.sample_size
    adequate = ss.is_adequate(report.n)
    prevalence = ss.prevalence
    criteria = ss.summary()
    base = policy.base if policy is not None else 5
    if counts.active:
        # The outcome proportion from the disclosed counts, and the Riley sizes rounded up,
        # so that nothing in this section gives the exact number of patients or events.
        n_shown, events_shown = counts.value(report.n), counts.value(report.events)
        prevalence = events_shown / n_shown if n_shown and events_shown else float("nan")
        criteria = criteria.assign(
            n=[_ceil_to(x, base) for x in criteria["n"]],
            events=[_ceil_to(x, base) for x in criteria["events"]],
        )
    lines += [
        "## Sample size",
        "",
        f"Candidate parameters: {report.n_parameters}. Minimum sample size by the criteria of "
        f"Riley et al. (BMJ 2020;368:m441), assuming Cox-Snell R2 = {ss.r2_cs:.3f} "
        f"({ss.r2_source}) and outcome proportion {_fmt(prevalence)}"
        + (f" (sample sizes rounded up to a multiple of {base})" if counts.active else "")
        + ":",
        "",
        _table(
            criteria,
            {"criterion": "Criterion", "n": "Required n", "events": "Required events",
             "epp": "Events per parameter"},
            digits=1,
        ),
        "",
        f"The development sample ({counts.text(report.n)}) "
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
            _missing_table(report.missing, report.n, counts),
            {"feature": "Predictor", "n_missing": "Missing", "percent_missing": "%"},
            digits=1,
        )
        if (report.missing["n_missing"] > 0).any()
        else "No predictor has missing values.",
        "",
        "## Model",
        "",
        f"Type: `{cfg.model}`. Options: {dict(cfg.model_options) or 'defaults'}. "
        f"Random seed {cfg.seed}.",
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
                "calibration_in_the_large": "Calibration-in-the-large",
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
            "### Internal-external cross-validation by "
            + {"pcn_id": "PCN", "practice_id": "practice"}.get(
                report.iecv.cluster, label("covariate", report.iecv.cluster).lower()),
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
                    "calibration_in_the_large": "Calibration-in-the-large",
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
        f"{m['oe_ratio']:.3f}; from the loess calibration curve, the absolute difference "
        f"between predicted and observed risk is at most {_fmt(m['emax'])} (Emax), "
        f"{_fmt(m['e90'])} or less for 90% of patients (E90) and {_fmt(m['eavg'])} on "
        "average (Eavg).",
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
                "flag_rate": "Proportion flagged",
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
                "ppv": "Positive predictive value",
                "lift": "Lift (times the average risk)",
            },
        ),
        "",
        "## Performance by subgroup",
        "",
    ]
    if len(main.subgroups):
        lines += [
            _table(
                _subgroup_words(protect(main.subgroups)),
                {
                    "variable": "Variable",
                    "group": "Group",
                    "n": "n",
                    "events": "Events",
                    "c_statistic": "c",
                    "oe_ratio": "O/E",
                    "calibration_in_the_large": "Calibration-in-the-large",
                    "calibration_slope": "Slope",
                },
            ),
            "",
        ]
        for key in sorted(figures):
            if key.startswith("calibration_by_"):
                variable = label("subgroup_variable", key[len("calibration_by_"):]).lower()
                lines += _figure(figures, key, f"Calibration by {variable}")
    else:
        lines += ["No subgroup columns were available.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {text}" for text in (*DEFAULT_LIMITATIONS, *limitations)]
    if not adequate:
        lines.append("- The development sample is smaller than the Riley et al. minimum.")
    lines.append("")
    return "\n".join(lines)


def _brackets(text: str) -> str:
    return f" ({text})" if text else ""


def _missing_table(missing: pd.DataFrame, n: int, counts: _Counts) -> pd.DataFrame:
    """Predictors with missing values: counts disclosed, percentages from disclosed counts."""
    frame = missing[missing["n_missing"] > 0].copy()
    if not counts.active or frame.empty:
        return frame
    total = counts.value(n)
    shown = counts.column(frame, "n_missing")
    values = pd.to_numeric(shown.astype(str).str.replace(",", ""), errors="coerce")
    frame["n_missing"] = shown
    frame["percent_missing"] = [
        f"{100 * v / total:.1f}" if total and not np.isnan(v) else "*" for v in values
    ]
    return frame


def write_model_card(path: str | Path, report: RiskModelResults, **kwargs: Any) -> Path:
    """Write :func:`render_model_card` to ``path``; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_model_card(report, **kwargs), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# HTML

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)$")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".svg": "image/svg+xml", ".gif": "image/gif", ".webp": "image/webp"}


def _inline(text: str) -> str:
    """Escape text and render the card's inline Markdown: ``code`` and **bold**."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        out.append(part)
    return "".join(out)


def _image_src(src: str, image_dir: Path | None, embed: bool) -> str | None:
    """The ``src`` of an image: a data URI when embedded, else the path from ``image_dir``.

    Returns None for an embedded image whose file does not exist (it is then left out,
    never shown as a broken link).
    """
    if re.match(r"^(data:|https?:)", src):
        return src
    path = Path(src) if image_dir is None else Path(image_dir) / src
    if not embed:
        return path.as_posix()
    if not path.is_file():
        return None
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _subgroup_words(frame: pd.DataFrame) -> pd.DataFrame:
    """Subgroup variables and values as a reader says them ("Sex", "Female"), not as columns."""
    out = frame.copy()
    if "variable" in out.columns:
        out["variable"] = out["variable"].map(lambda v: label("subgroup_variable", v))
    if "group" in out.columns:
        out["group"] = out["group"].map(
            lambda v: (lambda t: t[:1].upper() + t[1:])(label("value", v)))
    return out


def model_card_html(
    markdown: str,
    *,
    image_dir: str | Path | None = None,
    embed: bool = True,
    heading_offset: int = 1,
) -> str:
    """The model card as an HTML fragment, with its figures, for embedding in a report.

    Renders the Markdown that :func:`render_model_card` writes: headings, paragraphs, bullet
    lists, pipe tables (the first row is the header), images on their own line (as
    ``<figure>`` with the alt text as caption), ``code`` and **bold**.  All text is
    HTML-escaped.  Counts are rendered exactly as in the Markdown, so a card rendered with
    disclosure control stays disclosure-controlled.

    Parameters
    ----------
    markdown : str
        The card's Markdown (e.g. the text of ``risk/model_card.md``).
    image_dir : path, optional
        The folder the card's image links are relative to (the card's folder).
    embed : bool, default True
        Embed images as ``data:`` URIs, so the report stays one self-contained file; images
        whose files are missing are left out.  With False, ``src`` is the path from
        ``image_dir``.
    heading_offset : int, default 1
        Added to every heading level (the card's ``#`` title becomes ``<h2>`` with 1), so
        the card nests under the report's own headings; levels stop at 6.

    Returns
    -------
    str
        An HTML fragment wrapped in ``<div class="model-card">``.
    """
    folder = Path(image_dir) if image_dir is not None else None
    out: list[str] = ['<div class="model-card">']
    paragraph: list[str] = []
    items: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            head, *body = table
            cells = "".join(f'<th scope="col">{_inline(c)}</th>' for c in head)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body
            )
            out.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>")
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        image = _IMAGE.match(stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = min(6, len(heading.group(1)) + max(0, heading_offset))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image:
            flush()
            src = _image_src(image.group("src"), folder, embed)
            if src is not None:
                alt = html.escape(image.group("alt"))
                out.append(f'<figure><img src="{html.escape(src)}" alt="{alt}">'
                           f"<figcaption>{alt}</figcaption></figure>")
        elif stripped.startswith("|") and stripped.count("|") >= 2:
            if paragraph or items:
                flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                table.append(cells)
        elif re.match(r"^[-*]\s+", stripped):
            if paragraph or table:
                flush()
            items.append(re.sub(r"^[-*]\s+", "", stripped))
        else:
            if items or table:
                flush()
            paragraph.append(stripped)
    flush()
    out.append("</div>")
    return "\n".join(out)
