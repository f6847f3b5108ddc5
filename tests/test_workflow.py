"""The Snakemake workflow end to end on the smoke configuration, and its failure modes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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


def _killed_mid_run(workdir: Path, config: Path) -> None:
    """Start a run and kill it (SIGKILL, the whole process group, as a lost session or an
    out-of-memory kill would) once the data are staged, leaving its lock and partial work."""
    child = subprocess.Popen(
        [sys.executable, "-m", "phm_eval.cli", "run", "--config", str(config), "--cores", "2"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    marker = workdir / "results-smoke" / "internal" / "data" / "flow.csv"
    deadline = time.monotonic() + 300
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke configuration run to the end after a first run was killed part-way."""
    workdir = tmp_path_factory.mktemp("workflow")
    _killed_mid_run(workdir, ROOT / "config" / "smoke.yaml")
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock"
    done = _run(workdir, ROOT / "config" / "smoke.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    (workdir / "resume.stderr").write_text(done.stderr)
    return workdir / "results-smoke"


def test_a_killed_run_resumes_cleanly(smoke_run):
    stderr = (smoke_run.parent / "resume.stderr").read_text()
    assert "cleared the lock left on results-smoke/ by an interrupted run" in stderr
    assert "LockException" not in stderr
    assert not list((smoke_run.parent / ".snakemake" / "locks").glob("*.lock"))
    assert (smoke_run / "report" / "index.html").exists()


def test_outputs_exist(smoke_run):
    for rel in ("internal/data/flow.csv", "internal/data/patients.parquet", "describe/population_pyramid.csv",
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


def test_every_releasable_file_passes_check_outputs(smoke_run):
    outside = [p for p in smoke_run.rglob("*") if p.is_file()
               and "internal" not in p.relative_to(smoke_run).parts]
    assert outside and not [p for p in outside if p.suffix in (".parquet", ".log")]
    done = subprocess.run(
        [sys.executable, "-m", "phm_eval.cli", "check-outputs", str(smoke_run), "--patients",
         str(smoke_run / "internal" / "data" / "patients.parquet")],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 problem(s)" in done.stdout


def test_both_estimands_and_the_primary_with_its_power(smoke_run):
    effects = json.loads((smoke_run / "evaluate" / "effects.json").read_text())
    primary = [r for r in effects if r.get("primary")]
    assert len(primary) == 1 and primary[0]["estimand"] == "ATT enrolled"
    assert primary[0]["mde_sentence"].startswith("this evaluation could reliably detect")
    assert 0 < primary[0]["mde_rate_ratio"] < 1
    itt = [r for r in effects if r.get("estimand") == "ITT population"]
    assert itt and itt[0]["scale"] == "RR"
    # Smoke has one never-adopting practice: the fallback to not-yet-adopting units is recorded.
    assert "not yet adopting" in (itt[0].get("fallback") or "")
    assert {r["estimand"] for r in effects} >= {"ATT enrolled", "ITT population"}


def test_design_check_on_the_runs_own_data(smoke_run):
    done = subprocess.run(
        [sys.executable, "-m", "phm_eval.cli", "design-check", "--config",
         str(ROOT / "config" / "smoke.yaml"), "--replicates", "8"],
        cwd=smoke_run.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    check = json.loads((smoke_run / "evaluate" / "design_check.json").read_text())
    assert [t["rate_ratio"] for t in check["targets"]][:2] == [1.0, 0.85]
    assert all(0 <= t["power"] <= 1 for t in check["targets"])
    assert check["n_replicates"] == 8
    # Smoke's three practices in one PCN give the population-level estimate no interval, so
    # its design is not checked, and the file says why.
    itt = check["itt"]
    assert itt["estimand"] == "ITT population" and itt["targets"] == []
    assert itt["note"].startswith("not checked: the population-level estimate has no "
                                  "confidence interval")
    assert "population (ITT): not checked" in done.stdout
    table = pd.read_csv(smoke_run / "evaluate" / "design_check.csv")
    assert set(table["estimand"]) == {"ATT enrolled"}


def test_the_real_report_speaks_to_people(smoke_run):
    """The rules of the report's browser test, on a real run's report (not only the fixture)."""
    from phm_eval.report.reader_text import reader_problems, visible_text

    html = (smoke_run / "report" / "index.html").read_text(encoding="utf-8")
    assert reader_problems(visible_text(html)) == []


def test_flow_table_counts_add_up(smoke_run):
    flow = pd.read_csv(smoke_run / "internal" / "data" / "flow.csv")
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
    assert not (tmp_path / "results-smoke" / "internal" / "data" / "flow.csv").exists()
    assert not (tmp_path / "results-smoke" / "describe").exists()


# --- Configuration is an input: a changed value reruns exactly the rules that read it --------

ALL_AFTER_INGEST = {"ingest", "describe", "frailty", "risk_features", "risk_model", "segment",
                    "evaluate", "manifest", "report", "manuscript", "all"}


def _planned(workdir: Path, config: Path) -> dict[str, int]:
    """Rules a dry run would run, with their job counts (from Snakemake's job table)."""
    done = _run(workdir, config, "--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout + done.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].splitlines()
    planned = {}
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        planned[parts[0]] = int(parts[1])
    planned.pop("total", None)
    return planned


def _changed_config(tmp_path: Path, section: str, key: str, value) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg.setdefault(section, {})[key] = value
    path = tmp_path / f"changed_{section}_{key}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_unchanged_config_plans_nothing(smoke_run, tmp_path):
    assert _planned(smoke_run.parent, ROOT / "config" / "smoke.yaml") == {}
    # The same settings written in another key order are the same configuration.
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(cfg, sort_keys=True))
    assert _planned(smoke_run.parent, reordered) == {}


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("synthetic", "seed", 7, {"simulate"} | ALL_AFTER_INGEST),
    ("study", "study_end", "2024-02-29", ALL_AFTER_INGEST),
    ("frailty", "index_date", "2021-10-01", {"frailty", "manifest", "report", "manuscript",
                                             "all"}),
    ("risk", "cluster", "practice_id", {"risk_model", "segment", "manifest", "report",
                                        "manuscript", "all"}),
    ("risk", "bootstrap_replicates", 3, {"risk_model", "segment", "manifest", "report",
                                         "manuscript", "all"}),
    ("risk", "validation_index_date", "2021-07-01", {"risk_features", "risk_model", "segment",
                                                     "manifest", "report", "manuscript", "all"}),
    ("report", "unit_cost_emergency_admission", 3000, {"manifest", "report", "manuscript",
                                                       "all"}),
])
def test_changed_config_plans_exactly_the_dependent_rules(smoke_run, tmp_path, section, key,
                                                          value, expected):
    planned = _planned(smoke_run.parent, _changed_config(tmp_path, section, key, value))
    assert set(planned) == expected
    if section == "risk" and key == "validation_index_date":
        assert planned["risk_features"] == 1  # only the feature set at the changed date


def test_two_configs_in_one_folder_keep_separate_outputs(smoke_run, tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    del cfg["results_dir"]
    other = smoke_run.parent / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    planned = _planned(smoke_run.parent, other)
    # A file that names no results folder gets results-<stem>/: nothing of results-smoke/ reused.
    assert planned.get("simulate") == 1 and planned.get("report") == 1
    done = _run(smoke_run.parent, other, "--dry-run")
    assert "results-other/report/index.html" in done.stdout + done.stderr


def test_unknown_key_fails_with_a_suggestion(tmp_path):
    path = _changed_config(tmp_path, "evaluate", "matching", {"calliper": 0.1})
    done = _run(tmp_path, path, "--dry-run")
    assert done.returncode != 0
    assert "`evaluate.matching.calliper`: unknown key; did you mean `caliper`?" in done.stderr
    assert "Traceback" not in done.stderr


# --- Data we did not make: a warehouse export of a small network, default configuration -----

def test_a_warehouse_export_of_a_small_network_runs_to_a_report(tmp_path):
    """~3,000 patients, 2 PCNs, 6 practices, exported the way SQL Server writes CSV, with data
    past the study end, analysed with the default configuration: the run reaches its report,
    every quirk is counted, and the estimates that cannot use their planned method fall back
    and say so."""
    from phm_eval.jsonio import read_json
    from phm_eval.synth import simulate
    from phm_eval.synth.warehouse import write_warehouse_export

    simulate("small_network", out=tmp_path / "synthetic", seed=11)
    write_warehouse_export(tmp_path / "synthetic", tmp_path / "export")
    practices = pd.read_csv(tmp_path / "export" / "practices.csv", encoding="utf-8-sig")
    assert practices["practice_id"].str.strip().nunique() == 6
    assert practices["pcn_id"].str.strip().nunique() == 2
    config = tmp_path / "ward.yaml"
    config.write_text(yaml.safe_dump({"input": {"source": "folder",
                                                "folder": str(tmp_path / "export")}}))
    done = _run(tmp_path, config)
    assert done.returncode == 0, done.stderr[-4000:]
    results = tmp_path / "results-ward"
    assert (results / "report" / "index.html").stat().st_size > 0
    assert (results / "manuscript" / "manuscript.pdf").stat().st_size > 0

    quality = pd.read_csv(results / "internal" / "data" / "data_quality.csv")
    seen = " ".join(quality["quirk"].str.lower())
    for quirk in ("byte-order mark", "crlf", "null", "midnight", "male, female",
                  "char padding", "decimals", "'; '"):
        assert quirk in seen, quirk
    flow = pd.read_csv(results / "internal" / "data" / "flow.csv")
    cut = flow[flow["reason"].str.contains("after the study end", na=False)]
    assert cut["n"].sum() > 0

    metrics = read_json(results / "risk" / "metrics.json")  # strict: no NaN anywhere
    iecv = metrics["internal_external"]
    assert iecv["requested_cluster"] == "pcn_id" and iecv["cluster"] != "pcn_id"
    assert iecv["note"]
    effects = read_json(results / "evaluate" / "effects.json")
    for record in effects:
        assert record["estimate"] is not None or record.get("note"), record


def test_a_query_that_cannot_fit_fails_in_one_line(tmp_path):
    """A tiny DuckDB limit: the run stops with one line naming the stage, the limit and what to
    change, not an engine traceback."""
    env = dict(os.environ, PHM_EVAL_MEMORY_LIMIT="1MB")
    done = subprocess.run(
        [sys.executable, "-m", "phm_eval.cli", "run", "--config",
         str(ROOT / "config" / "smoke.yaml"), "--cores", "1"],
        cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("phm-eval: stage "), last
    assert "ran out of memory in DuckDB with a limit of 1MB" in last
    assert "PHM_EVAL_MEMORY_LIMIT" in last and "mem_mb" in last
