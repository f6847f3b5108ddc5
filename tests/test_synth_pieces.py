"""A large population is generated a group of whole PCNs at a time (memory bounded by a piece).

The pieces must join into one valid population in the data contract: unique patient and spell
numbers, one roll-out decided for the whole ICS, every table complete, and a truth combined from
the pieces exactly as it is computed for a population made in one piece.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import phm_eval.synth.generate as generate
from phm_eval.synth import simulate
from phm_eval.synth.programme import combine_itt_truth, combine_realised_truth

TABLES = ("practices", "patients", "events", "admissions", "interventions", "rollout")


@pytest.fixture(scope="module")
def in_pieces(tmp_path_factory):
    """The ``small_network`` scenario (2 PCNs of about 1,500) made one PCN at a time."""
    out = tmp_path_factory.mktemp("pieces") / "synthetic"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate, "PIECE_MAX_PATIENTS", 1_700)
        result = simulate("small_network", out, seed=11)
    return result


@pytest.fixture(scope="module")
def in_one(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "synthetic"
    return simulate("small_network", out, seed=11)


def test_a_small_population_is_one_piece(in_one):
    assert in_one.truth["population"]["generated_in_pieces"] == 1


def test_pieces_join_into_one_valid_population(in_pieces):
    out = in_pieces.out
    assert in_pieces.truth["population"]["generated_in_pieces"] == 2
    assert not list(out.glob(".piece-*")), "the pieces' folders are removed"
    tables = {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES}
    patients = tables["patients"]
    assert len(patients) == in_pieces.truth["population"]["n_patients"] == 3000
    assert patients["patient_id"].is_unique
    # numbered on across the pieces, as one piece numbers them
    assert sorted(patients["patient_id"]) == [f"SYN{i:08d}" for i in range(3000)]
    assert tables["admissions"]["spell_id"].is_unique
    for table in ("events", "admissions", "interventions"):
        assert tables[table]["patient_id"].isin(patients["patient_id"]).all(), table
    # both PCNs have people, events and admissions
    pcn_of = tables["practices"].set_index("practice_id")["pcn_id"]
    assert patients["practice_id"].map(pcn_of).nunique() == 2
    with_events = patients.loc[patients["patient_id"].isin(tables["events"]["patient_id"]),
                               "practice_id"].map(pcn_of)
    assert with_events.nunique() == 2
    # one roll-out for the ICS: at least one PCN never adopts and one does
    assert len(tables["rollout"]) == 1
    assert len(in_pieces.truth["rollout"]) == 1


def test_pieces_are_reproducible(in_pieces, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate, "PIECE_MAX_PATIENTS", 1_700)
        again = simulate("small_network", tmp_path / "again", seed=11)
    for table in TABLES:
        assert pd.read_parquet(in_pieces.out / f"{table}.parquet").equals(
            pd.read_parquet(again.out / f"{table}.parquet")), table
    assert json.loads((again.out / "truth" / "truth.json").read_text()) == json.loads(
        (in_pieces.out / "truth" / "truth.json").read_text())


def test_pieces_written_as_csv_hold_the_parquet_tables(in_pieces, tmp_path):
    """Each piece's CSV files are appended to the whole's (one header, every row, in order):
    the tables read back equal the Parquet ones made from the same seed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate, "PIECE_MAX_PATIENTS", 1_700)
        as_csv = simulate("small_network", tmp_path / "csv", seed=11, file_format="csv")
    assert as_csv.truth["population"]["generated_in_pieces"] == 2
    for table in ("patients", "events", "admissions", "interventions"):
        parquet = pd.read_parquet(in_pieces.out / f"{table}.parquet")
        csv = pd.read_csv(as_csv.out / f"{table}.csv", dtype=str, keep_default_na=False)
        assert list(csv.columns) == list(parquet.columns), table
        assert len(csv) == len(parquet), table
        assert csv["patient_id"].tolist() == parquet["patient_id"].tolist(), table


