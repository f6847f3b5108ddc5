"""Building blocks of a report section: paragraphs, tables and figures as plain dictionaries.

A section is a list of blocks; each block is a JSON-ready ``dict`` with a
``kind`` (``"p"``, ``"callout"``, ``"list"``, ``"table"``, ``"figure"``,
``"details"``, ``"missing"``).  The HTML templates lay them out and the
manuscript reads the same values, so both say the same thing.

Tables read from stage outputs pass the disclosure check again before they are
shown (:func:`table_from_csv`); one that fails is withheld with the reason,
never shown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..disclosure import DisclosurePolicy, check_report_folder
from ..labels import label, words
from .results import FIGURES, ResultsFolder, png_description

logger = logging.getLogger(__name__)

NOT_AVAILABLE = "Not available in this run"

#: Column headings for the column names stages write.  Headings keep a word that
#: tells a disclosure checker what the column is ("per", "ratio", "CI"...), since
#: the report's own tables are checked from their headings alone.
COLUMN_LABELS: dict[str, str] = {
    "n": "Patients",
    "events": "Events",
    "count": "Count",
    "F": "Female",
    "M": "Male",
    "I": "Indeterminate",
    "U": "Unknown",
    "age_band": "Age band",
    "age_group": "Age group",
    "financial_year": "Financial year",
    "condition": "Condition",
    "n_with_condition": "Patients with the condition",
    "n_registered": "Registered patients",
    "n_enrolled": "Enrolled patients",
    "prevalence_percent": "Prevalence (per cent)",
    "percent": "Per cent",
    "emergency_admissions": "Emergency admissions",
    "person_years": "Person-years",
    "per_1000_person_years": "Per 1,000 person-years",
    "per_1000": "Per 1,000 patients",
    "enrolled_per_1000": "Enrolled per 1,000 registered",
    "target_low": "Target from (per 1,000)",
    "target_high": "Target up to (per 1,000)",
    "efi_category": "eFI category",
    "subgroup": "Subgroup",
    "level": "Group",
    "c_statistic": "c-statistic",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
    "oe_ratio": "O/E ratio",
    "brier": "Brier score",
    "generally_well": "Generally well",
    "long_term_conditions": "Long-term conditions",
    "complex_needs": "Complex needs",
    "comparison": "Comparison",
    "before_per_1000": "Before (per 1,000 a year)",
    "after_per_1000": "After (per 1,000 a year)",
    "change_per_1000": "Change (per 1,000 a year)",
    "estimate": "Estimate",
    "ci_low": "95% CI from",
    "ci_high": "95% CI to",
    "covariate": "Characteristic",
    "smd_before": "SMD before matching",
    "smd_after": "SMD after matching",
    "metric": "Measure",
    "group": "Group",
    "term": "Characteristic",
    "mean_treated_before": "Mean, enrolled (before matching)",
    "mean_control_before": "Mean, comparators (before matching)",
    "mean_treated_after": "Mean, enrolled (after matching)",
    "mean_control_after": "Mean, comparators (after matching)",
    "var_ratio_before": "Variance ratio before matching",
    "var_ratio_after": "Variance ratio after matching",
    "ecdf_mean_before": "Mean eCDF difference before matching",
    "ecdf_mean_after": "Mean eCDF difference after matching",
    "std_pair_dist_after": "Standardised pair distance after matching",
    "activity": "Activity",
    "variable": "Characteristic",
    "row": "Group",
    "kind": "Kind of group",
    "denominator": "Percentage of",
    "n_patients": "Patients",
    "population": "Population",
    "percent_of_population": "Per cent of population",
    "n_core20": "Patients in Core20 areas",
    "percent_core20": "Per cent in Core20 areas",
    "rate_per_1000": "Rate per 1,000",
    "deaths": "Deaths",
    "deaths_per_1000": "Deaths per 1,000",
    "n_activities": "Activities",
    "list_size": "Registered patients",
    "financial_year_label": "Financial year",
    "target_status": "Against target",
    "complete_year": "Whole year",
    "pcn_id": "PCN",
    "practice_id": "Practice",
    "period_start": "From",
    "period_end": "To",
    "n_eligible": "Eligible patients",
    "share_of_eligible_percent": "Share of the eligible (per cent)",
    "share_of_enrolled_percent": "Share of the enrolled (per cent)",
    "enrolment_per_1000": "Enrolled per 1,000 eligible",
    "risk_tier": "Risk tier",
    "need_group": "Need",
    "arm": "Group",
    "patients": "Patients",
    "admissions_before": "Emergency admissions before",
    "admissions_after": "Emergency admissions after",
    "rate_before_per_1000": "Before (per 1,000 a year)",
    "rate_after_per_1000": "After (per 1,000 a year)",
    "observed_risk": "Observed risk",
    "mean_predicted_risk": "Mean predicted risk",
    "c_lower": "c-statistic, 95% CI from",
    "c_upper": "c-statistic, 95% CI to",
    "calibration_in_the_large": "Calibration-in-the-large",
    "imd_quintile": "Deprivation quintile (IMD)",
    "imd_decile": "Deprivation decile (IMD)",
}

#: Columns whose values are machine names, and the kind of label each takes.
VALUE_LABELS: dict[str, str] = {
    "condition": "condition",
    "activity": "des_activity",
    "term": "covariate",
    "covariate": "covariate",
    "row": "core20",
    "subgroup": "subgroup",
    "variable": "subgroup_variable",
    "efi_category": "value",
    "age_group": "value",
    "need_group": "value",
    "arm": "value",
    "group": "value",
}

_FLOAT = re.compile(r"^-?\d+\.\d{4,}$")
_BIG_INT = re.compile(r"^-?\d{4,}$")
#: Words in a column name that mean its whole numbers are labels, not quantities.
_LABEL_WORDS = ("year", "date", "code", "id", "decile", "quintile", "seed", "version")


def _thousands(column: str, values: pd.Series) -> pd.Series:
    """Thousands separators for whole numbers, except in columns of years, codes and the like."""
    if any(word in str(column).lower() for word in _LABEL_WORDS):
        return values
    return values.map(lambda v: f"{int(v):,}" if _BIG_INT.match(v) else v)


def column_label(name: str) -> str:
    """A heading for a column name: from :data:`COLUMN_LABELS`, else ``snake_case`` in words."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    return words(name)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if _FLOAT.match(text):
        text = f"{float(text):.3f}"
    if re.fullmatch(r"-\d[\d,.]*", text):
        return "\u2212" + text[1:]  # a true minus sign reads better than a hyphen
    return text.replace("_", " ") if re.fullmatch(r"[a-z_]+", text) else text


