"""Read an input folder, validate it against the data contract, and write clean Parquet.

Validation happens in three layers, each failing with an :class:`~phm_eval.errors.InputError`
that names the file, column, first offending rows and the rule:

1. the file itself (present, not empty, UTF-8, well-formed CSV, readable Parquet with usable
   column types, the contract's columns);
2. each row against the table's pandera schemas (:mod:`phm_eval.contract`), streamed in chunks
   of Arrow data so large event tables never sit in memory whole;
3. rules across rows and tables (unique keys, foreign keys, dates in order, nothing after the
   study end) in DuckDB, one pass per table when the data are clean.

Records that are valid but out of scope are excluded with a counted reason (the flow table).
Nothing is written to the destination unless every check passes.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc
import pyarrow.csv as arrow_csv
import pyarrow.parquet as pq

from .contract import (
    ARROW_TYPES,
    CONVERSION_RULES,
    REQUIRED_TABLES,
    TABLES,
    TableSpec,
    conversion_schema,
    is_text_type,
    schema,
)
from .errors import ConfigError, InputError

log = logging.getLogger(__name__)
CHUNK_ROWS = 2_000_000
MAX_ROWS_SHOWN = 5
CSV_BLOCK_BYTES = 32 << 20
COMPRESSION = "zstd"
STAGING_COMPRESSION = "none"  # staged files are read once, soon after; speed beats size
ALL_TABLES = (*REQUIRED_TABLES, "rollout")
# Text columns with few distinct values, read dictionary-encoded: reading is
# cheaper and every check runs once per distinct value.
DICTIONARY_COLUMNS = {"events": ("patient_id", "snomed_code")}
_TEXT_DICTIONARY = arrow.dictionary(arrow.int32(), arrow.string())
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


@dataclass
class StudyPeriod:
    """Dates bounding an analysis (inclusive), written ``YYYY-MM-DD``."""

    study_start: str
    study_end: str
    programme: str | None = None

    def __post_init__(self) -> None:
        for name in ("study_start", "study_end"):
            value = str(getattr(self, name))
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is None or len(value) != 10:
                raise ConfigError(f"{name} must be a date written YYYY-MM-DD, not {value!r}")
            setattr(self, name, value)
        if self.study_start > self.study_end:
            raise ConfigError(f"study_start ({self.study_start}) is after study_end "
                              f"({self.study_end})")


def find_table(folder: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``folder`` (``.parquet`` or ``.csv``), or None."""
    folder = Path(folder)
    found = [folder / f"{table}.{ext}" for ext in ("parquet", "csv") if
             (folder / f"{table}.{ext}").exists()]
    if len(found) > 1:
        raise InputError(f"{table}.csv and {table}.parquet",
                         "both a .csv and a .parquet file exist for this table; keep one")
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# Layer 1: files
# ---------------------------------------------------------------------------------------------

_EXPECTED = {"id": "text", "string": "text", "date": "dates (date, timestamp or YYYY-MM-DD text)",
             "integer": "whole numbers", "number": "numbers"}


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
    except UnicodeDecodeError:
        raise _encoding_error(path) from None
    if not header or all(not h.strip() for h in header):
        raise InputError(path.name, "file is empty: expected a header row")
    return [h.strip().lstrip("\ufeff").strip() for h in header]


def _encoding_error(path: Path) -> InputError:
    """Locate the first byte that is not UTF-8, reading the file in blocks."""
    line, carry = 0, b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 22)
            data = carry + block
            if not data:
                break
            try:
                data.decode("utf-8")
                line += data.count(b"\n")
                carry = b""
            except UnicodeDecodeError as exc:
                if block and exc.reason == "unexpected end of data":
                    # A character split across two blocks: decode it with the next block.
                    line += data.count(b"\n", 0, exc.start)
                    carry = data[exc.start:]
                    continue
                line += data.count(b"\n", 0, exc.start)
                break
            if not block:
                break
    rule = "file is not UTF-8 encoded (save it as UTF-8)"
    if line == 0:
        return InputError(path.name, rule + "; the first bad character is in the header")
    return InputError(path.name, rule, rows=[line])


