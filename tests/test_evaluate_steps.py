"""Every step of the enrolled-patient evaluation, on tables small enough to compute by hand.

Each test builds a handful of patients whose answer can be worked out on paper (the working
is in the comments) and checks the step against it: the cohort's comparators and their
censoring dates, follow-up and person-time (censoring at death, deregistration, the
comparator's practice adoption and the study end), the look-back window of the before/after
comparisons, the rate ratio's offset and clustered standard error, the difference in
differences' person-time weights, the naive before/after, the matched sets and their clusters,
and the event study's months. Planting any of the design errors these guard against makes one
of them fail (docs/validation/mutation-check.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    as_dates,
    make_admissions,
    make_events,
    make_interventions,
    make_patients,
    make_practices,
    make_rollout,
    write_tables,
)

from phm_eval.did import att_gt
from phm_eval.evaluate import effects as fx
from phm_eval.evaluate.design import build_cohort
from phm_eval.evaluate.event_study import MONTH_DAYS, clustered_pretest, monthly_panel
from phm_eval.evaluate.outcomes import DAYS_PER_YEAR, follow_up
from phm_eval.evaluate.pipeline import COVARIATES, match_cohort


def _write(root: Path, **tables: pd.DataFrame) -> dict[str, Path]:
    """The tables as a validated extract holds them (dates as dates), written as Parquet."""
    return write_tables(root, **{name: as_dates(frame) for name, frame in tables.items()})


def _patients(rows: list[tuple]) -> pd.DataFrame:
    """(patient_id, practice_id, date_of_birth, registration_start, registration_end, death)."""
    p, practice, dob, start, end, death = (list(c) for c in zip(*rows, strict=True))
    return make_patients(p, practice_id=practice, date_of_birth=dob, imd_decile=5.0,
                         registration_start=start, registration_end=end, date_of_death=death)


def _spells(rows: list[tuple]) -> pd.DataFrame:
    """(patient_id, admission_date, discharge_date, admission_method): emergency or not."""
    return as_dates(make_admissions(rows))


# ------------------------------------------------------------------------------------------
# The cohort: who is a comparator, and until when
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Four practices: PA adopts on 1 Jan 2021, PB on 1 Jan 2022 (roll-out rows), PC never,
    PD has no roll-out row and adopts with its first enrolment (D1, 10 Jun 2021).

    Everyone is 81 and has an emergency admission on 15 Oct 2020 (eligible for 12 months).
    T1 (PA) is enrolled on 10 Dec 2020 (index 1 Jan 2021), D1 (PD) on 10 Jun 2021 (index
    1 Jul 2021), B2 (PB) on 15 Feb 2022 (index 1 Mar 2022; admitted again 1 Dec 2021). C1 (PC)
    is admitted again on 1 Nov 2021. A2 (PA) is never enrolled, Y1 (PB) is 61, C2 (PC) died on
    20 Dec 2020.
    """
    root = tmp_path_factory.mktemp("cohort")
    ids = [("T1", "PA", "1940-01-01"), ("A2", "PA", "1940-01-01"), ("B1", "PB", "1940-01-01"),
           ("B2", "PB", "1940-01-01"), ("C1", "PC", "1940-01-01"), ("Y1", "PB", "1960-01-01"),
           ("D1", "PD", "1940-01-01"), ("D2", "PD", "1940-01-01")]
    patients = _patients([(p, pr, dob, "2000-01-01", None, None) for p, pr, dob in ids]
                         + [("C2", "PC", "1940-01-01", "2000-01-01", None, "2020-12-20")])
    spells = _spells([(p, "2020-10-15", "2020-10-15", "21") for p in patients["patient_id"]]
                     + [("B2", "2021-12-01", "2021-12-01", "22"),
                        ("C1", "2021-11-01", "2021-11-01", "21")])
    events = make_events([("T1", "2019-01-01", "40379007", np.nan)])
    practices = make_practices([(p, "N1", "I1") for p in ("PA", "PB", "PC", "PD")])
    interventions = make_interventions([("T1", "pc", "2020-12-10"), ("B2", "pc", "2022-02-15"),
                                        ("D1", "pc", "2021-06-10")])
    rollout = make_rollout([("N1", "PA", "pc", "2021-01-01"), ("N1", "PB", "pc", "2022-01-01")])
    tables = _write(root, patients=patients, admissions=spells, events=events,
                    practices=practices, interventions=interventions, rollout=rollout)
    return build_cohort(tables, "pc", study_end="2024-03-31").rows


