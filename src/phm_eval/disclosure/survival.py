"""Disclosure control for Kaplan-Meier and cumulative-incidence step tables.

The method is OpenSAFELY's, as implemented in its ``kaplan-meier-function``
reusable action (``analysis/km.R``, function ``round_km`` with the default
``method="constant"``; github.com/opensafely-actions/kaplan-meier-function):

1. cumulative counts of events and of censorings (and here of competing
   events) are each rounded with midpoint rounding of width ``min_count``
   (``policy.survival_base``, default 6: 0 -> 0, 1-6 -> 3, 7-12 -> 9, ...);
2. the per-step counts are the differences of the rounded cumulative counts,
   so every step of the curve carries at least ``min_count``-wide uncertainty
   and steps merge where the true counts are sparse;
3. the number at risk is the rounded starting number minus the rounded
   cumulative exits before each time;
4. the estimate is recomputed from the rounded counts: Kaplan-Meier survival
   ``prod(1 - d/n)`` with Greenwood's variance and complementary log-log
   confidence limits (as in the action), or, with a competing event, the
   Aalen-Johansen cumulative incidence ``sum S(t-) d_k / n``.

Rows where nothing changes after rounding are dropped (OpenSAFELY keeps them
only when asked to fill every time point); rows after the rounded number at
risk reaches zero are dropped too, since no estimate can be made there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from .policy import DisclosurePolicy
from .rounding import round_midpoint
from .tables import LOG_COLUMNS, DisclosedTable


def survival_step_table(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    group_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """Numbers at risk, events and censorings at each distinct time.

    Parameters
    ----------
    df : DataFrame
        One row per person.
    duration_col : str
        Follow-up time (any unit; ties share a step).
    event_col : str
        0 = censored, 1 = event of interest, 2 = competing event (e.g. death).
    group_cols : sequence of str
        Strata; one step table per combination.

    Returns
    -------
    DataFrame
        ``group_cols..., time, n_risk, n_event, n_censor, n_competing``, where
        ``n_risk`` counts people still followed at the start of ``time``.
    """
    group_cols = list(group_cols)
    data = df[[*group_cols, duration_col, event_col]].rename(
        columns={duration_col: "time", event_col: "_status"}
    )
    status = data["_status"].to_numpy()
    data = data.assign(
        n_event=(status == 1).astype(np.int64),
        n_censor=(status == 0).astype(np.int64),
        n_competing=(status == 2).astype(np.int64),
    )
    keys = [*group_cols, "time"]
    steps = (
        data.groupby(keys, sort=True, dropna=False)[["n_event", "n_censor", "n_competing"]]
        .sum()
        .reset_index()
    )
    exits = steps["n_event"] + steps["n_censor"] + steps["n_competing"]
    if group_cols:
        by = [steps[c] for c in group_cols]
        remaining = exits.groupby(by, dropna=False).transform("sum") - exits.groupby(
            by, dropna=False
        ).cumsum() + exits
    else:
        remaining = exits.sum() - exits.cumsum() + exits
    steps.insert(len(keys), "n_risk", remaining.to_numpy(dtype=np.int64))
    return steps


def disclose_survival_table(
    table: pd.DataFrame,
    policy: DisclosurePolicy | None = None,
    *,
    time_col: str = "time",
    n_risk_col: str = "n_risk",
    event_col: str = "n_event",
    censor_col: str = "n_censor",
    competing_col: str | None = None,
    group_cols: Sequence[str] = (),
    conf_level: float = 0.95,
) -> DisclosedTable:
    """Round a Kaplan-Meier or cumulative-incidence step table and recompute the estimate.

    Parameters
    ----------
    table : DataFrame
        A step table with true counts, e.g. from :func:`survival_step_table`, a
        lifelines ``event_table`` (renamed) or R's ``survfit`` summary.  Within a
        group, ``n_risk`` must fall by exactly the exits of the previous row
        (no late entry), and the first row must hold the starting number.
    policy : DisclosurePolicy, optional
        ``policy.survival_base`` is the midpoint-rounding width (default 6).
    time_col, n_risk_col, event_col, censor_col : str
        Column names.
    competing_col : str, optional
        Counts of a competing event.  When given the output carries the
        Aalen-Johansen cumulative incidence ``cif`` of the event of interest
        (and ``surv``, freedom from either event) instead of Kaplan-Meier
        survival with confidence limits.
    group_cols : sequence of str
        Strata, each rounded separately.
    conf_level : float, default 0.95
        For the complementary log-log confidence limits of Kaplan-Meier survival.

    Returns
    -------
    DisclosedTable
        Columns ``group_cols..., time, n_risk, n_event, n_censor[, n_competing]``
        (rounded) and ``surv, surv_se, surv_low, surv_high`` (Kaplan-Meier) or
        ``surv, cif`` (competing risks).

    Raises
    ------
    ValueError
        If the numbers at risk are inconsistent with the exits.
    """
    policy = policy or DisclosurePolicy()
    base = policy.survival_base
    group_cols = list(group_cols)
    count_cols = [event_col, censor_col] + ([competing_col] if competing_col else [])
    z = norm.ppf(0.5 + conf_level / 2)
    pieces = []
    log: list[dict] = []
    groups = table.groupby(group_cols, sort=False, dropna=False) if group_cols else [((), table)]
    for key, part in groups:
        part = part.sort_values(time_col)
        label = ", ".join(map(str, key if isinstance(key, tuple) else (key,))) or "all"
        n_risk = part[n_risk_col].to_numpy(dtype=float)
        counts = part[count_cols].to_numpy(dtype=float)
        exits = counts.sum(axis=1)
        if len(part) > 1 and not np.allclose(n_risk[1:], n_risk[:-1] - exits[:-1]):
            raise ValueError(
                f"group {label}: n_risk does not fall by the events and censorings of the "
                "previous row (late entry is not supported)"
            )
        start = n_risk[0]
        cum_rounded = round_midpoint(np.cumsum(counts, axis=0), base)
        step_counts = np.diff(np.vstack([np.zeros(len(count_cols)), cum_rounded]), axis=0)
        exited_before = np.concatenate([[0.0], cum_rounded.sum(axis=1)[:-1]])
        risk = float(round_midpoint(start, base)) - exited_before

        keep = (step_counts.sum(axis=1) > 0) & (risk > 0)
        if not keep.all():
            dropped_empty = int(((step_counts.sum(axis=1) == 0) & (risk > 0)).sum())
            dropped_risk = int((risk <= 0).sum())
            if dropped_empty:
                log.append({"row": label, "column": time_col, "action": "merged",
                            "rule": f"{dropped_empty} steps with no rounded change"})
            if dropped_risk:
                log.append({"row": label, "column": time_col, "action": "dropped",
                            "rule": f"{dropped_risk} steps after the rounded number at risk "
                                    "reached zero"})
        out = part.loc[keep, [*group_cols, time_col]].copy()
        risk = risk[keep]
        step_counts = step_counts[keep]
        out[n_risk_col] = risk
        for j, c in enumerate(count_cols):
            out[c] = step_counts[:, j]
        d = step_counts[:, 0]
        if competing_col is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                surv = np.cumprod(1 - d / risk)
                greenwood = np.cumsum(d / (risk * (risk - d)))
                se = surv * np.sqrt(greenwood)
                cll = np.log(-np.log(surv))
                cll_se = np.where(surv == 1, 0.0, np.sqrt(greenwood / np.log(surv) ** 2))
                low = np.exp(-np.exp(cll + z * cll_se))
                high = np.exp(-np.exp(cll - z * cll_se))
            low = np.where(surv == 1, 1.0, low)
            high = np.where(surv == 1, 1.0, high)
            out["surv"] = surv
            out["surv_se"] = se
            out["surv_low"] = low
            out["surv_high"] = high
        else:
            d_all = d + step_counts[:, 2]
            surv = np.cumprod(1 - d_all / risk)
            surv_before = np.concatenate([[1.0], surv[:-1]])
            out["surv"] = surv
            out["cif"] = np.cumsum(surv_before * d / risk)
        pieces.append(out)

    result = pd.concat(pieces, ignore_index=True) if pieces else table.iloc[0:0].copy()
    for c in [n_risk_col, *count_cols]:
        result[c] = result[c].round().astype("Int64")
    for c in [n_risk_col, *count_cols]:
        log.append({"row": None, "column": c, "action": "rounded",
                    "rule": f"midpoint {base} on cumulative counts"})
    est_cols = ["surv", "surv_se", "surv_low", "surv_high"] if competing_col is None else [
        "surv", "cif"]
    for c in est_cols:
        log.append({"row": None, "column": c, "action": "recomputed",
                    "rule": "from rounded counts"})
    suppressed = pd.DataFrame(False, index=result.index, columns=result.columns)
    return DisclosedTable(
        table=result,
        suppressed=suppressed,
        log=pd.DataFrame(log, columns=LOG_COLUMNS),
        policy=policy,
        count_cols=[n_risk_col, *count_cols],
        kind="survival",
    )
