"""Who is scored at an index date, and who is excluded and why.

A patient is scored when, on the index date, they are

1. alive: no ``date_of_death``, or death after the index date (someone who died on the index
   date is excluded);
2. registered: ``registration_start`` on or before the index date and ``registration_end``
   missing or after it (someone whose registration ended on the index date is excluded).

Both are :mod:`phm_eval.definitions`' census on the index date, which every stage uses: a
registration end, like a death, is the day the person leaves the list.
3. within the age range: age in completed years on the index date between ``min_age`` and
   ``max_age`` inclusive (``None`` = no bound).

Exclusions are applied in that order and each patient is counted once, under the first rule
they fail, so the counts add up for a CONSORT-style flow table.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from phm_eval import definitions
from phm_eval.db import connect
from phm_eval.errors import ConfigError
from phm_eval.frailty._tables import TableSource, as_date, fetch, register, sql_date

#: Exclusion reasons, in the order they are applied.
EXCLUSION_REASONS: tuple[str, ...] = (
    "missing_date_of_birth",
    "died_on_or_before_index",
    "not_registered_at_index",
    "below_min_age",
    "above_max_age",
)


def age_sql(dob: str, at: str) -> str:
    """SQL for age in completed years at ``at`` (:func:`phm_eval.definitions.age_sql`)."""
    return definitions.age_sql(dob, at)


def check_ages(min_age: float | None, max_age: float | None) -> None:
    if min_age is not None and max_age is not None and max_age < min_age:
        raise ConfigError(f"max_age ({max_age}) is below min_age ({min_age})")


def create_population_view(
    con: duckdb.DuckDBPyConnection,
    index_date: dt.date,
    min_age: float | None,
    max_age: float | None,
) -> None:
    """Create view ``population`` (every patient, with ``age`` and ``exclusion_reason``).

    The ``patients`` view must already be registered in ``con``.
    """
    check_ages(min_age, max_age)
    idx = sql_date(index_date)
    age = age_sql("date_of_birth", idx)
    below = f"WHEN {age} < {float(min_age)} THEN 'below_min_age'" if min_age is not None else ""
    above = f"WHEN {age} > {float(max_age)} THEN 'above_max_age'" if max_age is not None else ""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW population AS
        SELECT patient_id, date_of_birth, {age} AS age,
               CASE
                 WHEN date_of_birth IS NULL THEN 'missing_date_of_birth'
                 WHEN NOT {definitions.alive_on_sql(idx)} THEN 'died_on_or_before_index'
                 WHEN NOT coalesce({definitions.on_list_sql(idx)}, FALSE)
                   THEN 'not_registered_at_index'
                 {below}
                 {above}
                 ELSE NULL
               END AS exclusion_reason
        FROM patients
        """
    )


def exclusion_counts(con: duckdb.DuckDBPyConnection, label: str) -> dict[str, int]:
    """Counts for the flow table from the ``population`` view: input, each reason, scored."""
    rows = fetch(
        con,
        "SELECT coalesce(exclusion_reason, 'scored') AS reason, count(*) AS n "
        "FROM population GROUP BY 1",
        label,
    )
    found = dict(zip(rows["reason"], rows["n"].astype(int), strict=True))
    counts = {"patients_in_input": int(sum(found.values()))}
    for reason in EXCLUSION_REASONS:
        counts[reason] = int(found.get(reason, 0))
    counts["scored"] = int(found.get("scored", 0))
    return counts


def eligibility(
    patients: TableSource,
    index_date: object,
    *,
    min_age: float | None = 65,
    max_age: float | None = None,
) -> pd.DataFrame:
    """Eligibility of every patient for scoring at ``index_date``.

    Parameters
    ----------
    patients : DataFrame or path
        The ``patients`` table of the data contract (DataFrame, Parquet or CSV path).
    index_date : date-like
        The date the scores describe.
    min_age, max_age : float, optional
        Inclusive age range in completed years on the index date (``None`` = no bound).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``age`` (completed years on the index date), ``eligible`` (bool) and
        ``exclusion_reason`` (one of :data:`EXCLUSION_REASONS`, or missing when eligible),
        sorted by ``patient_id``. ``.attrs["exclusions"]`` holds the counts.
    """
    con = connect()
    label = register(con, "patients", patients)
    create_population_view(con, as_date(index_date), min_age, max_age)
    out = fetch(
        con,
        "SELECT patient_id, age, exclusion_reason IS NULL AS eligible, exclusion_reason "
        "FROM population ORDER BY patient_id",
        label,
    )
    out.attrs["exclusions"] = exclusion_counts(con, label)
    con.close()
    return out


def flow_table(result: pd.DataFrame) -> pd.DataFrame:
    """Turn the ``attrs["exclusions"]`` of a score table into a flow (CONSORT) table.

    Parameters
    ----------
    result : pandas.DataFrame
        Output of :func:`~phm_eval.frailty.efi`, :func:`~phm_eval.frailty.efi2`,
        :func:`~phm_eval.frailty.hfrs` or :func:`eligibility`.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``step``, ``n_excluded`` and ``n_remaining``.
    """
    counts = result.attrs.get("exclusions")
    if not counts:
        raise ConfigError("this table carries no exclusion counts (attrs['exclusions'])")
    remaining = counts["patients_in_input"]
    rows = [{"step": "patients_in_input", "n_excluded": 0, "n_remaining": remaining}]
    for reason in EXCLUSION_REASONS:
        remaining -= counts.get(reason, 0)
        rows.append({"step": reason, "n_excluded": counts.get(reason, 0), "n_remaining": remaining})
    return pd.DataFrame(rows)
