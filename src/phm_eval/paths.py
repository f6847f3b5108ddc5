"""Where the project's default files live.

phm-eval is used from a clone of its repository (it is a workflow as much as a package), so the
default code lists and configuration are read from the clone's ``config/`` folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
CONFIG_DIR = PROJECT_ROOT / "config"
CODELIST_DIR = CONFIG_DIR / "codelists"
WORKFLOW_DIR = PROJECT_ROOT / "workflow"
SCENARIO_FILE = PACKAGE_DIR / "data" / "scenarios.yaml"