def _iter_csv(path: Path, spec: TableSpec) -> Iterator[arrow.Table]:
    header = _csv_header(path)
    _check_header(path, spec, header)
    bad_rows: list[tuple[int, int]] = []
    dictionary = DICTIONARY_COLUMNS.get(spec.name, ())

    def on_bad_row(row) -> str:
        bad_rows.append((row.expected_columns, row.actual_columns))
        return "error"

    reader = None
    try:
        reader = arrow_csv.open_csv(
            path,
            read_options=arrow_csv.ReadOptions(column_names=header, skip_rows=1,
                                               block_size=CSV_BLOCK_BYTES),
            # Blank lines are kept as rows so that row numbers match the file's lines.
            parse_options=arrow_csv.ParseOptions(invalid_row_handler=on_bad_row,
                                                 ignore_empty_lines=False),
            convert_options=arrow_csv.ConvertOptions(
                column_types={name: _TEXT_DICTIONARY if name in dictionary else arrow.string()
                              for name in header},
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
            ),
        )
        for batch in reader:
            yield arrow.Table.from_batches([batch])
    except arrow.ArrowInvalid as exc:
        if bad_rows:
            expected, actual = bad_rows[0]
            raise InputError(path.name, f"row has {actual} fields but the header has {expected}",
                             rows=_ragged_row(path, expected)) from None
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise _encoding_error(path) from None
        raise InputError(path.name, f"not a well-formed CSV file ({exc})") from None
    finally:
        if reader is not None:
            reader.close()


def _ragged_row(path: Path, expected: int) -> list[int] | None:
    """The data row number of the first row whose field count differs from the header's.

    Arrow does not always know line numbers when parsing in parallel; this slow re-read runs
    only once a problem is known.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.reader(fh)):
            if number > 0 and len(row) != expected and row:
                return [number]
    return None


def _parquet_file(path: Path, dictionary: Iterable[str] = ()) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, read_dictionary=list(dictionary) or None)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(path.name, f"not a readable Parquet file ({exc})") from None


def _check_parquet_types(path: Path, spec: TableSpec, fields: arrow.Schema) -> None:
    for fld in fields:
        kind = spec.column(fld.name).kind
        t = fld.type.value_type if arrow.types.is_dictionary(fld.type) else fld.type
        text = _is_text(t) or arrow.types.is_null(t)
        ok = {
            "id": text, "string": text,
            "date": text or arrow.types.is_date(t) or arrow.types.is_timestamp(t),
            "integer": text or arrow.types.is_integer(t) or arrow.types.is_floating(t),
            "number": (text or arrow.types.is_integer(t) or arrow.types.is_floating(t)
                       or arrow.types.is_decimal(t)),
        }[kind]
        if not ok:
            raise InputError(path.name,
                             f"Parquet column has type {fld.type} but the contract expects "
                             f"{_EXPECTED[kind]}", column=fld.name)


def _is_text(t: arrow.DataType) -> bool:
    return (arrow.types.is_string(t) or arrow.types.is_large_string(t)
            or arrow.types.is_string_view(t))


def _iter_parquet(path: Path, spec: TableSpec) -> Iterator[arrow.Table]:
    handle = _parquet_file(path)
    # pandas writes a non-default index as extra columns; they are not data.
    names = [n for n in handle.schema_arrow.names if not _PANDAS_INDEX.fullmatch(n)]
    fields = arrow.schema([handle.schema_arrow.field(n) for n in names])
    _check_header(path, spec, names)
    _check_parquet_types(path, spec, fields)
    dictionary = [n for n in DICTIONARY_COLUMNS.get(spec.name, ()) if n in names]
    if dictionary:
        handle.close()
        handle = _parquet_file(path, dictionary)
    try:
        for batch in handle.iter_batches(batch_size=CHUNK_ROWS, columns=names):
            yield arrow.Table.from_batches([batch])
    except (OSError, arrow.ArrowException) as exc:
        raise InputError(path.name, f"not a readable Parquet file ({exc})") from None
    finally:
        handle.close()


def _rechunk(tables: Iterable[arrow.Table], size: int) -> Iterator[arrow.Table]:
    """Regroup a stream of tables into tables of exactly ``size`` rows (the last may be short)."""
    pending: list[arrow.Table] = []
    n_pending = 0
    for table in tables:
        while len(table):
            take = min(size - n_pending, len(table))
            pending.append(table.slice(0, take))
            n_pending += take
            table = table.slice(take)
            if n_pending == size:
                yield arrow.concat_tables(pending).combine_chunks()
                pending, n_pending = [], 0
    if pending:
        yield arrow.concat_tables(pending).combine_chunks()


# ---------------------------------------------------------------------------------------------
# Layer 2: rows
# ---------------------------------------------------------------------------------------------

def _normalise(col: arrow.ChunkedArray, kind: str) -> arrow.ChunkedArray:
    """Lossless, check-free conversions towards the contract's type."""
    target = ARROW_TYPES[kind]
    t = col.type
    if kind in ("id", "string") and is_text_type(t):
        return col
    if arrow.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if arrow.types.is_null(t):
        return col.cast(target)
    if arrow.types.is_large_string(t) or arrow.types.is_string_view(t):
        return col.cast(arrow.string())
    if kind == "date" and (arrow.types.is_timestamp(t) or arrow.types.is_date64(t)):
        return col.cast(arrow.date32())
    if arrow.types.is_floating(t):
        # NaN is how pandas writes a missing number.
        col = pc.if_else(pc.is_nan(col), arrow.scalar(None, type=t), col)
        if kind == "number":
            return col.cast(arrow.float64())
    return col


