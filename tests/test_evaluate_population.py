"""Population-level staggered difference in differences (intention to treat).

Three layers: the unit-month panel computed by hand on a tiny population; the estimator's bias
and coverage on simulated unit-month panels with a known effect (fast Monte Carlo, including
designs that must fail: adoption coded a year late, units not weighted by person-time); and end
to end on small synthetic ICSs (``ics``, ``ics_null``) against ``truth.json``, whose unit-month
pieces the panel must reproduce exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import (
    as_dates,
    make_admissions,
    make_events,
    make_patients,
    make_practices,
    make_rollout,
    write_tables,
)

from phm_eval.errors import ConfigError
from phm_eval.evaluate.design import Eligibility
from phm_eval.evaluate.population import PopulationITT, population_itt
from phm_eval.evaluate.population_panel import (
    MONTH_DAYS,
    adoption_month,
    build_population_panel,
    default_eligibility_date,
    panel_months,
)
from phm_eval.synth import simulate

TABLES = ("patients", "events", "admissions", "practices", "rollout")
PROGRAMME = "proactive_care"


# ------------------------------------------------------------------ dates and coding
def test_adoption_month_is_the_first_full_month():
    assert adoption_month("2020-10-01") == pd.Timestamp("2020-10-01")
    assert adoption_month("2020-10-02") == pd.Timestamp("2020-11-01")
    assert adoption_month("2020-12-31") == pd.Timestamp("2021-01-01")
    assert pd.isna(adoption_month(None))


def test_default_eligibility_date_and_months():
    assert default_eligibility_date("2020-10-01", "2019-04-01") == pd.Timestamp("2019-09-30")
    # not before the study start
    assert default_eligibility_date("2019-12-01", "2019-04-01") == pd.Timestamp("2019-03-31")
    months = panel_months("2019-09-30", "2019-04-01", "2024-03-31")
    assert months[0] == pd.Timestamp("2019-10-01") and months[-1] == pd.Timestamp("2024-03-01")
    assert len(months) == 54
    # a study end inside a month leaves that month out
    assert panel_months("2019-09-30", "2019-04-01", "2024-03-30")[-1] == pd.Timestamp(
        "2024-02-01")


# ------------------------------------------------------------------ a hand-made population
def _tiny(root):
    """Four practices in three PCNs; PCN A adopts on 15 October 2020 (adoption month November
    2020), C on 1 January 2021, B never. Study April 2019 to March 2021."""
    practices = make_practices([("P1", "A", "I"), ("P2", "A", "I"), ("P3", "B", "I"),
                                ("P4", "C", "I")])
    pat = [  # id, practice, dob, registration start, registration end, death
        ("X1", "P1", "1940-01-01", "2000-01-01", None, None),
        ("X2", "P2", "1950-01-01", "2000-01-01", None, "2020-01-15"),
        ("X3", "P1", "1955-06-01", "2000-01-01", None, None),   # 64 on the date
        ("X4", "P3", "1945-01-01", "2019-11-01", None, None),   # registers after it
        ("X5", "P3", "1930-01-01", "1990-01-01", None, None),   # admission too long ago
        ("X6", "P3", "1930-01-01", "1990-01-01", "2020-06-10", None),
        ("X7", "P4", "1935-01-01", "1990-01-01", None, None),
        ("X8", "P1", "1944-01-01", "1990-01-01", None, None),   # admitted only after it
    ]
    ids, practice, dob, start, end, death = (list(c) for c in zip(*pat, strict=True))
    patients = make_patients(ids, practice_id=practice, date_of_birth=dob, imd_decile=5.0,
                             registration_start=start, registration_end=end,
                             date_of_death=death)
    adm = [("X1", "2019-06-10", "21"), ("X1", "2019-11-05", "21"), ("X1", "2020-11-30", "11"),
           ("X1", "2021-02-01", "2A"), ("X2", "2019-10-31", "21"), ("X2", "2020-01-15", "22"),
           ("X3", "2019-09-01", "21"), ("X4", "2020-02-01", "21"), ("X5", "2018-10-01", "21"),
           ("X6", "2019-05-01", "21"), ("X7", "2019-10-01", "2B"), ("X7", "2021-01-20", "21"),
           ("X8", "2019-11-02", "21"), ("X8", "2020-03-02", "21")]
    admissions = make_admissions([(p, day, day, method) for p, day, method in adm])  # day cases
    events = make_events([("X1", "2015-01-01", "00000000", np.nan)])
    rollout = make_rollout([("A", None, PROGRAMME, "2020-10-15"),
                            ("C", None, PROGRAMME, "2021-01-01")])
    tables = {"practices": practices, "patients": patients, "admissions": admissions,
              "events": events, "rollout": rollout}
    # as a validated extract holds them: dates as dates
    return write_tables(root, **{name: as_dates(frame) for name, frame in tables.items()})


RECENT_ONLY = Eligibility(min_age=65, min_efi_deficits=None, min_recent_emergency_admissions=1)


def test_tiny_population_panel_by_hand(tmp_path):
    tables = _tiny(tmp_path)
    pp = build_population_panel(tables, PROGRAMME, "2019-04-01", "2021-03-31",
                                eligibility=RECENT_ONLY)
    assert pp.unit_level == "pcn"
    # first adoption month November 2020: fixed on 31 October 2019, 12 months before
    assert pp.eligibility_date == pd.Timestamp("2019-10-31")
    assert pp.months[0] == pd.Timestamp("2019-11-01") and len(pp.months) == 17
    # eligibility fixed on the date: X3 is 64, X4 registers later, X5's admission is more than
    # a year old, X8 is first admitted after it; X2's admission on the date itself counts
    assert sorted(pp.cohort["patient_id"]) == ["X1", "X2", "X6", "X7"]
    units = pp.units.set_index("unit")
    assert units.loc["A", "g"] == 13 and units.loc["C", "g"] == 15 and units.loc["B", "g"] == 0
    # B's only member leaves on 10 June 2020: months without person-time, no rate, dropped
    assert not units.loc["B", "in_panel"]
    assert any("no person-time" in f["reason"] for f in pp.flow)
    a = pp.panel[pp.panel["unit"] == "A"].set_index("t")
    # X2 dies on 15 January 2020: 15 days in January (follow-up (31 Dec, 15 Jan]) and none
    # after; X1 is there every day
    assert a.loc[[1, 2, 3, 4], "person_days"].tolist() == [30 + 30, 31 + 31, 31 + 15, 29]
    assert a.loc[[1, 2, 3, 4], "people"].tolist() == [2, 2, 2, 1]
    # emergency admissions: X1 5 Nov 2019 (t 1), X2 on the day of death (t 3), X1 1 Feb 2021
    # method 2A (t 16); the elective admission (method 11) of 30 Nov 2020 is not one
    expected = np.zeros(17, dtype=int)
    expected[[0, 2, 15]] = 1
    assert a["admissions"].tolist() == expected.tolist()
    c = pp.panel[pp.panel["unit"] == "C"].set_index("t")
    assert c["admissions"].sum() == 1 and c.loc[15, "admissions"] == 1
    assert np.allclose(a["rate"], 1000 * a["admissions"] / (a["person_days"] / MONTH_DAYS))
    # weight: person-months before the first adoption month (t 1-12)
    days = 60 + 62 + 46 + (29 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31)
    assert a["weight"].iloc[0] == pytest.approx(days / MONTH_DAYS)
    assert (a["g"] == 13).all() and (a["cluster"] == "A").all()


def test_tiny_population_practice_units_and_date_rules(tmp_path):
    tables = _tiny(tmp_path)
    pp = build_population_panel(tables, PROGRAMME, "2019-04-01", "2021-03-31",
                                eligibility=RECENT_ONLY, unit="practice")
    units = pp.units.set_index("unit")
    assert units.loc["P1", "cluster"] == "A" and units.loc["P2", "g"] == 13
    assert units.loc["P4", "g"] == 15 and units.loc["P3", "g"] == 0
    with pytest.raises(ConfigError, match="depend on treatment"):
        build_population_panel(tables, PROGRAMME, "2019-04-01", "2021-03-31",
                               eligibility=RECENT_ONLY, eligibility_date="2020-11-01")
    # a later date changes who is in: X8 (admitted 2 November 2019) becomes eligible
    late = build_population_panel(tables, PROGRAMME, "2019-04-01", "2021-03-31",
                                  eligibility=RECENT_ONLY, eligibility_date="2019-12-31")
    assert "X8" in set(late.cohort["patient_id"]) and late.months[0] == pd.Timestamp(
        "2020-01-01")


# ------------------------------------------------------------------ simulated panels
def sim_panel(seed, n_units=24, n_never=8, T=54, waves=(13, 25, 37), hr=0.85, rate=0.05,
              late=0, weighted=True):
    """Unit-month panel with a known ITT: Poisson admissions with unit and calendar effects,
    each adopting unit's enrolled share ramping up over 6 months to 5-80 % (bigger units
    enrol more, so weighting matters), their admissions thinned by ``hr``. ``late`` and
    ``weighted=False`` plant design errors."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(40, 400, n_units)
    g = np.zeros(n_units, dtype=int)
    for i, u in enumerate(rng.permutation(n_units)[n_never:]):
        g[u] = waves[i % len(waves)]
    t = np.arange(1, T + 1)
    pm = size[:, None] * 0.99 ** t[None, :]
    lam = (rate * np.exp(rng.normal(0, 0.15, n_units))[:, None]
           * ((1 + 0.1 * np.sin(2 * np.pi * t / 12)) * 0.995 ** t)[None, :] * pm)
    a0 = rng.poisson(lam)
    since = t[None, :] - g[:, None]
    share = np.where((g[:, None] > 0) & (since >= 0), (0.05 + 0.75 * (size - 40) / 360)[:, None]
                     * np.minimum(since + 1, 6) / 6, 0.0)
    a1 = rng.binomial(a0, 1 - share * (1 - hr))
    pre = t < min(waves)
    w = pm[:, pre].sum(axis=1)
    df = pd.DataFrame({"unit": np.repeat([f"U{i:02d}" for i in range(n_units)], T),
                       "t": np.tile(t, n_units), "admissions": a1.ravel(),
                       "person_months": pm.ravel(),
                       "g": np.repeat(np.where(g > 0, np.minimum(g + late, T), 0), T),
                       "weight": np.repeat(w if weighted else np.ones(n_units), T)})
    r0, r1 = 1000 * a0 / pm, 1000 * a1 / pm
    att = rate1 = total = 0.0
    for gg in waves:
        ing = g == gg
        for j in np.flatnonzero(t >= gg):
            cell = pm[ing, j].sum()
            att += cell * np.sum(w[ing] * (r1[ing, j] - r0[ing, j])) / w[ing].sum()
            rate1 += cell * np.sum(w[ing] * r1[ing, j]) / w[ing].sum()
            total += cell
    att, rate1 = att / total, rate1 / total
    return df, {"rate_ratio": rate1 / (rate1 - att), "att": att}


