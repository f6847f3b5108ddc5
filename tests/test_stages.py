"""Workflow stages as entry points taking plain values (:class:`StageCall`).

A stage is called here with dicts and paths, as any Python caller would, without Snakemake;
the workflow glue's translation of a Snakemake job into that call is checked on Snakemake's
own job object; and no stage module mentions the Snakemake object any more.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_snakemake_job

import phm_eval.stages
from phm_eval import outputs as out
from phm_eval.db import MEMORY_ENV, TEMP_ENV, THREADS_ENV
from phm_eval.disclosure.tables import SIDECAR_SUFFIX
from phm_eval.stages import data, describe
from phm_eval.stages.call import StageCall
from phm_eval.workflow_support import RUN_ENV, run_stage, stage_function

ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = Path(phm_eval.stages.__file__).parent
STUDY = {"study_start": "2019-04-01", "study_end": "2024-03-31", "programme": "proactive_care"}
DISCLOSURE = {"preset": "nhs_digital"}


def _files(results: Path, rule: str) -> list[Path]:
    return [results / path for path in out.of_rule(rule)]


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> dict[str, Path]:
    """A small synthetic extract (500 patients), simulated and staged by the data stages
    called directly."""
    results = tmp_path_factory.mktemp("results")
    data.simulate(StageCall(inputs={}, outputs=_files(results, "simulate"),
                            params={"synthetic": {"scenario": "smoke", "n_patients": 500,
                                                  "seed": 3}}))
    tables = [results / out.SYNTHETIC_TABLES[t] for t in out.INPUT_TABLES]
    data.ingest_inputs(StageCall(inputs={"tables": tables}, outputs=_files(results, "ingest"),
                                 params={"source": str(results / out.SYNTHETIC_DIR),
                                         "study": STUDY}))
    return {table: results / path for table, path in out.STAGED.items()}


def test_describe_runs_on_plain_values(staged, tmp_path):
    outputs = _files(tmp_path, "describe")
    describe.run(StageCall(
        inputs={"patients": staged["patients"], "events": str(staged["events"]),
                "admissions": staged["admissions"]},
        params={"study": STUDY, "disclosure": DISCLOSURE, "codelists": None},
        outputs=outputs,
    ))
    assert all(p.is_file() and p.stat().st_size > 0 for p in outputs)
    pyramid = pd.read_csv(tmp_path / out.POPULATION_PYRAMID)
    assert {"age_band", "F", "M"} <= set(pyramid.columns) and len(pyramid) > 5
    # disclosure-controlled: counts rounded to 5 (or suppressed), and the sidecar beside it
    counts = pd.to_numeric(pyramid[["F", "M"]].stack(), errors="coerce").dropna()
    assert len(counts) and (counts % 5 == 0).all()
    for table in (out.POPULATION_PYRAMID, out.LTC_PREVALENCE, out.EMERGENCY_ADMISSION_RATES):
        path = tmp_path / table
        assert path.with_name(path.stem + SIDECAR_SUFFIX).is_file()
    prevalence = pd.read_csv(tmp_path / out.LTC_PREVALENCE)
    assert {"condition", "n_with_condition", "n_registered", "prevalence_percent"} <= set(
        prevalence.columns)
    rates = pd.read_csv(tmp_path / out.EMERGENCY_ADMISSION_RATES)
    assert {"financial_year", "age_band", "per_1000_person_years"} <= set(rates.columns)


def test_a_stage_names_a_missing_output(staged, tmp_path):
    """Outputs are found by file name; a call without one says which is missing."""
    outputs = [p for p in _files(tmp_path, "describe") if p.name != "ltc_prevalence.csv"]
    with pytest.raises(KeyError, match="ltc_prevalence.csv"):
        describe.run(StageCall(
            inputs={k: staged[k] for k in ("patients", "events", "admissions")},
            params={"study": STUDY, "disclosure": DISCLOSURE, "codelists": None},
            outputs=outputs))


def test_stage_call_holds_plain_values(tmp_path):
    call = StageCall(inputs={"a": "x.parquet"}, params={"p": 1}, outputs=str(tmp_path / "o.csv"))
    assert call.outputs == (tmp_path / "o.csv",) and call.wildcards == {} and call.threads == 1
    call = StageCall(inputs={}, params={}, outputs=[tmp_path / "a.csv", str(tmp_path / "b.csv")])
    assert call.outputs == (tmp_path / "a.csv", tmp_path / "b.csv")
    with pytest.raises(AttributeError):
        call.threads = 2  # frozen


def test_run_stage_hands_the_stage_plain_values(tmp_path, monkeypatch):
    """The glue turns Snakemake's job into the call: named inputs (lists stay lists), params
    without ``stage``, outputs as paths, wildcards and threads; the stage sees nothing else."""
    seen: list[object] = []
    module = types.ModuleType("phm_eval.stages.stand_in")
    module.capture = seen.append
    monkeypatch.setitem(sys.modules, "phm_eval.stages.stand_in", module)
    for name in (MEMORY_ENV, THREADS_ENV, TEMP_ENV, RUN_ENV):
        # run_stage sets DuckDB's settings: unset here, and unset again after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    job = make_snakemake_job(
        "risk_features", stage="stand_in.capture",
        input={"patients": tmp_path / "patients.parquet", "codelists": ["a.csv", "b.csv"],
               "truth": []},
        params={"index_date": "2022-04-01", "codelists": None, "risk": {"seed": 1}},
        output=[tmp_path / "features_current.parquet"], log=[tmp_path / "logs" / "job.log"],
        wildcards={"when": "current"}, threads=2)
    run_stage(job)
    (call,) = seen
    assert call == StageCall(
        inputs={"patients": str(tmp_path / "patients.parquet"), "codelists": ["a.csv", "b.csv"],
                "truth": []},
        params={"index_date": "2022-04-01", "codelists": None, "risk": {"seed": 1}},
        outputs=(tmp_path / "features_current.parquet",), wildcards={"when": "current"},
        threads=2)
    assert "stage stand_in.capture finished" in (tmp_path / "logs" / "job.log").read_text()


def _rule_stages() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "workflow" / "rules").glob("*.smk")]
    texts.append((ROOT / "workflow" / "Snakefile").read_text(encoding="utf-8"))
    return sorted({m for text in texts for m in re.findall(r'\bstage="([\w.]+)"', text)})


def test_every_rule_names_a_stage_taking_a_call():
    names = _rule_stages()
    assert len(names) >= 12, names
    for name in names:
        function = stage_function(name)
        (parameter,) = inspect.signature(function).parameters.values()
        assert parameter.annotation in ("StageCall", StageCall), (name, parameter)


def test_no_stage_refers_to_the_snakemake_object():
    """Only workflow_support touches Snakemake's job object: stages take a StageCall."""
    pattern = re.compile(r"\bsmk\b|snakemake", re.IGNORECASE)
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(STAGES_DIR.glob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert len(list(STAGES_DIR.glob("*.py"))) >= 9
    assert not found, "\n".join(found)