def paragraph(text: str) -> dict[str, Any]:
    return {"kind": "p", "text": text}


def callout(text: str, tone: str = "note", title: str | None = None) -> dict[str, Any]:
    """A highlighted paragraph; ``tone`` is ``"note"``, ``"good"``, ``"neutral"`` or ``"warning"``."""
    return {"kind": "callout", "text": text, "tone": tone, "title": title}


def bullet_list(items: Sequence[str], ordered: bool = False, code: bool = False
                ) -> dict[str, Any]:
    """A list; ``code`` shows each item as code (file names, not prose)."""
    return {"kind": "list", "items": list(items), "ordered": ordered, "code": code}


def missing(what: str, files: Sequence[str]) -> dict[str, Any]:
    """A visible gap: what is not available and which files would provide it."""
    return {"kind": "missing", "text": f"{what}: {NOT_AVAILABLE.lower()}.", "files": list(files)}


def table(
    caption: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    source: str | None = None,
    notes: Sequence[str] = (),
    row_headers: bool = True,
    numeric: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """A table block; ``row_headers`` marks the first column as row headings."""
    rows = [[_cell(v) for v in row] for row in rows]
    if numeric is None:
        numeric = [
            bool(rows) and all(re.fullmatch(r"[-−]?[\d,.]+|\*|", r[j] or "") for r in rows)
            for j in range(len(columns))
        ]
    return {
        "kind": "table",
        "caption": caption,
        "columns": list(columns),
        "rows": rows,
        "numeric": list(numeric),
        "source": source,
        "notes": list(notes),
        "row_headers": row_headers,
    }


def details(summary: str, blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Blocks folded away under a summary line (``<details>`` in HTML)."""
    return {"kind": "details", "summary": summary, "blocks": list(blocks)}


def preformatted(text: str, label: str) -> dict[str, Any]:
    return {"kind": "pre", "text": text, "label": label}


def html_fragment(html: str, label: str) -> dict[str, Any]:
    """Trusted HTML written by phm-eval itself (every text in it already escaped), e.g. the
    model card from :func:`phm_eval.risk.model_card.model_card_html`."""
    return {"kind": "html", "html": html, "label": label}


def facts(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Term-value pairs (``<dl>``), e.g. the key numbers on the first screen."""
    return {"kind": "facts", "items": [{"term": t, "value": v} for t, v in items]}


def label_values(frame: pd.DataFrame, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """Machine names in the value columns of ``frame`` replaced by their display labels.

    ``kinds`` maps column to label kind (:func:`phm_eval.labels.label`); defaults to
    :data:`VALUE_LABELS`.  A ``subgroup`` column of the risk model's tables holds variable
    names (``sex``, ``age_band``), so it is labelled as such when its values have no ``=``.
    """
    out = frame.copy()
    for column, kind in (kinds or VALUE_LABELS).items():
        if column not in out.columns:
            continue
        values = out[column].astype(str)
        if kind == "subgroup" and not values.str.contains("=").any():
            kind = "subgroup_variable"
        out[column] = values.map(lambda v, k=kind: _first_upper(label(k, v)) if v else v)
    return out


def _first_upper(text: str) -> str:
    """A table cell starts with a capital, as a heading does ("Female", "Older people")."""
    return text[:1].upper() + text[1:]


def disclosure_problems(results: ResultsFolder, relative: str,
                        policy: DisclosurePolicy) -> list[str]:
    """Errors the disclosure check finds in one output file (its ``.sdc.json`` roles apply)."""
    path = results.root / relative
    problems = [v for v in check_report_folder(path, policy) if v.severity == "error"]
    return [str(v) for v in problems]


def table_from_csv(
    results: ResultsFolder,
    relative: str,
    caption: str,
    policy: DisclosurePolicy,
    notes: Sequence[str] = (),
    frame: pd.DataFrame | None = None,
    drop: Sequence[str] = (),
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A table block from a disclosure-controlled CSV, or a block saying why it is not shown.

    Parameters
    ----------
    results : ResultsFolder
    relative : str
        Path of the CSV inside the results folder.
    caption : str
    policy : DisclosurePolicy
        The CSV is checked against it; a table that breaks it is withheld.
    notes : sequence of str
        Footnotes.
    frame : DataFrame, optional
        The table to show instead of the file's contents (e.g. with a derived
        column); the file is still the one checked.
    drop : sequence of str
        Columns meant for machines, not readers (e.g. ``kind``).
    labels : mapping, optional
        Column to label kind for columns of machine names; defaults to
        :data:`VALUE_LABELS` (conditions, DES activities, covariates, Core20PLUS5 rows...).
    """
    data = results.csv(relative) if frame is None else frame
    if data is None:
        return missing(caption.rstrip("."), [relative])
    problems = disclosure_problems(results, relative, policy)
    if problems:
        logger.warning("withholding %s from the report: %s", relative, "; ".join(problems))
        return {
            "kind": "withheld",
            "caption": caption,
            "source": relative,
            "text": f"{caption.rstrip('.')}: withheld because {relative} fails the disclosure "
            f"check ({len(problems)} problem(s); run phm-eval check-outputs for details).",
        }
    data = data.drop(columns=[c for c in drop if c in data.columns]).astype(str)
    data = label_values(data, labels)
    data = data.apply(lambda col: _thousands(col.name, col))
    columns = [column_label(c) for c in data.columns]
    return table(caption, columns, data.to_numpy().tolist(), source=relative, notes=notes)


def figure(results: ResultsFolder, relative: str, caption: str | None = None) -> dict[str, Any]:
    """A figure block (the image is embedded by the renderer), or a gap if the PNG is missing."""
    caption = caption or FIGURES.get(relative, relative)
    path = results.path(relative)
    if path is None:
        return missing(f"Figure: {caption.rstrip('.')}", [relative])
    alt = png_description(path) or caption
    return {"kind": "figure", "path": relative, "caption": caption, "alt": alt}


def has_content(blocks: Sequence[dict[str, Any]]) -> bool:
    """True when at least one block shows results (not only gaps)."""
    for block in blocks:
        if block["kind"] in ("table", "figure", "withheld"):
            return True
        if block["kind"] == "details" and has_content(block["blocks"]):
            return True
    return False
