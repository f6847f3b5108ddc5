"""Read an input folder, validate it against the data contract, and write clean Parquet.

Validation happens in three layers (one module each), and one pass reports every broken rule
of every file in one :class:`~phm_eval.errors.InputError` (an :class:`InputProblems`) naming,
for each, the file, column, first offending rows, the rule and how to fix it:

1. :mod:`.files`: the file itself (present, not empty, UTF-8, well-formed CSV, readable
   Parquet with usable column types, the contract's columns);
2. :mod:`.rows`: each row against the table's pandera schemas (:mod:`phm_eval.contract`),
   streamed in chunks of Arrow data, after warehouse quirks with one meaning (``NULL``,
   CHAR padding, ``00:00:00.000`` times, ``Male``/``Female``, ``6.0``, ``271649006.0``,
   ``'; '``) are normalised and counted (:mod:`.quirks`, the data-quality table);
3. :mod:`.tables`: rules across rows and tables (unique keys, foreign keys, dates in order,
   nothing in the future) in DuckDB.

Then :mod:`.scope` cuts the tables to the study (records after the study end excluded or their
dates cut) and counts every record set aside or changed (the flow table). Nothing is written to
the destination unless every check passes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ._common import (
    ALL_TABLES,
    CHUNK_ROWS,
    CSV_BLOCK_BYTES,
    MAX_ROWS_SHOWN,
    InputProblems,
    Problems,
    StudyPeriod,
    as_date,
    contract_schema,
)
from .files import find_table
from .quirks import QUALITY_COLUMNS, DataQuality
from .rows import load_table
from .scope import FLOW_COLUMNS, write_outputs
from .tables import CROSS_TABLE_RULES, UNIQUE_RULES, check_tables

__all__ = [
    "ingest", "validate", "find_table", "StudyPeriod", "ValidationReport", "InputProblems",
    "contract_schema", "load_table", "CROSS_TABLE_RULES", "UNIQUE_RULES", "CHUNK_ROWS",
    "CSV_BLOCK_BYTES", "MAX_ROWS_SHOWN", "FLOW_COLUMNS", "QUALITY_COLUMNS",
]

log = logging.getLogger(__name__)
FLOW_FILE = "flow.csv"
QUALITY_FILE = "data_quality.csv"


@dataclass
class ValidationReport:
    """What :func:`validate` found in a folder that meets the contract.

    Attributes
    ----------
    data_quality : pandas.DataFrame
        Every normalised quirk: ``file, column, quirk, rows_affected, example, action``.
    flow : pandas.DataFrame or None
        With a study period, the flow table the ingest would write (``table, step, reason,
        n``); otherwise None.
    """

    data_quality: pd.DataFrame
    flow: pd.DataFrame | None = None


def _run(source: Path, period: StudyPeriod | None, staging: Path, today: date
         ) -> tuple[pd.DataFrame, pd.DataFrame | None, Path | None]:
    """Check ``source``; with a period, write the scoped tables to ``staging/out``.

    Returns the data-quality table, the flow table and the folder written (None without a
    period).
    """
    problems = Problems()
    quality = DataQuality()
    files: dict[str, Path] = {}
    names: dict[str, str] = {}
    for table in ALL_TABLES:
        try:
            staged = load_table(source, table, staging, problems, quality)
        except InputError as exc:
            problems.add(exc)
            continue
        if staged is not None:
            files[table] = staged
            names[table] = find_table(source, table).name
    check_tables(files, names, today, problems, staging / "duckdb.tmp")
    problems.raise_if_any()
    data_quality = quality.frame()
    if period is None:
        return data_quality, None, None
    out = staging / "out"
    out.mkdir()
    is_input = {t for t, path in files.items() if not path.is_relative_to(staging)}
    flow = pd.DataFrame(write_outputs(files, is_input, names, period, out), columns=FLOW_COLUMNS)
    flow.to_csv(out / FLOW_FILE, index=False)
    data_quality.to_csv(out / QUALITY_FILE, index=False)
    return data_quality, flow, out


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


def ingest(source: str | Path, destination: str | Path, period: StudyPeriod, *,
           today: str | date | None = None) -> pd.DataFrame:
    """Validate an input folder and write clean, typed Parquet tables, the flow table and the
    data-quality table.

    Parameters
    ----------
    source : path
        Folder with ``practices``, ``patients``, ``events``, ``admissions``, ``interventions``
        (and optionally ``rollout``) as CSV or Parquet (see ``docs/data-contract.md``).
    destination : path
        Folder to write ``<table>.parquet``, ``flow.csv`` and ``data_quality.csv`` to. Written
        only if every rule passes: on error nothing is created there, and an existing folder is
        left as it was.
    period : StudyPeriod
        Study dates and programme. People who left before ``study_start`` are excluded; records
        after ``study_end`` are excluded or their dates cut, each counted in the flow table.
    today : str or date, optional
        The date the extract was taken (default: today); a later date is an error.

    Returns
    -------
    pandas.DataFrame
        The flow table (table, step, reason, n): for every table, rows read minus rows
        excluded equals rows kept; ``modify`` rows count kept records whose dates were cut.

    Raises
    ------
    InputError
        An :class:`InputProblems` listing every broken rule (file, column, rows, rule and how
        to fix it), or naming a table the study's filters left empty.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise InputError(str(source), "input folder not found")
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Staging next to the destination makes the final move a rename on one file system.
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=destination.parent))
    try:
        _, flow, out = _run(source, period, staging, as_date(today))
        _replace(out, destination)
        return flow
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate(source: str | Path, study: StudyPeriod | str | None = None, *,
             study_end: str | None = None, today: str | date | None = None) -> ValidationReport:
    """Check an input folder against the contract without writing anything.

    Parameters
    ----------
    source : path
        The input folder.
    study : StudyPeriod, optional
        The run's study dates and programme (e.g. from the configuration's ``study``
        section). With it, the folder is also scoped as :func:`ingest` would scope it, so a
        filter that leaves a table empty is reported, and the flow table is returned.
    study_end : str, optional
        ``YYYY-MM-DD``; kept for compatibility, the same as a study period from 1900-01-01 to
        ``study_end`` without a programme. (A text passed as ``study`` is read as this.)
    today : str or date, optional
        The date the extract was taken (default: today); no date may be later.

    Returns
    -------
    ValidationReport
        The data-quality table (quirks normalised) and, with a study, the flow table.

    Raises
    ------
    InputError
        An :class:`InputProblems` listing every broken rule of every file.
    """
    if isinstance(study, str):
        study, study_end = None, study
    if study is None and study_end is not None:
        study = StudyPeriod("1900-01-01", study_end)
    source = Path(source)
    if not source.is_dir():
        raise InputError(str(source), "input folder not found")
    with tempfile.TemporaryDirectory(prefix="phm-eval-validate-") as tmp:
        quality, flow, _ = _run(source, study, Path(tmp), as_date(today))
    return ValidationReport(quality, flow)
