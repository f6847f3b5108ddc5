"""Network Contract DES personalised-care activity per practice, PCN and financial year.

For each financial year (1 April to 31 March, both inclusive) overlapping the requested period,
:func:`des_metrics` counts each personalised-care activity of
``config/codelists/personalised_care_snomed.csv`` (personalised care and support plans,
social prescribing referrals, Patient Activation Measure, structured medication reviews),
divides by the registered list and compares the rate with the DES target range for that year.

Counting rules:

* an activity is one patient on one day with at least one of the activity's codes (two codes of
  the same activity on the same day count once); ``n_patients`` counts distinct patients;
* an event counts for the practice the patient is registered with (``patients.practice_id``)
  and only if dated while their records there are observed (from ``registration_start`` to the
  registration end or death, both inclusive: :func:`phm_eval.definitions.observed_sql`), so
  activity from a previous practice is not credited;
* list size is either the number registered at the middle of the period (``"mid_year"``: 30
  September for a whole financial year) or the average daily list over the period
  (``"average"``: registered person-days / days, rounded to a whole number); registered on a
  day is :func:`phm_eval.definitions.registered_on_sql` (the day of leaving or of death is not
  a registered day);
* rates are per 1,000 registered patients over the period covered; for a partial year (when
  ``start`` or ``end`` cuts a financial year) they are not annualised and are not compared
  with the target.

Targets (per 1,000 registered patients, from the Network Contract DES personalised care
specification): PCSPs 5-10 (2020/21), 10-15 (2021/22), 20-25 (2023/24); social prescribing
referrals at least 4 (2020/21), at least 8 (2021/22), 16-22 (2023/24). No range is recorded for
2019/20 (before the specification), 2022/23 or 2024/25 onwards, nor for PAM or medication
reviews; those rows carry ``target_status = "no target"``. The DES sets its targets for the PCN;
practice rows show the same range for reference. Shared decision making has no codes yet
and is not counted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.codelists import load_codelist
from phm_eval.convention import ResultConvention
from phm_eval.definitions import census_days_sql, observed_sql
from phm_eval.errors import ConfigError, InputError
from phm_eval.segment._io import (
    TableSource,
    as_date,
    fetch,
    open_connection,
    register,
    registered_sql,
)
from phm_eval.segment.config import segmentation_config

log = logging.getLogger(__name__)

_DISCLOSURE: dict[str, Any] = {
    "count_cols": ["n_activities", "n_patients"],
    "denominator_cols": ["list_size"],
    "rate_cols": {"rate_per_1000": ("n_activities", "list_size", 1000.0)},
}


def financial_year(day: object) -> str:
    """The NHS financial year of a date, e.g. ``"2021/22"`` for 2021-04-01 to 2022-03-31."""
    d = as_date(day, "date")
    start = d.year if d.month >= 4 else d.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def financial_years(start: object, end: object) -> pd.DataFrame:
    """Financial years overlapping ``[start, end]`` with the part of each inside it.

    Returns columns ``financial_year``, ``fy_start``, ``fy_end``, ``period_start``,
    ``period_end``, ``days``, ``complete_year`` and ``mid_date`` (middle day of the period:
    30 September for a whole year).
    """
    first, last = as_date(start, "start"), as_date(end, "end")
    if last < first:
        raise InputError("des_metrics", f"end ({last}) is before start ({first})")
    y0 = first.year if first.month >= 4 else first.year - 1
    y1 = last.year if last.month >= 4 else last.year - 1
    rows = []
    for year in range(y0, y1 + 1):
        fy_start, fy_end = dt.date(year, 4, 1), dt.date(year + 1, 3, 31)
        p_start, p_end = max(fy_start, first), min(fy_end, last)
        days = (p_end - p_start).days + 1
        rows.append(
            {
                "financial_year": f"{year}/{(year + 1) % 100:02d}",
                "fy_start": fy_start,
                "fy_end": fy_end,
                "period_start": p_start,
                "period_end": p_end,
                "days": days,
                "complete_year": p_start == fy_start and p_end == fy_end,
                "mid_date": p_start + dt.timedelta(days=(days - 1) // 2),
            }
        )
    return pd.DataFrame(rows)


def target_table(targets: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Targets as rows: ``activity``, ``financial_year``, ``target_low``, ``target_high``."""
    rows = [
        {"activity": activity, "financial_year": year,
         "target_low": np.nan if bounds[0] is None else float(bounds[0]),
         "target_high": np.nan if bounds[1] is None else float(bounds[1])}
        for activity, years in targets.items() for year, bounds in years.items()
    ]
    return pd.DataFrame(rows, columns=["activity", "financial_year", "target_low", "target_high"])


