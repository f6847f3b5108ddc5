"""Figures for survival results: forest plots and cumulative incidence curves.

Each function draws on the Axes given (or a new one) and returns it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _axes(ax: Any):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def forest_plot(
    summary: pd.DataFrame,
    ax: Any = None,
    hazard_ratios: bool = True,
    xlabel: str = "hazard ratio",
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
    ax.set_yticklabels([str(i) for i in summary.index])
    ax.set_xlabel(xlabel)
    return ax


def plot_step_curves(
    curves: pd.DataFrame,
    ax: Any = None,
    by: str | list[str] = "group",
    time_col: str = "time",
    value_col: str = "estimate",
    band: tuple[str, str] | None = None,
    ylabel: str = "cumulative incidence",
    xlabel: str = "time",
):
    """Right-continuous step curves (one per level of ``by``), with optional bands."""
    ax = _axes(ax)
    for key, part in curves.groupby(by, sort=False):
        part = part.sort_values(time_col)
        label = key if not isinstance(key, tuple) else " / ".join(str(k) for k in key)
        (line,) = ax.step(part[time_col], part[value_col], where="post", label=str(label))
        if band is not None:
            ax.fill_between(part[time_col], part[band[0]], part[band[1]], step="post",
                            alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    return ax
