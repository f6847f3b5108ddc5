"""Glue between Snakemake and the package: running a stage from a rule."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from .db import MEMORY_ENV, TEMP_ENV, THREADS_ENV, memory_limit_for_job, out_of_memory_message
from .errors import PhmEvalError


class _ConfigReadThroughParams(dict):
    """Stands in for ``snakemake.config`` inside a stage: a stage reads only its rule's
    ``params``, so that Snakemake reruns it exactly when the configuration it reads changes."""

    def __getitem__(self, key):
        raise RuntimeError(
            f"a stage read config[{key!r}]: pass it through the rule's params instead, so that "
            "changing it reruns the rule")

    def get(self, key, default=None):
        return self[key]


def _job_resources(smk: Any, log_path: Path | None) -> None:
    """Give DuckDB the job's memory and threads (unless the user set them) and a spill folder
    inside the run's results folder."""
    resources = getattr(smk, "resources", None)
    mem_mb = getattr(resources, "mem_mb", None) if resources is not None else None
    limit = memory_limit_for_job(mem_mb) if isinstance(mem_mb, (int, float)) else None
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


def _fail(text: str, log: logging.Logger, log_path: Path | None) -> None:
    """One line ``phm-eval error: <text>`` in the log and on standard error; exit status 1
    (Snakemake then removes the job's outputs)."""
    message = f"phm-eval error: {text}"
    log.error(message)
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(message + "\n")
    print(message, file=sys.stderr)
    sys.exit(1)


def run_stage(smk: Any) -> None:
    """Run ``phm_eval.stages.<module>.<function>(smk)`` with logging to the rule's log file.

    A :class:`PhmEvalError` becomes one line ``phm-eval error: <message>`` in the log and on
    standard error, and exit status 1 (Snakemake then removes the job's outputs). An
    interruption (Ctrl-C) ends the job quietly with status 130: the run says how to resume.
    """
    module_name, func_name = smk.params.stage.rsplit(".", 1)
    log_path = Path(smk.log[0]) if len(smk.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger(f"phm_eval.stages.{module_name}")
    started = time.time()
    smk.config = _ConfigReadThroughParams()
    _job_resources(smk, log_path)
    try:
        module = importlib.import_module(f"phm_eval.stages.{module_name}")
        getattr(module, func_name)(smk)
    except duckdb.OutOfMemoryException as exc:
        _fail(out_of_memory_message(exc, smk.params.stage), log, log_path)
    except KeyboardInterrupt:
        log.error("stage %s interrupted", smk.params.stage)
        sys.exit(130)
    except PhmEvalError as exc:
        _fail(str(exc), log, log_path)
    log.info("stage %s finished in %.1f s", smk.params.stage, time.time() - started)