def _typed_chunk(path: Path, spec: TableSpec, table: arrow.Table, offset: int) -> arrow.Table:
    """Validate one chunk (rows ``offset+1 ...``) and return it in the contract's types."""
    index = pd.RangeIndex(offset + 1, offset + 1 + len(table))
    columns = {}
    to_convert = []
    for name in table.column_names:
        kind = spec.column(name).kind
        columns[name] = _normalise(table[name], kind)
        if columns[name].type != ARROW_TYPES[kind] and not (
                kind in ("id", "string") and is_text_type(columns[name].type)):
            to_convert.append(name)
    key_col = _key_column(spec)
    keys = columns.get(key_col)
    if to_convert:
        raw = _frame({name: columns[name] for name in to_convert}, index)
        failed = _failures(conversion_schema(spec.name, tuple(to_convert)), raw)
        if failed is not None:
            # Report problems in contract column order, whichever stage finds them.
            rest = tuple(name for name in columns if name not in to_convert)
            if rest:
                more = _failures(schema(spec.name, rest),
                                 _frame({name: columns[name] for name in rest}, index))
                if more is not None:
                    failed = pd.concat([failed, more], ignore_index=True)
            raise _schema_error(path, spec, failed, key_col, keys, offset)
        for name in to_convert:
            columns[name] = columns[name].cast(ARROW_TYPES[spec.column(name).kind])
    typed = arrow.table({
        col.name: columns.get(col.name, arrow.nulls(len(table), type=ARROW_TYPES[col.kind]))
        for col in spec.columns
    })
    failed = _failures(schema(spec.name), _frame(typed, index))
    if failed is not None:
        raise _schema_error(path, spec, failed, key_col, keys, offset)
    return typed


def _frame(columns, index: pd.RangeIndex) -> pd.DataFrame:
    frame = arrow.table(columns).to_pandas(types_mapper=pd.ArrowDtype)
    frame.index = index
    return frame


