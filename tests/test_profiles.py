"""Snakemake profiles (local, SLURM, Kubernetes) and the scaling benchmark's arithmetic.

Each profile is dry-run on the smoke configuration; a profile whose executor or storage plugin is
not installed is skipped. The profiles' memory requests are checked against the peaks measured by
benchmarks/run_benchmarks.py, so a profile cannot silently ask for less than a stage needs.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow" / "profiles"
RESULTS = ROOT / "benchmarks" / "results"
# Plugins each profile needs beyond Snakemake itself.
NEEDS = {
    "local": [],
    "slurm": ["snakemake_executor_plugin_slurm"],
    "kubernetes": ["snakemake_executor_plugin_kubernetes", "snakemake_storage_plugin_fs"],
}


def _missing(profile: str) -> list[str]:
    return [m for m in NEEDS[profile] if importlib.util.find_spec(m) is None]


def _profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Dry-run every profile whose plugins are installed, side by side (each takes seconds)."""
    # Besides the three profiles, a copy of the local one with a misspelled key.
    misspelled = tmp_path_factory.mktemp("misspelled")
    (misspelled / "config.yaml").write_text(
        yaml.safe_dump(_profile("local") | {"cores-per-job": 2}))
    profiles = {name: PROFILES / name for name in NEEDS if not _missing(name)}
    profiles["misspelled"] = misspelled
    procs = {}
    for name, folder in profiles.items():
        workdir = tmp_path_factory.mktemp(f"dry_{name}")
        cmd = [sys.executable, "-m", "phm_eval.cli", "run", "--config",
               str(ROOT / "config" / "smoke.yaml"), "--dry-run", "--profile", str(folder)]
        procs[name] = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def _job_block(stdout: str, rule: str) -> str:
    """The dry run's text for one job (from its 'rule <name>:' line to the next blank line)."""
    start = stdout.index(f"rule {rule}:")
    end = stdout.find("\n\n", start)
    return stdout[start:end if end > 0 else None]


@pytest.mark.parametrize("name", list(NEEDS))
def test_profile_dry_run_schedules_every_rule(name, dry_runs):
    if _missing(name):
        pytest.skip(f"not installed: {', '.join(_missing(name))}")
    done = dry_runs[name]
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Using profile {PROFILES / name}" in done.stderr + done.stdout
    for rule in ("simulate", "ingest", "frailty", "risk_model", "evaluate", "manifest"):
        assert f"rule {rule}:" in done.stdout, rule
    # The workflow's population-scaled memory reaches the jobs (the smoke run's 6,000 patients:
    # the least each rule declares).
    from phm_eval.job_memory import job_memory_mb

    expected = job_memory_mb(0.006)["risk_model"]
    assert f"mem_mb={expected}," in _job_block(done.stdout, "risk_model")


def test_slurm_jobs_carry_partition_account_and_runtime(dry_runs):
    if _missing("slurm"):
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    block = _job_block(dry_runs["slurm"].stdout, "risk_model")
    assert "slurm_partition=compute" in block and "slurm_account=phm" in block
    assert "runtime=60" in block and "cpus_per_task=2" in block
    assert "runtime=30" in _job_block(dry_runs["slurm"].stdout, "ingest")


def test_kubernetes_outputs_go_through_storage(dry_runs):
    if _missing("kubernetes"):
        pytest.skip("kubernetes executor or fs storage plugin is not installed")
    out = dry_runs["kubernetes"].stdout
    assert "/data/phm-eval/results-smoke/manifest.json" in out
    # Pods share no file system: the stages that read tables or whole result folders declare
    # them as inputs, so the storage provider stages them into the pod.
    ingest = _job_block(out, "ingest")
    assert "/data/phm-eval/results-smoke/internal/synthetic/events.parquet" in ingest
    assert "/data/phm-eval/results-smoke/internal/synthetic/patients.parquet" in _job_block(out, "manifest")
    assert "/data/phm-eval/results-smoke/internal/synthetic/truth/truth.json" in _job_block(out, "report")


def test_a_misspelled_profile_key_fails(dry_runs):
    done = dry_runs["misspelled"]
    assert done.returncode != 0
    assert "unrecognized arguments: --cores-per-job" in done.stderr


# ----------------------------------------------------------------------------- profile memory

def _measured_peaks() -> pd.DataFrame:
    """Peak resident memory (MB) per rule at every completed benchmark size."""
    runs = pd.read_csv(RESULTS / "runs.csv")
    rules = pd.read_csv(RESULTS / "rules.csv")
    ok = runs.loc[runs["status"] == "ok", "n_patients"]
    if ok.empty:
        pytest.skip("no completed benchmark run recorded")
    measured = rules[rules["n_patients"].isin(ok)].copy()
    # Snakemake samples a job's memory every 30 s after its first 30 s; the benchmark script
    # samples every 0.5 s. Take the larger.
    sampled = measured.get("peak_rss_sampled_mb", pd.Series(np.nan, index=measured.index))
    measured["peak"] = np.fmax(measured["max_rss_mb"], sampled)
    # risk_features_{when} is one rule with three jobs.
    measured["rule"] = measured["rule"].str.replace(r"^risk_features_\w+$", "risk_features",
                                                    regex=True)
    return measured.groupby(["n_patients", "rule"], as_index=False)["peak"].max()


