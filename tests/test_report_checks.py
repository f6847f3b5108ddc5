"""The release check: disclosure rules and patient identifiers in a folder of outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from phm_eval.cli import main
from phm_eval.errors import InputError
from phm_eval.report import check_report_outputs, patient_identifiers

FIXTURE = Path(__file__).parent / "fixtures" / "report"
PATIENTS = FIXTURE / "patients.csv"


@pytest.fixture
def clean_folder(tmp_path):
    """A small release folder: disclosed CSVs and JSON from the fixture, no identifiers."""
    folder = tmp_path / "release"
    for relative in ("describe/population_pyramid.csv", "frailty/efi_summary.csv",
                     "segment/des_metrics.csv", "segment/des_metrics.sdc.json",
                     "evaluate/effects.json", "risk/metrics.json", "risk/model_card.md"):
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURE / "results" / relative, target)
    (folder / "summary.html").write_text(
        "<html><body><p>We matched n = 1,240 enrolled patients.</p><table><tr><th>Group</th>"
        "<th>Patients</th></tr><tr><td>Frail</td><td>855</td></tr></table></body></html>\n")
    return folder


def test_clean_folder_passes(clean_folder):
    assert check_report_outputs(clean_folder, PATIENTS) == []


def test_patient_identifier_fails(clean_folder):
    page = clean_folder / "summary.html"
    page.write_text(page.read_text().replace("Frail", "Frail (SYN00004711)"))
    problems = check_report_outputs(clean_folder, PATIENTS)
    assert len(problems) == 1
    assert "summary.html" in problems[0]
    assert "a patient identifier appears in the file" in problems[0]
    assert "SYN00004711" not in problems[0]  # the message masks the identifier


def test_identifier_in_a_csv_cell_fails(clean_folder):
    pd.DataFrame({"note": ["see syn00012345"], "n": [10]}).to_csv(clean_folder / "x.csv",
                                                                   index=False)
    problems = check_report_outputs(clean_folder, PATIENTS)
    assert len(problems) == 1 and "x.csv" in problems[0]


def test_count_of_three_fails(clean_folder):
    path = clean_folder / "frailty" / "efi_summary.csv"
    path.write_text(path.read_text().replace("severe,235,3.0", "severe,3,0.0"))
    problems = check_report_outputs(clean_folder, PATIENTS)
    assert len(problems) == 1
    assert "frailty/efi_summary.csv" in problems[0]
    assert "column 'n'" in problems[0] and "row 4" in problems[0]
    assert "small count shown" in problems[0]


def test_count_of_three_in_prose_fails(clean_folder):
    page = clean_folder / "summary.html"
    page.write_text(page.read_text().replace("n = 1,240", "n = 3"))
    problems = check_report_outputs(clean_folder, PATIENTS)
    assert problems == ["[error] summary.html: count in text breaks the disclosure rules "
                        "(value n = 3)"]


def test_policy_from_configuration(clean_folder):
    # Under midpoint-6 rounding counts are multiples of 3: 1,240 cannot be one, 855 can.
    problems = check_report_outputs(clean_folder, PATIENTS, {"preset": "opensafely_midpoint6"})
    assert "[error] summary.html: count in text breaks the disclosure rules (value n = 1,240)" \
        in problems
    assert not any("855" in p for p in problems)


def test_patients_from_parquet_and_folder(tmp_path):
    frame = pd.read_csv(PATIENTS, dtype=str)
    frame.to_parquet(tmp_path / "patients.parquet", index=False)
    from_file = patient_identifiers(tmp_path / "patients.parquet")
    from_folder = patient_identifiers(tmp_path)
    assert from_file.tolist() == from_folder.tolist() == frame["patient_id"].tolist()


def test_patients_file_problems(tmp_path):
    with pytest.raises(InputError, match="patients file not found"):
        patient_identifiers(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no patients.parquet or patients.csv"):
        patient_identifiers(tmp_path)
    (tmp_path / "p.csv").write_text("id\n1\n")
    with pytest.raises(InputError, match="patient_id"):
        patient_identifiers(tmp_path / "p.csv")


def test_command_line(clean_folder, capsys):
    assert main(["check-outputs", str(clean_folder), "--patients", str(PATIENTS)]) == 0
    assert "passes disclosure control" in capsys.readouterr().out
    page = clean_folder / "summary.html"
    page.write_text(page.read_text().replace("Frail", "SYN00000002"))
    assert main(["check-outputs", str(clean_folder), "--patients", str(PATIENTS)]) == 1
    assert "1 disclosure problem(s)" in capsys.readouterr().err
