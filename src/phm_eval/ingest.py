"""Read an input folder, validate it against the data contract, and write clean Parquet.

Validation happens in three layers, each failing with an :class:`~phm_eval.errors.InputError`
that names the file, column, first offending rows and the rule:

1. the file itself (present, not empty, UTF-8, well-formed CSV, the contract's columns);
2. each row against the table's pandera schema (:mod:`phm_eval.contract`), streamed in chunks so
   large event tables never sit in memory whole;
3. rules across tables (foreign keys, dates in order, nothing after the study end) in DuckDB.

Records that are valid but out of scope are excluded with a counted reason (the flow table).
Nothing is written to the destination unless every check passes.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from .contract import REQUIRED_TABLES, TABLES, TableSpec, schema
from .errors import InputError

log = logging.getLogger(__name__)
CHUNK_ROWS = 1_000_000
MAX_ROWS_SHOWN = 5


@dataclass
class StudyPeriod:
    """Dates bounding an analysis (inclusive)."""

    study_start: str
    study_end: str
    programme: str | None = None


def find_table(folder: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``folder`` (``.parquet`` or ``.csv``), or None."""
    found = [folder / f"{table}.{ext}" for ext in ("parquet", "csv") if
             (folder / f"{table}.{ext}").exists()]
    if len(found) > 1:
        raise InputError(str(found[0].parent / table),
                         "both a .csv and a .parquet file exist for this table; keep one")
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# Layer 1: files
# ---------------------------------------------------------------------------------------------

def _check_header(path: Path, spec: TableSpec, columns: list[str]) -> None:
    seen = set()
    for name in columns:
        if name in seen:
            raise InputError(path.name, "column name appears twice in the header", column=name)
        seen.add(name)
    for name in spec.required_columns:
        if name not in columns:
            raise InputError(path.name, "required column is missing", column=name)
    allowed = set(spec.column_names)
    for name in columns:
        if name not in allowed:
            raise InputError(
                path.name,
                f"unexpected column (the contract's columns are: {', '.join(spec.column_names)})",
                column=name,
            )


def _csv_header(path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise InputError(path.name, "file is empty: expected a header row")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, exc) from None
    if not header or all(not h.strip() for h in header):
        raise InputError(path.name, "file is empty: expected a header row")
    return [h.strip().lstrip("\ufeff") for h in header]


def _encoding_error(path: Path, exc: UnicodeDecodeError) -> InputError:
    with open(path, "rb") as fh:
        data = fh.read()
    # The byte offset is within the chunk decoded; search the file for the first bad byte.
    try:
        data.decode("utf-8")
        offset = exc.start
    except UnicodeDecodeError as full:
        offset = full.start
    line = data.count(b"\n", 0, offset)
    return InputError(path.name, "file is not UTF-8 encoded (save it as UTF-8)",
                      rows=[line] if line > 0 else None)


def _iter_csv(path: Path, spec: TableSpec) -> Iterator[pd.DataFrame]:
    header = _csv_header(path)
    _check_header(path, spec, header)
    try:
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8",
            chunksize=CHUNK_ROWS, skipinitialspace=False, engine="c",
        )
        offset = 0
        for chunk in reader:
            chunk.columns = [c.strip().lstrip("\ufeff") for c in chunk.columns]
            chunk.index = pd.RangeIndex(offset + 1, offset + 1 + len(chunk))
            offset += len(chunk)
            yield chunk
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, exc) from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = (int(g) for g in match.groups())
            raise InputError(path.name,
                             f"row has {saw} fields but the header has {expected}",
                             rows=[line - 1]) from None
        raise InputError(path.name, f"not a well-formed CSV file ({exc})") from None


def _iter_parquet(path: Path, spec: TableSpec) -> Iterator[pd.DataFrame]:
    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(path.name, f"not a readable Parquet file ({exc})") from None
    columns = handle.schema_arrow.names
    _check_header(path, spec, columns)
    offset = 0
    for batch in handle.iter_batches(batch_size=CHUNK_ROWS):
        table = pa_arrow.Table.from_batches([batch])
        for name in spec.date_columns:
            if name in table.column_names:
                table = _date_as_text(table, name)
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield frame
    if offset == 0:
        yield pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _date_as_text(table: pa_arrow.Table, name: str) -> pa_arrow.Table:
    col = table[name]
    if pa_arrow.types.is_timestamp(col.type):
        col = col.cast(pa_arrow.date32())
    if pa_arrow.types.is_date(col.type):
        col = col.cast(pa_arrow.string())
    return table.set_column(table.column_names.index(name), name, col)


