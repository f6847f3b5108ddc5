"""A SQL Server-style export of a synthetic extract ingests to the clean extract's tables.

The export (``phm_eval.synth.warehouse``) carries every warehouse quirk and records after the
study end; ingested with the study period, it must give the tables the clean extract gives
(plus the one spell straddling the study end, discharged on it), with every quirk counted in
``data_quality.csv`` and every cut in ``flow.csv``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from phm_eval.ingest import StudyPeriod, ingest, validate
from phm_eval.synth.warehouse import write_warehouse_export

PERIOD = StudyPeriod("2019-04-01", "2024-03-31", programme="proactive_care")
TABLES = ("practices", "patients", "events", "admissions", "interventions", "rollout")


@pytest.fixture(scope="module")
def extracts(tmp_path_factory):
    from phm_eval.synth import simulate

    root = tmp_path_factory.mktemp("warehouse")
    simulate("smoke", out=root / "synthetic", n_patients=1200, seed=7)
    export = write_warehouse_export(root / "synthetic", root / "export", seed=3,
                                    extend_past_study_end_days=60)
    clean_flow = ingest(root / "synthetic", root / "clean", PERIOD)
    export_flow = ingest(root / "export", root / "ingested", PERIOD)
    return root, export, clean_flow, export_flow


def source(root: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(root / "synthetic" / f"{table}.parquet")


def test_export_has_the_warehouse_format(extracts):
    root, export, _, _ = extracts
    assert sorted(p.name for p in export.folder.iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    raw = (export.folder / "patients.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == len(source(root, "patients")) + 1
    text = raw.decode("utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert sorted(header) == sorted(source(root, "patients").columns)
    assert header != list(source(root, "patients").columns)  # shuffled
    for quirk in ("NULL", " 00:00:00.000", "Female", "Male", ".0,", "White    "):
        assert quirk in text, quirk
    assert "; " in (export.folder / "admissions.csv").read_text(encoding="utf-8-sig")
    events = (export.folder / "events.csv").read_text(encoding="utf-8-sig")
    assert ".0," in events or ".0\r\n" in events
    assert "proactive_care    " in (export.folder / "interventions.csv").read_text(
        encoding="utf-8-sig")


def test_ingested_export_equals_the_clean_extract(extracts):
    root, export, _, _ = extracts
    for table in TABLES:
        got = pq.read_table(root / "ingested" / f"{table}.parquet")
        want = pq.read_table(root / "clean" / f"{table}.parquet")
        if table == "admissions":
            straddling = pc.equal(got["spell_id"], export.straddling_spell_id)
            spell = got.filter(straddling).to_pylist()
            assert len(spell) == 1
            assert str(spell[0]["discharge_date"]) == export.study_end
            assert str(spell[0]["admission_date"]) < export.study_end
            got = got.filter(pc.invert(straddling))
        assert got.schema == want.schema, table
        assert got.equals(want), table


def flow_n(flow: pd.DataFrame, table: str, step: str, reason_start: str = "") -> int:
    rows = flow[(flow["table"] == table) & (flow["step"] == step)
                & flow["reason"].str.startswith(reason_start)]
    return int(rows["n"].sum())


def test_flow_counts_what_was_cut_at_the_study_end(extracts):
    root, export, clean, flow = extracts
    added = export.after_study_end
    assert min(added.values()) >= 1, added
    after = "after the study end (2024-03-31)"
    assert flow_n(flow, "events", "exclude", f"dated {after}") == added["events"]
    assert flow_n(flow, "admissions", "exclude", f"admitted {after}") == added["admissions"]
    assert flow_n(flow, "admissions", "modify", f"discharged {after}") == 1
    assert flow_n(flow, "patients", "modify", f"date_of_death {after}") == added["deaths"]
    assert flow_n(flow, "patients", "modify", f"registration_end {after}") == (
        added["registration_ends"])
    assert flow_n(flow, "interventions", "exclude", f"enrolled {after}") == added["enrolments"]
    assert flow_n(flow, "interventions", "modify", f"end_date {after}") == (
        added["enrolment_ends"])
    # Nothing else differs from the clean extract's flow.
    assert flow_n(clean, "events", "exclude", f"dated {after}") == 0
    for table in TABLES:
        for step in ("exclude", "kept"):
            expected = flow_n(clean, table, step)
            if step == "exclude":
                expected += {"events": added["events"], "admissions": added["admissions"],
                             "interventions": added["enrolments"]}.get(table, 0)
            if step == "kept" and table == "admissions":
                expected += 1
            assert flow_n(flow, table, step) == expected, (table, step)
    pd.testing.assert_frame_equal(pd.read_csv(root / "ingested" / "flow.csv"), flow)


def test_data_quality_counts_every_quirk(extracts):
    root, export, _, _ = extracts
    quality = pd.read_csv(root / "ingested" / "data_quality.csv")
    assert list(quality.columns) == ["file", "column", "quirk", "rows_affected", "example",
                                     "action"]

    def n(file: str, column: str, quirk_start: str) -> int:
        rows = quality[(quality["file"] == file) & (quality["column"] == column)
                       & quality["quirk"].str.startswith(quirk_start)]
        assert len(rows) <= 1
        return int(rows["rows_affected"].sum())

    added = export.after_study_end
    patients = source(root, "patients")
    n_patients = len(patients)
    assert n("patients.csv", "sex", "sex written as a word") == n_patients
    assert n("patients.csv", "sex", "trailing spaces") == n_patients
    assert n("patients.csv", "ethnicity", "trailing spaces") == n_patients
    assert n("patients.csv", "practice_id", "trailing spaces") == n_patients
    assert n("patients.csv", "imd_decile", "whole number written with decimals") == (
        patients["imd_decile"].notna().sum())
    assert n("patients.csv", "imd_decile", "NULL") == patients["imd_decile"].isna().sum()
    assert n("patients.csv", "date_of_death", "NULL") == (
        patients["date_of_death"].isna().sum() - added["deaths"])
    assert n("patients.csv", "date_of_death", "date with a midnight time") == (
        patients["date_of_death"].notna().sum() + added["deaths"])
    assert n("patients.csv", "date_of_birth", "date with a midnight time") == n_patients
    events = source(root, "events")
    n_events = len(events) + added["events"]
    assert n("events.csv", "snomed_code", "code written as a number") == n_events
    assert n("events.csv", "date", "date with a midnight time") == n_events
    admissions = source(root, "admissions")
    n_spells = len(admissions) + added["admissions"] + 1
    assert n("admissions.csv", "admission_method", "trailing spaces") == n_spells
    assert n("admissions.csv", "secondary_diagnoses", "codes separated by '; '") == (
        admissions["secondary_diagnoses"].str.contains(";", na=False).sum()
        + added["admissions"] + 1)
    interventions = source(root, "interventions")
    assert n("interventions.csv", "programme", "trailing spaces") == (
        len(interventions) + added["enrolments"])
    for table in TABLES:
        whole = quality[(quality["file"] == f"{table}.csv")
                        & (quality["column"] == "(whole file)")]
        assert set(whole["quirk"]) == {"UTF-8 byte-order mark", "Windows line ends (CRLF)",
                                       "columns in another order than the contract's"}, table
    assert (quality["rows_affected"] > 0).all()


def test_validate_with_the_study_gives_the_same_counts(extracts):
    root, export, _, flow = extracts
    report = validate(export.folder, PERIOD)
    pd.testing.assert_frame_equal(report.flow, flow)
    pd.testing.assert_frame_equal(report.data_quality,
                                  pd.read_csv(root / "ingested" / "data_quality.csv"))


def test_export_of_a_csv_extract_with_an_explicit_study_end(extracts, tmp_path):
    root, _, _, _ = extracts
    src = tmp_path / "csv"
    src.mkdir()
    for table in TABLES:
        source(root, table).to_csv(src / f"{table}.csv", index=False)
    export = write_warehouse_export(src, tmp_path / "export", seed=1, study_end="2023-03-31")
    assert export.study_end == "2023-03-31"
    flow = ingest(export.folder, tmp_path / "out",
                  StudyPeriod("2019-04-01", "2023-03-31", programme="proactive_care"))
    assert flow_n(flow, "admissions", "modify", "discharged after the study end") >= 1
    shutil.rmtree(tmp_path / "out")
