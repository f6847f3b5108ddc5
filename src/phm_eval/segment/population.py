"""The per-patient frame every segmentation reads: who, what conditions, what use, what next.

:func:`build_population` does the heavy lifting once, in DuckDB: the registered population on
the index date, long-term condition flags, emergency admissions and bed days in the 12 months
before, and emergency admissions, follow-up time and deaths in the 12 months after. The grid,
Bridges to Health and Core20PLUS5 functions then work on this frame in pandas.

The population, age, emergency admissions (minus any methods listed in
``admissions.exclude_methods``, e.g. ``2B`` transfers) and windows are
:mod:`phm_eval.definitions`'. Windows:

* before: admission dated in the 12 months before the index date, ``(index - 12 months, index]``;
* after: admission dated from the day after the index date to the end of follow-up (death, end
  of registration or ``index + 12 months``, whichever comes first), inclusive: an admission on
  the day of death or of leaving counts. ``followup_days`` is the time from the index date to
  that end, so ``followup_days / 365.25`` is person-time at risk.

Emergency bed days are ``discharge_date - admission_date`` (0 for same-day spells) summed over
the emergency spells in the window before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.definitions import follow_up_end_sql, follow_up_sql, lookback_sql
from phm_eval.errors import InputError
from phm_eval.segment._io import (
    TableSource,
    add_months,
    age_sql,
    as_date,
    emergency_sql,
    fetch,
    open_connection,
    register,
    registered_sql,
    sql_date,
)
from phm_eval.segment.config import segmentation_config
from phm_eval.segment.ltc import RECENT_CANCER, create_ltc_table
from phm_eval.segment.tiers import UTILISATION_KEYS, risk_tiers

log = logging.getLogger(__name__)

#: eFI categories in order (as :data:`phm_eval.frailty.EFI_CATEGORIES`).
EFI_ORDER: tuple[str, ...] = ("fit", "mild", "moderate", "severe")


def _population_sql(index: dt.date, lookback_months: int, follow_up_months: int,
                    emergency: str) -> str:
    idx = sql_date(index)
    stop = sql_date(add_months(index, follow_up_months))
    return f"""
    WITH pop AS (
        SELECT p.patient_id, p.practice_id, p.sex, p.ethnicity, p.imd_decile,
               {age_sql("p.date_of_birth", idx)} AS age,
               {follow_up_end_sql(idx, "p", months=follow_up_months)} AS followup_end,
               p.date_of_death
        FROM patients p
        WHERE {registered_sql(idx, "p")}
    ),
    em AS (
        SELECT a.patient_id, a.admission_date, a.discharge_date
        FROM admissions a
        WHERE {emergency}
          AND ({lookback_sql("a.admission_date", idx, months=lookback_months)}
               OR {follow_up_sql("a.admission_date", idx, months=follow_up_months)})
          AND a.patient_id IN (SELECT patient_id FROM pop)
    ),
    prior AS (
        SELECT patient_id, count(*) AS n,
               sum(greatest(date_diff('day', admission_date, discharge_date), 0)) AS bed_days
        FROM em WHERE admission_date <= {idx}
        GROUP BY patient_id
    ),
    post AS (
        SELECT em.patient_id, count(*) AS n
        FROM em JOIN pop USING (patient_id)
        WHERE {follow_up_sql("em.admission_date", idx, end="pop.followup_end")}
        GROUP BY em.patient_id
    )
    SELECT pop.patient_id, pop.practice_id, pop.sex, pop.ethnicity, pop.imd_decile, pop.age,
           coalesce(prior.n, 0) AS prior_emergency_admissions,
           coalesce(prior.bed_days, 0) AS prior_emergency_bed_days,
           coalesce(post.n, 0) AS emergency_admissions_followup,
           date_diff('day', {idx}, pop.followup_end) AS followup_days,
           coalesce(pop.date_of_death <= {stop}, FALSE) AS died_followup,
           ltc.* EXCLUDE (patient_id)
    FROM pop
    LEFT JOIN prior USING (patient_id)
    LEFT JOIN post USING (patient_id)
    LEFT JOIN ltc USING (patient_id)
    ORDER BY pop.patient_id
    """


def _attach_frailty(pop: pd.DataFrame, frailty: pd.DataFrame | None) -> pd.DataFrame:
    pop["efi_category"] = pd.Categorical([None] * len(pop), categories=EFI_ORDER, ordered=True)
    pop["efi_score"] = np.nan
    pop["predicted_risk"] = np.nan
    if frailty is None:
        return pop
    if "patient_id" not in frailty.columns:
        raise InputError("frailty", "a patient_id column is required", column="patient_id")
    extra = frailty.copy()
    extra["patient_id"] = extra["patient_id"].astype(str)
    if extra["patient_id"].duplicated().any():
        raise InputError("frailty", "patient_id is not unique", column="patient_id")
    extra = extra.set_index("patient_id")
    ids = pop["patient_id"]
    if "efi_category" in extra.columns:
        values = extra["efi_category"].astype("string").str.lower()
        bad = sorted(set(values.dropna()) - set(EFI_ORDER))
        if bad:
            raise InputError("frailty", f"unknown eFI categories {bad}", column="efi_category")
        pop["efi_category"] = pd.Categorical(
            ids.map(values).astype(object).where(ids.isin(values.index)),
            categories=EFI_ORDER,
            ordered=True,
        )
    for column in ("efi_score", "predicted_risk"):
        if column in extra.columns:
            pop[column] = ids.map(pd.to_numeric(extra[column], errors="coerce")).astype(float)
    return pop


def build_population(
    patients: TableSource,
    events: TableSource,
    admissions: TableSource,
    index_date: object,
    frailty: pd.DataFrame | None = None,
    *,
    codelist_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """One row per patient registered and alive on ``index_date``, with what segmentation needs.

    Parameters
    ----------
    patients, events, admissions : DataFrame or path
        Contract tables (DataFrame, Parquet file or folder, or CSV file).
    index_date : date-like
        The date segments describe. Records dated on it count as "before".
    frailty : DataFrame, optional
        Per-patient extras: ``patient_id`` and any of ``efi_category`` (fit, mild, moderate,
        severe; e.g. from :func:`phm_eval.frailty.efi`), ``efi_score`` and ``predicted_risk``
        (a predicted probability of emergency admission). Patients absent from it have
        missing values.
    codelist_dir : path, optional
        Folder with ``ltc_snomed.csv`` (default: the shipped code lists).
    config : mapping, optional
        Segmentation settings overrides (see :func:`~phm_eval.segment.segmentation_config`).
    threads : int, optional
        DuckDB threads.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``patient_id``: ``practice_id``, ``sex``, ``ethnicity``, ``imd_decile``,
        ``age`` (completed years), ``prior_emergency_admissions``,
        ``prior_emergency_bed_days``, ``emergency_admissions_followup``, ``followup_days``,
        ``died_followup``, one boolean column per condition, ``cancer_recent``, ``n_ltc``,
        ``efi_category``, ``efi_score``, ``predicted_risk``, ``risk_rank``, ``risk_tier`` and
        ``risk_source`` (``"predicted_risk"`` or ``"prior_utilisation"``). ``.attrs`` records
        the index date, the conditions and the settings used.
    """
    settings = segmentation_config(config)
    index = as_date(index_date)
    adm = settings["admissions"]
    con = open_connection(threads)
    try:
        register(con, "patients", patients)
        label = register(con, "events", events)
        adm_label = register(con, "admissions", admissions)
        conditions = create_ltc_table(con, index, codelist_dir, settings["ltc"], label)
        sql = _population_sql(index, int(adm["lookback_months"]), int(adm["follow_up_months"]),
                              emergency_sql("a", adm["exclude_methods"]))
        pop = fetch(con, sql, adm_label)
    finally:
        con.close()

    for column in [*conditions, RECENT_CANCER, "died_followup"]:
        pop[column] = pop[column].fillna(False).astype(bool)
    for column in ("age", "prior_emergency_admissions", "prior_emergency_bed_days",
                   "emergency_admissions_followup", "followup_days", "n_ltc"):
        pop[column] = pop[column].fillna(0).astype("int64")
    pop["imd_decile"] = pop["imd_decile"].astype("Int64")
    pop = _attach_frailty(pop, frailty)

    tiers_cfg = settings["risk_tiers"]
    if pop["predicted_risk"].notna().any():
        missing = int(pop["predicted_risk"].isna().sum())
        if missing:
            log.warning("%d patients have no predicted risk; they rank below all others", missing)
        keys = pop[["patient_id", "predicted_risk", *UTILISATION_KEYS]]
        source = "predicted_risk"
    else:
        keys = pop[["patient_id", *UTILISATION_KEYS]]
        source = "prior_utilisation"
    tiers = risk_tiers(keys, cut_points=tiers_cfg["cut_points"], keep_ties=bool(tiers_cfg["keep_ties"]))
    pop["risk_rank"] = tiers["risk_rank"].to_numpy()
    pop["risk_tier"] = tiers["risk_tier"].to_numpy()
    pop["risk_source"] = source
    pop = pop.reset_index(drop=True)
    pop.attrs.update(
        {
            "index_date": index.isoformat(),
            # First and last days of the windows: (index - N months, index + M months].
            "lookback_start": (add_months(index, -int(adm["lookback_months"]))
                               + dt.timedelta(days=1)).isoformat(),
            "follow_up_end": add_months(index, int(adm["follow_up_months"])).isoformat(),
            "conditions": conditions,
            "chronic_conditions": [
                c for c in conditions if c in set(settings["ltc"]["chronic_conditions"])
            ],
            "risk_source": source,
            "settings": settings,
        }
    )
    return pop
