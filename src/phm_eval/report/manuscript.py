"""The manuscript: a STROBE/TRIPOD-shaped paper compiled with Typst from a results folder.

The Typst source (``manuscript/manuscript.typ`` in the project) reads the
results' JSON, CSV and PNG files itself.  Typst cannot ask whether a file
exists, so :func:`build_manuscript` first copies the outputs the paper uses
into a build folder and writes ``report.json`` beside them, listing which are
available and holding the wording shared with the HTML report (the headline,
the disclosed flow table, the methods summary).  A CSV that fails the
disclosure check is neither copied nor shown.  The paths reach Typst through
``sys.inputs`` (``data`` and ``results``).

The manuscript's own words (the Methods, the participants, the Discussion, the abstract's
Methods and Conclusions, the STROBE/RECORD and TRIPOD+AI checklist and the numbered
references) are built by :mod:`.manuscript_text` from the run's record and placed in
``report.json`` under ``text``, ``checklist`` and ``references``.  Long tables and secondary
figures (:data:`SUPPLEMENT_TABLES`, :data:`SUPPLEMENT_FIGURES`) go to a supplement after the
references, labelled "Table S2", "Figure S1"... in ``supplement_labels``, so that the main text
stays within about ten pages whatever the size of the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import outputs
from ..disclosure import DisclosurePolicy
from ..errors import PhmEvalError
from ..jsonio import read_json, write_json
from ..paths import MANUSCRIPT_DIR
from . import blocks as b
from . import manuscript_text as mt
from .context import build_context, readable_time
from .effects import read_effects
from .results import FIGURES, ResultsFolder

logger = logging.getLogger(__name__)

#: The Typst source shipped with the project.
MANUSCRIPT_SOURCE = MANUSCRIPT_DIR / "manuscript.typ"

#: Outputs the manuscript reads (besides the figures in :data:`FIGURES`).
MANUSCRIPT_DATA = (
    outputs.MANIFEST,
    outputs.POPULATION_PYRAMID,
    outputs.LTC_PREVALENCE,
    outputs.EMERGENCY_ADMISSION_RATES,
    outputs.EFI_SUMMARY,
    outputs.RISK_METRICS,
    outputs.RISK_SUBGROUP_METRICS,
    outputs.GRID_3X3,
    outputs.CORE20PLUS5_REACH,
    outputs.DES_METRICS,
    outputs.EFFECTS,
    outputs.RTM,
    outputs.BALANCE,
    outputs.PRETREND,
)


def _texts(section: Mapping[str, Any] | None, kinds: tuple[str, ...] = ("p",)) -> list[str]:
    """The section's paragraphs; a list that follows a paragraph (the report's bullets) is
    joined to it as sentences, so that no paragraph ends on a colon with nothing after it."""
    if section is None:
        return []
    out: list[str] = []
    for blk in section["blocks"]:
        if blk["kind"] in kinds:
            out.append(blk["text"])
        elif blk["kind"] == "list" and out and out[-1].rstrip().endswith(":"):
            out[-1] = out[-1].rstrip() + " " + " ".join(
                item if item.rstrip().endswith(".") else item + "." for item in blk["items"])
    return out


def _tables(sections: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report's table of each CSV it shows (labels, formatting, columns dropped), by
    source path: the manuscript shows the same rows rather than the raw file."""
    found: dict[str, dict[str, Any]] = {}

    def walk(blocks: list[Mapping[str, Any]]) -> None:
        for blk in blocks:
            if blk["kind"] == "details":
                walk(blk["blocks"])
            elif (blk["kind"] == "table" and str(blk.get("source") or "").endswith(".csv")
                    and blk["source"] not in found):
                found[blk["source"]] = {k: blk[k] for k in ("columns", "rows", "notes",
                                                            "numeric")}

    for section in sections:
        walk(section["blocks"])
    return found


def _first_table(section: Mapping[str, Any] | None, source: str) -> dict[str, Any] | None:
    if section is None:
        return None
    for blk in section["blocks"]:
        if blk["kind"] == "table" and blk.get("source") == source:
            return {k: blk[k] for k in ("caption", "columns", "rows", "notes", "numeric")}
    return None


