"""Rounding, primary and secondary suppression, rates and statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.disclosure import (
    DisclosurePolicy,
    apply_disclosure,
    check_table,
    disclose_counts,
    round_midpoint,
    round_nearest,
)
from phm_eval.errors import ConfigError

NHS = DisclosurePolicy()


@pytest.mark.parametrize(
    ("true", "shown"),
    [(0, 0.0), (1, np.nan), (7, np.nan), (8, 10.0), (12, 10.0), (13, 15.0), (22, 20.0),
     (23, 25.0), (1000, 1000.0), (1002, 1000.0), (1003, 1005.0)],
)
def test_nhs_digital_counts(true, shown):
    values, suppressed = disclose_counts([true], NHS)
    np.testing.assert_equal(values[0], shown)
    assert suppressed[0] == (1 <= true <= 7)


@pytest.mark.parametrize(
    ("true", "shown"),
    [(0, 0), (1, 3), (6, 3), (7, 9), (12, 9), (13, 15), (18, 15), (19, 21), (600, 597)],
)
def test_midpoint6(true, shown):
    assert round_midpoint([true], 6)[0] == shown


def test_midpoint6_policy_keeps_small_counts_as_3():
    policy = DisclosurePolicy.preset("opensafely_midpoint6")
    values, suppressed = disclose_counts([0, 1, 6, 7, 12, 13], policy)
    np.testing.assert_array_equal(values, [0, 3, 3, 9, 9, 15])
    assert not suppressed.any()


def test_round_nearest_halves_go_up_not_to_even():
    np.testing.assert_array_equal(round_nearest([5, 15, 25], 10), [10, 20, 30])


def test_opensafely_preset_redacts_7_and_rounds():
    policy = DisclosurePolicy.preset("opensafely")
    values, _ = disclose_counts([5, 7, 8, 13], policy)
    np.testing.assert_array_equal(values, [np.nan, np.nan, 10, 15])
    assert policy.statistic_threshold == 5


def test_policy_from_config_and_errors():
    policy = DisclosurePolicy.from_config({"preset": "opensafely", "threshold": 10})
    assert (policy.threshold, policy.statistic_threshold) == (10, 5)
    assert DisclosurePolicy.from_config(None) == DisclosurePolicy()
    with pytest.raises(ConfigError, match="unknown disclosure setting"):
        DisclosurePolicy.from_config({"treshold": 5})
    with pytest.raises(ConfigError, match="rounding"):
        DisclosurePolicy.from_config({"rounding": "banker"})
    with pytest.raises(ConfigError, match="preset"):
        DisclosurePolicy.from_config({"preset": "nope"})
    assert DisclosurePolicy.from_config(policy.to_dict()) == policy


def test_percentages_are_recomputed_from_rounded_counts():
    df = pd.DataFrame({"frail": [12, 48], "registered": [33, 102], "pct": [36.36, 47.06]})
    out = apply_disclosure(
        df, count_cols=["frail"], denominator_cols=["registered"],
        rate_cols={"pct": ("frail", "registered", 100)},
    ).table
    # 12 -> 10 and 33 -> 35, so 10/35, not the true 12/33.
    np.testing.assert_allclose(out["pct"], [100 * 10 / 35, 100 * 50 / 100], rtol=1e-12)
    assert out["frail"].tolist() == [10, 50]


def test_rate_per_person_time_uses_person_time_as_given():
    df = pd.DataFrame({"admissions": [3, 44], "person_years": [120.5, 800.0]})
    out = apply_disclosure(
        df, count_cols=["admissions"],
        rate_cols={"per_1000_py": ("admissions", "person_years", 1000)},
    )
    assert np.isnan(out.table.loc[0, "per_1000_py"])
    assert out.suppressed.loc[0, "per_1000_py"]
    np.testing.assert_allclose(out.table.loc[1, "per_1000_py"], 45 / 800 * 1000)


def test_means_from_fewer_than_8_people_are_suppressed():
    df = pd.DataFrame(
        {"n": [7, 8, 30], "mean_age": [81.2, 79.0, 74.4], "median_efi": [0.2, 0.25, 0.1]}
    )
    out = apply_disclosure(df, stat_cols={"mean_age": "n", "median_efi": "n"})
    assert np.isnan(out.table.loc[0, "mean_age"]) and np.isnan(out.table.loc[0, "median_efi"])
    assert out.table.loc[1, "mean_age"] == 79.0
    assert out.table["n"].tolist()[1:] == [10, 30]
    assert pd.isna(out.table.loc[0, "n"])
    assert out.formatted().loc[0, "mean_age"] == "*"
    assert (out.log["rule"] == "statistic describes 7 or fewer people").sum() == 2


def test_statistic_threshold_is_configurable():
    df = pd.DataFrame({"n": [6], "mean_age": [70.0]})
    policy = DisclosurePolicy.preset("opensafely", threshold=0)
    # OpenSAFELY: no statistic may describe 5 or fewer patients, so 6 people is enough.
    assert apply_disclosure(df, policy, stat_cols={"mean_age": "n"}).table.loc[0, "mean_age"] == 70


def test_secondary_suppression_one_dimensional_total():
    df = pd.DataFrame(
        {"patients": [3, 25, 14, 60, 102]}, index=["0-15", "16-64", "65-74", "75+", "Total"]
    )
    out = apply_disclosure(df, count_cols=["patients"], total_row="Total")
    hidden = out.suppressed["patients"]
    # 3 is primary; 14 is the smallest other cell, so it goes too; the total stays.
    assert hidden.tolist() == [True, False, True, False, False]
    assert out.table.loc["Total", "patients"] == 100
    assert out.log["rule"].str.startswith("secondary").sum() == 1


def test_secondary_suppression_row_needs_second_cell():
    # Row "PCN 1" has one small cell and a visible row total.
    df = pd.DataFrame(
        {"fit": [40, 52], "mild": [20, 31], "moderate": [9, 14], "severe": [4, 11],
         "total": [73, 108]},
        index=["PCN 1", "PCN 2"],
    )
    out = apply_disclosure(df, count_cols=["fit", "mild", "moderate", "severe"],
                           total_col="total")
    assert out.suppressed.loc["PCN 1"].tolist() == [False, False, True, True, False]
    assert not out.suppressed.loc["PCN 2"].any()


def test_secondary_suppression_two_way_table_with_margins_chains_rows_and_columns():
    df = pd.DataFrame(
        {
            "fit": [120, 80, 60, 260],
            "mild": [5, 40, 30, 75],
            "severe": [50, 20, 12, 82],
            "total": [175, 140, 102, 417],
        },
        index=["PCN 1", "PCN 2", "PCN 3", "Total"],
    )
    out = apply_disclosure(
        df, count_cols=["fit", "mild", "severe"], total_col="total", total_row="Total"
    )
    hidden = out.suppressed[["fit", "mild", "severe", "total"]]
    # Primary: 5 (PCN 1, mild).  Row PCN 1: next smallest is 50 (severe).
    # Column mild now has one hidden cell: its smallest visible non-zero is 30 (PCN 3).
    # Column severe has one hidden cell: its smallest visible is 12 (PCN 3).
    # Row PCN 3 then has two hidden cells (30 + 12 > 7): safe.
    expected = pd.DataFrame(
        {"fit": [False] * 4, "mild": [True, False, True, False],
         "severe": [True, False, True, False], "total": [False] * 4},
        index=df.index,
    )
    pd.testing.assert_frame_equal(hidden, expected)
    _assert_no_cell_recoverable(df, hidden, ["fit", "mild", "severe"], "total", "Total")
    assert check_table(out.formatted(), count_cols=["fit", "mild", "severe", "total"]) == []


def test_two_small_cells_summing_to_threshold_or_less_need_a_third():
    df = pd.DataFrame({"n": [1, 2, 40, 55, 98]}, index=list("abcd") + ["Total"])
    out = apply_disclosure(df, count_cols=["n"], total_row="Total")
    assert out.suppressed["n"].tolist() == [True, True, True, False, False]


def test_lone_hidden_cell_next_to_zeros_hides_the_total():
    df = pd.DataFrame({"a": [4, 20, 24], "b": [0, 30, 30], "total": [4, 50, 54]},
                      index=["x", "y", "Total"])
    out = apply_disclosure(df, count_cols=["a", "b"], total_col="total", total_row="Total")
    # Row x: 4 (hidden) and 0; the row total 4 is small so it is hidden too.
    assert out.suppressed.loc["x", "total"]
    _assert_no_cell_recoverable(df, out.suppressed, ["a", "b"], "total", "Total")


def test_secondary_suppression_can_be_switched_off():
    df = pd.DataFrame({"n": [3, 25, 28]}, index=["a", "b", "Total"])
    policy = DisclosurePolicy(secondary_suppression=False)
    out = apply_disclosure(df, policy, count_cols=["n"], total_row="Total")
    assert out.suppressed["n"].tolist() == [True, False, False]


def test_log_never_holds_true_values():
    df = pd.DataFrame({"n": [3, 1234]})
    out = apply_disclosure(df, count_cols=["n"])
    text = out.log.to_csv()
    assert "1234" not in text and "3" not in out.log["rule"].str.cat()


def test_formatted_and_csv_round_trip(tmp_path):
    df = pd.DataFrame({"n": [2, 41], "mean_age": [70.0, 71.5]}, index=["a", "b"])
    out = apply_disclosure(df, stat_cols={"mean_age": "n"})
    path = out.to_csv(tmp_path / "t.csv")
    text = path.read_text()
    assert text.splitlines() == [",n,mean_age", "a,*,*", "b,40,71.5"]
    assert (tmp_path / "t.sdc.json").exists()


def test_bad_arguments():
    df = pd.DataFrame({"n": [-1, 3]})
    with pytest.raises(ValueError, match="negative"):
        apply_disclosure(df, count_cols=["n"])
    with pytest.raises(ValueError, match="not in the table"):
        apply_disclosure(df, count_cols=["m"])


def _assert_no_cell_recoverable(df, hidden, cells, total_col, total_row):
    """Brute force: no line with a shown total has exactly one hidden cell."""
    body = [r for r in df.index if r != total_row]
    for r in list(body) + [total_row]:
        if not hidden.loc[r, total_col]:
            assert hidden.loc[r, cells].sum() != 1, r
    for c in [*cells, total_col]:
        if not hidden.loc[total_row, c]:
            assert hidden.loc[body, c].sum() != 1, c
