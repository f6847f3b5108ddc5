"""eFI (Clegg et al. 2016): every deficit, category edges, polypharmacy windows, eligibility.

Input tables come from the factories of tests/conftest.py (``make_patients``, ``make_events``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from phm_eval.errors import ConfigError, InputError, ParameterError
from phm_eval.frailty import EFI_DEFICITS, efi, efi_category, eligibility, flow_table
from phm_eval.frailty.codelists import EFI_CODED_DEFICITS, load_efi_codelist

INDEX = dt.date(2024, 4, 1)

# A small medication list of our own: two products of atorvastatin (one drug) and 8 others.
MEDS = pd.DataFrame(
    {
        "snomed_code": [f"9{i:08d}" for i in range(10)],
        "drug": [
            "atorvastatin",
            "atorvastatin",
            "amlodipine",
            "ramipril",
            "metformin",
            "omeprazole",
            "sertraline",
            "warfarin",
            "donepezil",
            "furosemide",
        ],
        "bnf_code": [""] * 10,
    }
)
ATORVA_20, ATORVA_40 = MEDS["snomed_code"][0], MEDS["snomed_code"][1]
DISTINCT_DRUGS = list(MEDS["snomed_code"][1:])  # nine codes, nine different drugs


def first_code() -> dict[str, str]:
    """One code per deficit that belongs to no other deficit (some codes, e.g. diabetic
    nephropathy, rightly count for two)."""
    codes = load_efi_codelist()
    unique = codes[~codes["snomed_code"].duplicated(keep=False)]
    return unique.groupby("deficit")["snomed_code"].first().to_dict()


def test_a_code_in_two_deficit_lists_counts_for_both(make_events, make_patients):
    out = efi(make_events([("p", "2020-01-01", "127013003")]), make_patients(["p"]), INDEX, medications=MEDS)
    assert out["efi_deficits"].iloc[0] == 2
    assert bool(out["efi_diabetes"].iloc[0]) and bool(out["efi_chronic_kidney_disease"].iloc[0])


def days_before(n: int) -> str:
    return (INDEX - dt.timedelta(days=n)).isoformat()


def test_each_deficit_alone_scores_one(make_events, make_patients):
    code = first_code()
    ids = list(EFI_DEFICITS)
    rows = [(d, "2015-03-01", code[d]) for d in EFI_CODED_DEFICITS]
    rows += [("polypharmacy", days_before(30), c) for c in DISTINCT_DRUGS[:5]]
    out = efi(make_events(rows), make_patients(ids), INDEX, medications=MEDS).set_index("patient_id")
    assert len(out) == 36
    flags = out[[f"efi_{d}" for d in EFI_DEFICITS]]
    for deficit in EFI_DEFICITS:
        assert out.loc[deficit, "efi_deficits"] == 1, deficit
        assert out.loc[deficit, "efi_score"] == pytest.approx(1 / 36)
        on = flags.loc[deficit]
        assert on[f"efi_{deficit}"], deficit
        assert on.sum() == 1, (deficit, list(on[on].index))
    assert out["efi_category"].eq("fit").all()


@pytest.mark.parametrize(
    "n_deficits, category",
    [
        (0, "fit"),
        (4, "fit"),
        (5, "mild"),
        (8, "mild"),
        (9, "moderate"),
        (12, "moderate"),
        (13, "severe"),
        (36, "severe"),
    ],
)
def test_category_boundaries(n_deficits, category, make_events, make_patients):
    code = first_code()
    chosen = list(EFI_CODED_DEFICITS)[: min(n_deficits, 35)]
    rows = [("p", "2020-01-01", code[d]) for d in chosen]
    if n_deficits == 36:
        rows += [("p", days_before(10), c) for c in DISTINCT_DRUGS[:5]]
    out = efi(make_events(rows), make_patients(["p"]), INDEX, medications=MEDS)
    assert out["efi_deficits"].iloc[0] == n_deficits
    assert out["efi_score"].iloc[0] == pytest.approx(n_deficits / 36)
    assert out["efi_category"].iloc[0] == category
    assert out["efi_category"].cat.ordered
    assert list(out["efi_category"].cat.categories) == ["fit", "mild", "moderate", "severe"]


def test_efi_category_function_on_integer_edges():
    got = efi_category(pd.Series([0, 4, 5, 8, 9, 12, 13, 36]))
    assert list(got) == ["fit", "fit", "mild", "mild", "moderate", "moderate", "severe", "severe"]


def test_polypharmacy_window_edge_365_vs_366_days(make_events, make_patients):
    four = [(pid, days_before(100), c) for pid in ("in", "out") for c in DISTINCT_DRUGS[:4]]
    rows = four + [
        ("in", days_before(365), DISTINCT_DRUGS[4]),
        ("out", days_before(366), DISTINCT_DRUGS[4]),
    ]
    out = efi(make_events(rows), make_patients(["in", "out"]), INDEX, medications=MEDS).set_index(
        "patient_id"
    )
    assert out.loc["in", "efi_polypharmacy_drugs"] == 5
    assert bool(out.loc["in", "efi_polypharmacy"])
    assert out.loc["out", "efi_polypharmacy_drugs"] == 4
    assert not bool(out.loc["out", "efi_polypharmacy"])


def test_four_versus_five_distinct_drugs_and_repeats_count_once(make_events, make_patients):
    rows = [("four", days_before(20), c) for c in DISTINCT_DRUGS[:4]]
    rows += [("five", days_before(20), c) for c in DISTINCT_DRUGS[:5]]
    # Four drugs, one of them issued monthly: still four.
    rows += [("repeats", days_before(20), c) for c in DISTINCT_DRUGS[:4]]
    rows += [("repeats", days_before(30 * k), DISTINCT_DRUGS[0]) for k in range(1, 12)]
    # Three drugs plus atorvastatin 20 mg and 40 mg: one drug, so four.
    rows += [("strengths", days_before(20), c) for c in DISTINCT_DRUGS[1:4]]
    rows += [("strengths", days_before(40), ATORVA_20), ("strengths", days_before(10), ATORVA_40)]
    ids = ["four", "five", "repeats", "strengths"]
    out = efi(make_events(rows), make_patients(ids), INDEX, medications=MEDS).set_index("patient_id")
    assert out["efi_polypharmacy_drugs"].to_dict() == {
        "five": 5,
        "four": 4,
        "repeats": 4,
        "strengths": 4,
    }
    assert out["efi_polypharmacy"].to_dict() == {
        "five": True,
        "four": False,
        "repeats": False,
        "strengths": False,
    }
    assert out.loc["five", "efi_deficits"] == 1


def test_events_after_index_date_ignored_and_on_index_date_counted(make_events, make_patients):
    code = first_code()
    rows = [
        ("after", (INDEX + dt.timedelta(days=1)).isoformat(), code["falls"]),
        ("on", INDEX.isoformat(), code["falls"]),
    ]
    rows += [
        ("after_meds", (INDEX + dt.timedelta(days=1)).isoformat(), c) for c in DISTINCT_DRUGS[:5]
    ]
    out = efi(make_events(rows), make_patients(["after", "on", "after_meds"]), INDEX, medications=MEDS)
    out = out.set_index("patient_id")
    assert out["efi_deficits"].to_dict() == {"after": 0, "after_meds": 0, "on": 1}


def test_lookback_years_limits_coded_deficits(make_events, make_patients):
    code = first_code()
    rows = [("p", "2021-04-01", code["falls"]), ("p", "2021-03-31", code["diabetes"])]
    whole = efi(make_events(rows), make_patients(["p"]), INDEX, medications=MEDS)
    recent = efi(make_events(rows), make_patients(["p"]), INDEX, medications=MEDS, lookback_years=3)
    assert whole["efi_deficits"].iloc[0] == 2
    assert recent["efi_deficits"].iloc[0] == 1
    assert bool(recent["efi_falls"].iloc[0]) and not bool(recent["efi_diabetes"].iloc[0])


def test_age_restriction_inclusive_and_completed_years(make_events, make_patients):
    # 65th birthday on the index date: 65, scored. Birthday the day after: 64, not scored.
    ids = ["turns65_today", "turns65_tomorrow", "aged95", "aged96"]
    dob = ["1959-04-01", "1959-04-02", "1928-06-01", "1927-06-01"]
    out = efi(make_events([]), make_patients(ids, date_of_birth=dob), INDEX, medications=MEDS,
              max_age=95)
    assert sorted(out["patient_id"]) == ["aged95", "turns65_today"]
    ex = out.attrs["exclusions"]
    assert ex["below_min_age"] == 1 and ex["above_max_age"] == 1 and ex["scored"] == 2


def test_dead_and_deregistered_excluded_with_counted_reasons(make_events, make_patients):
    ids = [
        "alive",
        "died_before",
        "died_on_index",
        "died_after",
        "left_before",
        "left_on_index",
        "joins_later",
        "no_dob",
    ]
    out = efi(
        make_events([]),
        make_patients(
            ids,
            date_of_birth=["1940-01-01"] * 7 + [None],
            date_of_death=[
                None,
                "2023-01-01",
                INDEX.isoformat(),
                "2024-05-01",
                None,
                None,
                None,
                None,
            ],
            registration_end=[None, None, None, None, "2024-03-31", INDEX.isoformat(), None, None],
            registration_start=["1990-01-01"] * 6 + ["2024-04-02", "1990-01-01"],
        ),
        INDEX,
        medications=MEDS,
    )
    # A registration ending on the index date, like a death on it, leaves the person out.
    assert sorted(out["patient_id"]) == ["alive", "died_after"]
    assert out.attrs["exclusions"] == {
        "patients_in_input": 8,
        "missing_date_of_birth": 1,
        "died_on_or_before_index": 2,
        "not_registered_at_index": 3,
        "below_min_age": 0,
        "above_max_age": 0,
        "scored": 2,
    }
    flow = flow_table(out)
    assert flow["n_remaining"].iloc[-1] == 2
    assert flow["n_excluded"].sum() == 6


def test_eligibility_table_matches_efi_population(make_patients):
    pts = make_patients(["a", "b"], date_of_birth=["1940-01-01", "1990-01-01"])
    elig = eligibility(pts, INDEX)
    assert elig["eligible"].tolist() == [True, False]
    assert elig["age"].tolist() == [84, 34]
    assert elig["exclusion_reason"].iloc[1] == "below_min_age"


def test_parquet_paths_and_integer_codes_give_same_result(tmp_path, make_events, make_patients):
    code = first_code()
    rows = [("p", "2020-01-01", code["falls"]), ("p", "2020-01-01", code["diabetes"])]
    rows += [("p", days_before(5), c) for c in DISTINCT_DRUGS[:5]]
    ev = make_events(rows)
    pts = make_patients(["p", "q"])
    ev.to_parquet(tmp_path / "events.parquet")
    pts.to_parquet(tmp_path / "patients.parquet")
    from_files = efi(
        tmp_path / "events.parquet", str(tmp_path / "patients.parquet"), INDEX, medications=MEDS
    )
    ev_int = ev.assign(
        snomed_code=ev["snomed_code"].astype("int64"), date=pd.to_datetime(ev["date"])
    )
    from_frames = efi(ev_int, pts, pd.Timestamp(INDEX), medications=MEDS)
    pd.testing.assert_frame_equal(from_files, from_frames)
    assert from_files["efi_deficits"].tolist() == [3, 0]


def test_bad_codelist_and_missing_column_raise(make_events, make_patients):
    with pytest.raises(ConfigError, match="unknown eFI deficit"):
        efi(
            make_events([]),
            make_patients(["p"]),
            INDEX,
            medications=MEDS,
            codelist=pd.DataFrame({"deficit": ["frailty"], "snomed_code": ["1"]}),
        )
    with pytest.raises(InputError, match="snomed_code"):
        efi(
            pd.DataFrame({"patient_id": ["p"], "date": ["2020-01-01"]}),
            make_patients(["p"]),
            INDEX,
            medications=MEDS,
        )


def test_options_are_keyword_only_and_bad_ones_name_the_argument(make_events, make_patients):
    ev, pts = make_events([]), make_patients(["p"])
    with pytest.raises(TypeError):
        efi(ev, pts, INDEX, None, MEDS)  # codelist, medications by position
    for option, value in [("polypharmacy_threshold", 0), ("polypharmacy_window_days", -1),
                          ("lookback_years", 0)]:
        with pytest.raises(ParameterError, match=f"^{option}: ") as err:
            efi(ev, pts, INDEX, medications=MEDS, **{option: value})
        assert isinstance(err.value, ValueError) and isinstance(err.value, ConfigError)
