"""DES personalised-care metrics: financial-year edges, attribution, list sizes, targets."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import make_events, make_patients, make_practices

from phm_eval.errors import InputError
from phm_eval.segment import des_metrics, financial_year, financial_years

PCSP_AGREED = "1187911000000105"
PCSP_REVIEW = "1187921000000104"
SOCIAL_PRESCRIBING = "871731000000106"


def _tables():
    practices = make_practices([("PR1", "PCN1"), ("PR2", "PCN1"), ("PR3", "PCN2")])
    people = [
        ("a1", "PR1", "2015-01-01", None, None),
        ("a2", "PR1", "2021-10-01", None, None),          # joins after mid-year
        ("a3", "PR1", "2015-01-01", "2021-10-01", None),  # leaves the day after mid-year
        ("b1", "PR2", "2015-01-01", None, None),
        ("c1", "PR3", "2015-01-01", None, "2021-09-30"),  # dead on mid-year day
    ]
    ids, practice, start, end, death = (list(c) for c in zip(*people, strict=True))
    patients = make_patients(ids, practice_id=practice, date_of_birth="1950-01-01",
                             registration_start=start, registration_end=end,
                             date_of_death=death)
    events = make_events(
        [
            ("a1", "2021-03-31", PCSP_AGREED),        # 2020/21 (last day)
            ("a1", "2021-04-01", PCSP_AGREED),        # 2021/22 (first day)
            ("a1", "2021-04-01", PCSP_REVIEW),        # same day, same activity: once
            ("a1", "2022-03-31", PCSP_REVIEW),        # 2021/22 (last day)
            ("a1", "2022-04-01", PCSP_REVIEW),        # 2022/23: outside the period asked
            ("a2", "2021-09-01", PCSP_AGREED),        # before a2 registered: not credited
            ("a3", "2021-09-30", SOCIAL_PRESCRIBING),  # last day registered: counts
            ("a3", "2021-10-02", SOCIAL_PRESCRIBING),  # after leaving: not credited
            ("b1", "2021-06-01", PCSP_AGREED),
            ("b1", "2021-06-01", "22298006"),         # not a personalised-care code
        ]
    )
    return events, patients, practices


def test_financial_year_edges():
    assert financial_year("2021-03-31") == "2020/21"
    assert financial_year("2021-04-01") == "2021/22"
    assert financial_year("2000-01-15") == "1999/00"
    years = financial_years("2019-04-01", "2024-03-31")
    assert years["financial_year"].tolist() == ["2019/20", "2020/21", "2021/22", "2022/23",
                                                "2023/24"]
    assert years["complete_year"].all()
    assert years.loc[2, "mid_date"] == dt.date(2021, 9, 30)
    assert years.loc[0, "days"] == 366  # 2019/20 includes 29 February 2020
    partial = financial_years("2021-10-01", "2022-03-31")
    assert not partial.loc[0, "complete_year"] and partial.loc[0, "days"] == 182
    with pytest.raises(InputError):
        financial_years("2022-01-01", "2021-01-01")


def _row(table, **keys):
    sel = table
    for key, value in keys.items():
        sel = sel[sel[key] == value]
    assert len(sel) == 1, keys
    return sel.iloc[0]


def test_counts_list_sizes_rates_and_targets():
    events, patients, practices = _tables()
    metrics = des_metrics(events, patients, practices, "2020-04-01", "2022-03-31")
    practice = metrics.practice
    pr1 = _row(practice, practice_id="PR1", financial_year="2021/22", activity="pcsp")
    assert pr1["n_activities"] == 2 and pr1["n_patients"] == 1
    assert pr1["list_size"] == 2  # a1 and a3 on 30 September 2021
    assert pr1["rate_per_1000"] == pytest.approx(1000.0)
    assert (pr1["target_low"], pr1["target_high"]) == (10.0, 15.0)
    assert pr1["target_status"] == "above"
    earlier = _row(practice, practice_id="PR1", financial_year="2020/21", activity="pcsp")
    assert earlier["n_activities"] == 1 and earlier["rate_per_1000"] == pytest.approx(500.0)
    sp = _row(practice, practice_id="PR1", financial_year="2021/22",
              activity="social_prescribing_referral")
    assert sp["n_activities"] == 1
    assert (sp["target_low"], pd.isna(sp["target_high"])) == (8.0, True)
    # Activities without events still have rows, with zero counts.
    pam = _row(practice, practice_id="PR2", financial_year="2021/22", activity="pam")
    assert pam["n_activities"] == 0 and pam["target_status"] == "no target"
    dead = _row(practice, practice_id="PR3", financial_year="2021/22", activity="pcsp")
    assert dead["list_size"] == 0 and pd.isna(dead["rate_per_1000"])
    assert dead["target_status"] == "no list"

    pcn = _row(metrics.pcn, pcn_id="PCN1", financial_year="2021/22", activity="pcsp")
    assert pcn["n_activities"] == 3 and pcn["list_size"] == 3
    assert pcn["rate_per_1000"] == pytest.approx(1000.0)
    overall = _row(metrics.overall, financial_year="2020/21", activity="pcsp")
    assert overall["list_size"] == 4  # a1, a3, b1, c1 on 30 September 2020
    assert len(metrics.practice) == 3 * 2 * 4


def test_average_list_size():
    events, patients, practices = _tables()
    metrics = des_metrics(events, patients, practices, "2021-04-01", "2022-03-31",
                          list_size="average")
    pr1 = _row(metrics.practice, practice_id="PR1", financial_year="2021/22", activity="pcsp")
    # a1 365 days + a2 182 (from 1 October) + a3 183 (to 30 September) = 730 / 365 = 2.
    assert pr1["list_size"] == 2
    # c1 alive 182 of 365 days: 0.4986 rounds to 0.
    pr3 = _row(metrics.practice, practice_id="PR3", financial_year="2021/22", activity="pcsp")
    assert pr3["list_size"] == 0


def test_partial_year_not_compared_with_target():
    events, patients, practices = _tables()
    metrics = des_metrics(events, patients, practices, "2021-10-01", "2022-03-31")
    pr1 = _row(metrics.practice, practice_id="PR1", financial_year="2021/22", activity="pcsp")
    assert pr1["n_activities"] == 1  # only the 31 March 2022 review is inside
    assert pr1["target_status"] == "partial year"
    # Mid-point of 1 October - 31 March is 30 December: a1 and a2 registered.
    assert pr1["list_size"] == 2


def test_year_without_published_target():
    events, patients, practices = _tables()
    metrics = des_metrics(events, patients, practices, "2022-04-01", "2023-03-31")
    assert (metrics.pcn["target_status"] == "no target").all()


def test_funnel_table_and_disclosure_spec():
    events, patients, practices = _tables()
    metrics = des_metrics(events, patients, practices, "2020-04-01", "2022-03-31")
    table = metrics.funnel_table("pcsp", "2021/22")
    assert list(table.index) == ["PR1", "PR2", "PR3"]
    assert set(metrics.disclosure_spec["count_cols"]) <= set(table.columns)
    with pytest.raises(InputError):
        metrics.funnel_table("pcsp", "1999/00")