def _month(rows: pd.DataFrame, month: str) -> pd.DataFrame:
    return rows[rows["index_month"] == pd.Timestamp(month)].set_index("patient_id")


def test_treated_rows_are_the_enrolled_on_the_first_of_the_next_month(cohort):
    treated = cohort[cohort["treated"] == 1].set_index("patient_id")["index_month"]
    assert treated.to_dict() == {"T1": pd.Timestamp("2021-01-01"),
                                 "D1": pd.Timestamp("2021-07-01"),
                                 "B2": pd.Timestamp("2022-03-01")}


def test_comparators_are_eligible_people_of_practices_not_yet_adopting(cohort):
    # Jan 2021: PA adopted that day (A2 excluded), PB, PC, PD not yet; Y1 is too young and
    # C2 died. D1 (enrolled in June) and B2 (in 2022) are not yet enrolled: candidates.
    assert sorted(_month(cohort, "2021-01-01").query("treated == 0").index) == [
        "B1", "B2", "C1", "D1", "D2"]
    # Jul 2021: PD adopted with D1's enrolment on 10 June, so D2 is no longer a comparator.
    assert sorted(_month(cohort, "2021-07-01").query("treated == 0").index) == [
        "B1", "B2", "C1"]
    # Mar 2022: PB adopted on 1 Jan 2022; only C1 (never-adopting PC) is left.
    assert sorted(_month(cohort, "2022-03-01").query("treated == 0").index) == ["C1"]


def test_comparators_are_censored_at_their_practice_adoption_and_treated_never(cohort):
    jan = _month(cohort, "2021-01-01")
    assert jan.loc["B1", "censor_date"] == pd.Timestamp("2022-01-01")
    assert jan.loc["B2", "censor_date"] == pd.Timestamp("2022-01-01")
    assert jan.loc["D2", "censor_date"] == pd.Timestamp("2021-06-10")  # implied adoption
    assert jan.loc["D1", "censor_date"] == pd.Timestamp("2021-06-10")
    assert pd.isna(jan.loc["C1", "censor_date"])  # never adopts
    assert cohort.loc[cohort["treated"] == 1, "censor_date"].isna().all()
    # A later enrolment is recorded but is not a censoring date (it would be informative).
    assert jan.loc["B2", "own_enrolment_date"] == pd.Timestamp("2022-02-15")


# ------------------------------------------------------------------------------------------
# Follow-up: person-time, censoring and the look-back window
# ------------------------------------------------------------------------------------------

