"""Layer 2: every row against its table's pandera schemas, chunk by chunk.

Warehouse quirks are normalised first (:mod:`.quirks`), then values are converted to the
contract's types and checked. Every broken rule is recorded (its first rows, how many rows
break it over the whole file, a few of the values found) and reading goes on, so one pass
reports everything. Values that break a rule are staged as missing, so that the checks across
tables that follow neither trip over them nor report them twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contract import (
    ARROW_TYPES,
    CONVERSION_RULES,
    TABLES,
    TableSpec,
    conversion_schema,
    is_text_type,
    schema,
)
from ..errors import InputError
from . import _common
from ._common import MAX_ROWS_SHOWN, STAGING_COMPRESSION, contract_schema, key_column
from .files import find_table, iter_csv, iter_parquet, parquet_file, rechunk
from .quirks import DataQuality, normalise_column

log = logging.getLogger(__name__)
_NOT_VALUE_RULES = ("not_nullable", "multiple_fields_uniqueness", "field_uniqueness")


@dataclass
class _Rule:
    column: str | None
    rule: str
    rows: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    n_failing: int = 0
    found: list[str] = field(default_factory=list)


class RowFailures:
    """The row rules one file breaks, accumulated over its chunks."""

    def __init__(self, file: str, spec: TableSpec) -> None:
        self.file, self.spec = file, spec
        self._rules: dict[tuple[str | None, str], _Rule] = {}

    def add(self, column: str | None, rule: str, rows: list[int], keys: list[str],
            found: list[str]) -> None:
        entry = self._rules.setdefault((column, rule), _Rule(column, rule))
        room = MAX_ROWS_SHOWN - len(entry.rows)
        entry.rows += rows[:room]
        entry.keys += keys[:room]
        entry.n_failing += len(rows)
        for value in found:
            if value not in entry.found and len(entry.found) < 3:
                entry.found.append(value)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def errors(self) -> list[InputError]:
        """One error per broken rule, in the contract's column order, then by first row."""
        order = {c: i for i, c in enumerate(self.spec.column_names)}
        entries = sorted(self._rules.values(), key=lambda e: (
            order.get(e.column, len(order)), e.rows[0] if e.rows else 0))
        out = []
        for e in entries:
            rule = e.rule
            if e.found:
                rule += f" (found {', '.join(repr(v) for v in e.found)})"
            out.append(InputError(self.file, rule, column=e.column, rows=e.rows,
                                  keys=e.keys or None, n_failing=e.n_failing or None))
        return out


@dataclass
class _Pass:
    """What one pass over a file found."""

    failures: RowFailures
    quality: DataQuality = field(default_factory=DataQuality)


def _towards_type(col: arrow.ChunkedArray, kind: str) -> arrow.ChunkedArray:
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
        col = col.cast(arrow.string())
        if kind in ("id", "string"):
            return col
        t = col.type
    if kind == "date" and (arrow.types.is_timestamp(t) or arrow.types.is_date64(t)):
        return col.cast(arrow.date32())
    if arrow.types.is_floating(t):
        # NaN is how pandas writes a missing number.
        col = pc.if_else(pc.is_nan(col), arrow.scalar(None, type=t), col)
        if kind == "number":
            return col.cast(arrow.float64())
    return col


def _normalise_quirks(col: arrow.ChunkedArray, spec: TableSpec, name: str, file: str,
                      quality: DataQuality) -> arrow.ChunkedArray:
    if not is_text_type(col.type) or not col.num_chunks:
        return col
    chunks = []
    for chunk in col.chunks:
        new, notes = normalise_column(chunk, spec.column(name))
        chunks.append(new)
        for quirk, action, n, example in notes:
            quality.add(file, name, quirk, action, n, example)
    return arrow.chunked_array(chunks, type=col.type)