def _failures(checks: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame | None:
    try:
        checks.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        return err.failure_cases
    return None


def _schema_error(path: Path, spec: TableSpec, failures: pd.DataFrame, key_col: str,
                  keys: arrow.ChunkedArray | None, offset: int) -> InputError:
    cases = failures.copy()
    order = {c: i for i, c in enumerate(spec.column_names)}
    cases["_order"] = cases["column"].map(order).fillna(len(order))
    cases = cases.sort_values(["_order", "index"], kind="stable")
    first = cases.iloc[0]
    column, check = first["column"], str(first["check"])
    same = cases[(cases["column"] == column) & (cases["check"] == first["check"])]
    rows = sorted({int(i) for i in same["index"].dropna()})
    rule = _rule_text(check, column, spec)
    shown = None
    if keys is not None and rows:
        values = keys.take([r - offset - 1 for r in rows[:MAX_ROWS_SHOWN]]).to_pylist()
        shown = [f"{key_col}={v}" if v is not None else "" for v in values]
    if check not in ("not_nullable", "multiple_fields_uniqueness", "field_uniqueness"):
        values = list(dict.fromkeys(str(v) for v in same["failure_case"]))[:3]
        if values:
            rule += f" (found {', '.join(repr(v) for v in values)})"
    return InputError(path.name, rule, column=column, rows=rows[:MAX_ROWS_SHOWN], keys=shown,
                      n_failing=len(rows))


def _rule_text(check: str, column: str, spec: TableSpec) -> str:
    if check == "not_nullable":
        return "value is missing but the column is required"
    if check in ("multiple_fields_uniqueness", "field_uniqueness"):
        return "duplicate key: values must be unique"
    if check.startswith("coerce_dtype") or check.startswith("dtype"):
        return CONVERSION_RULES[spec.column(column).kind]
    return check


def _key_column(spec: TableSpec) -> str:
    """The column that identifies a row to the person fixing the file."""
    if spec.key:
        return spec.key
    return "patient_id" if "patient_id" in spec.column_names else spec.column_names[0]


def contract_schema(table: str) -> arrow.Schema:
    """The Arrow schema of a table in the contract's column order and types."""
    return arrow.schema([(c.name, ARROW_TYPES[c.kind]) for c in TABLES[table].columns])


def _already_typed(path: Path, spec: TableSpec) -> bool:
    """Whether a Parquet file already has exactly the contract's columns, order and types."""
    if path.suffix != ".parquet":
        return False
    fields = _parquet_file(path).schema_arrow
    want = contract_schema(spec.name)
    return [(f.name, f.type) for f in fields] == [(f.name, f.type) for f in want]


class _NeedsStaging(Exception):
    """A typed Parquet file holds values (NaN) that must be rewritten before use."""


def _load_chunks(path: Path, spec: TableSpec, target: Path | None) -> int:
    """Validate every chunk of ``path``; write the typed rows to ``target`` unless it is None."""
    chunks = _iter_parquet(path, spec) if path.suffix == ".parquet" else _iter_csv(path, spec)
    floats = [c.name for c in spec.columns if c.kind == "number"]
    writer = None
    n_rows = 0
    try:
        for chunk in _rechunk(chunks, CHUNK_ROWS):
            if target is None and any(pc.any(pc.is_nan(chunk[name])).as_py() for name in floats):
                raise _NeedsStaging
            typed = _typed_chunk(path, spec, chunk, n_rows)
            n_rows += len(typed)
            if target is None:
                continue
            if writer is None:
                writer = pq.ParquetWriter(target, typed.schema, compression=STAGING_COMPRESSION)
            writer.write_table(typed, row_group_size=CHUNK_ROWS)
        if target is not None and writer is None:
            pq.write_table(contract_schema(spec.name).empty_table(), target)
    finally:
        if writer is not None:
            writer.close()
    return n_rows


def load_table(folder: Path, table: str, staging: Path) -> Path | None:
    """Validate one table row by row and return a Parquet file of it in the contract's types.

    That file is the input itself when it is a Parquet file already in the contract's columns
    and types (nothing to convert), otherwise a typed copy written to ``staging``. Rows keep
    the input's order. Returns None for an optional table that is absent.
    """
    spec = TABLES[table]
    folder = Path(folder)
    path = find_table(folder, table)
    if path is None:
        if spec.optional_table:
            return None
        raise InputError(f"{table}.csv",
                         f"required file not found in {folder} "
                         f"(expected {table}.csv or {table}.parquet)")
    result = None
    if _already_typed(path, spec):
        try:
            n_rows = _load_chunks(path, spec, None)
            result = path
        except _NeedsStaging:
            log.info("%s: missing numbers are stored as NaN; converting them", path.name)
    if result is None:
        result = Path(staging) / f"{table}.parquet"
        n_rows = _load_chunks(path, spec, result)
    if n_rows == 0 and table in ("practices", "patients"):
        raise InputError(path.name, "file has a header but no rows")
    log.info("%s: %d rows meet the row rules", path.name, n_rows)
    return result


# ---------------------------------------------------------------------------------------------
# Layer 3: rules across rows and tables
# ---------------------------------------------------------------------------------------------

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


def _sql_text(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _rules_for(table: str, study_end: str) -> list[tuple[str, str, str]]:
    rules = [(c, r, cond) for t, c, r, cond in CROSS_TABLE_RULES if t == table]
    for col in TABLES[table].date_columns:
        rules.append((col, f"date is after the study end ({study_end})",
                      f"t.{col} > DATE {_sql_text(study_end)}"))
    return rules


def _from_clause(table: str) -> str:
    if table != "patients" and "patient_id" in TABLES[table].column_names:
        return f"{table} t LEFT JOIN patients p ON t.patient_id = p.patient_id"
    return f"{table} t"


def _check_unique(con: duckdb.DuckDBPyConnection, table: str, file_name: str) -> None:
    if table not in UNIQUE_RULES:
        return
    keys, rule = UNIQUE_RULES[table]
    cols = ", ".join(keys)
    n_dup = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY ALL "
                        f"HAVING count(*) > 1)").fetchone()[0]
    if n_dup:
        key = _key_column(TABLES[table])
        found = con.execute(
            f"SELECT _row, {key}, count(*) OVER () FROM (SELECT _row, {key}, "
            f"count(*) OVER (PARTITION BY {cols}) AS c FROM {table}) WHERE c > 1 "
            f"ORDER BY _row LIMIT {MAX_ROWS_SHOWN}"
        ).fetchall()
        raise InputError(file_name, rule, column=keys[0], rows=[r[0] for r in found],
                         keys=[f"{key}={r[1]}" for r in found], n_failing=int(found[0][2]))


def _check_rows(con: duckdb.DuckDBPyConnection, table: str, file_name: str,
                study_end: str) -> None:
    rules = _rules_for(table, study_end)
    if not rules:
        return
    source = _from_clause(table)
    # One pass counts every rule; only a broken rule costs a second query for its rows.
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _, _, cond in rules)
        + f" FROM {source}"
    ).fetchone()
    for (column, rule, cond), n in zip(rules, counts, strict=True):
        if n:
            key = _key_column(TABLES[table])
            found = con.execute(f"SELECT t._row, t.{key} FROM {source} WHERE {cond} "
                                f"ORDER BY t._row LIMIT {MAX_ROWS_SHOWN}").fetchall()
            raise InputError(file_name, rule, column=column, rows=[r[0] for r in found],
                             keys=[f"{key}={r[1]}" for r in found], n_failing=int(n))


