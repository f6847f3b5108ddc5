"""Settings, the study period and how problems are collected and reported.

Every layer of validation records what it finds in a :class:`Problems` collector instead of
stopping at the first problem; :class:`InputProblems` is the one error raised at the end, listing
every broken rule of every file with how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as arrow

from ..contract import ARROW_TYPES, REQUIRED_TABLES, TABLES, TableSpec
from ..errors import ConfigError, InputError

# Read at call time (``_common.CHUNK_ROWS``) so that tests may shrink them.
CHUNK_ROWS = 2_000_000
CSV_BLOCK_BYTES = 32 << 20
MAX_ROWS_SHOWN = 5
COMPRESSION = "zstd"
STAGING_COMPRESSION = "none"  # staged files are read once, soon after; speed beats size
ALL_TABLES = (*REQUIRED_TABLES, "rollout")
# Text columns with few distinct values, read dictionary-encoded: reading is
# cheaper and every check runs once per distinct value.
DICTIONARY_COLUMNS = {"events": ("patient_id", "snomed_code")}
TEXT_DICTIONARY = arrow.dictionary(arrow.int32(), arrow.string())


@dataclass
class StudyPeriod:
    """Dates bounding an analysis (inclusive), written ``YYYY-MM-DD``."""

    study_start: str
    study_end: str
    programme: str | None = None

    def __post_init__(self) -> None:
        for name in ("study_start", "study_end"):
            value = str(getattr(self, name))
            setattr(self, name, _iso_date(name, value).isoformat())
        if self.study_start > self.study_end:
            raise ConfigError(f"study_start ({self.study_start}) is after study_end "
                              f"({self.study_end})")


def _iso_date(name: str, value: str) -> date:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != 10:
        raise ConfigError(f"{name} must be a date written YYYY-MM-DD, not {value!r}")
    return parsed


def as_date(value: str | date | None, name: str = "today") -> date:
    """``value`` as a date (today when None); text must be ``YYYY-MM-DD``."""
    if value is None:
        return date.today()
    if isinstance(value, date):
        return value
    return _iso_date(name, str(value))


def key_column(spec: TableSpec) -> str:
    """The column that identifies a row to the person fixing the file."""
    if spec.key:
        return spec.key
    return "patient_id" if "patient_id" in spec.column_names else spec.column_names[0]


def contract_schema(table: str) -> arrow.Schema:
    """The Arrow schema of a table in the contract's column order and types."""
    return arrow.schema([(c.name, ARROW_TYPES[c.kind]) for c in TABLES[table].columns])