# ---------------------------------------------------------------------------------------------
# Layer 2: rows
# ---------------------------------------------------------------------------------------------

def _schema_error(path: Path, spec: TableSpec, frame: pd.DataFrame,
                  err: pa.errors.SchemaErrors) -> InputError:
    cases = err.failure_cases.copy()
    order = {c: i for i, c in enumerate(spec.column_names)}
    cases["_order"] = cases["column"].map(order).fillna(len(order))
    cases = cases.sort_values(["_order", "index"], kind="stable")
    first = cases.iloc[0]
    column, check = first["column"], str(first["check"])
    same = cases[(cases["column"] == column) & (cases["check"] == first["check"])]
    rows = sorted({int(i) for i in same["index"].dropna()})
    rule = _rule_text(check, column, spec)
    key_col = spec.key or "patient_id"
    keys = None
    if key_col in frame.columns and rows:
        keys = [f"{key_col}={frame.at[r, key_col]}" for r in rows[:MAX_ROWS_SHOWN]]
    values = same["failure_case"].head(3).tolist()
    if values and check not in ("not_nullable",):
        rule += f" (found {', '.join(repr(v) for v in values)})"
    return InputError(path.name, rule, column=column, rows=rows[:MAX_ROWS_SHOWN], keys=keys,
                      n_failing=len(rows))


def _rule_text(check: str, column: str, spec: TableSpec) -> str:
    if check == "not_nullable":
        return "value is missing but the column is required"
    if check == "multiple_fields_uniqueness" or check == "field_uniqueness":
        return "duplicate key: values must be unique"
    if check.startswith("coerce_dtype") or check.startswith("dtype"):
        kind = next(c.kind for c in spec.columns if c.name == column)
        return {"integer": "must be a whole number", "number": "must be a number"}.get(
            kind, "must be text")
    return check


