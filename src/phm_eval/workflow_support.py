"""Glue between Snakemake and the package: running a stage from a rule."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

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
    try:
        module = importlib.import_module(f"phm_eval.stages.{module_name}")
        getattr(module, func_name)(smk)
    except KeyboardInterrupt:
        log.error("stage %s interrupted", smk.params.stage)
        sys.exit(130)
    except PhmEvalError as exc:
        message = f"phm-eval error: {exc}"
        log.error(message)
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(message + "\n")
        print(message, file=sys.stderr)
        sys.exit(1)
    log.info("stage %s finished in %.1f s", smk.params.stage, time.time() - started)
