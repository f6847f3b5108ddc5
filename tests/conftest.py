"""Shared test support: small input tables in the data contract (docs/data-contract.md).

Each input table has one factory, both as a plain function (``make_patients(...)``) and as a
fixture of the same name that returns it, so a test can ask for ``make_patients`` instead of
declaring its own builder. Every factory returns a pandas DataFrame with the contract's
columns in the contract's order, dates written as ISO text (``YYYY-MM-DD``), as a CSV
extract holds them. ``write_tables`` saves any of them as Parquet (or CSV) files named as
the contract expects. ``small_extract`` is one consistent set of all six tables that passes
the contract's rules. ``as_dates`` turns the ISO text of the date columns into dates, as a
validated (staged) table holds them.

Rows are given as tuples in the documented column order; trailing optional columns may be
left out and take the factory's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from phm_eval.contract import TABLES

PATIENT_COLUMNS = ["patient_id", "practice_id", "sex", "date_of_birth", "ethnicity",
                   "imd_decile", "registration_start", "registration_end", "date_of_death"]
EVENT_COLUMNS = ["patient_id", "date", "snomed_code", "value"]
ADMISSION_COLUMNS = ["patient_id", "spell_id", "admission_date", "discharge_date",
                     "admission_method", "primary_diagnosis", "secondary_diagnoses"]
PRACTICE_COLUMNS = ["practice_id", "pcn_id", "icb_id"]
INTERVENTION_COLUMNS = ["patient_id", "programme", "enrolment_date", "end_date"]
ROLLOUT_COLUMNS = ["pcn_id", "practice_id", "programme", "start_date"]
#: The contract's date columns, of every table (no two tables use a name differently).
DATE_COLUMNS = frozenset(c for spec in TABLES.values() for c in spec.date_columns)


def _pad(rows: Iterable[Sequence[Any]], columns: list[str], defaults: dict[str, Any],
         table: str) -> pd.DataFrame:
    """Rows (tuples in ``columns`` order, trailing columns optional) as a DataFrame."""
    records = []
    for row in rows:
        row = tuple(row)
        if len(row) > len(columns):
            raise ValueError(f"{table}: a row has {len(row)} values, more than the "
                             f"{len(columns)} columns {columns}")
        missing = columns[len(row):]
        unset = [c for c in missing if c not in defaults]
        if unset:
            raise ValueError(f"{table}: a row leaves out required column(s) {unset}")
        records.append(row + tuple(defaults[c] for c in missing))
    return pd.DataFrame(records, columns=columns)


def make_patients(
    ids: Iterable[str],
    *,
    practice_id: str | Sequence[str] = "P1",
    sex: str | Sequence[str] = "F",
    date_of_birth: str | Sequence[str | None] | None = "1940-06-15",
    ethnicity: str | Sequence[str] = "White",
    imd_decile: int | Sequence[int | None] | None = 5,
    registration_start: str | Sequence[str] = "1990-01-01",
    registration_end: str | Sequence[str | None] | None = None,
    date_of_death: str | Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """The ``patients`` table: one row per id; every other column a value for all rows or a
    list with one value per row (``None`` for a missing value).

    The defaults describe a woman born in 1940, registered at practice ``P1`` since 1990,
    alive and registered (aged 83 on 2024-04-01, so inside the eFI's 65+ range).
    """
    ids = list(ids)
    frame = pd.DataFrame({"patient_id": ids})
    values = {"practice_id": practice_id, "sex": sex, "date_of_birth": date_of_birth,
              "ethnicity": ethnicity, "imd_decile": imd_decile,
              "registration_start": registration_start, "registration_end": registration_end,
              "date_of_death": date_of_death}
    for column, value in values.items():
        if isinstance(value, (list, tuple, pd.Series)):
            if len(value) != len(ids):
                raise ValueError(f"patients: {column} has {len(value)} values for "
                                 f"{len(ids)} patients")
            frame[column] = list(value)
        else:
            frame[column] = value
    return frame[PATIENT_COLUMNS]


def make_events(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """The ``events`` table from ``(patient_id, date, snomed_code[, value])`` rows."""
    return _pad(rows, EVENT_COLUMNS, {"value": None}, "events")


def make_admissions(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """The ``admissions`` table (hospital spells) from
    ``(patient_id, admission_date, discharge_date, admission_method[, primary_diagnosis[,
    secondary_diagnoses]])`` rows.

    ``spell_id`` is numbered ``SP0000``, ``SP0001``... in row order; the primary diagnosis
    defaults to ``R69`` (illness, unspecified), the secondary diagnoses to none.
    """
    short = _pad(rows, [c for c in ADMISSION_COLUMNS if c != "spell_id"],
                 {"primary_diagnosis": "R69", "secondary_diagnoses": None}, "admissions")
    short.insert(1, "spell_id", [f"SP{i:04d}" for i in range(len(short))])
    return short[ADMISSION_COLUMNS]


def make_practices(rows: Iterable[Sequence[Any]] = (("P1", "PCN1"),)) -> pd.DataFrame:
    """The ``practices`` table from ``(practice_id, pcn_id[, icb_id])`` rows (default one
    practice, ``P1`` in ``PCN1``)."""
    return _pad(rows, PRACTICE_COLUMNS, {"icb_id": None}, "practices")


def make_interventions(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """The ``interventions`` table (enrolments) from
    ``(patient_id, programme, enrolment_date[, end_date])`` rows."""
    return _pad(rows, INTERVENTION_COLUMNS, {"end_date": None}, "interventions")


def make_rollout(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """The ``rollout`` table from ``(pcn_id, practice_id, programme, start_date)`` rows
    (``practice_id`` ``None`` for a PCN-wide start)."""
    return _pad(rows, ROLLOUT_COLUMNS, {}, "rollout")


def as_dates(frame: pd.DataFrame, *, kind: str = "date") -> pd.DataFrame:
    """A copy of ``frame`` with each of the contract's date columns it has as dates.

    ``kind="date"`` gives ``datetime.date`` objects (``None`` where missing), which Parquet
    stores as ``date32``, as a validated table from ``ingest`` holds them; ``"datetime64"``
    gives pandas timestamps (``NaT`` where missing).
    """
    if kind not in ("date", "datetime64"):
        raise ValueError(f"kind must be 'date' or 'datetime64', not {kind!r}")
    out = frame.copy()
    for column in out.columns.intersection(list(DATE_COLUMNS)):
        stamps = pd.to_datetime(out[column])
        out[column] = (stamps if kind == "datetime64"
                       else [None if pd.isna(t) else t.date() for t in stamps])
    return out


def write_tables(folder: str | Path, *, fmt: str = "parquet",
                 **tables: pd.DataFrame) -> dict[str, Path]:
    """Write each table as ``<folder>/<name>.<fmt>`` (``parquet`` or ``csv``).

    Returns the paths by table name, e.g. ``{"patients": .../patients.parquet}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        elif fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
        paths[name] = path
    return paths


def small_extract_tables() -> dict[str, pd.DataFrame]:
    """One consistent set of the six tables: two practices in one PCN, four patients,
    a few events, one emergency and one elective spell, one enrolment, one roll-out row."""
    practices = make_practices([("P1", "PCN1", "ICB1"), ("P2", "PCN1", "ICB1")])
    patients = make_patients(
        ["A", "B", "C", "D"], practice_id=["P1", "P1", "P2", "P2"], sex=["F", "M", "F", "M"],
        date_of_birth=["1940-06-01", "1952-01-01", "1938-03-01", "1975-09-01"],
        date_of_death=[None, None, "2023-11-20", None])
    events = make_events([("A", "2021-05-04", "195967001"), ("B", "2022-02-10", "38341003"),
                          ("C", "2023-01-15", "161898004")])
    admissions = make_admissions([("A", "2023-02-01", "2023-02-05", "21", "J44.1"),
                                  ("B", "2022-06-10", "2022-06-11", "11", "K80.2")])
    interventions = make_interventions([("A", "proactive_care", "2022-10-01")])
    rollout = make_rollout([("PCN1", None, "proactive_care", "2022-09-01")])
    return {"practices": practices, "patients": patients, "events": events,
            "admissions": admissions, "interventions": interventions, "rollout": rollout}


@pytest.fixture
def small_extract(tmp_path) -> dict[str, Path]:
    """:func:`small_extract_tables` written as Parquet files in a temporary folder."""
    return write_tables(tmp_path / "extract", **small_extract_tables())


# The factories as fixtures, for tests that prefer asking for them.
@pytest.fixture(name="make_patients")
def _make_patients_fixture():
    return make_patients


@pytest.fixture(name="make_events")
def _make_events_fixture():
    return make_events


@pytest.fixture(name="make_admissions")
def _make_admissions_fixture():
    return make_admissions


@pytest.fixture(name="make_practices")
def _make_practices_fixture():
    return make_practices


@pytest.fixture(name="make_interventions")
def _make_interventions_fixture():
    return make_interventions


@pytest.fixture(name="make_rollout")
def _make_rollout_fixture():
    return make_rollout


@pytest.fixture(name="as_dates")
def _as_dates_fixture():
    return as_dates


@pytest.fixture(name="write_tables")
def _write_tables_fixture():
    return write_tables


# A workflow job as Snakemake hands it to a rule's script, for tests of the workflow glue.
def make_snakemake_job(rule: str, *, stage: str, input: dict[str, Any] | None = None,
                       output: Sequence[str | Path] = (), params: dict[str, Any] | None = None,
                       log: Sequence[str | Path] = (), wildcards: dict[str, str] | None = None,
                       threads: int = 1, resources: dict[str, Any] | None = None):
    """Snakemake's own job object (``snakemake.script.Snakemake``) for rule ``rule`` running
    ``stage`` (``params.stage``). A named input or param given as a list is a named list of
    files, as a rule's ``codelists=[...]`` is; ``output`` and ``log`` are unnamed, in order."""
    from snakemake.script import Snakemake

    try:
        from snakemake.iocontainers import Namedlist
    except ImportError:  # Snakemake 8
        from snakemake.io import Namedlist

    def named(items: dict[str, Any], lists_are_files: bool) -> Namedlist:
        result = Namedlist()
        for name, value in items.items():
            start = len(result)
            if lists_are_files and isinstance(value, list):
                result.extend(str(v) for v in value)
                result._set_name(name, start, len(result))
            else:
                result.append(str(value) if isinstance(value, Path) else value)
                result._set_name(name, start)
        return result

    return Snakemake(
        named(dict(input or {}), True), Namedlist([str(p) for p in output]),
        named({"stage": stage, **(params or {})}, False), named(dict(wildcards or {}), False),
        threads, named(dict(resources or {}), False), Namedlist([str(p) for p in log]), {},
        rule, 0)


@pytest.fixture(name="make_snakemake_job")
def _make_snakemake_job_fixture():
    return make_snakemake_job
