"""Data stage: simulate or read the inputs, validate them, stage clean Parquet; provenance."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import outputs
from ..ingest import StudyPeriod, find_table, ingest
from ..provenance import write_manifest
from ..synth import simulate as simulate_population
from .call import StageCall
from .common import output

log = logging.getLogger(__name__)


def simulate(call: StageCall) -> None:
    """Write the synthetic population (params ``synthetic``) beside its truth file."""
    cfg = call.params["synthetic"]
    out = output(call, "truth.json").parent.parent
    result = simulate_population(cfg["scenario"], out=out, n_patients=cfg.get("n_patients"),
                                 seed=cfg.get("seed"))
    log.info("simulated %s patients (scenario %s)", result.truth["population"]["n_patients"],
             cfg["scenario"])


def declared_folder(call: StageCall) -> Path:
    """The input folder as the job sees it: where its declared input tables are (they may
    have been staged to a local copy by a storage provider), else the configured folder
    (params ``source``)."""
    tables = list(call.inputs.get("tables") or [])
    return Path(tables[0]).parent if tables else Path(call.params["source"])


def ingest_inputs(call: StageCall) -> None:
    """Validate the input tables and stage them as Parquet beside ``flow.csv``."""
    study = call.params["study"]
    period = StudyPeriod(study["study_start"], study["study_end"], study.get("programme"))
    flow = ingest(declared_folder(call), output(call, "flow.csv").parent, period)
    rollout = output(call, "rollout.parquet")
    if not rollout.exists():
        # The roll-out table is optional; an empty one keeps later stages' inputs uniform.
        empty = pa.table({"pcn_id": pa.array([], pa.string()),
                          "practice_id": pa.array([], pa.string()),
                          "programme": pa.array([], pa.string()),
                          "start_date": pa.array([], pa.date32())})
        pq.write_table(empty, rollout)
    log.info("ingested inputs:\n%s", flow.to_string(index=False))



def manifest(call: StageCall) -> None:
    """Write results/manifest.json: versions, config, input hashes, seed, commit, timings."""
    source = declared_folder(call)
    inputs = [p for t in ("practices", "patients", "events", "admissions", "interventions",
                          "rollout") if (p := find_table(source, t)) is not None]
    target = output(call, "manifest.json")
    results = target.parent
    logs = list((results / outputs.LOGS_DIR).glob("*.log"))
    started = min((p.stat().st_mtime for p in logs), default=datetime.now(UTC).timestamp())
    timings = {}
    for bench in sorted((results / outputs.BENCHMARKS_DIR).glob("*.tsv")):
        rows = bench.read_text().splitlines()
        if len(rows) >= 2:
            header, values = rows[0].split("\t"), rows[1].split("\t")
            record = dict(zip(header, values, strict=False))
            timings[bench.stem] = {"seconds": float(record.get("s", "nan")),
                                   "max_rss_mb": _float(record.get("max_rss"))}
    config = call.params["config"]
    synthetic = config["input"]["source"] == "synthetic"
    write_manifest(
        target,
        config=dict(config),
        inputs=inputs,
        seed=config["synthetic"].get("seed") if synthetic else None,
        started_at=datetime.fromtimestamp(started, UTC),
        extra={"stage_benchmarks": timings},
    )


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