INDEX = "2022-01-01"


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    """Follow-up of hand-made rows (index 1 Jan 2022 unless said), 365 days each way."""
    root = tmp_path_factory.mktemp("follow")
    patients = _patients([
        ("P1", "X", "1940-01-01", "2000-01-01", None, None),
        ("P2", "X", "1940-01-01", "2000-01-01", None, "2022-05-01"),   # dies, admitted that day
        ("P3", "X", "1940-01-01", "2000-01-01", None, "2022-02-10"),   # dies, no admission
        ("P4", "X", "1940-01-01", "2000-01-01", "2022-06-15", None),   # leaves the practice
        ("P5", "X", "1940-01-01", "2000-01-01", None, None),           # comparator, adoption
        ("P6", "X", "1940-01-01", "2000-01-01", None, None),           # treated, not censored
        ("P7", "X", "1940-01-01", "2000-01-01", None, None),           # study end
        ("P8", "X", "1940-01-01", "2021-09-01", None, None),           # new registrant
    ])
    spells = _spells([
        ("P1", "2020-06-01", "2020-06-02", "21"),   # 2 years before: outside the look-back
        ("P1", "2021-01-01", "2021-01-01", "21"),   # index - 365 days: outside (d-365, d]
        ("P1", "2021-01-02", "2021-01-02", "21"),   # index - 364: inside
        ("P1", "2022-01-01", "2022-01-01", "21"),   # the index day: history, not follow-up
        ("P1", "2022-03-01", "2022-03-05", "21"),   # day 59 after: first admission
        ("P1", "2022-04-01", "2022-04-03", "11"),   # elective: never counted
        ("P1", "2023-01-01", "2023-01-03", "2A"),   # day 365: last day of follow-up
        ("P1", "2023-01-02", "2023-01-02", "21"),   # day 366: after follow-up
        ("P2", "2022-05-01", "2022-05-01", "21"),   # on the day of death: counted
        ("P4", "2022-06-20", "2022-06-21", "21"),   # after leaving: not counted
        ("P5", "2022-03-15", "2022-03-16", "21"),   # before adoption: counted
        ("P5", "2022-05-01", "2022-05-02", "21"),   # after adoption: not counted
        ("P6", "2022-05-01", "2022-05-02", "21"),   # treated: counted whatever censor_date says
        ("P8", "2021-10-01", "2021-10-01", "21"),   # before (registered 122 days)
        ("P8", "2022-02-01", "2022-02-03", "21"),
        ("P8", "2022-02-20", "2022-02-22", "21"),   # 17 days after a discharge: readmission
    ])
    tables = _write(root, patients=patients, admissions=spells)
    rows = pd.DataFrame({
        "row_id": range(8),
        "patient_id": [f"P{i}" for i in range(1, 9)],
        "index_date": pd.to_datetime([INDEX] * 6 + ["2023-07-01", INDEX]),
        "treated": [1, 1, 0, 0, 0, 1, 0, 1],
        "censor_date": pd.to_datetime([None, None, None, None, "2022-04-01", "2022-04-01",
                                       None, None]),
    })
    out = follow_up(rows, str(tables["patients"]), str(tables["admissions"]),
                    "2024-03-31", follow_up_days=365, lookback_days=365)
    return out.set_index("patient_id")


def test_full_follow_up_counts_admissions_in_index_to_365_days(followed):
    p1 = followed.loc["P1"]
    assert p1["end_date"] == pd.Timestamp("2023-01-01")
    # 1 Mar 2022 and 1 Jan 2023 (day 365); not the index day, the elective or day 366
    assert p1["emergency_admissions"] == 2
    assert p1["person_years"] == pytest.approx(365 / DAYS_PER_YEAR)
    assert p1["event"] == 1 and p1["time_days"] == 59  # 31 (Jan) + 28 (Feb)
    assert p1["bed_days"] == 4 + 2 and p1["readmissions_30d"] == 0
    assert p1["died"] == 0


def test_look_back_is_the_365_days_ending_on_the_index_day(followed):
    p1 = followed.loc["P1"]
    # 2 Jan 2021 and the index day; not 1 Jan 2021 (index - 365) nor 2020
    assert p1["emergency_admissions_before"] == 2
    assert p1["person_years_before"] == pytest.approx(365 / DAYS_PER_YEAR)
    # Registered on 1 Sep 2021: 30 + 31 + 30 + 31 = 122 days of look-back
    p8 = followed.loc["P8"]
    assert p8["emergency_admissions_before"] == 1
    assert p8["person_years_before"] == pytest.approx(122 / DAYS_PER_YEAR)


def test_follow_up_ends_at_death_with_the_admission_on_the_day_of_death(followed):
    p2 = followed.loc["P2"]
    assert p2["end_date"] == pd.Timestamp("2022-05-01")
    assert p2["person_years"] == pytest.approx(120 / DAYS_PER_YEAR)  # 31+28+31+30
    assert p2["emergency_admissions"] == 1 and p2["event"] == 1 and p2["died"] == 1
    p3 = followed.loc["P3"]
    assert p3["event"] == 2 and p3["time_days"] == 40 and p3["died"] == 1
    assert p3["person_years"] == pytest.approx(40 / DAYS_PER_YEAR)


