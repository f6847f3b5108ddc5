"""Time the whole workflow at several population sizes and fit how each stage grows.

    python benchmarks/run_benchmarks.py [--sizes 50000,250000,1000000] [--cores 2]
                                        [--config config/ics.yaml] [--compare-peers]

For each size the workflow runs from scratch (``phm-eval run``) in a fresh working folder,
with a copy of the config whose ``synthetic.n_patients`` is that size. Collected per size:

* per rule: wall time, peak resident memory, CPU time and mean load, from the Snakemake
  benchmark files (``results/benchmarks/<rule>.tsv``);
* per run: wall time end to end, the peak resident memory of the whole process tree (Snakemake
  plus every job running at the same moment, sampled twice a second), the largest single
  process, and the machine's load average before, during and after (the machine may be shared).

The growth exponent ``b`` of ``time ~ n^b`` (and of memory) is fitted by least squares on the
log-log scale, per rule and overall. Results go to ``benchmarks/results/{rules,runs,growth}.csv``
(rows for sizes measured earlier are kept, so sizes can be run one at a time) and to a
markdown section of ``benchmarks/README.md`` between marker comments. A failed or killed run is
recorded with the rule that failed or was running, and its log's last lines.

``--compare-peers`` also runs ``benchmarks/did_vs_peers.py`` (when present) and records its
JSON beside the other results.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import importlib.util
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- benchmark-results:start -->", "<!-- benchmark-results:end -->"
# Rule order in the tables: the order data flows through the workflow.
RULE_ORDER = ["simulate", "ingest", "describe", "frailty", "risk_features_development",
              "risk_features_validation", "risk_features_current", "risk_model", "segment",
              "evaluate", "manifest", "report", "manuscript"]
log = logging.getLogger("run_benchmarks")


@dataclass
class RunRecord:
    """One end-to-end run of the workflow at one size."""

    n_patients: int
    scenario: str = ""
    status: str = "not run"          # ok, failed, timeout, memory limit
    wall_s: float = math.nan
    peak_tree_rss_mb: float = math.nan
    peak_process_rss_mb: float = math.nan
    peak_at_s: float = math.nan
    peak_rules: str = ""
    load_before: float = math.nan
    load_mean: float = math.nan
    load_after: float = math.nan
    cores: int = 2
    logical_cpus: int = field(default_factory=lambda: os.cpu_count() or 0)
    machine_memory_gb: float = field(
        default_factory=lambda: round(psutil.virtual_memory().total / 2**30, 1))
    failed_rule: str = ""
    running_rules: str = ""
    note: str = ""
    label: str = ""
    commit: str = ""
    date: str = field(default_factory=lambda: dt.datetime.now().isoformat(timespec="seconds"))
    python: str = field(default_factory=platform.python_version)


class TreeMonitor(threading.Thread):
    """Sample the resident memory of a process and its descendants, and the load average.

    Each job process is attributed to its rule through the log file it holds open
    (``results/logs/<rule>.log``), which gives per-rule peaks at the monitor's sampling interval;
    Snakemake's own benchmark samples memory only every 30 s after a job's first 30 s.
    """

    def __init__(self, pid: int, interval: float = 0.5, limit_mb: float | None = None):
        super().__init__(daemon=True)
        self.pid, self.interval, self.limit_mb = pid, interval, limit_mb
        self.peak_tree_mb = 0.0
        self.peak_process_mb = 0.0
        self.peak_at_s = math.nan
        self.peak_rules = ""
        self.rule_peaks: dict[str, float] = {}
        self.loads: list[float] = []
        self.over_limit = False
        self._halt = threading.Event()
        self._rule_of: dict[int, str | None] = {}

    def _rule(self, proc: psutil.Process) -> str | None:
        if self._rule_of.get(proc.pid) is None:
            rule = None
            with contextlib.suppress(psutil.Error, OSError):
                for f in proc.open_files():
                    path = Path(f.path)
                    if path.suffix == ".log" and path.parent.name == "logs" \
                            and path.parent.parent.name == "results":
                        rule = path.stem
                        break
            self._rule_of[proc.pid] = rule
        return self._rule_of[proc.pid]

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        started = time.perf_counter()
        while not self._halt.is_set():
            total = 0.0
            by_rule: dict[str, float] = {}
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    rss = proc.memory_info().rss / 2**20
                    total += rss
                    self.peak_process_mb = max(self.peak_process_mb, rss)
                    rule = self._rule(proc)
                    if rule:
                        by_rule[rule] = by_rule.get(rule, 0.0) + rss
            for rule, rss in by_rule.items():
                self.rule_peaks[rule] = max(self.rule_peaks.get(rule, 0.0), rss)
            if total > self.peak_tree_mb:
                self.peak_tree_mb = total
                self.peak_at_s = time.perf_counter() - started
                self.peak_rules = ",".join(f"{r}:{v:.0f}" for r, v in sorted(by_rule.items()))
            self.loads.append(os.getloadavg()[0])
            if self.limit_mb and total > self.limit_mb:
                self.over_limit = True
                _kill_tree(self.pid)
                break
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _kill_tree(pid: int) -> None:
    """End the run's own process group (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGTERM)


