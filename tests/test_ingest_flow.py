"""Valid inputs: what ingest keeps, what it excludes and why, output types, the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as arrow
import pyarrow.parquet as pq
import pytest
from test_ingest_errors import PERIOD, TINY, add_row, set_cell, write_parquet, write_tiny

from phm_eval import contract
from phm_eval import ingest as ingest_module
from phm_eval.cli import main
from phm_eval.errors import InputError
from phm_eval.ingest import StudyPeriod, contract_schema, ingest, validate
from phm_eval.ingest import _common as ingest_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"


def flow_n(flow: pd.DataFrame, table: str, step: str) -> int:
    return int(flow.loc[(flow["table"] == table) & (flow["step"] == step), "n"].sum())


def assert_flow_adds_up(flow: pd.DataFrame) -> None:
    for table in flow["table"].unique():
        read, excluded, kept = (flow_n(flow, table, s) for s in ("read", "exclude", "kept"))
        assert read - excluded == kept, table


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny(tmp_path / "in")


def test_tiny_folder_flow_table(tiny, tmp_path):
    out = tmp_path / "out"
    flow = ingest(tiny, out, PERIOD)
    expected = {
        ("patients", "read"): 5, ("patients", "exclude"): 1, ("patients", "modify"): 0,
        ("patients", "kept"): 4,
        ("events", "read"): 7, ("events", "exclude"): 1, ("events", "kept"): 6,
        ("admissions", "read"): 4, ("admissions", "exclude"): 1, ("admissions", "modify"): 0,
        ("admissions", "kept"): 3,
        ("interventions", "read"): 3, ("interventions", "exclude"): 0,
        ("interventions", "modify"): 0, ("interventions", "kept"): 3,
        ("practices", "read"): 3, ("practices", "kept"): 3,
        ("rollout", "read"): 2, ("rollout", "exclude"): 0, ("rollout", "kept"): 2,
    }
    got = flow.groupby(["table", "step"])["n"].sum().to_dict()
    assert got == expected
    assert_flow_adds_up(flow)
    excluded = flow[(flow["step"] == "exclude") & (flow["n"] > 0)]
    assert set(excluded["reason"]) == {"registration ended or died before the study start",
                                       "patient not in the study population"}
    pd.testing.assert_frame_equal(pd.read_csv(out / "flow.csv"), flow)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.parquet" for t in TINY] + ["flow.csv", "data_quality.csv"])
    # A clean folder has nothing to normalise: the data-quality table has only its header.
    quality = pd.read_csv(out / "data_quality.csv")
    assert list(quality.columns) == ["file", "column", "quirk", "rows_affected", "example",
                                     "action"]
    assert quality.empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging left


def test_out_of_scope_patients_and_their_records_are_excluded(tiny, tmp_path):
    # PT6 died the day before the study start; PT7 left on the study start (in scope).
    add_row(tiny, "patients", patient_id="PT6", practice_id="PR2", sex="F",
            date_of_birth="1920-01-01", ethnicity="White", registration_start="1950-01-01",
            date_of_death="2019-03-31")
    add_row(tiny, "patients", patient_id="PT7", practice_id="PR2", sex="M",
            date_of_birth="1990-01-01", ethnicity="Mixed", registration_start="2010-01-01",
            registration_end="2019-04-01")
    add_row(tiny, "events", patient_id="PT6", date="2019-03-01", snomed_code="38341003")
    add_row(tiny, "events", patient_id="PT7", date="2019-03-01", snomed_code="38341003")
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_n(flow, "patients", "exclude") == 2
    assert flow_n(flow, "events", "exclude") == 2
    assert flow_n(flow, "events", "kept") == 7
    assert_flow_adds_up(flow)
    patients = pd.read_parquet(tmp_path / "out" / "patients.parquet")
    assert list(patients["patient_id"]) == ["PT1", "PT2", "PT3", "PT4", "PT7"]
    events = pd.read_parquet(tmp_path / "out" / "events.parquet")
    assert set(events["patient_id"]) == {"PT1", "PT2", "PT3", "PT4", "PT7"}
    # Order of the input is kept.
    assert list(events["snomed_code"][:3]) == ["38341003", "271649006", "195967001"]


def test_programme_filter_is_a_counted_exclusion(tiny, tmp_path):
    period = StudyPeriod("2019-04-01", "2024-03-31", programme="proactive_care")
    flow = ingest(tiny, tmp_path / "out", period)
    rows = flow[flow["table"] == "interventions"]
    assert list(rows["reason"]) == [
        "rows in file", "programme other than 'proactive_care'",
        "patient not in the study population", "enrolled after the study end (2024-03-31)",
        "end_date after the study end (2024-03-31): set to missing (still enrolled at the "
        "study end)", "in scope"]
    assert list(rows["n"]) == [3, 1, 0, 0, 0, 2]
    assert_flow_adds_up(flow)
    kept = pd.read_parquet(tmp_path / "out" / "interventions.parquet")
    assert list(kept["programme"]) == ["proactive_care"] * 2


def test_outputs_have_the_contract_types_and_plain_text(tiny, tmp_path):
    ingest(tiny, tmp_path / "out", PERIOD)
    for table in TINY:
        got = pq.read_schema(tmp_path / "out" / f"{table}.parquet")
        assert [(f.name, f.type) for f in got] == [
            (f.name, f.type) for f in contract_schema(table)], table
    events = pd.read_parquet(tmp_path / "out" / "events.parquet")
    assert events["patient_id"].dtype == object  # not categorical
    assert events["value"].isna().sum() == 5
    assert events["value"].max() == pytest.approx(142.5)
    patients = pd.read_parquet(tmp_path / "out" / "patients.parquet")
    assert patients["imd_decile"].isna().tolist() == [False, True, False, False]
    assert patients["imd_decile"].dropna().tolist() == [3, 7, 10]
    assert str(patients["date_of_birth"].iloc[0])[:10] == "1940-05-01"


def test_csv_and_parquet_inputs_give_the_same_outputs(tiny, tmp_path):
    as_parquet = write_tiny(tmp_path / "parquet_in", "parquet")
    flow_csv = ingest(tiny, tmp_path / "from_csv", PERIOD)
    flow_pq = ingest(as_parquet, tmp_path / "from_parquet", PERIOD)
    pd.testing.assert_frame_equal(flow_csv, flow_pq)
    for table in TINY:
        a = pq.read_table(tmp_path / "from_csv" / f"{table}.parquet")
        b = pq.read_table(tmp_path / "from_parquet" / f"{table}.parquet")
        assert a.cast(b.schema).equals(b), table


def test_parquet_written_by_pandas_is_accepted(tiny, tmp_path):
    # Categorical text, NaN for missing numbers, timestamps for dates, int32 deciles and a
    # saved index: all are lossless to read in the contract's types.
    for table in ("events", "patients", "rollout"):
        (tiny / f"{table}.csv").unlink()
    events = pd.read_csv(pd.io.common.StringIO(TINY["events"]), dtype={"snomed_code": str})
    events["patient_id"] = events["patient_id"].astype("category")
    events.index = events.index + 100
    events.to_parquet(tiny / "events.parquet")  # index saved as __index_level_0__
    patients = pd.read_csv(pd.io.common.StringIO(TINY["patients"]),
                           parse_dates=["date_of_birth", "registration_start",
                                        "registration_end", "date_of_death"])
    patients["imd_decile"] = patients["imd_decile"].astype("Int32")
    patients.to_parquet(tiny / "patients.parquet", index=False)
    write_parquet(tiny, "rollout", TINY["rollout"], types={"start_date": arrow.timestamp("ns")})
    events_nan = arrow.Table.from_pandas(events, preserve_index=False)
    assert events_nan["value"].null_count == 6  # pandas turns NaN into nulls itself
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_n(flow, "events", "kept") == 6
    got = pq.read_table(tmp_path / "out" / "events.parquet")
    assert got.schema.names == ["patient_id", "date", "snomed_code", "value"]
    assert got["value"].null_count == 5


def test_csv_with_byte_order_mark_and_windows_line_ends(tiny, tmp_path):
    for table, text in TINY.items():
        (tiny / f"{table}.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    flow = ingest(tiny, tmp_path / "out", PERIOD)
    assert flow_n(flow, "events", "kept") == 6
    patients = pd.read_parquet(tmp_path / "out" / "patients.parquet")
    assert patients["patient_id"].tolist() == ["PT1", "PT2", "PT3", "PT4"]
    assert patients["date_of_death"].isna().tolist() == [True, False, True, True]


def test_parquet_with_zoned_timestamps_and_large_strings(tiny, tmp_path):
    # Midnight in London during summer time is 23:00 UTC the day before: the date must not move.
    (tiny / "interventions.csv").unlink()
    zoned = arrow.timestamp("us", tz="Europe/London")
    table = pq.read_table(write_parquet(tiny, "interventions", TINY["interventions"]))
    enrol = arrow.compute.assume_timezone(table["enrolment_date"].cast(arrow.timestamp("us")),
                                          "Europe/London")
    table = arrow.table({
        "patient_id": table["patient_id"].cast(arrow.large_string()),
        "programme": table["programme"].cast(arrow.large_string()),
        "enrolment_date": enrol.cast(zoned),
        "end_date": table["end_date"],
    })
    pq.write_table(table, tiny / "interventions.parquet")
    ingest(tiny, tmp_path / "out", PERIOD)
    got = pd.read_parquet(tmp_path / "out" / "interventions.parquet")
    assert [str(d)[:10] for d in got["enrolment_date"]] == ["2021-01-01", "2021-06-01",
                                                           "2020-01-01"]


def test_nan_in_a_typed_parquet_number_is_a_missing_value(tiny, tmp_path):
    (tiny / "events.csv").unlink()
    table = pq.read_table(write_parquet(tiny, "events", TINY["events"]))
    values = [float("nan") if v is None else v for v in table["value"].to_pylist()]
    table = table.set_column(3, "value", arrow.array(values, type=arrow.float64()))
    pq.write_table(table, tiny / "events.parquet")
    ingest(tiny, tmp_path / "out", PERIOD)
    got = pq.read_table(tmp_path / "out" / "events.parquet")["value"]
    assert got.null_count == 5
    assert not arrow.compute.any(arrow.compute.is_nan(got)).as_py()


def test_contract_parquet_input_is_copied_unchanged_when_nothing_is_excluded(tiny, tmp_path):
    as_parquet = write_tiny(tmp_path / "parquet_in", "parquet")
    ingest(as_parquet, tmp_path / "out", PERIOD)
    same = (tmp_path / "out" / "practices.parquet").read_bytes()
    assert same == (as_parquet / "practices.parquet").read_bytes()


def test_validate_writes_nothing(tiny, tmp_path):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    validate(tiny, study_end="2024-03-31")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------

def test_cli_validate_valid_folder(tiny, capsys):
    assert main(["validate", str(tiny), "--study-end", "2024-03-31"]) == 0
    out = capsys.readouterr()
    assert "all files meet the data contract" in out.out
    assert out.err == ""


def test_cli_validate_reports_the_broken_rule(tiny, capsys):
    set_cell(tiny, "events", 4, "snomed_code", "12345X")
    assert main(["validate", str(tiny)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phm-eval: events.csv, column 'snomed_code': must be a SNOMED CT "
                          "identifier")
    assert "row 4 (patient_id=PT3)" in err


def test_cli_validate_rejects_a_malformed_study_end(tiny, capsys):
    assert main(["validate", str(tiny), "--study-end", "31/03/2024"]) == 2
    assert "study_end must be a date written YYYY-MM-DD" in capsys.readouterr().err


def test_cli_exit_status_in_a_real_process(tiny):
    (tiny / "admissions.csv").unlink()
    done = subprocess.run([sys.executable, "-m", "phm_eval.cli", "validate", str(tiny)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("phm-eval: admissions.csv: required file not found")
    assert done.stdout == ""


# ---------------------------------------------------------------------------------------------
# The synthetic population (written in the contract) and row numbers deep in a large file
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    from phm_eval.synth import simulate

    out = tmp_path_factory.mktemp("smoke") / "in"
    simulate("smoke", out=out, seed=1, file_format="csv")
    shutil.rmtree(out / "truth", ignore_errors=True)
    return out


def test_synthetic_population_meets_the_contract(smoke, tmp_path):
    flow = ingest(smoke, tmp_path / "out", PERIOD)
    assert_flow_adds_up(flow)
    n_events = sum(1 for _ in open(smoke / "events.csv", encoding="utf-8")) - 1
    assert flow_n(flow, "events", "read") == n_events
    assert flow_n(flow, "patients", "read") == 6000
    assert 0 < flow_n(flow, "patients", "exclude") < 6000
    kept = pq.read_metadata(tmp_path / "out" / "events.parquet").num_rows
    assert kept == flow_n(flow, "events", "kept")


def test_row_number_deep_in_a_large_file(smoke, tmp_path, monkeypatch):
    # Many small CSV blocks (each with its own dictionary of codes) regrouped into chunks.
    monkeypatch.setattr(ingest_settings, "CHUNK_ROWS", 50_000)
    monkeypatch.setattr(ingest_settings, "CSV_BLOCK_BYTES", 300_000)
    src = tmp_path / "in"
    shutil.copytree(smoke, src)
    lines = (src / "events.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    target = len(lines) - 3  # a data row near the end, several chunks in
    fields = [f.strip('"') for f in lines[target].rstrip("\n").split(",")]
    fields[2] = "0" + fields[2]
    lines[target] = ",".join(fields) + "\n"
    (src / "events.csv").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        ingest(src, tmp_path / "results" / "data", PERIOD)
    assert caught.value.rows == [target]
    assert caught.value.column == "snomed_code"
    assert caught.value.keys == [f"patient_id={fields[0]}"]
    assert not (tmp_path / "results" / "data").exists()


@pytest.mark.slow
def test_ingest_throughput_on_a_pcn_of_200k(tmp_path):
    """Speed at scale (run with -m slow). 200,000 patients, about 15 million events."""
    import time

    from phm_eval.synth import simulate

    simulate("pcn", out=tmp_path / "in", n_patients=200_000, seed=1)
    shutil.rmtree(tmp_path / "in" / "truth", ignore_errors=True)
    started = time.perf_counter()
    flow = ingest(tmp_path / "in", tmp_path / "out", PERIOD)
    seconds = time.perf_counter() - started
    rows = int(flow.loc[flow["step"] == "read", "n"].sum())
    assert_flow_adds_up(flow)
    print(f"ingest: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
    assert rows > 10_000_000
    assert rows / seconds > 400_000  # the pandas/pandera-on-text version managed ~140,000


# ---------------------------------------------------------------------------------------------
# The documentation lists every rule, worded as in the messages
# ---------------------------------------------------------------------------------------------

def _all_rule_texts() -> list[str]:
    texts = list(contract.CONVERSION_RULES.values())
    for spec in contract.TABLES.values():
        for col in spec.columns:
            texts += [check.name for check in col.checks]
    texts += [rule for _, rule in ingest_module.UNIQUE_RULES.values()]
    texts += [rule for _, _, rule, _ in ingest_module.CROSS_TABLE_RULES]
    return sorted(set(texts))


# Rules checked before any row is read, or worded by ingest itself.
FILE_AND_ROW_RULES = [
    "required file not found in",
    "both a .csv and a .parquet file exist for this table; keep one",
    "file is empty: expected a header row",
    "file has a header but no rows",
    "file is not UTF-8 encoded (save it as UTF-8)",
    "the first bad character is in the header",
    "row has",
    "column name appears twice in the header",
    "required column is missing",
    "unexpected column (the contract's columns are:",
    "not a readable Parquet file",
    "not a well-formed CSV file",
    "Parquet column has type",
    "value is missing but the column is required",
    "date is in the future (after",
    "no rows are left after the study's filters",
    "input folder not found",
]


@pytest.mark.parametrize("rule", _all_rule_texts() + FILE_AND_ROW_RULES)
def test_every_rule_is_documented(rule):
    assert rule in DOC.read_text(encoding="utf-8"), rule


def test_rule_lists_cover_the_messages_in_the_code():
    # Every literal rule passed to InputError in the ingest package is in one of the lists.
    package = Path(ingest_module.__file__).parent
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(package.glob("*.py")))
    literals = re.findall(r'InputError\([^,]+,\s*f?"([^"{]+)', source)
    assert len(literals) > 10
    known = _all_rule_texts() + FILE_AND_ROW_RULES
    for literal in literals:
        assert any(literal.startswith(k) or k.startswith(literal) for k in known), literal
