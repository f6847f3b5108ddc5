"""The report read as a commissioner reads it: tables and sentences built from the files a
default run writes (found reading the default run's report), in words, said once, and true to
what ran."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phm_eval.disclosure import DisclosurePolicy
from phm_eval.report import blocks as b
from phm_eval.report.context import (
    _rtm_paragraphs,
    headline_section,
    methods_section,
    outcome_without_unit,
    pretrend_note_words,
    risk_section,
)
from phm_eval.report.effects import Effect, read_effects
from phm_eval.report.reader_text import reader_problems
from phm_eval.report.results import ResultsFolder

POLICY = DisclosurePolicy.from_config({"preset": "nhs_digital"})

#: segment/grid_3x3.csv as the segment stage writes it (a ``group`` key and machine values).
GRID = """group,age_group,need_group,n_patients,population,percent_of_population,emergency_admissions,rate_per_1000,deaths,deaths_per_1000
children_young_people|generally_well,children_young_people,generally_well,5020,29400,17.1,310,61.8,0,0
adults|long_term_conditions,adults,long_term_conditions,6230,29400,21.2,475,76.2,15,2.4
older_people|complex_needs,older_people,complex_needs,1455,29400,4.9,600,412.4,125,85.9
all,all,all,29400,29400,100,3045,103.6,290,9.9
"""

#: risk/subgroup_metrics.csv as the risk stage writes it.
RISK_GROUPS = """variable,group,n,events,observed_risk,mean_predicted_risk,oe_ratio,c_statistic,c_lower,c_upper,calibration_in_the_large,calibration_slope
sex,F,12000,1075,0.089,0.084,1.065,0.705,0.688,0.721,0.074,1.05
age_band,80+,1575,355,0.226,0.221,1.022,0.659,0.626,0.691,0.031,0.839
ethnicity,Asian,5945,470,0.079,0.076,1.04,0.694,0.669,0.72,0.045,1.054
imd_quintile,unknown,115,10,0.104,0.107,0.975,0.641,0.434,0.847,-0.03,0.78
"""

#: evaluate/rtm.csv as the evaluate stage writes it: one row per arm.
RTM = """arm,patients,admissions_before,admissions_after,rate_before_per_1000,rate_after_per_1000,change_per_1000
matched comparators,550,535,250,984.6,506.5,-478.1
enrolled,550,545,210,1008.2,402.7,-605.6
"""

PRIMARY = {"outcome": "emergency admissions", "label": "emergency admissions, rate ratio",
           "method": "negative binomial rate ratio (matched, adjusted)", "scale": "RR",
           "estimate": 0.74, "ci_low": 0.59, "ci_high": 0.94, "n_treated": 550,
           "n_control": 550, "baseline_rate_per_1000": 502.0, "estimand": "ATT enrolled",
           "primary": True, "mde_rate_ratio": 0.70,
           "mde_sentence": "this evaluation could reliably detect a reduction of 30 % or more "
                           "(a rate ratio of 0.70 or lower, with 80 % power)"}
DID = {"outcome": "emergency admissions per 1,000 person-years",
       "method": "difference in differences (matched, before vs after)", "scale": "difference",
       "estimate": -123.4, "ci_low": -283.0, "ci_high": 36.2, "n_treated": 550,
       "n_control": 550, "estimand": "ATT enrolled"}
NOTE = ("only 4 practices to cluster on, too few to measure the uncertainty of a roll-out "
        "(several adopting and several comparison units are needed)")
ITT = {"outcome": "emergency admissions",
       "method": "population difference in differences (Callaway & Sant'Anna, staggered "
                 "adoption, clustered on practice); rate ratio = treated rate / (treated rate "
                 "- ATT), delta method on the log",
       "scale": "RR", "estimate": 0.86, "ci_low": None, "ci_high": None, "n_treated": 965,
       "n_control": 445, "estimand": "ITT population", "unit": "practice", "note": NOTE,
       "mde_rate_ratio": 0.54,
       "mde_sentence": "this evaluation could reliably detect a reduction of 46 % or more (a "
                       "rate ratio of 0.54 or lower, with 80 % power)"}


def _folder(tmp_path: Path, files: dict[str, str]) -> ResultsFolder:
    for relative, text in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return ResultsFolder(tmp_path)


def _cells(block: dict) -> list[str]:
    return [block["caption"], *block["columns"], *(c for row in block["rows"] for c in row)]


def test_grid_and_risk_group_tables_hold_words_not_machine_names(tmp_path):
    results = _folder(tmp_path, {"segment/grid_3x3.csv": GRID,
                                 "risk/subgroup_metrics.csv": RISK_GROUPS})
    grid = b.table_from_csv(results, "segment/grid_3x3.csv", "Grid.", POLICY, drop=("group",))
    groups = b.table_from_csv(results, "risk/subgroup_metrics.csv", "Groups.", POLICY)
    for block in (grid, groups):
        assert block["kind"] == "table"
        assert reader_problems(_cells(block)) == []
    assert grid["rows"][0][:2] == ["Children and young people", "Generally well"]
    assert grid["rows"][1][1] == "Long-term conditions"
    assert "c-statistic, 95% CI from" in groups["columns"]
    assert [row[1] for row in groups["rows"]] == ["Female", "80 and over", "Asian", "Not known"]


def test_rtm_table_of_arms_gives_the_regression_to_the_mean_paragraph(tmp_path):
    text = _rtm_paragraphs(pd.read_csv(pd.io.common.StringIO(RTM)),
                           read_effects([PRIMARY, DID]))[0]["text"]
    assert "shows 606 fewer emergency admissions per 1,000 patients a year" in text
    assert "Matched patients who were not enrolled had 478 fewer" in text
    assert "regression to the mean" in text
    assert "is 123 fewer per 1,000 a year (95% CI 283 fewer to 36 more)" in text
    results = _folder(tmp_path, {"evaluate/rtm.csv": RTM})
    table = b.table_from_csv(results, "evaluate/rtm.csv", "RTM.", POLICY)
    assert table["columns"][0] == "Group" and table["rows"][1][0] == "Enrolled patients"
    assert reader_problems(_cells(table)) == []


def test_risk_metrics_table_has_plain_labels_and_no_sample_sizes(tmp_path):
    metrics = ('{"c_statistic": {"estimate": 0.692, "ci_low": 0.676, "ci_high": 0.704}, '
               '"calibration_intercept": {"estimate": 0.1, "ci_low": -0.08, "ci_high": 0.26}, '
               '"calibration_in_the_large": {"estimate": 0.06, "ci_low": 0.0, "ci_high": 0.11},'
               ' "r2_nagelkerke": {"estimate": 0.09, "ci_low": 0.08, "ci_high": 0.1}, '
               '"c_statistic_delong": {"estimate": 0.692, "ci_low": 0.679, "ci_high": 0.704}, '
               '"design": "temporal validation", "development_index_date": "2020-04-01", '
               '"validation_index_date": "2021-04-01", "n_development": 23541}')
    section = risk_section(_folder(tmp_path, {"risk/metrics.json": metrics}), POLICY)
    table = next(blk for blk in section["blocks"] if blk["kind"] == "table")
    measures = [row[0] for row in table["rows"]]
    assert measures == ["c-statistic (discrimination)", "Calibration intercept (slope estimated)",
                        "Calibration-in-the-large (slope fixed at 1)", "Nagelkerke R\u00b2",
                        "c-statistic, DeLong interval"]
    assert not any("23,541" in cell for row in table["rows"] for cell in row)
    words = next(blk["text"] for blk in section["blocks"] if blk["kind"] == "p")
    assert words.startswith("The model was checked by temporal validation (developed on")


def test_methods_in_brief_say_what_ran_not_what_was_configured():
    config = {"risk": {"model": "penalised_logistic", "cluster": "pcn_id",
                       "development_index_date": "2020-04-01",
                       "validation_index_date": "2021-04-01"},
              "evaluate": {"matching": {"ratio": 1, "caliper": 0.2, "exact": ["sex"]}}}
    metrics = {"internal_external": {"cluster": "practice_id", "requested_cluster": "pcn_id"}}
    items = " ".join(methods_section(config, POLICY, metrics, read_effects([PRIMARY, ITT]),
                                     {"p_value": None, "note": "singular covariance"},
                                     [PRIMARY, ITT])["blocks"][0]["items"])
    assert "penalised (ridge) logistic regression" in items
    assert "leaving out one practice at a time" in items and "by PCN" not in items
    assert "matched to one similar patient not (yet) enrolled" in items
    assert "patient(s)" not in items
    assert "roll-out across practices" in items
    assert "the check of trends before roll-out could not be made" in items
    # No population record: no staggered design is described.
    items = " ".join(methods_section(config, POLICY, metrics, read_effects([PRIMARY]), None,
                                     [PRIMARY])["blocks"][0]["items"])
    assert "Callaway" not in items


def test_first_screen_says_each_thing_once(tmp_path):
    section, _ = headline_section(_folder(tmp_path, {}), read_effects([PRIMARY, ITT]),
                                  {"report": {"unit_cost_emergency_admission": 2500}}, POLICY)

    def texts(blocks):
        for blk in blocks:
            if blk["kind"] == "facts":
                yield from (item["value"] for item in blk["items"])
            elif blk["kind"] == "details":
                yield from texts(blk["blocks"])
            elif "text" in blk:
                yield blk["text"]

    text = " ".join(texts(section["blocks"]))
    assert text.count("a year of hospital costs avoided per 1,000 patients") == 1
    assert text.count(NOTE) == 1  # the reason the population interval is missing, once
    assert "30% or more" in text and " %" not in text
    # No claim of what a design could detect when its interval could not be estimated.
    assert "46%" not in text


def test_reasons_and_units_read_as_words():
    words = pretrend_note_words("singular covariance of the pre-adoption coefficients", 4)
    assert words.startswith("with only 4 units to compare, the months before adoption")
    assert outcome_without_unit("emergency admissions per 1,000 person-months") == \
        "emergency admissions"
    effect = Effect.from_record(ITT)
    assert effect.estimate_text(with_reason=False) == "0.86 (95% CI not estimable)"
    assert "rate ratio = " not in effect.method_words()


def test_validation_fallback_note_counts_in_words():
    from phm_eval.risk.develop import RiskModelConfig, choose_iecv_cluster, example_risk_features

    two_pcns = example_risk_features(3000, seed=1, n_practices=6, practices_per_pcn=3)
    note = choose_iecv_cluster(two_pcns, RiskModelConfig()).note
    assert "2 PCNs, 2 with at least" in note and "(s)" not in note


def test_model_card_names_predictors_groups_and_validation_unit_in_words(tmp_path):
    from phm_eval.risk.develop import RiskModelConfig, develop_risk_model, example_risk_features

    two_pcns = example_risk_features(3000, seed=1, n_practices=6, practices_per_pcn=3)
    develop_risk_model(two_pcns, RiskModelConfig(n_bootstrap=0, n_optimism_bootstrap=0),
                       output_dir=tmp_path)
    card = (tmp_path / "model_card.md").read_text()
    predictors = card[card.index("## Predictors"):card.index("## Sample size")]
    assert "_" not in predictors and "hfrs" not in predictors
    assert "Hospital Frailty Risk Score" in predictors
    assert "### Internal-external cross-validation by practice" in card
    assert "CITL" not in card and "PPV" not in card and "Emax 0" not in card
    subgroups = card[card.index("## Performance by subgroup"):]
    assert "| sex |" not in subgroups and "| Sex | Female |" in subgroups


def test_small_rates_and_unestimable_analyses_read_plainly(tmp_path):
    check = ('{"n_replicates": 200, "true_rate_ratio": 0.85, "targets": ['
             '{"rate_ratio": 1.0, "power": 0.005, "mc_se_power": 0.005, "coverage": 0.95, '
             '"bias_log": 0.002}, {"rate_ratio": 0.85, "power": 0.285, "coverage": 0.95}]}')
    section, _ = headline_section(_folder(tmp_path, {"evaluate/design_check.json": check}),
                                  read_effects([PRIMARY]), {}, POLICY)
    table = next(blk for d in section["blocks"] if d["kind"] == "details"
                 for blk in d["blocks"] if blk["kind"] == "table")
    assert table["rows"][0][1] == "0.5"  # as the sentence says, not "0"
    assert ": the rate of emergency admissions compared with matched similar patients, " \
        "adjusted for differences at baseline" in " ".join(
            blk.get("text", "") for blk in section["blocks"])

    from phm_eval.report.manuscript_text import RunRecord, not_estimable_text

    run = RunRecord(config={}, manifest=None, records=[ITT], effects=read_effects([ITT]),
                    metrics=None, pretrend=None, truth=None, rtm=None, balance=None,
                    available=set(), policy=POLICY, synthetic=True)
    text = not_estimable_text(run)
    assert NOTE in text and "rate ratio = " not in text


def test_each_estimate_is_shown_with_its_own_designs_check(tmp_path):
    """design_check.json holds the matched design's check at its top level and the population
    design's under ``itt``: the primary estimate gets its own design's check, the other
    estimate its own power, never the other design's."""
    import json

    check = {"n_replicates": 50, "true_rate_ratio": 0.85, "estimand": "ATT enrolled",
             "targets": [{"rate_ratio": 1.0, "power": 0.02, "coverage": 0.96},
                         {"rate_ratio": 0.85, "power": 0.61, "coverage": 0.94}],
             "itt": {"n_replicates": 50, "true_rate_ratio": 0.93, "estimand": "ITT population",
                     "targets": [{"rate_ratio": 1.0, "power": 0.04, "coverage": 0.93},
                                 {"rate_ratio": 0.93, "power": 0.27, "coverage": 0.95}]}}
    itt = dict(ITT, estimate=0.93, ci_low=0.85, ci_high=1.02, note=None, primary=True,
               n_units_treated=15, n_units_control=7)
    enrolled = dict(PRIMARY, primary=False)
    folder = _folder(tmp_path, {"evaluate/design_check.json": json.dumps(check)})
    section, _ = headline_section(folder, read_effects([itt, enrolled]), {}, POLICY)
    paragraphs = [blk.get("text", "") for blk in section["blocks"]]
    design = next(t for t in paragraphs if t.startswith("The design was checked"))
    assert "which units adopted when was re-drawn" in design
    assert "(0.93), the evaluation detected the effect in 27% of simulations" in design
    assert "61%" not in design
    other = next(blk for blk in section["blocks"] if blk["kind"] == "callout")
    assert "(0.85), the evaluation detected the effect in 61% of simulations" in other["text"]
    table = next(blk for d in section["blocks"] if d["kind"] == "details"
                 for blk in d["blocks"] if blk["kind"] == "table")
    assert [row[0] for row in table["rows"]] == ["1.00", "0.93"]
