# Helpers shared by the rule files: the checked configuration, the run's results folder, the
# inputs every stage reads. A rule passes the configuration it reads as params, so changing a
# value reruns exactly the rules that read it (Snakemake's params rerun trigger).
import os
import sys

from phm_eval import outputs as out
from phm_eval.config import check_config, default_results_dir
from phm_eval.errors import ConfigError
from phm_eval.job_memory import job_memory_mb, population_millions
from phm_eval.outputs import INPUT_TABLES, SYNTHETIC_DIR, SYNTHETIC_TABLES, TRUTH
from phm_eval.paths import CONFIG_DIR, resolve_codelist_dir


def validate_config(cfg, schema_path):
    # A configuration run straight through Snakemake (not `phm-eval run`) may name no results
    # folder: the default configuration's is results/.
    cfg.setdefault("results_dir", default_results_dir(None))
    try:
        check_config(cfg, schema_path)
    except ConfigError as exc:
        sys.exit(f"phm-eval: {exc}")


validate_config(config, os.path.join(workflow.basedir, "schemas", "config.schema.yaml"))

def settings(section, without=()):
    """A config section as a rule's params, keys sorted at every level: Snakemake compares
    params by their repr, so the order keys are written in a file must not rerun anything.
    ``without`` leaves out keys another rule reads, so changing them does not rerun this one."""

    def canonical(value):
        if isinstance(value, dict):
            return {key: canonical(value[key]) for key in sorted(value)}
        if isinstance(value, list):
            return [canonical(item) for item in value]
        return value

    chosen = config[section] if section else config
    return canonical({k: v for k, v in chosen.items() if k not in without})


def design_check_outputs():
    """The plasmode power check's outputs, when it is on (evaluate.design_check.replicates)."""
    if (config["evaluate"].get("design_check") or {}).get("replicates", 0) > 0:
        return rule_outputs("design_check")
    return []


#: Memory each rule may use (MB), from the size of the population (phm_eval.job_memory: the
#: peaks measured by benchmarks/run_benchmarks.py plus a margin, at least 3,400 for the DuckDB
#: stages). `phm-eval run` caps the sum of jobs running side by side at the machine's memory
#: (or --memory); profiles override these per rule (set-resources).
MEM_MB = job_memory_mb(population_millions(config))


#: Everything this run writes goes under this folder (config key results_dir).
RESULTS = config["results_dir"].rstrip("/")


def R(relative):
    """A path inside this run's results folder. Every file a rule writes is named once, in
    phm_eval.outputs (as `out.EFFECTS`...), relative to the results folder; paths under
    internal/ hold patient-level and unrounded files that never leave the secure environment
    (everything else under the results folder may be released once it passes
    check-outputs)."""
    return f"{RESULTS}/{relative}"


def rule_outputs(rule):
    """The files phm_eval.outputs declares for a rule, inside this run's results folder."""
    return [R(path) for path in out.of_rule(rule)]


def LOG(job):
    """A job's log (internal: a log may quote data)."""
    return R(out.log(job))


def BENCHMARK(job):
    """A job's benchmark record (time and memory)."""
    return R(out.benchmark(job))


def STAGED(table):
    """An input table as the ingest rule stages it (validated, as Parquet)."""
    return R(out.STAGED[table])


def input_tables():
    """The input tables as files, so that executors without a shared file system (Kubernetes
    pods with a storage provider) stage them for the jobs that read them."""
    if config["input"]["source"] == "synthetic":
        return [R(SYNTHETIC_TABLES[table]) for table in INPUT_TABLES]
    folder = config["input"]["folder"]
    return [
        os.path.join(folder, f"{table}.{ext}")
        for table in INPUT_TABLES
        for ext in ("parquet", "csv")
        if os.path.exists(os.path.join(folder, f"{table}.{ext}"))
    ]


def truth_inputs():
    """The synthetic truth the report sets against the estimates (nothing for real data)."""
    if config["input"]["source"] == "synthetic":
        return [R(TRUTH)]
    return []


def input_folder():
    if config["input"]["source"] == "synthetic":
        return R(SYNTHETIC_DIR)
    return config["input"]["folder"]


#: The configured code-list folder (params) and its files (inputs: editing a list reruns the
#: rules that read it).
CODELISTS = config["codelists"].get("directory")
# local(): they ship with phm-eval (or sit on the analyst's disk), so executors with a storage
# provider (Kubernetes) must not look for them in the remote storage.
CODELIST_FILES = [
    local(str(p)) for p in sorted(resolve_codelist_dir(CODELISTS).glob("*.csv"))
]

#: Segmentation rules (an input of the segment rule: editing them reruns it).
SEGMENTATION_SETTINGS = local(str(CONFIG_DIR / "segmentation.yaml"))

STAGE_SCRIPT = os.path.join(workflow.basedir, "scripts", "run_stage.py")
