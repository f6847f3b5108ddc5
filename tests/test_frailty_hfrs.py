"""HFRS (Gilbert et al. 2018): hand-computed sums, risk-group edges, de-duplication, look-back."""

from __future__ import annotations

import datetime as dt
import functools

import pandas as pd
import pytest
from conftest import make_admissions, make_patients

from phm_eval.frailty import hfrs, hfrs_category, normalise_icd10

INDEX = dt.date(2024, 4, 1)

# Points from Gilbert et al. 2018 (hfrs_icd10.csv).
POINTS = {
    "R26": 2.6,
    "E87": 2.3,
    "R94": 1.4,
    "Z93": 1.0,
    "F00": 7.1,
    "G30": 4.0,
    "R41": 2.7,
    "G45": 1.2,
    "N28": 1.3,
    "N17": 1.8,
    "W01": 0.9,
}


#: The people of these cases (the shared factory's otherwise): women born on 1 February 1938.
patients = functools.partial(make_patients, date_of_birth="1938-02-01", ethnicity="Asian",
                             imd_decile=1)


def spell(pid, primary, secondary=None, admitted="2023-06-01", discharged="2023-06-05"):
    """An emergency spell as a row of :func:`conftest.make_admissions`."""
    return (pid, admitted, discharged, "21", primary, secondary)


def score(spells, ids=None, **kwargs) -> pd.DataFrame:
    adm = make_admissions(spells)
    ids = ids or sorted(adm["patient_id"].unique())
    return hfrs(adm, patients(ids), INDEX, **kwargs).set_index("patient_id")


def test_hand_computed_sum_with_boundaries():
    spells = [
        spell("s4_9", "R26", "E87"),  # 2.6 + 2.3
        spell("s5_0", "R26.8", "R94;Z93"),  # 2.6 + 1.4 + 1.0
        spell("s15_0", "F00.0", "G30.9;R41.8;G45.9"),  # 7.1 + 4.0 + 2.7 + 1.2
        spell("s15_1", "F00", "G30;R41;N28.1"),  # 7.1 + 4.0 + 2.7 + 1.3
    ]
    out = score(spells)
    expected = {"s4_9": 4.9, "s5_0": 5.0, "s15_0": 15.0, "s15_1": 15.1}
    assert expected["s15_0"] == pytest.approx(
        POINTS["F00"] + POINTS["G30"] + POINTS["R41"] + POINTS["G45"]
    )
    for pid, value in expected.items():
        assert out.loc[pid, "hfrs_score"] == value, pid
    assert out["hfrs_category"].to_dict() == {
        "s4_9": "low",
        "s5_0": "intermediate",
        "s15_0": "intermediate",
        "s15_1": "high",
    }
    assert out["hfrs_category"].cat.ordered


def test_category_function_edges():
    got = hfrs_category([0, 4.9, 5.0, 10, 15.0, 15.1, 30])
    assert list(got) == [
        "low",
        "low",
        "intermediate",
        "intermediate",
        "intermediate",
        "high",
        "high",
    ]
    # Floating-point sums just below an edge are read at the points' precision (0.1).
    assert hfrs_category([4.999999999999])[0] == "intermediate"


def test_duplicate_codes_count_once_across_positions_spells_and_formats():
    spells = [
        spell("p", "R26.8", "R268; r26 ;N17.9"),
        spell("p", "R26", "N179;W01.X", admitted="2023-09-01", discharged="2023-09-02"),
    ]
    out = score(spells)
    assert out.loc["p", "hfrs_score"] == pytest.approx(2.6 + 1.8 + 0.9)
    assert out.loc["p", "hfrs_n_codes"] == 3
    assert out.loc["p", "hfrs_n_spells"] == 2


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("J44.1", "J44"),
        ("J441", "J44"),
        ("j44", "J44"),
        (" F00.0* ", "F00"),
        ("G30.9†", "G30"),
        ("W01X", "W01"),
        ("R5", None),
        (None, None),
    ],
)
def test_normalise_icd10(raw, expected):
    assert normalise_icd10(raw) == expected


def test_lookback_window_edges_and_patients_without_spells():
    spells = [
        spell("exactly_2y", "R26", admitted="2022-04-01", discharged="2022-04-03"),
        spell("2y_and_a_day", "R26", admitted="2022-03-31", discharged="2022-04-03"),
        spell("discharged_on_index", "R26", admitted="2024-03-25", discharged="2024-04-01"),
        spell("discharged_after_index", "R26", admitted="2024-03-25", discharged="2024-04-02"),
    ]
    ids = ["exactly_2y", "2y_and_a_day", "discharged_on_index", "discharged_after_index", "none"]
    out = score(spells, ids=ids)
    assert out["hfrs_score"].to_dict() == {
        "2y_and_a_day": 0.0,
        "discharged_after_index": 0.0,
        "discharged_on_index": 2.6,
        "exactly_2y": 2.6,
        "none": 0.0,
    }
    assert out.loc["none", "hfrs_category"] == "low"
    longer = score(spells, ids=ids, lookback_years=3)
    assert longer.loc["2y_and_a_day", "hfrs_score"] == 2.6


def test_non_scoring_codes_and_missing_secondaries():
    out = score([spell("p", "K35.8", None), spell("q", "I10", "E11.9;;")])
    assert out["hfrs_score"].tolist() == [0.0, 0.0]
    assert out["hfrs_n_spells"].tolist() == [1, 1]


def test_dead_patients_not_scored():
    adm = make_admissions([spell("dead", "R26"), spell("alive", "R26")])
    pts = patients(["alive", "dead"])
    pts.loc[pts["patient_id"] == "dead", "date_of_death"] = "2024-01-01"
    out = hfrs(adm, pts, INDEX)
    assert out["patient_id"].tolist() == ["alive"]
    assert out.attrs["exclusions"]["died_on_or_before_index"] == 1