def write_config(base: Path, n_patients: int, path: Path) -> Path:
    """Copy ``base`` with ``synthetic.n_patients`` set to ``n_patients``, writing to
    ``results/`` in the run's own working folder."""
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    cfg.setdefault("synthetic", {})["n_patients"] = int(n_patients)
    cfg["results_dir"] = "results"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def read_rule_benchmarks(results: Path) -> pd.DataFrame:
    """One row per Snakemake benchmark file: rule, seconds, max_rss_mb, cpu_time_s, mean_load."""
    rows = []
    for path in sorted((results / "benchmarks").glob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if table.empty:
            continue
        first = table.iloc[0]
        rows.append({
            "rule": path.stem,
            "seconds": float(first["s"]),
            "max_rss_mb": _number(first.get("max_rss")),
            "cpu_time_s": _number(first.get("cpu_time")),
            "mean_load": _number(first.get("mean_load")),
        })
    return pd.DataFrame(rows, columns=["rule", "seconds", "max_rss_mb", "cpu_time_s",
                                       "mean_load"])


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan  # Snakemake writes "-" when it could not measure


def _failure(workdir: Path, stderr_text: str) -> tuple[str, str, str]:
    """(failed rule, rules still running, last lines of the failed rule's log)."""
    failed = ""
    match = re.search(r"Error in rule (\w+)", stderr_text)
    if match:
        failed = match.group(1)
    logs = workdir / "results" / "logs"
    done = {p.stem for p in (workdir / "results" / "benchmarks").glob("*.tsv")}
    running = sorted(p.stem for p in logs.glob("*.log") if p.stem not in done) if logs.exists() \
        else []
    tail = ""
    candidates = [logs / f"{failed}.log"] if failed else [logs / f"{r}.log" for r in running]
    for path in candidates:
        if path.exists():
            lines = path.read_text(errors="replace").strip().splitlines()
            errors = [x for x in lines if "phm-eval error:" in x]
            tail = errors[-1] if errors else " | ".join(lines[-2:])
            break
    # An unexpected exception goes to standard error only: keep its last line.
    head = stderr_text[:match.start()] if match else stderr_text
    raised = re.findall(r"^(\w+(?:Error|Exception): .*)$", head, flags=re.M)
    if raised and "phm-eval error:" not in tail:
        tail = f"{raised[-1]} | {tail}" if tail else raised[-1]
    return failed, ",".join(r for r in running if r != failed), tail


def _commit() -> str:
    """Commit of the phm-eval code that runs (``+`` when the working tree has changes)."""
    import phm_eval

    where = Path(phm_eval.__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "workflow"],
                               cwd=where, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return sha + ("+" if dirty else "")


def run_one(n_patients: int, base_config: Path, workroot: Path, cores: int,
            timeout: float | None, memory_limit_gb: float | None,
            extra: list[str], label: str = "") -> tuple[RunRecord, pd.DataFrame]:
    """Run the workflow once at ``n_patients`` in ``workroot/n<size>``; measure it."""
    workdir = workroot / f"n{n_patients}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config = write_config(base_config, n_patients, workdir / "config.yaml")
    scenario = yaml.safe_load(config.read_text()).get("synthetic", {}).get("scenario", "")
    cmd = [sys.executable, "-m", "phm_eval.cli", "run", "--config", str(config),
           "--cores", str(cores), *extra]
    record = RunRecord(n_patients=n_patients, scenario=scenario, cores=cores,
                       load_before=os.getloadavg()[0], label=label, commit=_commit())
    log.info("n=%s: %s (in %s)", f"{n_patients:,}", " ".join(cmd[2:]), workdir)
    with open(workdir / "run.out", "w") as out, open(workdir / "run.err", "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=err,
                                start_new_session=True)
        limit = memory_limit_gb * 1024 if memory_limit_gb else None
        monitor = TreeMonitor(proc.pid, limit_mb=limit)
        monitor.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            code = proc.wait()
            record.status = "timeout"
        record.wall_s = time.perf_counter() - started
        monitor.stop()
    record.peak_tree_rss_mb = round(monitor.peak_tree_mb, 1)
    record.peak_process_rss_mb = round(monitor.peak_process_mb, 1)
    record.peak_at_s = round(monitor.peak_at_s, 1)
    record.peak_rules = monitor.peak_rules
    record.load_mean = round(float(np.mean(monitor.loads)), 2) if monitor.loads else math.nan
    record.load_after = os.getloadavg()[0]
    if monitor.over_limit:
        record.status = "memory limit"
        record.note = f"process tree passed {memory_limit_gb} GB and was stopped"
    elif record.status != "timeout":
        record.status = "ok" if code == 0 else "failed"
    if record.status != "ok":
        stderr_text = (workdir / "run.err").read_text(errors="replace")
        record.failed_rule, record.running_rules, tail = _failure(workdir, stderr_text)
        if record.status == "failed" and code < 0:
            tail = f"killed by signal {-code}; " + tail
        record.note = "; ".join(x for x in (record.note, tail) if x)[:500]
    rules = read_rule_benchmarks(workdir / "results")
    rules["peak_rss_sampled_mb"] = rules["rule"].map(monitor.rule_peaks).round(1)
    rules.insert(0, "n_patients", n_patients)
    log.info("n=%s: %s in %.0f s, peak %.0f MB (tree), load %.1f", f"{n_patients:,}",
             record.status, record.wall_s, record.peak_tree_rss_mb, record.load_mean)
    return record, rules


# ----------------------------------------------------------------------------- analysis

def growth_exponent(n: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log(y) on log(n); NaN with fewer than two usable sizes."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    ok = np.isfinite(n) & np.isfinite(y) & (n > 0) & (y > 0)
    if len(np.unique(n[ok])) < 2:
        return math.nan
    slope, _ = np.polyfit(np.log(n[ok]), np.log(y[ok]), 1)
    return float(slope)


def growth_table(rules: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Exponents of time and memory per rule and for the whole run (completed runs only)."""
    good = runs.loc[runs["status"] == "ok", "n_patients"]
    rules = rules[rules["n_patients"].isin(good)]
    top = sorted(good.unique())[-2:]
    rows = []
    for rule, sub in rules.groupby("rule"):
        last = sub[sub["n_patients"].isin(top)]
        rows.append({"rule": rule, "sizes": sub["n_patients"].nunique(),
                     "b_time": growth_exponent(sub["n_patients"], sub["seconds"]),
                     "b_time_top": growth_exponent(last["n_patients"], last["seconds"]),
                     "b_cpu": growth_exponent(sub["n_patients"], sub["cpu_time_s"]),
                     "b_rss": growth_exponent(sub["n_patients"], _peak(sub))})
    ok = runs[runs["status"] == "ok"]
    last = ok[ok["n_patients"].isin(top)]
    rows.append({"rule": "whole run", "sizes": ok["n_patients"].nunique(),
                 "b_time": growth_exponent(ok["n_patients"], ok["wall_s"]),
                 "b_time_top": growth_exponent(last["n_patients"], last["wall_s"]),
                 "b_cpu": math.nan,
                 "b_rss": growth_exponent(ok["n_patients"], ok["peak_tree_rss_mb"])})
    table = pd.DataFrame(rows)
    table["order"] = table["rule"].map(_rank)
    return table.sort_values("order").drop(columns="order").reset_index(drop=True)


def _peak(rules: pd.DataFrame) -> pd.Series:
    """Per-rule peak memory: the 0.5 s samples where recorded, else Snakemake's max_rss."""
    if "peak_rss_sampled_mb" not in rules:
        return rules["max_rss_mb"]
    return rules["peak_rss_sampled_mb"].fillna(rules["max_rss_mb"])


def _rank(rule: str) -> int:
    return RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER) + 1


def merge(path: Path, new: pd.DataFrame, sizes: list[int]) -> pd.DataFrame:
    """Previous rows of ``path`` for other sizes, plus ``new``."""
    if path.exists() and path.stat().st_size:
        old = pd.read_csv(path)
        old = old[~old["n_patients"].isin(sizes)]
        frames = [f for f in (old, new) if not f.empty]
        new = pd.concat(frames, ignore_index=True) if frames else new
    return new.sort_values("n_patients", kind="stable").reset_index(drop=True)


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def _text(x) -> str:
    return x if isinstance(x, str) and x else "–"


def _rule_table(title: str, note: str, b_head: str, wide: pd.DataFrame, b: pd.Series,
                order: list, sizes: list, head: str, decimals: int) -> list[str]:
    """A per-rule table: one column per size, then the growth exponent."""
    lines = ["", f"### Per rule: {title}", "", note, "",
             f"| rule | {head} | {b_head} |",
             "| --- | " + " | ".join("---:" for _ in sizes) + " | ---: |"]
    for rule in order:
        vals = " | ".join(_fmt(wide.loc[rule].get(n, math.nan), decimals) for n in sizes)
        lines.append(f"| {rule} | {vals} | {_fmt(b.get(rule, math.nan), 2)} |")
    return lines


def _fmt(x: float, digits: int = 0) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{round(float(x), digits) + 0.0:,.{digits}f}"  # + 0.0: no "-0.00"


def markdown(rules: pd.DataFrame, runs: pd.DataFrame, growth: pd.DataFrame,
             peers: dict | None = None) -> str:
    """The results section of benchmarks/README.md."""
    sizes = sorted(runs["n_patients"].unique())
    ok = sorted(runs.loc[runs["status"] == "ok", "n_patients"].unique())
    lo, hi = (ok[0], ok[-1]) if ok else (None, None)
    head = " | ".join(_size(n) for n in sizes)
    lines = ["### Whole run", "",
             "| patients | scenario | status | wall time | per 100k patients "
             "| peak memory (all jobs) | largest process | load average before / during / after "
             "| date |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in runs.sort_values("n_patients").iterrows():
        per = r["wall_s"] / r["n_patients"] * 1e5
        status = r["status"] if r["status"] == "ok" else (
            f"{r['status']} ({r['failed_rule'] or r['running_rules'] or '?'})")
        lines.append(
            f"| {r['n_patients']:,} | {_text(r.get('scenario'))} | {status} "
            f"| {_fmt(r['wall_s'])} s | {_fmt(per, 1)} s "
            f"| {_fmt(r['peak_tree_rss_mb'] / 1024, 2)} GB "
            f"| {_fmt(r['peak_process_rss_mb'] / 1024, 2)} GB "
            f"| {_fmt(r['load_before'], 1)} / {_fmt(r['load_mean'], 1)} / "
            f"{_fmt(r['load_after'], 1)} | {str(r['date'])[:10]} |")
    if lo is not None and hi != lo:
        a = runs.set_index("n_patients").loc[lo]
        b = runs.set_index("n_patients").loc[hi]
        lines += ["", f"{_size(hi)} against {_size(lo)}: {hi / lo:.0f} times the patients, "
                  f"{b['wall_s'] / a['wall_s']:.1f} times the wall time and "
                  f"{b['peak_tree_rss_mb'] / a['peak_tree_rss_mb']:.1f} times the peak memory."]

    wide_t = rules.pivot_table(index="rule", columns="n_patients", values="seconds")
    wide_m = rules.assign(peak=_peak(rules)).pivot_table(index="rule", columns="n_patients",
                                                         values="peak")
    g = growth.set_index("rule")
    order = sorted(wide_t.index, key=_rank)
    ratio_head = f"{_size(hi)} / {_size(lo)}" if lo is not None and hi != lo else "ratio"
    top = ok[-2:]
    top_head = f"b, {_size(top[0])}-{_size(top[1])}" if len(top) == 2 else "b, two largest"
    lines += ["", "### Per rule: wall time (s)", "",
              f"| rule | {head} | b (time ~ n^b) | {top_head} "
              f"| s per 100k at {_size(hi) if hi else '–'} | {ratio_head} |",
              "| --- | " + " | ".join("---:" for _ in sizes) + " | ---: | ---: | ---: | ---: |"]
    for rule in order:
        vals = " | ".join(_fmt(wide_t.loc[rule].get(n, math.nan), 1) for n in sizes)
        per = wide_t.loc[rule].get(hi, math.nan) / hi * 1e5 if hi else math.nan
        rat = (wide_t.loc[rule].get(hi, math.nan) / wide_t.loc[rule].get(lo, math.nan)
               if lo is not None and hi != lo else math.nan)
        b = g["b_time"].get(rule, math.nan)
        bt = g["b_time_top"].get(rule, math.nan)
        lines.append(f"| {rule} | {vals} | {_fmt(b, 2)} | {_fmt(bt, 2)} | {_fmt(per, 2)} "
                     f"| {_fmt(rat, 1)} |")
    tot = runs.set_index("n_patients")["wall_s"]
    lines.append("| **whole run** | " + " | ".join(_fmt(tot.get(n, math.nan), 0) for n in sizes)
                 + f" | {_fmt(g['b_time'].get('whole run', math.nan), 2)} "
                 + f"| {_fmt(g['b_time_top'].get('whole run', math.nan), 2)} | "
                 + (f"{_fmt(tot.get(hi) / hi * 1e5, 1)} | {_fmt(tot.get(hi) / tot.get(lo), 1)} |"
                    if lo is not None and hi != lo else "– | – |"))
    wide_c = rules.pivot_table(index="rule", columns="n_patients", values="cpu_time_s")
    lines += _rule_table(
        "CPU time (s)",
        "CPU seconds are less sensitive than wall time to other work on the machine, but "
        "Snakemake reads them at its last memory sample (every 30 s after a job's first "
        "30 s), so jobs longer than 30 s can be undercounted by up to 30 s of work.",
        "b (CPU ~ n^b)", wide_c, g["b_cpu"], order, sizes, head, decimals=1)
    lines += _rule_table(
        "peak resident memory (MB)",
        "Sampled every 0.5 s by this script where recorded (`peak_rss_sampled_mb`); "
        "otherwise Snakemake's `max_rss`, which is sampled every 30 s after a job's "
        "first 30 s and misses short peaks.",
        "b (memory ~ n^b)", wide_m, g["b_rss"], order, sizes, head, decimals=0)
    if "peak_rules" in runs:
        at_peak = runs[runs["peak_rules"].fillna("").astype(str).str.len() > 0]
        if not at_peak.empty:
            lines += ["", "Rules running at the moment of the whole run's peak memory (MB):", ""]
            for _, r in at_peak.iterrows():
                lines.append(f"- {r['n_patients']:,} patients, {_fmt(r['peak_at_s'])} s into "
                             f"the run: {r['peak_rules']}")
    notes = runs[runs["status"] != "ok"]
    if not notes.empty:
        lines += ["", "### Runs that did not finish", ""]
        for _, r in notes.iterrows():
            lines.append(f"- {r['n_patients']:,} patients, {r['status']} in "
                         f"{r['failed_rule'] or r['running_rules']}: {r['note']}")
    labelled = runs[runs["label"].fillna("").astype(str).str.len() > 0] \
        if "label" in runs else runs.iloc[:0]
    if not labelled.empty:
        lines += ["", "### Notes on runs", ""]
        for _, r in labelled.iterrows():
            lines.append(f"- {r['n_patients']:,} patients ({_text(r.get('commit'))}): "
                         f"{r['label']}")
    if peers:
        lines += ["", "### DiD against peers (`did_vs_peers.py`)", ""]
        for setting, res in peers.get("settings", {}).items():
            ours = res["results"].get("phm-eval", {}).get("seconds", math.nan)
            fast = res.get("fastest_peer")
            peer_s = res["results"].get(fast, {}).get("seconds", math.nan) if fast else math.nan
            lines.append(f"- {setting}: phm-eval {_fmt(ours, 2)} s; fastest peer "
                         f"{fast or 'none importable'} {_fmt(peer_s, 2)} s "
                         f"({peers.get('units', 0):,} units).")
    lines += ["", "b is the least-squares slope of log(time) or log(memory) on log(patients) "
              "over the completed sizes; the second b uses the two largest sizes only, where a "
              "job's fixed start-up cost (Python and library imports, 5-20 s on a loaded "
              "machine) weighs least. Per-rule times are Snakemake's benchmark files; "
              "rules run two at a time where the graph allows, so they do not add up to the "
              "wall time. Peak memory (all jobs) is the sum over every process of the run, "
              "sampled every 0.5 s."]
    return "\n".join(lines)


def update_readme(section: str, path: Path = README) -> None:
    """Replace the text between the marker comments (append the markers if absent)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def compare_peers(units: int, out: Path) -> dict | None:
    """Run benchmarks/did_vs_peers.py if it is there; its JSON, or None when skipped."""
    script = HERE / "did_vs_peers.py"
    if not script.exists():
        log.warning("did_vs_peers.py not found; peer comparison skipped")
        return None
    spec = importlib.util.spec_from_file_location("did_vs_peers", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        main = module.main
    except Exception as exc:  # a broken peer script must not lose the workflow timings
        log.warning("did_vs_peers.py could not be loaded (%s); skipped", exc)
        return None
    argv = sys.argv
    sys.argv = [str(script), "--units", str(units), "--repeats", "1", "--json", str(out)]
    try:
        main()
    except (Exception, SystemExit) as exc:
        log.warning("did_vs_peers.py failed (%s); skipped", exc)
        return None
    finally:
        sys.argv = argv
    return json.loads(out.read_text()) if out.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50000,250000,1000000",
                    help="comma-separated numbers of patients")
    ap.add_argument("--config", default=str(ROOT / "config" / "ics.yaml"),
                    help="base config; synthetic.n_patients is replaced by each size")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", default=None,
                    help="where the runs happen (default: a temporary folder, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the working folders")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per run")
    ap.add_argument("--memory-limit-gb", type=float, default=16.0,
                    help="stop a run whose processes together pass this (protects the machine)")
    ap.add_argument("--results", default=str(RESULTS), help="folder for the CSV files")
    ap.add_argument("--readme", default=str(README), help="markdown file to update")
    ap.add_argument("--compare-peers", action="store_true",
                    help="also run benchmarks/did_vs_peers.py when present")
    ap.add_argument("--peer-units", type=int, default=200_000)
    ap.add_argument("--label", default="", help="a note stored with these runs")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing; rebuild growth.csv and the README section from the CSVs")
    ap.add_argument("snakemake_args", nargs="*", help="after --: passed to phm-eval run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    sizes = [] if args.report_only else [
        int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    workroot = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="phm-bench-"))
    if args.report_only and not args.workdir:
        workroot.rmdir()
    records, rule_frames = [], []
    try:
        for n in sizes:
            record, rules = run_one(n, Path(args.config).resolve(), workroot, args.cores,
                                    args.timeout, args.memory_limit_gb, args.snakemake_args,
                                    args.label)
            records.append(record)
            rule_frames.append(rules)
            # Written after every size so that a long run stopped part-way keeps what it measured.
            runs = merge(results / "runs.csv", pd.DataFrame([asdict(r) for r in records]), sizes)
            rule_rows = merge(results / "rules.csv", pd.concat(rule_frames, ignore_index=True),
                              sizes)
            _write(results, runs, rule_rows)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workroot, ignore_errors=True)
    runs = pd.read_csv(results / "runs.csv")
    rule_rows = pd.read_csv(results / "rules.csv")
    growth = growth_table(rule_rows, runs)
    growth.round(3).to_csv(results / "growth.csv", index=False)
    peers = None
    if args.compare_peers:
        peers = compare_peers(args.peer_units, results / "did_vs_peers.json")
    elif (results / "did_vs_peers.json").exists():
        peers = json.loads((results / "did_vs_peers.json").read_text())
    update_readme(markdown(rule_rows, runs, growth, peers), Path(args.readme))
    return 0 if all(r.status == "ok" for r in records) else 1


def _write(results: Path, runs: pd.DataFrame, rules: pd.DataFrame) -> None:
    runs.to_csv(results / "runs.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    rules.round(3).to_csv(results / "rules.csv", index=False)


if __name__ == "__main__":
    sys.exit(main())
