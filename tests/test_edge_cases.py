"""Statistical edge cases never stop a run: fallbacks are recorded, non-estimable quantities are
null with a reason (never NaN in JSON), and the report says "not estimable: <reason>"."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml

from phm_eval.errors import EstimationError, InputError
from phm_eval.evaluate import effects as fx
from phm_eval.evaluate.pipeline import _estimate
from phm_eval.jsonio import read_json, to_jsonable, write_json
from phm_eval.report import build_context, render_report
from phm_eval.report.effects import Effect, describe_headline, read_effects
from phm_eval.report.manuscript import build_manuscript, manuscript_data
from phm_eval.report.results import ResultsFolder
from phm_eval.risk.develop import (
    RiskModelConfig,
    choose_iecv_cluster,
    develop_risk_model,
    example_risk_features,
)
from phm_eval.survival.rates import DispersionError, NegativeBinomialRateModel, PoissonRateModel

ADJUST = ["age", "prior"]
REPORT_FIXTURE = Path(__file__).parent / "fixtures" / "report"


def strict_loads(text: str):
    """A JSON parser that refuses NaN and Infinity, as browsers and Typst do."""
    def refuse(name):
        raise ValueError(f"non-finite constant {name} in JSON")
    return json.loads(text, parse_constant=refuse)


def matched_frame(n: int = 800, seed: int = 3, overdispersed: bool = False) -> pd.DataFrame:
    """A matched cohort: under-dispersed counts (binomial) or overdispersed (gamma-Poisson)."""
    rng = np.random.default_rng(seed)
    treated = np.repeat([1, 0], n // 2)
    age = rng.normal(78, 6, n)
    prior = rng.integers(0, 3, n)
    person_years = rng.uniform(0.5, 1.0, n)
    mean = person_years * np.exp(-0.4 - 0.25 * treated + 0.02 * (age - 78) + 0.2 * prior)
    if overdispersed:
        counts = rng.poisson(mean * rng.gamma(0.5, 2.0, n))
    else:  # binomial(3, p): variance below the mean
        counts = rng.binomial(3, np.clip(mean / 3, 0, 1))
    return pd.DataFrame({"patient_id": [f"P{i:05d}" for i in range(n)], "treated": treated,
                         "emergency_admissions": counts, "person_years": person_years,
                         "age": age, "prior": prior})


# --------------------------------------------------------------------------- rate ratio fallback
def test_under_dispersed_counts_make_the_negative_binomial_refuse():
    df = matched_frame()
    assert df["emergency_admissions"].var() < df["emergency_admissions"].mean()
    with pytest.raises(DispersionError, match="dispersion is not positive"):
        NegativeBinomialRateModel().fit(df, "emergency_admissions", "person_years",
                                        covariates=["treated", *ADJUST], cluster_col="patient_id")


def test_rate_ratio_falls_back_to_the_same_poisson_model_with_robust_ses():
    df = matched_frame()
    effect = fx.rate_ratio(df, label="emergency admissions, rate ratio", adjust=ADJUST,
                           cluster_variance="sandwich")
    assert effect.method.startswith("Poisson rate ratio, robust SEs (dispersion not positive")
    assert "adjusted" in effect.method
    assert effect.fallback and "dispersion is not positive" in effect.fallback
    record = effect.to_dict()
    assert record["method"] == effect.method and record["fallback"] == effect.fallback
    assert record["note"] is None
    # The same model as the negative binomial it replaces: treated + covariates, offset
    # log(person-years), SEs clustered on the person (statsmodels' own cluster sandwich).
    X = sm.add_constant(df[["treated", *ADJUST]].astype(float))
    ref = sm.GLM(df["emergency_admissions"], X, family=sm.families.Poisson(),
                 offset=np.log(df["person_years"])).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df["patient_id"])[0]})
    b, se = ref.params["treated"], ref.bse["treated"]
    assert effect.estimate == pytest.approx(np.exp(b), rel=1e-8)
    assert effect.ci_low == pytest.approx(np.exp(b - 1.959963984540054 * se), rel=1e-6)
    assert effect.ci_high == pytest.approx(np.exp(b + 1.959963984540054 * se), rel=1e-6)
    # Clustered where the negative binomial was clustered (here by practice, several rows each).
    by_practice = df.assign(practice=np.arange(len(df)) % 15)
    clustered = fx.rate_ratio(by_practice, adjust=ADJUST, cluster="practice",
                              cluster_variance="sandwich")
    assert "clustered on practice" in clustered.fallback
    ref_pr = sm.GLM(df["emergency_admissions"], X, family=sm.families.Poisson(),
                    offset=np.log(df["person_years"])).fit(
        cov_type="cluster", cov_kwds={"groups": by_practice["practice"].to_numpy()})
    se_pr = ref_pr.bse["treated"]
    assert clustered.ci_high == pytest.approx(np.exp(b + 1.959963984540054 * se_pr), rel=1e-6)
    # Robust, not model-based: under-dispersion makes the sandwich SE smaller than Poisson's.
    model_based = sm.GLM(df["emergency_admissions"], X, family=sm.families.Poisson(),
                         offset=np.log(df["person_years"])).fit().bse["treated"]
    assert se < model_based
    # By default the fallback keeps the jackknife: the same Poisson model refitted without
    # each cluster.
    default = fx.rate_ratio(df, adjust=ADJUST)
    assert default.method == effect.method and default.estimate == effect.estimate
    assert default.se_method.startswith("cluster jackknife")
    jack = PoissonRateModel(cluster_variance="jackknife").fit(
        df.assign(**{c: df[c].astype(float) for c in ["treated", *ADJUST]}),
        "emergency_admissions", "person_years", covariates=["treated", *ADJUST],
        cluster_col="patient_id").rate_ratio("treated")
    assert default.ci_low == pytest.approx(jack["lower"], rel=1e-12)


def test_overdispersed_counts_keep_the_negative_binomial():
    effect = fx.rate_ratio(matched_frame(overdispersed=True), adjust=ADJUST)
    assert effect.method == "negative binomial rate ratio (matched, adjusted)"
    assert effect.fallback is None


def test_poisson_rate_model_clusters_like_the_sandwich():
    df = matched_frame(seed=5)
    df["practice"] = np.arange(len(df)) % 12
    X = sm.add_constant(df[["treated", "age"]].astype(float))
    glm = sm.GLM(df["emergency_admissions"], X, family=sm.families.Poisson(),
                 offset=np.log(df["person_years"]))
    for correction in (True, False):
        res = PoissonRateModel(cluster_correction=correction).fit(
            df, "emergency_admissions", "person_years", covariates=["treated", "age"],
            cluster_col="practice")
        ref = glm.fit(cov_type="cluster", cov_kwds={"groups": df["practice"].to_numpy(),
                                                    "use_correction": correction})
        np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-8)
        np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
        assert res.n_clusters == 12
    # no cluster column: heteroskedasticity-robust (each row its own cluster), HC0 as sandwich
    res = PoissonRateModel(cluster_correction=False).fit(
        df, "emergency_admissions", "person_years", covariates=["treated", "age"])
    np.testing.assert_allclose(res.bse.to_numpy(), glm.fit(cov_type="HC0").bse.to_numpy(),
                               rtol=1e-8)
    assert res.cov_type == "robust (HC0)"


def test_an_estimate_that_fails_is_recorded_null_with_its_reason():
    df = matched_frame()

    def fails():
        raise EstimationError("no emergency admissions in either arm")

    effect = _estimate(fails, "emergency admissions", "negative binomial rate ratio", "RR", df,
                       "emergency admissions, rate ratio")
    record = effect.to_dict()
    assert record["estimate"] is None and record["ci_low"] is None and record["ci_high"] is None
    assert record["note"] == "not estimable: no emergency admissions in either arm"
    assert record["method"] == "negative binomial rate ratio"
    strict_loads(json.dumps(record, allow_nan=False))

    def bad_input():
        raise InputError("admissions", "counts must be non-negative integers")

    with pytest.raises(InputError):  # problems with the user's data still stop the run
        _estimate(bad_input, "x", "m", "RR", df)


# --------------------------------------------------------------------------- IECV fallback
@pytest.fixture(scope="module")
def two_pcns() -> pd.DataFrame:
    """About 3,000 patients in 2 PCNs of 3 practices each (the issue's extract)."""
    return example_risk_features(3000, seed=1, n_practices=6, practices_per_pcn=3)


def test_two_pcns_fall_back_to_practices_with_a_note(two_pcns):
    config = RiskModelConfig(n_bootstrap=0, n_optimism_bootstrap=0)
    choice = choose_iecv_cluster(two_pcns, config)
    assert choice.cluster == "practice_id" and choice.requested == "pcn_id"
    assert choice.fell_back and choice.n_clusters == 6 and choice.n_usable_clusters >= 3
    assert "instead of PCN" in choice.note and "2 PCN" in choice.note

    report = develop_risk_model(two_pcns, config)
    iecv = report.to_dict()["internal_external"]
    assert iecv["cluster"] == "practice_id" and iecv["requested_cluster"] == "pcn_id"
    assert iecv["note"] == choice.note
    meta = iecv["random_effects_c_statistic"]
    assert meta["k"] >= 3 and np.isfinite(meta["prediction_lower"])  # estimable with 6
    strict_loads(json.dumps(to_jsonable(report.to_dict()), allow_nan=False))


def test_too_few_clusters_of_any_unit_skip_iecv_with_a_reason(two_pcns):
    few = two_pcns.assign(practice_id=two_pcns["pcn_id"])  # 2 PCNs, 2 practices
    config = RiskModelConfig(n_bootstrap=0, n_optimism_bootstrap=0)
    report = develop_risk_model(few, config)
    assert report.iecv is None
    iecv = report.to_dict()["internal_external"]
    assert iecv["cluster"] is None and iecv["random_effects_c_statistic"] is None
    assert iecv["note"].startswith("internal-external validation not run")


def test_enough_pcns_keep_the_pcn():
    df = example_risk_features(4000, seed=2, n_practices=20, practices_per_pcn=4)
    choice = choose_iecv_cluster(df, RiskModelConfig())
    assert choice.cluster == "pcn_id" and choice.note is None and not choice.fell_back


# --------------------------------------------------------------------------- JSON
def test_nan_never_reaches_json(tmp_path):
    obj = {"a": float("nan"), "b": [np.float32("inf"), -np.inf, np.float64(1.5)],
           "c": {"d": np.array([1.0, np.nan]), np.int64(3): np.int64(7)},
           "e": pd.Timestamp("2021-03-04"), "f": pd.NaT, "g": pd.NA, "h": np.bool_(True),
           "i": pd.DataFrame({"x": [1.0, np.nan]}), "j": pd.Series([np.nan])}
    path = write_json(tmp_path / "out" / "x.json", obj)  # raises on nothing
    data = strict_loads(path.read_text())
    assert data == {"a": None, "b": [None, None, 1.5], "c": {"d": [1.0, None], "3": 7},
                    "e": "2021-03-04", "f": None, "g": None, "h": True,
                    "i": [{"x": 1.0}, {"x": None}], "j": [None]}
    assert read_json(path) == data
    assert not list(path.parent.glob(".*.tmp"))  # no temporary file left behind


def test_a_bad_json_file_is_named(tmp_path):
    truncated = tmp_path / "metrics.json"
    truncated.write_text('{"c_statistic": {"estimate": 0.7,')
    with pytest.raises(InputError, match=r"metrics\.json: not valid JSON \(line 1"):
        read_json(truncated)
    with_nan = tmp_path / "effects.json"
    with_nan.write_text('[{"estimate": NaN}]')
    with pytest.raises(InputError, match=r"effects\.json: not valid JSON: holds NaN"):
        read_json(with_nan)
    assert read_json(with_nan, non_finite="null") == [{"estimate": None}]


# --------------------------------------------------------------------------- report
def _report_results(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("report_fixture",
                                                  REPORT_FIXTURE / "build_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.build_results(tmp_path, figures=False)
    effects = json.loads((results / "evaluate/effects.json").read_text())
    effects[0] |= {"estimate": None, "ci_low": None, "ci_high": None,
                   "note": "not estimable: Poisson maximum likelihood did not converge"}
    effects[1] |= {"method": "Poisson rate ratio, robust SEs (dispersion not positive; matched)",
                   "fallback": "negative binomial not used (estimated dispersion is not "
                               "positive)", "scale": "RR"}
    write_json(results / "evaluate/effects.json", effects)
    metrics = json.loads((results / "risk/metrics.json").read_text())
    metrics["calibration_slope"] = {"estimate": None, "ci_low": None, "ci_high": None,
                                    "note": "only one outcome class in the validation data"}
    metrics["internal_external"] = {
        "cluster": "practice_id", "requested_cluster": "pcn_id",
        "note": "internal-external validation by practice instead of PCN: 2 PCN(s)",
        "random_effects_c_statistic": {"c_statistic": 0.72, "lower": 0.68, "upper": 0.76,
                                       "prediction_lower": None, "prediction_upper": None,
                                       "k": 2, "prediction_note": "not estimable: needs 3"}}
    write_json(results / "risk/metrics.json", metrics)
    return results


def visible_text(html: str) -> str:
    body = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_report_says_not_estimable_and_names_the_method(tmp_path):
    results = _report_results(tmp_path)
    config = yaml.safe_load((REPORT_FIXTURE / "results/manifest.json").read_text())["config"]
    out = render_report(results, tmp_path / "index.html", config)
    text = visible_text(Path(out).read_text(encoding="utf-8"))
    assert "could not be estimated" in text
    assert "not estimable: Poisson maximum likelihood did not converge" in text
    # in words for readers, exactly as recorded in the table for reviewers
    assert "(a simpler rate model than planned) (not the planned method: the admission " \
           "counts did not vary enough" in text
    assert "Poisson rate ratio, robust SEs (dispersion not positive; matched)" in text
    assert "Negative binomial not used (estimated dispersion is not positive)" in text
    assert "Calibration slope not estimable: only one outcome class" in text
    assert "instead of PCN" in text and "prediction interval not estimable: needs 3" in text
    assert not re.search(r"\bnan\b", text, flags=re.I)


def test_manuscript_data_carries_the_same_words(tmp_path):
    results = _report_results(tmp_path)
    data = manuscript_data(results)
    strict_loads(json.dumps(to_jsonable(data), allow_nan=False))
    rows = data["effects_table"]["rows"]
    assert any("not estimable: poisson maximum likelihood" in " ".join(r).lower() for r in rows)
    assert any("not the planned method: the admission counts" in " ".join(r) for r in rows)
    assert any("Negative binomial not used (estimated dispersion" in " ".join(r)
               for r in data["methods_record"]["rows"])
    assert any("not estimable: only one outcome class" in " ".join(r)
               for r in data["risk_table"]["rows"])
    assert data["headline"]["verdict"] == "not_estimable"


def test_manuscript_compiles_with_null_estimates_and_old_nan(tmp_path):
    pytest.importorskip("typst")
    results = _report_results(tmp_path)
    # an older run's NaN: Typst's strict JSON reader would fail on the copied file
    (results / "evaluate/pretrend.json").write_text('{"statistic": NaN, "df": 10, '
                                                    '"p_value": NaN}')
    pdf = build_manuscript(results, tmp_path / "manuscript.pdf")
    assert pdf.stat().st_size > 10_000
    (results / "evaluate/pretrend.json").write_text('{"statistic": ')
    with pytest.raises(InputError, match=r"pretrend\.json: not valid JSON"):
        build_manuscript(results, tmp_path / "again.pdf")


def test_report_reader_names_a_broken_file_and_reads_old_nan_as_null(tmp_path):
    results = _report_results(tmp_path)
    (results / "risk/metrics.json").write_text('{"c_statistic": {"estimate": NaN, '
                                               '"ci_low": NaN, "ci_high": NaN}}')
    context = build_context(results)  # NaN from an older run: read as not estimable
    risk = next(s for s in context["sections"] if s["id"] == "risk-model")
    table = next(blk for blk in risk["blocks"] if blk["kind"] == "table")
    assert table["rows"][0][1].startswith("not estimable")
    (results / "risk/metrics.json").write_text('{"c_statistic": ')
    with pytest.raises(InputError, match=r"risk/metrics\.json: not valid JSON"):
        ResultsFolder(results).json("risk/metrics.json")


def test_headline_words_for_a_null_estimate():
    effect = read_effects([{"outcome": "emergency admissions", "method": "negative binomial",
                            "estimate": None, "ci_low": None, "ci_high": None, "scale": "RR",
                            "note": "not estimable: too few admissions",
                            "baseline_rate_per_1000": 400.0}])[0]
    assert isinstance(effect, Effect) and not effect.estimable
    head = describe_headline(effect, unit_cost=2500)
    assert head.verdict == "not_estimable" and head.money is None and head.reach is None
    assert "not estimable: too few admissions" in head.sentence
    assert effect.short_words() == "Not estimable: too few admissions"