#: The subgroup effects of :data:`~phm_eval.outputs.EFFECTS`, as the supplement names them
#: (``manuscript.typ`` too).
EFFECTS_SUBGROUPS = f"{outputs.EFFECTS}#subgroups"

#: Long tables and secondary figures: shown in the supplement, after the references, in this
#: order (a table path, ``evaluate/effects.json#subgroups`` for the subgroup effects, or a
#: figure).  The main text keeps what a reader needs to judge the result.
SUPPLEMENT_TABLES: tuple[tuple[str, str], ...] = (
    (outputs.POPULATION_PYRAMID, "Registered patients by age band and sex."),
    (outputs.LTC_PREVALENCE, "Recorded prevalence of long-term conditions by age band "
     "and deprivation (IMD quintile)."),
    (outputs.EMERGENCY_ADMISSION_RATES, "Emergency admissions per 1,000 person-years by "
     "financial year and age band."),
    (outputs.RISK_SUBGROUP_METRICS, "Risk model performance by sex, age band and deprivation."),
    (outputs.DES_METRICS, "Network Contract DES personalised-care activity per 1,000 "
     "registered patients against the specification's targets."),
    (outputs.CORE20PLUS5_REACH, "Reach of the programme in Core20PLUS5 groups: each "
     "group's share of the eligible and of the enrolled, and its enrolment rate."),
    (outputs.BALANCE, "Balance of characteristics before and after matching "
     "(standardised mean differences)."),
    (EFFECTS_SUBGROUPS, "Effect on emergency admissions by subgroup."),
    (mt.METHODS_RECORD, "Each estimate's method, standard errors and any change from the "
     "planned method, exactly as the run recorded them."),
)
SUPPLEMENT_FIGURES: tuple[str, ...] = (
    outputs.POPULATION_PYRAMID_PNG,
    outputs.EMERGENCY_ADMISSION_RATES_PNG,
    outputs.EFI_DISTRIBUTION_PNG,
    outputs.ROC_PNG,
    outputs.DECISION_CURVE_PNG,
    outputs.GRID_3X3_PNG,
    outputs.DES_FUNNEL_PNG,
    outputs.RTM_PNG,
    outputs.CIF_PNG,
    outputs.LOVE_PLOT_PNG,
)


def _pretrend(results: ResultsFolder, available: Any) -> Any:
    """The pre-trend test the paper discusses: the population-level design's when it was made
    (informative: nothing is matched on the outcome), else the matched design's."""
    if results.has(outputs.ITT_PRETREND):
        itt = results.json(outputs.ITT_PRETREND)
        if isinstance(itt, Mapping) and itt.get("p_value") is not None:
            return itt
    return results.json(outputs.PRETREND) if outputs.PRETREND in available \
        else None


def _frame(results: ResultsFolder, relative: str, available: list[str]) -> pd.DataFrame | None:
    return results.csv(relative) if relative in available else None


def _supplement(available: list[str], subgroups: bool) -> tuple[list[dict[str, Any]],
                                                                  dict[str, str]]:
    """The supplement's items in order, with labels ("Table S2") for those available."""
    items: list[dict[str, Any]] = [{"kind": "checklist", "path": "checklist",
                                    "caption": "Reporting checklist: STROBE with its RECORD "
                                    "extension, and TRIPOD+AI, with where each item is "
                                    "reported.", "label": "Table S1", "available": True}]
    labels = {"checklist": "Table S1"}
    n_tables, n_figures = 1, 0
    for path, caption in SUPPLEMENT_TABLES:
        present = (subgroups if path == EFFECTS_SUBGROUPS
                   else outputs.EFFECTS in available if path == mt.METHODS_RECORD
                   else path in available)
        item = {"kind": "table", "path": path, "caption": caption, "available": present,
                "label": None}
        if present:
            n_tables += 1
            item["label"] = labels[path] = f"Table S{n_tables}"
        items.append(item)
    for path in SUPPLEMENT_FIGURES:
        item = {"kind": "figure", "path": path, "caption": FIGURES[path],
                "available": path in available, "label": None}
        if path in available:
            n_figures += 1
            item["label"] = labels[path] = f"Figure S{n_figures}"
        items.append(item)
    return items, labels