def _replicate(reps, **kw):
    est = PopulationITT(honest_m=())
    rows = []
    for s in range(reps):
        df, truth = sim_panel(s, **kw)
        rr, rd = est.fit(df).records
        rows.append({"log_rr": np.log(rr["estimate"]), "lo": rr["ci_low"], "hi": rr["ci_high"],
                     "att": rd["estimate"], "alo": rd["ci_low"], "ahi": rd["ci_high"],
                     "truth": truth["rate_ratio"], "truth_att": truth["att"]})
    x = pd.DataFrame(rows)
    x["cover"] = (x["lo"] < x["truth"]) & (x["truth"] < x["hi"])
    x["cover_att"] = (x["alo"] < x["truth_att"]) & (x["truth_att"] < x["ahi"])
    return x


@pytest.fixture(scope="module")
def mc_effect():
    return _replicate(120)


def test_simulated_panels_unbiased_with_coverage(mc_effect):
    x = mc_effect
    bias = (x["log_rr"] - np.log(x["truth"])).mean()
    mc_se = (x["log_rr"] - np.log(x["truth"])).std() / np.sqrt(len(x))
    # truth about 0.95; SD of log RR about 0.06, so the mean is known to +-0.006
    assert abs(bias) < 0.012, (bias, mc_se)
    assert 0.88 <= x["cover"].mean() <= 0.99
    assert 0.88 <= x["cover_att"].mean() <= 0.99
    assert (x["truth"] < 0.97).all()


