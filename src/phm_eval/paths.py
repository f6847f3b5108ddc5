"""Where the project's default files live: the workflow, the default configurations, the code
lists and the manuscript source.

In a clone of the repository (and an editable install) they are the clone's ``workflow/``,
``config/`` and ``manuscript/`` folders. A built wheel carries copies of the same folders as
package data under ``phm_eval/_bundle/`` (see ``setup.py``), so an installed package runs
outside any clone.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLE = PACKAGE_DIR / "_bundle"
_CLONE = PACKAGE_DIR.parents[1]

#: The folder holding ``workflow/``, ``config/`` and ``manuscript/``: the bundle of an installed
#: wheel when present, else the clone this package was imported from.
PROJECT_ROOT = _BUNDLE if (_BUNDLE / "workflow" / "Snakefile").is_file() else _CLONE
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG = CONFIG_DIR / "config.yaml"
CODELIST_DIR = CONFIG_DIR / "codelists"
WORKFLOW_DIR = PROJECT_ROOT / "workflow"
SCHEMA_FILE = WORKFLOW_DIR / "schemas" / "config.schema.yaml"
MANUSCRIPT_DIR = PROJECT_ROOT / "manuscript"
SCENARIO_FILE = PACKAGE_DIR / "data" / "scenarios.yaml"

#: The folders a wheel bundles (relative to the clone).
BUNDLED_FOLDERS = ("workflow", "config", "manuscript")


def resolve_codelist_dir(directory: str | Path | None) -> Path:
    """The code-list folder a configuration names.

    ``None`` means the code lists shipped with phm-eval. A relative path is taken from the
    working directory when it exists there, else from the project folder (so the default
    ``config/codelists`` works from a clone and from an installed wheel alike).
    """
    if directory is None:
        return CODELIST_DIR
    folder = Path(directory)
    if folder.is_absolute() or folder.exists():
        return folder
    return PROJECT_ROOT / folder
