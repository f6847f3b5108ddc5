"""The shared definitions at their boundaries, and every stage counting the same population."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import as_dates, make_patients

from phm_eval import definitions as d

DAY = "2022-04-01"


def _sql(expression: str, **tables: pd.DataFrame) -> list:
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(name, frame)
    return [row[0] for row in con.execute(expression).fetchall()]


def _patients() -> pd.DataFrame:
    rows = [  # id, date_of_birth, registration_start, registration_end, date_of_death
        ("starts_today", "1950-01-01", DAY, None, None),
        ("starts_tomorrow", "1950-01-01", "2022-04-02", None, None),
        ("ends_today", "1950-01-01", "2000-01-01", DAY, None),
        ("ends_tomorrow", "1950-01-01", "2000-01-01", "2022-04-02", None),
        ("died_today", "1950-01-01", "2000-01-01", None, DAY),
        ("dies_tomorrow", "1950-01-01", "2000-01-01", None, "2022-04-02"),
        ("born_today", DAY, DAY, None, None),
        ("same_day_registration", "1950-01-01", DAY, DAY, None),
    ]
    ids, dob, start, end, death = (list(c) for c in zip(*rows, strict=True))
    frame = make_patients(ids, date_of_birth=dob, registration_start=start,
                          registration_end=end, date_of_death=death)
    return as_dates(frame, kind="datetime64")


REGISTERED = {"starts_today", "ends_tomorrow", "dies_tomorrow", "born_today"}


def test_registered_on_a_date_boundaries_sql_and_pandas_agree():
    pats = _patients()
    got = _sql(f"SELECT patient_id FROM pats WHERE {d.registered_on_sql(d.date_literal(DAY))}",
               pats=pats)
    assert set(got) == REGISTERED
    assert set(pats["patient_id"][d.registered_on(pats, DAY)]) == REGISTERED
    # With an alias, and the day before: the people whose exits are today were registered.
    got = _sql("SELECT p.patient_id FROM pats p WHERE "
               f"{d.registered_on_sql(d.date_literal('2022-03-31'), 'p')}", pats=pats)
    assert set(got) == {"ends_today", "ends_tomorrow", "died_today", "dies_tomorrow"}


def test_observed_records_run_through_the_exit_day():
    pats = _patients().set_index("patient_id").loc[["died_today", "ends_today"]].reset_index()
    got = _sql(f"SELECT patient_id FROM pats WHERE {d.observed_sql(d.date_literal(DAY))}",
               pats=pats)
    assert set(got) == {"died_today", "ends_today"}
    after = d.date_literal("2022-04-02")
    assert _sql(f"SELECT count(*) FROM pats WHERE {d.observed_sql(after)}", pats=pats) == [0]


def test_census_days_equal_a_day_by_day_count():
    pats = _patients()
    first, last = "2022-03-25", "2022-04-05"
    got = _sql(f"SELECT {d.census_days_sql(d.date_literal(first), d.date_literal(last))} "
               "FROM pats", pats=pats)
    expected = sum(
        (d.registered_on(pats, day).astype(int) for day in pd.date_range(first, last)),
        np.zeros(len(pats), dtype=int),
    )
    assert got == expected.tolist()


@pytest.mark.parametrize(
    ("dob", "day", "age"),
    [
        ("1957-04-02", "2022-04-01", 64),  # the day before the 65th birthday
        ("1957-04-01", "2022-04-01", 65),  # the birthday
        ("1957-03-31", "2022-04-01", 65),  # the day after
        ("1957-04-01", "2022-03-31", 64),  # month-precision birth date (the 1st)
        ("2000-02-29", "2001-02-28", 0),   # 29 February: a year older on 1 March
        ("2000-02-29", "2001-03-01", 1),
        ("2000-02-29", "2004-02-29", 4),
        (DAY, DAY, 0),
    ],
)
def test_age_in_completed_years(dob, day, age):
    assert _sql(f"SELECT {d.age_sql(d.date_literal(dob), d.date_literal(day))}") == [age]
    assert d.age_on([dob], day).tolist() == [age]
    exact = _sql(f"SELECT {d.exact_age_sql(d.date_literal(dob), d.date_literal(day))}")[0]
    assert int(np.floor(exact)) == age and age <= exact < age + 1


def test_exact_age_whole_part_is_age_on_every_day_of_four_years():
    days = pd.date_range("2019-01-01", "2023-01-01")
    frame = pd.DataFrame({"day": days, "dob": pd.Timestamp("1960-02-29")})
    got = _sql(f"SELECT floor({d.exact_age_sql('dob', 'CAST(day AS DATE)')}) = "
               f"{d.age_sql('dob', 'CAST(day AS DATE)')} FROM frame", frame=frame)
    assert all(got)
    assert np.array_equal(d.age_on(frame["dob"], frame["day"]),
                          _sql(f"SELECT {d.age_sql('dob', 'day')} FROM frame", frame=frame))


def test_missing_birth_date_has_no_age():
    assert np.isnan(d.age_on([None], DAY)[0])


@pytest.mark.parametrize(
    ("method", "emergency"),
    [("21", True), ("11", False), ("2A", True), ("2D", True), ("28", True), ("31", False),
     ("81", False), ("2", False), ("2Z", False)],
)
def test_emergency_admission(method, emergency):
    assert _sql(f"SELECT {d.emergency_sql(repr(method))}") == [emergency]
    assert d.is_emergency([method]).tolist() == [emergency]


def test_emergency_exclusions():
    assert _sql(f"SELECT {d.emergency_sql(repr('2B'), exclude=['2b'])}") == [False]
    assert d.is_emergency(["2B", "21"], exclude=["2B"]).tolist() == [False, True]
    assert _sql(f"SELECT {d.emergency_sql(repr('21'), exclude=d.EMERGENCY_METHODS)}") == [False]
    with pytest.raises(ValueError):
        d.emergency_sql(exclude=["2B'; DROP"])


def _in_window(sql_builder, dates, **kw):
    frame = pd.DataFrame({"x": pd.to_datetime(dates)})
    return _sql(f"SELECT {sql_builder('CAST(x AS DATE)', d.date_literal(DAY), **kw)} "
                "FROM frame", frame=frame)


def test_lookback_is_the_n_days_ending_with_the_day():
    dates = ["2021-04-01", "2021-04-02", DAY, "2022-04-02"]  # d - 365, d - 364, d, d + 1
    assert _in_window(d.lookback_sql, dates, days=365) == [False, True, True, False]
    assert d.in_lookback(dates, DAY, days=365).tolist() == [False, True, True, False]
    assert _in_window(d.lookback_sql, dates, months=12) == [False, True, True, False]
    assert d.in_lookback(dates, DAY, months=12).tolist() == [False, True, True, False]


def test_follow_up_is_the_n_days_after_the_day():
    dates = [DAY, "2022-04-02", "2023-04-01", "2023-04-02"]  # d, d + 1, d + 365, d + 366
    assert _in_window(d.follow_up_sql, dates, days=365) == [False, True, True, False]
    assert d.in_follow_up(dates, DAY, days=365).tolist() == [False, True, True, False]
    assert _in_window(d.follow_up_sql, dates, months=12) == [False, True, True, False]
    assert _in_window(d.follow_up_sql, dates, end="DATE '2022-04-02'") == [False, True, False,
                                                                           False]


def test_months_clamp_to_the_end_of_the_month():
    assert _sql(f"SELECT {d.shift_sql(d.date_literal('2021-03-31'), months=-1)}") == [
        dt.date(2021, 2, 28)]
    assert d.shift("2021-03-31", months=-1) == pd.Timestamp("2021-02-28")
    with pytest.raises(ValueError):
        d.shift_sql("x", days=1, months=1)


def test_follow_up_end_is_the_earliest_limit():
    pats = _patients().set_index("patient_id").loc[["dies_tomorrow", "starts_today"]]
    end = d.follow_up_end_sql(d.date_literal(DAY), days=365, limits=["DATE '2022-06-30'"])
    assert _sql(f"SELECT {end} FROM pats", pats=pats.reset_index()) == [
        dt.date(2022, 4, 2), dt.date(2022, 6, 30)]


# --------------------------------------------------------------------------------------------
# Every stage counts the same registered population.
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from phm_eval.synth import simulate

    out = tmp_path_factory.mktemp("smoke")
    simulate("smoke", out=out, n_patients=1500, seed=11)
    tables = {name: str(out / f"{name}.parquet")
              for name in ("patients", "events", "admissions", "practices")}
    patients = pd.read_parquet(tables["patients"])
    # Dates on which somebody's registration ends or somebody dies: the edge that differed.
    exits = pd.concat([patients["registration_end"], patients["date_of_death"]]).dropna()
    exits = pd.to_datetime(exits)
    exits = exits[(exits > "2020-06-01") & (exits < "2023-03-01")].sort_values()
    assert len(exits) >= 2
    return tables, patients, [exits.iloc[0].date(), exits.iloc[len(exits) // 2].date()]


def test_every_stage_counts_the_same_registered_population(smoke):
    from phm_eval.describe import population_pyramid
    from phm_eval.frailty.population import eligibility
    from phm_eval.risk.features import risk_features
    from phm_eval.risk.features_at_dates import risk_features_at_dates
    from phm_eval.segment.population import build_population

    tables, patients, days = smoke
    at_dates = dict(risk_features_at_dates(tables["patients"], tables["events"],
                                           tables["admissions"], tables["practices"], days,
                                           min_age=0))
    for day in days:
        expected = int(d.registered_on(patients, day).sum())
        # The chosen day is someone's exit date: counting it as registered would differ.
        exiting = ((pd.to_datetime(patients["registration_end"]) == pd.Timestamp(day))
                   | (pd.to_datetime(patients["date_of_death"]) == pd.Timestamp(day)))
        assert exiting.any()
        counts = {
            "describe": int(population_pyramid(tables["patients"], day.isoformat())["n"].sum()),
            "risk.features": len(risk_features(tables["patients"], tables["events"],
                                               tables["admissions"], tables["practices"], day,
                                               min_age=0)),
            "evaluate (features at index dates)": len(at_dates[day]),
            "segment": len(build_population(tables["patients"], tables["events"],
                                            tables["admissions"], day)),
            "frailty": int(eligibility(tables["patients"], day, min_age=None)["eligible"].sum()),
        }
        assert counts == dict.fromkeys(counts, expected), day


def test_des_mid_year_list_is_the_census(smoke):
    from phm_eval.segment.des_metrics import des_metrics

    tables, patients, _ = smoke
    metrics = des_metrics(tables["events"], tables["patients"], tables["practices"],
                          "2021-04-01", "2022-03-31")
    sizes = metrics.practice.drop_duplicates("practice_id")["list_size"].sum()
    assert sizes == int(d.registered_on(patients, "2021-09-30").sum())
