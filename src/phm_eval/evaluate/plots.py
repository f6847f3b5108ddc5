"""Figures of the evaluation: forest plot of effects and the regression-to-the-mean chart."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..plotting import OKABE_ITO, set_titles


def forest_plot(records: Sequence[dict], *, ax: Axes | None = None) -> Axes:
    """Rate ratios with 95% CIs, overall and by subgroup (log scale, line at 1)."""
    rows = [r for r in records if r.get("scale") == "RR" and r.get("estimate") is not None
            and (r.get("headline") or r.get("subgroup"))]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.6))
    labels, y = [], np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows, strict=True):
        colour = OKABE_ITO["vermillion"] if r.get("headline") else OKABE_ITO["blue"]
        ax.errorbar(r["estimate"], yi, xerr=[[r["estimate"] - r["ci_low"]],
                                             [r["ci_high"] - r["estimate"]]],
                    fmt="s", color=colour, capsize=3)
        group = r.get("subgroup") or "all"
        labels.append("All matched patients" if r.get("headline") else
                      group.split("=", 1)[-1] + f"  ({group.split('=')[0].replace('_group', '')})")
    ax.axvline(1, color="grey", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, labels)
    ax.set_xlabel("Rate ratio of emergency admissions (enrolled vs comparators, 95% CI)")
    set_titles(ax, "Who benefits", subtitle="Below 1 = fewer admissions with the programme")
    return ax


def rtm_plot(table: pd.DataFrame, naive: object, did: object, *, ax: Axes | None = None) -> Axes:
    """Admission rates before and after the index date for both arms, with the naive and the
    controlled estimates written beside them."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"enrolled": OKABE_ITO["vermillion"], "matched comparators": OKABE_ITO["blue"]}
    for _, row in table.iterrows():
        ax.plot([0, 1], [row["rate_before_per_1000"], row["rate_after_per_1000"]], marker="o",
                color=colours.get(row["arm"], "black"), label=row["arm"], lw=2)
    ax.set_xticks([0, 1], ["12 months before", "12 months after"])
    ax.set_ylabel("Emergency admissions per 1,000 person-years")
    ax.set_xlim(-0.3, 1.6)
    text = (f"Naive before/after: rate ratio {naive.estimate:.2f}\n"
            f"(enrolled only; mostly regression to the mean)\n\n"
            f"Controlled (difference in differences):\n"
            f"{did.estimate:+.0f} per 1,000 (95% CI {did.ci_low:+.0f} to {did.ci_high:+.0f})")
    ax.text(1.08, np.nanmean(table["rate_after_per_1000"]), text, fontsize=8, va="center")
    ax.legend(loc="upper right", fontsize="small")
    set_titles(ax, "Regression to the mean made visible",
               subtitle="Both arms fall after the index date; only the gap is the effect")
    return ax
