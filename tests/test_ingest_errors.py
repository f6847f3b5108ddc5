"""Malformed inputs: every broken rule names the file, column, rows and rule, and writes nothing.

Each case starts from a tiny valid folder (five patients), breaks one thing and checks the
:class:`InputError` in full. Row numbers are 1-based data rows (the CSV header is row 0).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pyarrow as arrow
import pyarrow.csv as arrow_csv
import pyarrow.parquet as pq
import pytest

from phm_eval.errors import ConfigError, InputError
from phm_eval.ingest import StudyPeriod, contract_schema, ingest, validate
from phm_eval.ingest import _common as ingest_settings

PERIOD = StudyPeriod("2019-04-01", "2024-03-31")

# A tiny folder that meets the contract. PT5 left before the study start (out of scope).
TINY = {
    "practices": """\
practice_id,pcn_id,icb_id
PR1,PCN1,ICB1
PR2,PCN1,ICB1
PR3,PCN2,
""",
    "patients": """\
patient_id,practice_id,sex,date_of_birth,ethnicity,imd_decile,registration_start,registration_end,date_of_death
PT1,PR1,F,1940-05-01,White,3,2000-01-01,,
PT2,PR1,M,1955-01-01,Asian,,2010-06-15,,2022-07-10
PT3,PR2,F,1980-03-01,Black,7,2015-02-01,2023-01-31,
PT4,PR3,U,2001-11-01,Unknown,10,2001-11-20,,
PT5,PR3,M,1930-01-01,Other,1,1990-01-01,2018-06-30,
""",
    "events": """\
patient_id,date,snomed_code,value
PT1,2019-05-01,38341003,
PT1,2020-01-10,271649006,142.5
PT2,2021-03-03,195967001,
PT3,2022-12-01,73211009,
PT4,2023-06-06,1240751000000100,
PT5,2017-01-01,38341003,
PT2,2022-07-10,38341003,
""",
    "admissions": """\
patient_id,spell_id,admission_date,discharge_date,admission_method,primary_diagnosis,secondary_diagnoses
PT1,SP1,2020-02-01,2020-02-05,21,J44.1,I10;E11.9
PT2,SP2,2022-07-01,2022-07-11,2A,I21,
PT5,SP3,2018-01-01,2018-01-02,11,K40.9,
PT3,SP4,2021-05-05,2021-05-05,12,R69X,
""",
    "interventions": """\
patient_id,programme,enrolment_date,end_date
PT1,proactive_care,2021-01-01,
PT2,proactive_care,2021-06-01,
PT3,social_prescribing,2020-01-01,2020-06-01
""",
    "rollout": """\
pcn_id,practice_id,programme,start_date
PCN1,,proactive_care,2020-10-01
PCN2,PR3,proactive_care,2021-10-01
""",
}


def write_tiny(folder: Path, file_format: str = "csv") -> Path:
    """Write the tiny valid folder as CSV or as Parquet in the contract's types."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, text in TINY.items():
        if file_format == "csv":
            (folder / f"{table}.csv").write_text(text, encoding="utf-8")
        else:
            write_parquet(folder, table, text)
    return folder


def write_parquet(folder: Path, table: str, text: str, types: dict | None = None) -> Path:
    want = contract_schema(table)
    header = text.splitlines()[0].split(",")
    column_types = {f.name: f.type for f in want if f.name in header}
    column_types.update(types or {})
    data = arrow_csv.read_csv(
        io.BytesIO(text.encode()),
        convert_options=arrow_csv.ConvertOptions(column_types=column_types,
                                                 strings_can_be_null=True),
    )
    path = folder / f"{table}.parquet"
    pq.write_table(data, path)
    return path


