"""DuckDB plumbing shared by the frailty scores: inputs as typed views, and the index date."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd

from phm_eval.errors import InputError

TableSource = str | os.PathLike[str] | pd.DataFrame

# Typed projections of the data contract; only the columns the scores read.
_TYPED = {
    "patients": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "date_of_birth": "CAST(date_of_birth AS DATE)",
        "registration_start": "CAST(registration_start AS DATE)",
        "registration_end": "CAST(registration_end AS DATE)",
        "date_of_death": "CAST(date_of_death AS DATE)",
    },
    "events": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "date": "CAST(date AS DATE)",
        "snomed_code": "CAST(snomed_code AS VARCHAR)",
        "value": "TRY_CAST(value AS DOUBLE)",
    },
    "admissions": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "spell_id": "CAST(spell_id AS VARCHAR)",
        "admission_date": "CAST(admission_date AS DATE)",
        "discharge_date": "CAST(discharge_date AS DATE)",
        "primary_diagnosis": "CAST(primary_diagnosis AS VARCHAR)",
        "secondary_diagnoses": "CAST(secondary_diagnoses AS VARCHAR)",
    },
}
_OPTIONAL = {"events": {"value"}, "admissions": {"secondary_diagnoses"}}


def as_date(value: object, name: str = "index_date") -> dt.date:
    """Coerce a date-like value (ISO string, date, datetime, Timestamp) to ``datetime.date``."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise InputError(name, f"not a date: {value!r}") from err
    if pd.isna(ts):
        raise InputError(name, f"not a date: {value!r}")
    return ts.date()


def sql_date(value: dt.date) -> str:
    """A DuckDB date literal for a ``datetime.date`` (safe: built from a date object)."""
    return f"DATE '{value.isoformat()}'"


def register(con: duckdb.DuckDBPyConnection, table: str, source: TableSource) -> str:
    """Expose ``source`` as a typed view named ``table`` in ``con``.

    Parameters
    ----------
    con : duckdb connection
    table : {"patients", "events", "admissions"}
        Which contract table this is (decides the columns and their types).
    source : DataFrame or path
        A pandas DataFrame, or a path to a Parquet file (or a folder/glob of them) or a CSV file.

    Returns
    -------
    str
        A label for messages (the path, or ``"<table> (DataFrame)"``).
    """
    raw = f"{table}__raw"
    if isinstance(source, pd.DataFrame):
        con.register(raw, source)
        label = f"{table} (DataFrame)"
    else:
        path = Path(source)
        text = str(path).replace("'", "''")
        if path.is_dir():
            reader = f"read_parquet('{text}/**/*.parquet')"
        elif path.suffix.lower() == ".csv":
            reader = f"read_csv('{text}', header = true, all_varchar = true)"
        elif path.exists() or any(ch in str(path) for ch in "*?["):
            reader = f"read_parquet('{text}')"
        else:
            raise InputError(str(path), f"{table} file not found")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {raw} AS SELECT * FROM {reader}")
        label = str(path)
    present = {row[0] for row in con.execute(f"DESCRIBE {raw}").fetchall()}
    select = []
    for column, expr in _TYPED[table].items():
        if column in present:
            select.append(f"{expr} AS {column}")
        elif column in _OPTIONAL.get(table, set()):
            kind = "DOUBLE" if column == "value" else "VARCHAR"
            select.append(f"CAST(NULL AS {kind}) AS {column}")
        else:
            raise InputError(label, f"required column '{column}' is missing", column=column)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {', '.join(select)} FROM {raw}")
    return label


def register_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Register a small lookup table (code list) under ``name``."""
    con.register(name, frame)


def fetch(con: duckdb.DuckDBPyConnection, sql: str, label: str) -> pd.DataFrame:
    """Run ``sql`` and return a DataFrame, turning type errors in the inputs into InputError."""
    try:
        return con.execute(sql).df()
    except duckdb.ConversionException as err:
        raise InputError(label, f"a value cannot be converted to the contract type: {err}") from err
