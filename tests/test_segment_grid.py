"""The 3x3 grid: every cell from hand-built patients, criteria, rates, disclosure and heat map."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from phm_eval.errors import InputError  # noqa: E402
from phm_eval.segment import AGE_GROUPS, NEED_GROUPS, grid_3x3, plot_grid  # noqa: E402

CONDITIONS = ("dementia", "learning_disability", "heart_failure")


def make_population(rows: list[dict]) -> pd.DataFrame:
    """A population frame with the columns segmentation reads; unspecified values default."""
    defaults = {
        "age": 40, "n_ltc": 0, "efi_category": None, "risk_rank": None,
        "emergency_admissions_followup": 0, "followup_days": 365, "died_followup": False,
        "prior_emergency_admissions": 0, "imd_decile": 5, "ethnicity": "White",
        "cancer_recent": False, "pregnancy": False, "autism": False, "smi": False,
        "copd": False, "ckd": False, "hypertension": False, "asthma": False,
        "diabetes": False, "epilepsy": False, **dict.fromkeys(CONDITIONS, False),
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame.insert(0, "patient_id", [f"P{i:03d}" for i in range(len(frame))])
    # Unranked patients rank after the ranked ones, in row order.
    ranks = frame["risk_rank"].astype(float)
    free = ranks.isna()
    start = int(ranks.max()) + 1 if ranks.notna().any() else 1
    ranks[free] = np.arange(start, start + free.sum())
    frame["risk_rank"] = ranks.astype(int)
    frame["efi_category"] = pd.Categorical(frame["efi_category"],
                                           categories=["fit", "mild", "moderate", "severe"],
                                           ordered=True)
    frame["imd_decile"] = frame["imd_decile"].astype("Int64")
    return frame


# 20 patients, so the top 5% by risk is exactly rank 1.
# The hand-built rows exercise each rule at these thresholds (the defaults are stricter).
RULES = {"grid": {"complex": {"min_chronic_ltc": 3, "top_risk_fraction": 0.05}}}

GRID_ROWS = [
    {"age": 5},                                                    # 0 child, well
    {"age": 17, "n_ltc": 1, "asthma": True},                       # 1 child, LTC (age edge)
    {"age": 12, "n_ltc": 1, "learning_disability": True},          # 2 child, complex (LD)
    {"age": 18},                                                   # 3 adult, well (age edge)
    {"age": 40, "n_ltc": 2, "emergency_admissions_followup": 1},   # 4 adult, LTC
    {"age": 50, "n_ltc": 3, "emergency_admissions_followup": 1},   # 5 adult, complex (3 LTC)
    {"age": 64, "n_ltc": 1, "efi_category": "severe"},             # 6 adult, LTC (eFI < 65)
    {"age": 30, "risk_rank": 1, "emergency_admissions_followup": 3},  # 7 adult, complex (risk)
    {"age": 65, "efi_category": "fit"},                            # 8 older, well (age edge)
    {"age": 70, "n_ltc": 1, "efi_category": "mild"},               # 9 older, LTC
    {"age": 80, "n_ltc": 1, "efi_category": "moderate",
     "emergency_admissions_followup": 2, "died_followup": True,
     "followup_days": 100},                                        # 10 older, complex (eFI)
    {"age": 85, "n_ltc": 1, "dementia": True},                     # 11 older, complex
    {"age": 75, "n_ltc": 1, "heart_failure": True},                # 12 older, complex
    {"age": 45, "n_ltc": 2},                                       # 13 adult, LTC
    *({"age": 30} for _ in range(6)),                              # 14-19 adults, well
]


def test_every_cell_and_reasons():
    pop = make_population(GRID_ROWS)
    result = grid_3x3(pop, RULES)
    seg = result.segments.set_index("patient_id")
    expected = {
        0: ("children_young_people", "generally_well"),
        1: ("children_young_people", "long_term_conditions"),
        2: ("children_young_people", "complex_needs"),
        3: ("adults", "generally_well"),
        4: ("adults", "long_term_conditions"),
        5: ("adults", "complex_needs"),
        6: ("adults", "long_term_conditions"),
        7: ("adults", "complex_needs"),
        8: ("older_people", "generally_well"),
        9: ("older_people", "long_term_conditions"),
        10: ("older_people", "complex_needs"),
        11: ("older_people", "complex_needs"),
        12: ("older_people", "complex_needs"),
    }
    for i, (age, need) in expected.items():
        row = seg.loc[f"P{i:03d}"]
        assert (row["age_group"], row["need_group"]) == (age, need), i
    assert seg.loc["P002", "complex_reasons"] == "learning_disability"
    assert seg.loc["P005", "complex_reasons"] == "multimorbidity"
    assert seg.loc["P007", "complex_reasons"] == "top_risk"
    assert seg.loc["P010", "complex_reasons"] == "frailty"
    assert seg.loc["P000", "complex_reasons"] == ""
    counts = result.counts()
    assert list(counts.index) == list(AGE_GROUPS) and list(counts.columns) == list(NEED_GROUPS)
    assert counts.to_numpy().tolist() == [[1, 1, 1], [7, 3, 2], [1, 1, 3]]
    assert counts.to_numpy().sum() == len(pop)


def test_cell_rates_and_totals():
    table = grid_3x3(make_population(GRID_ROWS), RULES).table
    adult_complex = table.loc["adults|complex_needs"]
    # Patients 5 and 7: 1 + 3 admissions among 2 people = 2,000 per 1,000.
    assert adult_complex["emergency_admissions"] == 4
    assert adult_complex["rate_per_1000"] == pytest.approx(2000.0)
    assert adult_complex["percent_of_population"] == pytest.approx(10.0)
    older = table.loc["older_people|complex_needs"]
    # 2 admissions; person-time 100 + 365 + 365 days.
    assert older["rate_per_1000_person_years"] == pytest.approx(2 / (830 / 365.25) * 1000)
    assert older["deaths"] == 1
    assert table.loc["all", "n_patients"] == 20
    assert table.loc["all", "emergency_admissions"] == 7
    assert table.loc["children_young_people|generally_well", "rate_per_1000"] == 0.0


def test_criteria_are_configurable():
    pop = make_population(GRID_ROWS)
    config = {"grid": {"complex": {"min_chronic_ltc": 4, "top_risk_fraction": None,
                                   "conditions": ["dementia"]}}}
    seg = grid_3x3(pop, config).segments.set_index("patient_id")
    assert seg.loc["P005", "need_group"] == "long_term_conditions"
    assert seg.loc["P007", "need_group"] == "generally_well"
    assert seg.loc["P012", "need_group"] == "long_term_conditions"
    assert seg.loc["P011", "need_group"] == "complex_needs"


def test_top_risk_fraction_uses_ceiling_of_share():
    pop = make_population([{"age": 30} for _ in range(41)])
    # ceil(0.05 * 41) = 3 ranks; ceil(0.02 * 41) = 1 (the default share).
    seg = grid_3x3(pop, {"grid": {"complex": {"top_risk_fraction": 0.05}}}).segments
    assert (seg["need_group"] == "complex_needs").sum() == 3
    assert (grid_3x3(pop).segments["need_group"] == "complex_needs").sum() == 1


def test_criteria_table():
    criteria = grid_3x3(make_population(GRID_ROWS), RULES).criteria.set_index("criterion")
    assert criteria.loc["condition", "n_patients"] == 3
    assert criteria.loc["frailty", "n_patients"] == 1
    assert criteria.loc["top_risk", "n_only_criterion"] == 1


def _bigger_population() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 3000
    age = rng.integers(0, 100, n)
    n_ltc = rng.poisson(np.clip(age / 40, 0.05, None))
    rows = [{"age": int(a), "n_ltc": int(k),
             "efi_category": ("moderate" if a > 80 and k > 2 else "fit") if a >= 65 else None,
             "emergency_admissions_followup": int(rng.poisson(0.05 + 0.08 * k))}
            for a, k in zip(age, n_ltc, strict=True)]
    return make_population(rows)


def test_disclosed_heat_map():
    result = grid_3x3(_bigger_population())
    disclosed = result.disclose()
    assert "person_years" not in disclosed.table.columns
    fig, ax = plt.subplots()
    out = plot_grid(disclosed, ax=ax)
    assert out is ax
    texts = [t.get_text() for t in ax.texts if t.get_text().startswith("n = ")]
    assert len(texts) == 9
    # Annotated counts are the disclosed (rounded) ones, never the true ones.
    shown = disclosed.table.drop(index="all")["n_patients"]
    for value in shown.dropna():
        assert any(f"n = {int(value):,}" in t for t in texts)
    assert all(int(v) % 5 == 0 for v in shown.dropna())
    plt.close(fig)


def test_heat_map_refuses_true_counts():
    result = grid_3x3(make_population(GRID_ROWS), RULES)
    with pytest.raises(InputError, match="disclosure"):
        plot_grid(result.table)
