"""The admission risk model on the synthetic population: plausible discrimination and a
temporally validated calibration slope within 0.9-1.1."""

from __future__ import annotations

import pytest

from phm_eval.ingest import StudyPeriod, ingest
from phm_eval.risk.develop import develop_risk_model
from phm_eval.risk.features import risk_features
from phm_eval.synth import simulate


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("risk")
    simulate("pcn", out=root / "raw", seed=31)
    ingest(root / "raw", root / "clean", StudyPeriod("2019-04-01", "2024-03-31"))
    paths = [root / "clean" / f"{t}.parquet" for t in
             ("patients", "events", "admissions", "practices")]
    dev = risk_features(*paths, "2020-04-01")
    val = risk_features(*paths, "2021-04-01")
    return dev, val


def test_features_are_as_of_the_index_date(frames):
    dev, val = frames
    assert dev["age"].min() >= 18
    assert {"n_emergency_admissions_1y", "efi_score", "hfrs", "n_ltc"} <= set(dev.columns)
    # Outcome: about 8-10 % of adults have an emergency admission in a year.
    assert 0.05 <= dev["emergency_admission_12m"].mean() <= 0.13
    # Deaths without admission are non-events, counted, not dropped.
    assert dev["died_without_admission"].sum() > 0
    assert (dev.loc[dev["died_without_admission"] == 1, "emergency_admission_12m"] == 0).all()


def test_temporal_validation_is_calibrated(frames, tmp_path):
    dev, val = frames
    drop = ["efi_category", "index_date", "died_12m", "died_without_admission",
            "emergency_admission_or_death_12m"]
    report = develop_risk_model(
        dev.drop(columns=drop),
        {"cluster": "practice_id", "n_bootstrap": 20, "n_optimism_bootstrap": 0},
        validation_features=val.drop(columns=drop), output_dir=tmp_path, run_iecv=False)
    metrics = report.temporal.validation.metrics
    assert 0.62 <= metrics["c_statistic"] <= 0.85  # routine-data admission models: 0.63-0.83
    assert 0.9 <= metrics["calibration_slope"] <= 1.1
    assert abs(metrics["calibration_in_the_large"]) < 0.1
    assert (tmp_path / "model_card.md").exists()
    assert len(report.temporal.validation.subgroups) > 0