def test_simulated_null_panels_cover_one():
    x = _replicate(80, hr=1.0)
    assert np.allclose(x["truth"], 1.0)
    assert abs(x["log_rr"].mean()) < 0.015
    assert 0.88 <= x["cover"].mean() <= 1.0


def noise_free_panel(late=0, weighted=True):
    """Expected counts with additive unit and calendar effects (parallel trends hold exactly)
    and an enrolled share growing with unit size: the estimate must equal the truth."""
    rng = np.random.default_rng(7)
    n_units, T, waves = 14, 40, (13, 20, 27)
    size = rng.uniform(40, 400, n_units)
    g = np.array([0] * 5 + [waves[i % 3] for i in range(n_units - 5)])
    t = np.arange(1, T + 1)
    pm = size[:, None] * 0.99 ** t[None, :]
    rate0 = 40 + rng.normal(0, 8, n_units)[:, None] + (5 * np.sin(t / 3) - 0.1 * t)[None, :]
    since = t[None, :] - g[:, None]
    share = np.where((g[:, None] > 0) & (since >= 0), (0.05 + 0.75 * (size - 40) / 360)[:, None]
                     * np.minimum(since + 1, 6) / 6, 0.0)
    rate1 = rate0 * (1 - share * 0.15)
    w = pm[:, t < 13].sum(axis=1)
    df = pd.DataFrame({"unit": np.repeat([f"U{i:02d}" for i in range(n_units)], T),
                       "t": np.tile(t, n_units), "admissions": (rate1 * pm / 1000).ravel(),
                       "person_months": pm.ravel(),
                       "g": np.repeat(np.where(g > 0, g + late, 0), T),
                       "weight": np.repeat(w if weighted else np.ones(n_units), T)})
    att = r1 = total = 0.0
    for gg in waves:
        ing = g == gg
        for j in np.flatnonzero(t >= gg):
            cell = pm[ing, j].sum()
            att += cell * np.sum(w[ing] * (rate1[ing, j] - rate0[ing, j])) / w[ing].sum()
            r1 += cell * np.sum(w[ing] * rate1[ing, j]) / w[ing].sum()
            total += cell
    att, r1 = att / total, r1 / total
    return df, {"rate_ratio": r1 / (r1 - att), "att": att}


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_noise_free_panel_estimate_equals_truth(control_group):
    df, truth = noise_free_panel()
    res = PopulationITT(control_group=control_group, honest_m=()).fit(df)
    assert res.rate_difference["estimate"] == pytest.approx(truth["att"], rel=1e-9)
    assert res.rate_ratio["estimate"] == pytest.approx(truth["rate_ratio"], rel=1e-9)
    assert truth["rate_ratio"] < 0.96


