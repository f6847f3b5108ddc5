"""Figures for group-time and aggregated DiD estimates (matplotlib Axes)."""

from __future__ import annotations

import numpy as np

_PRE = "#7f7f7f"
_POST = "#1f77b4"


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    return ax


def plot_att_gt(res, ax=None):
    """ATT(g,t) against period with intervals, cohorts side by side.

    Pre-treatment cells (placebo estimates) are grey, post-treatment cells blue;
    intervals use the result's critical value (uniform when bootstrapped).
    """
    ax = _axes(ax)
    s = res.summary()
    groups = np.unique(s["group"])
    width = 0.8 / max(len(groups), 1)
    markers = "osD^v<>p*h"
    for j, g in enumerate(groups):
        part = s[s["group"] == g]
        x = part["time"].to_numpy(dtype=float) + (j - (len(groups) - 1) / 2) * width
        for post, colour in ((False, _PRE), (True, _POST)):
            m = part["post"].to_numpy() == post
            if not m.any():
                continue
            y = part["att"].to_numpy()[m]
            err = np.vstack([y - part["ci_low"].to_numpy()[m], part["ci_high"].to_numpy()[m] - y])
            ax.errorbar(x[m], y, yerr=err, fmt=markers[j % len(markers)], color=colour,
                        capsize=2, ms=4, label=f"cohort {g:g}" if post else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("period")
    ax.set_ylabel("ATT(g, t)")
    ax.set_title("Group-time average treatment effects (grey: pre-treatment)")
    ax.legend(fontsize=8, frameon=False)
    return ax


def plot_aggte(agg, ax=None):
    """Event study (dynamic) or effects by cohort/period with their band."""
    ax = _axes(ax)
    if agg.egt is None:
        lo, hi = agg.overall_ci
        ax.errorbar([0], [agg.overall_att], yerr=[[agg.overall_att - lo], [hi - agg.overall_att]],
                    fmt="o", color=_POST, capsize=3)
        ax.set_xticks([0], ["overall"])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("ATT")
        return ax
    x = np.asarray(agg.egt, dtype=float)
    y = np.asarray(agg.att_egt)
    half = agg.crit_val_egt * np.asarray(agg.se_egt)
    if agg.type == "dynamic":
        pre = x < 0
        for mask, colour, label in ((pre, _PRE, "pre-treatment"), (~pre, _POST, "post-treatment")):
            if mask.any():
                ax.errorbar(x[mask], y[mask], yerr=half[mask], fmt="o", color=colour, capsize=3,
                            label=label)
        ax.axvline(-0.5, color="black", lw=0.6, ls=":")
        ax.set_xlabel("event time (periods since first treatment)")
        ax.set_title("Event study")
        ax.legend(fontsize=8, frameon=False)
    else:
        ax.errorbar(x, y, yerr=half, fmt="o", color=_POST, capsize=3)
        ax.set_xlabel("cohort (first treated period)" if agg.type == "group" else "period")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("ATT")
    return ax
