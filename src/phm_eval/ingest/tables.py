"""Layer 3: rules across rows and tables, in DuckDB on the staged (typed) tables.

Keys must be unique over each whole file; then, table by table, foreign keys hold, dates are in
order and no date lies in the future of the extract. A rule runs when every table it reads was
staged (and, for a join, has unique keys); values that broke a row rule were staged as missing
and are not checked again.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from ..contract import TABLES
from ..db import connect
from ..errors import InputError
from ._common import MAX_ROWS_SHOWN, Problems, key_column, sql_text

# Key columns that must be unique within a table, and the rule broken when they are not.
UNIQUE_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "practices": (("practice_id",), "duplicate key: values must be unique"),
    "patients": (("patient_id",), "duplicate key: values must be unique"),
    "admissions": (("spell_id",), "duplicate key: values must be unique"),
    "rollout": (("pcn_id", "practice_id", "programme"),
                "duplicate roll-out row: one start_date per programme and pcn_id (or practice_id)"),
}

# (table, column, rule, condition). In a condition ``t`` is the row checked and ``p`` its patient
# (NULL when the patient_id is unknown).
CROSS_TABLE_RULES: list[tuple[str, str, str, str]] = [
    ("patients", "practice_id", "practice_id is not in practices",
     "t.practice_id NOT IN (SELECT practice_id FROM practices)"),
    ("patients", "registration_start", "registration_start is before date_of_birth",
     "t.registration_start < t.date_of_birth"),
    ("patients", "registration_end", "registration_end is before registration_start",
     "t.registration_end < t.registration_start"),
    ("patients", "date_of_death", "date_of_death is before date_of_birth",
     "t.date_of_death < t.date_of_birth"),
    ("events", "patient_id", "patient_id is not in patients", "p.patient_id IS NULL"),
    ("events", "date", "event date is before the patient's date_of_birth",
     "t.date < p.date_of_birth"),
    ("events", "date", "event date is after the patient's date_of_death",
     "t.date > p.date_of_death"),
    ("admissions", "patient_id", "patient_id is not in patients", "p.patient_id IS NULL"),
    ("admissions", "discharge_date", "discharge_date is before admission_date",
     "t.discharge_date < t.admission_date"),
    ("admissions", "admission_date", "admission_date is before the patient's date_of_birth",
     "t.admission_date < p.date_of_birth"),
    ("admissions", "admission_date", "admission_date is after the patient's date_of_death",
     "t.admission_date > p.date_of_death"),
    ("admissions", "discharge_date",
     "discharge_date is more than one day after the patient's date_of_death",
     "t.discharge_date > p.date_of_death + INTERVAL 1 DAY"),
    ("interventions", "patient_id", "patient_id is not in patients", "p.patient_id IS NULL"),
    ("interventions", "end_date", "end_date is before enrolment_date",
     "t.end_date < t.enrolment_date"),
    ("interventions", "enrolment_date",
     "enrolment_date is before the patient's registration_start",
     "t.enrolment_date < p.registration_start"),
    ("interventions", "enrolment_date", "enrolment_date is after the patient's date_of_death",
     "t.enrolment_date > p.date_of_death"),
    ("rollout", "pcn_id", "pcn_id is not in practices",
     "t.pcn_id NOT IN (SELECT pcn_id FROM practices)"),
    ("rollout", "practice_id", "practice_id is not in practices",
     "t.practice_id NOT IN (SELECT practice_id FROM practices)"),
    ("rollout", "practice_id", "practice_id belongs to another pcn_id in practices",
     "t.pcn_id <> (SELECT x.pcn_id FROM practices x WHERE x.practice_id = t.practice_id)"),
]


def future_rule(today: date) -> str:
    """The rule broken by a date after the day the check runs (or the extract's date)."""
    return f"date is in the future (after {today.isoformat()})"


def _joins_patients(table: str) -> bool:
    return table != "patients" and "patient_id" in TABLES[table].column_names


def _needs(table: str, condition: str) -> set[str]:
    """The other tables a rule reads."""
    needed = {"patients"} if _joins_patients(table) else set()
    if "practices" in condition:
        needed.add("practices")
    return needed


def _rules_for(table: str, today: date) -> list[tuple[str, str, str]]:
    rules = [(c, r, cond) for t, c, r, cond in CROSS_TABLE_RULES if t == table]
    for col in TABLES[table].date_columns:
        rules.append((col, future_rule(today), f"t.{col} > DATE {sql_text(today.isoformat())}"))
    return rules


def _from_clause(table: str) -> str:
    if _joins_patients(table):
        return f"{table} t LEFT JOIN patients p ON t.patient_id = p.patient_id"
    return f"{table} t"


def _check_unique(con: duckdb.DuckDBPyConnection, table: str, file_name: str
                  ) -> InputError | None:
    if table not in UNIQUE_RULES:
        return None
    keys, rule = UNIQUE_RULES[table]
    cols = ", ".join(keys)
    # A key that broke a row rule was staged as missing and is reported already.
    where = "" if len(keys) > 1 else f"WHERE {keys[0]} IS NOT NULL"
    n_dup = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {table} {where} GROUP BY ALL "
                        f"HAVING count(*) > 1)").fetchone()[0]
    if not n_dup:
        return None
    key = key_column(TABLES[table])
    found = con.execute(
        f"SELECT _row, {key}, count(*) OVER () FROM (SELECT _row, {key}, "
        f"count(*) OVER (PARTITION BY {cols}) AS c FROM {table} {where}) WHERE c > 1 "
        f"ORDER BY _row LIMIT {MAX_ROWS_SHOWN}"
    ).fetchall()
    return InputError(file_name, rule, column=keys[0], rows=[r[0] for r in found],
                      keys=[f"{key}={r[1]}" for r in found], n_failing=int(found[0][2]))