def test_declared_memory_covers_the_measured_peaks():
    """At every size benchmarked, each rule declares at least the memory it was seen to use, so
    the scheduler's sum of declarations bounds what jobs side by side really use."""
    from phm_eval.job_memory import job_memory_mb

    if not (RESULTS / "rules.csv").exists():
        pytest.skip("no benchmark results")
    short = []
    for row in _measured_peaks().itertuples(index=False):
        declared = job_memory_mb(row.n_patients / 1e6).get(row.rule)
        if declared is not None and declared < row.peak:
            short.append(f"{row.rule} at {row.n_patients:,}: declares {declared} MB, "
                         f"measured {row.peak:.0f} MB")
    assert not short, "; ".join(short)


@pytest.mark.parametrize("name", list(NEEDS))
def test_profiles_leave_memory_to_the_workflow(name):
    """A fixed mem_mb in a profile would override the population-scaled declarations (and be
    wrong for an ICS of another size), and a local ceiling would replace the machine's."""
    cfg = _profile(name)
    for rule, res in (cfg.get("set-resources") or {}).items():
        assert "mem_mb" not in res, f"{name}: set-resources {rule} mem_mb"
    if name == "local":
        assert "resources" not in cfg


@pytest.mark.parametrize(("profile", "extra", "capped"), [
    (None, [], True), ("local", [], True), ("slurm", [], False), ("kubernetes", [], False),
    (None, ["--resources", "mem_mb=4000"], False), ("not-a-folder", [], False)])
def test_run_caps_memory_on_this_machine_only(profile, extra, capped):
    import argparse

    from phm_eval.cli import _caps_memory

    folder = str(PROFILES / profile) if profile else None
    args = argparse.Namespace(profile=folder, snakemake_args=extra)
    assert _caps_memory(args) is capped


# ----------------------------------------------------------------------------- benchmark maths

@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "run_benchmarks", ROOT / "benchmarks" / "run_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_growth_exponent_recovers_a_power_law(bench):
    n = np.array([50_000, 250_000, 1_000_000])
    assert bench.growth_exponent(n, 3.0 * n**1.25) == pytest.approx(1.25, abs=1e-12)
    # Least squares on the log scale: exponents of 1 and 2 between the sizes average out.
    y = np.array([10.0, 50.0, 50.0 * 16])
    expected = np.polyfit(np.log(n), np.log(y), 1)[0]
    assert bench.growth_exponent(n, y) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(bench.growth_exponent(n[:1], y[:1]))
    assert math.isnan(bench.growth_exponent(n, [np.nan, np.nan, 4.0]))


def test_growth_table_uses_completed_runs_only(bench):
    runs = pd.DataFrame({"n_patients": [1000, 4000, 16000], "status": ["ok", "ok", "failed"],
                         "wall_s": [10.0, 20.0, 5.0], "peak_tree_rss_mb": [100.0, 400.0, 50.0]})
    rules = pd.DataFrame({"n_patients": [1000, 4000, 16000] * 2,
                          "rule": ["ingest"] * 3 + ["evaluate"] * 3,
                          "seconds": [1.0, 8.0, 1.0, 2.0, 4.0, 1.0],
                          "cpu_time_s": [1.0, 4.0, 1.0, 1.0, 1.0, 1.0],
                          "max_rss_mb": [10.0, 20.0, 1.0, 10.0, 10.0, 1.0]})
    g = bench.growth_table(rules, runs).set_index("rule")
    assert list(g.index) == ["ingest", "evaluate", "whole run"]
    assert g.loc["ingest", "b_time"] == pytest.approx(1.5)
    assert g.loc["ingest", "b_cpu"] == pytest.approx(1.0)
    assert g.loc["evaluate", "b_time"] == pytest.approx(0.5)
    assert g.loc["evaluate", "b_rss"] == pytest.approx(0.0)
    assert g.loc["whole run", "b_time"] == pytest.approx(0.5)
    assert g.loc["whole run", "b_rss"] == pytest.approx(1.0)


def test_readme_section_is_replaced_not_appended(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nIntro.\n")
    bench.update_readme("first table", readme)
    bench.update_readme("second table", readme)
    text = readme.read_text()
    assert text.count(bench.START) == 1 and text.count(bench.END) == 1
    assert "second table" in text and "first table" not in text
    assert text.startswith("# Benchmarks\n\nIntro.\n")


def test_temporary_config_overrides_the_scenario_size(bench, tmp_path):
    path = bench.write_config(ROOT / "config" / "ics.yaml", 50_000, tmp_path / "c.yaml")
    cfg = yaml.safe_load(path.read_text())
    assert cfg["synthetic"] == {"scenario": "ics", "n_patients": 50_000, "seed": 20240401}
    assert cfg["results_dir"] == "results"
    from phm_eval.config import check_config

    check_config(cfg)


def test_peer_comparison_is_skipped_when_the_script_is_absent(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "HERE", tmp_path)
    assert bench.compare_peers(1000, tmp_path / "peers.json") is None
    assert not (tmp_path / "peers.json").exists()
