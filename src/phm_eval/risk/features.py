"""Features for emergency-admission risk models as of an index date, in DuckDB SQL.

One row per patient registered and alive on the index date and aged ``min_age`` or over, with
demographics, long-term conditions, frailty (eFI, HFRS), prior hospital use, medicines and
primary-care activity, all from records dated on or before the index date, and the outcome
over the ``follow_up_days`` after it.

Population, age, emergency admissions and windows are :mod:`phm_eval.definitions`': the
census on the index date, windows of N days before it ``(d - N, d]`` and after it ``(d, d + N]``.

Outcome: ``emergency_admission_12m`` = 1 if an emergency spell starts in
(index date, index date + follow-up]. People who die in follow-up without an emergency admission
are **non-events** for this outcome (they are kept, and counted in ``died_without_admission``);
the alternative composite outcome ``emergency_admission_or_death_12m`` is provided too. People who
leave the practice during follow-up keep their observed outcome (hospital data follow them).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from ..codelists import load_codelist
from ..definitions import (
    age_sql,
    date_literal,
    emergency_sql,
    exact_age_sql,
    follow_up_sql,
    lookback_sql,
    registered_on_sql,
)
from ..frailty import efi, hfrs
from ..frailty._tables import as_date
from ..segment.config import CHRONIC_CONDITIONS

# The chronic long-term conditions counted in n_ltc, shared with the segmentation.
LTC_CONDITIONS = CHRONIC_CONDITIONS


def risk_features(
    patients: pd.DataFrame | str | Path,
    events: pd.DataFrame | str | Path,
    admissions: pd.DataFrame | str | Path,
    practices: pd.DataFrame | str | Path,
    index_date: object,
    *,
    min_age: float = 18,
    follow_up_days: int = 365,
    codelist_dir: str | Path | None = None,
    population_only: bool = False,
) -> pd.DataFrame:
    """Patient-level features and outcomes at ``index_date``.

    Parameters
    ----------
    patients, events, admissions, practices : DataFrame or Parquet path
        Tables in the data contract (validated by :func:`phm_eval.ingest.ingest`).
    index_date : date-like
        Records dated on or before it are history; the outcome window starts the day after.
    min_age : float, default 18
        Minimum age in whole years on the index date (QAdmissions covers ages 18-100).
    follow_up_days : int, default 365
    codelist_dir : path, optional
        Folder of code lists (default ``config/codelists``).
    population_only : bool, default False
        Read events and admissions only for the population (a semi-join on its patients):
        faster when the population is a small part of the record (the evaluation's monthly
        cohorts), slower when it is most of it (the whole adult population), so off by default.
        The features are the same either way.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, practice_id, pcn_id, age`` (exact age in years, whose whole part is
        the age in completed years), ``sex, ethnicity, imd_decile, imd_quintile``,
        one boolean ``ltc_<condition>`` per long-term condition, ``n_ltc``, ``efi_score``,
        ``efi_deficits``, ``efi_category``, ``hfrs``, ``n_emergency_admissions_1y``,
        ``n_emergency_admissions_2y``, ``n_emergency_admissions_90d`` (recency: regression to
        the mean is strongest after a recent admission), ``bed_days_1y``, ``n_elective_admissions_1y``,
        ``n_medications``, ``n_gp_events_1y``, the outcomes ``emergency_admission_12m``,
        ``emergency_admission_or_death_12m``, ``died_12m``, ``died_without_admission``, and
        ``index_date``.
    """
    index = as_date(index_date)
    end = index + dt.timedelta(days=int(follow_up_days))
    frailty = efi(events, patients, index, min_age=min_age)
    hospital_frailty = hfrs(admissions, patients, index, min_age=min_age)

    from ..db import connect

    con = connect()
    for name, source in (
        ("patients", patients),
        ("events", events),
        ("admissions", admissions),
        ("practices", practices),
    ):
        _view(con, name, source)
    ltc = load_codelist("ltc", codelist_dir)[["condition", "snomed_code"]]
    ltc = ltc[ltc["condition"].isin(LTC_CONDITIONS)]
    con.register("ltc_codes", ltc)
    meds = load_codelist("medications", codelist_dir)[["snomed_code", "drug"]]
    con.register("med_codes", meds)
    d0, d1 = date_literal(index), date_literal(end)
    emergency = emergency_sql("admission_method")

    def before(days: int) -> str:
        return lookback_sql("admission_date", d0, days=days)

    def only_pop(column: str) -> str:
        return f"AND {column} IN (SELECT patient_id FROM pop)" if population_only else ""

    flags = ",\n".join(
        f"coalesce(bool_or(c.condition = '{c}'), false) AS ltc_{c}" for c in LTC_CONDITIONS
    )
    base = con.execute(
        f"""
        WITH pop AS (
            SELECT p.patient_id, p.practice_id, pr.pcn_id,
                   {exact_age_sql("p.date_of_birth", d0)} AS age,
                   p.sex, p.ethnicity, p.imd_decile, p.date_of_death
            FROM patients p JOIN practices pr USING (practice_id)
            WHERE {registered_on_sql(d0, "p")}
              AND {age_sql("p.date_of_birth", d0)} >= {float(min_age)}
        ),
        conditions AS (
            SELECT e.patient_id, {flags}
            FROM events e JOIN ltc_codes c USING (snomed_code)
            WHERE e.date <= {d0} AND e.patient_id IN (SELECT patient_id FROM pop)
            GROUP BY e.patient_id
        ),
        medicines AS (
            SELECT e.patient_id, count(DISTINCT m.drug) AS n_medications
            FROM events e JOIN med_codes m USING (snomed_code)
            WHERE {lookback_sql("e.date", d0, days=365)}
              {only_pop("e.patient_id")}
            GROUP BY e.patient_id
        ),
        activity AS (
            SELECT patient_id, count(DISTINCT date) AS n_gp_events_1y
            FROM events WHERE {lookback_sql("date", d0, days=365)}
              {only_pop("patient_id")}
            GROUP BY patient_id
        ),
        history AS (
            SELECT patient_id,
              count(*) FILTER (WHERE {emergency} AND {before(365)})
                  AS n_emergency_admissions_1y,
              count(*) FILTER (WHERE {emergency})
                  AS n_emergency_admissions_2y,
              count(*) FILTER (WHERE {emergency} AND {before(90)})
                  AS n_emergency_admissions_90d,
              coalesce(sum(date_diff('day', admission_date, least(discharge_date, {d0})))
                  FILTER (WHERE {emergency} AND {before(365)}), 0) AS bed_days_1y,
              count(*) FILTER (WHERE admission_method IN ('11', '12', '13') AND {before(365)})
                  AS n_elective_admissions_1y
            FROM admissions
            WHERE {before(730)} {only_pop("patient_id")}
            GROUP BY patient_id
        ),
        outcome AS (
            SELECT patient_id, count(*) AS n_emergency_after
            FROM admissions
            WHERE {emergency} AND {follow_up_sql("admission_date", d0, end=d1)}
              {only_pop("patient_id")}
            GROUP BY patient_id
        )
        SELECT pop.patient_id, pop.practice_id, pop.pcn_id, pop.age, pop.sex, pop.ethnicity,
               pop.imd_decile,
               coalesce(CAST(ceil(pop.imd_decile / 2.0) AS INTEGER)::VARCHAR, 'unknown')
                   AS imd_quintile,
               {
            ", ".join(f"coalesce(conditions.ltc_{c}, false) AS ltc_{c}" for c in LTC_CONDITIONS)
        },
               coalesce(history.n_emergency_admissions_1y, 0) AS n_emergency_admissions_1y,
               coalesce(history.n_emergency_admissions_2y, 0) AS n_emergency_admissions_2y,
               coalesce(history.n_emergency_admissions_90d, 0) AS n_emergency_admissions_90d,
               coalesce(history.bed_days_1y, 0) AS bed_days_1y,
               coalesce(history.n_elective_admissions_1y, 0) AS n_elective_admissions_1y,
               coalesce(medicines.n_medications, 0) AS n_medications,
               coalesce(activity.n_gp_events_1y, 0) AS n_gp_events_1y,
               CAST(coalesce(outcome.n_emergency_after, 0) > 0 AS INTEGER)
                   AS emergency_admission_12m,
               CAST(pop.date_of_death IS NOT NULL AND pop.date_of_death <= {d1} AS INTEGER)
                   AS died_12m
        FROM pop
        LEFT JOIN conditions USING (patient_id)
        LEFT JOIN medicines USING (patient_id)
        LEFT JOIN activity USING (patient_id)
        LEFT JOIN history USING (patient_id)
        LEFT JOIN outcome USING (patient_id)
        ORDER BY pop.patient_id
        """
    ).df()
    con.close()
    base["n_ltc"] = base[[f"ltc_{c}" for c in LTC_CONDITIONS]].sum(axis=1).astype(int)
    base["imd_decile"] = base["imd_decile"].astype(float)
    base = base.merge(
        frailty[["patient_id", "efi_score", "efi_deficits", "efi_category"]],
        on="patient_id",
        how="left",
    ).merge(
        hospital_frailty[["patient_id", "hfrs_score"]].rename(columns={"hfrs_score": "hfrs"}),
        on="patient_id",
        how="left",
    )
    base["hfrs"] = base["hfrs"].fillna(0.0)
    base["died_without_admission"] = (
        (base["died_12m"] == 1) & (base["emergency_admission_12m"] == 0)
    ).astype(int)
    base["emergency_admission_or_death_12m"] = (
        (base["emergency_admission_12m"] == 1) | (base["died_12m"] == 1)
    ).astype(int)
    base["index_date"] = pd.Timestamp(index)
    return base


def _view(con, name: str, source) -> None:
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
    else:
        path = str(source).replace("'", "''")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
