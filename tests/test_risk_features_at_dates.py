"""Features at many index dates from the reduced record equal the direct computation."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from phm_eval.ingest import StudyPeriod, ingest
from phm_eval.risk.features import risk_features
from phm_eval.risk.features_at_dates import FULL_HISTORY_DAYS, risk_features_at_dates
from phm_eval.synth import simulate


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("features_at_dates")
    simulate("smoke", out=root / "raw", seed=5)
    ingest(root / "raw", root / "clean", StudyPeriod("2019-04-01", "2024-03-31"))
    return [root / "clean" / f"{t}.parquet" for t in
            ("patients", "events", "admissions", "practices")]


def test_every_date_matches_the_full_record(paths):
    dates = ["2021-06-01", "2020-04-01", "2022-03-01", "2020-04-01"]
    seen = []
    for date, frame in risk_features_at_dates(*paths, dates, min_age=65):
        seen.append(date)
        direct = risk_features(*paths, date, min_age=65)
        assert len(frame) > 50
        pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                      direct.reset_index(drop=True))
    assert seen == [dt.date(2020, 4, 1), dt.date(2021, 6, 1), dt.date(2022, 3, 1)]


def test_window_edges_survive_the_reduction(paths, tmp_path):
    """Events exactly 365 and 366 days before the earliest date and an old repeat of a code."""
    patients, events, admissions, practices = paths
    ev = pd.read_parquet(events)
    first = dt.date(2021, 6, 1)
    person = ev["patient_id"].iloc[0]
    extra = ev[ev["patient_id"] == person].head(3).copy()
    extra["date"] = pd.Series(pd.to_datetime([
        first - dt.timedelta(days=365), first - dt.timedelta(days=FULL_HISTORY_DAYS),
        first - dt.timedelta(days=FULL_HISTORY_DAYS + 1)]), index=extra.index).astype(
            ev["date"].dtype)
    edited = tmp_path / "events.parquet"
    pd.concat([ev, extra], ignore_index=True).to_parquet(edited)
    for date, frame in risk_features_at_dates(patients, edited, admissions, practices,
                                              [first, "2021-07-01"], min_age=18):
        direct = risk_features(patients, edited, admissions, practices, date, min_age=18)
        pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                      direct.reset_index(drop=True))


def test_no_dates_yields_nothing(paths):
    assert list(risk_features_at_dates(*paths, [])) == []


def test_practices_at_keeps_the_same_rows_of_the_practices_asked_for(paths):
    practices = pd.read_parquet(paths[3])["practice_id"].tolist()
    wanted = {dt.date(2020, 4, 1): set(practices[:1]), dt.date(2021, 6, 1): set(practices[1:]),
              dt.date(2022, 3, 1): set()}
    for date, frame in risk_features_at_dates(*paths, list(wanted), min_age=65,
                                              practices_at=wanted):
        direct = risk_features(*paths, date, min_age=65)
        expected = direct[direct["practice_id"].isin(wanted[date])]
        assert set(frame["practice_id"]) == wanted[date] or (frame.empty and not wanted[date])
        pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                      expected.reset_index(drop=True), check_dtype=False)


def test_reading_only_the_population_changes_no_feature(paths):
    full = risk_features(*paths, "2021-06-01", min_age=65)
    only = risk_features(*paths, "2021-06-01", min_age=65, population_only=True)
    assert len(full) > 50
    pd.testing.assert_frame_equal(only, full)
