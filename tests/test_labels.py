"""Display labels: every machine name a stage writes reads as words."""

from __future__ import annotations

import re

import pytest

from phm_eval.labels import DES_EXPLANATIONS, LABELS, des_explanation, humanise_text, label, words

SNAKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")


@pytest.mark.parametrize(("kind", "key", "shown"), [
    ("outcome", "bed_days", "Emergency bed days"),
    ("outcome", "readmissions_30d", "Emergency readmissions within 30 days"),
    ("covariate", "sexF", "Sex: female"),
    ("covariate", "efi_groupfit/mild", "Frailty (eFI): fit or mild"),
    ("covariate", "index_month_code2020-11", "Index month: November 2020"),
    ("covariate", "recent_admissions_band3+", "Emergency admissions in the previous year: 3 or more"),
    ("covariate", "ltc_copd", "Long-term condition: COPD"),
    ("covariate", "distance", "Matching score (propensity)"),
    ("subgroup", "efi_group=fit/mild", "Frailty: fit or mild"),
    ("subgroup", "age_group=80+", "Age: 80 and over"),
    ("subgroup", "core20_group=Core20", "Deprivation: most deprived 20% of neighbourhoods (Core20)"),
    ("core20", "core20:core20", "Core20: most deprived 20% of neighbourhoods"),
    ("core20", "plus:any", "Any PLUS group"),
    ("core20", "adult_clinical_area:chronic_respiratory_disease",
     "Chronic respiratory disease (adults)"),
    ("core20", "children_clinical_area:asthma", "Asthma (children and young people)"),
    ("des_activity", "pcsp", "Personalised care and support plans"),
    ("estimand", "ITT population", "Effect on the whole eligible population"),
])
def test_known_names(kind, key, shown):
    assert label(kind, key) == shown


@pytest.mark.parametrize("key", ["n_frobnications_2y", "plus:new_local_group", "widget_count",
                                 "a_b_c", "efi_group=some_new_level", "x_30d"])
@pytest.mark.parametrize("kind", ["outcome", "covariate", "subgroup", "core20", "des_activity",
                                  "method", "no_such_kind"])
def test_unknown_names_still_read_as_words(kind, key):
    shown = label(kind, key)
    assert shown and not SNAKE.search(shown) and "=" not in shown
    assert shown[0].isupper()


def test_every_label_is_words():
    for kind, table in LABELS.items():
        for key, shown in table.items():
            assert not SNAKE.search(shown), (kind, key, shown)


def test_fallback_spells_out_prefixes_and_periods():
    assert words("n_emergency_admissions_1y") == "Number of emergency admissions in the previous year"
    assert words("x_30d") == "X within 30 days"
    assert label("outcome", None) == ""


def test_des_activities_are_explained():
    for key in ("pcsp", "smr", "pam", "social_prescribing_referral"):
        assert key in DES_EXPLANATIONS
    assert des_explanation("Structured medication reviews").startswith("Structured medication")
    assert des_explanation("unknown") is None


def test_free_text_is_humanised_but_paths_are_kept():
    text = humanise_text("Predictors: age, n_emergency_admissions_1y and ltc_copd; see "
                         "risk/model_card.md")
    assert "emergency admissions in the previous year" in text
    assert "long-term condition: COPD" in text
    assert "risk/model_card.md" in text


def test_figures_use_words():
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from phm_eval.did.plots import EVENT_STUDY_YLABEL, plot_aggte
    from phm_eval.matching.plots import love_plot
    from phm_eval.survival.plots import plot_step_curves

    balance = pd.DataFrame({"smd_before": [0.5, 0.1, 0.0], "smd_after": [0.01, 0.0, 0.0]},
                           index=["distance", "sexF", "index_month_code2020-11"])
    ax = love_plot(balance)
    assert {t.get_text() for t in ax.get_yticklabels()} == {
        "Matching score (propensity)", "Sex: female", "Index month: November 2020"}
    plt.close(ax.figure)
    agg = SimpleNamespace(egt=[-2, -1, 0, 1], att_egt=[0.0, 0.001, -0.004, -0.005],
                          se_egt=[0.001] * 4, crit_val_egt=1.96, type="dynamic")
    ax = plot_aggte(agg, ylabel=EVENT_STUDY_YLABEL, scale=1000)
    assert ax.get_ylabel() == "Change in emergency admissions per 1,000 person-months"
    assert ax.get_xlabel() == "Months since the programme started (0 = first month)"
    assert min(ax.get_ylim()) < -4  # shown per 1,000
    plt.close(ax.figure)
    assert "ATT" not in plot_aggte(agg).get_ylabel()
    plt.close("all")
    curves = pd.DataFrame({"group": ["a"] * 3, "time": [0, 1, 2], "estimate": [0, .1, .2]})
    ax = plot_step_curves(curves, ylabel="cumulative incidence of 1")
    assert ax.get_ylabel() == "Cumulative incidence of event type 1 (proportion)"
    assert ax.get_xlabel() == "Days of follow-up"
    plt.close(ax.figure)
