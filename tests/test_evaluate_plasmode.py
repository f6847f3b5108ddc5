"""Plasmode simulation of the matched design: re-drawn arms, thinning, bias, coverage, power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import ConfigError, InputError
from phm_eval.evaluate.plasmode import PlasmodeResult, _redraw_arms, headline_estimator, plasmode
from phm_eval.evaluate.power import mde_from_frame

TRUE_EFFECT = 0.85  # planted in the hand-made data; the plasmode must remove it


def matched_frame(n_sets: int = 300, ratio: int = 1, seed: int = 5) -> pd.DataFrame:
    """A matched frame as ``evaluate_programme`` analyses it: sets of one enrolled and
    ``ratio`` comparators sharing their prior-admission band ``x``; gamma frailty; admissions
    after the index date Poisson in person-time, the enrolled's multiplied by TRUE_EFFECT; some
    comparators reused in two sets (a sequence of target trials)."""
    rng = np.random.default_rng(seed)
    size = ratio + 1
    x = np.repeat(rng.integers(0, 4, n_sets), size)
    treated = np.tile(np.r_[1, np.zeros(ratio, int)], n_sets)
    frailty = rng.gamma(1.2, 1 / 1.2, n_sets * size)
    person_years = rng.uniform(0.4, 1.0, n_sets * size)
    mu = 0.3 * np.exp(0.35 * x) * frailty * person_years * np.where(treated == 1, TRUE_EFFECT,
                                                                   1.0)
    pid = np.arange(n_sets * size).astype(object)
    reused = np.flatnonzero(treated == 0)[: n_sets // 10]
    pid[reused] = pid[reused[::-1]]  # pairs of comparator rows from the same person
    return pd.DataFrame({"subclass": np.repeat(np.arange(n_sets), size), "treated": treated,
                         "patient_id": [f"P{p}" for p in pid], "x": x,
                         "person_years": person_years,
                         "emergency_admissions": rng.poisson(mu)})


ESTIMATOR = headline_estimator(adjust=["x"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return matched_frame()


@pytest.fixture(scope="module")
def mde(frame):
    return mde_from_frame(frame, adjust=["x"])


@pytest.fixture(scope="module")
def run(frame, mde) -> PlasmodeResult:
    targets = (1.0, 0.85, round(mde.mde_rate_ratio, 3), 0.55)
    return plasmode(frame, targets, n_replicates=120, seed=11, estimator=ESTIMATOR)


def test_power_increases_with_the_injected_effect(run):
    table = run.summary()
    assert table["n_failed"].eq(0).all()
    power = table.sort_values("target_rate_ratio", ascending=False)["power"].to_numpy()
    assert np.all(np.diff(power) > 0), power
    assert power[0] < 0.08 and power[-1] > 0.9, power


def test_null_injection_has_nominal_coverage_and_size(run):
    null = run.summary().set_index("target_rate_ratio").loc[1.0]
    assert 0.89 <= null["coverage"] <= 0.995, null["coverage"]
    assert null["rejection_rate"] <= 0.11
    # the model SE describes the replicate-to-replicate spread
    assert 0.8 < null["se_ratio"] < 1.2


def test_bias_is_small_and_the_true_effect_is_neutralised(run):
    # The data hold a true rate ratio of 0.85. Without re-drawing the arms every estimate would
    # be near 0.85 x target (log bias -0.16); the bias must be within Monte Carlo error.
    table = run.summary()
    assert (table["bias_log"].abs() < 0.05).all(), table[["target_rate_ratio", "bias_log"]]
    assert (table["bias_log"].abs() < 3.5 * table["bias_log_mcse"] + 0.01).all()
    assert table["coverage"].between(0.87, 1.0).all(), table["coverage"]


def test_plasmode_power_at_the_analytic_mde_is_near_80_percent(run, mde):
    # Two independent routes to the same number: the analytic MDE (comparators' outcome model,
    # expected information) and the plasmode's empirical power at it.
    assert 0.5 < mde.mde_rate_ratio < 0.85
    assert abs(run.power_at(round(mde.mde_rate_ratio, 3)) - 0.80) < 0.12


def test_only_the_enrolled_are_thinned_and_arms_keep_their_sizes(frame, run):
    reps = run.replicates
    total = int(frame["emergency_admissions"].sum())
    by_rep = reps.pivot(index="replicate", columns="target_rate_ratio", values="events_control")
    # comparators' admissions do not depend on the target (never thinned) ...
    assert (by_rep.nunique(axis=1) == 1).all()
    null = reps[reps["target_rate_ratio"] == 1.0]
    # ... and at a target of 1 nothing is thinned
    assert (null["events_treated"] + null["events_control"] == total).all()
    strong = reps[reps["target_rate_ratio"] == 0.55].set_index("replicate")
    ratio = strong["events_treated"].sum() / null.set_index("replicate")["events_treated"].sum()
    assert ratio == pytest.approx(0.55, abs=0.03)
    assert run.n_treated == 300 and run.n_control == 300 and run.n_sets == 300


def test_redrawn_arms_keep_one_enrolled_per_set_and_are_uniform():
    rng = np.random.default_rng(3)
    sets = np.repeat(np.arange(500), 3)  # 1:2 sets
    treated_per_set = np.ones(500, dtype=np.int64)
    counts = np.zeros(3)
    for _ in range(200):
        arm = _redraw_arms(sets, 500, treated_per_set, rng)
        assert (np.bincount(sets, weights=arm) == 1).all()
        counts += arm.reshape(500, 3).sum(axis=0)
    assert counts / counts.sum() == pytest.approx([1 / 3] * 3, abs=0.02)


def test_same_seed_same_replicates_and_ratio_sets(frame):
    a = plasmode(frame, 0.8, n_replicates=3, seed=4, estimator=ESTIMATOR)
    b = plasmode(frame, 0.8, n_replicates=3, seed=4, estimator=ESTIMATOR)
    pd.testing.assert_frame_equal(a.replicates, b.replicates)
    one_to_two = matched_frame(n_sets=120, ratio=2, seed=9)
    res = plasmode(one_to_two, (1.0, 0.7), n_replicates=3, seed=1, estimator=ESTIMATOR)
    assert res.n_treated == 120 and res.n_control == 240
    assert res.summary()["n_failed"].eq(0).all()
    assert set(res.to_dict()) >= {"summary", "baseline", "n_treated", "n_control", "seed"}


def test_a_failing_replicate_is_recorded_not_fatal(frame):
    calls = {"n": 0}

    def flaky(df):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("did not converge")
        return ESTIMATOR(df)

    res = plasmode(frame, 0.9, n_replicates=3, seed=1, estimator=flaky)
    assert res.summary().loc[0, "n_failed"] == 1
    assert res.replicates["note"].str.contains("did not converge").sum() == 1


def test_bad_targets_and_frames_are_refused(frame):
    with pytest.raises(ConfigError):
        plasmode(frame, 1.2, n_replicates=2, estimator=ESTIMATOR)
    with pytest.raises(ConfigError):
        plasmode(frame, 0.8, n_replicates=1, estimator=ESTIMATOR)
    with pytest.raises(InputError):
        plasmode(frame.drop(columns="subclass"), 0.8, n_replicates=2, estimator=ESTIMATOR)
    lonely = frame.copy()
    lonely.loc[lonely["subclass"] == 0, "treated"] = 0
    with pytest.raises(InputError):
        plasmode(lonely, 0.8, n_replicates=2, estimator=ESTIMATOR)


def test_runs_on_an_evaluation_result(tmp_path):
    """The real API: the smoke population through ingest and evaluate_programme, then the
    plasmode on its result with the pipeline's headline estimator (matching not redone)."""
    from phm_eval.evaluate.pipeline import evaluate_programme
    from phm_eval.ingest import StudyPeriod, ingest
    from phm_eval.synth import simulate

    simulate("smoke", out=tmp_path / "raw", seed=3)
    ingest(tmp_path / "raw", tmp_path / "clean",
           StudyPeriod("2019-04-01", "2024-03-31", "proactive_care"))
    tables = {t: tmp_path / "clean" / f"{t}.parquet"
              for t in ("patients", "events", "admissions", "practices", "interventions",
                        "rollout")}
    result = evaluate_programme(tables, "proactive_care", "2024-03-31", seed=1,
                                subgroups=False, event_study_panel=False)
    res = plasmode(result, (1.0, 0.5), n_replicates=6, seed=2)
    table = res.summary()
    assert list(table["target_rate_ratio"]) == [1.0, 0.5]
    assert table["n_failed"].eq(0).all()
    assert res.n_treated == result.headline["n_treated"]
    assert res.n_control == result.headline["n_control"]
    mde = mde_from_frame(result.analysed, adjust=["n_emergency_admissions_1y", "age"])
    assert 0 < mde.mde_rate_ratio < 1