def read_rows(folder: Path, table: str) -> list[list[str]]:
    with open(folder / f"{table}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def write_rows(folder: Path, table: str, rows: list[list[str]]) -> None:
    with open(folder / f"{table}.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def set_cell(folder: Path, table: str, row: int, column: str, value: str) -> None:
    """Set one cell; ``row`` is the 1-based data row."""
    rows = read_rows(folder, table)
    rows[row][rows[0].index(column)] = value
    write_rows(folder, table, rows)


def add_row(folder: Path, table: str, **values: str) -> int:
    """Append a row (unnamed columns empty); return its 1-based data row number."""
    rows = read_rows(folder, table)
    rows.append([values.get(name, "") for name in rows[0]])
    write_rows(folder, table, rows)
    return len(rows) - 1


def drop_column(folder: Path, table: str, column: str) -> None:
    rows = read_rows(folder, table)
    i = rows[0].index(column)
    write_rows(folder, table, [r[:i] + r[i + 1:] for r in rows])


def add_column(folder: Path, table: str, column: str, value: str = "x") -> None:
    rows = read_rows(folder, table)
    write_rows(folder, table, [rows[0] + [column]] + [r + [value] for r in rows[1:]])


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny(tmp_path / "in")


def expect_error(src: Path, tmp_path: Path, *, file: str, rule: str, column: str | None = None,
                 rows: list[int] | None = None, keys: list[str] | None = None,
                 n_failing: int | None = None, period: StudyPeriod = PERIOD) -> InputError:
    """Run ingest, check the first problem reported in full and that nothing was written.

    Returns that problem. Consequences of the planted error in other rules or files may be
    listed after it (every problem is reported in one pass).
    """
    results = tmp_path / "results"
    destination = results / "data"
    with pytest.raises(InputError) as caught:
        ingest(src, destination, period)
    err = caught.value
    problems = getattr(err, "problems", [err])
    first = problems[0]
    assert (err.file, err.rule, err.column) == (first.file, first.rule, first.column)
    assert first.file == file
    assert rule in first.rule, first.rule
    assert first.column == column
    if rows is not None:
        assert first.rows == rows
        for row in rows:
            assert f"row {row}" in str(first)
    if keys is not None:
        assert first.keys == keys
    if n_failing is not None:
        assert first.n_failing == n_failing
    message = str(first)
    assert message.startswith(file)
    assert message in str(err)
    if column:
        assert f"column '{column}'" in message
    # Nothing written: no destination and no staging folder left beside it.
    assert not destination.exists()
    assert list(results.iterdir()) == []
    return first


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def test_missing_file(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    err = expect_error(tiny, tmp_path, file="events.csv", rule="required file not found")
    assert "events.parquet" in err.rule and err.rows == []


def test_missing_optional_rollout_is_fine(tiny, tmp_path):
    (tiny / "rollout.csv").unlink()
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert "rollout" not in set(flow["table"])
    assert not (tmp_path / "out" / "rollout.parquet").exists()


def test_missing_column(tiny, tmp_path):
    drop_column(tiny, "patients", "sex")
    expect_error(tiny, tmp_path, file="patients.csv", column="sex",
                 rule="required column is missing")


def test_extra_column(tiny, tmp_path):
    add_column(tiny, "patients", "nhs_number", "9434765919")
    err = expect_error(tiny, tmp_path, file="patients.csv", column="nhs_number",
                       rule="unexpected column")
    assert "patient_id, practice_id, sex" in err.rule


def test_duplicate_column_name(tiny, tmp_path):
    rows = read_rows(tiny, "events")
    write_rows(tiny, "events", [rows[0] + ["date"]] + [r + [r[1]] for r in rows[1:]])
    expect_error(tiny, tmp_path, file="events.csv", column="date",
                 rule="column name appears twice in the header")


def test_empty_file(tiny, tmp_path):
    (tiny / "practices.csv").write_bytes(b"")
    expect_error(tiny, tmp_path, file="practices.csv", rule="file is empty: expected a header row")


def test_header_only_patients(tiny, tmp_path):
    (tiny / "patients.csv").write_text(TINY["patients"].splitlines()[0] + "\n")
    expect_error(tiny, tmp_path, file="patients.csv", rule="file has a header but no rows")


def test_header_only_events_is_valid(tiny, tmp_path):
    (tiny / "events.csv").write_text("patient_id,date,snomed_code,value\n")
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    events = flow[flow["table"] == "events"].groupby("step")["n"].sum()
    assert events["read"] == 0 and events["kept"] == 0
    assert pq.read_table(tmp_path / "out" / "events.parquet").num_rows == 0


def test_latin1_bytes(tiny, tmp_path):
    text = TINY["practices"].replace("PR3,PCN2,", "PR3,PCN2,Cr\xe9ches")
    (tiny / "practices.csv").write_bytes(text.encode("latin-1"))
    expect_error(tiny, tmp_path, file="practices.csv", rows=[3],
                 rule="file is not UTF-8 encoded (save it as UTF-8)")


def test_latin1_in_header(tiny, tmp_path):
    text = TINY["practices"].replace("icb_id", "icb_id\xe9")
    (tiny / "practices.csv").write_bytes(text.encode("latin-1"))
    expect_error(tiny, tmp_path, file="practices.csv",
                 rule="file is not UTF-8 encoded (save it as UTF-8); the first bad character "
                      "is in the header")


def test_ragged_row(tiny, tmp_path):
    lines = TINY["events"].splitlines()
    lines[3] += ",extra"
    (tiny / "events.csv").write_text("\n".join(lines) + "\n")
    expect_error(tiny, tmp_path, file="events.csv", rows=[3],
                 rule="row has 5 fields but the header has 4")


def test_short_row(tiny, tmp_path):
    lines = TINY["admissions"].splitlines()
    lines[2] = "PT2,SP2,2022-07-01"
    (tiny / "admissions.csv").write_text("\n".join(lines) + "\n")
    expect_error(tiny, tmp_path, file="admissions.csv", rows=[2],
                 rule="row has 3 fields but the header has 7")


def test_blank_line_counts_as_a_row(tiny, tmp_path):
    lines = TINY["events"].splitlines()
    lines.insert(3, "")
    (tiny / "events.csv").write_text("\n".join(lines) + "\n")
    expect_error(tiny, tmp_path, file="events.csv", column="patient_id", rows=[3],
                 rule="value is missing but the column is required")


def test_both_csv_and_parquet(tiny, tmp_path):
    write_parquet(tiny, "events", TINY["events"])
    err = expect_error(tiny, tmp_path, file="events.csv and events.parquet",
                       rule="both a .csv and a .parquet file exist for this table; keep one")
    assert str(err).startswith("events.csv and events.parquet: both")


def test_corrupt_parquet(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    path = write_parquet(tiny, "events", TINY["events"])
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    expect_error(tiny, tmp_path, file="events.parquet", rule="not a readable Parquet file")


def test_parquet_wrong_column_type(tiny, tmp_path):
    (tiny / "patients.csv").unlink()
    text = TINY["patients"].replace("PT", "")  # patient ids as numbers
    write_parquet(tiny, "patients", text, types={"patient_id": arrow.int64()})
    expect_error(tiny, tmp_path, file="patients.parquet", column="patient_id",
                 rule="Parquet column has type int64 but the contract expects text")


def test_parquet_date_stored_as_integer(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    text = TINY["events"].replace("-", "")
    write_parquet(tiny, "events", text, types={"date": arrow.int64()})
    expect_error(tiny, tmp_path, file="events.parquet", column="date",
                 rule="Parquet column has type int64 but the contract expects dates")


def test_parquet_fractional_imd_decile(tiny, tmp_path):
    (tiny / "patients.csv").unlink()
    text = TINY["patients"].replace("F,1980-03-01,Black,7,", "F,1980-03-01,Black,7.5,")
    write_parquet(tiny, "patients", text, types={"imd_decile": arrow.float64()})
    expect_error(tiny, tmp_path, file="patients.parquet", column="imd_decile", rows=[3],
                 keys=["patient_id=PT3"], rule="must be a whole number (found '7.5')")


def test_parquet_text_dates_are_checked_like_csv(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    text = TINY["events"].replace("2022-12-01", "2022/12/01")
    write_parquet(tiny, "events", text, types={"date": arrow.string()})
    expect_error(tiny, tmp_path, file="events.parquet", column="date", rows=[4],
                 rule="must be a real date written YYYY-MM-DD (found '2022/12/01')")


def test_input_folder_missing(tmp_path):
    with pytest.raises(InputError, match="input folder not found"):
        ingest(tmp_path / "nowhere", tmp_path / "out", PERIOD)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Types, values and codes
# ---------------------------------------------------------------------------------------------

VALUE_CASES = [
    # id, table, row, column, bad value, rule, key shown
    ("imd_not_integer", "patients", 3, "imd_decile", "3.5", "must be a whole number", "PT3"),
    ("imd_text", "patients", 1, "imd_decile", "high", "must be a whole number", "PT1"),
    ("imd_hex", "patients", 4, "imd_decile", "0x10", "must be a whole number", "PT4"),
    ("imd_out_of_range", "patients", 4, "imd_decile", "11", "must be an IMD decile 1-10", "PT4"),
    ("value_not_numeric", "events", 2, "value", "12,5", "must be a number", "PT1"),
    ("value_infinite", "events", 2, "value", "inf", "must be a number", "PT1"),
    ("date_unparseable", "patients", 2, "date_of_birth", "not a date",
     "must be a real date written YYYY-MM-DD", "PT2"),
    ("date_impossible", "events", 3, "date", "2021-02-30",
     "must be a real date written YYYY-MM-DD", "PT2"),
    ("date_not_leap_year", "events", 3, "date", "2021-02-29",
     "must be a real date written YYYY-MM-DD", "PT2"),
    ("date_not_iso", "admissions", 1, "admission_date", "01/02/2020",
     "must be a real date written YYYY-MM-DD", "SP1"),
    ("date_with_time", "interventions", 1, "enrolment_date", "2021-01-01T09:00",
     "must be a real date written YYYY-MM-DD", "PT1"),
    ("snomed_letters", "events", 4, "snomed_code", "7321100X",
     "must be a SNOMED CT identifier: 6-18 digits, no leading zero", "PT3"),
    ("snomed_leading_zero", "events", 1, "snomed_code", "038341003",
     "must be a SNOMED CT identifier: 6-18 digits, no leading zero", "PT1"),
    ("snomed_too_short", "events", 1, "snomed_code", "38341",
     "must be a SNOMED CT identifier: 6-18 digits, no leading zero", "PT1"),
    ("icd10_malformed", "admissions", 2, "primary_diagnosis", "I2",
     "must be an ICD-10 code such as J44 or J44.1", "SP2"),
    ("icd10_lower_case", "admissions", 2, "primary_diagnosis", "i21",
     "must be an ICD-10 code such as J44 or J44.1", "SP2"),
    ("secondary_comma", "admissions", 1, "secondary_diagnoses", "I10,E11.9",
     "must be ICD-10 codes separated by ';'", "SP1"),
    ("secondary_trailing_separator", "admissions", 1, "secondary_diagnoses", "I10;",
     "must be ICD-10 codes separated by ';'", "SP1"),
    ("admimeth_unknown", "admissions", 4, "admission_method", "2E",
     "admission_method (ADMIMETH) must be one of 11, 12, 13, 21", "SP4"),
    ("sex_nhs_code", "patients", 1, "sex", "2", "sex must be one of F, M, I, U", "PT1"),
    ("sex_abbreviated_word", "patients", 1, "sex", "Fem", "sex must be one of F, M, I, U", "PT1"),
    ("ethnicity_unknown_group", "patients", 5, "ethnicity", "British",
     "ethnicity must be one of Asian, Black, Mixed, White, Other, Unknown", "PT5"),
    ("id_whitespace", "interventions", 2, "programme", "   ", "must not be empty", "PT2"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "rule", "key"),
                         [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES])
def test_bad_value(tiny, tmp_path, table, row, column, value, rule, key):
    set_cell(tiny, table, row, column, value)
    key_column = {"admissions": "spell_id"}.get(table, "patient_id")
    err = expect_error(tiny, tmp_path, file=f"{table}.csv", column=column, rows=[row],
                       keys=[f"{key_column}={key}"], n_failing=1, rule=rule)
    assert repr(value) in err.rule  # the offending value is quoted


MISSING_CASES = [
    ("patients", 2, "practice_id"),
    ("events", 5, "snomed_code"),
    ("patients", 3, "date_of_birth"),
    ("admissions", 2, "discharge_date"),
]


@pytest.mark.parametrize(("table", "row", "column"), MISSING_CASES,
                         ids=[f"{t}.{c}" for t, _, c in MISSING_CASES])
def test_missing_required_value(tiny, tmp_path, table, row, column):
    set_cell(tiny, table, row, column, "")
    expect_error(tiny, tmp_path, file=f"{table}.csv", column=column, rows=[row], n_failing=1,
                 rule="value is missing but the column is required")


def test_several_failing_rows_are_counted_and_listed_in_order(tiny, tmp_path):
    for row in (6, 2, 4):
        set_cell(tiny, "events", row, "snomed_code", "12AB")
    err = expect_error(tiny, tmp_path, file="events.csv", column="snomed_code", rows=[2, 4, 6],
                       n_failing=3, rule="must be a SNOMED CT identifier")
    assert "3 rows fail; first: row 2 (patient_id=PT1), row 4 (patient_id=PT3)" in str(err)


def test_first_failing_column_in_contract_order_is_reported(tiny, tmp_path):
    set_cell(tiny, "patients", 4, "ethnicity", "Martian")
    set_cell(tiny, "patients", 1, "sex", "X")
    expect_error(tiny, tmp_path, file="patients.csv", column="sex", rows=[1],
                 rule="sex must be one of")


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "column", "row", "value", "rows", "key"), [
    ("patients", "patient_id", 4, "PT2", [2, 4], "patient_id=PT2"),
    ("admissions", "spell_id", 4, "SP1", [1, 4], "spell_id=SP1"),
    ("practices", "practice_id", 2, "PR1", [1, 2], "practice_id=PR1"),
], ids=["patient_id", "spell_id", "practice_id"])
def test_duplicate_key(tiny, tmp_path, table, column, row, value, rows, key):
    set_cell(tiny, table, row, column, value)
    expect_error(tiny, tmp_path, file=f"{table}.csv", column=column, rows=rows,
                 keys=[key, key], n_failing=2, rule="duplicate key: values must be unique")


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
def test_duplicate_key_across_chunks(tiny, tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(ingest_settings, "CHUNK_ROWS", chunk_rows)
    set_cell(tiny, "patients", 5, "patient_id", "PT1")
    set_cell(tiny, "events", 6, "patient_id", "PT1")
    set_cell(tiny, "admissions", 3, "patient_id", "PT1")
    expect_error(tiny, tmp_path, file="patients.csv", column="patient_id", rows=[1, 5],
                 keys=["patient_id=PT1"] * 2, n_failing=2,
                 rule="duplicate key: values must be unique")


def test_duplicate_rollout_row(tiny, tmp_path):
    add_row(tiny, "rollout", pcn_id="PCN1", programme="proactive_care", start_date="2021-01-01")
    expect_error(tiny, tmp_path, file="rollout.csv", column="pcn_id", rows=[1, 3],
                 rule="duplicate roll-out row: one start_date per programme and pcn_id")


def test_row_numbers_count_across_chunks(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_settings, "CHUNK_ROWS", 2)
    set_cell(tiny, "events", 7, "snomed_code", "0")
    set_cell(tiny, "events", 5, "snomed_code", "0")
    # Failing rows are gathered over every chunk: rows 5-6 and 7.
    expect_error(tiny, tmp_path, file="events.csv", column="snomed_code", rows=[5, 7],
                 keys=["patient_id=PT4", "patient_id=PT2"], n_failing=2,
                 rule="must be a SNOMED CT identifier")


# ---------------------------------------------------------------------------------------------
# Foreign keys
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "row", "column", "value", "rule", "key"), [
    ("patients", 3, "practice_id", "PR9", "practice_id is not in practices", "patient_id=PT3"),
    ("events", 4, "patient_id", "PT9", "patient_id is not in patients", "patient_id=PT9"),
    ("admissions", 4, "patient_id", "PT9", "patient_id is not in patients", "spell_id=SP4"),
    ("interventions", 3, "patient_id", "PT9", "patient_id is not in patients", "patient_id=PT9"),
    ("rollout", 2, "pcn_id", "PCN9", "pcn_id is not in practices", "pcn_id=PCN9"),
    ("rollout", 2, "practice_id", "PR9", "practice_id is not in practices", "pcn_id=PCN2"),
    ("rollout", 2, "practice_id", "PR1", "practice_id belongs to another pcn_id in practices",
     "pcn_id=PCN2"),
], ids=["patient-practice", "event-patient", "admission-patient", "intervention-patient",
        "rollout-pcn", "rollout-practice", "rollout-practice-other-pcn"])
def test_unknown_foreign_key(tiny, tmp_path, table, row, column, value, rule, key):
    set_cell(tiny, table, row, column, value)
    expect_error(tiny, tmp_path, file=f"{table}.csv", column=column, rows=[row], keys=[key],
                 n_failing=1, rule=rule)


# ---------------------------------------------------------------------------------------------
# Dates in order
# ---------------------------------------------------------------------------------------------

DATE_ORDER_CASES = [
    ("registration_before_birth", "patients", 3, "registration_start", "1979-12-31",
     "registration_start", "registration_start is before date_of_birth"),
    ("registration_end_before_start", "patients", 1, "registration_end", "1999-12-31",
     "registration_end", "registration_end is before registration_start"),
    ("death_before_birth", "patients", 2, "date_of_death", "1954-12-31", "date_of_death",
     "date_of_death is before date_of_birth"),
    ("discharge_before_admission", "admissions", 1, "discharge_date", "2020-01-31",
     "discharge_date", "discharge_date is before admission_date"),
    ("event_after_death", "events", 3, "date", "2022-07-11", "date",
     "event date is after the patient's date_of_death"),
    ("event_before_birth", "events", 4, "date", "1980-02-29", "date",
     "event date is before the patient's date_of_birth"),
    ("admission_before_birth", "admissions", 4, "admission_date", "1980-01-01",
     "admission_date", "admission_date is before the patient's date_of_birth"),
    ("admission_after_death", "admissions", 2, "admission_date", "2022-07-11",
     "admission_date", "admission_date is after the patient's date_of_death"),
    ("discharge_two_days_after_death", "admissions", 2, "discharge_date", "2022-07-12",
     "discharge_date", "discharge_date is more than one day after the patient's date_of_death"),
    ("end_before_enrolment", "interventions", 2, "end_date", "2021-05-31", "end_date",
     "end_date is before enrolment_date"),
    ("enrolment_before_registration", "interventions", 3, "enrolment_date", "2015-01-31",
     "enrolment_date", "enrolment_date is before the patient's registration_start"),
    ("enrolment_after_death", "interventions", 2, "enrolment_date", "2022-07-11",
     "enrolment_date", "enrolment_date is after the patient's date_of_death"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "reported", "rule"),
                         [c[1:] for c in DATE_ORDER_CASES], ids=[c[0] for c in DATE_ORDER_CASES])
def test_dates_out_of_order(tiny, tmp_path, table, row, column, value, reported, rule):
    set_cell(tiny, table, row, column, value)
    expect_error(tiny, tmp_path, file=f"{table}.csv", column=reported, rows=[row],
                 n_failing=1, rule=rule)


def test_boundary_dates_are_allowed(tiny, tmp_path):
    # Same-day registration and birth, events on the day of death, discharge a day after death.
    set_cell(tiny, "patients", 4, "registration_start", "2001-11-01")
    ingest(tiny, tmp_path / "out", PERIOD)
    assert (tmp_path / "out" / "flow.csv").exists()


@pytest.mark.parametrize(("table", "row", "column"), [
    ("events", 5, "date"),
    ("patients", 4, "registration_end"),
    ("admissions", 4, "discharge_date"),
    ("interventions", 3, "end_date"),
    ("rollout", 1, "start_date"),
])
def test_date_in_the_future_of_the_extract(tiny, tmp_path, table, row, column):
    # Past the study end is expected (cut, see test_ingest_study_end.py); past the day the
    # extract was taken is impossible.
    set_cell(tiny, table, row, column, "2099-12-31")
    err = expect_error(tiny, tmp_path, file=f"{table}.csv", column=column, rows=[row],
                       n_failing=1, rule="date is in the future (after ")
    assert err.rule == f"date is in the future (after {date.today().isoformat()})"


def test_the_extract_date_bounds_dates(tiny, tmp_path):
    set_cell(tiny, "events", 5, "date", "2024-05-02")
    ingest(tiny, tmp_path / "out", PERIOD, today="2024-05-02")
    with pytest.raises(InputError, match=r"date is in the future \(after 2024-05-01\)"):
        ingest(tiny, tmp_path / "out2", PERIOD, today="2024-05-01")
    with pytest.raises(InputError, match=r"date is in the future \(after 2024-05-01\)"):
        validate(tiny, today="2024-05-01")


def test_validate_with_only_a_study_end_cuts_instead_of_failing(tiny):
    set_cell(tiny, "events", 5, "date", "2025-01-01")
    assert validate(tiny).flow is None
    report = validate(tiny, study_end="2024-12-31")  # the keyword kept from before
    cut = report.flow[(report.flow["table"] == "events")
                      & report.flow["reason"].str.startswith("dated after the study end")]
    assert cut["n"].tolist() == [1]
    assert validate(tiny, "2024-12-31").flow.equals(report.flow)  # positional, as before


def test_failed_ingest_keeps_the_previous_output(tiny, tmp_path):
    destination = tmp_path / "results" / "data"
    ingest(tiny, destination, PERIOD)
    before = {p.name: p.read_bytes() for p in destination.iterdir()}
    set_cell(tiny, "events", 1, "snomed_code", "abc")
    with pytest.raises(InputError):
        ingest(tiny, destination, PERIOD)
    assert {p.name: p.read_bytes() for p in destination.iterdir()} == before
    assert sorted(p.name for p in destination.parent.iterdir()) == ["data"]


@pytest.mark.parametrize(("start", "end"), [("2019-4-1", "2024-03-31"),
                                            ("2019-04-01", "31/03/2024"),
                                            ("2024-04-01", "2019-03-31")])
def test_study_period_must_be_iso_dates_in_order(start, end):
    with pytest.raises(ConfigError):
        StudyPeriod(start, end)


def test_parquet_row_numbers_are_one_based(tiny, tmp_path):
    (tiny / "admissions.csv").unlink()
    text = TINY["admissions"].replace("PT3,SP4,2021-05-05,2021-05-05,12",
                                      "PT3,SP4,2021-05-05,2021-05-05,14")
    write_parquet(tiny, "admissions", text)
    expect_error(tiny, tmp_path, file="admissions.parquet", column="admission_method",
                 rows=[4], keys=["spell_id=SP4"], rule="must be one of")


def test_parquet_cross_table_rows_are_one_based(tiny, tmp_path):
    for table in ("events", "patients", "practices"):
        (tiny / f"{table}.csv").unlink()
        text = TINY[table]
        if table == "events":
            text = text.replace("PT4,2023-06-06", "PT4,1999-06-06")
        write_parquet(tiny, table, text)
    expect_error(tiny, tmp_path, file="events.parquet", column="date", rows=[5],
                 keys=["patient_id=PT4"], rule="event date is before the patient's date_of_birth")


@pytest.mark.parametrize(("text", "column", "row", "rule"), [
    (TINY["events"].replace("PT3,2022-12-01,73211009", "PT3,2022-12-01,73211O09"),
     "snomed_code", 4, "must be a SNOMED CT identifier: 6-18 digits, no leading zero "
                       "(found '73211O09')"),
    (TINY["events"].replace("PT4,2023-06-06", " ,2023-06-06"), "patient_id", 5,
     "must not be empty (found ' ')"),
    (TINY["events"].replace("PT4,2023-06-06", ",2023-06-06"), "patient_id", 5,
     "value is missing but the column is required"),
], ids=["snomed", "blank-id", "missing-id"])
def test_parquet_events_text_checks(tiny, tmp_path, text, column, row, rule):
    # Event text is read dictionary-encoded; checks and row numbers must not change.
    (tiny / "events.csv").unlink()
    write_parquet(tiny, "events", text)
    err = expect_error(tiny, tmp_path, file="events.parquet", column=column, rows=[row],
                       n_failing=1, rule=rule)
    assert err.rule == rule


def test_parquet_missing_column(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    lines = [",".join(line.split(",")[:2] + line.split(",")[3:])
             for line in TINY["events"].splitlines()]
    write_parquet(tiny, "events", "\n".join(lines) + "\n")
    expect_error(tiny, tmp_path, file="events.parquet", column="snomed_code",
                 rule="required column is missing")
