"""Kaplan-Meier and cumulative-incidence figures drawn only from disclosed step tables.

A survival curve drawn from patient-level data shows every single event as a step: a figure
that leaves the secure environment must pass the same control as a table. Here the step table
of each arm is rounded first (:func:`~phm_eval.disclosure.survival.disclose_survival_table`,
OpenSAFELY's method: midpoint-rounded cumulative counts, estimate recomputed) and the figure is
drawn from that table alone, with the rounded numbers at risk printed beneath it. The disclosed
table is returned so that it can be released beside the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .policy import DisclosurePolicy
from .survival import disclose_survival_table, survival_step_table
from .tables import DisclosedTable

#: Event codes of the analysed frame: 0 censored, 1 event of interest, 2 competing event.
CENSORED, EVENT, COMPETING = 0, 1, 2


def disclosed_step_tables(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    group_col: str,
    policy: DisclosurePolicy,
    *,
    competing: bool,
) -> DisclosedTable:
    """Disclosed step tables of every group.

    Parameters
    ----------
    df : DataFrame
        One row per person: follow-up time, event code (0 censored, 1 event, 2 competing).
    duration_col, event_col, group_col : str
        Column names.
    policy : DisclosurePolicy
        ``survival_base`` is the rounding width.
    competing : bool
        False: Kaplan-Meier of the event, the competing event counted as a censoring.
        True: Aalen-Johansen cumulative incidence of the event with the competing event.

    Returns
    -------
    DisclosedTable
        ``group, time, n_risk, n_event, n_censor[, n_competing]`` (rounded) and the estimate
        recomputed from them (``surv`` with limits, or ``surv`` and ``cif``).
    """
    frame = df[[duration_col, event_col, group_col]].copy()
    if not competing:
        frame[event_col] = np.where(frame[event_col] == EVENT, EVENT, CENSORED)
    steps = survival_step_table(frame, duration_col, event_col, group_cols=[group_col])
    return disclose_survival_table(
        steps, policy, competing_col="n_competing" if competing else None,
        group_cols=[group_col])


def _step_xy(times: np.ndarray, values: np.ndarray, start: float) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    return np.concatenate([[0.0], times]), np.concatenate([[start], values])


def plot_disclosed_curves(
    disclosed: DisclosedTable,
    group_col: str,
    labels: Mapping[object, str],
    *,
    estimate: str = "surv",
    percent: bool = True,
    risk_times: Sequence[float] = (0, 90, 180, 270, 365),
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Draw step curves (and Kaplan-Meier limits when present) from a disclosed step table,
    with the rounded numbers at risk at ``risk_times`` printed beneath the axis.

    Parameters
    ----------
    disclosed : DisclosedTable
        From :func:`disclosed_step_tables`.
    group_col : str
        The group column; ``labels`` maps its values to the legend's words (in that order).
    estimate : {"surv", "cif"}
        Which column to draw.
    percent : bool
        Show the estimate as a percentage.
    risk_times : sequence of float
        Times (same unit as the table) at which to print the number at risk.
    ax : Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.6))
    table = disclosed.table
    scale = 100.0 if percent else 1.0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    at_risk_rows = []
    for i, (value, label) in enumerate(labels.items()):
        part = table[table[group_col] == value].sort_values("time")
        colour = colours[i % len(colours)]
        start = 1.0 if estimate == "surv" else 0.0
        x, y = _step_xy(part["time"].to_numpy(float), part[estimate].to_numpy(float), start)
        ax.step(x, y * scale, where="post", color=colour, label=label)
        if estimate == "surv" and "surv_low" in part:
            _, low = _step_xy(part["time"].to_numpy(float), part["surv_low"].to_numpy(float),
                              1.0)
            _, high = _step_xy(part["time"].to_numpy(float),
                               part["surv_high"].to_numpy(float), 1.0)
            ax.fill_between(x, low * scale, high * scale, step="post", color=colour,
                            alpha=0.15, linewidth=0)
        at_risk_rows.append((label, _at_risk(part, risk_times)))
    if risk_times:
        ax.set_xticks(list(risk_times))
        lines = [f"{label}: " + "  ".join(f"{n:>6}" for n in counts)
                 for label, counts in at_risk_rows]
        ax.annotate("Number at risk (rounded)\n" + "\n".join(lines), xy=(0, 0),
                    xycoords="axes fraction", xytext=(0, -48), textcoords="offset points",
                    va="top", ha="left", fontsize="x-small", family="monospace")
    ax.legend(loc="best")
    return ax


def _at_risk(part: pd.DataFrame, times: Sequence[float]) -> list[str]:
    """Rounded number at risk just after each time (the first step at or after it; a dash
    when no rounded step remains)."""
    out = []
    step_times = part["time"].to_numpy(float)
    n_risk = part["n_risk"].to_numpy(float)
    for t in times:
        later = np.flatnonzero(step_times >= t)
        out.append(f"{int(n_risk[later[0]]):,}" if len(later) else "-")
    return out
