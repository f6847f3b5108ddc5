"""Every file a run writes, named once, relative to the run's results folder.

The workflow's rule files (``workflow/rules/*.smk``, through ``common.smk``) declare their
outputs from these names, and the report, the manuscript and the command line read the
results through them, so a file cannot be renamed in one place and not the other
(``tests/test_outputs.py`` checks both directions).

Each name is a plain string, the path relative to the results folder (``config``'s
``results_dir``), e.g. ``EFFECTS == "evaluate/effects.json"``. Paths under ``internal/``
(:data:`INTERNAL`) hold patient-level or unrounded data that never leave the secure
environment; every other file may be released once it passes ``phm-eval check-outputs``.
:func:`declared` gives each path's record (:class:`Output`): the rule that writes it,
whether it is internal, and the condition under which it is written at all.

Sidecars written beside a disclosed table (``<name>.sdc.json``,
:data:`phm_eval.disclosure.tables.SIDECAR_SUFFIX`) and any other rendering saved beside a
figure are not listed: they follow from the table or figure they describe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: The folder under the results folder for files that never leave the secure environment.
INTERNAL = "internal"

#: Conditions under which a rule runs at all (:attr:`Output.when`).
WHEN_SYNTHETIC = "input.source is synthetic"
WHEN_DESIGN_CHECK = "evaluate.design_check.replicates > 0"


@dataclass(frozen=True)
class Output:
    """One declared output file of the workflow.

    Parameters
    ----------
    path : str
        Path relative to the results folder; may hold ``{wildcard}`` fields (see
        ``wildcards``).
    rule : str
        The workflow rule that writes it.
    when : str or None
        The configuration under which the rule runs (``None``: always).
    wildcards : mapping of str to tuple of str
        The values each ``{wildcard}`` of ``path`` takes.
    """

    path: str
    rule: str
    when: str | None = None
    wildcards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def internal(self) -> bool:
        """True for files under ``internal/``, which never leave the secure environment."""
        return self.path.startswith(f"{INTERNAL}/")

    def files(self) -> list[str]:
        """The concrete paths: ``path`` with every combination of its wildcards' values."""
        paths = [self.path]
        for name, values in self.wildcards.items():
            paths = [p.replace(f"{{{name}}}", value) for p in paths for value in values]
        return paths


_DECLARED: dict[str, Output] = {}


def _declare(path: str, rule: str, *, internal: bool = False, when: str | None = None,
             wildcards: Mapping[str, tuple[str, ...]] | None = None) -> str:
    full = f"{INTERNAL}/{path}" if internal else path
    if full in _DECLARED:
        raise ValueError(f"{full} is declared twice")
    _DECLARED[full] = Output(full, rule, when, dict(wildcards or {}))
    return full


# --------------------------------------------------------------------------- data
#: The input tables of the data contract, in the order the rules list them.
INPUT_TABLES = ("practices", "patients", "events", "admissions", "interventions", "rollout")

#: The synthetic population's folder (the input folder when ``input.source`` is synthetic).
SYNTHETIC_DIR = f"{INTERNAL}/synthetic"
#: The synthetic input tables, by table name.
SYNTHETIC_TABLES: Mapping[str, str] = MappingProxyType({
    table: _declare(f"synthetic/{table}.parquet", "simulate", internal=True,
                    when=WHEN_SYNTHETIC)
    for table in INPUT_TABLES
})
#: The known truth of the synthetic population (true effects, realised enrolment).
TRUTH = _declare("synthetic/truth/truth.json", "simulate", internal=True, when=WHEN_SYNTHETIC)

#: Records through each step of reading and validating the inputs.
FLOW = _declare("data/flow.csv", "ingest", internal=True)
#: Export quirks normalised on reading.
DATA_QUALITY = _declare("data/data_quality.csv", "ingest", internal=True)
#: The validated input tables staged as Parquet, by table name.
STAGED: Mapping[str, str] = MappingProxyType({
    table: _declare(f"data/{table}.parquet", "ingest", internal=True)
    for table in ("patients", "events", "admissions", "interventions", "practices", "rollout")
})
#: The folder of the staged tables (``check-outputs`` looks for patient identifiers there).
STAGED_DIR = f"{INTERNAL}/data"

# --------------------------------------------------------------------------- describe
POPULATION_PYRAMID = _declare("describe/population_pyramid.csv", "describe")
LTC_PREVALENCE = _declare("describe/ltc_prevalence.csv", "describe")
EMERGENCY_ADMISSION_RATES = _declare("describe/emergency_admission_rates.csv", "describe")
POPULATION_PYRAMID_PNG = _declare("describe/population_pyramid.png", "describe")
LTC_PREVALENCE_PNG = _declare("describe/ltc_prevalence.png", "describe")
EMERGENCY_ADMISSION_RATES_PNG = _declare("describe/emergency_admission_rates.png", "describe")

# --------------------------------------------------------------------------- frailty
FRAILTY = _declare("frailty/frailty.parquet", "frailty", internal=True)
FRAILTY_FLOW = _declare("frailty/frailty_flow.csv", "frailty", internal=True)
EFI_SUMMARY = _declare("frailty/efi_summary.csv", "frailty")
EFI_ADMISSIONS = _declare("frailty/efi_admissions.csv", "frailty")
EFI_DISTRIBUTION_PNG = _declare("frailty/efi_distribution.png", "frailty")

# --------------------------------------------------------------------------- risk
#: The feature sets of the risk model, one per index date.
FEATURE_SETS = ("development", "validation", "current")
#: A feature set (``{when}``: one of :data:`FEATURE_SETS`).
RISK_FEATURES = _declare("risk/features_{when}.parquet", "risk_features", internal=True,
                         wildcards={"when": FEATURE_SETS})
