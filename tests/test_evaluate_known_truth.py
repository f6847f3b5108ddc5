"""The enrolled-patient effect against the synthetic truth, over several seeds, in the fast suite.

Small simulated PCNs (20,000 patients, enrolment within 60 days of adoption, as the slow
coverage study) of the effect (rate ratio 0.85), null and heterogeneous scenarios are
simulated and evaluated once per module. The tests bound the bias of the headline over seeds
and require two-sided coverage: too few intervals containing the truth, or estimates on one
side of it, fail. A wrong design (no person-time offset, comparators followed after their
practice adopts, the DiD's weights changed, ...) moves the estimates beyond these bounds or
breaks the pipeline checks below (docs/validation/mutation-check.md).

The pipeline checks use the same runs: the headline is the adjusted, matched-set-clustered
model; every matched estimate states its clusters; the matched sets are exact on the index
month, recent-admission band and frailty group; comparators' follow-up stops at their
practice's adoption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.evaluate import effects as fx
from phm_eval.evaluate.event_study import event_study
from phm_eval.evaluate.pipeline import ADJUSTMENT, CLUSTER, evaluate_programme
from phm_eval.synth import simulate

STUDY_END = "2024-03-31"
TABLES = ("patients", "events", "admissions", "practices", "interventions", "rollout")
N_PATIENTS = 20000
SEEDS = {"pcn": (11, 12, 13, 14, 15, 16), "pcn_null": (21, 22, 23, 24),
         "pcn_heterogeneous": (31,)}


def _run(root, scenario: str, seed: int) -> dict:
    sim = simulate(scenario, out=root / f"{scenario}_{seed}", seed=seed, n_patients=N_PATIENTS,
                   overrides={"programme": {"enrolment_window_days": 60}})
    tables = {t: sim.out / f"{t}.parquet" for t in TABLES}
    result = evaluate_programme(tables, "proactive_care", STUDY_END, seed=seed,
                                subgroups=False, event_study_panel=False)
    return {"scenario": scenario, "seed": seed, "truth": sim.truth, "result": result,
            "tables": tables}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("known_truth")
    return [_run(root, scenario, seed) for scenario, seeds in SEEDS.items() for seed in seeds]


def _of(runs: list[dict], scenario: str) -> list[dict]:
    return [r for r in runs if r["scenario"] == scenario]


def _log_rr(record: dict) -> tuple[float, float]:
    """Log estimate and its SE from the 95 % interval."""
    se = (np.log(record["ci_high"]) - np.log(record["ci_low"])) / (2 * 1.959963985)
    return float(np.log(record["estimate"])), float(se)


def _record(result, method_start: str) -> dict:
    return next(r for r in result.records if r["method"].startswith(method_start))


# ------------------------------------------------------------------------------------------
# Known truth
# ------------------------------------------------------------------------------------------

def test_effect_scenario_headline_is_unbiased_and_covers_over_seeds(runs):
    effect = _of(runs, "pcn")
    truth = np.log(effect[0]["truth"]["true_effect"]["hazard_ratio"])
    est = np.array([_log_rr(r["result"].headline) for r in effect])
    z = (est[:, 0] - truth) / est[:, 1]
    # SD of one log RR at this size is about 0.2 (docs/evaluation.md), so the mean of 6 has an
    # SD of about 0.08: 0.2 is 2.4 SDs.
    assert abs(est[:, 0].mean() - truth) < 0.2, est[:, 0]
    assert abs(z.mean()) < 1.2, z  # mean of 6 z-scores: SD 0.41 if unbiased with right SEs
    covered = [r["result"].headline["ci_low"] < np.exp(truth) < r["result"].headline["ci_high"]
               for r in effect]
    assert sum(covered) >= len(effect) - 1, covered
    # Two-sided: the estimates are not all on one side of the truth
    assert (z < 0).any() and (z > 0).any() or abs(z).max() < 1, z


def test_null_scenario_headline_is_centred_on_one(runs):
    null = _of(runs, "pcn_null")
    est = np.array([_log_rr(r["result"].headline) for r in null])
    assert abs(est[:, 0].mean()) < 0.25, est[:, 0]  # mean of 4: SD about 0.1
    assert abs((est[:, 0] / est[:, 1]).mean()) < 1.5
    covered = [r["result"].headline["ci_low"] < 1 < r["result"].headline["ci_high"]
               for r in null]
    assert sum(covered) >= len(null) - 1, covered


def test_heterogeneous_scenario_covers_the_realised_rate_ratio(runs):
    (run,) = _of(runs, "pcn_heterogeneous")
    realised = run["truth"]["realised"]["realised_rate_ratio_12m"]
    head = run["result"].headline
    assert realised < 1 and head["ci_low"] < realised < head["ci_high"]


def test_difference_in_differences_covers_the_realised_change(runs):
    diffs, covered = [], []
    for run in runs:
        did = _record(run["result"], "difference in differences (matched")
        realised = run["truth"]["realised"]["att_admissions_per_1000_person_years_12m"]
        se = (did["ci_high"] - did["ci_low"]) / (2 * 1.96)
        diffs.append((did["estimate"] - realised) / se)
        covered.append(did["ci_low"] < realised < did["ci_high"])
    assert sum(covered) >= len(runs) - 1, covered
    assert abs(np.mean(diffs)) < 1.0, diffs  # 11 runs: SD of the mean z about 0.3


def test_naive_before_after_is_biased_and_the_controlled_estimate_is_not(runs):
    for run in _of(runs, "pcn") + _of(runs, "pcn_null"):
        naive = _record(run["result"], "naive before/after")
        assert naive["estimate"] < 0.7  # regression to the mean, in both scenarios


# ------------------------------------------------------------------------------------------
# The pipeline uses the design it documents
# ------------------------------------------------------------------------------------------

def test_headline_is_the_adjusted_model_clustered_on_matched_sets(runs):
    for run in runs[:2]:
        analysed, head = run["result"].analysed, run["result"].headline
        again = fx.rate_ratio(analysed, adjust=ADJUSTMENT, cluster="match_cluster")
        assert head["estimate"] == pytest.approx(again.estimate, rel=1e-9)
        assert head["ci_low"] == pytest.approx(again.ci_low, rel=1e-9)
        assert "adjusted" in head["method"]
        unadjusted = fx.rate_ratio(analysed, cluster="match_cluster")
        assert head["estimate"] != pytest.approx(unadjusted.estimate, rel=1e-6)
        by_person = fx.rate_ratio(analysed, adjust=ADJUSTMENT, cluster="patient_id")
        assert head["ci_low"] != pytest.approx(by_person.ci_low, rel=1e-9)


def test_every_matched_estimate_states_its_matched_set_clusters(runs):
    result = runs[0]["result"]
    n_clusters = result.analysed[CLUSTER].nunique()
    assert n_clusters < result.analysed["patient_id"].nunique()  # sets share people
    for record in result.records:
        if record["method"].startswith("naive"):
            assert "person" in record["se_method"]
            continue
        if record["method"].startswith("difference in differences"):
            # the larger of the matched-set and the person clustering, said which
            assert "larger" in record["se_method"], record["se_method"]
            assert record["n_clusters"] in (n_clusters, result.analysed["patient_id"].nunique())
            continue
        assert record["n_clusters"] == n_clusters, record["method"]
        assert "matched sets" in record["se_method"], record["method"]


def test_a_cox_model_stratified_on_matched_sets_is_reported(runs):
    result = runs[0]["result"]
    strat = _record(result, "Cox proportional hazards stratified on matched sets")
    assert strat["scale"] == "HR" and strat["estimate"] is not None
    assert strat["n_strata"] == result.analysed["matched_set"].nunique()
    assert strat["ci_low"] < strat["estimate"] < strat["ci_high"]


def test_matched_sets_are_exact_on_month_band_and_frailty(runs):
    for run in runs:
        sets = run["result"].analysed.groupby("matched_set")
        assert (sets["treated"].sum() == 1).all()
        for column in ("index_month_code", "recent_admissions_band", "efi_group"):
            assert (sets[column].nunique() == 1).all(), column


def test_comparators_are_followed_only_until_their_practice_adopts(runs):
    censored = 0
    for run in runs:
        a = run["result"].analysed
        comp = a[(a["treated"] == 0) & a["adoption_date"].notna()]
        assert (comp["end_date"] <= comp["adoption_date"]).all()
        assert (comp["adoption_date"] > comp["index_date"]).all()
        censored += int((comp["end_date"] == comp["adoption_date"]).sum())
    assert censored > 0  # the rule is exercised


def test_person_time_offsets_follow_the_end_of_follow_up(runs):
    a = runs[0]["result"].analysed
    days = (a["end_date"] - a["index_date"]).dt.days
    assert np.allclose(a["person_years"], np.maximum(days, 0.5) / 365.25)
    assert days.max() == 365 and (days < 365).any()


def test_event_study_clusters_on_matched_sets_and_says_its_pretest_is_not_informative(runs):
    run = runs[0]
    analysed = run["result"].analysed
    study = event_study(analysed, str(run["tables"]["admissions"]), seed=1)
    assert study["result"].data.n_clusters == analysed[CLUSTER].nunique()
    assert "matched sets" in study["effect"]["se_method"]
    assert study["pretrend"]["informative"] is False
    assert "pre-period outcome" in study["pretrend"]["why"]
    assert study["pretrend"]["p_value"] is not None


def test_adjustment_is_applied_inside_the_rate_model():
    # Admissions exactly proportional to person-time within each level of x; x, not
    # treatment, sets the rate. Adjusted for x the rate ratio is exactly 1.
    x = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8)
    treated = np.array([1] * 10 + [0] * 10)
    years = np.tile([0.5, 1.0], 10)
    df = pd.DataFrame({"emergency_admissions": np.where(x == 1, 4, 1) * years * 2,
                       "person_years": years, "treated": treated, "x": x,
                       "patient_id": np.arange(20)})
    adjusted = fx.rate_ratio(df, adjust=["x"], cluster="patient_id")
    crude = fx.rate_ratio(df, cluster="patient_id")
    assert adjusted.estimate == pytest.approx(1.0, abs=1e-6)
    assert crude.estimate > 1.5