def test_follow_up_ends_when_the_patient_leaves_the_practice(followed):
    p4 = followed.loc["P4"]
    assert p4["end_date"] == pd.Timestamp("2022-06-15")
    assert p4["person_years"] == pytest.approx(165 / DAYS_PER_YEAR)
    assert p4["emergency_admissions"] == 0 and p4["event"] == 0 and p4["time_days"] == 165


def test_comparator_follow_up_ends_when_their_practice_adopts(followed):
    p5 = followed.loc["P5"]
    assert p5["end_date"] == pd.Timestamp("2022-04-01")
    assert p5["person_years"] == pytest.approx(90 / DAYS_PER_YEAR)  # 31 + 28 + 31
    assert p5["emergency_admissions"] == 1 and p5["event"] == 1 and p5["time_days"] == 73


def test_treated_follow_up_is_not_censored_at_adoption(followed):
    p6 = followed.loc["P6"]
    assert p6["end_date"] == pd.Timestamp("2023-01-01")
    assert p6["emergency_admissions"] == 1 and p6["time_days"] == 120


def test_follow_up_ends_at_the_study_end(followed):
    p7 = followed.loc["P7"]
    assert p7["end_date"] == pd.Timestamp("2024-03-31")
    # 1 Jul 2023 to 31 Mar 2024: 31+31+30+31+30+31+31+29 (leap) + 30 = 274 days
    assert p7["person_years"] == pytest.approx(274 / DAYS_PER_YEAR)
    assert p7["event"] == 0 and p7["time_days"] == 274


def test_readmissions_and_bed_days(followed):
    p8 = followed.loc["P8"]
    assert p8["emergency_admissions"] == 2 and p8["readmissions_30d"] == 1
    assert p8["bed_days"] == 4 and p8["time_days"] == 31


@pytest.mark.parametrize("reverse", [False, True])
def test_readmissions_do_not_depend_on_the_order_of_same_day_spells(tmp_path, reverse):
    """Two spells starting the same day: the one discharged first comes first (then the spell
    id), so the later one is a readmission (0 days after a discharge) whatever order the table
    holds them in; an order left to the database made the count change between runs."""
    patients = _patients([("Q", "X", "1940-01-01", "2000-01-01", None, None)])
    rows = [("Q", "2022-02-01", "2022-02-06", "21"), ("Q", "2022-02-01", "2022-02-01", "21"),
            ("Q", "2022-03-01", "2022-03-02", "21")]
    spells = _spells(rows)
    if reverse:
        spells = spells.iloc[::-1].reset_index(drop=True)
    tables = _write(tmp_path, patients=patients, admissions=spells)
    cohort = pd.DataFrame({"row_id": [0], "patient_id": ["Q"],
                           "index_date": pd.to_datetime([INDEX]), "treated": [1],
                           "censor_date": pd.to_datetime([None])})
    out = follow_up(cohort, str(tables["patients"]), str(tables["admissions"]),
                    "2024-03-31", follow_up_days=365, lookback_days=365).iloc[0]
    # 1 Feb (same-day spell after the day case), 1 Mar (23 days after the 6 Feb discharge)
    assert out["emergency_admissions"] == 3 and out["readmissions_30d"] == 2


# ------------------------------------------------------------------------------------------
# Estimators on hand-made analysed rows
# ------------------------------------------------------------------------------------------

def _pairs() -> pd.DataFrame:
    """Six matched pairs: the enrolled followed 1 year, comparators half a year (censored)."""
    y_t = [0, 0, 1, 4, 0, 2]
    y_c = [1, 0, 3, 5, 0, 1]
    return pd.DataFrame({
        "patient_id": [f"T{i}" for i in range(6)] + [f"C{i}" for i in range(6)],
        "pair": list(range(6)) * 2,
        "treated": [1] * 6 + [0] * 6,
        "emergency_admissions": y_t + y_c,
        "person_years": [1.0] * 6 + [0.5] * 6,
    })