RISK_METRICS = _declare("risk/metrics.json", "risk_model")
RISK_SUBGROUP_METRICS = _declare("risk/subgroup_metrics.csv", "risk_model")
MODEL_CARD = _declare("risk/model_card.md", "risk_model")
CALIBRATION_PNG = _declare("risk/calibration.png", "risk_model")
ROC_PNG = _declare("risk/roc.png", "risk_model")
DECISION_CURVE_PNG = _declare("risk/decision_curve.png", "risk_model")
PREDICTIONS = _declare("risk/predictions.parquet", "risk_model", internal=True)
RISK_MODEL_REPORT = _declare("risk/risk_model_report.json", "risk_model", internal=True)

# --------------------------------------------------------------------------- evaluate
EFFECTS = _declare("evaluate/effects.json", "evaluate")
PRETREND = _declare("evaluate/pretrend.json", "evaluate")
RTM = _declare("evaluate/rtm.csv", "evaluate")
BALANCE = _declare("evaluate/balance.csv", "evaluate")
EVALUATE_FLOW = _declare("evaluate/flow.csv", "evaluate")
LOVE_PLOT_PNG = _declare("evaluate/love_plot.png", "evaluate")
KM_PNG = _declare("evaluate/km.png", "evaluate")
KM = _declare("evaluate/km.csv", "evaluate")
CIF_PNG = _declare("evaluate/cif.png", "evaluate")
CIF = _declare("evaluate/cif.csv", "evaluate")
FOREST_PNG = _declare("evaluate/forest.png", "evaluate")
RTM_PNG = _declare("evaluate/rtm.png", "evaluate")
EVENT_STUDY_PNG = _declare("evaluate/event_study.png", "evaluate")
ITT_EVENT_STUDY_PNG = _declare("evaluate/itt_event_study.png", "evaluate")
ITT_EVENT_STUDY = _declare("evaluate/itt_event_study.csv", "evaluate")
ITT_PRETREND = _declare("evaluate/itt_pretrend.json", "evaluate")
ITT_HONEST = _declare("evaluate/itt_honest.csv", "evaluate")
ANALYSED = _declare("evaluate/analysed.parquet", "evaluate", internal=True)
#: The population-level design's unit-month panel and settings, for its plasmode check.
ITT_PANEL = _declare("evaluate/itt_panel.parquet", "evaluate", internal=True)
ITT_DESIGN = _declare("evaluate/itt_design.json", "evaluate", internal=True)
DESIGN_CHECK = _declare("evaluate/design_check.json", "design_check", when=WHEN_DESIGN_CHECK)
DESIGN_CHECK_CSV = _declare("evaluate/design_check.csv", "design_check",
                            when=WHEN_DESIGN_CHECK)

# --------------------------------------------------------------------------- segment
GRID_3X3 = _declare("segment/grid_3x3.csv", "segment")
GRID_3X3_PNG = _declare("segment/grid_3x3.png", "segment")
RISK_TIERS = _declare("segment/risk_tiers.csv", "segment")
BRIDGES = _declare("segment/bridges.csv", "segment")
CORE20PLUS5 = _declare("segment/core20plus5.csv", "segment")
CORE20_ADMISSIONS = _declare("segment/core20_admissions.csv", "segment")
DES_METRICS = _declare("segment/des_metrics.csv", "segment")
DES_FUNNEL_PNG = _declare("segment/des_funnel.png", "segment")
CORE20PLUS5_REACH = _declare("segment/core20plus5_reach.csv", "segment")
SEGMENTS = _declare("segment/segments.parquet", "segment", internal=True)

# --------------------------------------------------------------------------- run record
#: Versions, configuration, input hashes, seed, commit and timings; written last.
MANIFEST = _declare("manifest.json", "manifest")
REPORT_HTML = _declare("report/index.html", "report")
MANUSCRIPT_PDF = _declare("manuscript/manuscript.pdf", "manuscript")

#: Each job's log, ``<job>.log`` (internal: a log may quote data).
LOGS_DIR = f"{INTERNAL}/logs"
#: Each job's time and memory, ``<job>.tsv``.
BENCHMARKS_DIR = "benchmarks"
#: Each job's DuckDB spill folder, ``<job>/``.
TMP_DIR = f"{INTERNAL}/tmp"
#: Ending of a failed job's record, written beside its log (:func:`failure_record`).
FAILURE_SUFFIX = ".failure.json"


def log(job: str) -> str:
    """The log of a job (a rule's name, with its wildcards as in ``risk_features_{when}``)."""
    return f"{LOGS_DIR}/{job}.log"


def benchmark(job: str) -> str:
    """The benchmark record (time, memory) of a job."""
    return f"{BENCHMARKS_DIR}/{job}.tsv"


def failure_record(log_path: str) -> str:
    """The failure record of the job whose log is ``log_path``: beside the log, so that every
    executor that keeps the log keeps the record (see
    :func:`phm_eval.workflow_support.run_stage`)."""
    stem = log_path[: -len(".log")] if log_path.endswith(".log") else log_path
    return stem + FAILURE_SUFFIX


# --------------------------------------------------------------------------- lookups
def declared() -> Mapping[str, Output]:
    """Every declared output, by path (with its ``{wildcards}``), in declaration order."""
    return MappingProxyType(_DECLARED)


def of_rule(rule: str) -> list[str]:
    """The paths a rule writes, in declaration order (wildcards left in)."""
    found = [o.path for o in _DECLARED.values() if o.rule == rule]
    if not found:
        raise KeyError(f"no output is declared for rule {rule!r}")
    return found


def all_files() -> Iterator[str]:
    """Every declared file, wildcards expanded."""
    for output in _DECLARED.values():
        yield from output.files()