def test_pieces_truth_tables_cover_every_unit(in_pieces):
    itt = pd.read_parquet(in_pieces.out / "truth" / "itt_population.parquet")
    assert itt["unit"].nunique() == 2, "the never-adopting PCN's months are kept (comparators)"
    enrolment = pd.read_parquet(in_pieces.out / "truth" / "enrolment.parquet")
    interventions = pd.read_parquet(in_pieces.out / "interventions.parquet")
    assert enrolment["enrolled"].sum() == len(interventions)
    realised = in_pieces.truth["realised"]
    assert realised["n_enrolled"] == len(interventions)
    itt_truth = in_pieces.truth["itt_population"]
    assert itt_truth["n_population"] > itt_truth["n_population_in_adopting_units"] > 0
    never = itt[itt["adoption_month"].isna()]
    assert len(never) and not never["post"].any()
    assert 0 < itt_truth["rate_ratio"] < 1


def test_combined_itt_truth_equals_the_one_piece_computation(in_one):
    """Combining one piece must give back that piece's own truth (the same estimand)."""
    truth = in_one.truth["itt_population"]
    table = pd.read_parquet(in_one.out / "truth" / "itt_population.parquet")
    combined = combine_itt_truth([truth], table)
    for key in ("rate_ratio", "rate_difference_per_1000_person_months",
                "rate_with_programme_per_1000_person_months", "pooled_rate_ratio",
                "person_months", "share_of_admissions_after_enrolment",
                "share_enrolled_of_population_in_adopting_units"):
        assert combined[key] == pytest.approx(truth[key], rel=1e-12), key
    for key in ("admissions_without_programme", "admissions_with_programme", "n_population"):
        assert combined[key] == truth[key], key


def test_combined_itt_truth_weights_units_within_cohort_months():
    """Two units adopting in the same month: their rates are averaged with the pre-adoption
    weights, not pooled (a pooled ratio would be 1.5 / 2.5 = 0.6 here)."""
    month = np.datetime64("2021-01-01")
    table = pd.DataFrame({
        "unit": ["A", "B"], "month": [month, month], "adoption_month": [month, month],
        "post": [True, True], "person_days": [30.4375 * 1000, 30.4375 * 1000],
        "admissions_without_programme": [2, 0], "admissions_with_programme": [1, 0],
        "weight": [1.0, 3.0],
    })
    # rates per 1,000 person-months: A 1 vs 2, B 0 vs 0; weighted 0.25 vs 0.5
    piece = {"n_population": 10, "admissions_after_enrolment_in_adopted_months": 1,
             "admissions_in_adopted_months": 2, "n_enrolled_in_adopting_units": 3,
             "n_population_in_adopting_units": 10}
    combined = combine_itt_truth([piece], table)
    assert combined["rate_with_programme_per_1000_person_months"] == pytest.approx(0.25)
    assert combined["rate_difference_per_1000_person_months"] == pytest.approx(-0.25)
    assert combined["rate_ratio"] == pytest.approx(0.5)
    assert combined["pooled_rate_ratio"] == pytest.approx(0.5)
    assert combined["share_enrolled_of_population_in_adopting_units"] == pytest.approx(0.3)


def test_combined_realised_truth_adds_counts_and_redoes_ratios():
    a = {"n_enrolled": 2, "n_eligible": 4, "person_years_12m": 1.0,
         "admissions_12m_without_programme": 4, "admissions_12m_with_programme": 2,
         "admissions_12m_before_enrolment": 5}
    b = {"n_enrolled": 1, "n_eligible": 1, "person_years_12m": 1.0,
         "admissions_12m_without_programme": 0, "admissions_12m_with_programme": 0,
         "admissions_12m_before_enrolment": 1}
    out = combine_realised_truth([a, b])
    assert out["n_enrolled"] == 3 and out["admissions_12m_before_enrolment"] == 6
    assert out["realised_rate_ratio_12m"] == pytest.approx(0.5)
    assert out["att_admissions_per_1000_person_years_12m"] == pytest.approx(-1000.0)
