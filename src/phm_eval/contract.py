"""The input data contract as pandera schemas: one schema per table, one rule per check.

The same schemas validate real extracts and the synthetic population. Rule names are written for
the data manager who has to fix the file, because they appear verbatim in error messages.
See ``docs/data-contract.md`` for the human-readable contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

SEX_CODES = ("F", "M", "I", "U")
ETHNICITY_GROUPS = ("Asian", "Black", "Mixed", "White", "Other", "Unknown")
ADMISSION_METHODS = (
    "11", "12", "13", "21", "22", "23", "24", "25", "28", "2A", "2B", "2C", "2D",
    "31", "32", "81", "82", "83", "99",
)
SNOMED_PATTERN = r"[1-9][0-9]{5,17}"
ICD10_PATTERN = r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?[A-Z]?"
ISO_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"


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


def _isin(values, what: str) -> pa.Check:
    allowed = set(values)
    return pa.Check(lambda s: s.isin(allowed), name=f"{what} must be one of {', '.join(values)}")


def _matches(pattern: str, rule: str) -> pa.Check:
    return pa.Check(lambda s: s.str.fullmatch(pattern), name=rule)


NON_EMPTY = pa.Check(lambda s: s.str.strip().str.len() > 0, name="must not be empty")
ISO_DATE = pa.Check(
    lambda s: pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna()
    if s.dtype == object or pd.api.types.is_string_dtype(s) else pd.Series(True, index=s.index),
    name="must be a real date written YYYY-MM-DD",
)


def _id(name: str, **kw) -> ColumnSpec:
    return ColumnSpec(name, "id", checks=(NON_EMPTY,), **kw)


def _date(name: str, nullable: bool = False) -> ColumnSpec:
    return ColumnSpec(name, "date", nullable=nullable, checks=(ISO_DATE,))


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
            ColumnSpec(
                "imd_decile", "integer", nullable=True,
                checks=(pa.Check(lambda s: s.between(1, 10), name="must be an IMD decile 1-10"),),
            ),
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
            ColumnSpec("value", "number", required=False, nullable=True),
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

_PANDERA_DTYPE = {"id": str, "string": str, "date": None, "integer": "Int64", "number": "float64"}


def schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of one input table (types coerced, every rule a named check)."""
    spec = TABLES[table]
    columns = {}
    for col in spec.columns:
        columns[col.name] = pa.Column(
            _PANDERA_DTYPE[col.kind],
            checks=list(col.checks),
            nullable=col.nullable,
            required=col.required,
            coerce=col.kind in ("integer", "number"),
        )
    return pa.DataFrameSchema(columns, strict=True, unique=[spec.key] if spec.key else None)