def _check_rows(con: duckdb.DuckDBPyConnection, table: str, file_name: str, today: date,
                usable: set[str]) -> list[InputError]:
    rules = [(column, rule, f"({cond}) AND t.{column} IS NOT NULL")
             for column, rule, cond in _rules_for(table, today)
             if _needs(table, cond) <= usable]
    if not rules:
        return []
    source = _from_clause(table)
    # One pass counts every rule; only a broken rule costs a second query for its rows.
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _, _, cond in rules)
        + f" FROM {source}"
    ).fetchone()
    found = []
    key = key_column(TABLES[table])
    for (column, rule, cond), n in zip(rules, counts, strict=True):
        if n:
            rows = con.execute(f"SELECT t._row, t.{key} FROM {source} WHERE {cond} "
                               f"ORDER BY t._row LIMIT {MAX_ROWS_SHOWN}").fetchall()
            found.append(InputError(file_name, rule, column=column, rows=[r[0] for r in rows],
                                    keys=[f"{key}={r[1]}" for r in rows], n_failing=int(n)))
    return found


def check_tables(files: dict[str, Path], names: dict[str, str], today: date,
                 problems: Problems, temp_directory: Path) -> None:
    """Check the rules across rows and tables of the staged ``files``; record what breaks.

    Parameters
    ----------
    files : dict
        Table name to its staged, typed Parquet file.
    names : dict
        Table name to the user's file name (for messages).
    today : date
        No date may be later.
    problems : Problems
        Where broken rules are recorded.
    temp_directory : path
        Where DuckDB may spill.
    """
    con = connect(temp_directory=str(temp_directory))  # within the job's memory limit
    try:
        for table, path in files.items():
            con.execute(
                f"CREATE VIEW {table} AS SELECT * EXCLUDE (file_row_number), "
                f"file_row_number + 1 AS _row "
                f"FROM read_parquet({sql_text(path)}, file_row_number = true)"
            )
        # Keys first: the joins of the later rules assume one row per patient.
        usable = set(files)
        for table in files:
            duplicate = _check_unique(con, table, names[table])
            if duplicate is not None:
                problems.add(duplicate)
                usable.discard(table)
        for table in files:
            problems.extend(_check_rows(con, table, names[table], today, usable))
    finally:
        con.close()
