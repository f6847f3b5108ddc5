"""Descriptive epidemiology of the registered population, computed in DuckDB over Parquet.

All functions return *true* counts; callers pass them through disclosure control
(:func:`phm_eval.disclosure.apply_disclosure`) before anything leaves the analysis.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from .codelists import load_codelist
from .db import connect
from .definitions import (
    age_sql,
    census_days_sql,
    date_literal,
    emergency_sql,
    entry_date_sql,
    exit_date_sql,
    registered_on_sql,
)

AGE_BAND_SQL = (
    "CASE WHEN {age} >= 90 THEN '90+' ELSE "
    "lpad(CAST(5 * floor({age} / 5) AS INTEGER)::VARCHAR, 2, '0') || '-' || "
    "lpad(CAST(5 * floor({age} / 5) + 4 AS INTEGER)::VARCHAR, 2, '0') END"
)
BROAD_AGE_SQL = (
    "CASE WHEN {age} < 16 THEN '0-15' WHEN {age} < 45 THEN '16-44' WHEN {age} < 65 THEN '45-64' "
    "WHEN {age} < 75 THEN '65-74' WHEN {age} < 85 THEN '75-84' ELSE '85+' END"
)


def _source(table: str | Path | pd.DataFrame, con: duckdb.DuckDBPyConnection, name: str) -> str:
    if isinstance(table, pd.DataFrame):
        con.register(name, table)
        return name
    return f"read_parquet('{Path(table)}')"


def registered_on(day: str) -> str:
    """SQL condition: registered on ``day`` (:func:`phm_eval.definitions.registered_on_sql`)."""
    return registered_on_sql(date_literal(day))


def population_pyramid(patients, day: str) -> pd.DataFrame:
    """Registered people on ``day`` by five-year age band and sex.

    Returns columns ``age_band``, ``sex``, ``n``.
    """
    con = connect()
    src = _source(patients, con, "patients")
    age = age_sql("date_of_birth", date_literal(day))
    return con.execute(
        f"""SELECT {AGE_BAND_SQL.format(age=age)} AS age_band, sex, count(*) AS n
        FROM {src} WHERE {registered_on(day)} GROUP BY ALL ORDER BY age_band, sex"""
    ).df()


def ltc_prevalence(patients, events, day: str, *, codelist_dir=None) -> pd.DataFrame:
    """Recorded prevalence of each long-term condition on ``day`` by broad age band and IMD
    quintile (1 = most deprived); a condition counts if any of its codes is dated on or before
    ``day``.

    Returns columns ``condition``, ``age_band``, ``imd_quintile``, ``n_with_condition``,
    ``n_registered``.
    """
    ltc = load_codelist("ltc", codelist_dir)[["condition", "snomed_code"]]
    ltc = ltc[ltc["condition"] != "pregnancy"]
    con = connect()
    con.register("ltc_codes", ltc)
    p_src = _source(patients, con, "patients")
    e_src = _source(events, con, "events")
    age = age_sql("date_of_birth", date_literal(day))
    return con.execute(
        f"""
        WITH pop AS (
            SELECT patient_id, {BROAD_AGE_SQL.format(age=age)} AS age_band,
                   coalesce(CAST(ceil(imd_decile / 2.0) AS INTEGER)::VARCHAR, 'unknown')
                       AS imd_quintile
            FROM {p_src} WHERE {registered_on(day)}
        ),
        has AS (
            SELECT DISTINCT e.patient_id, c.condition
            FROM {e_src} e JOIN ltc_codes c USING (snomed_code)
            WHERE e.date <= DATE '{day}'
        ),
        denominators AS (
            SELECT age_band, imd_quintile, count(*) AS n_registered FROM pop GROUP BY ALL
        ),
        conditions AS (SELECT DISTINCT condition FROM ltc_codes),
        grid AS (SELECT * FROM conditions CROSS JOIN denominators),
        numerators AS (
            SELECT h.condition, p.age_band, p.imd_quintile, count(*) AS n_with_condition
            FROM has h JOIN pop p USING (patient_id) GROUP BY ALL
        )
        SELECT g.condition, g.age_band, g.imd_quintile,
               coalesce(n.n_with_condition, 0) AS n_with_condition, g.n_registered
        FROM grid g LEFT JOIN numerators n USING (condition, age_band, imd_quintile)
        ORDER BY condition, age_band, imd_quintile
        """
    ).df()


def emergency_admission_rates(patients, admissions, study_start: str, study_end: str
                              ) -> pd.DataFrame:
    """Emergency admissions (spells, ADMIMETH 2x) per 1,000 person-years by financial year and
    broad age band (age at the start of the year).

    Person-time counts the days registered (:mod:`phm_eval.definitions`) within each financial
    year (April to March); admissions count when observed in that year, including those on the
    day of death or of leaving.
    Returns columns ``financial_year``, ``age_band``, ``emergency_admissions``,
    ``person_years``.
    """
    con = connect()
    p_src = _source(patients, con, "patients")
    a_src = _source(admissions, con, "admissions")
    age = age_sql("p.date_of_birth", "CAST(y.year_start AS DATE)")
    ys, ye = "CAST(y.year_start AS DATE)", "CAST(y.year_end AS DATE)"
    return con.execute(
        f"""
        WITH years AS (
            SELECT y AS year_start, least(y + INTERVAL 1 YEAR, DATE '{study_end}' + 1)
                   AS year_end
            FROM generate_series(DATE '{study_start}', DATE '{study_end}', INTERVAL 1 YEAR)
                 t(y)
        ),
        spans AS (
            SELECT p.patient_id, {ys} AS year_start,
                   {BROAD_AGE_SQL.format(age=age)} AS age_band,
                   greatest({entry_date_sql("p")}, {ys}) AS s,
                   -- last day of the year on which the person's records are observed
                   least({exit_date_sql("p")}, CAST({ye} - INTERVAL 1 DAY AS DATE)) AS last_seen,
                   {census_days_sql(ys, f"CAST({ye} - INTERVAL 1 DAY AS DATE)", "p")} AS days
            FROM {p_src} p CROSS JOIN years y
        ),
        exposure AS (
            SELECT * FROM spans WHERE last_seen >= s
        ),
        counted AS (
            SELECT x.year_start, x.age_band, sum(x.days) / 365.25 AS person_years,
                   0 AS emergency_admissions
            FROM exposure x GROUP BY ALL
            UNION ALL
            SELECT x.year_start, x.age_band, 0, count(*)
            FROM {a_src} a JOIN exposure x
              ON a.patient_id = x.patient_id AND a.admission_date >= x.s
             AND a.admission_date <= x.last_seen
            WHERE {emergency_sql("a.admission_method")}
            GROUP BY ALL
        )
        SELECT strftime(year_start, '%Y') || '/' || strftime(year_start + INTERVAL 1 YEAR, '%y')
                   AS financial_year,
               age_band, CAST(sum(emergency_admissions) AS BIGINT) AS emergency_admissions,
               sum(person_years) AS person_years
        FROM counted GROUP BY ALL ORDER BY financial_year, age_band
        """
    ).df()
