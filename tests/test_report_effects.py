"""Plain-English effect wording: conversions to admissions per 1,000 a year and to pounds."""

from __future__ import annotations

import pytest

from phm_eval.disclosure import DisclosurePolicy
from phm_eval.errors import InputError
from phm_eval.report.effects import (
    Effect,
    change_words,
    describe_headline,
    fmt_gbp,
    interval_words,
    pick_headline,
    read_effects,
)

MINUS = "\u2212"


def rr(estimate, low, high, baseline=480.0, **extra):
    return Effect.from_record({"outcome": "emergency admissions", "method": "Negative binomial",
                               "estimate": estimate, "ci_low": low, "ci_high": high,
                               "scale": "RR", "baseline_rate_per_1000": baseline, **extra})


def test_rate_ratio_converted_with_the_comparators_rate():
    effect = rr(0.86, 0.78, 0.95, n_treated=1240, n_control=1240)
    est, low, high = effect.change_per_1000()
    # 480 x (ratio - 1), by hand.
    assert est == pytest.approx(-67.2, abs=1e-9)
    assert low == pytest.approx(-105.6, abs=1e-9)
    assert high == pytest.approx(-24.0, abs=1e-9)
    head = describe_headline(effect, unit_cost=2500)
    assert head.verdict == "reduction"
    assert head.title == "Fewer emergency admissions"
    assert "about 67 fewer emergency admissions per 1,000 patients a year" in head.sentence
    assert "(95% confidence interval 24 to 106 fewer)" in head.sentence
    assert "480 × (1 − 0.86) ≈ 67 fewer" in head.conversion
    # 67.2 x 2,500 = 168,000; the interval 24.0 x 2,500 = 60,000 to 105.6 x 2,500 = 264,000.
    assert head.saving_per_1000_gbp == pytest.approx((168_000.0, 264_000.0, 60_000.0))
    assert "about £168,000 a year of hospital costs avoided per 1,000 patients" in head.money
    assert "(95% CI £60,000 to £264,000)" in head.money
    # 67.2 per 1,000 a year for 1,240 enrolled patients: 83.3 admissions a year.
    assert head.reach == "For the 1,240 patients enrolled, that is about 83 fewer emergency " \
                         "admissions a year."


def test_null_result_reads_as_clearly_as_a_positive_one():
    effect = rr(0.97, 0.82, 1.15, baseline=260.0)
    head = describe_headline(effect, unit_cost=2500)
    assert head.verdict == "no_evidence"
    assert head.title == "No evidence of a reduction in emergency admissions"
    # 260 x -0.03 = -7.8; 260 x -0.18 = -46.8; 260 x 0.15 = 39.
    assert "The best estimate is 8 fewer emergency admissions per 1,000 patients a year" \
        in head.sentence
    assert "runs from 47 fewer to 39 more, which includes no change" in head.sentence
    assert "there is no evidence that the programme reduced emergency admissions" in head.sentence
    # 46.8 x 2,500 = 117,000 saved; 39 x 2,500 = 97,500 extra, shown to the nearest 1,000.
    assert "from £117,000 saved to £98,000 extra cost" in head.money
    assert "no saving is shown" in head.money
    assert head.reach is None


def test_increase_on_a_difference_scale():
    effect = Effect.from_record({"outcome": "emergency admissions", "method": "DiD",
                                 "estimate": 30, "ci_low": 5, "ci_high": 55, "scale": "ATT"})
    head = describe_headline(effect, unit_cost=2500)
    assert head.verdict == "increase"
    assert head.title == "More emergency admissions"
    assert "about 30 more emergency admissions per 1,000 patients a year" in head.sentence
    assert "(95% confidence interval 5 to 55 more)" in head.sentence
    # 30 x 2,500 = 75,000; 5 x 2,500 = 12,500 -> 13,000; 55 x 2,500 = 137,500 -> 138,000.
    assert "about £75,000 a year of extra hospital costs" in head.money
    assert "(95% CI £13,000 to £138,000)" in head.money
    assert head.conversion is None


def test_difference_per_person_year_is_rescaled_to_per_1000():
    effect = Effect.from_record({"outcome": "emergency admissions", "method": "DiD",
                                 "estimate": -0.061, "ci_low": -0.104, "ci_high": -0.018,
                                 "scale": "difference", "per": 1})
    assert effect.change_per_1000() == pytest.approx((-61.0, -104.0, -18.0))
    assert effect.estimate_text() == f"{MINUS}61 (95% CI {MINUS}104 to {MINUS}18)"


