"""Contract tables as typed DuckDB views, and the date arithmetic every segmentation shares.

Who is registered on a date, age, emergency admissions and the windows before and after an
index date are :mod:`phm_eval.definitions`' (the same in every stage); the helpers below keep
the segmentation's call signatures.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd

from phm_eval import definitions
from phm_eval.db import connect
from phm_eval.errors import InputError

TableSource = str | os.PathLike[str] | pd.DataFrame

_TYPED: dict[str, dict[str, str]] = {
    "patients": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "practice_id": "CAST(practice_id AS VARCHAR)",
        "sex": "CAST(sex AS VARCHAR)",
        "date_of_birth": "CAST(date_of_birth AS DATE)",
        "ethnicity": "CAST(ethnicity AS VARCHAR)",
        "imd_decile": "TRY_CAST(imd_decile AS INTEGER)",
        "registration_start": "CAST(registration_start AS DATE)",
        "registration_end": "CAST(registration_end AS DATE)",
        "date_of_death": "CAST(date_of_death AS DATE)",
    },
    "events": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "date": "CAST(date AS DATE)",
        "snomed_code": "CAST(snomed_code AS VARCHAR)",
    },
    "admissions": {
        "patient_id": "CAST(patient_id AS VARCHAR)",
        "spell_id": "CAST(spell_id AS VARCHAR)",
        "admission_date": "CAST(admission_date AS DATE)",
        "discharge_date": "CAST(discharge_date AS DATE)",
        "admission_method": "upper(trim(CAST(admission_method AS VARCHAR)))",
    },
    "practices": {
        "practice_id": "CAST(practice_id AS VARCHAR)",
        "pcn_id": "CAST(pcn_id AS VARCHAR)",
    },
}
# Optional contract columns become typed NULLs when absent.
_OPTIONAL: dict[str, dict[str, str]] = {
    "patients": {
        "sex": "VARCHAR",
        "ethnicity": "VARCHAR",
        "imd_decile": "INTEGER",
        "registration_end": "DATE",
        "date_of_death": "DATE",
        "practice_id": "VARCHAR",
    },
}


def as_date(value: object, name: str = "index_date") -> dt.date:
    """Coerce a date-like value (ISO string, date, Timestamp) to ``datetime.date``."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise InputError(name, f"not a date: {value!r}") from err
    if pd.isna(ts):
        raise InputError(name, f"not a date: {value!r}")
    return ts.date()


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` shifted by whole calendar months, clamped to the month's end (31 Mar - 1 = 28 Feb)."""
    return (pd.Timestamp(day) + pd.DateOffset(months=int(months))).date()


def sql_date(value: dt.date) -> str:
    """A DuckDB date literal built from a ``datetime.date`` (never from user text)."""
    return f"DATE '{value.isoformat()}'"


def open_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    return connect(threads=threads)


def register(con: duckdb.DuckDBPyConnection, table: str, source: TableSource) -> str:
    """Expose ``source`` (DataFrame, Parquet/CSV path or Parquet folder) as typed view ``table``.

    Returns a label for error messages.
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
        elif path.exists():
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
        elif column in _OPTIONAL.get(table, {}):
            select.append(f"CAST(NULL AS {_OPTIONAL[table][column]}) AS {column}")
        else:
            raise InputError(label, f"required column '{column}' is missing", column=column)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {', '.join(select)} FROM {raw}")
    return label


def registered_sql(day: str, alias: str = "") -> str:
    """SQL condition: registered on ``day`` (:func:`phm_eval.definitions.registered_on_sql`)."""
    return definitions.registered_on_sql(day, alias)


def age_sql(dob: str, at: str) -> str:
    """SQL for age in completed years at ``at`` (:func:`phm_eval.definitions.age_sql`)."""
    return definitions.age_sql(dob, at)


def emergency_sql(alias: str, exclude_methods: list[str] | tuple[str, ...]) -> str:
    """SQL condition: the spell is an emergency admission, less the configured exclusions
    (:func:`phm_eval.definitions.emergency_sql`)."""
    try:
        return definitions.emergency_sql(f"{alias}.admission_method", exclude_methods)
    except ValueError as err:
        raise InputError("admissions", str(err)) from err


def fetch(con: duckdb.DuckDBPyConnection, sql: str, label: str) -> pd.DataFrame:
    """Run ``sql``; conversion failures become an :class:`InputError` naming the input."""
    try:
        return con.execute(sql).df()
    except duckdb.ConversionException as err:
        raise InputError(label, f"a value could not be read as its contract type: {err}") from err
