"""Glue between Snakemake and the package: config checking and running a stage from a rule."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError, PhmEvalError


def check_config(config: dict, schema_path: str | Path) -> None:
    """Validate the workflow config against its JSON schema; raise a readable ConfigError."""
    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {err.message}")


def run_stage(smk: Any) -> None:
    """Run ``phm_eval.stages.<module>.<function>(smk)`` with logging to the rule's log file.

    A :class:`PhmEvalError` becomes one line ``phm-eval error: <message>`` in the log and on
    standard error, and exit status 1 (Snakemake then removes the job's outputs).
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
    try:
        module = importlib.import_module(f"phm_eval.stages.{module_name}")
        getattr(module, func_name)(smk)
    except PhmEvalError as exc:
        message = f"phm-eval error: {exc}"
        log.error(message)
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(message + "\n")
        print(message, file=sys.stderr)
        sys.exit(1)
    log.info("stage %s finished in %.1f s", smk.params.stage, time.time() - started)