def _check_cross_table(con: duckdb.DuckDBPyConnection, files: dict[str, Path],
                       names: dict[str, str], study_end: str) -> None:
    # Keys first: the joins of the later rules assume one row per patient.
    for table in files:
        _check_unique(con, table, names[table])
    for table in files:
        _check_rows(con, table, names[table], study_end)


# ---------------------------------------------------------------------------------------------
# Scope and output
# ---------------------------------------------------------------------------------------------

def _write_filtered(source: Path, target: Path, keep=None, copy: bool = False
                    ) -> tuple[int, int]:
    """Write the rows of ``source`` for which ``keep(batch)`` is true (all rows when ``keep``
    is None) to ``target``; return the numbers of rows read and kept.

    With ``copy`` and no ``keep``, the file is copied byte for byte.
    """
    names = pq.read_schema(source).names
    handle = pq.ParquetFile(source, read_dictionary=[
        n for n in ("patient_id", "snomed_code", "programme") if n in names])
    n_read = handle.metadata.num_rows
    if keep is None and copy:
        handle.close()
        shutil.copyfile(source, target)
        return n_read, n_read
    n_kept = 0
    # Reading repeated text as dictionaries makes filtering and writing cheap; the written file
    # must not record the dictionaries, so that readers see plain text.
    # Statistics on text cost a fifth of the write and help no later query; dates keep theirs.
    stats = [f.name for f in handle.schema_arrow if not is_text_type(f.type)]
    writer = pq.ParquetWriter(target, handle.schema_arrow, compression=COMPRESSION,
                              store_schema=False, write_statistics=stats)
    try:
        for batch in handle.iter_batches(batch_size=CHUNK_ROWS):
            kept = batch if keep is None else batch.filter(keep(batch))
            writer.write_batch(kept)
            n_kept += kept.num_rows
    finally:
        writer.close()
        handle.close()
    return n_read, n_kept


