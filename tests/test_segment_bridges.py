"""Bridges to Health: each rule, the priority order and the per-segment table."""

from __future__ import annotations

import pytest
from test_segment_grid import make_population

from phm_eval.errors import ConfigError
from phm_eval.segment import bridges_to_health

ROWS = {
    "decline_cancer": {"age": 60, "prior_emergency_admissions": 2, "cancer_recent": True,
                       "n_ltc": 2, "heart_failure": True},
    "decline_frail": {"age": 85, "prior_emergency_admissions": 3, "efi_category": "severe",
                      "copd": True, "n_ltc": 1},
    "cancer_one_admission": {"age": 60, "prior_emergency_admissions": 1, "cancer_recent": True,
                             "n_ltc": 1},
    "severe_no_organ": {"age": 80, "prior_emergency_admissions": 2, "efi_category": "severe",
                        "n_ltc": 1},
    "heart_failure": {"age": 70, "heart_failure": True, "n_ltc": 1},
    "copd_admitted": {"age": 66, "copd": True, "n_ltc": 1, "prior_emergency_admissions": 1},
    "copd_stable": {"age": 66, "copd": True, "n_ltc": 1},
    "dementia": {"age": 90, "dementia": True, "n_ltc": 1},
    "moderate_70": {"age": 70, "efi_category": "moderate", "n_ltc": 2},
    "moderate_60": {"age": 60, "efi_category": "moderate", "n_ltc": 2},
    "ld": {"age": 30, "learning_disability": True, "n_ltc": 1},
    "pregnant_ld": {"age": 30, "learning_disability": True, "pregnancy": True, "n_ltc": 1},
    "pregnant": {"age": 28, "pregnancy": True, "n_ltc": 1},
    "infant": {"age": 0},
    "one_ltc": {"age": 50, "n_ltc": 1},
    "admitted": {"age": 25, "prior_emergency_admissions": 1},
    "healthy": {"age": 25},
}
EXPECTED = {
    "decline_cancer": "short_period_of_decline",
    "decline_frail": "short_period_of_decline",
    "cancer_one_admission": "stable_chronic",
    "severe_no_organ": "frailty",
    "heart_failure": "organ_failure",
    "copd_admitted": "organ_failure",
    "copd_stable": "stable_chronic",
    "dementia": "frailty",
    "moderate_70": "frailty",
    "moderate_60": "stable_chronic",
    "ld": "disability",
    "pregnant_ld": "disability",
    "pregnant": "maternal_infant",
    "infant": "maternal_infant",
    "one_ltc": "stable_chronic",
    "admitted": "acutely_ill",
    "healthy": "healthy",
}


def _population():
    pop = make_population(list(ROWS.values()))
    pop["patient_id"] = list(ROWS)
    return pop


def test_each_rule_and_priority():
    result = bridges_to_health(_population())
    got = result.segments.set_index("patient_id")["segment"].astype(str).to_dict()
    assert got == EXPECTED
    meets = result.segments.set_index("patient_id")
    # Rules overlap: the cancer patient also meets organ failure and stable chronic.
    assert meets.loc["decline_cancer", "meets_organ_failure"]
    assert meets.loc["decline_cancer", "meets_stable_chronic"]
    assert meets["meets_healthy"].all()


def test_priority_is_configurable():
    order = ["maternal_infant", "short_period_of_decline", "organ_failure", "frailty",
             "disability", "stable_chronic", "acutely_ill", "healthy"]
    result = bridges_to_health(_population(), {"bridges": {"priority": order}})
    got = result.segments.set_index("patient_id")["segment"]
    assert got["pregnant_ld"] == "maternal_infant"
    with pytest.raises(ConfigError):
        bridges_to_health(_population(), {"bridges": {"priority": order[:-1]}})
    with pytest.raises(ConfigError):
        bridges_to_health(_population(), {"bridges": {"priority": [*order[1:], order[0]]}})


def test_rules_are_configurable():
    config = {"bridges": {"disability": {"conditions": ["learning_disability", "autism"]},
                          "acutely_ill": {"min_prior_emergency_admissions": 2}}}
    pop = _population()
    pop.loc[pop["patient_id"] == "healthy", "autism"] = True
    got = bridges_to_health(pop, config).segments.set_index("patient_id")["segment"]
    assert got["healthy"] == "disability"
    assert got["admitted"] == "healthy"


def test_segment_table():
    pop = _population()
    pop.loc[pop["patient_id"] == "decline_cancer", ["died_followup", "followup_days"]] = [True, 30]
    pop.loc[pop["patient_id"] == "decline_frail", "emergency_admissions_followup"] = 3
    table = bridges_to_health(pop).table
    assert list(table.index[:-1]) == [
        "short_period_of_decline", "organ_failure", "frailty", "disability", "maternal_infant",
        "stable_chronic", "acutely_ill", "healthy"]
    row = table.loc["short_period_of_decline"]
    assert row["label"] == "Short period of decline before dying"
    assert row["n_patients"] == 2 and row["deaths"] == 1
    assert row["deaths_per_1000"] == pytest.approx(500.0)
    assert row["rate_per_1000"] == pytest.approx(1500.0)
    assert table.loc["all", "n_patients"] == len(ROWS)
    assert table["n_patients"].iloc[:-1].sum() == len(ROWS)
