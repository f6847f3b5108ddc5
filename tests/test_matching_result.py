"""MatchResult and NearestNeighborMatcher: API, validation, flow, prognostic scores, plot."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from phm_eval.errors import ConfigError, EstimationError, InputError, ParameterError
from phm_eval.matching import NearestNeighborMatcher, prognostic_score

COVARIATES = ["age", "female", "prior_emergency_admissions", "efi"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 1500
    df = pd.DataFrame(
        {
            "age": rng.integers(65, 95, n),
            "female": rng.binomial(1, 0.55, n),
            "prior_emergency_admissions": rng.poisson(0.6, n),
            "efi": rng.binomial(36, 0.15, n) / 36,
            "pcn": rng.choice(["north", "south", "east"], n),
        },
        index=pd.Index([f"P{i:05d}" for i in range(n)], name="patient_id"),
    )
    lp = -2.5 + 0.6 * df["prior_emergency_admissions"] + 3 * df["efi"] + 0.01 * (df["age"] - 80)
    df["treated"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    df["admissions_before"] = rng.poisson(np.exp(-1 + 0.5 * df["prior_emergency_admissions"]))
    return df


@pytest.fixture(scope="module")
def result(cohort):
    return NearestNeighborMatcher(ratio=2, exact=["pcn"]).fit(cohort, "treated", COVARIATES)


def test_pairs_weights_and_subclasses_agree(result, cohort):
    pairs = result.pairs
    mm = result.match_matrix
    assert len(pairs) == int(mm.notna().to_numpy().sum())
    # No comparator is used twice without replacement, and pairs respect the exact stratum.
    assert pairs["control"].is_unique
    assert (cohort.loc[pairs["treated"], "pcn"].to_numpy()
            == cohort.loc[pairs["control"], "pcn"].to_numpy()).all()
    # Pair weights sum to 1 per matched treated unit.
    np.testing.assert_allclose(pairs.groupby("treated")["weight"].sum(), 1.0)
    # Subclass of a pair = subclass of both members.
    assert (result.subclass.loc[pairs["control"]].to_numpy()
            == pairs["subclass"].to_numpy()).all()
    # Caliper respected (0.2 SD of the logit score).
    cal = result.settings["caliper_score_units"]
    np.testing.assert_allclose(cal, 0.2 * result.distance_.std(ddof=1))
    assert pairs["score_difference"].max() <= cal


def test_matched_data_has_match_data_columns(result, cohort):
    md = result.matched_data()
    assert {"distance", "weights", "subclass"} <= set(md.columns)
    assert (md["weights"] > 0).all()
    assert list(md.index) == [i for i in cohort.index if i in set(md.index)]  # data order
    treated_w = md.loc[md["treated"] == 1, "weights"]
    control_w = md.loc[md["treated"] == 0, "weights"]
    assert (treated_w == 1).all()
    np.testing.assert_allclose(control_w.mean(), 1.0)  # MatchIt normalisation
    assert len(result.matched_data(drop_unmatched=False)) == len(cohort)
    with pytest.raises(ParameterError, match="already exist"):
        result.matched_data(weights="age")
    assert "w" in result.matched_data(weights="w").columns


def test_flow_adds_up(result, cohort):
    flow = result.flow().set_index(["group", "step"])["n"]
    n_t = int(cohort["treated"].sum())
    assert flow[("treated", "eligible")] == n_t
    assert (flow[("treated", "matched to 2 comparators")]
            + flow[("treated", "matched to fewer comparators")]
            + flow[("treated", "unmatched")]) == n_t
    unmatched_reasons = [k for k in flow.index if k[1].startswith("unmatched: ")]
    assert sum(flow[k] for k in unmatched_reasons) == flow[("treated", "unmatched")]
    nn = result.sample_sizes()
    assert nn.loc["Matched", "Treated"] == n_t - flow[("treated", "unmatched")]
    assert flow[("comparator", "matched (distinct)")] == nn.loc["Matched", "Control"]


def test_balance_improves_and_plot(result):
    bal = result.balance()
    assert list(bal.index[:1]) == ["distance"]
    assert {"pcnnorth", "pcnsouth", "pcneast"} <= set(bal.index)  # exact columns, one row per level
    assert bal["smd_after"].abs().max() < 0.1
    assert bal.loc["distance", "smd_before"] > 0.3
    ax = result.plot()
    assert len(ax.collections) == 2
    xs = [line.get_xdata()[0] for line in ax.get_lines()]
    assert 0.1 in xs
    np.testing.assert_allclose(
        sorted(ax.collections[1].get_offsets()[:, 0]), sorted(bal["smd_after"].abs())
    )


def test_balance_of_extra_variables(result):
    bal = result.balance(["admissions_before"])
    assert list(bal.index) == ["distance", "admissions_before"]


def test_to_dict_is_json(result):
    d = result.to_dict()
    text = json.dumps(d)
    assert "score_model" in d["settings"]
    assert json.loads(text)["settings"]["ratio"] == 2


def test_with_replacement_has_no_subclass(cohort):
    res = NearestNeighborMatcher(replace=True, ratio=3, caliper=None).fit(cohort, "treated", COVARIATES)
    assert res.subclass is None
    assert "subclass" not in res.matched_data().columns
    assert res.match_matrix.notna().all().all()
    assert not res.pairs["control"].is_unique


def test_random_order_is_reproducible(cohort):
    a = NearestNeighborMatcher(m_order="random", seed=3).fit(cohort, "treated", COVARIATES)
    b = NearestNeighborMatcher(m_order="random", seed=3).fit(cohort, "treated", COVARIATES)
    pd.testing.assert_frame_equal(a.match_matrix, b.match_matrix)
    # random_state, the former name of seed, still works
    with pytest.deprecated_call(match="random_state"):
        c = NearestNeighborMatcher(m_order="random", random_state=3)
    c = c.fit(cohort, "treated", COVARIATES)
    assert c.seed == 3 and c.random_state == 3
    pd.testing.assert_frame_equal(a.match_matrix, c.match_matrix)


def test_prognostic_score_fits_on_comparators_only(cohort):
    score, model = prognostic_score(cohort, "treated", COVARIATES, "admissions_before",
                                    family="poisson")
    controls = cohort[cohort["treated"] == 0]
    X = sm.add_constant(controls[COVARIATES].astype(float))
    ref = sm.GLM(controls["admissions_before"], X, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(model.coef, ref.params.to_numpy(), rtol=1e-7)
    # The treated units' outcomes play no part.
    changed = cohort.copy()
    changed.loc[changed["treated"] == 1, "admissions_before"] = 99
    score2, _ = prognostic_score(changed, "treated", COVARIATES, "admissions_before",
                                 family="poisson")
    np.testing.assert_array_equal(score, score2)
    res = NearestNeighborMatcher(distance="prognostic", prognostic_outcome="admissions_before",
                                 prognostic_family="poisson").fit(cohort, "treated", COVARIATES)
    np.testing.assert_allclose(res.distance_.to_numpy(), score)


def test_user_score_column(cohort):
    df = cohort.assign(my_score=cohort["efi"] + cohort["prior_emergency_admissions"])
    res = NearestNeighborMatcher(distance="my_score", caliper=None).fit(df, "treated", COVARIATES)
    np.testing.assert_array_equal(res.distance_.to_numpy(), df["my_score"].to_numpy())


def test_input_errors(cohort):
    m = NearestNeighborMatcher()
    bad = cohort.copy()
    bad.iloc[3, bad.columns.get_loc("age")] = np.nan
    with pytest.raises(InputError, match="age"):
        m.fit(bad, "treated", COVARIATES)
    with pytest.raises(ParameterError, match="covariates: names missing column"):
        m.fit(cohort, "treated", ["age", "no_such_column"])
    dup = pd.concat([cohort.iloc[:5], cohort.iloc[:5]])
    with pytest.raises(InputError, match="unique"):
        m.fit(dup, "treated", COVARIATES)
    bad_t = cohort.assign(treated=cohort["treated"] * 2)
    with pytest.raises(InputError, match="0 or 1"):
        m.fit(bad_t, "treated", COVARIATES)
    with pytest.raises(EstimationError):
        m.fit(cohort.assign(treated=0), "treated", COVARIATES)


@pytest.mark.parametrize(
    "kwargs",
    [{"ratio": 0}, {"caliper": -1}, {"m_order": "closest"}, {"link": "probit"},
     {"distance": "prognostic"}],
)
def test_config_errors(cohort, kwargs):
    with pytest.raises(ConfigError):
        NearestNeighborMatcher(**kwargs).fit(cohort, "treated", COVARIATES)


def test_no_match_is_an_estimation_error(cohort):
    df = cohort.assign(s=np.where(cohort["treated"] == 1, 100.0, 0.0))
    with pytest.raises(EstimationError, match="caliper"):
        NearestNeighborMatcher(distance="s", caliper=1.0, std_caliper=False).fit(
            df, "treated", COVARIATES
        )
