"""Glue between Snakemake and the package: running a stage from a rule, and telling the
command line which job failed.

:func:`run_stage` is the only code that touches Snakemake's job object. It turns the job
into a :class:`~phm_eval.stages.call.StageCall` (named inputs, params, outputs, wildcards and
threads as plain values) and calls the stage the rule names in ``params.stage``
(``"module.function"`` of :mod:`phm_eval.stages`). The name stays in the rule rather than in
a table here from rule names to functions: the rule file is where a reader looks to see what
a rule runs, a second table would have to be kept in step with the rule files (and rules that
share a stage), and dropping the param would change every rule's params and so rerun every
job of existing results folders once.

A job that fails leaves a *failure record* beside its log
(:func:`phm_eval.outputs.failure_record`, ``internal/logs/<job>.failure.json``): the rule,
the job, the message, the log and the run it belongs to. ``phm-eval run`` gives each
invocation of Snakemake a run identifier (environment variable :data:`RUN_ENV`, inherited by
every job Snakemake starts) and, when Snakemake exits with an error, reports the record of
that run (:func:`failed_job`). Why a record written by the job and not something read from
Snakemake:

* Snakemake's exit status says *that* the workflow failed, not which job or why; the job
  that raised the error is the one place that knows both, as a structured value, before it
  exits (Snakemake then removes the job's outputs but keeps its log, and the record beside
  it).
* Snakemake 9 has no ``--log-handler-script`` any more; a logger plugin would have to be a
  separately installed distribution, and ``.snakemake/log/*.log`` is text for people, whose
  wording changes between versions: reading it is scraping under another name.
* The run identifier makes a record from an earlier run (of the same or another rule)
  impossible to report for a later failure: only this invocation's jobs carry its
  identifier. A job also deletes its own old record when it starts. When no record of the
  run exists (Snakemake failed before any job ran, a job was killed by the system, or an
  executor did not pass the environment on), the command line says only that the workflow
  failed and where the logs are: never a stale or wrong reason.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from .db import MEMORY_ENV, TEMP_ENV, THREADS_ENV, memory_limit_for_job, out_of_memory_message
from .errors import PhmEvalError
from .job_memory import duckdb_base_mb
from .outputs import FAILURE_SUFFIX, LOGS_DIR, failure_record
from .stages.call import StageCall

#: The environment variable holding the identifier of the ``phm-eval run`` invocation that
#: started Snakemake; jobs copy it into their failure records.
RUN_ENV = "PHM_EVAL_RUN_ID"


@dataclass(frozen=True)
class Failure:
    """A failed job, as its failure record tells it.

    Parameters
    ----------
    rule : str
        The workflow rule.
    job : str
        The job: the rule's name with its wildcards (its log's name).
    message : str
        What went wrong, for the user (a :class:`PhmEvalError`'s message), or the exception
        type and text of an unexpected error.
    expected : bool
        True for a :class:`PhmEvalError` (a problem with inputs, configuration or
        resources, explained in ``message``); False for an unexpected error (a bug).
    log : str or None
        The job's log file.
    run : str or None
        The identifier of the run (:data:`RUN_ENV`) the job belonged to.
    failed_at : str
        When the job failed (ISO 8601, UTC).
    """

    rule: str
    job: str
    message: str
    expected: bool
    log: str | None
    run: str | None
    failed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "job": self.job, "message": self.message,
                "expected": self.expected, "log": self.log, "run": self.run,
                "failed_at": self.failed_at}


def _record_path(log_path: Path | None) -> Path | None:
    return None if log_path is None else Path(failure_record(str(log_path)))


def _write_failure(smk: Any, log_path: Path | None, message: str, expected: bool) -> None:
    """Write the job's failure record beside its log (nothing when the rule has no log)."""
    target = _record_path(log_path)
    if target is None:
        return
    failure = Failure(rule=str(getattr(smk, "rule", "") or smk.params.stage),
                      job=log_path.stem, message=message, expected=expected,
                      log=str(log_path), run=os.environ.get(RUN_ENV),
                      failed_at=datetime.now(UTC).isoformat(timespec="microseconds"))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(failure.to_dict(), indent=2) + "\n", encoding="utf-8")
        partial.replace(target)
    except OSError as exc:  # the job fails anyway; the command line then names the logs
        logging.getLogger(__name__).warning("could not write %s: %s", target, exc)


