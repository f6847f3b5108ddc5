"""How much memory each workflow job declares, from the size of the population it serves.

Snakemake runs jobs side by side only while the memory they declare (``resources: mem_mb``)
fits in what ``phm-eval run`` allows (the machine's memory, or ``--memory``). That only keeps
the machine within its memory if each job's declaration covers what it really uses, and what a
job uses grows with the population: a rule that needs 2 GB for a million patients may need 4 GB
for three million. So each rule declares a fixed part plus a part per million patients, fitted
to the peaks measured by ``benchmarks/run_benchmarks.py`` (``benchmarks/results/rules.csv``) with
a margin, and never less than what its DuckDB queries were tuned to (DuckDB gets
:data:`phm_eval.db.DUCKDB_SHARE_OF_JOB` of the job's memory and spills the rest to disk).

The population is the synthetic scenario's size, or the number of rows of the patients extract
(read from Parquet metadata, or by counting the lines of a CSV file, which takes a fraction of a
second even for millions of rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Per rule: (least MB, MB at any size, MB per million patients, largest population in
#: millions that adds memory). The least is what the rule's DuckDB queries were tuned to
#: (3,400 MB: DuckDB gets 60 %, 2 GB); the largest population is for the generator, which makes
#: a large ICS a piece at a time (:data:`phm_eval.synth.generate.PIECE_MAX_PATIENTS`).
JOB_MEMORY: dict[str, tuple[int, int, int, float | None]] = {
    "simulate": (1000, 2150, 2200, 1.2),
    "ingest": (2000, 1000, 300, None),
    "describe": (3400, 1500, 300, None),
    "frailty": (3400, 1500, 500, None),
    "risk_features": (3400, 1500, 500, None),
    "risk_model": (2400, 900, 1700, None),
    "segment": (3400, 2500, 300, None),
    "evaluate": (3400, 1000, 1200, None),
    "design_check": (1500, 1500, 0, None),
    "manifest": (500, 500, 0, None),
    "report": (1500, 1500, 0, None),
    "manuscript": (1000, 1000, 0, None),
}

#: The population assumed when it cannot be read (a missing or unreadable patients file: the
#: ingest job then stops with its own message).
DEFAULT_MILLIONS = 1.0


def population_millions(config: Mapping[str, Any]) -> float:
    """The number of patients a run serves, in millions.

    Parameters
    ----------
    config : mapping
        The checked workflow configuration.

    Returns
    -------
    float
    """
    source = config["input"]["source"]
    if source == "synthetic":
        n = config["synthetic"].get("n_patients")
        if n is None:
            from .synth.scenario import load_scenario

            n = load_scenario(config["synthetic"]["scenario"]).params["n_patients"]
        return int(n) / 1e6
    rows = _patients_rows(Path(config["input"]["folder"] or "."))
    return DEFAULT_MILLIONS if rows is None else rows / 1e6


def _patients_rows(folder: Path) -> int | None:
    from .errors import InputError
    from .ingest import find_table

    try:
        path = find_table(folder, "patients")
        if path is None:
            return None
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with open(path, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(
                lambda: handle.read(16 * 2**20), b""))
        return max(lines - 1, 0)
    except (InputError, OSError):
        return None  # the ingest job reports the problem


def job_memory_mb(millions: float) -> dict[str, int]:
    """Memory (MB) each rule declares for a population of ``millions`` million patients."""
    out = {}
    for rule, (least, fixed, per_million, cap) in JOB_MEMORY.items():
        size = millions if cap is None else min(millions, cap)
        out[rule] = max(least, int(round(fixed + per_million * size, -2)))
    return out


def duckdb_base_mb(rule: str | None, mem_mb: float) -> float:
    """The part of a job's memory that DuckDB's limit is taken from.

    For a workflow ``rule``, only the part that does not grow with the population: what a rule
    declares per million patients is for the tables it holds in pandas and numpy, and DuckDB
    spills to disk beyond its limit. :func:`phm_eval.db.memory_limit_for_job` gives DuckDB its
    share of the result.
    """
    if rule in JOB_MEMORY:
        return min(mem_mb, JOB_MEMORY[rule][0])
    return mem_mb


__all__ = ["JOB_MEMORY", "duckdb_base_mb", "job_memory_mb", "population_millions"]
