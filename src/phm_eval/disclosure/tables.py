"""Disclosure control for tables: primary and secondary suppression, rounding, recomputed rates.

Secondary suppression
---------------------
A table may show totals: a total row (``total_row``, the sum of each count
column), a total column (``total_col``, the sum of the cell columns along each
row), or both (a two-way table with margins, including the grand total).  Each
row or column that has a visible total is a *line*.  A reader who sees a line's
total and all but some of its cells can work out the sum of the hidden cells,
and the hidden cell itself when only one is hidden.  The algorithm repeats,
until nothing changes, over every line whose total is shown:

1. Let ``H`` be the suppressed cells of the line.  The line is safe if ``H`` is
   empty, or ``H`` has at least two cells whose combined (true) count exceeds
   ``policy.threshold``.
2. Otherwise suppress the smallest non-zero unsuppressed cell of the line
   (ties: the first in table order).  Zeros are never chosen: hiding a
   structural zero protects nothing that rounding does not.
3. If no such cell exists, suppress the line's total instead.  The total is a
   cell of the margin line, so the loop then protects that line in turn.

Each pass adds at least one suppression, so the loop ends.  Suppressing a cell
in a row can leave a column with a single hidden cell; the repetition over all
lines handles such chains (the "column and row" case).  This is the classic
hypercube-free heuristic: it does not promise the minimum number of secondary
suppressions, only that no single hidden cell, nor a hidden group totalling
``threshold`` or fewer, can be recovered exactly from the table's own totals.
Differencing across *different* tables is not covered; round consistently and
avoid publishing overlapping breakdowns.

Totals are disclosed from their true values (suppressed if small, rounded
otherwise), not summed from the rounded cells, as NHS Digital does: a rounded
total need not equal the sum of the rounded cells.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.convention import ResultConvention

from .policy import DisclosurePolicy
from .rounding import primary_suppression_mask, round_counts

logger = logging.getLogger(__name__)

LOG_COLUMNS = ["row", "column", "action", "rule"]

#: Suffix of the file written beside a disclosed CSV to describe its columns.
SIDECAR_SUFFIX = ".sdc.json"


@dataclass(frozen=True, repr=False)
class DisclosedTable(ResultConvention):
    """A table after disclosure control, with a record of what was done (read-only).

    ``summary`` (a DataFrame property) counts the actions by column and rule.

    Attributes
    ----------
    table : DataFrame
        The disclosed values.  Count columns are nullable integers (``<NA>``
        where suppressed); rate and statistic columns are floats (NaN where
        suppressed).  Other columns are unchanged.
    suppressed : DataFrame of bool
        Same shape as ``table``; True where a value was suppressed.
    log : DataFrame
        One line per action, columns ``row``, ``column``, ``action``, ``rule``.
        It never holds the original values, so it is as safe to share as the table.
    policy : DisclosurePolicy
    count_cols, rate_cols, stat_cols : the column roles used, for checkers.
    kind : str
        ``"table"``, or ``"survival"`` for step tables rounded by
        :func:`~phm_eval.disclosure.disclose_survival_table`.
    """

    table: pd.DataFrame
    suppressed: pd.DataFrame
    log: pd.DataFrame
    policy: DisclosurePolicy
    count_cols: list[str] = field(default_factory=list)
    rate_cols: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    stat_cols: dict[str, str] = field(default_factory=dict)
    kind: str = "table"

    def formatted(self, *, marker: str | None = None, decimals: int | None = None) -> pd.DataFrame:
        """The table as text for humans: suppressed cells show ``marker``.

        Parameters
        ----------
        marker : str, optional
            Defaults to ``policy.marker`` (``*``).
        decimals : int, optional
            Round rate and statistic columns to this many decimals.
        """
        marker = self.policy.marker if marker is None else marker
        out = self.table.astype(object).copy()
        float_cols = list(self.rate_cols) + list(self.stat_cols)
        for col in out.columns:
            values = self.table[col]
            if decimals is not None and col in float_cols:
                values = values.round(decimals)
            text = values.astype(object).where(values.notna(), "")
            text = text.map(_plain)
            out[col] = text.where(~self.suppressed[col], marker)
        return out

    @property
    def n_suppressed(self) -> int:
        """Number of suppressed cells."""
        return int(self.suppressed.to_numpy().sum())

    def _repr_fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": len(self.table), "columns": len(self.table.columns),
                "suppressed": self.n_suppressed}

    def _summary_table(self) -> pd.DataFrame:
        """Counts of actions by column and rule."""
        if self.log.empty:
            return pd.DataFrame(columns=["column", "action", "rule", "cells"])
        return (
            self.log.assign(cells=1)
            .groupby(["column", "action", "rule"], dropna=False, sort=False)["cells"]
            .sum()
            .reset_index()
        )

    def column_roles(self) -> dict[str, Any]:
        """Which columns are counts, rates and statistics (JSON-ready)."""
        return {
            "kind": self.kind,
            "count_cols": list(self.count_cols),
            "rate_cols": {k: list(v) for k, v in self.rate_cols.items()},
            "stat_cols": dict(self.stat_cols),
            "policy": self.policy.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Table (records, suppressed cells as None), log and column roles."""
        table = self.table.astype(object).where(self.table.notna(), None)
        return {
            "table": table.reset_index().to_dict(orient="records")
            if not isinstance(self.table.index, pd.RangeIndex)
            else table.to_dict(orient="records"),
            "log": self.log.astype(object).where(self.log.notna(), None).to_dict(orient="records"),
            **self.column_roles(),
        }

    def to_csv(self, path: str | Path, *, marker: bool = True, sidecar: bool = True) -> Path:
        """Write the table as CSV (and a ``.sdc.json`` file naming the column roles).

        Parameters
        ----------
        path : path
            Destination CSV.
        marker : bool, default True
            Write ``policy.marker`` in suppressed cells; otherwise leave them empty.
        sidecar : bool, default True
            Also write ``<stem>.sdc.json`` so that
            :func:`~phm_eval.disclosure.check_report_folder` knows which columns
            are counts rather than guessing.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = self.formatted() if marker else self.table
        write_index = not isinstance(frame.index, pd.RangeIndex)
        frame.to_csv(path, index=write_index)
        if sidecar:
            path.with_name(path.stem + SIDECAR_SUFFIX).write_text(
                json.dumps(self.column_roles(), indent=2) + "\n", encoding="utf-8"
            )
        return path


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _ordered_unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def apply_disclosure(
    df: pd.DataFrame,
    policy: DisclosurePolicy | None = None,
    *,
    count_cols: Sequence[str] = (),
    denominator_cols: Sequence[str] = (),
    rate_cols: Mapping[str, tuple[str, str, float]] | None = None,
    stat_cols: Mapping[str, str] | None = None,
    total_row: Hashable | None = None,
    total_col: str | None = None,
) -> DisclosedTable:
    """Apply the disclosure policy to a table of counts, rates and statistics.

    Parameters
    ----------
    df : DataFrame
        The table with true (unrounded) values.  Its index labels rows in the
        log; it must be unique.
    policy : DisclosurePolicy, optional
        Defaults to NHS Digital rules (:class:`DisclosurePolicy()`).
    count_cols : sequence of str
        Columns of counts of people or events: the cells of the table.
        Small counts are suppressed and the rest rounded.
    denominator_cols : sequence of str
        Count columns used as denominators (e.g. registered population).  They
        are disclosed like counts and take part in column totals, but are not
        cells of a row total.
    rate_cols : mapping, optional
        ``{rate_col: (numerator_col, denominator_col, per)}``.  Each rate is
        recomputed as ``numerator / denominator * per`` from the *disclosed*
        numerator and, when it is a count column, the disclosed denominator
        (a person-time denominator is used as it is).  ``per=100`` gives a
        percentage.  The rate is suppressed wherever the numerator or
        denominator is suppressed or the denominator is 0.
    stat_cols : mapping, optional
        ``{stat_col: n_col}``: means, medians and other statistics with the count
        of people they describe.  A statistic is suppressed when that count is
        ``policy.statistic_threshold`` or fewer, missing, or itself suppressed.
        ``n_col`` is disclosed as a count.
    total_row : label, optional
        Index label of the row holding column totals.
    total_col : str, optional
        Column holding the row totals of the (non-denominator) count columns;
        it is disclosed as a count.

    Returns
    -------
    DisclosedTable

    Raises
    ------
    ValueError
        If a named column is missing, a count is negative, or the index is not unique.

    Examples
    --------
    >>> df = pd.DataFrame({"admissions": [3, 12, 40], "population": [100, 230, 513]},
    ...                   index=["A", "B", "Total"])
    >>> out = apply_disclosure(df, count_cols=["admissions"], denominator_cols=["population"],
    ...                        rate_cols={"per_1000": ("admissions", "population", 1000)},
    ...                        total_row="Total")
    >>> out.formatted()["admissions"].tolist()
    ['*', '*', '40']
    """
    policy = policy or DisclosurePolicy()
    rate_cols = dict(rate_cols or {})
    stat_cols = dict(stat_cols or {})
    if not df.index.is_unique:
        raise ValueError("apply_disclosure needs a table with a unique index")
    if total_row is not None and total_row not in df.index:
        raise ValueError(f"total_row {total_row!r} is not in the table's index")

    cell_cols = [c for c in _ordered_unique(count_cols) if c != total_col]
    extra_cols = [c for c in _ordered_unique(denominator_cols) if c not in cell_cols]
    n_cols = [c for c in stat_cols.values() if c not in cell_cols and c not in extra_cols]
    all_counts = _ordered_unique(
        [*cell_cols, *extra_cols, *([total_col] if total_col else []), *n_cols]
    )
    needed = _ordered_unique(
        [*all_counts, *stat_cols, *(c for spec in rate_cols.values() for c in spec[:2])]
    )
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the table: {missing}")

    true = df[all_counts].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    if np.any(true[~np.isnan(true)] < 0):
        raise ValueError("counts cannot be negative")

    row_labels = [_label(r) for r in df.index]
    log: list[dict[str, Any]] = []
    col_index = {c: j for j, c in enumerate(all_counts)}

    suppressed = primary_suppression_mask(true, policy)
    for r, j in zip(*np.nonzero(suppressed), strict=True):
        log.append(
            {
                "row": row_labels[r],
                "column": all_counts[j],
                "action": "suppressed",
                "rule": f"count of 1-{policy.threshold}",
            }
        )

    if policy.secondary_suppression and (total_row is not None or total_col is not None):
        t = df.index.get_loc(total_row) if total_row is not None else None
        lines = _lines(
            n_rows=len(df),
            total_row_pos=t,
            vertical_cols=[col_index[c] for c in all_counts if c not in n_cols],
            horizontal_cols=[col_index[c] for c in cell_cols],
            total_col_pos=col_index[total_col] if total_col else None,
            row_labels=row_labels,
            col_names=all_counts,
        )
        for r, j, why in secondary_suppression(true, suppressed, lines, policy.threshold):
            log.append(
                {"row": row_labels[r], "column": all_counts[j], "action": "suppressed", "rule": why}
            )

    shown = round_counts(true, policy)
    shown[suppressed] = np.nan
    if policy.rounding != "none":
        for c in all_counts:
            log.append(
                {
                    "row": None,
                    "column": c,
                    "action": "rounded",
                    "rule": f"{policy.rounding} {policy.base}",
                }
            )

    out = df.copy()
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for c in all_counts:
        j = col_index[c]
        out[c] = pd.array(shown[:, j], dtype="Float64").round().astype("Int64")
        mask[c] = suppressed[:, j]

    shown_of = {c: shown[:, col_index[c]] for c in all_counts}
    for rate_col, spec in rate_cols.items():
        num_col, den_col, per = spec
        if num_col not in shown_of:
            raise ValueError(f"rate {rate_col!r}: numerator {num_col!r} must be a count column")
        num = shown_of[num_col]
        if den_col in shown_of:
            den = shown_of[den_col]
        else:
            den = pd.to_numeric(df[den_col]).to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(np.isnan(num) | np.isnan(den) | (den == 0), np.nan, num / den * per)
        had_value = ~np.isnan(pd.to_numeric(df[num_col]).to_numpy(dtype=float))
        out[rate_col] = rate
        mask[rate_col] = had_value & (np.isnan(num) | np.isnan(den))
        for r in np.nonzero(mask[rate_col].to_numpy())[0]:
            log.append(
                {
                    "row": row_labels[r],
                    "column": rate_col,
                    "action": "suppressed",
                    "rule": "rate from a suppressed count",
                }
            )
        log.append(
            {
                "row": None,
                "column": rate_col,
                "action": "recomputed",
                "rule": f"{num_col} / {den_col} x {per:g} from disclosed counts",
            }
        )

    for stat_col, n_col in stat_cols.items():
        n_true = true[:, col_index[n_col]]
        n_shown = shown[:, col_index[n_col]]
        small = np.isnan(n_true) | (n_true <= policy.statistic_threshold)
        hide = small | np.isnan(n_shown)
        values = pd.to_numeric(df[stat_col]).to_numpy(dtype=float).copy()
        had_value = ~np.isnan(values)
        values[hide] = np.nan
        out[stat_col] = values
        mask[stat_col] = hide & had_value
        for r in np.nonzero(hide & had_value)[0]:
            rule = (
                f"statistic describes {policy.statistic_threshold} or fewer people"
                if small[r]
                else "statistic whose count is suppressed"
            )
            log.append(
                {"row": row_labels[r], "column": stat_col, "action": "suppressed", "rule": rule}
            )

    log_df = pd.DataFrame(log, columns=LOG_COLUMNS)
    logger.debug("disclosure: %d cells suppressed", int(mask.to_numpy().sum()))
    return DisclosedTable(
        table=out,
        suppressed=mask,
        log=log_df,
        policy=policy,
        count_cols=all_counts,
        rate_cols={k: (v[0], v[1], float(v[2])) for k, v in rate_cols.items()},
        stat_cols=stat_cols,
    )


def _label(value: Any) -> str:
    return str(value)


Line = tuple[list[tuple[int, int]], tuple[int, int], str]


def _lines(
    n_rows: int,
    total_row_pos: int | None,
    vertical_cols: list[int],
    horizontal_cols: list[int],
    total_col_pos: int | None,
    row_labels: list[str],
    col_names: list[str],
) -> list[Line]:
    lines: list[Line] = []
    if total_row_pos is not None:
        body = [r for r in range(n_rows) if r != total_row_pos]
        for j in vertical_cols:
            lines.append(
                ([(r, j) for r in body], (total_row_pos, j), f"column '{col_names[j]}'")
            )
    if total_col_pos is not None and horizontal_cols:
        for r in range(n_rows):
            lines.append(
                ([(r, j) for j in horizontal_cols], (r, total_col_pos), f"row '{row_labels[r]}'")
            )
    return lines


def secondary_suppression(
    true: np.ndarray,
    suppressed: np.ndarray,
    lines: Sequence[Line],
    threshold: int,
) -> list[tuple[int, int, str]]:
    """Add suppressions so that no hidden cell can be backed out of a shown total.

    Parameters
    ----------
    true : ndarray (rows x columns)
        True counts.
    suppressed : ndarray of bool, same shape
        Cells already suppressed; updated in place.
    lines : sequence of (cells, total, description)
        Each line lists the positions of its cells and of its total.
    threshold : int
        A group of hidden cells whose combined count is at most this is not safe.

    Returns
    -------
    list of (row, column, reason)
        The cells suppressed here, in the order chosen.
    """
    added: list[tuple[int, int, str]] = []
    changed = True
    while changed:
        changed = False
        for cells, total, description in lines:
            if suppressed[total]:
                continue
            hidden = [p for p in cells if suppressed[p]]
            if not hidden:
                continue
            combined = float(np.nansum([true[p] for p in hidden]))
            if len(hidden) >= 2 and combined > threshold:
                continue
            candidates = [p for p in cells if not suppressed[p] and true[p] > 0]
            if candidates:
                pick = min(candidates, key=lambda p: (true[p], cells.index(p)))
                why = f"secondary: protects a suppressed cell in {description}"
            else:
                pick = total
                why = f"secondary: total of {description} would reveal a suppressed cell"
            suppressed[pick] = True
            added.append((pick[0], pick[1], why))
            changed = True
    return added