def _status(table: pd.DataFrame) -> pd.Series:
    rate, low, high = table["rate_per_1000"], table["target_low"], table["target_high"]
    has_target = low.notna() | high.notna()
    status = np.select(
        [~has_target, ~table["complete_year"], rate.isna(), low.notna() & (rate < low),
         high.notna() & (rate > high)],
        ["no target", "partial year", "no list", "below", "above"],
        default="within",
    )
    return pd.Series(status, index=table.index)


def _finish(table: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["rate_per_1000"] = np.where(
        table["list_size"] > 0, 1000.0 * table["n_activities"] / table["list_size"].where(
            table["list_size"] > 0, 1), np.nan)
    table = table.merge(targets, on=["activity", "financial_year"], how="left")
    table["target_status"] = _status(table)
    return table


@dataclass(frozen=True, repr=False)
class DesMetrics(ResultConvention):
    """Personalised-care activity per practice, PCN and overall, by financial year.

    Attributes
    ----------
    practice, pcn, overall : DataFrame
        Long tables, one row per unit x financial year x activity: ``financial_year``,
        ``period_start``, ``period_end``, ``complete_year``, ``activity``, ``n_activities``,
        ``n_patients``, ``list_size``, ``rate_per_1000``, ``target_low``, ``target_high``,
        ``target_status`` (below / within / above / no target / partial year / no list).
        True counts.
    targets : DataFrame
        The target ranges used.
    list_size_method : str
    """

    practice: pd.DataFrame
    pcn: pd.DataFrame
    overall: pd.DataFrame
    targets: pd.DataFrame
    list_size_method: str
    disclosure_spec: dict[str, Any] = field(default_factory=lambda: dict(_DISCLOSURE))

    def _repr_fields(self) -> dict[str, Any]:
        return {"practices": int(self.practice["practice_id"].nunique()),
                "list_size": self.list_size_method}

    def _summary_table(self) -> pd.DataFrame:
        """The PCN table (the level the DES targets apply to)."""
        return self.pcn.copy()

    def funnel_table(self, activity: str, year: str) -> pd.DataFrame:
        """Practice counts and list sizes for one activity and year (input to a funnel plot)."""
        sel = self.practice[(self.practice["activity"] == activity)
                            & (self.practice["financial_year"] == year)]
        if sel.empty:
            raise InputError("des_metrics", f"no rows for activity {activity!r} in {year}")
        cols = ["practice_id", "pcn_id", "n_activities", "n_patients", "list_size", "rate_per_1000"]
        return sel[cols].set_index("practice_id")

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict]:
            out = df.astype(object)
            for col in ("period_start", "period_end"):
                if col in out:
                    out[col] = out[col].map(lambda d: d.isoformat() if d is not None else None)
            return out.where(out.notna(), None).to_dict(orient="records")

        return {
            "list_size_method": self.list_size_method,
            "practice": records(self.practice),
            "pcn": records(self.pcn),
            "overall": records(self.overall),
        }


