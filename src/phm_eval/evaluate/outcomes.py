"""Outcomes after the index date (and the same measures before it) for matched rows.

Follow-up runs from the day after the index date to the earliest of: ``follow_up_days`` later,
death, leaving the practice, the study end, and (for comparators) the day their practice adopted
the programme. Within it: time to first emergency admission with death as a competing event;
the number of emergency admissions and person-years (for rates); emergency bed days; emergency
readmissions within 30 days of a discharge (the "failed discharge" proxy); death. The same counts
over the ``lookback_days`` before the index date give the before/after comparison.

Emergency admissions, the exit date (registration end or death) and the windows are
:mod:`phm_eval.definitions`': follow-up is ``(index, end]`` (an admission on the day of death or
of leaving counts) and the look-back ``(index - lookback_days, index]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..db import connect
from ..definitions import (
    date_literal,
    emergency_sql,
    follow_up_end_sql,
    follow_up_sql,
    lookback_sql,
)

DAYS_PER_YEAR = 365.25


def follow_up(
    rows: pd.DataFrame,
    patients: str,
    admissions: str,
    study_end: str,
    *,
    follow_up_days: int = 365,
    lookback_days: int = 365,
) -> pd.DataFrame:
    """Add follow-up outcomes to ``rows`` (one row per matched person-index).

    ``rows`` needs ``row_id``, ``patient_id``, ``index_date``, ``treated`` and, for censoring
    comparators, ``censor_date`` (their practice's adoption date). Returns ``rows`` with ``end_date``, ``time_days``,
    ``event`` (0 censored, 1 emergency admission, 2 death first), ``emergency_admissions``,
    ``person_years``, ``bed_days``, ``readmissions_30d``, ``died``,
    ``emergency_admissions_before`` and ``person_years_before``.
    """
    con = connect()
    frame = rows[["row_id", "patient_id", "index_date", "treated", "censor_date"]].copy()
    frame["index_date"] = pd.to_datetime(frame["index_date"])
    frame["censor_date"] = pd.to_datetime(frame["censor_date"])
    con.register("cohort", frame)
    index = "CAST(c.index_date AS DATE)"
    comparator_censor = ("CASE WHEN c.treated = 0 AND c.censor_date > c.index_date "
                         "THEN CAST(c.censor_date AS DATE) ELSE DATE '9999-12-31' END")
    end = follow_up_end_sql(index, "p", days=int(follow_up_days),
                            limits=[date_literal(study_end), comparator_censor])
    out = con.execute(
        f"""
        WITH p AS (SELECT * FROM read_parquet('{patients}')),
        a AS (SELECT patient_id, spell_id, admission_date, discharge_date
              FROM read_parquet('{admissions}')
              WHERE {emergency_sql("admission_method")}),
        c AS (
            SELECT c.row_id, c.patient_id, CAST(c.index_date AS DATE) AS index_date,
                   p.date_of_death,
                   {end} AS end_date,
                   p.registration_start
            FROM cohort c JOIN p USING (patient_id)
        ),
        after AS (
            SELECT c.row_id, a.admission_date, a.discharge_date,
                   -- spells starting the same day in a fixed order (the one discharged first
                   -- first, then by spell id): the database's own order would change the
                   -- readmission count from run to run
                   lag(a.discharge_date) OVER (
                       PARTITION BY c.row_id
                       ORDER BY a.admission_date, a.discharge_date, a.spell_id
                   ) AS previous_discharge
            FROM c JOIN a ON a.patient_id = c.patient_id
            WHERE {follow_up_sql("a.admission_date", "c.index_date", end="c.end_date")}
        ),
        after_summary AS (
            SELECT row_id, min(admission_date) AS first_admission, count(*) AS n_after,
                   sum(date_diff('day', admission_date, discharge_date)) AS bed_days,
                   count(*) FILTER (WHERE date_diff('day', previous_discharge, admission_date)
                                    BETWEEN 0 AND 30) AS readmissions_30d
            FROM after GROUP BY row_id
        ),
        before AS (
            SELECT c.row_id, count(*) AS n_before
            FROM c JOIN a ON a.patient_id = c.patient_id
            WHERE {lookback_sql("a.admission_date", "c.index_date", days=int(lookback_days))}
            GROUP BY c.row_id
        )
        SELECT c.row_id, c.end_date, c.date_of_death,
               s.first_admission, coalesce(s.n_after, 0) AS emergency_admissions,
               coalesce(s.bed_days, 0) AS bed_days,
               coalesce(s.readmissions_30d, 0) AS readmissions_30d,
               coalesce(b.n_before, 0) AS emergency_admissions_before,
               date_diff('day', c.index_date, c.end_date) AS follow_days,
               least({int(lookback_days)},
                     date_diff('day', greatest(c.registration_start,
                                               c.index_date - {int(lookback_days)}),
                               c.index_date)) AS before_days
        FROM c LEFT JOIN after_summary s USING (row_id) LEFT JOIN before b USING (row_id)
        """
    ).df()
    con.close()
    merged = rows.merge(out, on="row_id", how="left")
    index = pd.to_datetime(merged["index_date"])
    end = pd.to_datetime(merged["end_date"])
    first = pd.to_datetime(merged["first_admission"])
    death = pd.to_datetime(merged["date_of_death"])
    died = death.notna() & (death <= end)
    merged["event"] = np.select([first.notna(), died], [1, 2], default=0)
    event_day = np.where(first.notna(), (first - index).dt.days,
                         (end - index).dt.days)
    merged["time_days"] = np.maximum(event_day, 0.5)  # same-day events count as half a day
    merged["died"] = died.astype(int)
    merged["person_years"] = np.maximum(merged["follow_days"], 0.5) / DAYS_PER_YEAR
    merged["person_years_before"] = np.maximum(merged["before_days"], 1) / DAYS_PER_YEAR
    return merged.drop(columns=["first_admission", "date_of_death"])
