"""Layer 1: the files themselves.

A file must exist, not be empty, be UTF-8, be well-formed CSV or readable Parquet with usable
column types, and its header must have the contract's columns. Each problem here concerns a
whole file, so that file is not read further; the other files still are. Harmless export habits
(a byte-order mark, Windows line ends, columns in another order) are recorded as data-quality
notes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as arrow
import pyarrow.csv as arrow_csv
import pyarrow.parquet as pq

from ..contract import TableSpec
from ..errors import InputError
from . import _common
from ._common import DICTIONARY_COLUMNS, TEXT_DICTIONARY, InputProblems
from .quirks import WHOLE_FILE, DataQuality

PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_EXPECTED = {"id": "text", "string": "text", "date": "dates (date, timestamp or YYYY-MM-DD text)",
             "integer": "whole numbers", "number": "numbers"}


def find_table(folder: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``folder`` (``.parquet`` or ``.csv``), or None.

    Raises
    ------
    InputError
        When both a ``.csv`` and a ``.parquet`` file exist for the table.
    """
    folder = Path(folder)
    found = [folder / f"{table}.{ext}" for ext in ("parquet", "csv") if
             (folder / f"{table}.{ext}").exists()]
    if len(found) > 1:
        raise InputError(f"{table}.csv and {table}.parquet",
                         "both a .csv and a .parquet file exist for this table; keep one")
    return found[0] if found else None


def check_header(path: Path, spec: TableSpec, columns: list[str],
                 quality: DataQuality | None = None) -> None:
    """Check the column names; raise every header problem of the file together."""
    found: list[InputError] = []
    seen = set()
    for name in columns:
        if name in seen:
            found.append(InputError(path.name, "column name appears twice in the header",
                                    column=name))
        seen.add(name)
    for name in spec.required_columns:
        if name not in columns:
            found.append(InputError(path.name, "required column is missing", column=name))
    allowed = set(spec.column_names)
    for name in columns:
        if name not in allowed:
            found.append(InputError(
                path.name,
                f"unexpected column (the contract's columns are: {', '.join(spec.column_names)})",
                column=name,
            ))
    if found:
        raise InputProblems(found)
    contract_order = [n for n in spec.column_names if n in columns]
    if quality is not None and columns != contract_order:
        quality.add(path.name, WHOLE_FILE, "columns in another order than the contract's",
                    "read by name", 0, ", ".join(columns[:4]) + (", ..." if len(columns) > 4
                                                                 else ""))


def csv_header(path: Path, quality: DataQuality | None = None) -> list[str]:
    """The header of a CSV file (byte-order mark and surrounding spaces removed)."""
    if path.stat().st_size == 0:
        raise InputError(path.name, "file is empty: expected a header row")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError:
        raise encoding_error(path) from None
    if not header or all(not h.strip() for h in header):
        raise InputError(path.name, "file is empty: expected a header row")
    if quality is not None:
        with open(path, "rb") as fh:
            first = fh.readline()
        if first.startswith(b"\xef\xbb\xbf"):
            quality.add(path.name, WHOLE_FILE, "UTF-8 byte-order mark", "ignored", 0, "EF BB BF")
        if first.endswith(b"\r\n"):
            quality.add(path.name, WHOLE_FILE, "Windows line ends (CRLF)", "read as line ends", 0,
                        "\\r\\n")
    return [h.strip().lstrip("\ufeff").strip() for h in header]


def encoding_error(path: Path) -> InputError:
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


def iter_csv(path: Path, spec: TableSpec, quality: DataQuality | None = None
             ) -> Iterator[arrow.Table]:
    """Check a CSV file's header, then yield its rows as tables of text."""
    header = csv_header(path, quality)
    check_header(path, spec, header, quality)
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
                                               block_size=_common.CSV_BLOCK_BYTES),
            # Blank lines are kept as rows so that row numbers match the file's lines.
            parse_options=arrow_csv.ParseOptions(invalid_row_handler=on_bad_row,
                                                 ignore_empty_lines=False),
            convert_options=arrow_csv.ConvertOptions(
                column_types={name: TEXT_DICTIONARY if name in dictionary else arrow.string()
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
                             rows=ragged_row(path, expected)) from None
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise encoding_error(path) from None
        raise InputError(path.name, f"not a well-formed CSV file ({exc})") from None
    finally:
        if reader is not None:
            reader.close()


def ragged_row(path: Path, expected: int) -> list[int] | None:
    """The data row number of the first row whose field count differs from the header's.

    Arrow does not always know line numbers when parsing in parallel; this slow re-read runs
    only once a problem is known.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.reader(fh)):
            if number > 0 and len(row) != expected and row:
                return [number]
    return None


def parquet_file(path: Path, dictionary: Iterable[str] = ()) -> pq.ParquetFile:
    """Open a Parquet file, reading the named columns dictionary-encoded."""
    try:
        return pq.ParquetFile(path, read_dictionary=list(dictionary) or None)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(path.name, f"not a readable Parquet file ({exc})") from None


def is_text(t: arrow.DataType) -> bool:
    """Plain text of any Arrow string type."""
    return (arrow.types.is_string(t) or arrow.types.is_large_string(t)
            or arrow.types.is_string_view(t))


def check_parquet_types(path: Path, spec: TableSpec, fields: arrow.Schema) -> None:
    """Every column's stored type must convert to the contract's type."""
    found = []
    for fld in fields:
        kind = spec.column(fld.name).kind
        t = fld.type.value_type if arrow.types.is_dictionary(fld.type) else fld.type
        text = is_text(t) or arrow.types.is_null(t)
        ok = {
            "id": text, "string": text,
            "date": text or arrow.types.is_date(t) or arrow.types.is_timestamp(t),
            "integer": text or arrow.types.is_integer(t) or arrow.types.is_floating(t),
            "number": (text or arrow.types.is_integer(t) or arrow.types.is_floating(t)
                       or arrow.types.is_decimal(t)),
        }[kind]
        if not ok:
            found.append(InputError(path.name,
                                    f"Parquet column has type {fld.type} but the contract "
                                    f"expects {_EXPECTED[kind]}", column=fld.name))
    if found:
        raise InputProblems(found)


def iter_parquet(path: Path, spec: TableSpec, quality: DataQuality | None = None
                 ) -> Iterator[arrow.Table]:
    """Check a Parquet file's columns and types, then yield its rows."""
    handle = parquet_file(path)
    # pandas writes a non-default index as extra columns; they are not data.
    names = [n for n in handle.schema_arrow.names if not PANDAS_INDEX.fullmatch(n)]
    fields = arrow.schema([handle.schema_arrow.field(n) for n in names])
    check_header(path, spec, names, quality)
    check_parquet_types(path, spec, fields)
    dictionary = [n for n in DICTIONARY_COLUMNS.get(spec.name, ()) if n in names]
    if dictionary:
        handle.close()
        handle = parquet_file(path, dictionary)
    try:
        for batch in handle.iter_batches(batch_size=_common.CHUNK_ROWS, columns=names):
            yield arrow.Table.from_batches([batch])
    except (OSError, arrow.ArrowException) as exc:
        raise InputError(path.name, f"not a readable Parquet file ({exc})") from None
    finally:
        handle.close()


def rechunk(tables: Iterable[arrow.Table], size: int) -> Iterator[arrow.Table]:
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