def des_metrics(
    events: TableSource,
    patients: TableSource,
    practices: TableSource,
    start: object,
    end: object,
    *,
    codelist_dir: str | Path | None = None,
    list_size: str | None = None,
    config: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> DesMetrics:
    """Personalised-care activity and DES targets per practice, PCN and financial year.

    Parameters
    ----------
    events, patients, practices : DataFrame or path
        Contract tables.
    start, end : date-like
        First and last day counted (inclusive). Financial years cut by them are partial.
    codelist_dir : path, optional
        Folder with ``personalised_care_snomed.csv``.
    list_size : {"mid_year", "average"}, optional
        Denominator; default from the settings (``des.list_size``, ``"mid_year"``).
    config : mapping, optional
        Segmentation settings overrides; the ``des`` section applies (activities, targets).
    threads : int, optional

    Returns
    -------
    DesMetrics
    """
    cfg = segmentation_config(config)["des"]
    method = list_size or cfg["list_size"]
    if method not in ("mid_year", "average"):
        raise ConfigError("list_size must be 'mid_year' or 'average'")
    periods = financial_years(start, end)
    codes = load_codelist("personalised_care", codelist_dir)[["activity", "snomed_code"]]
    activities = list(cfg["activities"])
    missing = [a for a in activities if not (codes["activity"] == a).any()]
    if missing:
        log.warning("no codes for personalised-care activities %s; they count 0", missing)
    codes = codes[codes["activity"].isin(activities)].drop_duplicates()

    con = open_connection(threads)
    try:
        register(con, "patients", patients)
        label = register(con, "events", events)
        register(con, "practices", practices)
        con.register("pc_codes", codes)
        con.register("periods", periods)
        counts = fetch(
            con,
            f"""
            SELECT p.practice_id, per.financial_year, c.activity,
                   count(DISTINCT e.patient_id || '|' || CAST(e.date AS VARCHAR)) AS n_activities,
                   count(DISTINCT e.patient_id) AS n_patients
            FROM events e
            JOIN pc_codes c ON e.snomed_code = c.snomed_code
            JOIN patients p ON p.patient_id = e.patient_id
            JOIN periods per ON e.date BETWEEN CAST(per.period_start AS DATE)
                                          AND CAST(per.period_end AS DATE)
            WHERE {observed_sql("e.date", "p")}
            GROUP BY ALL
            """,
            label,
        )
        if method == "mid_year":
            mid = "CAST(per.mid_date AS DATE)"
            sizes = fetch(
                con,
                f"""
                SELECT p.practice_id, per.financial_year, count(*) AS list_size
                FROM patients p, periods per
                WHERE {registered_sql(mid, "p")}
                GROUP BY ALL
                """,
                label,
            )
        else:
            ps, pe = "CAST(per.period_start AS DATE)", "CAST(per.period_end AS DATE)"
            sizes = fetch(
                con,
                f"""
                SELECT p.practice_id, per.financial_year,
                       sum({census_days_sql(ps, pe, "p")}) / any_value(per.days) AS list_size
                FROM patients p, periods per
                GROUP BY ALL
                """,
                label,
            )
            sizes["list_size"] = np.floor(sizes["list_size"].astype(float) + 0.5)
        practice_ids = fetch(con, "SELECT practice_id, pcn_id FROM practices", label)
    finally:
        con.close()

    grid = (
        practice_ids.merge(periods[["financial_year", "period_start", "period_end",
                                    "complete_year"]], how="cross")
        .merge(pd.DataFrame({"activity": activities}), how="cross")
    )
    table = (
        grid.merge(counts, on=["practice_id", "financial_year", "activity"], how="left")
        .merge(sizes, on=["practice_id", "financial_year"], how="left")
    )
    for col in ("n_activities", "n_patients", "list_size"):
        table[col] = table[col].fillna(0).astype("int64")
    targets = target_table(cfg["targets"])
    keys = ["financial_year", "period_start", "period_end", "complete_year", "activity"]
    sums = ["n_activities", "n_patients", "list_size"]
    practice = _finish(table, targets).sort_values(["practice_id", "financial_year", "activity"])
    pcn = _finish(table.groupby(["pcn_id", *keys], as_index=False)[sums].sum(), targets)
    overall = _finish(table.groupby(keys, as_index=False)[sums].sum(), targets)
    return DesMetrics(
        practice=practice.reset_index(drop=True),
        pcn=pcn.sort_values(["pcn_id", "financial_year", "activity"]).reset_index(drop=True),
        overall=overall.sort_values(["financial_year", "activity"]).reset_index(drop=True),
        targets=targets,
        list_size_method=method,
    )
