"""The electronic Frailty Index (eFI) of Clegg et al., Age Ageing 2016;45:353 (doi:10.1093/ageing/afw039).

The eFI counts which of 36 equally weighted deficits are coded in a primary-care record. 35
come from SNOMED CT code lists; the 36th, polypharmacy, from medication issues. The score is
deficits / 36, and categories are cut on the integer count so that no floating-point edge
decides a category: fit 0-4, mild 5-8, moderate 9-12, severe 13 or more deficits (scores
0-0.12, >0.12-0.24, >0.24-0.36, >0.36).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from phm_eval.db import connect
from phm_eval.errors import ConfigError, ParameterError
from phm_eval.frailty._tables import TableSource, as_date, fetch, register, sql_date
from phm_eval.frailty.codelists import (
    EFI_CODED_DEFICITS,
    EFI_DEFICITS,
    Source,
    load_efi_codelist,
    load_medications,
)
from phm_eval.frailty.population import create_population_view, exclusion_counts

log = logging.getLogger(__name__)

EFI_CATEGORIES: tuple[str, ...] = ("fit", "mild", "moderate", "severe")
#: Upper bound (inclusive) of deficits for fit, mild and moderate; severe is anything above.
EFI_CATEGORY_MAX_DEFICITS: tuple[int, int, int] = (4, 8, 12)
N_EFI_DEFICITS = 36


def efi_category(deficits: pd.Series | np.ndarray) -> pd.Categorical:
    """eFI category from the integer number of deficits.

    Parameters
    ----------
    deficits : array-like of int
        Number of deficits present (0-36).

    Returns
    -------
    pandas.Categorical
        Ordered ``fit`` < ``mild`` < ``moderate`` < ``severe`` (0-4, 5-8, 9-12, >=13).
    """
    values = np.asarray(deficits, dtype=float)
    edges = [-np.inf, *[m + 0.5 for m in EFI_CATEGORY_MAX_DEFICITS], np.inf]
    codes = np.digitize(values, edges[1:-1])
    codes = np.where(np.isnan(values), -1, codes)
    return pd.Categorical.from_codes(
        codes, dtype=pd.CategoricalDtype(list(EFI_CATEGORIES), ordered=True)
    )


def _efi_sql(
    index_date: dt.date,
    lookback_years: float | None,
    polypharmacy_window_days: int,
    polypharmacy_threshold: int,
) -> str:
    idx = sql_date(index_date)
    poly_start = f"({idx} - INTERVAL {int(polypharmacy_window_days)} DAY)"
    if lookback_years is None:
        coded_start = "NULL"
    else:
        months = int(round(float(lookback_years) * 12))
        coded_start = f"({idx} - INTERVAL {months} MONTH)"
    flags = ",\n".join(f"bool_or(deficit = '{d}') AS efi_{d}" for d in EFI_CODED_DEFICITS)
    cols = ",\n".join(
        f"coalesce(w.efi_{d}, FALSE) AS efi_{d}"
        if d != "polypharmacy"
        else f"coalesce(p.n_drugs, 0) >= {int(polypharmacy_threshold)} AS efi_polypharmacy"
        for d in EFI_DEFICITS
    )
    total = " + ".join(f"CAST(coalesce(w.efi_{d}, FALSE) AS INTEGER)" for d in EFI_CODED_DEFICITS)
    # One pass over events: keep only rows whose code is in either list and whose date can
    # matter, then split into coded deficits and medication issues.
    return f"""
    WITH pop AS (
        SELECT patient_id FROM population WHERE exclusion_reason IS NULL
    ),
    ev AS (
        SELECT e.patient_id, e.snomed_code, e.date
        FROM events e
        WHERE e.date <= {idx}
          AND e.snomed_code IN (SELECT snomed_code FROM efi_relevant_codes)
          AND e.patient_id IN (SELECT patient_id FROM pop)
    ),
    coded AS (
        SELECT ev.patient_id, c.deficit
        FROM ev JOIN efi_codes c ON ev.snomed_code = c.snomed_code
        WHERE {coded_start} IS NULL OR ev.date >= {coded_start}
    ),
    wide AS (
        SELECT patient_id, {flags}
        FROM coded GROUP BY patient_id
    ),
    poly AS (
        SELECT ev.patient_id, count(DISTINCT m.drug) AS n_drugs
        FROM ev JOIN efi_medications m ON ev.snomed_code = m.snomed_code
        WHERE ev.date >= {poly_start}
        GROUP BY ev.patient_id
    )
    SELECT pop.patient_id,
           {total} + CAST(coalesce(p.n_drugs, 0) >= {int(polypharmacy_threshold)} AS INTEGER)
               AS efi_deficits,
           coalesce(p.n_drugs, 0) AS efi_polypharmacy_drugs,
           {cols}
    FROM pop
    LEFT JOIN wide w ON w.patient_id = pop.patient_id
    LEFT JOIN poly p ON p.patient_id = pop.patient_id
    ORDER BY pop.patient_id
    """


def efi(
    events: TableSource,
    patients: TableSource,
    index_date: object,
    *,
    codelist: Source | None = None,
    medications: Source | None = None,
    lookback_years: float | None = None,
    min_age: float | None = 65,
    max_age: float | None = None,
    polypharmacy_window_days: int = 365,
    polypharmacy_threshold: int = 5,
    threads: int | None = None,
) -> pd.DataFrame:
    """Electronic Frailty Index (Clegg et al. 2016) for every eligible patient at ``index_date``.

    The data (``events``, ``patients``, ``index_date``) may be given by position; every
    option after them is keyword-only.

    Parameters
    ----------
    events : DataFrame or path
        Primary-care events (``patient_id``, ``date``, ``snomed_code``; a Parquet file, a
        folder of Parquet files, a CSV file or a DataFrame). Events dated after
        ``index_date`` are ignored; events on it count.
    patients : DataFrame or path
        The ``patients`` table of the data contract.
    index_date : date-like
        The date the index describes.
    codelist : path or DataFrame, optional
        ``deficit``, ``snomed_code`` for the 35 coded deficits; default the shipped list.
    medications : path or DataFrame, optional
        Medication code list (``snomed_code``, ``drug``); default
        ``config/codelists/medications_dmd.csv``.
    lookback_years : float, optional
        Only count deficit codes dated within this many years before the index date
        (``date >= index_date - lookback_years``). ``None`` (default, as in Clegg 2016) uses
        the whole record. Does not affect polypharmacy.
    min_age, max_age : float, optional
        Inclusive age range in completed years on the index date (eFI was developed in
        people aged 65-95). Patients outside it are not scored.
    polypharmacy_window_days : int
        Polypharmacy counts medication issues dated from ``index_date - window`` to
        ``index_date`` inclusive; with the default 365 an issue 365 days before the index
        date counts and one 366 days before does not.
    polypharmacy_threshold : int
        Number of distinct drugs (the ``drug`` column of the medication list, so repeat
        issues, strengths and brands of one drug count once) that makes the deficit present.
    threads : int, optional
        DuckDB threads (default: DuckDB's choice).

    Returns
    -------
    pandas.DataFrame
        One row per scored patient, sorted by ``patient_id``: ``efi_deficits`` (int),
        ``efi_score`` (deficits / 36), ``efi_category`` (ordered categorical fit < mild <
        moderate < severe), ``efi_polypharmacy_drugs`` (distinct drugs in the window) and one
        boolean column ``efi_<deficit>`` per deficit (see
        :data:`~phm_eval.frailty.codelists.EFI_DEFICITS`). ``.attrs["exclusions"]`` counts who
        was not scored and why (see :mod:`phm_eval.frailty.population`).

    Examples
    --------
    >>> scores = efi("events.parquet", "patients.parquet", "2024-04-01")  # doctest: +SKIP
    >>> scores["efi_category"].value_counts()  # doctest: +SKIP
    """
    index = as_date(index_date)
    if polypharmacy_window_days < 0:
        raise ParameterError("polypharmacy_window_days", "must be >= 0 (days)",
                             polypharmacy_window_days)
    if polypharmacy_threshold < 1:
        raise ParameterError("polypharmacy_threshold", "must be >= 1 (distinct drugs)",
                             polypharmacy_threshold)
    if lookback_years is not None and lookback_years <= 0:
        raise ParameterError("lookback_years", "must be positive (or None for the whole record)",
                             lookback_years)
    codes = load_efi_codelist(codelist)
    meds = load_medications(medications)[["snomed_code", "drug"]]
    overlap = set(codes["snomed_code"]) & set(meds["snomed_code"])
    if overlap:
        raise ConfigError(f"codes in both the eFI and the medication list: {sorted(overlap)[:5]}")
    for deficit in EFI_CODED_DEFICITS:
        if not (codes["deficit"] == deficit).any():
            log.warning(
                "eFI code list has no codes for deficit %r; it will never be present", deficit
            )

    con = connect(threads=threads)
    register(con, "patients", patients)
    label = register(con, "events", events)
    con.register("efi_codes", codes)
    con.register("efi_medications", meds)
    relevant = pd.DataFrame(
        {"snomed_code": pd.concat([codes["snomed_code"], meds["snomed_code"]]).unique()}
    )
    con.register("efi_relevant_codes", relevant)
    create_population_view(con, index, min_age, max_age)
    sql = _efi_sql(index, lookback_years, polypharmacy_window_days, polypharmacy_threshold)
    out = fetch(con, sql, label)
    counts = exclusion_counts(con, label)
    con.close()

    out["efi_deficits"] = out["efi_deficits"].astype("int64")
    out["efi_polypharmacy_drugs"] = out["efi_polypharmacy_drugs"].astype("int64")
    out.insert(2, "efi_score", out["efi_deficits"] / N_EFI_DEFICITS)
    out.insert(3, "efi_category", efi_category(out["efi_deficits"]))
    for deficit in EFI_DEFICITS:
        out[f"efi_{deficit}"] = out[f"efi_{deficit}"].astype(bool)
    out.attrs["exclusions"] = counts
    out.attrs["index_date"] = index.isoformat()
    out.attrs["score"] = "eFI (Clegg et al. 2016)"
    return out
