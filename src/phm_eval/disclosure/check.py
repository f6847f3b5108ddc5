"""Checks that an already-disclosed table obeys the policy.

:func:`check_table` is the last line of defence: it looks at what a reader
would see, not at how the table was made.  When the caller does not say which
columns are counts, they are inferred from column names and values (see
:func:`infer_count_columns`); a ``.sdc.json`` file written beside a table by
:meth:`DisclosedTable.to_csv` removes the guesswork.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .policy import DisclosurePolicy
from .rounding import is_disclosed_count

#: Column-name words that mark a column as something other than a count of people.
NON_COUNT_WORDS = frozenset(
    """
    year years month months week weeks day days date dates time times period periods
    age ages decile deciles quintile quintiles rank order tier tiers id ids code codes
    index band version seed df dof pct percent percentage percentages proportion prop
    rate rates ratio ratios mean median sd se sem iqr q1 q3 p25 p75 lower upper lcl ucl
    ci lci uci hr or rr irr estimate estimates coef coefficient beta z t p pvalue value
    values score scores auc cstat statistic stat weight weights smd att effect diff
    difference cost costs per threshold cutoff cut step horizon interval lag level alpha
    cohort group lsoa cluster label surv cif probability prob variance var required
    target
    """.split()
)
#: Column-name words that mark a column as a count of people or events.
COUNT_WORDS = frozenset(
    """
    n count counts number patients people persons individuals events admissions deaths
    cases censor censored numerator denominator population registered frequency freq
    """.split()
)
#: Words that label a value as a count of people or events wherever it appears: JSON keys,
#: headers of Markdown and HTML tables.  Wider than :data:`COUNT_WORDS` (which also decides
#: CSV columns by name) because a JSON key or a table header labels a single value.
LABELLED_COUNT_WORDS = COUNT_WORDS | frozenset(
    """
    enrolled eligible matched treated untreated controls comparators exposed flagged
    positives negatives tp fp tn fn outcomes spells deaths readmissions missing
    """.split()
)
#: Words that say a labelled number counts something other than people or events
#: (``n_bootstrap``, ``n_clusters``, ``cpu_count``...): never checked as counts.
NOT_PEOPLE_WORDS = frozenset(
    """
    bootstrap bootstraps replicate replicates resamples parameter parameters params clusters
    practice practices pcn pcns icb icbs lsoas feature features predictor predictors knot
    knots units unit fold folds iteration iterations iter draws simulation simulations sims reps
    permutation permutations tree trees estimator estimators categories category levels
    column columns digits decimals cpu cpus core cores thread threads job jobs worker
    workers chunk chunks batch batches bins quantiles steps points files tables codes k
    effective ess epp bytes seconds
    """.split()
)
STAT_WORDS = frozenset("mean median sd iqr q1 q3 p25 p75 average".split())
PERCENT_WORDS = frozenset("pct percent percentage".split())
MINMAX_WORDS = frozenset("min max minimum maximum".split())

_N_PCT = re.compile(r"^\s*(\d[\d,]*)\s*\(\s*-?[\d.]+\s*%?\s*\)\s*$")


@dataclass(frozen=True)
class Violation:
    """One breach of the disclosure rules.

    Attributes
    ----------
    rule : str
        What is wrong, in words.
    file : str, optional
        The file (relative to the folder checked).
    column : str, optional
    row : str, optional
        Index label, or 1-based data row number (header = row 0) for files.
    value : str, optional
        The offending value (patient identifiers are masked).
    severity : {"error", "warning"}
        Errors fail a run; warnings call for a person's judgement.
    """

    rule: str
    file: str | None = None
    column: str | None = None
    row: str | None = None
    value: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = [p for p in (self.file, self.column and f"column '{self.column}'",
                             self.row is not None and f"row {self.row}") if p]
        text = f"{', '.join(where)}: {self.rule}" if where else self.rule
        if self.value is not None:
            text += f" (value {self.value})"
        return f"[{self.severity}] {text}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def name_words(name: object) -> set[str]:
    """Lower-case words of a column name, split on non-letters and camel case."""
    text = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower()
    return {w for w in re.split(r"[^0-9a-z]+", text) if w}


def is_identifier_column(name: object, policy: DisclosurePolicy) -> bool:
    """True if the column name is one of ``policy.identifier_columns`` (ignoring case and separators)."""
    squash = re.sub(r"[^0-9a-z]", "", str(name).lower())
    return squash in {re.sub(r"[^0-9a-z]", "", c.lower()) for c in policy.identifier_columns}


def is_minmax_column(name: object) -> bool:
    """True if a column holds minima or maxima (e.g. ``age_max``, ``Minimum``)."""
    return bool(name_words(name) & MINMAX_WORDS)


def is_count_label(name: object, policy: DisclosurePolicy | None = None) -> bool:
    """True if a JSON key or a table header labels a count of people or events.

    The label must hold a word of :data:`LABELLED_COUNT_WORDS` (``n``, ``events``,
    ``patients``, ``n_flagged``, ``true_positives``...) and no word that marks a statistic,
    a date or a setting (:data:`NON_COUNT_WORDS`, ``min``/``max``, ``policy.non_count_columns``)
    or a count of something other than people (:data:`NOT_PEOPLE_WORDS`: ``n_bootstrap``,
    ``n_clusters``, ``cpu_count``...).
    """
    policy = policy or DisclosurePolicy()
    words = name_words(name)
    if not words & LABELLED_COUNT_WORDS:
        return False
    if words & (NOT_PEOPLE_WORDS | MINMAX_WORDS) or is_identifier_column(name, policy):
        return False
    return not _is_non_count_name(name, policy)


def _is_non_count_name(name: object, policy: DisclosurePolicy) -> bool:
    words = name_words(name)
    extra = {w.lower() for w in policy.non_count_columns}
    return bool(words & NON_COUNT_WORDS) or str(name).lower() in extra or bool(words & extra)


def normalise_frame(df: pd.DataFrame, policy: DisclosurePolicy) -> pd.DataFrame:
    """Turn suppression markers into NaN and numeric-looking text into numbers.

    Text cells of the form ``"120 (4.5%)"`` become a count column named
    ``"<column> [n]"`` so that the count inside them is checked too.
    """
    out = {}
    markers = set(policy.suppressed_markers) | {""}
    for col in df.columns:
        series = df[col]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            text = series.astype("string").str.strip()
            text = text.mask(text.isin(markers))
            numeric = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
            if text.notna().any() and numeric.notna().sum() == text.notna().sum():
                out[col] = numeric.astype(float)
                continue
            n_pct = text.str.extract(_N_PCT, expand=False)
            if n_pct.notna().any():
                out[f"{col} [n]"] = pd.to_numeric(
                    n_pct.str.replace(",", "", regex=False), errors="coerce"
                )
            out[col] = series
        else:
            out[col] = series
    return pd.DataFrame(out, index=df.index)


def infer_count_columns(df: pd.DataFrame, policy: DisclosurePolicy) -> list[str]:
    """Guess which columns are counts of people or events.

    A numeric column is a count unless a word of its name marks it as something
    else (``year``, ``rate``, ``mean``, ``decile``, ``id``... see
    :data:`NON_COUNT_WORDS`, plus ``policy.non_count_columns``).  Without such a
    word, it is a count if its name says so (``n``, ``count``, ``patients``...)
    or if every value is a non-negative whole number.  ``"x (y%)"`` text
    columns contribute their counts.
    """
    counts = []
    for col in df.columns:
        series = df[col]
        if str(col).endswith(" [n]"):
            counts.append(col)
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        if is_identifier_column(col, policy) or _is_non_count_name(col, policy):
            continue
        values = series.dropna().to_numpy(dtype=float)
        if name_words(col) & COUNT_WORDS:
            counts.append(col)
        elif values.size and np.all(values >= 0) and np.all(np.mod(values, 1) == 0):
            counts.append(col)
    return counts


_DECIMAL = re.compile(r"\d\.\d")


def _text_count_columns(
    raw: pd.DataFrame, frame: pd.DataFrame, policy: DisclosurePolicy
) -> list[str]:
    """Count columns of a table read from Markdown or HTML (see ``text_table``)."""
    counts = []
    for col in frame.columns:
        series = frame[col]
        if str(col).endswith(" [n]"):
            counts.append(col)
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        if is_count_label(col, policy):
            counts.append(col)
            continue
        if is_identifier_column(col, policy) or _is_non_count_name(col, policy):
            continue
        if col in raw.columns and raw[col].astype("string").str.contains(_DECIMAL).any():
            continue
        values = series.dropna().to_numpy(dtype=float)
        if values.size and np.all(values >= 0) and np.all(np.mod(values, 1) == 0):
            counts.append(col)
    return counts


def infer_stat_columns(df: pd.DataFrame, count_cols: Sequence[str]) -> dict[str, str]:
    """Pair statistic columns (mean, median, sd...) with the count of people they describe.

    The count is the one count column whose name holds ``n``/``count``/``patients``...
    (or the only count column).  Statistics with no such column are left out.
    """
    named = [c for c in count_cols if name_words(c) & COUNT_WORDS and not str(c).endswith("[n]")]
    n_col = named[0] if len(named) == 1 else (count_cols[0] if len(count_cols) == 1 else None)
    if n_col is None:
        return {}
    return {
        c: n_col
        for c in df.columns
        if name_words(c) & STAT_WORDS and c not in count_cols and c != n_col
    }


def _row_name(df: pd.DataFrame, position: int, file_rows: bool) -> str:
    if file_rows:
        return str(position + 1)
    return str(df.index[position])


def check_table(
    df: pd.DataFrame,
    policy: DisclosurePolicy | None = None,
    *,
    count_cols: Sequence[str] | None = None,
    stat_cols: Mapping[str, str] | None = None,
    rate_cols: Mapping[str, Iterable[Any]] | None = None,
    survival: bool = False,
    file: str | None = None,
    text_table: bool = False,
) -> list[Violation]:
    """Check an already-disclosed table against the policy.

    Parameters
    ----------
    df : DataFrame
        The table as a reader sees it; suppression markers (``*``) and empty
        cells count as suppressed.
    policy : DisclosurePolicy, optional
        Defaults to NHS Digital rules.
    count_cols : sequence of str, optional
        Count columns; inferred with :func:`infer_count_columns` when omitted.
    stat_cols : mapping, optional
        ``{stat_col: n_col}``; inferred when omitted and ``count_cols`` was too.
    rate_cols : mapping, optional
        ``{rate_col: (numerator, denominator, per)}``; with ``per == 100`` the
        column is a percentage, checked for 0% and 100% when
        ``policy.flag_extreme_percentages`` is set.
    survival : bool, default False
        The table is a step table rounded by
        :func:`~phm_eval.disclosure.disclose_survival_table`: counts are checked
        against midpoint rounding of width ``policy.survival_base``.
    file : str, optional
        Name to put in violations; rows are then reported as 1-based data rows.
    text_table : bool, default False
        The table was read from text written for people (a Markdown or HTML table), where
        counts are written as whole numbers: a column whose cells hold a decimal point is
        not taken for a count unless its header labels it one (:func:`is_count_label`),
        and values with a fraction in a count column are statistics, not counts.

    Returns
    -------
    list of Violation
        Empty when the table is safe.  Rules: no identifier columns; no minimum
        or maximum columns; every count is suppressed, 0 or a value rounding can
        produce that is above the threshold; no statistic shown where its count
        is suppressed or ``policy.statistic_threshold`` or fewer.
    """
    policy = policy or DisclosurePolicy()
    file_rows = file is not None
    violations: list[Violation] = []
    for col in df.columns:
        if is_identifier_column(col, policy):
            violations.append(Violation("identifier column in an output", file, str(col)))
        elif is_minmax_column(col):
            violations.append(
                Violation("minimum or maximum values describe individuals", file, str(col))
            )
    frame = normalise_frame(df, policy)
    inferred = count_cols is None
    if inferred and text_table:
        count_cols = _text_count_columns(df, frame, policy)
    elif inferred:
        count_cols = infer_count_columns(frame, policy)
    else:
        count_cols = [c for c in count_cols if c in frame.columns]
    if stat_cols is None:
        stat_cols = infer_stat_columns(frame, count_cols) if inferred else {}

    count_policy = policy
    if survival:
        count_policy = DisclosurePolicy.from_config(
            {**policy.to_dict(), "rounding": "midpoint", "base": policy.survival_base,
             "threshold": 0}
        )
    for col in count_cols:
        if is_identifier_column(col, policy):
            continue
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~is_disclosed_count(values, count_policy)
        if text_table:
            bad &= np.mod(values, 1) == 0
        shown_col = str(col)[:-4] if str(col).endswith(" [n]") else str(col)
        for r in np.nonzero(bad)[0]:
            violations.append(
                Violation(
                    _count_rule(values[r], count_policy),
                    file,
                    shown_col,
                    _row_name(frame, r, file_rows),
                    _fmt(values[r]),
                )
            )

    for stat_col, n_col in (stat_cols or {}).items():
        if stat_col not in frame.columns or n_col not in frame.columns:
            continue
        stat = pd.to_numeric(frame[stat_col], errors="coerce").to_numpy(dtype=float)
        n = pd.to_numeric(frame[n_col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(stat) & (np.isnan(n) | (n <= policy.statistic_threshold))
        for r in np.nonzero(bad)[0]:
            violations.append(
                Violation(
                    f"statistic shown for {policy.statistic_threshold} or fewer people "
                    f"(or a suppressed count in '{n_col}')",
                    file,
                    str(stat_col),
                    _row_name(frame, r, file_rows),
                    _fmt(stat[r]),
                )
            )

    if policy.flag_extreme_percentages:
        pct_cols = [c for c, spec in (rate_cols or {}).items() if float(list(spec)[2]) == 100]
        if rate_cols is None:
            pct_cols = [c for c in frame.columns if name_words(c) & PERCENT_WORDS]
        for col in pct_cols:
            if col not in frame.columns:
                continue
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            for r in np.nonzero((values == 0) | (values == 100))[0]:
                violations.append(
                    Violation(
                        "0% or 100% can reveal something about every member of a group",
                        file,
                        str(col),
                        _row_name(frame, r, file_rows),
                        _fmt(values[r]),
                        severity="warning",
                    )
                )
    return violations


def _count_rule(value: float, policy: DisclosurePolicy) -> str:
    if value < 0:
        return "negative count"
    if policy.rounding == "midpoint":
        return f"count is not midpoint-{policy.base} rounded"
    if value < policy.smallest_shown_count:
        return (
            f"small count shown: counts of 1-{policy.threshold} must be suppressed and the "
            f"smallest count shown is {policy.smallest_shown_count}"
        )
    if policy.rounding == "nearest":
        return f"count is not rounded to a multiple of {policy.base}"
    return "count is not a whole number"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