def _hc1(g: int, n: int, k: int) -> float:
    return g / (g - 1) * (n - 1) / (n - k)


def _se(effect) -> float:
    return (np.log(effect.ci_high) - np.log(effect.ci_low)) / (2 * 1.959963985)


def test_rate_ratio_uses_person_time_and_clusters_on_the_matched_set():
    df = _pairs()
    effect = fx.rate_ratio(df, cluster="pair")
    assert effect.fallback is None and effect.method.startswith("negative binomial")
    # With equal person-time within each arm the fitted rate of an arm is its pooled rate:
    # enrolled 7 admissions / 6 years, comparators 10 / 3 years.
    rate_t, rate_c = 7 / 6.0, 10 / 3.0
    assert effect.estimate == pytest.approx(rate_t / rate_c, rel=1e-6)
    # Leave-one-pair-out jackknife (the default): without pair g each arm's rate is still its
    # pooled rate, (7 - y_t[g]) / 5 and (10 - y_c[g]) / 2.5, so the refits are known exactly;
    # V = (G - 1) / G * sum (b_g - mean b)^2.
    y_t = df.loc[df["treated"] == 1, "emergency_admissions"].to_numpy()
    y_c = df.loc[df["treated"] == 0, "emergency_admissions"].to_numpy()
    b = np.log((7 - y_t) / 5.0) - np.log((10 - y_c) / 2.5)
    var = 5 / 6 * np.sum((b - b.mean()) ** 2)
    assert _se(effect) == pytest.approx(np.sqrt(var), rel=1e-6)
    assert effect.n_clusters == 6 and "6 clusters" in effect.se_method
    assert effect.se_method.startswith("cluster jackknife (leave-one-cluster-out refits)")


def test_rate_ratio_sandwich_clusters_on_the_matched_set():
    df = _pairs()
    effect = fx.rate_ratio(df, cluster="pair", cluster_variance="sandwich")
    rate_t, rate_c = 7 / 6.0, 10 / 3.0
    # Cluster-robust variance of the log rate ratio: the score of each arm's log rate in a
    # pair is (y - rate * t) / (arm total), so V = HC1 * sum over pairs of the difference^2.
    u_t = (df["emergency_admissions"] - rate_t * df["person_years"])[df["treated"] == 1] / 7
    u_c = (df["emergency_admissions"] - rate_c * df["person_years"])[df["treated"] == 0] / 10
    var = _hc1(6, 12, 2) * np.sum((u_t.to_numpy() - u_c.to_numpy()) ** 2)
    assert _se(effect) == pytest.approx(np.sqrt(var), rel=1e-4)
    assert effect.se_method.startswith("cluster-robust (sandwich)")


def test_rate_ratio_without_pairing_has_the_person_level_jackknife():
    df = _pairs()
    effect = fx.rate_ratio(df, cluster="patient_id")
    # leaving out one person changes only their arm's pooled rate
    y = df["emergency_admissions"].to_numpy()
    treated = df["treated"].to_numpy() == 1
    b = np.where(treated, np.log((7 - y) / 5.0) - np.log(10 / 3.0),
                 np.log(7 / 6.0) - np.log((10 - y) / 2.5))
    var = 11 / 12 * np.sum((b - b.mean()) ** 2)
    assert _se(effect) == pytest.approx(np.sqrt(var), rel=1e-6)
    assert effect.n_clusters == 12


def test_rate_ratio_without_pairing_has_the_person_level_sandwich():
    df = _pairs()
    effect = fx.rate_ratio(df, cluster="patient_id", cluster_variance="sandwich")
    rate_t, rate_c = 7 / 6.0, 10 / 3.0
    resid = df["emergency_admissions"] - np.where(df["treated"] == 1, rate_t, rate_c) \
        * df["person_years"]
    scaled = np.where(df["treated"] == 1, resid / 7, -resid / 10)
    var = _hc1(12, 12, 2) * np.sum(scaled ** 2)
    se = (np.log(effect.ci_high) - np.log(effect.ci_low)) / (2 * 1.959963985)
    assert se == pytest.approx(np.sqrt(var), rel=1e-4)
    assert effect.n_clusters == 12


