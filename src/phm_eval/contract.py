"""The input data contract as pandera schemas: one schema per table, one rule per check.

The same schemas validate real extracts and the synthetic population. Rule names are written for
the data manager who has to fix the file, because they appear verbatim in error messages.
See ``docs/data-contract.md`` for the human-readable contract.

Each table has two schemas. :func:`conversion_schema` checks columns whose stored type is not
yet the contract's type (text in a CSV file, a float column of whole numbers in Parquet) can be
converted to it; :func:`schema` checks the typed table. Frames are Arrow-backed
(``pd.ArrowDtype``) and every check is a vectorised Arrow compute kernel, so validating tens of
millions of rows costs seconds rather than minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc

SEX_CODES = ("F", "M", "I", "U")
ETHNICITY_GROUPS = ("Asian", "Black", "Mixed", "White", "Other", "Unknown")
ADMISSION_METHODS = (
    "11", "12", "13", "21", "22", "23", "24", "25", "28", "2A", "2B", "2C", "2D",
    "31", "32", "81", "82", "83", "99",
)
SNOMED_PATTERN = r"[1-9][0-9]{5,17}"
ICD10_PATTERN = r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?[A-Z]?"
ISO_DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
INTEGER_PATTERN = r"-?[0-9]+"
NUMBER_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"

#: The Arrow type each kind of column has once converted.
ARROW_TYPES: dict[str, arrow.DataType] = {
    "id": arrow.string(), "string": arrow.string(), "date": arrow.date32(),
    "integer": arrow.int64(), "number": arrow.float64(),
}
#: The rule a value breaks when it cannot be converted to its column's kind.
CONVERSION_RULES: dict[str, str] = {
    "date": "must be a real date written YYYY-MM-DD",
    "integer": "must be a whole number",
    "number": "must be a number",
    "id": "must be text",
    "string": "must be text",
}
_TEXT_PATTERNS = {"date": ISO_DATE_PATTERN, "integer": INTEGER_PATTERN, "number": NUMBER_PATTERN}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # "id", "string", "date", "integer", "number"
    required: bool = True  # column must be present
    nullable: bool = False
    checks: tuple = ()


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    key: str | None = None  # unique key column
    optional_table: bool = False
    date_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


# ---------------------------------------------------------------------------------------------
# Vectorised checks: each takes a pandas Series and returns a boolean Series (True = passes).
# Missing values pass every value check; whether a value may be missing is the nullable rule.
# ---------------------------------------------------------------------------------------------

def arrow_values(s: pd.Series) -> arrow.ChunkedArray | arrow.Array:
    """The Arrow data behind a column (zero-copy when the column is Arrow-backed)."""
    if isinstance(s.dtype, pd.ArrowDtype):
        return s.array.__arrow_array__()
    return arrow.array(s, from_pandas=True)


def _mask(result, index: pd.Index) -> pd.Series:
    return pd.Series(pc.fill_null(result, True).to_numpy(zero_copy_only=False), index=index,
                     dtype=bool)


def _per_value(values, kernel) -> arrow.ChunkedArray | arrow.Array:
    """Apply an element-wise kernel; on dictionary-encoded text, once per distinct value."""
    if not arrow.types.is_dictionary(values.type):
        return kernel(values)
    chunks = values.chunks if isinstance(values, arrow.ChunkedArray) else [values]
    return arrow.chunked_array(
        [pc.take(kernel(chunk.dictionary), chunk.indices) for chunk in chunks],
        type=arrow.bool_())


def _isin(values, what: str) -> pa.Check:
    allowed = arrow.array(values, type=arrow.string())

    def check(s: pd.Series) -> pd.Series:
        return _mask(_per_value(arrow_values(s), lambda v: pc.is_in(v, value_set=allowed)),
                     s.index)

    return pa.Check(check, name=f"{what} must be one of {', '.join(values)}")


def _matches(pattern: str, rule: str) -> pa.Check:
    anchored = f"^(?:{pattern})$"

    def check(s: pd.Series) -> pd.Series:
        return _mask(_per_value(arrow_values(s), lambda v: pc.match_substring_regex(v, anchored)),
                     s.index)

    return pa.Check(check, name=rule)


def _non_empty(s: pd.Series) -> pd.Series:
    def kernel(v):
        return pc.greater(pc.binary_length(pc.utf8_trim_whitespace(v)), 0)

    return _mask(_per_value(arrow_values(s), kernel), s.index)


def is_text_type(t: arrow.DataType) -> bool:
    """Text, stored plainly or dictionary-encoded (as Parquet readers may return it)."""
    if arrow.types.is_dictionary(t):
        t = t.value_type
    return arrow.types.is_string(t)


def _text_column(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.ArrowDtype) and is_text_type(s.dtype.pyarrow_dtype)


def _imd(s: pd.Series) -> pd.Series:
    values = arrow_values(s)
    return _mask(pc.and_(pc.greater_equal(values, 1), pc.less_equal(values, 10)), s.index)


def _finite(s: pd.Series) -> pd.Series:
    return _mask(pc.is_finite(arrow_values(s)), s.index)


NON_EMPTY = pa.Check(_non_empty, name="must not be empty")
# Text columns are typed by this check rather than by a pandera dtype, so that repeated text
# may stay dictionary-encoded: every other check then runs once per distinct value.
TEXT = pa.Check(_text_column, name="must be text")
IMD_DECILE = pa.Check(_imd, name="must be an IMD decile 1-10")
FINITE = pa.Check(_finite, name="must be a finite number")


def converts_to(kind: str) -> pa.Check:
    """Check that stored values convert to the Arrow type of ``kind`` without loss.

    Text must also be written the contract's way (``YYYY-MM-DD``, plain decimal digits): Arrow
    alone would read ``0x10`` as 16.
    """
    target = ARROW_TYPES[kind]
    pattern = _TEXT_PATTERNS.get(kind)

    def check(s: pd.Series) -> pd.Series:
        values = arrow_values(s)
        ok = None
        if pattern is not None and arrow.types.is_string(values.type):
            ok = pc.fill_null(pc.match_substring_regex(values, f"^(?:{pattern})$"), True)
        try:
            pc.cast(values, target)  # strict: 2021-02-30, 3.5 -> int and overflow all fail
        except (arrow.ArrowInvalid, arrow.ArrowNotImplementedError):
            ok = _cast_mask(values, target, ok)
        if ok is None:
            return pd.Series(True, index=s.index)
        return _mask(ok, s.index)

    return pa.Check(check, name=CONVERSION_RULES[kind])


def _cast_mask(values, target: arrow.DataType, ok) -> arrow.Array:
    # Slow path, only reached when some value fails: try each distinct candidate on its own.
    candidates = values if ok is None else pc.filter(values, ok)
    bad = []
    for value in pc.unique(candidates).to_pylist():
        if value is None:
            continue
        try:
            pc.cast(arrow.array([value], type=values.type), target)
        except (arrow.ArrowInvalid, arrow.ArrowNotImplementedError):
            bad.append(value)
    failed = pc.is_in(values, value_set=arrow.array(bad, type=values.type))
    fine = pc.invert(pc.fill_null(failed, False))
    return fine if ok is None else pc.and_(ok, fine)


def _id(name: str, **kw) -> ColumnSpec:
    return ColumnSpec(name, "id", checks=(NON_EMPTY,), **kw)


def _date(name: str, nullable: bool = False) -> ColumnSpec:
    return ColumnSpec(name, "date", nullable=nullable)


TABLES: dict[str, TableSpec] = {
    "practices": TableSpec(
        "practices",
        (_id("practice_id"), _id("pcn_id"),
         ColumnSpec("icb_id", "string", required=False, nullable=True)),
        key="practice_id",
    ),
    "patients": TableSpec(
        "patients",
        (
            _id("patient_id"),
            _id("practice_id"),
            ColumnSpec("sex", "string", checks=(_isin(SEX_CODES, "sex"),)),
            _date("date_of_birth"),
            ColumnSpec("ethnicity", "string", checks=(_isin(ETHNICITY_GROUPS, "ethnicity"),)),
            ColumnSpec("imd_decile", "integer", nullable=True, checks=(IMD_DECILE,)),
            _date("registration_start"),
            _date("registration_end", nullable=True),
            _date("date_of_death", nullable=True),
        ),
        key="patient_id",
        date_columns=("date_of_birth", "registration_start", "registration_end", "date_of_death"),
    ),
    "events": TableSpec(
        "events",
        (
            _id("patient_id"),
            _date("date"),
            ColumnSpec(
                "snomed_code", "string",
                checks=(_matches(SNOMED_PATTERN,
                                 "must be a SNOMED CT identifier: 6-18 digits, no leading zero"),),
            ),
            ColumnSpec("value", "number", required=False, nullable=True, checks=(FINITE,)),
        ),
        date_columns=("date",),
    ),
    "admissions": TableSpec(
        "admissions",
        (
            _id("patient_id"),
            _id("spell_id"),
            _date("admission_date"),
            _date("discharge_date"),
            ColumnSpec("admission_method", "string",
                       checks=(_isin(ADMISSION_METHODS, "admission_method (ADMIMETH)"),)),
            ColumnSpec("primary_diagnosis", "string",
                       checks=(_matches(ICD10_PATTERN, "must be an ICD-10 code such as J44 or J44.1"),)),
            ColumnSpec(
                "secondary_diagnoses", "string", required=False, nullable=True,
                checks=(_matches(rf"{ICD10_PATTERN}(;{ICD10_PATTERN})*",
                                 "must be ICD-10 codes separated by ';'"),),
            ),
        ),
        key="spell_id",
        date_columns=("admission_date", "discharge_date"),
    ),
    "interventions": TableSpec(
        "interventions",
        (_id("patient_id"), _id("programme"), _date("enrolment_date"),
         _date("end_date", nullable=True)),
        date_columns=("enrolment_date", "end_date"),
    ),
    "rollout": TableSpec(
        "rollout",
        (_id("pcn_id"), ColumnSpec("practice_id", "id", required=False, nullable=True),
         _id("programme"), _date("start_date")),
        optional_table=True,
        date_columns=("start_date",),
    ),
}
REQUIRED_TABLES = ("practices", "patients", "events", "admissions", "interventions")


@cache
def schema(table: str, columns: tuple[str, ...] | None = None,
           unique: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of one typed input table.

    Columns are Arrow-backed (``pd.ArrowDtype``): text as ``string`` (or dictionary-encoded
    ``string``), dates as ``date32``, whole numbers as ``int64`` and numbers as ``float64``;
    every rule is a named check and the table's key must be unique. With ``columns``, only
    those columns are checked; with ``unique=False`` the key is not checked (the ingest checks
    it over the whole file instead, chunk by chunk).
    """
    spec = TABLES[table]
    chosen = spec.columns if columns is None else [spec.column(n) for n in columns]
    checked = {}
    for col in chosen:
        text = col.kind in ("id", "string")
        checked[col.name] = pa.Column(
            None if text else pd.ArrowDtype(ARROW_TYPES[col.kind]),
            checks=([TEXT] if text else []) + list(col.checks),
            nullable=col.nullable,
            required=col.required,
        )
    keys = [spec.key] if unique and spec.key and spec.key in checked else None
    return pa.DataFrameSchema(checked, strict=columns is None, unique=keys,
                              report_duplicates="all")


@cache
def conversion_schema(table: str, columns: tuple[str, ...]) -> pa.DataFrameSchema:
    """The pandera schema checking ``columns`` of ``table`` before they are converted.

    Use it on columns whose stored type differs from the contract's type: every value must be
    convertible (dates written ``YYYY-MM-DD`` and real, whole numbers whole, numbers numeric)
    and required values present. Columns not listed are not checked.
    """
    spec = TABLES[table]
    checked = {}
    for name in columns:
        col = spec.column(name)
        checks = [converts_to(col.kind)] if col.kind in _TEXT_PATTERNS else []
        checked[name] = pa.Column(None, checks=checks, nullable=col.nullable, required=False)
    return pa.DataFrameSchema(checked, strict=False)