def _is_in(column: arrow.Array, values: arrow.Array) -> arrow.Array:
    if arrow.types.is_dictionary(column.type):
        return pc.take(pc.is_in(column.dictionary, value_set=values), column.indices)
    return pc.is_in(column, value_set=values)


def _write_outputs(files: dict[str, Path], is_input: set[str], period: StudyPeriod,
                   out: Path) -> list[dict]:
    """Write the in-scope rows of every table to ``out`` and return the flow table rows.

    ``is_input`` names the tables whose file in ``files`` is the user's own (already in the
    contract's form), which may be copied unchanged when nothing is excluded.
    """
    flow: list[dict] = []

    def step(table: str, step: str, reason: str, n: int) -> None:
        flow.append({"table": table, "step": step, "reason": reason, "n": int(n)})

    start = arrow.scalar(date.fromisoformat(period.study_start), type=arrow.date32())
    far = arrow.scalar(date.max, type=arrow.date32())

    def in_study(batch) -> arrow.Array:
        left = pc.fill_null(batch.column("registration_end"), far)
        died = pc.fill_null(batch.column("date_of_death"), far)
        return pc.and_(pc.greater_equal(left, start), pc.greater_equal(died, start))

    n_read, n_kept = _write_filtered(files["patients"], out / "patients.parquet", in_study)
    step("patients", "read", "rows in file", n_read)
    step("patients", "exclude", "registration ended or died before the study start",
         n_read - n_kept)
    step("patients", "kept", "study population", n_kept)
    everyone = n_kept == n_read
    # Foreign keys are checked, so a row is in scope unless its patient is one of the (few)
    # excluded: a small lookup set, built once per batch, is far cheaper than the population.
    ids = pq.read_table(files["patients"], columns=["patient_id"])["patient_id"]
    kept_ids = pq.read_table(out / "patients.parquet", columns=["patient_id"])["patient_id"]
    excluded = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=kept_ids))).combine_chunks()
    programme = arrow.array([period.programme], type=arrow.string())

    def in_population(batch) -> arrow.Array:
        return pc.invert(_is_in(batch.column("patient_id"), excluded))

    def in_programme_and_population(batch) -> arrow.Array:
        return pc.and_(_is_in(batch.column("programme"), programme), in_population(batch))

    for table in ("events", "admissions", "interventions"):
        target = out / f"{table}.parquet"
        if table == "interventions" and period.programme:
            listed = pq.read_table(files[table], columns=["programme"])["programme"]
            n_other = len(listed) - pc.sum(_is_in(listed, programme).cast("int64")).as_py()
            n_read, n_kept = _write_filtered(files[table], target, in_programme_and_population)
            step(table, "read", "rows in file", n_read)
            step(table, "exclude", f"programme other than '{period.programme}'", n_other)
            n_read -= n_other
        else:
            # With nobody excluded every row is in scope.
            n_read, n_kept = _write_filtered(files[table], target,
                                             None if everyone else in_population,
                                             copy=table in is_input)
            step(table, "read", "rows in file", n_read)
        step(table, "exclude", "patient not in the study population", n_read - n_kept)
        step(table, "kept", "in scope", n_kept)
    for table in ("practices", "rollout"):
        if table in files:
            n_read, n_kept = _write_filtered(files[table], out / f"{table}.parquet",
                                             copy=table in is_input)
            step(table, "read", "rows in file", n_read)
            step(table, "kept", "rows in file", n_kept)
    return flow


