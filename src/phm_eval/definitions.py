"""The population and outcome definitions every stage shares, said once.

Every stage (describe, frailty, risk, segment, evaluate) asks the same questions of the
contract's tables: who is registered on a date, how old someone is, which hospital spells are
emergency admissions, and which records fall in the window before or after an index date. The
answers live here, as DuckDB SQL fragments (the stages run SQL over Parquet) and as numpy/pandas
helpers for the few places that work on frames, so that a result never depends on which stage
asked.

One model of a day underlies all of them: **the records of a day happen during it, and a
census on day ``d`` is taken at the end of that day** (so a record dated on an index date is
history, and follow-up starts the day after).

Registered on a date (the census)
    ``date_of_birth <= d`` and ``registration_start <= d`` and ``d < registration_end`` (or no
    end) and ``d < date_of_death`` (or alive). ``registration_start`` is the first day on the
    list; ``registration_end`` and ``date_of_death`` are *exit dates*: the person leaves the list
    during that day, so is not on it at the end of it. The two exits are treated alike, as the
    synthetic generator (the contract's reference writer) writes them: its registration end is
    the first day a person is no longer observed. The census days of a registration are
    therefore the half-open interval ``[registration_start, exit)``, where
    ``exit = min(registration_end, date_of_death)``; their number is ``exit - start`` with no
    ``+ 1``, and a registration ending on the day another starts is never counted twice.

Observed records
    The contract allows events and admissions dated on the date of death (and a registration
    may start and end on the same day), so a person's records are observed on the dates
    ``registration_start`` to ``exit`` *inclusive*: a record on the exit day happened before the
    exit. Follow-up after an index date ``d`` therefore runs over ``(d, exit]`` (with the other
    limits of the stage), its person-time is ``end - d`` days, and an admission on the day of
    death or of leaving is counted.

Age on a date
    Whole years completed: the calendar difference in years, minus one before the birthday in
    that year. Dates of birth may be month precision (the contract asks for the 1st of the
    month), which this handles as a date like any other. Someone born on 29 February turns a
    year older on 1 March in non-leap years. Models that want age as a continuous predictor use
    :func:`exact_age_sql`, whose whole part is always this age, so ``age >= 65`` selects the same
    people whichever stage asks.

Emergency admission
    A spell whose admission method (ADMIMETH) is one of :data:`EMERGENCY_METHODS`: ``21``-``25``,
    ``2A``-``2D`` and the legacy ``28`` (every valid code starting with ``2``). A stage may
    exclude some of them by configuration (the segmentation's ``exclude_methods``, e.g. ``2B``
    transfers); nothing else restates the list.

Time windows around a day ``d``
    "In the N days (or months) before ``d``" is ``(d - N, d]``: N days ending with ``d``
    itself. "In the N days (or months) after ``d``" is ``(d, d + N]``: N days starting the day
    after. The two are adjacent, do not overlap and have the same length, so a before/after
    comparison compares like with like. Months are calendar months, clamped to the month's end
    (31 March minus one month is 28 or 29 February).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: Admission methods (ADMIMETH) of an emergency admission: every valid code starting with 2.
#: The order is the synthetic generator's (it draws methods from this array).
EMERGENCY_METHODS: tuple[str, ...] = ("21", "22", "23", "24", "25", "28", "2A", "2B", "2C", "2D")

#: Stands in for a missing exit date (still registered, alive) in SQL comparisons.
FAR_FUTURE = "DATE '9999-12-31'"


# --------------------------------------------------------------------------------------------
# SQL fragments. Arguments named ``day`` or ``column`` are SQL expressions (a column, or a date
# literal from :func:`date_literal`); ``alias`` qualifies the patients table's columns.
# --------------------------------------------------------------------------------------------

def date_literal(value: object) -> str:
    """A DuckDB ``DATE`` literal for a date-like value (ISO text, date, Timestamp).

    The value is parsed first, so the literal never carries user text into SQL.
    """
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        raise ValueError(f"not a date: {value!r}")
    return f"DATE '{ts.date().isoformat()}'"


def _col(alias: str, column: str) -> str:
    return f"{alias}.{column}" if alias else column


def _interval(days: int | None, months: int | None) -> str:
    """Signed interval text: ``+ INTERVAL 3 DAY`` or ``- INTERVAL 12 MONTH``."""
    if (days is None) == (months is None):
        raise ValueError("give exactly one of days or months")
    n, unit = (int(days), "DAY") if days is not None else (int(months), "MONTH")
    return f"{'-' if n < 0 else '+'} INTERVAL {abs(n)} {unit}"


def shift_sql(day: str, *, days: int | None = None, months: int | None = None) -> str:
    """SQL ``DATE`` of ``day`` moved by ``days`` or calendar ``months`` (negative = earlier).

    Months clamp to the end of the month, as :func:`shift` does.
    """
    return f"CAST(({day}) {_interval(days, months)} AS DATE)"


def alive_on_sql(day: str, alias: str = "") -> str:
    """SQL condition: alive at the end of ``day`` (no death date, or death after ``day``)."""
    death = _col(alias, "date_of_death")
    return f"({death} IS NULL OR {day} < {death})"


def on_list_sql(day: str, alias: str = "") -> str:
    """SQL condition: registration covers ``day``: ``registration_start <= day < registration_end``."""
    start, end = _col(alias, "registration_start"), _col(alias, "registration_end")
    return f"({start} <= {day} AND ({end} IS NULL OR {day} < {end}))"


def registered_on_sql(day: str, alias: str = "") -> str:
    """SQL condition: in the registered population on ``day`` (the census; module docstring).

    Born by ``day``, registration started on or before it and not ended on or before it, and
    not died on or before it. Missing dates of birth or registration starts never qualify.

    Parameters
    ----------
    day : str
        SQL date expression (a literal from :func:`date_literal`, or a column).
    alias : str, optional
        Alias of the patients table in the query.

    Returns
    -------
    str
        A parenthesised SQL boolean expression.
    """
    return (f"({_col(alias, 'date_of_birth')} <= {day} AND {on_list_sql(day, alias)} "
            f"AND {alive_on_sql(day, alias)})")


def registered_between_sql(first: str, last: str, alias: str = "") -> str:
    """SQL condition: registered on at least one day from ``first`` to ``last`` inclusive."""
    return (f"({_col(alias, 'date_of_birth')} <= {last} "
            f"AND {_col(alias, 'registration_start')} <= {last} "
            f"AND {exit_date_sql(alias)} > {first})")


def exit_date_sql(alias: str = "") -> str:
    """SQL ``DATE``: the day a person leaves the population (registration end or death).

    :data:`FAR_FUTURE` when neither is recorded.
    """
    # The casts keep the far-future stand-in a DATE even where a frame holds timestamps
    # (nanosecond timestamps end in 2262); on DATE columns they cost nothing.
    return (f"least(coalesce(CAST({_col(alias, 'registration_end')} AS DATE), {FAR_FUTURE}), "
            f"coalesce(CAST({_col(alias, 'date_of_death')} AS DATE), {FAR_FUTURE}))")


def entry_date_sql(alias: str = "") -> str:
    """SQL ``DATE``: the first day a person is in the population (registered and born)."""
    return f"greatest({_col(alias, 'registration_start')}, {_col(alias, 'date_of_birth')})"


def observed_sql(column: str, alias: str = "") -> str:
    """SQL condition: a record dated ``column`` is observed: from entry to exit, both inclusive.

    A record on the exit day (the day of death or of leaving) is observed: it happened before
    the person left.
    """
    return f"({column} >= {entry_date_sql(alias)} AND {column} <= {exit_date_sql(alias)})"


def census_days_sql(first: str, last: str, alias: str = "") -> str:
    """SQL integer: days from ``first`` to ``last`` (inclusive) on which registered.

    Equals the number of days ``d`` in the period with :func:`registered_on_sql` true, computed
    from the interval ``[entry, exit)`` without a row per day.
    """
    upper = f"least({exit_date_sql(alias)}, CAST(({last}) + INTERVAL 1 DAY AS DATE))"
    return (f"greatest(0, date_diff('day', greatest({entry_date_sql(alias)}, {first}), "
            f"{upper}))")


def follow_up_end_sql(day: str, alias: str = "", *, days: int | None = None,
                      months: int | None = None, limits: Sequence[str] = ()) -> str:
    """SQL ``DATE``: end of follow-up after ``day``: the earliest of ``day + N``, the exit date
    and any further ``limits`` (e.g. the study end). Follow-up is ``(day, end]``."""
    parts = [shift_sql(day, days=days, months=months), exit_date_sql(alias), *limits]
    return f"least({', '.join(parts)})"


def age_sql(dob: str, day: str) -> str:
    """SQL integer: age in whole years completed on ``day`` of someone born on ``dob``.

    Parameters
    ----------
    dob, day : str
        SQL date expressions.

    Returns
    -------
    str
        ``NULL`` when either date is missing.
    """
    return (f"(year({day}) - year({dob}) - CASE WHEN month({day}) * 100 + day({day}) "
            f"< month({dob}) * 100 + day({dob}) THEN 1 ELSE 0 END)")


def exact_age_sql(dob: str, day: str) -> str:
    """SQL double: age in years as a continuous predictor, consistent with :func:`age_sql`.

    Whole years completed plus the fraction of the current year of age elapsed (days since the
    last birthday over that year of age's length), so its whole part is always
    :func:`age_sql`'s age and an age threshold selects the same people in every stage.
    """
    years = age_sql(dob, day)
    last = f"CAST(({dob}) + to_years(CAST({years} AS INTEGER)) AS DATE)"
    following = f"CAST(({dob}) + to_years(CAST({years} AS INTEGER) + 1) AS DATE)"
    # Date arithmetic puts a 29 February birthday on 28 February in other years, a day before
    # age_sql's birthday (1 March); the cap keeps the whole part equal to age_sql's age then.
    return (f"({years} + least(date_diff('day', {last}, {day}) "
            f"/ CAST(date_diff('day', {last}, {following}) AS DOUBLE), 0.999999))")


def emergency_sql(column: str = "admission_method",
                  exclude: Iterable[str] = ()) -> str:
    """SQL condition: the spell is an emergency admission (:data:`EMERGENCY_METHODS`).

    Parameters
    ----------
    column : str, default ``"admission_method"``
        The admission-method column (qualified with an alias if needed).
    exclude : iterable of str, optional
        Emergency methods not to count (configuration, e.g. ``["2B"]`` for transfers).

    Raises
    ------
    ValueError
        If an excluded method is not alphanumeric (it is written into SQL).
    """
    excluded = {str(m).strip().upper() for m in exclude}
    bad = [m for m in excluded if not m.isalnum()]
    if bad:
        raise ValueError(f"invalid admission method to exclude: {bad[0]!r}")
    methods = [m for m in EMERGENCY_METHODS if m not in excluded]
    if not methods:
        return "FALSE"
    return f"{column} IN ({', '.join(repr(m) for m in methods)})"


def lookback_sql(column: str, day: str, *, days: int | None = None,
                 months: int | None = None) -> str:
    """SQL condition: ``column`` in the N days (or months) before ``day``: ``(day - N, day]``."""
    start = shift_sql(day, days=-days if days is not None else None,
                      months=-months if months is not None else None)
    return f"({column} > {start} AND {column} <= {day})"


def follow_up_sql(column: str, day: str, *, days: int | None = None,
                  months: int | None = None, end: str | None = None) -> str:
    """SQL condition: ``column`` in the N days (or months) after ``day``: ``(day, day + N]``.

    With ``end`` (a SQL date, e.g. from :func:`follow_up_end_sql`) the window is ``(day, end]``
    instead, and ``days``/``months`` are not needed.
    """
    upper = end if end is not None else shift_sql(day, days=days, months=months)
    return f"({column} > {day} AND {column} <= {upper})"


# --------------------------------------------------------------------------------------------
# The same definitions for pandas/numpy code.
# --------------------------------------------------------------------------------------------

def _dates(values: object) -> pd.Series | pd.Timestamp:
    if np.ndim(values) == 0:
        return pd.Timestamp(values)
    return pd.Series(pd.to_datetime(np.asarray(values, dtype=object)))


def shift(day: object, *, days: int | None = None, months: int | None = None) -> pd.Timestamp:
    """``day`` moved by ``days`` or calendar ``months``, clamped to the month's end."""
    _interval(days, months)
    offset = pd.Timedelta(days=days) if days is not None else pd.DateOffset(months=months)
    return pd.Timestamp(day) + offset


def registered_on(patients: pd.DataFrame, day: object) -> np.ndarray:
    """Boolean array: each patient registered on ``day`` (as :func:`registered_on_sql`).

    Parameters
    ----------
    patients : pandas.DataFrame
        Needs ``date_of_birth``, ``registration_start``, ``registration_end`` and
        ``date_of_death`` (the last two may be missing).
    day : date-like
    """
    d = pd.Timestamp(day)
    dob = pd.to_datetime(patients["date_of_birth"])
    start = pd.to_datetime(patients["registration_start"])
    end = pd.to_datetime(patients["registration_end"])
    death = pd.to_datetime(patients["date_of_death"])
    ok = (dob <= d) & (start <= d) & (end.isna() | (d < end)) & (death.isna() | (d < death))
    return ok.to_numpy(dtype=bool)


def age_on(date_of_birth: object, day: object) -> np.ndarray:
    """Age in whole years completed on ``day`` (as :func:`age_sql`); NaN where the birth date
    is missing.

    Parameters
    ----------
    date_of_birth : array-like of date-like
    day : date-like, or array-like of the same length
    """
    dob = pd.Series(pd.to_datetime(np.asarray(date_of_birth, dtype=object)))
    on = _dates(day)
    if isinstance(on, pd.Timestamp):
        year, month, mday = on.year, on.month, on.day
    else:
        year, month, mday = on.dt.year.to_numpy(), on.dt.month.to_numpy(), on.dt.day.to_numpy()
    before_birthday = (np.asarray(month) * 100 + np.asarray(mday)
                       < dob.dt.month.to_numpy() * 100 + dob.dt.day.to_numpy())
    age = np.asarray(year) - dob.dt.year.to_numpy() - before_birthday
    return np.where(dob.isna().to_numpy(), np.nan, age)


def is_emergency(methods: object, exclude: Iterable[str] = ()) -> np.ndarray:
    """Boolean array: each admission method is an emergency one (as :func:`emergency_sql`)."""
    excluded = {str(m).strip().upper() for m in exclude}
    allowed = [m for m in EMERGENCY_METHODS if m not in excluded]
    return pd.Series(np.asarray(methods, dtype=object)).isin(allowed).to_numpy()


def in_lookback(dates: object, day: object, *, days: int | None = None,
                months: int | None = None) -> np.ndarray:
    """Boolean array: each date in the N days (or months) before ``day``: ``(day - N, day]``."""
    when = _dates(dates)
    d = pd.Timestamp(day)
    start = shift(d, days=-days if days is not None else None,
                  months=-months if months is not None else None)
    return ((when > start) & (when <= d)).to_numpy(dtype=bool)


def in_follow_up(dates: object, day: object, *, days: int | None = None,
                 months: int | None = None) -> np.ndarray:
    """Boolean array: each date in the N days (or months) after ``day``: ``(day, day + N]``."""
    when = _dates(dates)
    d = pd.Timestamp(day)
    return ((when > d) & (when <= shift(d, days=days, months=months))).to_numpy(dtype=bool)

