"""Figures for survival results: forest plots and cumulative incidence curves.

Each function draws on the Axes given (or a new one) and returns it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.labels import label, shown_name


def _plain_axis(text: str) -> str:
    """An axis title in words: capitalised, a bare cause code spelled out, and "time" given
    its unit ("cumulative incidence of 1" -> "Cumulative incidence of event type 1
    (proportion)")."""
    text = str(text).strip()
    if text.lower() == "time":
        return "Days of follow-up"
    match = re.fullmatch(r"cumulative incidence of (\S+)", text, flags=re.I)
    if match:
        cause = match.group(1)
        what = f"event type {cause}" if cause.isdigit() else label("outcome", cause).lower()
        return f"Cumulative incidence of {what} (proportion)"
    return text[:1].upper() + text[1:]


def _axes(ax: Any):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def forest_plot(
    summary: pd.DataFrame,
    *,
    ax: Any = None,
    hazard_ratios: bool = True,
    xlabel: str = "Hazard ratio (below 1: fewer events)",
    **kwargs: Any,
):
    """Point estimates and confidence intervals, one row per covariate.

    Parameters
    ----------
    summary : DataFrame
        A table from :func:`coefficient_table` (lifelines layout).
    hazard_ratios : bool, default True
        Plot ``exp(coef)`` on a log axis; otherwise ``coef`` on a linear axis.
    """
    ax = _axes(ax)
    lower = next(c for c in summary.columns if c.startswith("coef lower"))
    upper = next(c for c in summary.columns if c.startswith("coef upper"))
    est, lo, hi = summary["coef"], summary[lower], summary[upper]
    if hazard_ratios:
        est, lo, hi = np.exp(est), np.exp(lo), np.exp(hi)
    y = np.arange(len(summary))[::-1]
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="s", capsize=3,
                color=kwargs.pop("color", "k"), **kwargs)
    ax.axvline(1.0 if hazard_ratios else 0.0, color="grey", linestyle="--", linewidth=1)
    if hazard_ratios:
        ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([shown_name("covariate", i) for i in summary.index])
    ax.set_xlabel(_plain_axis(xlabel))
    return ax


def plot_step_curves(
    curves: pd.DataFrame,
    *,
    ax: Any = None,
    by: str | list[str] = "group",
    time_col: str = "time",
    value_col: str = "estimate",
    band: tuple[str, str] | None = None,
    ylabel: str = "Cumulative incidence (proportion with the event)",
    xlabel: str = "Days of follow-up",
):
    """Right-continuous step curves (one per level of ``by``), with optional bands."""
    ax = _axes(ax)
    for key, part in curves.groupby(by, sort=False):
        part = part.sort_values(time_col)
        name = key if not isinstance(key, tuple) else " / ".join(str(k) for k in key)
        shown = str(name) if not isinstance(name, str) or "_" not in name else label("value", name)
        (line,) = ax.step(part[time_col], part[value_col], where="post", label=shown)
        if band is not None:
            ax.fill_between(part[time_col], part[band[0]], part[band[1]], step="post",
                            alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel(_plain_axis(xlabel))
    ax.set_ylabel(_plain_axis(ylabel))
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    return ax
