"""Re-write a synthetic extract the way a SQL Server warehouse exports it.

The result is what an ICB analyst gets from a warehouse's export wizard, with every habit the
ingest normalises (see :mod:`phm_eval.ingest.quirks`) and records dated after the study end,
as extracts are cut at the day they are taken rather than at the study end:

- UTF-8 with a byte-order mark, Windows line ends (CRLF), columns in a shuffled order;
- ``NULL`` for every missing value;
- dates as ``YYYY-MM-DD 00:00:00.000``;
- ``sex`` as ``Female``, ``Male``, ``Indeterminate``, ``Unknown``;
- CHAR-padded text (identifiers of practices and PCNs, sex, ethnicity, ADMIMETH, the primary
  diagnosis and the programme name);
- ``imd_decile`` as ``6.0`` and SNOMED CT / dm+d codes as ``271649006.0``;
- secondary diagnoses joined with ``'; '``;
- after the study end: extra events and emergency spells, one spell straddling the study end,
  deaths and de-registrations, enrolments, and enrolment ends.

Ingested with the same study period, the export gives the tables of the clean extract plus the
one straddling spell (discharged on the study end).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = ("practices", "patients", "events", "admissions", "interventions", "rollout")
DATE_COLUMNS = {
    "patients": ("date_of_birth", "registration_start", "registration_end", "date_of_death"),
    "events": ("date",),
    "admissions": ("admission_date", "discharge_date"),
    "interventions": ("enrolment_date", "end_date"),
    "rollout": ("start_date",),
}
# CHAR(n) columns: padded with spaces to the column's width.
PADDED = {
    "practices": ("practice_id", "pcn_id", "icb_id"),
    "patients": ("practice_id", "sex", "ethnicity"),
    "admissions": ("admission_method", "primary_diagnosis"),
    "interventions": ("programme",),
    "rollout": ("pcn_id", "practice_id", "programme"),
}
SEX_WORDS = {"F": "Female", "M": "Male", "I": "Indeterminate", "U": "Unknown"}
STRADDLING_SPELL = "WXSTRADDLE1"


@dataclass
class WarehouseExport:
    """What :func:`write_warehouse_export` wrote.

    Attributes
    ----------
    folder : Path
        The export (``<table>.csv`` for every table of the source).
    study_end : str
        The study end the records after it were dated from.
    after_study_end : dict
        How many records were added or changed after the study end: ``events``,
        ``admissions`` (spells admitted after it), ``straddling_spells``, ``deaths``,
        ``registration_ends``, ``enrolments`` and ``enrolment_ends``.
    straddling_spell_id : str
        The ``spell_id`` of the spell admitted before the study end and discharged after it.
    """

    folder: Path
    study_end: str
    after_study_end: dict[str, int] = field(default_factory=dict)
    straddling_spell_id: str = STRADDLING_SPELL


def _read(folder: Path, table: str) -> pd.DataFrame | None:
    parquet, csv = folder / f"{table}.parquet", folder / f"{table}.csv"
    if parquet.exists():
        frame = pd.read_parquet(parquet)
    elif csv.exists():
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    else:
        return None
    for column in DATE_COLUMNS.get(table, ()):
        frame[column] = pd.Series([d.date() if pd.notna(d) else None
                                   for d in pd.to_datetime(frame[column])],
                                  index=frame.index, dtype=object)
    return frame


def _study_end(folder: Path, tables: dict[str, pd.DataFrame]) -> date:
    truth = folder / "truth" / "truth.json"
    if truth.exists():
        end = json.loads(truth.read_text(encoding="utf-8")).get("scenario", {}).get("study_end")
        if end:
            return date.fromisoformat(end)
    return max(tables["events"]["date"].dropna())


def _add_after_study_end(tables: dict[str, pd.DataFrame], end: date, days: int,
                         rng: np.random.Generator, programme: str) -> dict[str, int]:
    """Add records dated after ``end`` (within ``days``), consistently across tables."""
    patients = tables["patients"]
    alive = patients[patients["date_of_death"].isna() & patients["registration_end"].isna()
                     & (patients["registration_start"] <= end)]["patient_id"].to_numpy()
    # Whoever dies after the study end must have no record after it already (the source may
    # run past a study end given explicitly).
    active = set()
    for table, column in (("events", "date"), ("admissions", "discharge_date"),
                          ("interventions", "enrolment_date"), ("interventions", "end_date")):
        frame = tables[table]
        active |= set(frame.loc[frame[column].notna() & (frame[column] > end), "patient_id"])
    alive = rng.permutation(alive)
    quiet = np.array([p for p in alive if p not in active], dtype=object)
    k = max(1, min(10, len(alive) // 60))
    if len(alive) < 6 * k or len(quiet) < k:
        raise ValueError("too few patients alive and registered at the study end to add "
                         "records after it")
    dying = quiet[:k]
    rest = np.array([p for p in alive if p not in set(dying)], dtype=object)
    leaving, with_events, admitted, straddling, enrolled = (
        rest[:k], rest[k:3 * k], rest[3 * k:4 * k], rest[4 * k], rest[4 * k + 1:5 * k])

    def later(n: int, low: int = 1) -> list[date]:
        return [end + timedelta(days=int(d)) for d in rng.integers(low, days + 1, size=n)]

    index = patients.set_index("patient_id").index
    rows = index.get_indexer(dying)
    patients.loc[patients.index[rows], "date_of_death"] = later(len(rows), low=days // 2 + 1)
    rows = index.get_indexer(leaving)
    patients.loc[patients.index[rows], "registration_end"] = later(len(rows))

    events = tables["events"]
    codes = events["snomed_code"].dropna().unique()
    new_events = pd.DataFrame({
        "patient_id": np.repeat(with_events, 3),
        "date": later(3 * len(with_events)),
        "snomed_code": rng.choice(codes, size=3 * len(with_events)),
    })
    if "value" in events.columns:
        new_events["value"] = np.nan
    tables["events"] = pd.concat([events, new_events], ignore_index=True)

    admissions = tables["admissions"]
    admitted_on = later(len(admitted))
    new_spells = pd.DataFrame({
        "patient_id": list(admitted) + [straddling],
        "spell_id": [f"WXSP{i:06d}" for i in range(len(admitted))] + [STRADDLING_SPELL],
        "admission_date": admitted_on + [end - timedelta(days=2)],
        "discharge_date": [d + timedelta(days=1) for d in admitted_on]
        + [end + timedelta(days=3)],
        "admission_method": "21",
        "primary_diagnosis": "J44.1",
    })
    if "secondary_diagnoses" in admissions.columns:
        new_spells["secondary_diagnoses"] = "I10;E11.9"
    tables["admissions"] = pd.concat([admissions, new_spells], ignore_index=True)

    interventions = tables["interventions"]
    open_rows = interventions.index[interventions["end_date"].isna()
                                    & (interventions["enrolment_date"] <= end)]
    ending = rng.choice(open_rows, size=min(k, len(open_rows)), replace=False)
    interventions.loc[ending, "end_date"] = later(len(ending))
    new_enrolments = pd.DataFrame({"patient_id": enrolled, "programme": programme,
                                   "enrolment_date": later(len(enrolled)),
                                   "end_date": None})
    tables["interventions"] = pd.concat([interventions, new_enrolments], ignore_index=True)
    return {"events": len(new_events), "admissions": len(admitted), "straddling_spells": 1,
            "deaths": len(dying), "registration_ends": len(leaving),
            "enrolments": len(enrolled), "enrolment_ends": len(ending)}


def _as_text(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as the text a warehouse export writes (None where missing)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        missing = values.isna()
        if column in DATE_COLUMNS.get(table, ()):
            text = values.map(lambda d: f"{d.isoformat()} 00:00:00.000" if pd.notna(d) else None)
        elif column == "imd_decile":
            text = values.map(lambda v: f"{float(v):.1f}" if pd.notna(v) else None)
        elif column == "value":
            text = values.map(lambda v: repr(float(v)) if pd.notna(v) else None)
        elif column == "snomed_code":
            text = values.astype(str) + ".0"
        elif column == "sex":
            text = values.map(SEX_WORDS)
        elif column == "secondary_diagnoses":
            text = values.str.replace(";", "; ", regex=False)
        else:
            text = values.astype(str)
        if column in PADDED.get(table, ()):
            # A column with no values at all (practice_id of a PCN-level roll-out) has no width.
            lengths = text[~missing].str.len()
            width = (int(lengths.max()) if len(lengths) else 0) + 4
            text = text.str.ljust(width)
        out[column] = text.where(~missing, None)
    return out


def write_warehouse_export(source_folder: str | Path, out_folder: str | Path, *,
                           extend_past_study_end_days: int = 90, seed: int = 0,
                           study_end: str | None = None) -> WarehouseExport:
    """Re-write a synthetic extract as a SQL Server-style CSV export with its quirks.

    Parameters
    ----------
    source_folder : path
        An extract in the data contract, e.g. written by :func:`phm_eval.synth.simulate`
        (Parquet or CSV; a ``truth/truth.json`` beside it gives the study end).
    out_folder : path
        Folder to write ``<table>.csv`` to (created if needed).
    extend_past_study_end_days : int
        Records after the study end are dated up to this many days after it.
    seed : int
        Seed of the column orders and of the records chosen and added.
    study_end : str, optional
        ``YYYY-MM-DD``; default the scenario's study end from ``truth/truth.json``, else the
        last event date.

    Returns
    -------
    WarehouseExport
        The folder and the counts of records dated after the study end.
    """
    source, out = Path(source_folder), Path(out_folder)
    if extend_past_study_end_days < 4:
        raise ValueError("extend_past_study_end_days must be at least 4")
    tables = {t: frame for t in TABLES if (frame := _read(source, t)) is not None}
    end = date.fromisoformat(study_end) if study_end else _study_end(source, tables)
    rng = np.random.default_rng(seed)
    programmes = tables["interventions"]["programme"].dropna()
    programme = programmes.mode().iloc[0] if len(programmes) else "proactive_care"
    added = _add_after_study_end(tables, end, extend_past_study_end_days, rng, programme)
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        text = _as_text(table, frame)
        text = text[list(rng.permutation(text.columns))]
        text.to_csv(out / f"{table}.csv", index=False, lineterminator="\r\n",
                    encoding="utf-8-sig", na_rep="NULL")
    return WarehouseExport(out, end.isoformat(), added)