def _before_after() -> pd.DataFrame:
    """Two enrolled, two comparators (one matched set each), person-time varying."""
    return pd.DataFrame({
        "patient_id": ["T1", "T2", "C1", "C2"],
        "match_cluster": [0, 1, 0, 1],
        "treated": [1, 1, 0, 0],
        "emergency_admissions_before": [3, 1, 2, 2],
        "person_years_before": [1.0, 0.5, 1.0, 1.0],
        "emergency_admissions": [1, 1, 2, 0],
        "person_years": [1.0, 0.25, 0.5, 1.0],
    })


def test_difference_in_differences_weights_rates_by_person_time():
    df = _before_after()
    effect, table = fx.did_before_after(df, cluster="match_cluster")
    # Pooled rates (admissions / person-years) per 1,000:
    # enrolled before 4 / 1.5, after 2 / 1.25; comparators before 4 / 2, after 2 / 1.5
    expected = 1000 * ((2 / 1.25 - 4 / 1.5) - (2 / 1.5 - 4 / 2))
    assert effect.estimate == pytest.approx(expected, rel=1e-9)
    rtm = table.set_index("arm")
    assert rtm.loc["enrolled", "rate_before_per_1000"] == pytest.approx(1000 * 4 / 1.5)
    assert rtm.loc["matched comparators", "rate_after_per_1000"] == pytest.approx(1000 * 2 / 1.5)


def test_difference_in_differences_clustered_variance_by_hand():
    df = _before_after()
    effect, _ = fx.did_before_after(df, cluster="match_cluster")
    # The WLS is saturated: the estimate is sum(sign * w * rate / W_cell); its cluster-robust
    # variance sums, over clusters, sign * w * (rate - cell rate) / W_cell.
    contributions = np.zeros(2)
    for post, (y, t) in enumerate([("emergency_admissions_before", "person_years_before"),
                                   ("emergency_admissions", "person_years")]):
        for arm in (1, 0):
            cell = df[df["treated"] == arm]
            w, rate = cell[t], 1000 * cell[y] / cell[t]
            mean = np.sum(w * rate) / np.sum(w)
            sign = (1 if post else -1) * (1 if arm else -1)
            np.add.at(contributions, cell["match_cluster"].to_numpy(),
                      sign * w * (rate - mean) / np.sum(w))
    var = _hc1(2, 8, 4) * np.sum(contributions ** 2)
    se = (effect.ci_high - effect.ci_low) / (2 * 1.96)
    assert se == pytest.approx(np.sqrt(var), rel=1e-6)
    assert effect.n_clusters == 2


def test_difference_in_differences_reports_the_larger_of_set_and_person_clustering():
    df = _before_after()
    by_set, _ = fx.did_before_after(df, cluster="match_cluster")
    by_person, _ = fx.did_before_after(df, cluster="patient_id")
    both, _ = fx.did_before_after(df, cluster="match_cluster", conservative_cluster="patient_id")
    assert both.estimate == by_set.estimate
    assert both.ci_high - both.ci_low == pytest.approx(
        max(by_set.ci_high - by_set.ci_low, by_person.ci_high - by_person.ci_low))
    assert "larger" in both.se_method


def test_naive_before_after_uses_the_enrolled_only_and_both_windows():
    df = _before_after()
    effect = fx.naive_before_after(df)
    # Enrolled: 2 admissions in 1.25 years after, 4 in 1.5 years before
    assert effect.estimate == pytest.approx((2 / 1.25) / (4 / 1.5), rel=1e-6)
    assert effect.n_treated == 2 and effect.n_control == 0
    t = df[df["treated"] == 1]
    r_after, r_before = 2 / 1.25, 4 / 1.5
    u = ((t["emergency_admissions"] - r_after * t["person_years"]) / 2
         - (t["emergency_admissions_before"] - r_before * t["person_years_before"]) / 4)
    var = _hc1(2, 4, 2) * np.sum(u ** 2)
    se = (np.log(effect.ci_high) - np.log(effect.ci_low)) / (2 * 1.96)
    assert se == pytest.approx(np.sqrt(var), rel=1e-6)


