"""Warehouse export habits that have one meaning, normalised and counted.

SQL Server (and other warehouse) exports write values in ways the contract does not, but whose
meaning is not in doubt. Each is rewritten to the contract's form before any rule is checked,
and every rewrite is counted per file and column in the data-quality table
(``data_quality.csv``):

===============================  ==========================  ===================================
quirk                            example                     becomes
===============================  ==========================  ===================================
``NULL`` for a missing value     ``NULL``                    missing
CHAR padding                     ``'White     '``            ``'White'`` (trailing spaces only)
midnight time on a date          ``2021-03-04 00:00:00.000`` ``2021-03-04``
sex written as a word            ``Male``, ``female``        ``M``, ``F`` (also I, U)
whole number with decimals       ``6.0``                     ``6`` (integer columns)
code written as a number         ``271649006.0``             ``271649006`` (SNOMED CT, ADMIMETH)
``'; '`` between ICD-10 codes    ``I10; E11.9``              ``I10;E11.9``
===============================  ==========================  ===================================

Ambiguous values are left alone, so they break their rule: a time other than midnight, ``6.5``
as a decile, leading spaces, a value of spaces only, an unknown code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as arrow
import pyarrow.compute as pc

from ..contract import ColumnSpec

QUALITY_COLUMNS = ["file", "column", "quirk", "rows_affected", "example", "action"]
#: The ``column`` of notes about a whole file (byte-order mark, line ends, column order).
WHOLE_FILE = "(whole file)"

MIDNIGHT = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]00:00(:00(\.0{1,7})?)?$"
WHOLE_WITH_DECIMALS = r"^(-?[0-9]+)\.0+$"
CODE_WITH_DECIMALS = r"^([0-9]+)\.0+$"
SEPARATOR_WITH_SPACES = r"\s*;\s*"
SEX_WORDS = {"female": "F", "male": "M", "indeterminate": "I", "unknown": "U"}
# Columns holding codes that warehouses may store as numbers.
NUMERIC_CODES = ("snomed_code", "admission_method")


@dataclass
class _Note:
    file: str
    column: str
    quirk: str
    action: str
    rows_affected: int
    example: str


class DataQuality:
    """Counts of every normalisation, per file, column and quirk."""

    def __init__(self) -> None:
        self._notes: dict[tuple[str, str, str], _Note] = {}

    def add(self, file: str, column: str, quirk: str, action: str, n: int,
            example: str) -> None:
        """Count ``n`` more rows of ``file``/``column`` with ``quirk`` (the first example kept)."""
        key = (file, column, quirk)
        if key in self._notes:
            self._notes[key].rows_affected += int(n)
        else:
            self._notes[key] = _Note(file, column, quirk, action, int(n), example)

    def set_file_rows(self, file: str, n: int) -> None:
        """Notes about a whole file (no column) concern all of its ``n`` rows."""
        for note in self._notes.values():
            if note.file == file and note.column == WHOLE_FILE:
                note.rows_affected = int(n)

    def merge(self, other: DataQuality) -> None:
        for note in other._notes.values():
            self.add(note.file, note.column, note.quirk, note.action, note.rows_affected,
                     note.example)

    def changes_values(self) -> bool:
        """Whether any value was rewritten (notes about whole files change none)."""
        return any(note.column != WHOLE_FILE for note in self._notes.values())

    def __bool__(self) -> bool:
        return bool(self._notes)

    def frame(self) -> pd.DataFrame:
        """The data-quality table: file, column, quirk, rows_affected, example, action."""
        rows = [vars(note).copy() for note in self._notes.values()]
        return pd.DataFrame(rows, columns=QUALITY_COLUMNS).astype({"rows_affected": "int64"})


# ---------------------------------------------------------------------------------------------
# One rewrite per quirk: (quirk, action, applies, rewrite). ``rewrite`` takes plain text values
# (no nulls) and returns them rewritten; rows whose value changes are counted.
# ---------------------------------------------------------------------------------------------

Rewrite = Callable[[arrow.Array], arrow.Array]


def _null_literal(values: arrow.Array) -> arrow.Array:
    return pc.if_else(pc.equal(values, "NULL"), arrow.scalar(None, arrow.string()), values)


def _unpad(values: arrow.Array) -> arrow.Array:
    trimmed = pc.utf8_rtrim(values, characters=" ")
    # A value of spaces only is left as it is: it breaks "must not be empty" visibly.
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), values, trimmed)


def _midnight(values: arrow.Array) -> arrow.Array:
    if pc.max(pc.binary_length(values)).as_py() in (None, 10):
        return values
    return pc.replace_substring_regex(values, MIDNIGHT, r"\1")


def _whole(values: arrow.Array) -> arrow.Array:
    return pc.replace_substring_regex(values, WHOLE_WITH_DECIMALS, r"\1")


def _code(values: arrow.Array) -> arrow.Array:
    return pc.replace_substring_regex(values, CODE_WITH_DECIMALS, r"\1")


def _separators(values: arrow.Array) -> arrow.Array:
    return pc.replace_substring_regex(values, SEPARATOR_WITH_SPACES, ";")


def _sex(values: arrow.Array) -> arrow.Array:
    lower = pc.utf8_lower(values)
    out = values
    for word, code in SEX_WORDS.items():
        out = pc.if_else(pc.equal(lower, word), arrow.scalar(code), out)
    return out


def rewrites_for(col: ColumnSpec) -> list[tuple[str, str, Rewrite]]:
    """The quirks normalised in a column, in the order they are applied."""
    steps: list[tuple[str, str, Rewrite]] = [
        ("NULL written for a missing value", "read as missing", _null_literal)]
    if col.kind in ("id", "string"):
        steps.append(("trailing spaces (CHAR padding)", "spaces removed", _unpad))
    if col.kind == "date":
        steps.append(("date with a midnight time (00:00:00.000)", "time removed", _midnight))
    if col.kind == "integer":
        steps.append(("whole number written with decimals (6.0)", "decimals removed", _whole))
    if col.name in NUMERIC_CODES:
        steps.append(("code written as a number with decimals (.0)", "decimals removed", _code))
    if col.name == "sex":
        steps.append(("sex written as a word (Male, Female)", "coded F, M, I, U", _sex))
    if col.name == "secondary_diagnoses":
        steps.append(("codes separated by '; ' (with spaces)", "spaces removed", _separators))
    return steps


def _changed(before: arrow.Array, after: arrow.Array) -> arrow.Array:
    """Rows whose value changed (a value becoming missing counts)."""
    differs = pc.not_equal(before, after)
    became_null = pc.and_(pc.is_valid(before), pc.is_null(after))
    return pc.or_(pc.fill_null(differs, False), became_null)


def _normalise_plain(values: arrow.Array, steps) -> tuple[arrow.Array, list[tuple]]:
    """Rewrite plain text; return it and (quirk, action, changed mask, example) per quirk."""
    found = []
    for quirk, action, rewrite in steps:
        after = rewrite(values)
        changed = _changed(values, after)
        if pc.any(changed).as_py():
            i = pc.index(changed, True).as_py()
            old, new = values[i].as_py(), after[i].as_py()
            example = f"{old!r} -> {'missing' if new is None else repr(new)}"
            found.append((quirk, action, changed, example))
            values = after
    return values, found


def normalise_column(values: arrow.Array, col: ColumnSpec) -> tuple[arrow.Array, list[tuple]]:
    """Normalise one column of text (plain or dictionary-encoded).

    Returns the column (dictionary-encoded again if it was) and, for each quirk found,
    ``(quirk, action, rows affected, example)``.
    """
    steps = rewrites_for(col)
    if arrow.types.is_dictionary(values.type):
        new_dictionary, found = _normalise_plain(values.dictionary, steps)
        if not found:
            return values, []
        notes = []
        for quirk, action, changed, example in found:
            rows = pc.fill_null(pc.take(changed, values.indices), False)
            n = pc.sum(rows.cast(arrow.int64())).as_py() or 0
            if n:
                notes.append((quirk, action, n, example))
        decoded = pc.take(new_dictionary, values.indices)
        return pc.dictionary_encode(decoded).cast(values.type), notes
    new, found = _normalise_plain(values, steps)
    return new, [(quirk, action, pc.sum(changed.cast(arrow.int64())).as_py(), example)
                 for quirk, action, changed, example in found]
