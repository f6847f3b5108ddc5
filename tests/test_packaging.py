"""The conda environment lists the same dependencies as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# pip name -> conda-forge name where they differ
CONDA_NAMES = {"duckdb": "python-duckdb", "matplotlib": "matplotlib-base",
               "snakemake": "snakemake-minimal"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].strip().lower()


def test_environment_yml_in_sync_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(d) for d in project["dependencies"]}
    wanted |= {_name(d) for group in project["optional-dependencies"].values() for d in group}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(d) for d in dep.get("pip", [])}
        else:
            have.add(_name(dep))
    missing = {CONDA_NAMES.get(w, w) for w in wanted} - have
    assert not missing, f"environment.yml lacks {sorted(missing)}"
