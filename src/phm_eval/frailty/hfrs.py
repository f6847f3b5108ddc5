"""The Hospital Frailty Risk Score (HFRS) of Gilbert et al., Lancet 2018;391:1775-82.

The HFRS sums the points of 109 ICD-10 three-character categories recorded in hospital
spells. Each category counts once per patient however often it was coded. Gilbert et al.
used the index admission and the two years before it; here the look-back is the spells
admitted within ``lookback_years`` before the index date and discharged on or before it.
Risk groups as in the paper: low < 5, intermediate 5-15 (both ends inclusive), high > 15.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from phm_eval.db import connect
from phm_eval.errors import ConfigError
from phm_eval.frailty._tables import TableSource, as_date, fetch, register, sql_date
from phm_eval.frailty.codelists import Source, load_hfrs_points
from phm_eval.frailty.population import create_population_view, exclusion_counts

HFRS_CATEGORIES: tuple[str, ...] = ("low", "intermediate", "high")
#: Low below 5; intermediate 5 to 15 inclusive; high above 15 (Gilbert et al. 2018).
HFRS_LOW_BELOW = 5.0
HFRS_HIGH_ABOVE = 15.0


def normalise_icd10(code: str | None) -> str | None:
    """The three-character ICD-10 category of a code (``"j44.1"`` -> ``"J44"``), or None."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return None
    text = "".join(ch for ch in str(code).upper() if ch.isalnum())
    return text[:3] if len(text) >= 3 else None


def hfrs_category(score: pd.Series | np.ndarray) -> pd.Categorical:
    """HFRS risk group: low (< 5), intermediate (5-15 inclusive), high (> 15).

    Scores are rounded to one decimal place (the precision of the points) first, so sums
    such as 4.9999999 from floating-point addition fall where they should.
    """
    values = np.round(np.asarray(score, dtype=float), 1)
    codes = np.where(values < HFRS_LOW_BELOW, 0, np.where(values <= HFRS_HIGH_ABOVE, 1, 2))
    codes = np.where(np.isnan(values), -1, codes)
    return pd.Categorical.from_codes(
        codes, dtype=pd.CategoricalDtype(list(HFRS_CATEGORIES), ordered=True)
    )


# Clean a raw code the way normalise_icd10 does: keep letters and digits, take three.
_CLEAN = "left(regexp_replace(upper({x}), '[^A-Z0-9]', '', 'g'), 3)"


def _hfrs_sql(index: dt.date, lookback_years: float) -> str:
    idx = sql_date(index)
    months = int(round(float(lookback_years) * 12))
    start = f"({idx} - INTERVAL {months} MONTH)"
    return f"""
    WITH pop AS (
        SELECT patient_id FROM population WHERE exclusion_reason IS NULL
    ),
    spells AS (
        SELECT a.patient_id, a.spell_id, a.primary_diagnosis, a.secondary_diagnoses
        FROM admissions a
        WHERE a.admission_date >= {start}
          AND a.discharge_date <= {idx}
          AND a.patient_id IN (SELECT patient_id FROM pop)
    ),
    diagnoses AS (
        SELECT patient_id, primary_diagnosis AS code FROM spells
        UNION ALL
        SELECT patient_id, unnest(string_split(secondary_diagnoses, ';')) AS code
        FROM spells WHERE secondary_diagnoses IS NOT NULL
    ),
    categories AS (
        SELECT DISTINCT patient_id, {_CLEAN.format(x="code")} AS icd10_code
        FROM diagnoses WHERE code IS NOT NULL
    ),
    points AS (
        SELECT c.patient_id, sum(CAST(p.points AS DECIMAL(9, 1))) AS score,
               count(*) AS n_codes
        FROM categories c JOIN hfrs_points p ON c.icd10_code = p.icd10_code
        GROUP BY c.patient_id
    ),
    n_spells AS (
        SELECT patient_id, count(DISTINCT spell_id) AS n FROM spells GROUP BY patient_id
    )
    SELECT pop.patient_id,
           CAST(coalesce(points.score, 0) AS DOUBLE) AS hfrs_score,
           coalesce(points.n_codes, 0) AS hfrs_n_codes,
           coalesce(n_spells.n, 0) AS hfrs_n_spells
    FROM pop
    LEFT JOIN points ON points.patient_id = pop.patient_id
    LEFT JOIN n_spells ON n_spells.patient_id = pop.patient_id
    ORDER BY pop.patient_id
    """


def hfrs(
    admissions: TableSource,
    patients: TableSource,
    index_date: object,
    *,
    lookback_years: float = 2,
    points: Source | None = None,
    min_age: float | None = None,
    max_age: float | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Hospital Frailty Risk Score (Gilbert et al. 2018) for every eligible patient.

    Parameters
    ----------
    admissions : DataFrame or path
        Hospital spells (``patient_id``, ``spell_id``, ``admission_date``, ``discharge_date``,
        ``primary_diagnosis``, ``secondary_diagnoses`` separated by ``;``). ICD-10 codes may
        carry dots, fourth/fifth characters or dagger/asterisk marks: each is reduced to its
        three-character category (``J44.1`` and ``J441`` -> ``J44``).
    patients : DataFrame or path
        The ``patients`` table; patients alive and registered on the index date are scored
        (those with no spells score 0).
    index_date : date-like
        The date the score describes.
    lookback_years : float
        Spells admitted on or after ``index_date - lookback_years`` and discharged on or
        before ``index_date`` count (Gilbert et al.: 2 years).
    points : path or DataFrame, optional
        ``icd10_code``, ``points`` (default ``config/codelists/hfrs_icd10.csv``).
    min_age, max_age : float, optional
        Inclusive age range in completed years on the index date (default: none; the score
        was developed in people aged 75 and over).
    threads : int, optional
        DuckDB threads.

    Returns
    -------
    pandas.DataFrame
        One row per scored patient, sorted by ``patient_id``: ``hfrs_score`` (sum of points
        over distinct categories, one decimal), ``hfrs_category`` (ordered low <
        intermediate < high), ``hfrs_n_codes`` (scoring categories found) and
        ``hfrs_n_spells`` (spells in the look-back). ``.attrs["exclusions"]`` counts who was
        not scored and why.
    """
    if lookback_years <= 0:
        raise ConfigError("lookback_years must be positive")
    index = as_date(index_date)
    table = load_hfrs_points(points)
    con = connect(threads=threads)
    register(con, "patients", patients)
    label = register(con, "admissions", admissions)
    con.register("hfrs_points", table)
    create_population_view(con, index, min_age, max_age)
    out = fetch(con, _hfrs_sql(index, lookback_years), label)
    counts = exclusion_counts(con, label)
    con.close()
    out["hfrs_score"] = out["hfrs_score"].astype(float).round(1)
    out.insert(2, "hfrs_category", hfrs_category(out["hfrs_score"]))
    out["hfrs_n_codes"] = out["hfrs_n_codes"].astype("int64")
    out["hfrs_n_spells"] = out["hfrs_n_spells"].astype("int64")
    out.attrs["exclusions"] = counts
    out.attrs["index_date"] = index.isoformat()
    out.attrs["score"] = "HFRS (Gilbert et al. 2018)"
    return out
