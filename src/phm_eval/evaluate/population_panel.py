"""The eligible population's unit-month panel for the population-level (ITT) evaluation.

The question is what the programme did to emergency admissions among the people it was meant
for, whether or not they were enrolled (intention to treat). The people are fixed once, on an
**eligibility date** before the first unit adopts, so membership cannot depend on treatment:
everyone registered that day (:func:`phm_eval.definitions.registered_on_sql`) who meets the
eligibility rules on the history up to it (:class:`~phm_eval.evaluate.design.Eligibility`: by
default aged 65+ and moderate/severe eFI or an emergency admission in the previous 12 months,
measured by :func:`phm_eval.risk.features.risk_features`, the same features the enrolled design
uses). They are followed month by month to the study end, within their practice's **adopting
unit**: the PCN when every roll-out row of the programme is PCN-level, otherwise the practice.

For each unit and calendar month the panel holds the cohort's emergency admissions and
person-months at risk, with the shared definitions: a month ``[a, b]`` is the follow-up window
``(a - 1, min(b, exit)]`` (:func:`~phm_eval.definitions.follow_up_end_sql`; ``exit`` is the
registration end or death), its person-time ``min(b, exit) - (a - 1)`` days, and an emergency
admission (:func:`~phm_eval.definitions.emergency_sql`) dated in it counts, including one on the
day of death or of leaving. A person-month is ``365.25 / 12`` days.

A unit's **adoption month** is the first full calendar month on or after its roll-out start
date (the 1st of the start month when the programme starts on a 1st, else the next month);
units without a roll-out row, or adopting after the last month, are never treated within the
study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..db import connect
from ..definitions import (
    emergency_sql,
    follow_up_end_sql,
    follow_up_sql,
)
from ..errors import ConfigError, EstimationError
from .design import Eligibility, practice_adoption

log = logging.getLogger(__name__)

#: Days in a person-month (a twelfth of a Julian year).
MONTH_DAYS = 365.25 / 12
#: Pre-roll-out months the default eligibility date leaves before the first adoption month.
DEFAULT_PRE_MONTHS = 12


@dataclass
class PopulationPanel:
    """The eligible cohort aggregated by adopting unit and calendar month.

    Attributes
    ----------
    panel : pandas.DataFrame
        One row per unit and month (balanced): ``unit``, ``t`` (1 = first month), ``month``
        (its first day), ``admissions``, ``person_months``, ``rate`` (emergency admissions per
        1,000 person-months), ``people`` (cohort members at risk on any day of the month),
        ``g`` (adoption month as a value of ``t``; 0 = never treated within the study),
        ``adoption_month``, ``weight`` (the unit's eligible person-months in the pre-roll-out
        months, see :func:`build_population_panel`) and ``cluster`` (the PCN).
    cohort : pandas.DataFrame
        Patient-level (keep inside): ``patient_id``, ``unit``, the eligibility features.
    unit_level : {"pcn", "practice"}
    eligibility_date : pandas.Timestamp
    months : pandas.DatetimeIndex
        First day of each month of the panel.
    units : pandas.DataFrame
        One row per unit of the practices table: ``unit``, ``cluster``, ``start_date``,
        ``adoption_month``, ``g``, ``n_eligible``, ``in_panel``.
    eligibility : Eligibility
    flow : list of dict
        What was counted and excluded (``step``, ``reason``, ``n``).
    """

    panel: pd.DataFrame
    cohort: pd.DataFrame
    unit_level: str
    eligibility_date: pd.Timestamp
    months: pd.DatetimeIndex
    units: pd.DataFrame
    eligibility: Eligibility
    flow: list[dict] = field(default_factory=list)

    @property
    def first_adoption_month(self) -> pd.Timestamp:
        adopted = self.units["adoption_month"].dropna()
        return pd.Timestamp(adopted.min())


def adoption_month(start_date: object) -> pd.Timestamp:
    """First full calendar month on or after ``start_date`` (its first day); NaT if missing.

    >>> adoption_month("2020-10-01"), adoption_month("2020-10-15")
    (Timestamp('2020-10-01 00:00:00'), Timestamp('2020-11-01 00:00:00'))
    """
    if start_date is None or pd.isna(start_date):
        return pd.NaT
    d = pd.Timestamp(start_date)
    first = d.to_period("M").to_timestamp()
    return first if d == first else (d.to_period("M") + 1).to_timestamp()


def default_eligibility_date(first_adoption: object, study_start: object) -> pd.Timestamp:
    """The day before ``DEFAULT_PRE_MONTHS`` months before the first adoption month, or the day
    before the study start if that is later (history before the study start is look-back
    only).

    With a first adoption in October 2020 and the study from April 2019: 30 September 2019, so
    the panel has 12 pre-roll-out months (October 2019 to September 2020).
    """
    first = adoption_month(first_adoption)
    start = pd.Timestamp(study_start)
    day = first - pd.DateOffset(months=DEFAULT_PRE_MONTHS) - pd.Timedelta(days=1)
    return max(pd.Timestamp(day), start - pd.Timedelta(days=1))


def panel_months(eligibility_date: object, study_start: object,
                 study_end: object) -> pd.DatetimeIndex:
    """Calendar months followed: from the first full month after the eligibility date (and not
    before the study start) to the last month ending on or before the study end."""
    e = pd.Timestamp(eligibility_date)
    first = max(adoption_month(e + pd.Timedelta(days=1)), adoption_month(study_start))
    end = pd.Timestamp(study_end)
    last = end.to_period("M").to_timestamp()
    if (end + pd.Timedelta(days=1)).day != 1:  # the study end is not a month's last day
        last = (end.to_period("M") - 1).to_timestamp()
    return pd.date_range(first, last, freq="MS")


def adopting_units(rollout: pd.DataFrame, practices: pd.DataFrame, programme: str,
                   *,
                   unit: str | None = None) -> tuple[str, pd.DataFrame]:
    """The adopting unit level and every unit's roll-out start and adoption month.

    Parameters
    ----------
    rollout, practices : pandas.DataFrame
        The contract's ``rollout`` and ``practices`` tables.
    programme : str
    unit : {"pcn", "practice"}, optional
        Default: ``"pcn"`` when every roll-out row of the programme is PCN-level (no
        ``practice_id``), otherwise ``"practice"``.

    Returns
    -------
    unit_level : str
    units : pandas.DataFrame
        ``unit``, ``cluster`` (the unit's PCN), ``start_date``, ``adoption_month`` for every
        unit in ``practices`` (NaT start: never adopted), and for practices ``practice_id``.
    """
    roll = rollout[rollout["programme"] == programme].copy()
    if roll.empty:
        raise EstimationError(f"no roll-out rows for programme '{programme}': the population "
                              "evaluation needs every adopting unit's start date")
    if "practice_id" not in roll.columns:
        roll["practice_id"] = None
    roll["start_date"] = pd.to_datetime(roll["start_date"])
    pcn_level = bool(roll["practice_id"].isna().all())
    level = unit or ("pcn" if pcn_level else "practice")
    if level not in ("pcn", "practice"):
        raise ConfigError(f"unit must be 'pcn' or 'practice', got {unit!r}")
    if level == "pcn":
        if not pcn_level:
            raise ConfigError("unit='pcn' needs a PCN-level roll-out; this programme has "
                              "practice-level roll-out rows (use unit='practice')")
        start = roll.groupby("pcn_id")["start_date"].min()
        pcns = pd.Index(sorted(practices["pcn_id"].unique()), name="pcn_id")
        units = pd.DataFrame({"unit": pcns.astype(str), "cluster": pcns.astype(str),
                              "start_date": start.reindex(pcns).to_numpy()})
    else:
        start = practice_adoption(roll, practices, programme)
        frame = practices[["practice_id", "pcn_id"]].drop_duplicates("practice_id")
        units = pd.DataFrame({"unit": frame["practice_id"].astype(str).to_numpy(),
                              "cluster": frame["pcn_id"].astype(str).to_numpy(),
                              "start_date": start.reindex(frame["practice_id"]).to_numpy()})
    units["start_date"] = pd.to_datetime(units["start_date"])
    units["adoption_month"] = pd.to_datetime(units["start_date"].map(adoption_month))
    return level, units.sort_values("unit", kind="stable").reset_index(drop=True)


def unit_month_counts(cohort: pd.DataFrame, patients: str | Path | pd.DataFrame,
                      admissions: str | Path | pd.DataFrame, months: pd.DatetimeIndex,
                      *,
                      exclude_methods: tuple[str, ...] = ()) -> pd.DataFrame:
    """Emergency admissions and person-months of ``cohort`` by unit and month.

    Parameters
    ----------
    cohort : pandas.DataFrame
        ``patient_id``, ``unit``.
    patients, admissions : path or DataFrame
        The contract's tables.
    months : pandas.DatetimeIndex
        First days of the months.
    exclude_methods : tuple of str
        Emergency admission methods not to count (:func:`~phm_eval.definitions.emergency_sql`).

    Returns
    -------
    pandas.DataFrame
        Every unit of ``cohort`` x every month: ``unit, t, month, admissions, person_days,
        person_months, people``.
    """
    con = connect()
    try:
        con.register("cohort", cohort[["patient_id", "unit"]])
        m = pd.DataFrame({"t": np.arange(1, len(months) + 1), "month": months})
        m["prev_day"] = (m["month"] - pd.Timedelta(days=1)).dt.date
        m["month_end"] = (m["month"] + pd.offsets.MonthEnd(0)).dt.date
        con.register("months", m[["t", "prev_day", "month_end"]])
        for name, source in (("patients", patients), ("admissions", admissions)):
            if isinstance(source, pd.DataFrame):
                con.register(f"{name}_src", source)
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_src")
            else:
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{source}')")
        # follow-up in month t is (prev_day, least(month_end, exit)]: shared definitions
        end = follow_up_end_sql("m.prev_day", "p", days=31, limits=["m.month_end"])
        out = con.execute(
            f"""
            WITH members AS (
                SELECT c.unit, p.* FROM cohort c JOIN patients p USING (patient_id)
            ),
            follow AS (
                SELECT p.unit, p.patient_id, m.t, m.prev_day, {end} AS end_day
                FROM members p CROSS JOIN months m
            ),
            time AS (
                SELECT unit, t, sum(greatest(0, date_diff('day', prev_day, end_day))) AS days,
                       count(*) FILTER (WHERE end_day > prev_day) AS people
                FROM follow GROUP BY unit, t
            ),
            adm AS (
                SELECT f.unit, f.t, count(*) AS admissions
                FROM follow f JOIN admissions a ON a.patient_id = f.patient_id
                WHERE {emergency_sql("a.admission_method", exclude_methods)}
                  AND {follow_up_sql("a.admission_date", "f.prev_day", end="f.end_day")}
                GROUP BY f.unit, f.t
            )
            SELECT time.unit, time.t, coalesce(adm.admissions, 0) AS admissions,
                   time.days AS person_days, time.people
            FROM time LEFT JOIN adm USING (unit, t)
            ORDER BY time.unit, time.t
            """
        ).df()
    finally:
        con.close()
    out["admissions"] = out["admissions"].astype(np.int64)
    out["person_days"] = out["person_days"].astype(np.int64)
    out["people"] = out["people"].astype(np.int64)
    out["person_months"] = out["person_days"] / MONTH_DAYS
    out["month"] = months[out["t"].to_numpy() - 1]
    return out[["unit", "t", "month", "admissions", "person_days", "person_months", "people"]]


def eligible_cohort(tables: dict[str, str | Path], eligibility: Eligibility,
                    eligibility_date: pd.Timestamp,
                    *,
                    codelist_dir: str | Path | None = None) -> pd.DataFrame:
    """Everyone registered on ``eligibility_date`` who meets ``eligibility`` on the history up
    to it: ``patient_id``, ``practice_id``, ``pcn_id``, ``age``, ``efi_deficits``,
    ``n_emergency_admissions_1y``."""
    from ..risk.features import risk_features

    frame = risk_features(tables["patients"], tables["events"], tables["admissions"],
                          tables["practices"], eligibility_date.date(),
                          min_age=eligibility.min_age, codelist_dir=codelist_dir)
    keep = eligibility.mask(frame).to_numpy(dtype=bool)
    cols = ["patient_id", "practice_id", "pcn_id", "age", "efi_deficits",
            "n_emergency_admissions_1y"]
    return frame.loc[keep, cols].reset_index(drop=True)


def build_population_panel(
    tables: dict[str, str | Path],
    programme: str,
    study_start: str,
    study_end: str,
    *,
    eligibility: Eligibility | None = None,
    eligibility_date: str | None = None,
    unit: str | None = None,
    codelist_dir: str | Path | None = None,
    exclude_methods: tuple[str, ...] = (),
) -> PopulationPanel:
    """The eligible cohort, fixed on the eligibility date, by adopting unit and month.

    Parameters
    ----------
    tables : dict
        Validated Parquet paths: ``patients``, ``events``, ``admissions``, ``practices``,
        ``rollout``.
    programme, study_start, study_end : str
    eligibility : Eligibility, optional
        Default ``Eligibility()`` (aged 65+, and moderate/severe eFI or an emergency admission
        in the 12 months before). ``Eligibility(min_efi_deficits=None,
        min_recent_emergency_admissions=None)`` is everyone of the minimum age.
    eligibility_date : date-like, optional
        When membership is fixed; must be before the first adoption month. Default
        :func:`default_eligibility_date` (12 pre-roll-out months).
    unit : {"pcn", "practice"}, optional
        Adopting unit (default from the roll-out table, :func:`adopting_units`).
    codelist_dir : path, optional
    exclude_methods : tuple of str
        Emergency admission methods not counted.

    Returns
    -------
    PopulationPanel
        Units are weighted (column ``weight``) by their cohort's person-months in the months
        before the first unit adopts: eligible person-time, measured before any treatment
        could change it (deaths or moves caused by the programme would otherwise move the
        weights).
    """
    eligibility = eligibility or Eligibility()
    practices = pd.read_parquet(tables["practices"])
    rollout_path = tables.get("rollout")
    if not rollout_path or not Path(rollout_path).exists():
        raise EstimationError("the population evaluation needs the rollout table")
    rollout = pd.read_parquet(rollout_path)
    level, units = adopting_units(rollout, practices, programme, unit=unit)
    adopted = units["adoption_month"].dropna()
    if adopted.empty:
        raise EstimationError(f"no unit adopted programme '{programme}'")
    first_adoption = pd.Timestamp(adopted.min())
    e_date = (default_eligibility_date(first_adoption, study_start) if eligibility_date is None
              else pd.Timestamp(eligibility_date))
    if e_date >= first_adoption:
        raise ConfigError(
            f"eligibility_date {e_date.date()} is not before the first adoption month "
            f"({first_adoption.date()}): membership of the population would depend on "
            "treatment")
    months = panel_months(e_date, study_start, study_end)
    if len(months) == 0 or months[0] >= first_adoption:
        raise ConfigError(
            f"no month between the eligibility date {e_date.date()} (or the study start) and "
            f"the first adoption month {first_adoption.date()}: the difference in differences "
            "needs at least one pre-roll-out month")
    t_of = {m: i + 1 for i, m in enumerate(months)}
    am = units["adoption_month"]
    units["g"] = [0 if pd.isna(a) or a > months[-1] else t_of[pd.Timestamp(a)] for a in am]

    cohort = eligible_cohort(tables, eligibility, e_date, codelist_dir=codelist_dir)
    cohort["unit"] = (cohort["pcn_id"] if level == "pcn" else cohort["practice_id"]).astype(str)
    flow: list[dict] = [
        {"step": "eligible", "reason": f"registered on {e_date.date()} and meeting the "
         "eligibility rules", "n": len(cohort)},
    ]
    counts = unit_month_counts(cohort, tables["patients"], tables["admissions"], months,
                               exclude_methods=tuple(exclude_methods))
    n_eligible = cohort.groupby("unit").size()
    units["n_eligible"] = units["unit"].map(n_eligible).fillna(0).astype(np.int64)
    # A unit whose cohort has no person-time in some month has no rate then; the balanced
    # panel the estimator needs cannot include it.
    empty_month = counts.groupby("unit")["person_days"].min().le(0)
    dropped = sorted(empty_month[empty_month].index)
    units["in_panel"] = units["unit"].isin(counts["unit"]) & ~units["unit"].isin(dropped)
    n_no_cohort = int((units["n_eligible"] == 0).sum())
    if n_no_cohort:
        flow.append({"step": "exclude", "reason": "units without eligible people",
                     "n": n_no_cohort})
    if dropped:
        flow.append({"step": "exclude", "reason": "units whose cohort has no person-time in "
                     "some month (no rate)", "n": len(dropped)})
    late = int(((units["g"] == 0) & units["adoption_month"].notna() & units["in_panel"]).sum())
    if late:
        flow.append({"step": "recode", "reason": "units adopting after the last month: never "
                     "treated within the study", "n": late})
    panel = counts[~counts["unit"].isin(dropped)].merge(
        units[["unit", "cluster", "g", "adoption_month"]], on="unit", how="left")
    panel["rate"] = 1000 * panel["admissions"] / panel["person_months"]
    pre = panel["month"] < first_adoption
    weight = panel[pre].groupby("unit")["person_months"].sum()
    panel["weight"] = panel["unit"].map(weight)
    flow += [
        {"step": "kept", "reason": "units (treated)", "n": int((units["in_panel"]
                                                               & (units["g"] > 0)).sum())},
        {"step": "kept", "reason": "units (never treated within the study)",
         "n": int((units["in_panel"] & (units["g"] == 0)).sum())},
        {"step": "kept", "reason": "unit-months", "n": len(panel)},
    ]
    cols = ["unit", "cluster", "t", "month", "admissions", "person_days", "person_months",
            "people", "rate", "g", "adoption_month", "weight"]
    return PopulationPanel(panel=panel[cols].reset_index(drop=True), cohort=cohort,
                           unit_level=level, eligibility_date=e_date, months=months,
                           units=units, eligibility=eligibility, flow=flow)