@pytest.mark.parametrize("error", ["adoption a year late", "units not weighted"])
def test_wrong_designs_miss_the_truth(error):
    """Planted design errors: exact on a noise-free panel they are far from the truth, and the
    late adoption also fails the Monte Carlo bias bound of the test above."""
    kw = {"late": 12} if error == "adoption a year late" else {"weighted": False}
    df, truth = noise_free_panel(**kw)
    res = PopulationITT(honest_m=()).fit(df)
    assert abs(np.log(res.rate_ratio["estimate"] / truth["rate_ratio"])) > 0.004
    if error == "adoption a year late":
        x = _replicate(40, late=12)
        assert abs((x["log_rr"] - np.log(x["truth"])).mean()) >= 0.012


def test_result_object_and_event_study():
    df, _ = sim_panel(3)
    res = PopulationITT(honest_m=(0.5, 1.0)).fit(df)
    rr, rd = res.records
    assert rr["scale"] == "RR" and rd["scale"] == "difference"
    assert rr["estimand"] == rd["estimand"] == "ITT population"
    for key in ("outcome", "method", "estimate", "ci_low", "ci_high", "n_treated",
                "n_control", "label", "subgroup", "p_value", "fallback", "note"):
        assert key in rr and key in rd
    det = res.details
    assert rr["estimate"] == pytest.approx(det["rate_treated"] / (det["rate_treated"]
                                                                  - det["att"]))
    # the rate ratio and the rate difference agree on the direction
    assert (rr["estimate"] < 1) == (rd["estimate"] < 0)
    es = res.event_study
    assert es["event_time"].min() == -12 and es["event_time"].max() == 23
    assert es.loc[es["event_time"] == -1, "att"].iloc[0] == 0
    assert res.pretrend["df"] == 11 and 0 <= res.pretrend["p_value"] <= 1
    assert {"Mbar", "lb", "ub"} <= set(res.honest.columns)
    assert (res.honest["ub"] >= res.honest["lb"]).all()
    assert res.plot() is not None
    assert set(res.summary["term"]).issuperset({"rate ratio (ITT)"})


# ------------------------------------------------------------------ synthetic ICSs
SMALL_ICS = {"pcn_size": [1500, 2500], "practice_size": [500, 1000]}


