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


def plot_att_gt(res, *, ax=None):
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
                        capsize=2, ms=4, label=f"Started in period {g:g}" if post else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("Period")
    ax.set_ylabel("Effect in each cohort and period (difference from the comparison group)")
    ax.set_title("Effects by cohort and period (grey: before the programme, a check)")
    ax.legend(fontsize=8, frameon=False)
    return ax


#: The event-study axis of the programme evaluation: monthly admissions per person, shown per
#: 1,000 person-months.
EVENT_STUDY_YLABEL = "Change in emergency admissions per 1,000 person-months"


def plot_aggte(agg, *, ax=None, ylabel: str | None = None, scale: float = 1.0,
               period: str = "month"):
    """Event study (dynamic) or effects by cohort/period with their band.

    Parameters
    ----------
    agg : AggteResult
    ax : matplotlib Axes, optional
    ylabel : str, optional
        The effect axis in words with its units, e.g. :data:`EVENT_STUDY_YLABEL` (with
        ``scale=1000`` for an outcome counted per person-month).  Default: "Estimated effect
        (difference from the comparison group)".
    scale : float, default 1
        Multiplies estimates and intervals (e.g. 1,000 to show an effect per 1,000 people).
    period : str, default "month"
        What one period is, for the time axis ("Months since the programme started").
    """
    ax = _axes(ax)
    ylabel = ylabel or "Estimated effect (difference from the comparison group)"
    periods = f"{period}s" if not period.endswith("s") else period
    if agg.egt is None:
        lo, hi = (scale * v for v in agg.overall_ci)
        att = scale * agg.overall_att
        ax.errorbar([0], [att], yerr=[[att - lo], [hi - att]], fmt="o", color=_POST, capsize=3)
        ax.set_xticks([0], ["Overall"])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(ylabel)
        return ax
    x = np.asarray(agg.egt, dtype=float)
    y = scale * np.asarray(agg.att_egt)
    half = scale * agg.crit_val_egt * np.asarray(agg.se_egt)
    if agg.type == "dynamic":
        pre = x < 0
        for mask, colour, name in ((pre, _PRE, "Before the programme (check)"),
                                   (~pre, _POST, "After the programme started")):
            if mask.any():
                ax.errorbar(x[mask], y[mask], yerr=half[mask], fmt="o", color=colour, capsize=3,
                            label=name)
        ax.axvline(-0.5, color="black", lw=0.6, ls=":")
        ax.set_xlabel(f"{periods.capitalize()} since the programme started (0 = first {period})")
        ax.set_title("Event study")
        ax.legend(fontsize=8, frameon=False)
    else:
        ax.errorbar(x, y, yerr=half, fmt="o", color=_POST, capsize=3)
        ax.set_xlabel(f"{period.capitalize()} the programme started" if agg.type == "group"
                      else f"Calendar {period}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(ylabel)
    return ax
