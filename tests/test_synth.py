"""The synthetic population: calibration targets, known truths, determinism and contract."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from phm_eval.describe import emergency_admission_rates, ltc_prevalence, population_pyramid
from phm_eval.errors import ConfigError
from phm_eval.ingest import StudyPeriod, ingest
from phm_eval.synth import load_scenario, simulate
from phm_eval.synth.programme import efi_category

STUDY_START, STUDY_END = "2019-04-01", "2024-03-31"


@pytest.fixture(scope="module")
def pcn(tmp_path_factory):
    """One default-size synthetic PCN, validated and staged as the workflow does."""
    root = tmp_path_factory.mktemp("pcn")
    result = simulate("pcn", out=root / "raw", seed=11)
    ingest(root / "raw", root / "clean", StudyPeriod(STUDY_START, STUDY_END, "proactive_care"))
    return result, root / "clean"


def test_structure_is_pcn_like(pcn):
    result, clean = pcn
    practices = pd.read_parquet(clean / "practices.parquet")
    patients = pd.read_parquet(result.out / "patients.parquet")
    sizes = patients.groupby("practice_id").size()
    assert practices["pcn_id"].nunique() == 1
    assert 3 <= len(practices) <= 8
    assert sizes.between(5_000, 15_000).all()
    assert len(patients) == 40_000


def test_age_sex_structure(pcn):
    _, clean = pcn
    pyr = population_pyramid(clean / "patients.parquet", "2022-03-31")
    total = pyr["n"].sum()
    band_start = pyr["age_band"].str.extract(r"^(\d+)")[0].astype(int)
    share = lambda cond: pyr.loc[cond, "n"].sum() / total  # noqa: E731
    # England: about 18 % aged 0-15 (bands 0-14 plus a fifth of 15-19), 19 % 65+, 2.5 % 85+.
    young = share(band_start < 15) + 0.2 * share(band_start == 15)
    assert 0.15 <= young <= 0.21
    assert 0.17 <= share(band_start >= 65) <= 0.22
    assert 0.018 <= share(band_start >= 85) <= 0.035
    female = pyr.loc[pyr["sex"] == "F", "n"].sum() / total
    assert 0.48 <= female <= 0.53


# Target prevalence (all ages, registered at the study end) and the relative tolerance allowed.
LTC_TARGETS = {
    "hypertension": 0.14, "diabetes": 0.07, "asthma": 0.06, "copd": 0.02, "chd": 0.03,
    "atrial_fibrillation": 0.02, "heart_failure": 0.01, "ckd": 0.04, "dementia": 0.008,
    "smi": 0.01, "learning_disability": 0.005,
}


def test_ltc_prevalence_matches_targets(pcn):
    _, clean = pcn
    prev = ltc_prevalence(clean / "patients.parquet", clean / "events.parquet", STUDY_END)
    overall = prev.groupby("condition")[["n_with_condition", "n_registered"]].sum()
    rate = overall["n_with_condition"] / overall["n_registered"]
    for condition, target in LTC_TARGETS.items():
        # 25 % relative tolerance (wider for the rarest, where 40k people give few cases).
        tol = 0.25 if target >= 0.01 else 0.4
        assert abs(rate[condition] / target - 1) <= tol, (condition, rate[condition], target)


def test_ltc_prevalence_rises_with_age_and_deprivation(pcn):
    _, clean = pcn
    prev = ltc_prevalence(clean / "patients.parquet", clean / "events.parquet", STUDY_END)
    ht = prev[prev["condition"] == "hypertension"].groupby("age_band")[
        ["n_with_condition", "n_registered"]].sum()
    p = ht["n_with_condition"] / ht["n_registered"]
    assert p["45-64"] > p["16-44"] and p["65-74"] > p["45-64"] and p["75-84"] > p["65-74"]
    copd = prev[(prev["condition"] == "copd") & (prev["imd_quintile"] != "unknown")]
    by_q = copd.groupby("imd_quintile")[["n_with_condition", "n_registered"]].sum()
    by_q = by_q[by_q["n_registered"] >= 1000]  # one PCN covers few quintiles well
    q = by_q["n_with_condition"] / by_q["n_registered"]
    # The most deprived well-represented quintile has more COPD than the least deprived.
    assert len(q) >= 2 and q.iloc[0] > q.iloc[-1]


def test_efi_split_among_older_people(pcn):
    result, _ = pcn
    split = result.truth["population"]["efi_categories_at_study_end_65plus"]
    # Clegg et al. 2016: about 50 % fit, 35 % mild, 12 % moderate, 3 % severe.
    assert split["fit"] == pytest.approx(0.50, abs=0.06)
    assert split["mild"] == pytest.approx(0.35, abs=0.06)
    assert split["moderate"] == pytest.approx(0.12, abs=0.04)
    assert split["severe"] == pytest.approx(0.03, abs=0.015)


def test_emergency_admissions_rate_age_gradient_and_overdispersion(pcn):
    _, clean = pcn
    rates = emergency_admission_rates(clean / "patients.parquet", clean / "admissions.parquet",
                                      STUDY_START, STUDY_END)
    overall = rates["emergency_admissions"].sum() / rates["person_years"].sum()
    assert 0.08 <= overall <= 0.125  # about 0.1 per person-year
    by_age = rates.groupby("age_band")[["emergency_admissions", "person_years"]].sum()
    r = by_age["emergency_admissions"] / by_age["person_years"]
    assert r["85+"] > r["75-84"] > r["65-74"] > r["45-64"] > r["16-44"]
    assert r["85+"] >= 3 * overall  # several times higher in the old
    adm = pd.read_parquet(clean / "admissions.parquet")
    em = adm[adm["admission_method"].str.startswith("2")]
    pats = pd.read_parquet(clean / "patients.parquet")
    counts = em.groupby("patient_id").size().reindex(pats["patient_id"], fill_value=0)
    assert counts.var() / counts.mean() > 1.5  # over-dispersed: admissions cluster in people


def test_mortality_and_readmissions(pcn):
    _, clean = pcn
    pats = pd.read_parquet(clean / "patients.parquet")
    rates = emergency_admission_rates(clean / "patients.parquet", clean / "admissions.parquet",
                                      STUDY_START, STUDY_END)
    deaths = pats["date_of_death"].between(pd.Timestamp(STUDY_START).date(),
                                           pd.Timestamp(STUDY_END).date()).sum()
    crude = deaths / rates["person_years"].sum()
    assert 0.006 <= crude <= 0.012  # England about 0.9 % a year
    adm = pd.read_parquet(clean / "admissions.parquet")
    em = adm[adm["admission_method"].str.startswith("2")].sort_values(
        ["patient_id", "admission_date"])
    prev_discharge = em.groupby("patient_id")["discharge_date"].shift()
    gap = (pd.to_datetime(em["admission_date"]) - pd.to_datetime(prev_discharge)).dt.days
    readmit_share = (gap.between(0, 30)).sum() / len(em)
    assert 0.05 <= readmit_share <= 0.25


def test_efi_split_is_stable_over_calendar_time(pcn):
    from phm_eval.frailty import efi

    _, clean = pcn
    for day in ("2020-04-01", "2023-04-01"):
        split = efi(clean / "events.parquet", clean / "patients.parquet", day)[
            "efi_category"].value_counts(normalize=True)
        assert split["fit"] == pytest.approx(0.50, abs=0.07), day
        assert split["mild"] == pytest.approx(0.35, abs=0.06), day
        assert split["moderate"] == pytest.approx(0.12, abs=0.04), day
        assert split["severe"] == pytest.approx(0.03, abs=0.02), day


def test_efi_categories_and_eligibility_reasons(pcn):
    result, _ = pcn
    truth = pd.read_parquet(result.out / "truth" / "enrolment.parquet")
    assert set(truth["eligible_reason"]) <= {"frailty", "recent_admission", "both"}
    cats = efi_category(np.array([0, 4, 5, 8, 9, 12, 13, 30]))
    assert cats.tolist() == ["fit", "fit", "mild", "mild", "moderate", "moderate", "severe",
                             "severe"]


def test_programme_selects_on_recent_admissions_and_regresses_to_mean(pcn):
    result, _ = pcn
    realised = result.truth["realised"]
    assert realised["n_enrolled"] > 200
    # Selection on recent admissions: without the programme the enrolled would have had far
    # fewer admissions in the next 12 months than in the 12 before (regression to the mean).
    before = realised["admissions_12m_before_enrolment"]
    after_without = realised["admissions_12m_without_programme"]
    assert after_without < 0.7 * before
    # The programme's true effect on them is close to its rate ratio (0.85), by thinning.
    assert realised["realised_rate_ratio_12m"] == pytest.approx(0.85, abs=0.08)
    rollout = pd.read_parquet(result.out / "rollout.parquet")
    assert rollout["start_date"].nunique() >= 2  # staggered
    practices = pd.read_parquet(result.out / "practices.parquet")
    assert len(rollout) < len(practices)  # some never adopt


def test_truth_is_kept_apart(pcn):
    result, clean = pcn
    truth = json.loads((result.out / "truth" / "truth.json").read_text())
    assert truth["true_effect"]["hazard_ratio"] == 0.85
    assert not (clean / "truth").exists()
    assert "true_rate_ratio" not in pd.read_parquet(clean / "interventions.parquet").columns


def test_codes_come_from_the_shipped_code_lists(pcn):
    from phm_eval.codelists import load_codelist

    _, clean = pcn
    events = pd.read_parquet(clean / "events.parquet", columns=["snomed_code"])
    known = set()
    for name in ("ltc", "efi", "medications", "personalised_care"):
        known |= set(load_codelist(name)["snomed_code"])
    assert set(events["snomed_code"].unique()) <= known


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = simulate("smoke", out=tmp_path / "a", seed=5)
    b = simulate("smoke", out=tmp_path / "b", seed=5)
    c = simulate("smoke", out=tmp_path / "c", seed=6)
    assert _digest(a.out) == _digest(b.out)
    assert _digest(a.out)["events.parquet"] != _digest(c.out)["events.parquet"]


def test_csv_output_meets_the_contract(tmp_path):
    result = simulate("smoke", out=tmp_path / "csv", seed=2, file_format="csv")
    flow = ingest(result.out, tmp_path / "clean", StudyPeriod(STUDY_START, STUDY_END))
    kept = flow[(flow["table"] == "patients") & (flow["step"] == "kept")]["n"].item()
    assert kept > 5000


def test_null_and_heterogeneous_scenarios(tmp_path):
    null = load_scenario("pcn_null")
    assert null.programme["hazard_ratio"] == 1.0
    het = load_scenario("pcn_heterogeneous")
    assert het.programme["hazard_ratio_by_efi_category"]["severe"] == 0.7
    res = simulate("smoke", out=tmp_path / "null", seed=3, overrides={"programme": {
        "hazard_ratio": 1.0}})
    realised = res.truth["realised"]
    assert realised["admissions_12m_with_programme"] == realised[
        "admissions_12m_without_programme"]


def test_unknown_scenario_and_bad_overrides():
    with pytest.raises(ConfigError, match="unknown synthetic scenario"):
        load_scenario("no_such_scenario")
    with pytest.raises(ConfigError, match="hazard_ratio"):
        load_scenario("pcn", {"programme": {"hazard_ratio": -1}})
    with pytest.raises(ConfigError, match="n_patients"):
        load_scenario("pcn", {"n_patients": 10})