def sql_text(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# How to fix each rule: (text the rule starts with or contains, advice)
# ---------------------------------------------------------------------------------------------

FIXES: list[tuple[str, str]] = [
    ("required file not found", "export the table into the input folder as <table>.csv or "
                                "<table>.parquet (lower-case names)"),
    ("both a .csv and a .parquet", "delete one of the two files"),
    ("input folder not found", "check the folder's path (input.folder in the configuration)"),
    ("file is empty", "export the table again with its header row"),
    ("file has a header but no rows", "export the table again: it needs at least one row"),
    ("file is not UTF-8", "export the file as UTF-8 (code page 65001 in SQL Server tools)"),
    ("row has", "quote fields that contain commas with \" and remove stray separators"),
    ("not a well-formed CSV", "export again as comma-separated values quoted with \""),
    ("not a readable Parquet", "write the file again: it may be truncated or not Parquet"),
    ("Parquet column has type", "write the column as the type the contract expects, or as text"),
    ("column name appears twice", "rename or remove one of the two columns"),
    ("required column is missing", "add the column (names are case-sensitive; see "
                                   "docs/data-contract.md)"),
    ("unexpected column", "remove the column, or rename it to the contract's name"),
    ("value is missing", "fill in the value, or remove the row if the record is not real"),
    ("must be a real date", "write dates as YYYY-MM-DD ('YYYY-MM-DD 00:00:00.000' is also read; "
                            "a time other than midnight is ambiguous)"),
    ("must be a whole number", "write whole numbers (6 or 6.0); fractions such as 6.5 cannot "
                               "be read"),
    ("must be a finite number", "leave the value empty instead of infinity"),
    ("must be a number", "write plain decimal numbers such as 142.5 (no thousands separators "
                         "or units)"),
    ("must be text", "write the column as text"),
    ("must not be empty", "fill in the identifier"),
    ("must be an IMD decile", "use the English IMD 2019 decile, 1 (most deprived) to 10; leave "
                              "it empty when unknown"),
    ("sex must be one of", "use F, M, I or U (Female, Male, Indeterminate and Unknown are "
                           "converted)"),
    ("ethnicity must be one of", "map each ethnic category to its ONS 2021 high-level group"),
    ("SNOMED CT identifier", "write the concept identifier as plain digits, e.g. 271649006 "
                             "(271649006.0 is read too)"),
    ("ADMIMETH", "use the two-character HES/SUS admission method code"),
    ("ICD-10 code such as", "write one upper-case ICD-10 code, e.g. J44 or J44.1"),
    ("ICD-10 codes separated", "separate codes with ';', e.g. I10;E11.9"),
    ("duplicate key", "keep one row per key"),
    ("duplicate roll-out row", "keep one start_date per programme and PCN (or practice)"),
    ("is not in practices", "add the practice to practices, or correct the identifier"),
    ("is not in patients", "add the patient to patients, or remove records of people outside "
                           "the extract"),
    ("belongs to another pcn_id", "make pcn_id and practice_id agree with practices"),
    ("is in the future", "correct the date: nothing can happen after the extract was taken "
                         "(leave a placeholder such as 2099-12-31 empty instead)"),
    (" is before ", "correct the dates so that they are in order"),
    (" is after ", "correct the dates so that they are in order"),
    ("more than one day after", "correct the dates so that they are in order"),
]


def fix_for(rule: str) -> str | None:
    """Advice on how to fix a broken rule, or None."""
    for text, advice in FIXES:
        if rule.startswith(text) or text in rule:
            return advice
    return None


def describe(problem: InputError) -> str:
    """One problem in one line: file, column, rule, rows, then how to fix it."""
    message = str(problem)
    if isinstance(problem, InputProblems):
        return message
    advice = fix_for(problem.rule)
    return f"{message}. Fix: {advice}" if advice else message


class InputProblems(InputError):
    """Every problem found in one pass over the input files.

    The attributes of :class:`~phm_eval.errors.InputError` (``file``, ``column``, ``rule``,
    ``rows``, ``keys``, ``n_failing``) describe the first problem; ``problems`` holds all of
    them, in the order of the tables and of the contract's columns. The message lists each on
    its own line with how to fix it.

    Parameters
    ----------
    problems : sequence of InputError
        At least one problem.
    """

    def __init__(self, problems: Sequence[InputError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.file, first.rule, column=first.column, rows=first.rows,
                         keys=first.keys, n_failing=first.n_failing)

    def _message(self) -> str:
        if len(self.problems) == 1:
            return describe(self.problems[0])
        lines = [f"{len(self.problems)} problems in the input files; fix them all, then "
                 "validate again:"]
        lines += [f"  {i}. {describe(p)}" for i, p in enumerate(self.problems, 1)]
        return "\n".join(lines)


class Problems:
    """Collects the problems found in one pass; raises them together."""

    def __init__(self) -> None:
        self.items: list[InputError] = []

    def add(self, problem: InputError) -> None:
        """Record a problem (an :class:`InputProblems` is recorded problem by problem)."""
        if isinstance(problem, InputProblems):
            self.items.extend(problem.problems)
        else:
            self.items.append(problem)

    def extend(self, problems: Iterable[InputError]) -> None:
        for problem in problems:
            self.add(problem)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        """Raise one :class:`InputProblems` listing everything recorded, if anything was.

        Problems are listed table by table (in the order of :data:`ALL_TABLES`), each table's
        in the order they were found: file, rows, then across tables.
        """
        if self.items:
            raise InputProblems(sorted(self.items, key=_table_order))


def _table_order(problem: InputError) -> int:
    for i, table in enumerate(ALL_TABLES):
        if problem.file.startswith(f"{table}."):
            return i
    return len(ALL_TABLES)
