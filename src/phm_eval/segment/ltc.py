"""Long-term condition flags as of an index date, from coded primary-care events.

A condition is present when any of its codes (``config/codelists/ltc_snomed.csv``) is dated on
or before the index date, within the condition's look-back window if it has one:

* cancer: a code in the last 60 months (cancer "within 5 years" is the usual chronic-condition
  rule, since most people treated more than five years ago are discharged from follow-up);
* pregnancy: a code in the last 9 months (a current or very recent pregnancy);
* every other condition: anywhere in the record (diagnoses are rarely "resolved" in the codes
  shipped here).

``n_ltc`` counts the *chronic* conditions (``ltc.chronic_conditions`` in the settings: by default
all shipped conditions except pregnancy and autism). A separate flag ``cancer_recent`` marks a
cancer code in the last 12 months (``ltc.recent_cancer_months``), used for early cancer diagnosis
(Core20PLUS5) and the end-of-life proxy (Bridges to Health).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from phm_eval.codelists import load_codelist
from phm_eval.errors import ConfigError, InputError
from phm_eval.segment._io import (
    TableSource,
    as_date,
    fetch,
    open_connection,
    register,
    registered_sql,
    sql_date,
)
from phm_eval.segment.config import segmentation_config

RECENT_CANCER = "cancer_recent"


def _ltc_codes(
    codelist_dir: str | Path | None, ltc_config: Mapping[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    codes = load_codelist("ltc", codelist_dir)[["condition", "snomed_code"]].drop_duplicates()
    conditions = list(dict.fromkeys(codes["condition"]))
    unknown = [c for c in ltc_config["chronic_conditions"] if c not in conditions]
    unknown += [c for c in ltc_config["lookback_months"] if c not in conditions]
    if unknown:
        raise ConfigError(f"ltc settings name conditions absent from the LTC code list: {unknown}")
    if "cancer" not in conditions:
        raise ConfigError("the LTC code list has no 'cancer' codes (needed for cancer_recent)")
    windows = {c: ltc_config["lookback_months"].get(c) for c in conditions}
    codes = codes.assign(lookback_months=codes["condition"].map(windows))
    recent = codes[codes["condition"] == "cancer"].assign(
        condition=RECENT_CANCER, lookback_months=int(ltc_config["recent_cancer_months"])
    )
    codes = pd.concat([codes, recent], ignore_index=True)
    codes["lookback_months"] = codes["lookback_months"].astype("Int64")
    return codes, conditions


def create_ltc_table(
    con: duckdb.DuckDBPyConnection,
    index: dt.date,
    codelist_dir: str | Path | None,
    ltc_config: Mapping[str, Any],
    label: str,
) -> list[str]:
    """Create table ``ltc`` (one row per registered patient) in ``con``; return the conditions.

    The ``patients`` and ``events`` views must be registered.
    """
    codes, conditions = _ltc_codes(codelist_dir, ltc_config)
    con.register("ltc_codes", codes)
    idx = sql_date(index)
    chronic = [c for c in conditions if c in set(ltc_config["chronic_conditions"])]
    flags = ",\n".join(
        f"coalesce(bool_or(h.condition = '{c}'), FALSE) AS \"{c}\""
        for c in [*conditions, RECENT_CANCER]
    )
    n_ltc = " + ".join(f"CAST(\"{c}\" AS INTEGER)" for c in chronic) or "0"
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE ltc_population AS
            SELECT patient_id FROM patients WHERE {registered_sql(idx)}
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE ltc AS
            WITH hits AS (
                SELECT DISTINCT e.patient_id, c.condition
                FROM events e
                JOIN ltc_codes c ON e.snomed_code = c.snomed_code
                WHERE e.date <= {idx}
                  AND (c.lookback_months IS NULL
                       OR e.date >= CAST({idx} - to_months(c.lookback_months) AS DATE))
                  AND e.patient_id IN (SELECT patient_id FROM ltc_population)
            ),
            wide AS (
                SELECT p.patient_id, {flags}
                FROM ltc_population p LEFT JOIN hits h ON h.patient_id = p.patient_id
                GROUP BY p.patient_id
            )
            SELECT *, {n_ltc} AS n_ltc FROM wide
            """
        )
    except duckdb.ConversionException as err:
        raise InputError(label, f"a value could not be read as its contract type: {err}") from err
    return conditions


def ltc_flags(
    patients: TableSource,
    events: TableSource,
    index_date: object,
    *,
    codelist_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Long-term condition flags for every patient registered on ``index_date``.

    Parameters
    ----------
    patients, events : DataFrame or path
        Contract tables (DataFrame, Parquet file or folder, or CSV file).
    index_date : date-like
        The date the flags describe. Events dated on it count; later events do not.
    codelist_dir : path, optional
        Folder holding ``ltc_snomed.csv`` (default: the shipped ``config/codelists``).
    config : mapping, optional
        Segmentation settings (see :func:`~phm_eval.segment.segmentation_config`); the ``ltc``
        section sets the chronic conditions counted and the look-back windows.

    Returns
    -------
    pandas.DataFrame
        One row per patient registered and alive on the index date, sorted by ``patient_id``:
        one boolean column per condition of the code list (cancer: last 5 years; pregnancy:
        last 9 months; others: whole record), ``cancer_recent`` (cancer code in the last
        12 months) and ``n_ltc`` (number of chronic conditions present, an integer).

    Examples
    --------
    >>> flags = ltc_flags("patients.parquet", "events.parquet", "2022-04-01")  # doctest: +SKIP
    >>> (flags["n_ltc"] >= 2).mean()  # doctest: +SKIP
    """
    settings = segmentation_config(config)
    index = as_date(index_date)
    con = open_connection()
    try:
        register(con, "patients", patients)
        label = register(con, "events", events)
        conditions = create_ltc_table(con, index, codelist_dir, settings["ltc"], label)
        out = fetch(con, "SELECT * FROM ltc ORDER BY patient_id", label)
    finally:
        con.close()
    for column in [*conditions, RECENT_CANCER]:
        out[column] = out[column].astype(bool)
    out["n_ltc"] = out["n_ltc"].astype("int64")
    out = out.reset_index(drop=True)
    out.attrs["index_date"] = index.isoformat()
    out.attrs["chronic_conditions"] = [
        c for c in conditions if c in set(settings["ltc"]["chronic_conditions"])
    ]
    return out