def _run(source: Path, destination: Path | None, period: StudyPeriod,
         staging: Path) -> pd.DataFrame | None:
    files: dict[str, Path] = {}
    names: dict[str, str] = {}
    for table in ALL_TABLES:
        staged = load_table(source, table, staging)
        if staged is not None:
            files[table] = staged
            names[table] = find_table(source, table).name
    con = duckdb.connect(config={"temp_directory": str(staging / "duckdb.tmp")})
    try:
        for table, path in files.items():
            con.execute(
                f"CREATE VIEW {table} AS SELECT * EXCLUDE (file_row_number), "
                f"file_row_number + 1 AS _row "
                f"FROM read_parquet({_sql_text(path)}, file_row_number = true)"
            )
        _check_cross_table(con, files, names, period.study_end)
    finally:
        con.close()
    if destination is None:
        return None
    out = staging / "out"
    out.mkdir()
    is_input = {t for t, path in files.items() if not path.is_relative_to(staging)}
    flow = pd.DataFrame(_write_outputs(files, is_input, period, out),
                        columns=["table", "step", "reason", "n"])
    flow.to_csv(out / "flow.csv", index=False)
    _replace(out, destination)
    return flow


def _replace(new: Path, destination: Path) -> None:
    """Move ``new`` to ``destination``, keeping the old folder until the move has succeeded."""
    old = None
    if destination.exists():
        old = new.parent / "previous"
        destination.rename(old)
    try:
        new.rename(destination)
    except BaseException:
        if old is not None:
            old.rename(destination)
        raise


def ingest(source: str | Path, destination: str | Path, period: StudyPeriod) -> pd.DataFrame:
    """Validate an input folder and write clean, typed Parquet tables plus ``flow.csv``.

    Parameters
    ----------
    source : path
        Folder with ``practices``, ``patients``, ``events``, ``admissions``, ``interventions``
        (and optionally ``rollout``) as CSV or Parquet (see ``docs/data-contract.md``).
    destination : path
        Folder to write ``<table>.parquet`` and ``flow.csv`` to. Written only if every rule
        passes: on error nothing is created there, and an existing folder is left as it was.
    period : StudyPeriod
        Study dates; records after ``study_end`` break the contract, people who left before
        ``study_start`` are excluded with a counted reason.

    Returns
    -------
    pandas.DataFrame
        The flow table (table, step, reason, n): for every table, rows read minus rows
        excluded equals rows kept.

    Raises
    ------
    InputError
        Naming the file, column, rows and rule of the first problem found.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise InputError(str(source), "input folder not found")
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Staging next to the destination makes the final move a rename on one file system.
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=destination.parent))
    try:
        return _run(source, destination, period, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate(source: str | Path, study_end: str | None = None) -> None:
    """Check an input folder against the contract without writing anything.

    Parameters
    ----------
    source : path
        The input folder.
    study_end : str, optional
        ``YYYY-MM-DD``; no date may be later. Without it, dates are not bounded above.

    Raises
    ------
    InputError
        On the first problem found.
    """
    source = Path(source)
    if not source.is_dir():
        raise InputError(str(source), "input folder not found")
    period = StudyPeriod("1900-01-01", study_end or "9999-12-31")
    with tempfile.TemporaryDirectory(prefix="phm-eval-validate-") as tmp:
        _run(source, None, period, Path(tmp))
