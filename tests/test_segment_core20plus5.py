"""Core20PLUS5: the decile 2/3 boundary, PLUS rules, age-specific clinical areas, rates."""

from __future__ import annotations

import pandas as pd
import pytest
from test_segment_grid import make_population

from phm_eval.errors import ConfigError
from phm_eval.segment import core20plus5

ROWS = [
    {"imd_decile": 1, "ethnicity": "Asian", "emergency_admissions_followup": 2},   # 0
    {"imd_decile": 2, "ethnicity": "White", "emergency_admissions_followup": 1},   # 1
    {"imd_decile": 3, "ethnicity": "Black"},                                       # 2
    {"imd_decile": 10, "ethnicity": "Unknown", "emergency_admissions_followup": 1},  # 3
    {"imd_decile": None, "ethnicity": None},                                       # 4
    {"imd_decile": 5, "age": 18, "pregnancy": True, "hypertension": True},         # 5
    {"imd_decile": 5, "age": 17, "pregnancy": True, "asthma": True},               # 6
    {"imd_decile": 5, "age": 40, "asthma": True, "copd": True, "smi": True},       # 7
    {"imd_decile": 2, "age": 70, "cancer_recent": True, "learning_disability": True},  # 8
    {"imd_decile": 4, "age": 9, "epilepsy": True, "diabetes": True, "autism": True},   # 9
]


def _result(config=None):
    return core20plus5(make_population(ROWS), config)


def test_core20_boundary_and_unknown_imd():
    flags = _result().flags
    assert flags["core20"].tolist() == [True, True, False, False, False, False, False, False,
                                        True, False]
    assert flags["imd_known"].tolist() == [True] * 4 + [False] + [True] * 5


def test_plus_groups():
    flags = _result().flags
    assert flags["plus_ethnic_minority"].tolist()[:5] == [True, False, True, False, False]
    assert flags.loc[8, "plus_learning_disability"] and flags.loc[9, "plus_autism"]
    assert flags.loc[7, "plus_smi"]
    assert flags["plus_any"].sum() == 5  # rows 0, 2, 7, 8, 9


def test_clinical_areas_respect_age():
    flags = _result().flags
    assert flags.loc[5, "adult_maternity"] and not flags.loc[6, "adult_maternity"]
    assert flags.loc[5, "adult_hypertension"]
    assert flags.loc[6, "cyp_asthma"] and not flags.loc[7, "cyp_asthma"]
    assert flags.loc[7, "adult_chronic_respiratory_disease"] and flags.loc[7, "adult_smi"]
    assert flags.loc[8, "adult_early_cancer_diagnosis"]
    assert flags.loc[9, "cyp_epilepsy"] and flags.loc[9, "cyp_diabetes"]
    assert "cyp_oral_health" not in flags and "cyp_mental_health" not in flags
    assert _result().unavailable == ["cyp_oral_health", "cyp_mental_health"]


def test_breakdown_table():
    table = _result().breakdown
    core = table.loc["core20:core20"]
    assert core["n_patients"] == 3 and core["population"] == 10
    assert core["percent_of_population"] == pytest.approx(30.0)
    # Adults are the 18+: rows 5, 7, 8 (the default age is 40 for rows 0-4 too).
    maternity = table.loc["adult_clinical_area:maternity"]
    assert maternity["population"] == 8 and maternity["n_patients"] == 1
    asthma = table.loc["children_clinical_area:asthma"]
    assert asthma["population"] == 2 and asthma["percent_of_population"] == pytest.approx(50.0)
    minority = table.loc["plus:ethnic_minority"]
    assert minority["n_core20"] == 1 and minority["percent_core20"] == pytest.approx(50.0)


def test_rates_by_core20():
    by = _result().by_core20
    assert by.loc["core20", "n_patients"] == 3
    assert by.loc["core20", "rate_per_1000"] == pytest.approx(1000.0)  # 3 admissions / 3
    assert by.loc["not_core20", "n_patients"] == 6
    assert by.loc["not_core20", "rate_per_1000"] == pytest.approx(1000 / 6)
    assert by.loc["imd_unknown", "n_patients"] == 1
    assert by.loc["all", "emergency_admissions"] == 4


def test_configurable_groups():
    config = {"core20plus5": {"core20_deciles": [1],
                              "plus_groups": {"multimorbidity": {"min_chronic_ltc": 0},
                                              "black": {"ethnicity_in": ["Black"]}}}}
    result = _result(config)
    assert result.flags["core20"].sum() == 1
    assert result.flags["plus_multimorbidity"].all()
    assert result.flags["plus_black"].sum() == 1
    assert "plus_ethnic_minority" not in result.flags
    with pytest.raises(ConfigError):
        _result({"core20plus5": {"plus_groups": {"x": {"postcode_in": ["TR"]}}}})


def test_disclosed_tables():
    disclosed = _result().disclose()
    shown = disclosed["by_core20"].table
    # Every count here is 1-7, so all are suppressed (NHS Digital rules); 0 stays 0.
    assert shown.loc["core20", "n_patients"] is pd.NA or pd.isna(shown.loc["core20", "n_patients"])
    assert "person_years" not in shown.columns
    assert pd.isna(shown.loc["core20", "rate_per_1000"])
