"""Risk tiers: sizes at the boundaries, deterministic ties, utilisation tie-breakers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import ConfigError, InputError
from phm_eval.segment import risk_tiers, tier_labels, tier_sizes


def test_labels_and_sizes():
    assert tier_labels((0.005, 0.05, 0.20)) == ["top 0.5%", "0.5-5%", "5-20%", "rest"]
    # ceil(c * n): 1000 patients give 5, 50 and 200 in the tiers above each cut.
    assert tier_sizes(1000, (0.005, 0.05, 0.20)) == [5, 50, 200]
    # 0.05 * 200 is 10.000000000000002 in floating point; it must not round up to 11.
    assert tier_sizes(200, (0.005, 0.05, 0.20)) == [1, 10, 40]
    assert tier_sizes(1001, (0.005, 0.05, 0.20)) == [6, 51, 201]


def test_tier_boundaries_exact_counts():
    n = 1000
    scores = pd.Series(np.arange(n, 0, -1) / n, index=[f"p{i:04d}" for i in range(n)])
    out = risk_tiers(scores)
    counts = out["risk_tier"].value_counts()
    assert counts["top 0.5%"] == 5
    assert counts["0.5-5%"] == 45
    assert counts["5-20%"] == 150
    assert counts["rest"] == 800
    by_rank = out.set_index("risk_rank")["risk_tier"]
    assert by_rank[5] == "top 0.5%" and by_rank[6] == "0.5-5%"
    assert by_rank[50] == "0.5-5%" and by_rank[51] == "5-20%"
    assert by_rank[200] == "5-20%" and by_rank[201] == "rest"


def test_ties_split_by_patient_id():
    # 20 patients, cut points 10% and 50%: top tier = 2 ranks, next = ranks 3-10.
    ids = [f"p{i:02d}" for i in range(20)]
    scores = pd.Series([0.9] * 3 + [0.5] * 17, index=ids[::-1])  # ids in reverse order
    out = risk_tiers(scores, cut_points=(0.1, 0.5)).set_index("patient_id")
    # The three tied at 0.9 are p19, p18, p17; ascending patient_id puts p17 and p18 first.
    assert out.loc["p17", "risk_rank"] == 1 and out.loc["p18", "risk_rank"] == 2
    assert out.loc["p19", "risk_rank"] == 3
    assert out.loc[["p17", "p18"], "risk_tier"].eq("top 10%").all()
    assert out.loc["p19", "risk_tier"] == "10-50%"
    assert (out["risk_tier"] == "top 10%").sum() == 2


def test_keep_ties_moves_whole_group_up():
    ids = [f"p{i:02d}" for i in range(20)]
    scores = pd.Series([0.9] * 3 + [0.5] * 17, index=ids)
    out = risk_tiers(scores, cut_points=(0.1, 0.5), keep_ties=True).set_index("patient_id")
    assert (out["risk_tier"] == "top 10%").sum() == 3
    # The 0.5 group starts at rank 4 (inside 10-50%), so all 17 join that tier.
    assert (out["risk_tier"] == "10-50%").sum() == 17


def test_result_does_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "patient_id": [f"id{i:03d}" for i in range(300)],
            "prior_emergency_admissions": rng.integers(0, 3, 300),
            "prior_emergency_bed_days": rng.integers(0, 5, 300),
            "age": rng.integers(0, 100, 300),
        }
    )
    first = risk_tiers(frame).set_index("patient_id").sort_index()
    second = risk_tiers(frame.sample(frac=1, random_state=1)).set_index("patient_id").sort_index()
    pd.testing.assert_frame_equal(first, second)


def test_utilisation_keys_break_ties_in_order():
    frame = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "d", "e"],
            "prior_emergency_admissions": [1, 2, 1, 1, 0],
            "prior_emergency_bed_days": [3, 0, 3, 5, 30],
            "age": [80, 20, 90, 10, 99],
        }
    )
    out = risk_tiers(frame, cut_points=(0.2, 0.6)).set_index("patient_id")
    # Admissions first (b), then bed days (d), then age (c before a), then e (no admissions).
    assert out["risk_rank"].to_dict() == {"b": 1, "d": 2, "c": 3, "a": 4, "e": 5}
    # ceil(0.2 * 5) = 1 and ceil(0.6 * 5) = 3 ranks.
    assert out["risk_tier"].tolist() == ["rest", "top 20%", "20-60%", "20-60%", "rest"]


def test_missing_scores_rank_last():
    scores = pd.Series([np.nan, 0.1, 0.2], index=["a", "b", "c"])
    out = risk_tiers(scores, cut_points=(0.34,)).set_index("patient_id")
    assert out["risk_rank"].to_dict() == {"c": 1, "b": 2, "a": 3}


def test_invalid_input():
    with pytest.raises(ConfigError):
        risk_tiers(pd.Series([0.1, 0.2], index=["a", "b"]), cut_points=(0.2, 0.1))
    with pytest.raises(ConfigError):
        risk_tiers(pd.Series([0.1], index=["a"]), cut_points=(1.5,))
    with pytest.raises(InputError):
        risk_tiers(pd.DataFrame({"patient_id": ["a", "a"], "s": [1, 2]}))