def _validate_frame(path: Path, spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        return schema(spec.name).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise _schema_error(path, spec, frame, err) from None


def _typed(spec: TableSpec, frame: pd.DataFrame) -> pa_arrow.Table:
    out = {}
    for col in spec.columns:
        if col.name not in frame.columns:
            out[col.name] = pa_arrow.nulls(len(frame), type=_arrow_type(col.kind))
            continue
        s = frame[col.name]
        if col.kind == "date":
            out[col.name] = pa_arrow.array(
                pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").dt.date,
                type=pa_arrow.date32(), from_pandas=True)
        elif col.kind == "integer":
            out[col.name] = pa_arrow.array(s, type=pa_arrow.int64(), from_pandas=True)
        elif col.kind == "number":
            out[col.name] = pa_arrow.array(s, type=pa_arrow.float64(), from_pandas=True)
        else:
            out[col.name] = pa_arrow.array(s.astype(object).where(s.notna(), None),
                                           type=pa_arrow.string())
    out["_row"] = pa_arrow.array(frame.index.to_numpy(), type=pa_arrow.int64())
    return pa_arrow.table(out)


def _arrow_type(kind: str):
    return {"date": pa_arrow.date32(), "integer": pa_arrow.int64(),
            "number": pa_arrow.float64()}.get(kind, pa_arrow.string())


def load_table(folder: Path, table: str, staging: Path) -> Path | None:
    """Validate one table row by row and stage it as typed Parquet with a ``_row`` column."""
    spec = TABLES[table]
    path = find_table(folder, table)
    if path is None:
        if spec.optional_table:
            return None
        raise InputError(str(folder / f"{table}.csv"),
                         "required file not found (expected <table>.csv or <table>.parquet)")
    frames = _iter_parquet(path, spec) if path.suffix == ".parquet" else _iter_csv(path, spec)
    target = staging / f"{table}.parquet"
    writer = None
    seen_keys: set | None = set() if spec.key else None
    n_rows = 0
    for frame in frames:
        frame = _validate_frame(path, spec, frame)
        if seen_keys is not None and len(frame):
            dup = frame[spec.key].isin(seen_keys)
            if dup.any():
                rows = frame.index[dup].tolist()
                raise InputError(path.name, "duplicate key: values must be unique",
                                 column=spec.key, rows=rows[:MAX_ROWS_SHOWN],
                                 keys=frame.loc[dup, spec.key].head(MAX_ROWS_SHOWN).tolist(),
                                 n_failing=len(rows))
            seen_keys.update(frame[spec.key])
        typed = _typed(spec, frame)
        if writer is None:
            writer = pq.ParquetWriter(target, typed.schema, compression="zstd")
        writer.write_table(typed)
        n_rows += len(frame)
    if writer is not None:
        writer.close()
    if n_rows == 0 and table in ("practices", "patients"):
        raise InputError(path.name, "file has a header but no rows")
    return target


# ---------------------------------------------------------------------------------------------
# Layer 3: rules across rows and tables
# ---------------------------------------------------------------------------------------------

# (table, column, rule, FROM/WHERE clause over staged views; t = the table checked, p = patients)
CROSS_TABLE_RULES: list[tuple[str, str, str, str]] = [
    ("patients", "practice_id", "practice_id is not in practices",
     "patients t WHERE t.practice_id NOT IN (SELECT practice_id FROM practices)"),
    ("patients", "registration_start", "registration starts before date_of_birth",
     "patients t WHERE t.registration_start < t.date_of_birth"),
    ("patients", "registration_end", "registration_end is before registration_start",
     "patients t WHERE t.registration_end < t.registration_start"),
    ("patients", "date_of_death", "date_of_death is before date_of_birth",
     "patients t WHERE t.date_of_death < t.date_of_birth"),
    ("events", "patient_id", "patient_id is not in patients",
     "events t ANTI JOIN patients p USING (patient_id)"),
    ("events", "date", "event date is before the patient's date_of_birth",
     "events t JOIN patients p USING (patient_id) WHERE t.date < p.date_of_birth"),
    ("events", "date", "event date is after the patient's date_of_death",
     "events t JOIN patients p USING (patient_id) WHERE t.date > p.date_of_death"),
    ("admissions", "patient_id", "patient_id is not in patients",
     "admissions t ANTI JOIN patients p USING (patient_id)"),
    ("admissions", "discharge_date", "discharge_date is before admission_date",
     "admissions t WHERE t.discharge_date < t.admission_date"),
    ("admissions", "admission_date", "admission_date is before the patient's date_of_birth",
     "admissions t JOIN patients p USING (patient_id) WHERE t.admission_date < p.date_of_birth"),
    ("admissions", "discharge_date",
     "discharge_date is more than one day after the patient's date_of_death",
     "admissions t JOIN patients p USING (patient_id) "
     "WHERE t.discharge_date > p.date_of_death + INTERVAL 1 DAY"),
    ("interventions", "patient_id", "patient_id is not in patients",
     "interventions t ANTI JOIN patients p USING (patient_id)"),
    ("interventions", "end_date", "end_date is before enrolment_date",
     "interventions t WHERE t.end_date < t.enrolment_date"),
    ("interventions", "enrolment_date", "enrolment_date is before the patient's date_of_birth",
     "interventions t JOIN patients p USING (patient_id) "
     "WHERE t.enrolment_date < p.date_of_birth"),
    ("rollout", "pcn_id", "pcn_id is not in practices",
     "rollout t WHERE t.pcn_id NOT IN (SELECT pcn_id FROM practices)"),
    ("rollout", "practice_id", "practice_id is not in practices",
     "rollout t WHERE t.practice_id IS NOT NULL "
     "AND t.practice_id NOT IN (SELECT practice_id FROM practices)"),
]


def _check_cross_table(con: duckdb.DuckDBPyConnection, files: dict[str, Path],
                       names: dict[str, str], study_end: str) -> None:
    present = set(files)
    for table, column, rule, clause in CROSS_TABLE_RULES:
        if table not in present:
            continue
        _raise_if_rows(con, names[table], table, column, rule, clause)
    for table in present:
        for col in TABLES[table].date_columns:
            clause = f"{table} t WHERE t.{col} > DATE '{study_end}'"
            _raise_if_rows(con, names[table], table, col,
                           f"date is after the study end ({study_end})", clause)


def _raise_if_rows(con, file_name: str, table: str, column: str, rule: str, clause: str) -> None:
    key = TABLES[table].key or "patient_id"
    key_expr = f"t.{key}" if key in TABLES[table].column_names else "NULL"
    sql = (f"SELECT t._row, {key_expr} AS k, count(*) OVER () AS n FROM {clause} "
           f"ORDER BY t._row LIMIT {MAX_ROWS_SHOWN}")
    found = con.execute(sql).fetchall()
    if found:
        raise InputError(file_name, rule, column=column, rows=[r[0] for r in found],
                         keys=[f"{key}={r[1]}" for r in found], n_failing=int(found[0][2]))


# ---------------------------------------------------------------------------------------------
# Scope and output
# ---------------------------------------------------------------------------------------------

def _scope(con, files: dict[str, Path], period: StudyPeriod) -> list[dict]:
    """Create in-scope views and return the flow table rows."""
    flow: list[dict] = []

    def count(sql: str) -> int:
        return int(con.execute(sql).fetchone()[0])

    n_pat = count("SELECT count(*) FROM patients")
    flow.append({"table": "patients", "step": "read", "reason": "rows in file",
                 "n": n_pat})
    con.execute(
        f"""CREATE VIEW patients_in AS SELECT * FROM patients
        WHERE coalesce(registration_end, DATE '9999-12-31') >= DATE '{period.study_start}'
          AND coalesce(date_of_death, DATE '9999-12-31') >= DATE '{period.study_start}'"""
    )
    n_in = count("SELECT count(*) FROM patients_in")
    flow.append({"table": "patients", "step": "exclude",
                 "reason": "registration ended or died before the study start", "n": n_pat - n_in})
    flow.append({"table": "patients", "step": "kept", "reason": "study population", "n": n_in})
    for table in ("events", "admissions", "interventions"):
        if table not in files:
            continue
        n_all = count(f"SELECT count(*) FROM {table}")
        flow.append({"table": table, "step": "read", "reason": "rows in file", "n": n_all})
        where = "patient_id IN (SELECT patient_id FROM patients_in)"
        if table == "interventions" and period.programme:
            n_other = count(f"SELECT count(*) FROM {table} WHERE programme <> "
                            f"'{period.programme}'")
            flow.append({"table": table, "step": "exclude",
                         "reason": f"programme other than '{period.programme}'", "n": n_other})
            where += f" AND programme = '{period.programme}'"
            n_all -= n_other
        con.execute(f"CREATE VIEW {table}_in AS SELECT * FROM {table} WHERE {where}")
        n_keep = count(f"SELECT count(*) FROM {table}_in")
        flow.append({"table": table, "step": "exclude",
                     "reason": "patient not in the study population", "n": n_all - n_keep})
        flow.append({"table": table, "step": "kept", "reason": "in scope", "n": n_keep})
    for table in ("practices", "rollout"):
        if table in files:
            con.execute(f"CREATE VIEW {table}_in AS SELECT * FROM {table}")
            flow.append({"table": table, "step": "kept", "reason": "rows in file",
                         "n": count(f"SELECT count(*) FROM {table}")})
    return flow


def ingest(source: str | Path, destination: str | Path, period: StudyPeriod) -> pd.DataFrame:
    """Validate an input folder and write clean, typed Parquet tables plus ``flow.csv``.

    Parameters
    ----------
    source : path
        Folder with ``practices``, ``patients``, ``events``, ``admissions``, ``interventions``
        (and optionally ``rollout``) as CSV or Parquet (see ``docs/data-contract.md``).
    destination : path
        Folder to write ``<table>.parquet`` and ``flow.csv`` to. Written only if every rule
        passes: on error nothing is created there.
    period : StudyPeriod
        Study dates; records after ``study_end`` break the contract, people who left before
        ``study_start`` are excluded with a counted reason.

    Returns
    -------
    pandas.DataFrame
        The flow table (table, step, reason, n).

    Raises
    ------
    InputError
        Naming the file, column, rows and rule of the first problem found.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise InputError(str(source), "input folder not found")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=destination.parent))
    try:
        files: dict[str, Path] = {}
        names: dict[str, str] = {}
        for table in (*REQUIRED_TABLES, "rollout"):
            staged = load_table(source, table, staging)
            if staged is not None:
                files[table] = staged
                names[table] = find_table(source, table).name
        con = duckdb.connect()
        for table, path in files.items():
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
        _check_cross_table(con, files, names, period.study_end)
        flow = _scope(con, files, period)
        out = staging / "out"
        out.mkdir()
        for table in files:
            columns = ", ".join(TABLES[table].column_names)
            con.execute(
                f"COPY (SELECT {columns} FROM {table}_in ORDER BY _row) TO "
                f"'{out / (table + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)"
            )
        con.close()
        flow_df = pd.DataFrame(flow, columns=["table", "step", "reason", "n"])
        flow_df.to_csv(out / "flow.csv", index=False)
        if destination.exists():
            shutil.rmtree(destination)
        out.rename(destination)
        return flow_df
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate(source: str | Path, study_end: str | None = None) -> None:
    """Check an input folder against the contract without writing anything.

    Raises :class:`InputError` on the first problem.
    """
    source = Path(source)
    end = study_end or "9999-12-31"
    with tempfile.TemporaryDirectory() as tmp:
        ingest(source, Path(tmp) / "out", StudyPeriod("1900-01-01", end))
