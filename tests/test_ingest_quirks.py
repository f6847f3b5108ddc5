"""Warehouse quirks normalised and counted; ambiguous values still errors; every problem in one
pass; records after the study end cut and counted; a filter that empties a table explained.

Each case starts from the tiny valid folder of ``test_ingest_errors``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_ingest_errors import PERIOD, TINY, add_column, add_row, set_cell, write_tiny

from phm_eval.errors import InputError
from phm_eval.ingest import InputProblems, StudyPeriod, ingest, validate


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny(tmp_path / "in")


@pytest.fixture
def clean(tmp_path) -> Path:
    """The tiny folder ingested as it is."""
    src = write_tiny(tmp_path / "clean_in")
    ingest(src, tmp_path / "clean", PERIOD)
    return tmp_path / "clean"


def assert_same_tables(got: Path, want: Path) -> None:
    for table in TINY:
        a = pq.read_table(got / f"{table}.parquet")
        b = pq.read_table(want / f"{table}.parquet")
        assert a.equals(b), (table, a.to_pandas(), b.to_pandas())


def quality(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "data_quality.csv")


# ---------------------------------------------------------------------------------------------
# Each quirk with one meaning is normalised and counted
# ---------------------------------------------------------------------------------------------

QUIRK_CASES = [
    # id, table, row, column, quirky value, quirk
    ("null_date", "patients", 1, "registration_end", "NULL", "NULL written for a missing value"),
    ("null_number", "events", 1, "value", "NULL", "NULL written for a missing value"),
    ("null_text", "admissions", 2, "secondary_diagnoses", "NULL",
     "NULL written for a missing value"),
    ("null_integer", "patients", 2, "imd_decile", "NULL", "NULL written for a missing value"),
    ("midnight_ms", "events", 3, "date", "2021-03-03 00:00:00.000",
     "date with a midnight time (00:00:00.000)"),
    ("midnight_iso", "admissions", 1, "admission_date", "2020-02-01T00:00:00",
     "date with a midnight time (00:00:00.000)"),
    ("midnight_datetime2", "interventions", 1, "enrolment_date", "2021-01-01 00:00:00.0000000",
     "date with a midnight time (00:00:00.000)"),
    ("midnight_no_seconds", "patients", 3, "date_of_birth", "1980-03-01 00:00",
     "date with a midnight time (00:00:00.000)"),
    ("sex_female", "patients", 1, "sex", "Female", "sex written as a word (Male, Female)"),
    ("sex_male_lower", "patients", 2, "sex", "male", "sex written as a word (Male, Female)"),
    ("sex_unknown", "patients", 4, "sex", "Unknown", "sex written as a word (Male, Female)"),
    ("padded_ethnicity", "patients", 1, "ethnicity", "White     ",
     "trailing spaces (CHAR padding)"),
    ("padded_programme", "interventions", 1, "programme", "proactive_care    ",
     "trailing spaces (CHAR padding)"),
    ("padded_foreign_key", "patients", 1, "practice_id", "PR1   ",
     "trailing spaces (CHAR padding)"),
    ("padded_dictionary_column", "events", 1, "patient_id", "PT1  ",
     "trailing spaces (CHAR padding)"),
    ("padded_icd10", "admissions", 2, "primary_diagnosis", "I21  ",
     "trailing spaces (CHAR padding)"),
    ("imd_float", "patients", 1, "imd_decile", "3.0", "whole number written with decimals (6.0)"),
    ("snomed_float", "events", 2, "snomed_code", "271649006.0",
     "code written as a number with decimals (.0)"),
    ("admimeth_float", "admissions", 1, "admission_method", "21.0",
     "code written as a number with decimals (.0)"),
    ("secondary_spaced", "admissions", 1, "secondary_diagnoses", "I10; E11.9",
     "codes separated by '; ' (with spaces)"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "quirk"),
                         [c[1:] for c in QUIRK_CASES], ids=[c[0] for c in QUIRK_CASES])
def test_quirk_is_normalised_and_counted(tiny, clean, tmp_path, table, row, column, value,
                                         quirk):
    set_cell(tiny, table, row, column, value)
    out = tmp_path / "out"
    ingest(tiny, out, PERIOD)
    assert_same_tables(out, clean)
    got = quality(out)
    assert len(got) == 1, got
    note = got.iloc[0]
    assert (note["file"], note["column"], note["quirk"], note["rows_affected"]) == (
        f"{table}.csv", column, quirk, 1)
    assert note["example"].startswith(repr(value))


def test_quirks_in_a_typed_parquet_file_are_normalised(tiny, clean, tmp_path):
    # Text columns of Parquet files go through the same normalisation (and the file is then
    # staged rather than copied).
    import io

    import pyarrow.csv as arrow_csv

    from phm_eval.ingest import contract_schema

    (tiny / "interventions.csv").unlink()
    text = TINY["interventions"].replace("PT1,proactive_care,", "PT1,proactive_care   ,")
    data = arrow_csv.read_csv(io.BytesIO(text.encode()), convert_options=arrow_csv.ConvertOptions(
        column_types={f.name: f.type for f in contract_schema("interventions")},
        strings_can_be_null=True))
    pq.write_table(data, tiny / "interventions.parquet")
    out = tmp_path / "out"
    ingest(tiny, out, PERIOD)
    assert_same_tables(out, clean)
    note = quality(out).iloc[0]
    assert (note["file"], note["column"], note["rows_affected"]) == (
        "interventions.parquet", "programme", 1)


def test_file_level_habits_are_noted(tiny, clean, tmp_path):
    text = TINY["practices"]
    lines = text.splitlines()
    reordered = [",".join(reversed(line.split(","))) for line in lines]
    (tiny / "practices.csv").write_bytes(
        b"\xef\xbb\xbf" + ("\r\n".join(reordered) + "\r\n").encode())
    out = tmp_path / "out"
    ingest(tiny, out, PERIOD)
    assert_same_tables(out, clean)
    got = quality(out).set_index("quirk")
    assert set(got["column"]) == {"(whole file)"}
    assert got.loc["UTF-8 byte-order mark", "rows_affected"] == 3
    assert got.loc["Windows line ends (CRLF)", "rows_affected"] == 3
    assert got.loc["columns in another order than the contract's", "example"] == (
        "icb_id, pcn_id, practice_id")


def test_counts_add_up_over_rows_and_chunks(tiny, tmp_path, monkeypatch):
    from phm_eval.ingest import _common

    monkeypatch.setattr(_common, "CHUNK_ROWS", 2)
    for row in range(1, 8):
        set_cell(tiny, "events", row, "snomed_code",
                 read_cell(tiny, "events", row, "snomed_code") + ".0")
    ingest(tiny, tmp_path / "out", PERIOD)
    note = quality(tmp_path / "out").iloc[0]
    assert note["rows_affected"] == 7
    assert note["example"] == "'38341003.0' -> '38341003'"


def read_cell(folder: Path, table: str, row: int, column: str) -> str:
    import csv

    with open(folder / f"{table}.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[row][rows[0].index(column)]


# ---------------------------------------------------------------------------------------------
# Ambiguous values stay errors
# ---------------------------------------------------------------------------------------------

AMBIGUOUS_CASES = [
    ("time_not_midnight", "events", 3, "date", "2021-03-03 09:30:00.000",
     "must be a real date written YYYY-MM-DD"),
    ("one_second_past_midnight", "events", 3, "date", "2021-03-03 00:00:01",
     "must be a real date written YYYY-MM-DD"),
    ("imd_fraction", "patients", 3, "imd_decile", "6.5", "must be a whole number"),
    ("snomed_fraction", "events", 2, "snomed_code", "271649006.5",
     "must be a SNOMED CT identifier"),
    ("snomed_scientific", "events", 2, "snomed_code", "2.71649006E8",
     "must be a SNOMED CT identifier"),
    ("sex_other_word", "patients", 1, "sex", "Woman", "sex must be one of F, M, I, U"),
    ("leading_spaces", "patients", 1, "ethnicity", " White", "ethnicity must be one of"),
    ("null_lower_case", "events", 3, "date", "null", "must be a real date written YYYY-MM-DD"),
    ("null_in_required_column", "events", 3, "snomed_code", "NULL",
     "value is missing but the column is required"),
    ("secondary_commas", "admissions", 1, "secondary_diagnoses", "I10, E11.9",
     "must be ICD-10 codes separated by ';'"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "rule"),
                         [c[1:] for c in AMBIGUOUS_CASES], ids=[c[0] for c in AMBIGUOUS_CASES])
def test_ambiguous_values_stay_errors(tiny, tmp_path, table, row, column, value, rule):
    set_cell(tiny, table, row, column, value)
    with pytest.raises(InputError) as caught:
        ingest(tiny, tmp_path / "out", PERIOD)
    err = caught.value
    assert (err.file, err.column, err.rows) == (f"{table}.csv", column, [row])
    assert rule in err.rule
    assert "Fix: " in str(err)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Every problem of every file in one pass
# ---------------------------------------------------------------------------------------------

def test_five_errors_in_five_files_are_all_listed(tiny, tmp_path):
    set_cell(tiny, "patients", 2, "sex", "X")  # rows
    set_cell(tiny, "events", 4, "snomed_code", "12AB")  # rows
    set_cell(tiny, "admissions", 1, "discharge_date", "2020-01-31")  # across columns
    add_column(tiny, "interventions", "notes")  # file
    set_cell(tiny, "practices", 2, "practice_id", "PR1")  # keys
    with pytest.raises(InputProblems) as caught:
        validate(tiny)
    err = caught.value
    got = [(p.file, p.column, p.rows) for p in err.problems]
    # In the order of the tables, whichever layer found them.
    assert got == [
        ("practices.csv", "practice_id", [1, 2]),
        ("patients.csv", "sex", [2]),
        ("events.csv", "snomed_code", [4]),
        ("admissions.csv", "discharge_date", [1]),
        ("interventions.csv", "notes", []),
    ]
    message = str(err)
    lines = message.splitlines()
    assert lines[0] == "5 problems in the input files; fix them all, then validate again:"
    assert len(lines) == 6
    for problem, line in zip(err.problems, lines[1:], strict=True):
        assert str(problem) in line
        assert "Fix: " in line
    assert "events.csv, column 'snomed_code': must be a SNOMED CT identifier" in message
    assert "duplicate key" in message and "discharge_date is before admission_date" in message
    # The first problem's attributes are the error's own, as with a single problem.
    assert (err.file, err.column) == (err.problems[0].file, err.problems[0].column)


def test_all_rules_of_one_file_and_their_rows_are_listed_capped(tiny, tmp_path):
    for row in range(1, 8):
        set_cell(tiny, "events", row, "snomed_code", f"X{row}")
    set_cell(tiny, "events", 2, "date", "2020-13-01")
    with pytest.raises(InputProblems) as caught:
        ingest(tiny, tmp_path / "out", PERIOD)
    date_problem, code_problem = caught.value.problems
    assert (date_problem.column, date_problem.rows) == ("date", [2])
    assert code_problem.column == "snomed_code"
    assert code_problem.rows == [1, 2, 3, 4, 5]  # five shown
    assert code_problem.n_failing == 7  # all counted
    assert "(found 'X1', 'X2', 'X3')" in code_problem.rule


def test_a_file_problem_does_not_hide_other_files(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    set_cell(tiny, "admissions", 2, "admission_method", "77")
    with pytest.raises(InputProblems) as caught:
        validate(tiny)
    assert [(p.file, p.column) for p in caught.value.problems] == [
        ("events.csv", None), ("admissions.csv", "admission_method")]


def test_one_problem_keeps_the_single_line_message(tiny):
    set_cell(tiny, "events", 4, "snomed_code", "12345X")
    with pytest.raises(InputError) as caught:
        validate(tiny)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("events.csv, column 'snomed_code': must be a SNOMED CT identifier")
    assert message.endswith("1 rows fail; first: row 4 (patient_id=PT3). Fix: write the concept "
                            "identifier as plain digits, e.g. 271649006 (271649006.0 is read "
                            "too)")


# ---------------------------------------------------------------------------------------------
# Records after the study end are cut and counted
# ---------------------------------------------------------------------------------------------

END = "2024-03-31"


def flow_reason(flow: pd.DataFrame, table: str, reason_start: str) -> int:
    rows = flow[(flow["table"] == table) & flow["reason"].str.startswith(reason_start)]
    assert len(rows) == 1, (table, reason_start, flow)
    return int(rows["n"].iloc[0])


def test_records_after_the_study_end_are_cut_and_counted(tiny, clean, tmp_path):
    add_row(tiny, "events", patient_id="PT1", date="2024-04-01", snomed_code="38341003")
    add_row(tiny, "events", patient_id="PT4", date="2025-01-01", snomed_code="38341003")
    add_row(tiny, "admissions", patient_id="PT1", spell_id="SP8", admission_date="2024-05-01",
            discharge_date="2024-05-03", admission_method="21", primary_diagnosis="J44")
    add_row(tiny, "interventions", patient_id="PT4", programme="proactive_care",
            enrolment_date="2024-04-02")
    add_row(tiny, "rollout", pcn_id="PCN2", programme="social_prescribing",
            start_date="2024-06-01")
    # A patient who joined after the study end, with an event: both excluded.
    add_row(tiny, "patients", patient_id="PT8", practice_id="PR1", sex="F",
            date_of_birth="1950-01-01", ethnicity="White", registration_start="2024-04-15")
    add_row(tiny, "events", patient_id="PT8", date="2024-05-01", snomed_code="38341003")
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_reason(flow, "events", "dated after the study end (2024-03-31)") == 2
    assert flow_reason(flow, "events", "patient not in the study population") == 2
    assert flow_reason(flow, "admissions", "admitted after the study end") == 1
    assert flow_reason(flow, "interventions", "enrolled after the study end") == 1
    assert flow_reason(flow, "rollout", "starts after the study end") == 1
    assert flow_reason(flow, "patients", "registered only after the study end") == 1
    assert_same_tables(tmp_path / "out", clean)


def test_closing_dates_after_the_study_end_are_cut_and_counted(tiny, clean, tmp_path):
    set_cell(tiny, "patients", 4, "registration_end", "2024-06-30")  # still registered
    set_cell(tiny, "patients", 1, "date_of_death", "2024-04-02")  # alive at the study end
    set_cell(tiny, "interventions", 1, "end_date", "2024-05-01")  # still enrolled
    # A spell straddling the study end: discharged on it.
    set_cell(tiny, "admissions", 1, "admission_date", "2024-03-30")
    set_cell(tiny, "admissions", 1, "discharge_date", "2024-04-03")
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_reason(flow, "patients", "date_of_death after the study end") == 1
    assert flow_reason(flow, "patients", "registration_end after the study end") == 1
    assert flow_reason(flow, "interventions", "end_date after the study end") == 1
    assert flow_reason(flow, "admissions", "discharged after the study end") == 1
    for table in ("patients", "interventions"):
        assert pq.read_table(tmp_path / "out" / f"{table}.parquet").equals(
            pq.read_table(clean / f"{table}.parquet"))
    spells = pd.read_parquet(tmp_path / "out" / "admissions.parquet")
    assert str(spells.loc[0, "admission_date"]) == "2024-03-30"
    assert str(spells.loc[0, "discharge_date"]) == END
    for table in flow["table"].unique():
        steps = flow[flow["table"] == table].groupby("step")["n"].sum()
        assert steps["read"] - steps.get("exclude", 0) == steps["kept"], table


def test_a_boundary_date_on_the_study_end_is_kept(tiny, tmp_path):
    add_row(tiny, "events", patient_id="PT1", date=END, snomed_code="38341003")
    set_cell(tiny, "admissions", 1, "discharge_date", END)
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_reason(flow, "events", "dated after the study end") == 0
    assert flow_reason(flow, "admissions", "discharged after the study end") == 0


def test_validate_with_the_study_reports_the_cuts(tiny):
    add_row(tiny, "events", patient_id="PT1", date="2024-04-01", snomed_code="38341003")
    set_cell(tiny, "patients", 1, "sex", "Female")
    report = validate(tiny, PERIOD)
    assert flow_reason(report.flow, "events", "dated after the study end") == 1
    assert report.data_quality[["file", "column", "rows_affected"]].values.tolist() == [
        ["patients.csv", "sex", 1]]


# ---------------------------------------------------------------------------------------------
# A filter that empties a table says what was excluded and why
# ---------------------------------------------------------------------------------------------

def test_no_enrolments_in_the_programme(tiny, tmp_path):
    period = StudyPeriod("2019-04-01", END, programme="Proactive Care")
    with pytest.raises(InputError) as caught:
        ingest(tiny, tmp_path / "results" / "data", period)
    err = caught.value
    assert (err.file, err.column) == ("interventions.csv", "programme")
    assert err.rule.startswith("no rows are left after the study's filters: 3 read, all "
                               "excluded (programme other than 'Proactive Care': 3)")
    assert "Programmes found: 'proactive_care' (2 rows), 'social_prescribing' (1 rows)" in err.rule
    assert "did you mean 'proactive_care'?" in err.rule
    assert not (tmp_path / "results" / "data").exists()
    with pytest.raises(InputError, match="no rows are left after the study's filters"):
        validate(tiny, period)


def test_no_patients_in_the_study_population(tiny, tmp_path):
    for row in range(1, 6):
        set_cell(tiny, "patients", row, "registration_end", "2018-12-31")
    set_cell(tiny, "patients", 2, "date_of_death", "")
    set_cell(tiny, "interventions", 2, "enrolment_date", "2018-06-01")
    set_cell(tiny, "interventions", 1, "enrolment_date", "2018-06-01")
    set_cell(tiny, "interventions", 3, "end_date", "2018-06-01")
    set_cell(tiny, "interventions", 3, "enrolment_date", "2018-01-01")
    for row, spell in ((1, "2018-02-01"), (2, "2018-07-01"), (4, "2018-05-05")):
        set_cell(tiny, "admissions", row, "admission_date", spell)
        set_cell(tiny, "admissions", row, "discharge_date", spell)
    for row in range(1, 8):
        set_cell(tiny, "events", row, "date", "2018-01-01")
    with pytest.raises(InputProblems) as caught:
        ingest(tiny, tmp_path / "out", PERIOD)
    first = caught.value.problems[0]
    assert first.file == "patients.csv"
    assert first.rule == ("no rows are left after the study's filters: 5 read, all excluded "
                          "(registration ended or died before the study start: 5)")
    assert {p.file for p in caught.value.problems} == {
        "patients.csv", "events.csv", "admissions.csv", "interventions.csv"}