def _null_rows(col: arrow.ChunkedArray | arrow.Array, positions: np.ndarray
               ) -> arrow.ChunkedArray:
    """``col`` with the values at ``positions`` (0-based) made missing."""
    values = col.combine_chunks() if isinstance(col, arrow.ChunkedArray) else col
    mask = np.zeros(len(values), dtype=bool)
    mask[positions] = True
    t = values.type
    if arrow.types.is_dictionary(t):
        plain = values.cast(t.value_type)
        out = pc.if_else(arrow.array(mask), arrow.scalar(None, t.value_type), plain)
        return arrow.chunked_array([pc.dictionary_encode(out).cast(t)])
    return arrow.chunked_array([pc.if_else(arrow.array(mask), arrow.scalar(None, t), values)])


def typed_chunk(path: Path, spec: TableSpec, table: arrow.Table, offset: int,
                found: _Pass) -> arrow.Table:
    """Check one chunk (rows ``offset+1 ...``) and return it in the contract's types.

    Broken rules are recorded in ``found``; the values breaking them are returned missing.
    """
    index = pd.RangeIndex(offset + 1, offset + 1 + len(table))
    columns = {}
    to_convert = []
    for name in table.column_names:
        kind = spec.column(name).kind
        col = _towards_type(table[name], kind)
        columns[name] = _normalise_quirks(col, spec, name, path.name, found.quality)
        if columns[name].type != ARROW_TYPES[kind] and not (
                kind in ("id", "string") and is_text_type(columns[name].type)):
            to_convert.append(name)
    key_col = key_column(spec)
    keys = columns.get(key_col)
    reported: set[tuple[str, int]] = set()
    if to_convert:
        raw = _frame({name: columns[name] for name in to_convert}, index)
        failed = _failures(conversion_schema(spec.name, tuple(to_convert)), raw)
        bad = _record(failed, spec, key_col, keys, offset, found.failures, reported)
        for name in to_convert:
            col = columns[name]
            if bad.get(name):
                col = _null_rows(col, np.asarray(bad[name]) - offset - 1)
            columns[name] = col.cast(ARROW_TYPES[spec.column(name).kind])
    typed = arrow.table({
        col.name: columns.get(col.name, arrow.nulls(len(table), type=ARROW_TYPES[col.kind]))
        for col in spec.columns
    })
    failed = _failures(schema(spec.name, unique=False), _frame(typed, index))
    bad = _record(failed, spec, key_col, keys, offset, found.failures, reported)
    for name, rows in bad.items():
        if rows and name in typed.column_names:
            i = typed.column_names.index(name)
            typed = typed.set_column(i, name,
                                     _null_rows(typed[name], np.asarray(rows) - offset - 1))
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


def _record(failed: pd.DataFrame | None, spec: TableSpec, key_col: str,
            keys: arrow.ChunkedArray | None, offset: int, failures: RowFailures,
            reported: set[tuple[str, int]]) -> dict[str, list[int]]:
    """Record the broken rules of a chunk; return the failing rows of each column.

    A value already reported in this chunk (e.g. missing, then missing again once typed) is
    not reported twice.
    """
    bad: dict[str, list[int]] = {}
    if failed is None:
        return bad
    cases = failed.copy()
    cases["column"] = cases["column"].astype(object)
    for (column, check), same in cases.groupby(["column", "check"], sort=False, dropna=False):
        column = None if pd.isna(column) else str(column)
        check = str(check)
        rows = sorted({int(i) for i in same["index"].dropna()
                       if (column, int(i)) not in reported})
        if same["index"].notna().any() and not rows:
            continue
        reported.update((column, r) for r in rows)
        if column is not None:
            bad.setdefault(column, []).extend(rows)
        shown = []
        if keys is not None and rows:
            values = keys.take([r - offset - 1 for r in rows[:MAX_ROWS_SHOWN]]).to_pylist()
            shown = [f"{key_col}={v}" if v is not None else "" for v in values]
        values = []
        if check not in _NOT_VALUE_RULES:
            in_rows = same[same["index"].isin(rows)] if rows else same
            values = list(dict.fromkeys(str(v) for v in in_rows["failure_case"]))[:3]
        failures.add(column, _rule_text(check, column, spec), rows, shown, values)
    return bad