# ------------------------------------------------------------------------------------------
# Matched sets
# ------------------------------------------------------------------------------------------

def test_matched_sets_sharing_a_person_form_one_cluster():
    df = pd.DataFrame({"matched_set": [1, 1, 2, 2, 3, 3, 4, 4],
                       "patient_id": ["a", "b", "c", "d", "e", "b", "f", "g"]})
    clusters = fx.matched_set_clusters(df)
    assert clusters.nunique() == 3
    assert clusters.iloc[0] == clusters.iloc[1] == clusters.iloc[4] == clusters.iloc[5]
    assert clusters.iloc[2] == clusters.iloc[3] != clusters.iloc[0]
    assert clusters.iloc[6] == clusters.iloc[7] not in (clusters.iloc[0], clusters.iloc[2])


def _candidates(seed: int = 3) -> pd.DataFrame:
    """Enrolment driven by recent admissions and frailty, two index months."""
    rng = np.random.default_rng(seed)
    n = 700
    df = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)],
        "age": rng.uniform(65, 95, n),
        "efi_deficits": rng.poisson(7, n),
        "n_emergency_admissions_1y": rng.poisson(0.9, n),
        "bed_days_1y": rng.poisson(3, n),
        "n_ltc": rng.poisson(3, n), "n_medications": rng.poisson(6, n),
        "hfrs": rng.gamma(2, 2, n), "imd_decile": rng.integers(1, 11, n).astype(float),
        "sex": rng.choice(["F", "M"], n),
        "index_month_code": rng.choice(["2021-01", "2021-02"], n),
    })
    df["n_emergency_admissions_2y"] = df["n_emergency_admissions_1y"] + rng.poisson(0.6, n)
    for c in ("ltc_copd", "ltc_heart_failure", "ltc_dementia", "ltc_diabetes"):
        df[c] = rng.binomial(1, 0.2, n)
    df["efi_group"] = np.where(df["efi_deficits"] >= 9, "moderate/severe", "fit/mild")
    logit = -2.6 + 0.5 * df["n_emergency_admissions_1y"] + 0.05 * (df["efi_deficits"] - 7)
    df["treated"] = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    # one person a candidate in both months (a sequence of target trials)
    twice = df.iloc[[0]].assign(index_month_code="2021-02", treated=0)
    return pd.concat([df, twice], ignore_index=True)


def test_matched_sets_are_exact_on_month_recent_admissions_and_frailty():
    rows, result, matched = match_cohort(_candidates())
    assert set(COVARIATES) <= set(rows.columns)
    sets = matched.groupby("matched_set")
    assert (sets["treated"].sum() == 1).all() and (sets.size() == 2).all()
    for column in ("index_month_code", "recent_admissions_band", "efi_group"):
        assert (sets[column].nunique() == 1).all(), column
    assert rows["recent_admissions_band"].max() == 3  # 3 or more admissions: one band
    # Every enrolled patient is in one set; comparators are used once.
    assert matched.loc[matched["treated"] == 1, "patient_id"].is_unique
    assert len(matched) == 2 * int(result.match_matrix.notna().sum().iloc[0])
    # Clusters nest the sets
    assert (matched.groupby("matched_set")["match_cluster"].nunique() == 1).all()


def test_ratio_two_gives_sets_of_three():
    _, _, matched = match_cohort(_candidates(), matching={"ratio": 2, "caliper": None})
    sizes = matched.groupby("matched_set").size()
    assert sizes.max() == 3 and (matched.groupby("matched_set")["treated"].sum() == 1).all()


