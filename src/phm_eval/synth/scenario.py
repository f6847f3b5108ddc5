"""Named synthetic scenarios: loading, inheritance and overrides."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..paths import SCENARIO_FILE


def _deep_update(base: dict, update: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Scenario:
    """A fully resolved synthetic scenario (defaults + named overrides + user overrides)."""

    name: str
    params: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def programme(self) -> dict[str, Any]:
        return self.params["programme"]


def available_scenarios(path: Path | None = None) -> dict[str, str]:
    """Return the scenario names with their one-line descriptions."""
    spec = _read(path)
    return {k: v.get("description", "") for k, v in spec["scenarios"].items()}


def _read(path: Path | None) -> dict:
    with open(path or SCENARIO_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_scenario(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    path: Path | None = None,
) -> Scenario:
    """Resolve a named scenario.

    Parameters
    ----------
    name : str
        A scenario defined in the scenario file (see :func:`available_scenarios`).
    overrides : mapping, optional
        Values that replace the scenario's (nested mappings are merged), e.g.
        ``{"n_patients": 5000, "programme": {"hazard_ratio": 0.7}}``.
    path : Path, optional
        Another scenario file; defaults to the package's ``data/scenarios.yaml``.
    """
    spec = _read(path)
    scenarios = spec["scenarios"]
    if name not in scenarios:
        raise ConfigError(
            f"unknown synthetic scenario '{name}'; choose one of: {', '.join(sorted(scenarios))}"
        )
    chain = []
    current: str | None = name
    while current is not None:
        if current in chain:
            raise ConfigError(f"scenario '{name}' inherits from itself via {chain}")
        chain.append(current)
        current = scenarios[current].get("base")
    params = copy.deepcopy(spec["defaults"])
    for link in reversed(chain):
        body = {k: v for k, v in scenarios[link].items() if k not in ("base", "description")}
        params = _deep_update(params, body)
    if overrides:
        params = _deep_update(params, {k: v for k, v in overrides.items() if v is not None})
    params["scenario"] = name
    params["description"] = scenarios[name].get("description", "")
    _check(params)
    return Scenario(name=name, params=params)


def _check(params: dict) -> None:
    if int(params["n_patients"]) < 500:
        raise ConfigError("n_patients must be at least 500 for a usable synthetic population")
    prog = params["programme"]
    if prog["rollout_unit"] not in ("practice", "pcn"):
        raise ConfigError("programme.rollout_unit must be 'practice' or 'pcn'")
    hr = prog["hazard_ratio"]
    if not (0 < float(hr) <= 5):
        raise ConfigError("programme.hazard_ratio must be in (0, 5]")
    by_cat = prog.get("hazard_ratio_by_efi_category")
    if by_cat:
        missing = {"fit", "mild", "moderate", "severe"} - set(by_cat)
        if missing:
            raise ConfigError(
                f"programme.hazard_ratio_by_efi_category lacks {sorted(missing)}"
            )
