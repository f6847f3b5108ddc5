"""LTC flags and the population frame: windows, registration edges, admission windows."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_admissions, make_events, make_patients

from phm_eval.codelists import load_codelist
from phm_eval.errors import ConfigError, InputError
from phm_eval.segment import build_population, ltc_flags

INDEX = "2022-04-01"


def _code(condition: str) -> str:
    codes = load_codelist("ltc")
    return str(codes.loc[codes["condition"] == condition, "snomed_code"].iloc[0])


def _patients() -> pd.DataFrame:
    rows = [
        # id, dob, reg start, reg end, death
        ("A", "1950-06-01", "2000-01-01", None, None),
        ("B", "1980-01-01", "2022-04-02", None, None),        # registers the day after
        ("C", "1980-01-01", "2000-01-01", "2022-04-01", None),  # left on the index date: out
        ("D", "1940-01-01", "2000-01-01", None, "2022-04-01"),  # died on the index date
        ("E", "1980-01-01", "2000-01-01", "2022-03-31", None),  # left the day before
        ("F", "2004-04-01", "2004-04-01", None, None),         # 18th birthday on the index date
        ("G", "1935-01-01", "2000-01-01", None, "2022-10-01"),  # dies during follow-up
        ("H", "1990-01-01", "2000-01-01", None, None),
    ]
    ids, dob, start, end, death = (list(c) for c in zip(*rows, strict=True))
    return make_patients(ids, practice_id="PR1", date_of_birth=dob, registration_start=start,
                         registration_end=end, date_of_death=death)


def _events() -> pd.DataFrame:
    rows = [
        ("A", "2017-04-01", "cancer"),        # exactly 60 months before: counts
        ("F", "2017-03-31", "cancer"),        # one day too early
        ("A", "2021-07-01", "pregnancy"),     # exactly 9 months before: counts
        ("F", "2021-06-30", "pregnancy"),     # one day too early
        ("A", "1990-05-01", "hypertension"),
        ("A", "2010-01-01", "diabetes"),
        ("A", "2010-01-01", "diabetes"),      # duplicate record
        ("A", "2015-01-01", "autism"),        # not a chronic condition by default
        ("H", "2022-04-02", "hypertension"),  # after the index date
        ("H", "2022-04-01", "asthma"),        # on the index date: counts
        ("G", "2021-04-01", "cancer"),        # 12 months before: recent
        ("H", "2021-03-31", "cancer"),        # not recent, but within 5 years
        ("B", "2020-01-01", "copd"),          # B is not registered at the index date
    ]
    return make_events([(p, d, _code(c)) for p, d, c in rows])


def _admissions() -> pd.DataFrame:
    rows = [
        ("A", "2021-04-02", "2021-04-06", "21"),  # first day of the 12 months: prior, 4 bed days
        ("A", "2021-04-01", "2021-04-02", "21"),  # exactly 12 months before: one day too early
        ("A", "2022-04-01", "2022-04-01", "2B"),  # on the index date: prior, 0 bed days
        ("A", "2022-01-01", "2022-01-03", "11"),  # elective: never counted
        ("A", "2022-04-02", "2022-04-04", "22"),  # day after: follow-up
        ("A", "2023-04-01", "2023-04-02", "2A"),  # 12 months after: follow-up
        ("A", "2023-04-02", "2023-04-03", "21"),  # one day too late
        ("C", "2022-05-01", "2022-05-02", "21"),  # after C left the practice
        ("G", "2022-10-01", "2022-10-01", "21"),  # on the day of death: counts
    ]
    return make_admissions(rows)


def test_registered_population_edges():
    flags = ltc_flags(_patients(), _events(), INDEX)
    # C's registration ends on the index date and D dies on it: neither is registered then.
    assert flags["patient_id"].tolist() == ["A", "F", "G", "H"]


def test_condition_windows_and_counts():
    flags = ltc_flags(_patients(), _events(), INDEX).set_index("patient_id")
    assert flags.loc["A", "cancer"] and not flags.loc["F", "cancer"]
    assert flags.loc["A", "pregnancy"] and not flags.loc["F", "pregnancy"]
    assert not flags.loc["H", "hypertension"] and flags.loc["H", "asthma"]
    assert flags.loc["G", "cancer_recent"] and not flags.loc["H", "cancer_recent"]
    assert flags.loc["H", "cancer"]  # the 2021-03-31 code is within 5 years
    # A: hypertension, diabetes, cancer are chronic; pregnancy and autism are not.
    assert flags.loc["A", "n_ltc"] == 3
    assert flags.loc["A", "autism"]
    assert flags.loc["H", "n_ltc"] == 2  # asthma + cancer
    assert flags.loc["F", "n_ltc"] == 0
    assert flags["n_ltc"].dtype == "int64"


def test_chronic_conditions_configurable():
    config = {"ltc": {"chronic_conditions": ["hypertension", "autism"]}}
    flags = ltc_flags(_patients(), _events(), INDEX, config=config).set_index("patient_id")
    assert flags.loc["A", "n_ltc"] == 2
    with pytest.raises(ConfigError):
        ltc_flags(_patients(), _events(), INDEX, config={"ltc": {"chronic_conditions": ["gout"]}})


def test_admission_windows_and_follow_up():
    pop = build_population(_patients(), _events(), _admissions(), INDEX).set_index("patient_id")
    assert pop.loc["A", "prior_emergency_admissions"] == 2
    assert pop.loc["A", "prior_emergency_bed_days"] == 4
    assert pop.loc["A", "emergency_admissions_followup"] == 2
    assert pop.loc["A", "followup_days"] == 365
    # C's registration ends on the index date: not in the population at all.
    assert "C" not in pop.index
    # G dies on 2022-10-01 (183 days after the index date); the admission that day counts.
    assert pop.loc["G", "followup_days"] == 183
    assert pop.loc["G", "emergency_admissions_followup"] == 1
    assert pop.loc["G", "died_followup"] and not pop.loc["A", "died_followup"]
    assert pop.loc["A", "age"] == 71 and pop.loc["F", "age"] == 18


def test_excluded_admission_methods():
    config = {"admissions": {"exclude_methods": ["2B"]}}
    pop = build_population(_patients(), _events(), _admissions(), INDEX, config=config)
    a = pop.set_index("patient_id").loc["A"]
    assert a["prior_emergency_admissions"] == 1


def test_utilisation_ranking_without_predicted_risk():
    pop = build_population(_patients(), _events(), _admissions(), INDEX).set_index("patient_id")
    assert pop["risk_source"].eq("prior_utilisation").all()
    # A has 2 prior emergency admissions; nobody else has any, so older G ranks next by age.
    assert pop.loc["A", "risk_rank"] == 1 and pop.loc["G", "risk_rank"] == 2
    assert pop.loc["A", "risk_tier"] == "top 0.5%"


def test_frailty_and_predicted_risk_attached():
    frailty = pd.DataFrame(
        {
            "patient_id": ["A", "G", "X"],
            "efi_category": ["moderate", "SEVERE", "fit"],
            "efi_score": [0.3, 0.4, 0.0],
            "predicted_risk": [0.1, 0.9, 0.5],
        }
    )
    pop = build_population(_patients(), _events(), _admissions(), INDEX, frailty=frailty)
    pop = pop.set_index("patient_id")
    assert pop.loc["A", "efi_category"] == "moderate" and pop.loc["G", "efi_category"] == "severe"
    assert pd.isna(pop.loc["H", "efi_category"])
    assert pop["risk_source"].eq("predicted_risk").all()
    assert pop.loc["G", "risk_rank"] == 1 and pop.loc["A", "risk_rank"] == 2
    bad = frailty.assign(efi_category=["moderate", "frail", "fit"])
    with pytest.raises(InputError):
        build_population(_patients(), _events(), _admissions(), INDEX, frailty=bad)


def test_parquet_paths_give_the_same_frame(tmp_path):
    paths = {}
    for name, frame in {"patients": _patients(), "events": _events(),
                        "admissions": _admissions()}.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name])
    from_files = build_population(paths["patients"], paths["events"], paths["admissions"], INDEX)
    from_frames = build_population(_patients(), _events(), _admissions(), INDEX)
    pd.testing.assert_frame_equal(from_files, from_frames)


def test_missing_required_column():
    with pytest.raises(InputError, match="snomed_code"):
        ltc_flags(_patients(), _events().drop(columns="snomed_code"), INDEX)
