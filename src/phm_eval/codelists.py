"""Loading the clinical code lists that define conditions, deficits, medicines and activity.

Defaults live in the project's ``config/codelists/`` folder (their provenance is in
``config/codelists/SOURCES.md``); a user can point any of them at a local list with the same
columns. Codes are always read as strings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from .errors import ConfigError
from .paths import resolve_codelist_dir

DEFAULT_FILES = {
    "efi": "efi_deficits_snomed.csv",
    "ltc": "ltc_snomed.csv",
    "medications": "medications_dmd.csv",
    "personalised_care": "personalised_care_snomed.csv",
    "hfrs": "hfrs_icd10.csv",
    "efi2_weights": "efi2_weights.csv",
    "efi2_codes": "efi2_candidate_codes_snomed.csv",
}

REQUIRED_COLUMNS = {
    "efi": ["deficit", "snomed_code"],
    "ltc": ["condition", "snomed_code"],
    "medications": ["snomed_code", "drug", "bnf_code"],
    "personalised_care": ["activity", "snomed_code"],
    "hfrs": ["points", "icd10_code"],
}


def codelist_path(name: str, directory: str | Path | None = None) -> Path:
    """Path of a default code list (``name`` as in :data:`DEFAULT_FILES`) or of a file."""
    if name in DEFAULT_FILES:
        return resolve_codelist_dir(directory) / DEFAULT_FILES[name]
    return Path(name)


@lru_cache(maxsize=32)
def _read(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def load_codelist(name: str, directory: str | Path | None = None) -> pd.DataFrame:
    """Read a code list as strings, checking its required columns.

    Parameters
    ----------
    name : str
        One of ``efi``, ``ltc``, ``medications``, ``personalised_care``, ``hfrs``,
        ``efi2_weights``, ``efi2_codes``; or a path to a CSV file.
    directory : path, optional
        Folder to read default-named lists from instead of ``config/codelists``.
    """
    path = codelist_path(name, directory)
    if not path.exists():
        raise ConfigError(f"code list '{name}' not found at {path}")
    table = _read(str(path)).copy()
    missing = [c for c in REQUIRED_COLUMNS.get(name, []) if c not in table.columns]
    if missing:
        raise ConfigError(f"code list {path} lacks column(s) {missing}")
    if "snomed_code" in table.columns:
        table["snomed_code"] = table["snomed_code"].str.strip()
    return table


def codes_by_group(name: str, group_col: str, directory: str | Path | None = None) -> dict:
    """Map each group (deficit, condition, activity) to the sorted array of its codes."""
    table = load_codelist(name, directory)
    return {
        g: sorted(set(sub["snomed_code"]))
        for g, sub in table.groupby(group_col, sort=True)
    }
