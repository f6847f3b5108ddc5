"""Contract tables as typed DuckDB views, and the date arithmetic every segmentation shares.

Conventions (the same as :mod:`phm_eval.frailty`):

* registered and alive on a date ``d``: ``registration_start <= d``, ``registration_end`` missing
  or ``>= d`` (an end date is the last day registered), ``date_of_death`` missing or ``> d`` (a
  death date is the first day dead) and ``date_of_birth <= d``;
* age is in completed years on the index date;
* windows "in the last N months" before an index date ``d`` run from ``d - N months`` to ``d``,
  both inclusive; follow-up "in the N months after" runs from ``d + 1 day`` to ``d + N months``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd

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
    """SQL condition: registered and alive on ``day`` (a SQL date expression)."""
    a = f"{alias}." if alias else ""
    return (
        f"{a}date_of_birth <= {day} "
        f"AND {a}registration_start <= {day} "
        f"AND ({a}registration_end IS NULL OR {a}registration_end >= {day}) "
        f"AND ({a}date_of_death IS NULL OR {a}date_of_death > {day})"
    )


def age_sql(dob: str, at: str) -> str:
    """SQL for age in completed years at ``at`` of someone born on ``dob``."""
    return (
        f"(year({at}) - year({dob}) - CASE WHEN month({at}) * 100 + day({at}) "
        f"< month({dob}) * 100 + day({dob}) THEN 1 ELSE 0 END)"
    )


def emergency_sql(alias: str, exclude_methods: list[str] | tuple[str, ...]) -> str:
    """SQL condition: the spell is an emergency admission (ADMIMETH starting with 2)."""
    cond = f"{alias}.admission_method LIKE '2%'"
    excluded = [str(m).strip().upper() for m in exclude_methods]
    for method in excluded:
        if not method.isalnum():
            raise InputError("admissions", f"invalid admission method to exclude: {method!r}")
    if excluded:
        listed = ", ".join(f"'{m}'" for m in excluded)
        cond += f" AND {alias}.admission_method NOT IN ({listed})"
    return cond


def fetch(con: duckdb.DuckDBPyConnection, sql: str, label: str) -> pd.DataFrame:
    """Run ``sql``; conversion failures become an :class:`InputError` naming the input."""
    try:
        return con.execute(sql).df()
    except duckdb.ConversionException as err:
        raise InputError(label, f"a value could not be read as its contract type: {err}") from err
