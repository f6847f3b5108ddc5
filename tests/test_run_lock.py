"""Resuming after an interrupted run: stale Snakemake locks are cleared, live runs are not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from phm_eval import run_lock
from phm_eval.errors import PhmEvalError


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def _lock(tmp_path, number: int, output: str) -> None:
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / f"{number}.output.lock").write_text(str(tmp_path / output) + "\n")
    (locks / f"{number}.input.lock").write_text("")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_lock_left_by_a_dead_run_is_cleared(in_tmp):
    _lock(in_tmp, 0, "results-smoke/data/flow.csv")
    _lock(in_tmp, 1, "results-other/data/flow.csv")  # another configuration's run: kept
    pid_file = run_lock._pid_file("results-smoke")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{_dead_pid()}\n")
    pid_file, cleared = run_lock.acquire("results-smoke")
    assert cleared == 1
    assert sorted(p.name for p in (in_tmp / ".snakemake" / "locks").iterdir()) == [
        "1.input.lock", "1.output.lock"]
    assert pid_file.read_text().strip() == str(os.getpid())
    run_lock.release(pid_file)
    assert not pid_file.exists()


def test_a_live_run_on_the_same_folder_is_not_disturbed(in_tmp):
    _lock(in_tmp, 0, "results-smoke/data/flow.csv")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = run_lock._pid_file("results-smoke")
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{sleeper.pid}\n")
        with pytest.raises(PhmEvalError, match=f"another phm-eval run \\(process {sleeper.pid}\\)"):
            run_lock.acquire("results-smoke")
        assert (in_tmp / ".snakemake" / "locks" / "0.output.lock").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
