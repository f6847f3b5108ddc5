"""The Snakemake workflow end to end on the smoke configuration, and its failure modes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "phm_eval.cli", "run", "--config", str(config), "--cores", "2",
         *extra],
        cwd=workdir, capture_output=True, text=True,
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    done = _run(workdir, ROOT / "config" / "smoke.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir / "results"


def test_outputs_exist(smoke_run):
    for rel in ("data/flow.csv", "data/patients.parquet", "describe/population_pyramid.csv",
                "describe/population_pyramid.png", "describe/ltc_prevalence.csv",
                "describe/emergency_admission_rates.csv", "manifest.json"):
        assert (smoke_run / rel).exists(), rel


def test_every_rule_has_a_benchmark(smoke_run):
    benches = {p.stem for p in (smoke_run / "benchmarks").glob("*.tsv")}
    assert {"simulate", "ingest", "describe", "manifest"} <= benches


def test_manifest_records_provenance(smoke_run):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["seed"] == 20240401
    assert manifest["config"]["synthetic"]["scenario"] == "smoke"
    assert {p["path"].split("/")[-1] for p in manifest["inputs"]} >= {
        "patients.parquet", "events.parquet", "admissions.parquet"}
    assert all(len(p["sha256"]) == 64 for p in manifest["inputs"])
    assert manifest["packages"]["phm-eval"] and manifest["packages"]["snakemake"]
    assert "ingest" in manifest["extra"]["stage_benchmarks"]


def test_flow_table_counts_add_up(smoke_run):
    flow = pd.read_csv(smoke_run / "data" / "flow.csv")
    for table, sub in flow.groupby("table"):
        read = sub.loc[sub["step"] == "read", "n"].sum()
        if read:
            excluded = sub.loc[sub["step"] == "exclude", "n"].sum()
            kept = sub.loc[sub["step"] == "kept", "n"].sum()
            assert read - excluded == kept, table


def test_describe_tables_pass_disclosure(smoke_run):
    from phm_eval.disclosure import DisclosurePolicy, check_table

    policy = DisclosurePolicy()
    table = pd.read_csv(smoke_run / "describe" / "population_pyramid.csv", dtype=str)
    assert check_table(table, policy, count_cols=["F", "M"]) == []


def test_invalid_config_is_a_readable_error(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["synthetic"]["scenario"] = "atlantis"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = _run(tmp_path, path, "--dry-run")
    assert done.returncode != 0
    assert "invalid configuration" in done.stderr and "synthetic.scenario" in done.stderr


def test_bad_real_input_stops_the_run_with_one_message(tmp_path):
    from phm_eval.synth import simulate

    data = tmp_path / "extract"
    simulate("smoke", out=data, seed=9, file_format="csv")
    shutil.rmtree(data / "truth")
    admissions = pd.read_csv(data / "admissions.csv", dtype=str)
    admissions.loc[4, "admission_method"] = "77"
    admissions.to_csv(data / "admissions.csv", index=False)
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["input"] = {"source": "folder", "folder": str(data)}
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = _run(tmp_path, path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("phm-eval: admissions.csv, column 'admission_method'"), last
    assert "row 5" in last
    assert not (tmp_path / "results" / "data" / "flow.csv").exists()
    assert not (tmp_path / "results" / "describe").exists()
