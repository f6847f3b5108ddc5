"""Risk features at many index dates from one pass over the full extracts.

An evaluation needs baseline features at every enrolment month (often 12-36 index dates).
Computing :func:`~phm_eval.risk.features.risk_features` against the full ``events`` table for
each date re-reads the whole record every time (about 30 s a date for a million patients). Every
feature is either *ever recorded on or before the index date* (long-term conditions, eFI
deficits) or counted in a window of at most 730 days before it (medicines, primary-care activity,
admissions), so for index dates between ``first`` and ``last`` the record can be reduced once,
without changing any feature:

* patients: those who could be in the population at some date (registered on at least one day
  from ``first`` to ``last``, as :mod:`phm_eval.definitions` says, and ``min_age`` by ``last``);
* events dated after ``first - 366 days`` and on or before ``last``: kept as they are (a
  window of N days before ``d`` is ``(d - N, d]``, and none is longer than 365 days);
* events dated on or before ``first - 366 days``: only the earliest event of each code that an
  "ever recorded" feature reads (long-term condition and eFI codes), per patient; older repeats
  and other codes cannot change any feature at these dates;
* admissions: those of the patients kept (a small table; history windows and outcomes read it).

The reduced tables are written once to a temporary folder and
:func:`~phm_eval.risk.features.risk_features` is then run on them for each date, so the result
is the same function's result by construction (and tested to be identical).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..codelists import load_codelist
from ..db import connect
from ..definitions import age_sql, date_literal, registered_between_sql
from ..frailty._tables import as_date
from ..frailty.codelists import load_efi_codelist
from .features import LTC_CONDITIONS, risk_features

#: Days before the earliest index date from which every event is kept as it is.
FULL_HISTORY_DAYS = 366


def risk_features_at_dates(
    patients: str | Path,
    events: str | Path,
    admissions: str | Path,
    practices: str | Path,
    index_dates: Sequence[object],
    *,
    min_age: float = 18,
    follow_up_days: int = 365,
    codelist_dir: str | Path | None = None,
    practices_at: Mapping[dt.date, Collection[str]] | None = None,
) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Yield ``(index_date, features)`` for each index date, in date order.

    Parameters
    ----------
    patients, events, admissions, practices : path
        Parquet files (or folders) in the data contract.
    index_dates : sequence of date-like
        The index dates; duplicates are computed once.
    min_age, follow_up_days, codelist_dir
        As for :func:`~phm_eval.risk.features.risk_features`.
    practices_at : mapping, optional
        ``{index date: practice ids}``: at each date only the patients of these practices are
        wanted (e.g. an evaluation needs the practices that have not adopted yet, and the
        enrolled); every feature is per person, so their rows are the same, and the work at
        each date shrinks with the population asked for. Default: every practice.

    Yields
    ------
    (datetime.date, pandas.DataFrame)
        Each frame equals ``risk_features(..., index_date, ...)`` on the full tables (restricted
        to the patients of ``practices_at[index_date]`` when given).
    """
    dates = sorted({as_date(d) for d in index_dates})
    if not dates:
        return
    with tempfile.TemporaryDirectory(prefix="phm_eval_features_") as tmp:
        reduced = reduce_record(patients, events, admissions, dates[0], dates[-1], min_age,
                                codelist_dir, Path(tmp))
        for date in dates:
            people, units = reduced["patients"], practices
            if practices_at is not None:
                people, units = _only_practices(reduced["patients"], practices,
                                                practices_at.get(date, ()), Path(tmp))
            yield date, risk_features(people, reduced["events"], reduced["admissions"], units,
                                      date, min_age=min_age, follow_up_days=follow_up_days,
                                      codelist_dir=codelist_dir,
                                      population_only=practices_at is not None)


def _only_practices(patients: str | Path, practices: str | Path, practice_ids: Collection[str],
                    folder: Path) -> tuple[Path, Path]:
    """The patients and practices tables restricted to ``practice_ids`` (Parquet, as read)."""
    out = folder / "patients_at_date.parquet", folder / "practices_at_date.parquet"
    con = connect()
    con.register("wanted", pd.DataFrame({"practice_id": sorted(set(practice_ids))},
                                        dtype=object))
    for source, target in zip((patients, practices), out, strict=True):
        path = str(source).replace("'", "''")
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}') WHERE practice_id IN "
                    f"(SELECT practice_id FROM wanted)) TO '{target}' (FORMAT parquet)")
    con.close()
    return out


def reduce_record(
    patients: str | Path,
    events: str | Path,
    admissions: str | Path,
    first: dt.date,
    last: dt.date,
    min_age: float,
    codelist_dir: str | Path | None,
    folder: Path,
) -> dict[str, Path]:
    """Write the reduced ``patients``, ``events`` and ``admissions`` Parquet files to ``folder``.

    See the module docstring for what is kept and why no feature at an index date between
    ``first`` and ``last`` changes.
    """
    ltc = load_codelist("ltc", codelist_dir)
    ever_codes = pd.concat([
        ltc.loc[ltc["condition"].isin(LTC_CONDITIONS), "snomed_code"],
        load_efi_codelist(None)["snomed_code"],
    ]).drop_duplicates().to_frame("snomed_code")
    cutoff = first - dt.timedelta(days=FULL_HISTORY_DAYS)
    out = {name: folder / f"{name}.parquet" for name in ("patients", "events", "admissions")}
    con = connect()
    con.register("ever_codes", ever_codes)
    src = {name: str(path).replace("'", "''") for name, path in
           (("patients", patients), ("events", events), ("admissions", admissions))}
    con.execute(f"""
        CREATE TEMP TABLE pool AS
        SELECT * FROM read_parquet('{src["patients"]}')
        WHERE {registered_between_sql(date_literal(first), date_literal(last))}
          AND {age_sql("date_of_birth", date_literal(last))} >= {float(min_age)}
    """)
    con.execute(f"COPY pool TO '{out['patients']}' (FORMAT parquet)")
    con.execute(f"""
        COPY (
            SELECT * FROM read_parquet('{src["events"]}')
            WHERE date > DATE '{cutoff}' AND date <= DATE '{last}'
              AND patient_id IN (SELECT patient_id FROM pool)
            UNION ALL
            SELECT * FROM read_parquet('{src["events"]}')
            WHERE date <= DATE '{cutoff}'
              AND snomed_code IN (SELECT snomed_code FROM ever_codes)
              AND patient_id IN (SELECT patient_id FROM pool)
            QUALIFY row_number() OVER (PARTITION BY patient_id, snomed_code ORDER BY date) = 1
        ) TO '{out['events']}' (FORMAT parquet)
    """)
    con.execute(f"""
        COPY (SELECT * FROM read_parquet('{src["admissions"]}')
              WHERE patient_id IN (SELECT patient_id FROM pool))
        TO '{out['admissions']}' (FORMAT parquet)
    """)
    con.close()
    return out
