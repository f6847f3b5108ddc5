"""Reading the patient identifiers that no released file may contain."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError


def patient_identifiers(patients_path: str | os.PathLike[str]) -> pd.Series:
    """Every ``patient_id`` in a patients table (Parquet or CSV, or a folder holding one).

    Parameters
    ----------
    patients_path : path
        ``patients.parquet`` or ``patients.csv``, or a folder with one of them.

    Returns
    -------
    pandas.Series
        The identifiers as text.

    Raises
    ------
    InputError
        When the file is missing, both or neither file is in the folder, or it has no
        ``patient_id`` column.
    """
    path = Path(patients_path)
    if path.is_dir():
        found = [path / f"patients.{ext}" for ext in ("parquet", "csv")
                 if (path / f"patients.{ext}").is_file()]
        if not found:
            raise InputError(str(path), "no patients.parquet or patients.csv in this folder")
        if len(found) > 1:
            raise InputError(str(path), "both patients.csv and patients.parquet are in this "
                             "folder; keep one")
        path = found[0]
    if not path.is_file():
        raise InputError(str(path), "patients file not found")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path, columns=["patient_id"])
        else:
            frame = pd.read_csv(path, usecols=["patient_id"], dtype=str,
                                keep_default_na=False)
    except (KeyError, ValueError) as exc:
        raise InputError(str(path), f"cannot read column 'patient_id': {exc}",
                         column="patient_id") from exc
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc}") from exc
    return frame["patient_id"].astype(str)


__all__ = ["patient_identifiers"]