def manuscript_data(results_dir: str | os.PathLike[str],
                    config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``report.json`` holds for the Typst source: availability, shared wording, and the
    manuscript's own text built from the run's record (:mod:`.manuscript_text`)."""
    results = ResultsFolder(Path(results_dir))
    if config is None:
        manifest = results.json(outputs.MANIFEST) if results.has(outputs.MANIFEST) else None
        config = (manifest or {}).get("config") or {}
    context = build_context(results.root, config)
    sections = {s["id"]: s for s in context["sections"]}
    policy = DisclosurePolicy.from_config(context["disclosure_policy"])
    available, withheld = [], {}
    for relative in (*MANUSCRIPT_DATA, *FIGURES):
        if not results.has(relative):
            continue
        if relative.endswith(".csv"):
            problems = b.disclosure_problems(results, relative, policy)
            if problems:
                withheld[relative] = f"{len(problems)} disclosure problem(s)"
                continue
        available.append(relative)
    robustness = sections.get("robustness")
    pretrend = next((blk for blk in (robustness or {}).get("blocks", [])
                     if blk["kind"] == "callout"), None)
    methods = sections.get("methods")

    raw = results.json(outputs.EFFECTS) if outputs.EFFECTS in available else None
    records = [dict(r) for r in raw] if isinstance(raw, list) else []
    effects = read_effects(records) if records else []
    run = mt.RunRecord(
        config=config,
        manifest=results.json(outputs.MANIFEST) if outputs.MANIFEST in available else None,
        records=records, effects=effects,
        metrics=results.json(outputs.RISK_METRICS) if outputs.RISK_METRICS in available else None,
        pretrend=_pretrend(results, available),
        truth=(results.json(outputs.TRUTH)
               if results.has(outputs.TRUTH) else None),
        rtm=_frame(results, outputs.RTM, available),
        balance=_frame(results, outputs.BALANCE, available),
        available=set(available) | ({outputs.FLOW}
                                    if results.has(outputs.FLOW) else set()),
        policy=policy, synthetic=bool(context["synthetic"]), headline=context["headline"],
        subgroup_metrics=_frame(results, outputs.RISK_SUBGROUP_METRICS, available),
    )
    supplement, labels = _supplement(available, bool(run.subgroups()))
    run.supplement = labels
    text: dict[str, Any] = {
        "introduction": mt.introduction(run),
        "methods": [{"paragraphs": [], "items": [], "after": []} | s
                    for s in mt.methods_sections(run)],
        "participants": mt.participants_text(run),
        "not_estimable": mt.not_estimable_text(run),
        "subgroups": mt.subgroup_text(run),
        "discussion": [{"paragraphs": [], "items": [], "after": []} | s
                       for s in mt.discussion_sections(run)],
        "abstract_methods": mt.abstract_methods(run),
        "abstract_conclusion": mt.abstract_conclusion(run),
    }
    numbers = mt.number_citations(mt.strings(text))
    text = mt.apply_citations(text, numbers)
    references = [{"n": n, "key": key, "text": mt.REFERENCES[key][0],
                   "journal": mt.REFERENCES[key][1], "details": mt.REFERENCES[key][2]}
                  for key, n in sorted(numbers.items(), key=lambda kv: kv[1])]
    checklist = mt.checklist(run, [s["id"] for s in text["methods"]],
                             [s["id"] for s in text["discussion"]])
    return {
        "title": context["title"],
        "programme": context["programme"],
        "period": context["period"],
        "synthetic": context["synthetic"],
        "generated": context["generated"],
        "finished_at": context["finished_at"],
        "headline": context["headline"],
        "available": available,
        "withheld": withheld,
        "labels": b.COLUMN_LABELS,
        "figures": {k: v for k, v in FIGURES.items()},
        "flow": _first_table(sections.get("data-quality"), outputs.FLOW),
        "methods": (methods["blocks"][0]["items"] if methods else []),
        "robustness_text": _texts(robustness),
        "pretrend": ({"text": pretrend["text"], "tone": pretrend["tone"]}
                     if pretrend is not None else None),
        "risk_text": _texts(sections.get("risk-model")),
        "des_text": _texts(sections.get("des")),
        "tables": _tables(context["sections"]),
        "run_times": {k: readable_time((run.manifest or {}).get(f"{k}_at")) or "not recorded"
                      for k in ("started", "finished")},
        "truth": _first_table(sections.get("truth"), outputs.TRUTH),
        "subgroups": _first_table(sections.get("who-benefits"), outputs.EFFECTS),
        # the same rows as the HTML report: method actually used, "not estimable: <reason>"
        "effects_table": _first_table(robustness, outputs.EFFECTS),
        "effects_rows": mt.effects_rows(run),
        "methods_record": {"caption": "Methods as recorded by the run.",
                           "columns": ["Estimate", "Method as recorded", "Standard errors",
                                       "Change from the planned method"],
                           "rows": mt.methods_record_rows(run), "notes": [],
                           "numeric": [False] * 4},
        "risk_table": _first_table(sections.get("risk-model"), outputs.RISK_METRICS),
        "disclosure": context["disclosure"],
        "unit_cost": context["unit_cost"],
        "text": text,
        "references": references,
        "checklist": checklist,
        "supplement": supplement,
        "supplement_labels": labels,
    }


def _timestamp(generated: str | None) -> int | None:
    if not generated:
        return None
    try:
        moment = dt.datetime.fromisoformat(generated.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def build_manuscript(
    results_dir: str | os.PathLike[str],
    out_pdf: str | os.PathLike[str] | None = None,
    config: Mapping[str, Any] | None = None,
    source: str | os.PathLike[str] | None = None,
    keep_build: str | os.PathLike[str] | None = None,
) -> Path:
    """Compile the manuscript PDF from a results folder with Typst.

    Parameters
    ----------
    results_dir : path
        The workflow's ``results/`` folder; every output is optional.
    out_pdf : path, optional
        Defaults to ``<results_dir>/manuscript/manuscript.pdf``.
    config : mapping, optional
        The run's configuration (as for
        :func:`~phm_eval.report.render_report`); defaults to the one in
        ``manifest.json``.
    source : path, optional
        A Typst source to use instead of the project's ``manuscript/manuscript.typ``.
        It reads ``sys.inputs.data`` (the ``report.json`` path) and
        ``sys.inputs.results`` (the folder of copied outputs, relative to the
        build root).
    keep_build : path, optional
        Copy the build folder (source, ``report.json``, copied outputs) here,
        for editing the paper by hand or running ``typst watch``.

    Returns
    -------
    Path
        The PDF written.  Its creation date is the run's finish time from the
        manifest, so the same results give the same PDF.

    Raises
    ------
    PhmEvalError
        If the ``typst`` package is missing or the source does not compile.
    """
    try:
        import typst
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PhmEvalError(
            "building the manuscript needs the 'typst' package: pip install 'phm-eval[report]'"
        ) from exc
    results_dir = Path(results_dir)
    out = Path(out_pdf) if out_pdf is not None else results_dir / "manuscript" / "manuscript.pdf"
    source = Path(source) if source is not None else MANUSCRIPT_SOURCE
    if not source.is_file():
        raise PhmEvalError(f"manuscript source not found: {source}")
    data = manuscript_data(results_dir, config)

    with tempfile.TemporaryDirectory(prefix="phm-manuscript-") as tmp:
        root = Path(tmp)
        shutil.copy2(source, root / "manuscript.typ")
        for extra in source.parent.glob("*.typ"):
            if extra.name != source.name:
                shutil.copy2(extra, root / extra.name)
        for relative in data["available"]:
            target = root / "results" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if relative.endswith(".json"):
                # Typst's JSON reader is strict: NaN (older runs) goes in as null, and a file
                # that is not JSON at all stops here with its name (InputError).
                write_json(target, read_json(results_dir / relative, non_finite="warn"))
            else:
                shutil.copy2(results_dir / relative, target)
        write_json(root / "report.json", data)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            typst.compile(
                str(root / "manuscript.typ"),
                output=str(out),
                root=str(root),
                sys_inputs={"data": "/report.json", "results": "/results"},
                ignore_system_fonts=True,
                timestamp=_timestamp(data["finished_at"]),
            )
        except Exception as exc:  # typst raises its own error types
            raise PhmEvalError(f"the manuscript did not compile: {exc}") from exc
        if keep_build is not None:
            shutil.copytree(root, Path(keep_build), dirs_exist_ok=True)
    logger.info("wrote %s (%d outputs used, %d withheld)", out, len(data["available"]),
                len(data["withheld"]))
    return out