def failed_job(results_dir: str | os.PathLike[str], run: str) -> Failure | None:
    """The first job of run ``run`` that failed, from the failure records under
    ``results_dir``; ``None`` when no job of that run left one.

    Parameters
    ----------
    results_dir : path
        The run's results folder.
    run : str
        The run identifier ``phm-eval run`` gave Snakemake (:data:`RUN_ENV`).

    Returns
    -------
    Failure or None
        Of the records carrying this run's identifier, the earliest failure; records of
        other runs, and unreadable ones, are ignored.
    """
    found: list[Failure] = []
    for path in sorted((Path(results_dir) / LOGS_DIR).glob(f"*{FAILURE_SUFFIX}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            failure = Failure(**{key: record[key] for key in Failure.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run and failure.run == run:
            found.append(failure)
    return min(found, key=lambda f: f.failed_at) if found else None


def stage_call(smk: Any) -> StageCall:
    """The job ``smk`` as its stage sees it: plain values, no Snakemake object.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The job.

    Returns
    -------
    StageCall
        The rule's named inputs (a path, or a list of paths where the rule names a list),
        its params without ``stage`` (which names the function, not a setting), every output
        in the rule's order, the wildcards and the threads. The configuration is not passed:
        a stage reads only its rule's params, so that Snakemake reruns it exactly when the
        configuration it reads changes.
    """
    return StageCall(
        inputs={name: list(value) if isinstance(value, list) else value
                for name, value in smk.input.items()},
        params={name: value for name, value in smk.params.items() if name != "stage"},
        outputs=tuple(smk.output),
        wildcards={name: str(value) for name, value in smk.wildcards.items()},
        threads=int(smk.threads),
    )


def stage_function(name: str) -> Callable[[StageCall], None]:
    """The stage ``name`` (``"module.function"``) of :mod:`phm_eval.stages`, imported."""
    module_name, func_name = name.rsplit(".", 1)
    module = importlib.import_module(f"phm_eval.stages.{module_name}")
    return getattr(module, func_name)


def _job_resources(smk: Any, log_path: Path | None) -> None:
    """Give DuckDB the job's memory and threads (unless the user set them) and a spill folder
    inside the run's results folder."""
    resources = getattr(smk, "resources", None)
    mem_mb = getattr(resources, "mem_mb", None) if resources is not None else None
    limit = (memory_limit_for_job(duckdb_base_mb(getattr(smk, "rule", None), mem_mb))
             if isinstance(mem_mb, (int, float)) else None)
    if limit and MEMORY_ENV not in os.environ:
        os.environ[MEMORY_ENV] = limit
    threads = getattr(smk, "threads", None)
    # A rule declares threads only when it uses several; others keep DuckDB's default (all
    # cores), as the measured run times assume.
    if isinstance(threads, int) and threads > 1 and THREADS_ENV not in os.environ:
        os.environ[THREADS_ENV] = str(threads)
    if log_path is not None and TEMP_ENV not in os.environ:
        # <results>/internal/logs/<rule>.log -> <results>/internal/tmp/<rule>
        os.environ[TEMP_ENV] = str(log_path.parent.parent / "tmp" / log_path.stem)


def _fail(smk: Any, text: str, log: logging.Logger, log_path: Path | None) -> None:
    """One line ``phm-eval error: <text>`` in the log and on standard error, the job's failure
    record, and exit status 1 (Snakemake then removes the job's outputs)."""
    message = f"phm-eval error: {text}"
    log.error(message)
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(message + "\n")
    print(message, file=sys.stderr)
    _write_failure(smk, log_path, text, expected=True)
    sys.exit(1)


def run_stage(smk: Any) -> None:
    """Run the stage ``phm_eval.stages.<module>.<function>`` the rule names on the job's
    :func:`stage_call`, with logging to the rule's log file.

    A :class:`PhmEvalError` becomes one line ``phm-eval error: <message>`` in the log and on
    standard error, a failure record beside the log (see the module's description) and exit
    status 1 (Snakemake then removes the job's outputs). Any other exception is recorded as
    unexpected, logged with its traceback and raised again. An interruption (Ctrl-C) ends the
    job quietly with status 130: the run says how to resume.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The job: ``params.stage`` names the stage (``"module.function"`` of
        :mod:`phm_eval.stages`), ``log[0]`` its log file.
    """
    stage = smk.params.stage
    module_name = stage.rsplit(".", 1)[0]
    log_path = Path(smk.log[0]) if len(smk.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger(f"phm_eval.stages.{module_name}")
    record = _record_path(log_path)
    if record is not None:
        record.unlink(missing_ok=True)  # an earlier failure of this job is history now
    started = time.time()
    _job_resources(smk, log_path)
    try:
        stage_function(stage)(stage_call(smk))
    except duckdb.OutOfMemoryException as exc:
        _fail(smk, out_of_memory_message(exc, stage), log, log_path)
    except KeyboardInterrupt:
        log.error("stage %s interrupted", stage)
        sys.exit(130)
    except PhmEvalError as exc:
        _fail(smk, str(exc), log, log_path)
    except Exception as exc:
        log.exception("stage %s failed", stage)
        _write_failure(smk, log_path, f"{type(exc).__name__}: {exc}", expected=False)
        raise
    log.info("stage %s finished in %.1f s", stage, time.time() - started)


def run_design_check(results: Path, design_check: dict[str, Any]) -> Path:
    """Run the workflow's ``design_check`` stage on a finished run's files (``phm-eval
    design-check``): the same stage the rule runs, with its inputs and outputs where the
    rule keeps them under ``results``. Returns the summary JSON it wrote."""
    from . import outputs

    truth = results / outputs.TRUTH
    written = results / outputs.DESIGN_CHECK
    written.parent.mkdir(parents=True, exist_ok=True)
    stage_function("evaluate.design_check")(StageCall(
        inputs={"analysed": results / outputs.ANALYSED,
                "itt_panel": results / outputs.ITT_PANEL,
                "itt_design": results / outputs.ITT_DESIGN,
                "truth": [truth] if truth.exists() else []},
        params={"design_check": dict(design_check)},
        outputs=(written, results / outputs.DESIGN_CHECK_CSV)))
    return written