def test_hazard_ratio_without_baseline_is_given_as_a_percentage():
    effect = Effect.from_record({"outcome": "emergency admissions", "method": "Cox",
                                 "estimate": 0.89, "ci_low": 0.80, "ci_high": 0.99,
                                 "scale": "HR"})
    head = describe_headline(effect, unit_cost=2500)
    assert head.change_per_1000 is None
    assert "The rate of emergency admissions was 11% lower among patients in the programme" \
        in head.sentence
    assert "hazard ratio 0.89 (95% CI 0.80 to 0.99)" in head.sentence
    assert "admission rate was not recorded" in head.conversion
    assert head.money is None


def test_hazard_ratio_conversion_says_what_it_assumes():
    effect = Effect.from_record({"outcome": "emergency admissions", "method": "Cox",
                                 "estimate": 0.89, "ci_low": 0.80, "ci_high": 0.99,
                                 "scale": "HR", "baseline_rate_per_1000": 480})
    head = describe_headline(effect)
    assert "the hazard ratio as a ratio of admission rates" in head.conversion
    assert "No cost per emergency admission was set" in head.money


def test_group_sizes_pass_through_disclosure_control():
    effect = rr(0.86, 0.78, 0.95, n_treated=1243, n_control=6)
    head = describe_headline(effect, unit_cost=2500, policy=DisclosurePolicy())
    assert "(1,245 enrolled patients)." in head.estimate
    assert "comparators" not in head.estimate  # 6 is suppressed, so not quoted at all
    assert "1,243" not in head.reach and "1,245 patients enrolled" in head.reach


@pytest.mark.parametrize(("value", "expected"), [
    (-67.2, "67 fewer"), (30.4, "30 more"), (0.2, "0.2 more"), (-0.04, "no change"),
    (-1234.0, "1,234 fewer"),
])
def test_change_words(value, expected):
    assert change_words(value) == expected


@pytest.mark.parametrize(("low", "high", "expected"), [
    (-105.6, -24.0, "24 to 106 fewer"),
    (5.0, 55.0, "5 to 55 more"),
    (-46.8, 39.0, "47 fewer to 39 more"),
    (0.0, 12.0, "no change to 12 more"),
])
def test_interval_words(low, high, expected):
    assert interval_words(low, high) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (168_000.0, "£168,000"), (12_500.0, "£13,000"), (2_549.0, "£2,500"), (2_550.0, "£2,600"),
    (455.0, "£460"), (-97_500.0, "£98,000"),
])
def test_fmt_gbp(value, expected):
    assert fmt_gbp(value) == expected


def test_pick_headline_prefers_the_flag_then_the_overall_effect():
    records = [
        {"outcome": "a", "method": "m", "estimate": 1.0, "ci_low": 0.9, "ci_high": 1.1,
         "scale": "RR", "subgroup": "frail"},
        {"outcome": "b", "method": "m", "estimate": 1.0, "ci_low": 0.9, "ci_high": 1.1,
         "scale": "RR"},
        {"outcome": "c", "method": "m", "estimate": 1.0, "ci_low": 0.9, "ci_high": 1.1,
         "scale": "HR"},
    ]
    assert pick_headline(read_effects(records)).outcome == "b"
    records[2]["headline"] = True
    assert pick_headline(read_effects(records)).outcome == "c"
    assert pick_headline([]) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"scale": "OR"}, "'scale' must be one of"),
    ({"estimate": 1.2}, "within [ci_low, ci_high]"),
    # (a null estimate is valid: "not estimable"; see tests/test_edge_cases.py)
    ({"estimate": "n/a"}, "'estimate' must be a number"),
    ({"ci_low": "low"}, "'ci_low' must be a number"),
    ({"ci_low": 0.0, "estimate": 0.5}, "must be positive"),
])
def test_bad_records_name_the_file_and_record(change, message):
    record = {"outcome": "x", "method": "m", "estimate": 0.9, "ci_low": 0.8, "ci_high": 1.0,
              "scale": "RR", **change}
    with pytest.raises(InputError, match="record 2") as info:
        read_effects([{**record, **{"scale": "RR", "estimate": 0.9, "ci_low": 0.8,
                                    "ci_high": 1.0}}, record])
    assert message in str(info.value)
    with pytest.raises(InputError, match="must hold a JSON list"):
        read_effects({"estimate": 1})


def test_time_to_event_outcome_is_worded_as_admissions():
    effect = Effect.from_record({"outcome": "time to first emergency admission",
                                 "method": "Cox", "estimate": 0.89, "ci_low": 0.80,
                                 "ci_high": 0.99, "scale": "HR", "baseline_rate_per_1000": 480})
    head = describe_headline(effect, unit_cost=2500)
    assert head.title == "Fewer emergency admissions"
    # 480 x (0.89 - 1) = -52.8; 480 x -0.20 = -96; 480 x -0.01 = -4.8.
    assert "about 53 fewer emergency admissions per 1,000 patients a year" in head.sentence
    assert "(95% confidence interval 5 to 96 fewer)" in head.sentence
