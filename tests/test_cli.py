"""The phm-eval command line."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from phm_eval.cli import main


def test_help_for_every_command(capsys):
    for argv in (["--help"], ["simulate", "--help"], ["validate", "--help"], ["run", "--help"],
                 ["check-outputs", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "usage: phm-eval" in capsys.readouterr().out


def test_simulate_then_validate(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["simulate", "--scenario", "smoke", "--seed", "4", "--out", str(out)]) == 0
    assert "Wrote scenario 'smoke'" in capsys.readouterr().out
    assert (out / "events.parquet").exists() and (out / "truth" / "truth.json").exists()
    assert main(["validate", str(out)]) == 0
    assert "meet the data contract" in capsys.readouterr().out


def test_simulate_patients_and_csv(tmp_path):
    out = tmp_path / "syn"
    assert main(["simulate", "--scenario", "smoke", "--patients", "3000", "--format", "csv",
                 "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "patients.csv")) == 3000


def test_validate_reports_one_clear_message_and_fails(tmp_path):
    out = tmp_path / "syn"
    main(["simulate", "--scenario", "smoke", "--seed", "4", "--format", "csv", "--out", str(out)])
    patients = pd.read_csv(out / "patients.csv", dtype=str)
    patients.loc[2, "sex"] = "Q"
    patients.to_csv(out / "patients.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "phm_eval.cli", "validate", str(out)],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.count("\n") == 0
    assert "patients.csv" in message and "'sex'" in message and "row 3" in message
    assert "must be one of F, M, I, U" in message


def test_unknown_scenario_is_a_clear_error(tmp_path, capsys):
    assert main(["simulate", "--scenario", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown synthetic scenario 'nope'" in err
    assert not (tmp_path / "x").exists()


def test_run_passes_extra_arguments_to_snakemake(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "phm_eval.cli", "run", "--config",
         str(root / "config" / "smoke.yaml"), "-n", "--", "--quiet", "rules"],
        cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
