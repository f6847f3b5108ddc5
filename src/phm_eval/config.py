"""The workflow configuration: defaults, a user's file merged over them, and a strict check.

A run's configuration is ``config/config.yaml`` (the defaults) with the user's file merged over
it key by key, as Snakemake's ``--configfile`` does. :func:`check_config` then checks it against
``workflow/schemas/config.schema.yaml`` and reports every problem in one message: unknown keys
with the nearest valid key ("did you mean `caliper`?"), wrong types, and values that are only
required in some settings (a folder when ``input.source`` is ``folder``).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError
from .paths import DEFAULT_CONFIG, SCHEMA_FILE

#: The results folder of the default configuration; other configurations get their own.
DEFAULT_RESULTS_DIR = "results"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML configuration file as a mapping, with a readable error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration must be a mapping of keys to values")
    return data


def merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into a copy of ``defaults`` key by key (nested mappings merged,
    everything else replaced), as Snakemake merges ``--configfile`` over ``configfile:``."""
    out = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_results_dir(config_path: str | Path | None) -> str:
    """The results folder of a configuration file that names none: ``results`` for the default
    configuration, ``results-<file stem>`` for any other, so runs never share outputs."""
    if config_path is None or _same_file(config_path, DEFAULT_CONFIG):
        return DEFAULT_RESULTS_DIR
    return f"{DEFAULT_RESULTS_DIR}-{Path(config_path).stem}"


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The checked configuration of a run: the defaults with ``path`` merged over them.

    Parameters
    ----------
    path : path, optional
        The user's configuration file; ``None`` runs the defaults.

    Returns
    -------
    dict
        The merged configuration, with ``results_dir`` set (see :func:`default_results_dir`).

    Raises
    ------
    ConfigError
        Listing every problem found (unknown keys with suggestions, wrong values).
    """
    defaults = read_yaml(DEFAULT_CONFIG)
    user = read_yaml(path) if path is not None else {}
    config = merge(defaults, user)
    if "results_dir" not in user:
        config["results_dir"] = default_results_dir(path)
    check_config(config)
    return config


def _schema(schema_path: str | Path | None) -> dict[str, Any]:
    with open(schema_path or SCHEMA_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def config_problems(config: Mapping[str, Any], schema_path: str | Path | None = None) -> list[str]:
    """Every problem of ``config`` against the schema, one readable line each."""
    schema = _schema(schema_path)
    problems = _unknown_keys(config, schema, ())
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        if err.validator == "additionalProperties":
            continue  # reported above, with a suggestion
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.schema.get("errorMessage") if isinstance(err.schema, dict) else None
        problems.append(f"`{where}`: {message or err.message}")
    problems.extend(_conditional_problems(config))
    return problems


def check_config(config: Mapping[str, Any], schema_path: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` listing every problem of ``config`` (nothing when valid)."""
    problems = config_problems(config, schema_path)
    if len(problems) == 1:
        raise ConfigError(f"invalid configuration: {problems[0]}")
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problems):\n{listed}")


def _unknown_keys(value: Any, schema: Mapping[str, Any], where: tuple[str, ...]) -> list[str]:
    """Keys the schema does not know, each with the nearest known key at its place."""
    if not isinstance(value, Mapping) or schema.get("type") != "object":
        return []
    known = schema.get("properties", {})
    free = schema.get("additionalProperties", True) is not False
    problems = []
    for key, sub in value.items():
        place = (*where, str(key))
        if key in known:
            problems.extend(_unknown_keys(sub, known[key], place))
        elif not free:
            near = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean `{near[0]}`?" if near else (
                f"; valid keys here: {', '.join(f'`{k}`' for k in known)}")
            problems.append(f"`{'.'.join(place)}`: unknown key{hint}")
    return problems


def _conditional_problems(config: Mapping[str, Any]) -> list[str]:
    """Rules that depend on other values, in words."""
    problems = []
    source = (config.get("input") or {}).get("source")
    folder = (config.get("input") or {}).get("folder")
    if source == "folder":
        if not folder:
            problems.append("`input.folder`: required when `input.source` is `folder`: set it "
                            "to the folder holding practices, patients, events, admissions and "
                            "interventions (CSV or Parquet)")
        elif not Path(folder).is_dir():
            problems.append(f"`input.folder`: {folder} is not a folder")
    study = config.get("study") or {}
    if study.get("study_start") and study.get("study_end") and \
            str(study["study_start"]) >= str(study["study_end"]):
        problems.append("`study.study_end`: must be after `study.study_start`")
    risk = config.get("risk") or {}
    if risk.get("development_index_date") and risk.get("validation_index_date") and \
            str(risk["development_index_date"]) > str(risk["validation_index_date"]):
        problems.append("`risk.validation_index_date`: must not be before "
                        "`risk.development_index_date` (temporal validation looks forward)")
    return problems


def starter_config(extracts: str | Path | None = None) -> str:
    """A configuration for one's own extracts: the default file, every key commented, with
    ``input.source: folder`` and ``input.folder`` set to ``extracts`` (or a placeholder)."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    folder = str(extracts) if extracts else "/path/to/your/extracts"
    replaced = text.replace("  source: synthetic\n", "  source: folder\n", 1).replace(
        "  folder: null\n", f"  folder: {folder}\n", 1)
    if replaced == text:
        raise ConfigError(f"{DEFAULT_CONFIG} no longer has the input section init expects")
    header = ("# phm-eval configuration for your own extracts (written by `phm-eval init`).\n"
              "# Check input.folder, the study dates and the programme name, then run:\n"
              "#   phm-eval validate --config config.yaml   (checks the extracts)\n"
              "#   phm-eval run --config config.yaml\n")
    return header + replaced