@pytest.fixture(scope="module")
def ics_runs(tmp_path_factory):
    out = {}
    for scenario, seed in (("ics", 11), ("ics", 12), ("ics_null", 11), ("ics_null", 13)):
        root = tmp_path_factory.mktemp(f"{scenario}{seed}")
        simulate(scenario, out=root, seed=seed, n_patients=40000, overrides=SMALL_ICS)
        tables = {t: root / f"{t}.parquet" for t in TABLES}
        res = population_itt(tables, PROGRAMME, "2019-04-01", "2024-03-31", seed=1,
                             honest_m=())
        truth = json.loads((root / "truth" / "truth.json").read_text())["itt_population"]
        pieces = pd.read_parquet(root / "truth" / "itt_population.parquet")
        out[(scenario, seed)] = (res, truth, pieces)
    return out


def test_panel_reproduces_the_generator_truth_exactly(ics_runs):
    for res, truth, pieces in ics_runs.values():
        panel = res.panel.panel
        assert res.panel.unit_level == truth["unit"] == "pcn"
        assert str(res.panel.eligibility_date.date()) == truth["eligibility_date"]
        assert len(res.panel.cohort) == truth["n_population"]
        m = panel.merge(pieces, on=["unit", "month"], validate="one_to_one")
        assert len(m) == len(panel) == len(pieces)
        assert (m["person_days_x"] == m["person_days_y"]).all()
        assert (m["admissions"] == m["admissions_with_programme"]).all()
        assert np.allclose(m["weight_x"], m["weight_y"])
        assert ((m["g"] > 0) & (m["month"] >= m["adoption_month_x"])).eq(m["post"]).all()


def test_ics_estimates_against_truth(ics_runs):
    effect = [(r, t) for (s, _), (r, t, _) in ics_runs.items() if s == "ics"]
    null = [(r, t) for (s, _), (r, t, _) in ics_runs.items() if s == "ics_null"]
    for res, truth in effect:
        assert 0.85 < truth["rate_ratio"] < 0.97  # diluted: a share of the eligible enrolled
        rr = res.rate_ratio
        assert rr["ci_low"] < truth["rate_ratio"] < rr["ci_high"]
    for res, truth in null:
        assert truth["rate_ratio"] == 1.0
        assert res.rate_ratio["ci_low"] < 1 < res.rate_ratio["ci_high"]
    # at 40,000 patients (about 70 eligible people per PCN) one estimate's SE of log RR is
    # 0.1-0.15: the mean over seeds must lie within 2.5 of its standard errors of the truth
    # (the bias bounds that catch design errors are on the simulated panels above)
    for runs in (effect, null):
        logs = np.array([np.log(r.rate_ratio["estimate"]) for r, _ in runs])
        truth = np.array([np.log(t["rate_ratio"]) for _, t in runs])
        se = np.array([r.details["se_log_rr"] for r, _ in runs])
        assert abs(np.mean(logs - truth)) < 2.5 * np.sqrt(np.sum(se ** 2)) / len(runs)


def test_pretrend_f_statistic_is_hotellings_from_the_cluster_covariance():
    """F = T^2 (G - q) / (q (G - 1)) with T^2 = W (G - 1) / G: the engine's covariance of the
    pre-adoption coefficients divides the cluster sums by G, Hotelling's T^2 by G - 1."""
    from scipy.stats import f as f_dist

    df, _ = sim_panel(3)
    res = PopulationITT(honest_m=()).fit(df)
    dyn = res.dynamic
    egt = np.asarray(dyn.egt)
    pre = np.flatnonzero((egt >= -12) & (egt <= -2))
    b = np.asarray(dyn.att_egt)[pre]
    V = dyn.covariance_egt()[np.ix_(pre, pre)]
    W = float(b @ np.linalg.solve(V, b))
    G, q = res.pretrend["n_clusters"], len(pre)
    assert res.pretrend["chi2_statistic"] == pytest.approx(W, rel=1e-10)
    hotelling = W * (G - 1) / G
    assert res.pretrend["statistic"] == pytest.approx(hotelling * (G - q) / (q * (G - 1)),
                                                      rel=1e-10)
    assert res.pretrend["df_denominator"] == G - q
    assert res.pretrend["p_value"] == pytest.approx(
        f_dist.sf(res.pretrend["statistic"], q, G - q), rel=1e-10)
