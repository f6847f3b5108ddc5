"""eFI2 (Best et al. 2025): hand-computed scores, window edges, hierarchy, categorical items.

Expected linear predictors are written out from the published coefficients (as transcribed in
OHDSI OmopIndices and NCL ICB's rulesets, see docs/frailty.md), not read from the code.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd
import pytest
from conftest import make_events, make_patients

from phm_eval.errors import ConfigError
from phm_eval.frailty import UNVERIFIED_ITEMS, Efi2Settings, efi2, efi2_category
from phm_eval.frailty.codelists import load_efi2_weights

INDEX = dt.date(2024, 4, 1)
DIVISOR = 8.429

# Coefficients (Best et al. 2025, Table 3 as transcribed by two implementations).
FALLS, DEMENTIA, COGNITIVE, MEMORY = 0.62743, 0.41715, 0.10985, 0.11915
ALC_HARMFUL, ALC_MISSING, ALC_PREVIOUS = 0.23107, 0.13175, 1.36434
BMI_MISSING, BMI_UNDER = 0.25318, 0.4417
POLY_5_9, POLY_10 = 0.32301, 0.50801
SMOKER, HYPOTENSION, ACTIVITY = 0.10291, 0.18253, 0.15284
BASE = ALC_MISSING + BMI_MISSING  # no alcohol and no BMI record

# Codes from the eFI2 candidate code list.
FALL = "161898004"  # Falls (age >= 55 at event)
DEMENTIA_CODE = "52448006"  # Senile dementia
COGNITIVE_CODE = "386806002"  # Cognitive impairment
MEMORY_CODE = "55533009"  # Forgetful (5 years)
HARMFUL, PREVIOUS, LOWER = "160577002", "161466001", "28127009"
UNITS_WEEK, UNITS_DAY = "228958009", "228957004"
BMI = "60621009"
CURRENT_SMOKER, EX_SMOKER = "230059006", "8517006"
SYSTOLIC = "163030003"  # O/E systolic BP (3 readings < 90 within 5 years)
BARTHEL = "273302005"

# Medications: 12 products in 11 BNF paragraphs. M1 and M12 share paragraph 021200 but not
# the sub-paragraph (7th character), so they count once at paragraph level and twice below it.
PARAGRAPHS = [
    "021200",
    "020502",
    "010501",
    "040301",
    "060101",
    "020802",
    "030101",
    "040602",
    "010602",
    "090101",
    "100101",
]
MEDS = pd.DataFrame(
    {
        "snomed_code": [f"8{i:08d}" for i in range(1, 13)],
        "drug": [f"drug{i}" for i in range(1, 13)],
        "bnf_code": [p + "0A0AAAAAA" for p in PARAGRAPHS] + ["0212001B0AAABAB"],
    }
)
MED = dict(zip(range(1, 13), MEDS["snomed_code"], strict=True))


def day(n: int) -> str:
    """The date ``n`` days before the index date."""
    return (INDEX - dt.timedelta(days=n)).isoformat()


#: The people of these cases (the shared factory's otherwise): men registered since 1980,
#: born on 15 June 1940 unless ``date_of_birth`` says.
patients = functools.partial(make_patients, sex="M", imd_decile=3,
                             registration_start="1980-01-01")


# (patient, events as (date, code, value), expected linear predictor)
CASES = [
    ("none", [], BASE),
    ("falls_exactly_5y", [("2019-04-01", FALL, None)], BASE + FALLS),
    ("falls_5y_and_a_day", [("2019-03-31", FALL, None)], BASE),
    ("falls_on_index", [(INDEX.isoformat(), FALL, None)], BASE + FALLS),
    ("falls_after_index", [("2024-04-02", FALL, None)], BASE),
    (
        "dementia_cog_memory",
        [
            ("2015-01-01", DEMENTIA_CODE, None),
            ("2016-01-01", COGNITIVE_CODE, None),
            ("2023-01-01", MEMORY_CODE, None),
        ],
        BASE + DEMENTIA,
    ),
    (
        "cog_memory",
        [("2010-01-01", COGNITIVE_CODE, None), ("2023-01-01", MEMORY_CODE, None)],
        BASE + COGNITIVE,
    ),
    ("memory_recent", [("2021-01-01", MEMORY_CODE, None)], BASE + MEMORY),
    ("memory_old", [("2018-01-01", MEMORY_CODE, None)], BASE),
    ("alc_harmful", [("2022-01-01", HARMFUL, None)], BMI_MISSING + ALC_HARMFUL),
    ("alc_previous", [("2020-01-01", PREVIOUS, None)], BMI_MISSING + ALC_PREVIOUS),
    ("alc_latest_lower", [("2020-01-01", HARMFUL, None), ("2023-01-01", LOWER, None)], BMI_MISSING),
    ("alc_units_week_60", [("2023-01-01", UNITS_WEEK, 60.0)], BMI_MISSING + ALC_HARMFUL),
    ("alc_units_day_3", [("2023-01-01", UNITS_DAY, 3.0)], BMI_MISSING),  # 21/week: higher risk
    ("alc_too_old", [("2019-03-31", HARMFUL, None)], BASE),
    ("bmi_17", [("2023-06-01", BMI, 17.0)], ALC_MISSING + BMI_UNDER),
    ("bmi_18_5", [("2023-06-01", BMI, 18.5)], ALC_MISSING),
    ("bmi_latest_wins", [("2020-06-01", BMI, 17.0), ("2023-06-01", BMI, 24.0)], ALC_MISSING),
    ("bmi_too_old", [("2019-03-31", BMI, 17.0)], BASE),
    (
        "poly_5_with_day_90",
        [(day(10), MED[i], None) for i in range(1, 5)] + [(day(90), MED[5], None)],
        BASE + POLY_5_9,
    ),
    (
        "poly_4_and_day_91",
        [(day(10), MED[i], None) for i in range(1, 5)] + [(day(91), MED[5], None)],
        BASE,
    ),
    ("poly_shared_paragraph", [(day(5), MED[i], None) for i in (1, 12, 2, 3, 4)], BASE),
    ("poly_10", [(day(30), MED[i], None) for i in range(1, 11)], BASE + POLY_10),
    (
        "poly_9",
        [(day(30), MED[i], None) for i in range(1, 10)] + [(day(31), MED[12], None)],
        BASE + POLY_5_9,
    ),
    ("smoker", [("2020-01-01", CURRENT_SMOKER, None)], BASE + SMOKER),
    (
        "smoker_then_ex",
        [("2015-01-01", CURRENT_SMOKER, None), ("2020-01-01", EX_SMOKER, None)],
        BASE,
    ),
    (
        "low_bp_3",
        [
            ("2021-01-01", SYSTOLIC, 85.0),
            ("2022-01-01", SYSTOLIC, 88.0),
            ("2023-01-01", SYSTOLIC, 89.9),
        ],
        BASE + HYPOTENSION,
    ),
    (
        "low_bp_2",
        [
            ("2021-01-01", SYSTOLIC, 85.0),
            ("2022-01-01", SYSTOLIC, 88.0),
            ("2023-01-01", SYSTOLIC, 90.0),
        ],
        BASE,
    ),
    ("barthel_15", [("2022-01-01", BARTHEL, 15.0)], BASE + ACTIVITY),
    ("barthel_19", [("2022-01-01", BARTHEL, 19.0)], BASE),
    ("barthel_60_of_100", [("2022-01-01", BARTHEL, 60.0)], BASE + ACTIVITY),
    ("barthel_no_value", [("2022-01-01", BARTHEL, None)], BASE),
]


def run(cases=CASES, settings=None, **kwargs) -> pd.DataFrame:
    rows = [(pid, d, c, v) for pid, evs, _ in cases for d, c, v in evs]
    ev = make_events(rows)
    ids = [pid for pid, _, _ in cases]
    out = efi2(ev, patients(ids), INDEX, medications=MEDS, settings=settings, **kwargs)
    return out.set_index("patient_id")


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    return run()


@pytest.mark.parametrize("pid, expected", [(pid, lp) for pid, _, lp in CASES])
def test_hand_computed_linear_predictor_and_score(scored, pid, expected):
    assert scored.loc[pid, "efi2_linear_predictor"] == pytest.approx(expected, abs=1e-9)
    assert scored.loc[pid, "efi2_score"] == pytest.approx(expected / DIVISOR, abs=1e-9)


def test_categories_of_hand_computed_patients(scored):
    # BASE/8.429 = 0.0457 robust; +falls = 0.1201 mild; previous drinking 0.1919 moderate.
    assert scored.loc["none", "efi2_category"] == "robust"
    assert scored.loc["falls_exactly_5y", "efi2_category"] == "mild"
    assert scored.loc["alc_previous", "efi2_category"] == "moderate"
    assert scored["efi2_category"].cat.ordered
    assert list(scored["efi2_category"].cat.categories) == ["robust", "mild", "moderate", "severe"]


def test_item_columns(scored):
    assert scored.loc["alc_units_day_3", "efi2_alcohol"] == "higher"
    assert scored.loc["alc_latest_lower", "efi2_alcohol"] == "lower"
    assert scored.loc["none", "efi2_alcohol"] == "missing"
    assert scored.loc["bmi_latest_wins", "efi2_bmi_value"] == 24.0
    assert scored.loc["bmi_17", "efi2_bmi"] == "underweight"
    assert scored.loc["poly_shared_paragraph", "efi2_polypharmacy_count"] == 4
    assert scored.loc["poly_9", "efi2_polypharmacy"] == "5-9"
    assert scored.loc["poly_10", "efi2_polypharmacy"] == "10+"
    row = scored.loc["dementia_cog_memory"]
    assert row["efi2_dementia"] and not row["efi2_cognitive_impairment"]
    assert not row["efi2_memory_concerns"]


def test_unverified_items_named_in_every_output(scored):
    assert scored["efi2_unverified_items"].nunique() == 1
    named = scored["efi2_unverified_items"].iloc[0].split(";")
    assert set(named) == set(UNVERIFIED_ITEMS)
    assert {"falls_window", "cut_point_inclusivity", "polypharmacy_bnf_level"} <= set(named)
    assert scored.attrs["efi2_unverified_items"] == UNVERIFIED_ITEMS


def test_falls_age_rule_with_code_list_windows():
    # dob 1955-01-01: aged 53 in 2008, 56 in 2011. With the code list's own windows the
    # falls code has no time limit but needs age >= 55 at the event.
    cases = [
        ("fall_at_53", [("2008-06-01", FALL, None)], BASE),
        ("fall_at_56", [("2011-06-01", FALL, None)], BASE + FALLS),
    ]
    rows = [(pid, d, c, v) for pid, evs, _ in cases for d, c, v in evs]
    ev = make_events(rows)
    out = efi2(
        ev,
        patients(["fall_at_53", "fall_at_56"], date_of_birth="1955-01-01"),
        INDEX,
        medications=MEDS,
        settings=Efi2Settings(falls_window_years=None),
    )
    lp = out.set_index("patient_id")["efi2_linear_predictor"]
    assert lp["fall_at_53"] == pytest.approx(BASE)
    assert lp["fall_at_56"] == pytest.approx(BASE + FALLS)
    # The default (Appendix 1) limits all falls codes to 5 years: neither counts.
    default = efi2(
        ev, patients(["fall_at_53", "fall_at_56"], date_of_birth="1955-01-01"), INDEX, medications=MEDS
    )
    assert default["efi2_falls"].sum() == 0


def test_polypharmacy_bnf_level_is_configurable():
    cases = [c for c in CASES if c[0] == "poly_shared_paragraph"]
    out = run(cases, settings=Efi2Settings(polypharmacy_bnf_prefix_length=7))
    assert out.loc["poly_shared_paragraph", "efi2_polypharmacy_count"] == 5
    assert out.loc["poly_shared_paragraph", "efi2_linear_predictor"] == pytest.approx(
        BASE + POLY_5_9
    )


def test_alcohol_most_severe_rule():
    cases = [c for c in CASES if c[0] == "alc_latest_lower"]
    out = run(cases, settings=Efi2Settings(alcohol_rule="most_severe"))
    assert out.loc["alc_latest_lower", "efi2_alcohol"] == "harmful"
    assert out.loc["alc_latest_lower", "efi2_linear_predictor"] == pytest.approx(
        BMI_MISSING + ALC_HARMFUL
    )


def test_cut_point_inclusivity_both_ways():
    scores = [0.0, 0.0856999, 0.0857, 0.1624, 0.2392, 0.2393, 1.0]
    upper = efi2_category(scores)
    lower = efi2_category(scores, inclusive="lower_category")
    assert list(upper) == ["robust", "robust", "mild", "moderate", "severe", "severe", "severe"]
    assert list(lower) == ["robust", "robust", "robust", "mild", "moderate", "severe", "severe"]
    with pytest.raises(ConfigError):
        efi2_category(scores, cut_points=(0.2, 0.1, 0.3))


def test_divisor_is_the_largest_attainable_sum():
    w = load_efi2_weights().set_index("predictor")["coefficient"]
    binary = [n for n in w.index if not n.startswith(("META", "Alcohol", "BMI", "Polypharmacy"))]
    assert len(binary) == 33
    largest = (
        w[binary].sum()
        + w.filter(like="Alcohol:").max()
        + w.filter(like="BMI:").max()
        + w.filter(like="Polypharmacy:").max()
    )
    assert largest == pytest.approx(8.42874, abs=1e-9)
    assert largest == pytest.approx(
        w["META: score divisor (sum of maximum possible coefficients)"], abs=1e-3
    )


def test_age_restriction_and_exclusions():
    pts = patients(["old", "young"], date_of_birth=["1940-01-01", "1960-01-01"])
    out = efi2(
        make_events([]),
        pts,
        INDEX,
        medications=MEDS,
    )
    assert out["patient_id"].tolist() == ["old"]
    assert out.attrs["exclusions"]["below_min_age"] == 1
    assert np.isclose(out["efi2_linear_predictor"].iloc[0], BASE)


def test_missing_weight_row_raises():
    w = load_efi2_weights()
    w = w[w["predictor"] != "Falls (history of)"]
    with pytest.raises(ConfigError, match="Falls"):
        run(CASES[:1], weights=w)
