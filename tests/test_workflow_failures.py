"""A failed job is reported from its own failure record, for the run it belongs to only.

The stage wrapper (``workflow_support.run_stage``) is run on Snakemake job objects of stand-in
stages, and ``phm-eval run`` on a stand-in Snakemake that runs such jobs and exits as Snakemake
does; nothing here starts the real workflow (``tests/test_workflow.py`` does, for a bad input and for a query that
cannot fit in memory).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import yaml
from conftest import make_snakemake_job

from phm_eval import outputs
from phm_eval.cli import main
from phm_eval.db import MEMORY_ENV, TEMP_ENV, THREADS_ENV
from phm_eval.errors import InputError
from phm_eval.stages.call import StageCall
from phm_eval.workflow_support import RUN_ENV, failed_job, run_stage

STAGE = "phm_eval.stages.stand_in"


@pytest.fixture(autouse=True)
def stand_in_stages(monkeypatch):
    """``phm_eval.stages.stand_in``: stages that fail as real ones can, or succeed."""
    module = types.ModuleType(STAGE)

    def bad_input(call: StageCall):
        # the job's one output is <job>.out
        raise InputError("admissions.csv", f"column 'admission_method': bad code in "
                                           f"{call.outputs[0].stem}")

    def bug(call: StageCall):
        raise ZeroDivisionError("division by zero")

    def fine(call: StageCall):
        call.outputs[0].write_text("done")

    module.bad_input, module.bug, module.fine = bad_input, bug, fine
    monkeypatch.setitem(sys.modules, STAGE, module)
    # run_stage hands DuckDB the job's resources through the environment: keep them here
    for name in (MEMORY_ENV, THREADS_ENV, TEMP_ENV, RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    yield


def _job(results: Path, rule: str, stage: str, job: str | None = None):
    return make_snakemake_job(rule, stage=f"stand_in.{stage}",
                              log=[results / outputs.log(job or rule)],
                              output=[results / f"{job or rule}.out"])


def _run_job(results: Path, rule: str, stage: str, run: str | None, monkeypatch,
             job: str | None = None) -> int:
    """Run a stand-in job as Snakemake would, within run ``run``; its exit status."""
    if run is None:
        monkeypatch.delenv(RUN_ENV, raising=False)
    else:
        monkeypatch.setenv(RUN_ENV, run)
    try:
        run_stage(_job(results, rule, stage, job))
    except SystemExit as exc:
        return int(exc.code or 0)
    except ZeroDivisionError:
        return 1
    return 0


def test_a_failed_job_leaves_a_record_beside_its_log(tmp_path, monkeypatch):
    assert _run_job(tmp_path, "ingest", "bad_input", "run-1", monkeypatch) == 1
    record_file = tmp_path / outputs.failure_record(outputs.log("ingest"))
    assert record_file.parent == tmp_path / outputs.LOGS_DIR
    record = json.loads(record_file.read_text())
    assert record["rule"] == "ingest" and record["run"] == "run-1" and record["expected"]
    assert record["message"].startswith("admissions.csv: column 'admission_method'")
    assert record["log"] == str(tmp_path / outputs.log("ingest"))
    # the log keeps its one line for people
    assert f"phm-eval error: {record['message']}" in (tmp_path / outputs.log("ingest")).read_text()
    failure = failed_job(tmp_path, "run-1")
    assert failure is not None and failure.rule == "ingest" and failure.job == "ingest"


def test_a_record_is_reported_for_its_own_run_only(tmp_path, monkeypatch):
    assert _run_job(tmp_path, "ingest", "bad_input", "run-1", monkeypatch) == 1
    # a later run in which another rule fails (a bug) and the ingest job is never rerun
    assert _run_job(tmp_path, "risk_features", "bug", "run-2", monkeypatch,
                    job="risk_features_current") == 1
    first, second = failed_job(tmp_path, "run-1"), failed_job(tmp_path, "run-2")
    assert first.rule == "ingest" and "admission_method" in first.message
    assert second.rule == "risk_features" and second.job == "risk_features_current"
    assert second.message == "ZeroDivisionError: division by zero" and not second.expected
    # a third run in which Snakemake fails before any job runs: no record is its own
    assert failed_job(tmp_path, "run-3") is None
    # nor is a record of a job run outside `phm-eval run` (no run identifier)
    assert _run_job(tmp_path, "segment", "bad_input", None, monkeypatch) == 1
    assert failed_job(tmp_path, "run-3") is None


def test_a_job_that_succeeds_on_rerun_clears_its_old_record(tmp_path, monkeypatch):
    assert _run_job(tmp_path, "ingest", "bad_input", "run-1", monkeypatch) == 1
    assert _run_job(tmp_path, "ingest", "fine", "run-2", monkeypatch) == 0
    assert not list((tmp_path / outputs.LOGS_DIR).glob(f"*{outputs.FAILURE_SUFFIX}"))
    assert failed_job(tmp_path, "run-1") is None


def test_the_earliest_failure_of_a_run_is_reported(tmp_path, monkeypatch):
    assert _run_job(tmp_path, "describe", "bad_input", "run-1", monkeypatch) == 1
    assert _run_job(tmp_path, "frailty", "bug", "run-1", monkeypatch) == 1
    assert failed_job(tmp_path, "run-1").rule == "describe"


# --------------------------------------------------------------------------- phm-eval run
class StandInSnakemake:
    """Stands in for ``python -m snakemake``: runs the jobs of the next planned invocation in
    the environment the command line passes, then exits 1 (or 0 if nothing failed)."""

    plans: list[list[tuple[str, str]]] = []
    results: Path
    plans_fail = False

    def __init__(self, cmd, env=None):
        self.env = dict(env or {})
        self.returncode = 0
        patch = pytest.MonkeyPatch()
        try:
            for rule, stage in self.plans.pop(0):
                patch.setenv(RUN_ENV, self.env.get(RUN_ENV, ""))
                try:
                    run_stage(_job(self.results, rule, stage))
                except SystemExit as exc:
                    self.returncode = self.returncode or int(exc.code or 0)
                except ZeroDivisionError:
                    self.returncode = 1
            if not self.returncode and self.plans_fail:
                self.returncode = 1  # e.g. a missing input: Snakemake fails before any job
        finally:
            patch.undo()

    def wait(self, timeout=None):
        return self.returncode


def _cli_run(tmp_path: Path, monkeypatch, capsys, plan, snakemake_fails=False) -> tuple[int, str]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    StandInSnakemake.plans = [plan]
    StandInSnakemake.results = tmp_path / "results"
    StandInSnakemake.plans_fail = snakemake_fails
    monkeypatch.setattr("phm_eval.cli.subprocess.Popen", StandInSnakemake)
    status = main(["run", "--config", str(config), "--memory", "4GB"])
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


def test_the_command_line_names_this_runs_failure_not_an_earlier_one(tmp_path, monkeypatch,
                                                                     capsys):
    status, last = _cli_run(tmp_path, monkeypatch, capsys, [("ingest", "bad_input")])
    assert status == 1
    assert last.startswith("phm-eval: admissions.csv: column 'admission_method': bad code in "
                           "ingest"), last
    # The next run fails before any job runs: the ingest failure above is not this run's.
    status, last = _cli_run(tmp_path, monkeypatch, capsys, [], snakemake_fails=True)
    assert status == 1
    assert last == (f"phm-eval: the workflow failed; see the messages above and "
                    f"{tmp_path / 'results' / outputs.LOGS_DIR}/"), last
    # And a run in which another rule has a bug names that rule, not the earlier input error.
    status, last = _cli_run(tmp_path, monkeypatch, capsys, [("evaluate", "bug")])
    assert status == 1
    assert last.startswith("phm-eval: the workflow failed in rule evaluate "
                           "(ZeroDivisionError: division by zero)"), last
    assert "admission_method" not in last
    # A run that succeeds says nothing of failures.
    status, last = _cli_run(tmp_path, monkeypatch, capsys, [("ingest", "fine")])
    assert status == 0 and "phm-eval:" not in last