# ------------------------------------------------------------------------------------------
# Event study months
# ------------------------------------------------------------------------------------------

def test_event_months_put_the_index_day_before_and_keep_only_observed_months():
    analysed = pd.DataFrame({
        "row_id": [0, 1], "patient_id": ["A", "B"], "match_cluster": [7, 7],
        "index_date": pd.to_datetime([INDEX, INDEX]),
        "end_date": pd.to_datetime(["2022-03-15", "2023-01-01"]),  # 73 and 365 days
        "treated": [1, 0]})
    spells = _spells([
        ("A", "2021-01-01", "2021-01-01", "21"),   # day -365: outside the 12 months
        ("A", "2021-01-02", "2021-01-02", "21"),   # day -364: month -12
        ("A", "2022-01-01", "2022-01-01", "21"),   # index day: month -1
        ("A", "2022-01-31", "2022-01-31", "21"),   # day 30: month 0
        ("A", "2022-02-01", "2022-02-01", "21"),   # day 31: month 1
        ("A", "2022-03-10", "2022-03-10", "21"),   # day 68: month 2, not wholly observed
        ("B", "2023-01-01", "2023-01-01", "21"),   # day 365: month 11
    ])
    spells["admission_date"] = pd.to_datetime(spells["admission_date"])
    panel = monthly_panel(analysed, spells=spells, cluster_col="match_cluster")
    a = panel[panel["row_id"] == 0].set_index("month")
    # months -12..-1, then 0 (days 1-30) and 1 (to day 60); month 2 ends on day 91 > 73
    assert a.index.tolist() == list(range(-12, 2))
    assert a["y"].to_dict() == {m: (1.0 if m in (-12, -1, 0, 1) else 0.0) for m in a.index}
    b = panel[panel["row_id"] == 1].set_index("month")
    assert b.index.tolist() == list(range(-12, 12)) and b.loc[11, "y"] == 1
    assert int(np.floor(12 * MONTH_DAYS)) == 365
    assert (panel["match_cluster"] == 7).all() and set(panel["patient_id"]) == {"A", "B"}


def test_clustered_pretest_with_one_unit_per_cluster_is_the_usual_test():
    rng = np.random.default_rng(5)
    units = 120
    panel = pd.DataFrame({"row_id": np.repeat(np.arange(units), 8),
                          "period": np.tile(np.arange(1, 9), units)})
    panel["g"] = np.where(panel["row_id"] < 40, 6, 0)
    panel["y"] = rng.poisson(1.0, len(panel)).astype(float)
    panel["own"] = panel["row_id"] + 1000
    common = dict(yname="y", tname="period", idname="row_id", gname="g",
                  control_group="nevertreated", est_method="reg", base_period="universal",
                  anticipation=1)
    plain = att_gt(panel, bstrap=False, **common).pretest(exclude_anticipation=True)
    clustered = clustered_pretest(att_gt(panel, bstrap=True, biters=49, seed=1,
                                         clustervars="own", **common), 1)
    assert clustered["df"] == plain["df"] == 3
    assert clustered["statistic"] == pytest.approx(plain["statistic"], rel=1e-8)


def test_rate_ratio_falls_back_to_the_sandwich_when_a_refit_does_not_exist():
    # all the enrolled arm's admissions are in pair 3: without it the enrolled rate is 0 and
    # its log is not finite, so the jackknife cannot be computed
    df = _pairs()
    df.loc[df["treated"] == 1, "emergency_admissions"] = [0, 0, 0, 5, 0, 0]
    effect = fx.rate_ratio(df, cluster="pair")
    assert np.isfinite(effect.estimate) and np.isfinite(effect.ci_high)
    assert "cluster jackknife not used" in effect.fallback
    assert effect.se_method.startswith("cluster-robust (sandwich)")
    sandwich = fx.rate_ratio(df, cluster="pair", cluster_variance="sandwich")
    assert (effect.ci_low, effect.ci_high) == (sandwich.ci_low, sandwich.ci_high)
    assert sandwich.fallback is None