def _rule_text(check: str, column: str | None, spec: TableSpec) -> str:
    if check == "not_nullable":
        return "value is missing but the column is required"
    if check in ("multiple_fields_uniqueness", "field_uniqueness"):
        return "duplicate key: values must be unique"
    if column and (check.startswith("coerce_dtype") or check.startswith("dtype")):
        return CONVERSION_RULES[spec.column(column).kind]
    return check


def already_typed(path: Path, spec: TableSpec) -> bool:
    """Whether a Parquet file already has exactly the contract's columns, order and types."""
    if path.suffix != ".parquet":
        return False
    fields = parquet_file(path).schema_arrow
    want = contract_schema(spec.name)
    return [(f.name, f.type) for f in fields] == [(f.name, f.type) for f in want]


class _NeedsStaging(Exception):
    """A typed Parquet file must be rewritten before use (NaN, quirks or broken rules)."""


def _load_chunks(path: Path, spec: TableSpec, target: Path | None, found: _Pass) -> int:
    """Check every chunk of ``path``; write the typed rows to ``target`` unless it is None."""
    if path.suffix == ".parquet":
        chunks = iter_parquet(path, spec, found.quality)
    else:
        chunks = iter_csv(path, spec, found.quality)
    floats = [c.name for c in spec.columns if c.kind == "number"]
    writer = None
    n_rows = 0
    try:
        for chunk in rechunk(chunks, _common.CHUNK_ROWS):
            if target is None and any(pc.any(pc.is_nan(chunk[name])).as_py() for name in floats):
                raise _NeedsStaging
            typed = typed_chunk(path, spec, chunk, n_rows, found)
            n_rows += len(typed)
            if target is None:
                if found.failures or found.quality.changes_values():
                    raise _NeedsStaging
                continue
            if writer is None:
                writer = pq.ParquetWriter(target, typed.schema, compression=STAGING_COMPRESSION)
            writer.write_table(typed, row_group_size=_common.CHUNK_ROWS)
        if target is not None and writer is None:
            pq.write_table(contract_schema(spec.name).empty_table(), target)
    finally:
        if writer is not None:
            writer.close()
    found.quality.set_file_rows(path.name, n_rows)
    return n_rows


def load_table(folder: Path, table: str, staging: Path, problems: _common.Problems,
               quality: DataQuality) -> Path | None:
    """Check one table row by row and return a Parquet file of it in the contract's types.

    That file is the input itself when it is a Parquet file already in the contract's columns
    and types with nothing to convert, normalise or report; otherwise a typed copy written to
    ``staging`` (values breaking a rule made missing). Rows keep the input's order. Broken row
    rules go to ``problems`` and normalisations to ``quality``.

    Returns
    -------
    Path or None
        None for an optional table that is absent, or for ``practices``/``patients`` without
        rows.

    Raises
    ------
    InputError
        For a problem with the file itself (layer 1): the file is not read further.
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
    if already_typed(path, spec):
        found = _Pass(RowFailures(path.name, spec))
        try:
            n_rows = _load_chunks(path, spec, None, found)
            result = path
        except _NeedsStaging:
            log.info("%s: values to convert or report; staging a typed copy", path.name)
    if result is None:
        found = _Pass(RowFailures(path.name, spec))
        result = Path(staging) / f"{table}.parquet"
        n_rows = _load_chunks(path, spec, result, found)
    problems.extend(found.failures.errors())
    quality.merge(found.quality)
    if n_rows == 0 and table in ("practices", "patients"):
        problems.add(InputError(path.name, "file has a header but no rows"))
        return None
    log.info("%s: %d rows read", path.name, n_rows)
    return result
