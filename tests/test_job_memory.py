"""Jobs declare memory that grows with the population; DuckDB keeps to its tuned share."""

from __future__ import annotations

import pandas as pd
import pytest

from phm_eval.config import load_config
from phm_eval.db import memory_limit_for_job
from phm_eval.job_memory import JOB_MEMORY, duckdb_base_mb, job_memory_mb, population_millions


def test_declarations_at_a_million_are_the_tuned_ones():
    """At the size the DuckDB stages were tuned for, each declares at least 3,400 MB (2 GB for
    DuckDB) and the generator what its measured peak needs."""
    at_1m = job_memory_mb(1.0)
    for rule in ("describe", "frailty", "risk_features", "segment", "evaluate"):
        assert at_1m[rule] == 3400, rule
    assert 3700 <= at_1m["simulate"] <= 4500


def test_memory_grows_with_the_population_where_the_rule_holds_tables():
    small, large = job_memory_mb(1.0), job_memory_mb(3.0)
    for rule in ("risk_model", "evaluate"):
        assert large[rule] >= small[rule] + 1000, rule
    # measured at 3M patients (benchmarks/README.md): evaluate 4.2 GB, risk_model 4.5 GB
    assert large["evaluate"] >= 4200 and large["risk_model"] >= 4500
    # the generator makes a large ICS a piece at a time: its memory stops growing
    assert job_memory_mb(3.0)["simulate"] == job_memory_mb(10.0)["simulate"]
    # at 3M, the two largest jobs do not fit side by side within 8 GB (90 % for jobs)
    assert large["evaluate"] + large["risk_model"] > 0.9 * 8192


def test_duckdb_gets_its_tuned_share_not_the_growth():
    def limit(rule, mem_mb):
        return memory_limit_for_job(duckdb_base_mb(rule, mem_mb))

    assert limit("evaluate", 3400) == "2040MB"
    assert limit("evaluate", job_memory_mb(3.0)["evaluate"]) == "2040MB"
    # a job given less than the tuned amount (a small machine) gives DuckDB 60 % of it
    assert limit("evaluate", 1000) == "600MB"
    # outside the workflow's rules: 60 % of what the job has
    assert limit(None, 10_000) == "6000MB"
    assert set(JOB_MEMORY) >= {"simulate", "ingest", "evaluate", "risk_model", "segment"}


def test_population_of_a_synthetic_run():
    config = load_config(None)
    config["synthetic"]["n_patients"] = 2_500_000
    assert population_millions(config) == 2.5
    config["synthetic"]["n_patients"] = None
    config["synthetic"]["scenario"] = "ics"
    assert population_millions(config) == 1.0


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_population_of_extracts_is_their_patients_rows(tmp_path, fmt):
    frame = pd.DataFrame({"patient_id": [f"P{i}" for i in range(1234)], "sex": "F"})
    if fmt == "parquet":
        frame.to_parquet(tmp_path / "patients.parquet")
    else:
        # as a warehouse writes it: BOM and CRLF
        text = "\ufeff" + frame.to_csv(index=False, lineterminator="\r\n")
        (tmp_path / "patients.csv").write_text(text, encoding="utf-8")
    config = load_config(None)
    config["input"] = {"source": "folder", "folder": str(tmp_path)}
    assert population_millions(config) == pytest.approx(1234 / 1e6)


def test_population_of_missing_extracts_falls_back(tmp_path):
    config = load_config(None)
    config["input"] = {"source": "folder", "folder": str(tmp_path / "nowhere")}
    assert population_millions(config) == 1.0
