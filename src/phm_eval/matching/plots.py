"""Love plot: absolute standardised mean differences before and after matching."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from phm_eval.labels import label
from phm_eval.plotting import OKABE_ITO, phm_style, set_titles


def love_plot(
    balance: pd.DataFrame,
    *,
    threshold: float = 0.1,
    ax: Axes | None = None,
    title: str = "Covariate balance before and after matching",
) -> Axes:
    """Dot plot of |standardised mean difference| per term, before and after matching.

    Parameters
    ----------
    balance : pandas.DataFrame
        Output of :func:`~phm_eval.matching.balance.balance_table` (columns
        ``smd_before`` and ``smd_after``, index = term).
    threshold : float, default 0.1
        Reference line; |SMD| below 0.1 is the usual mark of adequate balance
        (Austin 2009, *Stat Med* 28:3083-3107).
    ax : matplotlib Axes, optional
        Draw here; a new figure is made otherwise.
    title : str

    Returns
    -------
    matplotlib.axes.Axes
    """
    # Rows in words: "sexF" reads "Sex: female", "index_month_code2020-11" "Index month:
    # November 2020" (phm_eval.labels).
    labels = [label("covariate", t) for t in balance.index]
    before = np.abs(balance["smd_before"].to_numpy(dtype=float))
    after = np.abs(balance["smd_after"].to_numpy(dtype=float))
    y = np.arange(len(labels))[::-1]
    with phm_style():
        if ax is None:
            _, ax = plt.subplots(figsize=(7.0, 0.35 * len(labels) + 1.8))
        ax.scatter(before, y, facecolors="none", edgecolors=OKABE_ITO["vermillion"],
                   label="Before matching", zorder=3)
        ax.scatter(after, y, color=OKABE_ITO["blue"], label="After matching", zorder=3)
        ax.axvline(threshold, color="#7F7F7F", linestyle="--", linewidth=1)
        ax.set_yticks(y, labels)
        ax.set_xlabel("Difference between groups (absolute standardised mean difference)")
        ax.set_xlim(left=0)
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.legend(loc="lower right")
        set_titles(ax, title, subtitle=f"Dashed line: {threshold:g}")
    return ax
