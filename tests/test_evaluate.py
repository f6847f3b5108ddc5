"""Impact evaluation on synthetic populations with a known effect, and on the null scenario."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_practices, make_rollout

from phm_eval.evaluate.design import Eligibility, practice_adoption
from phm_eval.evaluate.pipeline import evaluate_programme
from phm_eval.ingest import StudyPeriod, ingest
from phm_eval.synth import simulate

STUDY_START, STUDY_END = "2019-04-01", "2024-03-31"
TABLES = ("patients", "events", "admissions", "practices", "interventions", "rollout")


def _evaluate(root, scenario, seed, **overrides):
    sim = simulate(scenario, out=root / "raw", seed=seed, **overrides)
    ingest(root / "raw", root / "clean", StudyPeriod(STUDY_START, STUDY_END, "proactive_care"))
    tables = {t: root / "clean" / f"{t}.parquet" for t in TABLES}
    return sim, evaluate_programme(tables, "proactive_care", STUDY_END, seed=1)


@pytest.fixture(scope="module")
def effect_run(tmp_path_factory):
    return _evaluate(tmp_path_factory.mktemp("effect"), "pcn", 21)


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    # A single seed. A 95 % interval excludes 1 in about 5 % of seeds by design (6.0 % over the
    # 200 replications of the slow coverage study below; docs/evaluation.md).
    return _evaluate(tmp_path_factory.mktemp("null"), "pcn_null", 31)


def _record(result, method_start, subgroup=None):
    return next(r for r in result.records if r["method"].startswith(method_start)
                and r.get("subgroup") == subgroup)


def test_controlled_estimate_contains_the_truth(effect_run):
    sim, result = effect_run
    truth = sim.truth["true_effect"]["hazard_ratio"]
    head = result.headline
    assert head["scale"] == "RR" and head["ci_low"] < truth < head["ci_high"]
    assert head["n_treated"] > 300 and head["n_treated"] == head["n_control"]


def test_naive_before_after_is_clearly_biased(effect_run):
    sim, result = effect_run
    naive = _record(result, "naive before/after")
    # Selection on recent admissions: the naive comparison claims a far larger fall than the
    # true rate ratio, and its interval excludes the truth.
    assert naive["estimate"] < 0.65
    assert naive["ci_high"] < sim.truth["true_effect"]["hazard_ratio"]
    rtm = result.rtm.set_index("arm")
    # Both arms fall after the index date: regression to the mean, not the programme.
    assert rtm.loc["matched comparators", "change_per_1000"] < -100


def test_difference_in_differences_contains_the_realised_effect(effect_run):
    sim, result = effect_run
    did = _record(result, "difference in differences (matched")
    realised = sim.truth["realised"]["att_admissions_per_1000_person_years_12m"]
    assert did["ci_low"] < realised < did["ci_high"]


def test_matching_balances_prior_admissions_and_frailty(effect_run):
    _, result = effect_run
    balance = result.matching.balance()
    smd_after = balance.filter(like="smd").filter(like="after").iloc[:, 0].abs()
    for covariate in ("n_emergency_admissions_1y", "efi_deficits", "age"):
        assert smd_after.loc[covariate] < 0.1, covariate


def test_every_record_has_the_contract_fields(effect_run):
    _, result = effect_run
    fields = {"outcome", "method", "estimate", "ci_low", "ci_high", "scale", "n_treated",
              "n_control"}
    assert all(fields <= set(r) for r in result.records)
    scales = {r["scale"] for r in result.records}
    assert {"RR", "HR", "SHR", "difference"} <= scales
    assert sum(bool(r.get("headline")) for r in result.records) == 1
    subgroups = {r["subgroup"].split("=")[0] for r in result.records if r["subgroup"]}
    assert {"efi_group", "age_group"} <= subgroups


def test_flow_counts_every_exclusion(effect_run):
    _, result = effect_run
    flow = result.flow
    enrolled = flow[flow["arm"] == "enrolled"]
    read = enrolled.loc[enrolled["step"] == "read", "n"].sum()
    excluded_before_matching = enrolled.loc[
        (enrolled["step"] == "exclude")
        & ~enrolled["reason"].str.contains("caliper"), "n"].sum()
    kept = enrolled.loc[enrolled["step"] == "kept", "n"].sum()
    assert read - excluded_before_matching == kept
    matched = enrolled.loc[enrolled["step"] == "matched", "n"].sum()
    unmatched = enrolled.loc[enrolled["reason"].str.contains("caliper"), "n"].sum()
    assert matched + unmatched == kept


def test_null_scenario_estimates_are_null(null_run):
    _, result = null_run
    head = result.headline
    assert head["ci_low"] < 1.0 < head["ci_high"]
    did = _record(result, "difference in differences (matched")
    assert did["ci_low"] < 0 < did["ci_high"]
    naive = _record(result, "naive before/after")
    assert naive["ci_high"] < 0.8  # the naive analysis "finds" an effect that is not there


def test_comparators_come_only_from_practices_not_yet_adopting(effect_run):
    _, result = effect_run
    rows = result.cohort.rows
    comparators = rows[rows["treated"] == 0]
    adopted = comparators["adoption_date"].notna() & (
        comparators["adoption_date"] <= comparators["index_month"])
    assert not adopted.any()


def test_practice_adoption_uses_practice_rows_then_pcn_rows():
    practices = make_practices([("A", "P1"), ("B", "P1"), ("C", "P2")])
    rollout = make_rollout([("P1", "A", "x", "2021-01-01"), ("P1", None, "x", "2022-01-01"),
                            ("P2", None, "y", "2020-01-01")])
    got = practice_adoption(rollout, practices, "x")
    assert got["A"] == pd.Timestamp("2021-01-01")
    assert got["B"] == pd.Timestamp("2022-01-01")
    assert pd.isna(got["C"])


def test_eligibility_rules():
    frame = pd.DataFrame({"age": [64.9, 65, 70, 80], "efi_deficits": [12, 9, 8, 0],
                          "n_emergency_admissions_1y": [3, 0, 0, 1]})
    assert Eligibility().mask(frame).tolist() == [False, True, False, True]
    only_frail = Eligibility(min_recent_emergency_admissions=None)
    assert only_frail.mask(frame).tolist() == [False, True, False, False]


def _replicate(tmp_path, scenario: str, rep: int) -> dict:
    import shutil

    root = tmp_path / f"{scenario}_{rep}"
    sim = simulate(scenario, out=root, seed=1000 + rep, n_patients=20000,
                   overrides={"programme": {"enrolment_window_days": 60}})
    tables = {t: root / f"{t}.parquet" for t in TABLES}
    result = evaluate_programme(tables, "proactive_care", STUDY_END, seed=rep,
                                subgroups=False, event_study_panel=False)
    head = result.headline
    truth = sim.truth["true_effect"]["hazard_ratio"]
    shutil.rmtree(root)
    return {"scenario": scenario, "seed": 1000 + rep, "truth": truth,
            "estimate": head["estimate"], "ci_low": head["ci_low"], "ci_high": head["ci_high"],
            "n_treated": head.get("n_treated"), "n_control": head.get("n_control"),
            "covered": bool(head["ci_low"] < truth < head["ci_high"])}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["pcn", "pcn_null"])
def test_headline_coverage_over_replications(tmp_path, scenario):
    """>= 93 % of 95 % intervals contain the true rate ratio over 200 simulated PCNs (0.85 in
    ``pcn``; 1 in ``pcn_null``, where coverage is one minus the false-positive rate).

    ``PHM_EVAL_COVERAGE_REPS`` sets the number of replications (default 200) and
    ``PHM_EVAL_COVERAGE_OUT`` a folder to write every replication to (``coverage_<scenario>.csv``).
    """
    import os
    from pathlib import Path

    reps = int(os.environ.get("PHM_EVAL_COVERAGE_REPS", "200"))
    out = os.environ.get("PHM_EVAL_COVERAGE_OUT")
    rows = []
    for rep in range(reps):
        rows.append(_replicate(tmp_path, scenario, rep))
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(Path(out) / f"coverage_{scenario}.csv", index=False)
    table = pd.DataFrame(rows)
    coverage = float(table["covered"].mean())
    log_rr = np.log(table["estimate"])
    print(f"{scenario}: coverage {coverage:.3f} over {reps}; mean log RR {log_rr.mean():.3f} "
          f"(truth {np.log(table['truth'].iloc[0]):.3f}), SD {log_rr.std():.3f}")
    assert coverage >= 0.93
