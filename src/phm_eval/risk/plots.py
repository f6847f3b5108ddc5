"""Figures for a risk model's validation: calibration, ROC, decision curve, importance.

Every function draws on ``ax`` (a new figure when omitted) and returns the Axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phm_eval.labels import label as display_label
from phm_eval.labels import shown_name
from phm_eval.risk.validation import _as_outcome_and_prob, c_statistic, calibration_curve

__all__ = [
    "plot_calibration",
    "plot_decision_curve",
    "plot_feature_importance",
    "plot_roc",
]


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 5))
    return ax


def plot_calibration(
    y_true: Any,
    y_prob: Any,
    *,
    groups: Any = None,
    method: str = "loess",
    ax: Any = None,
    label: str = "model",
    max_risk: float | None = None,
    histogram: bool = True,
) -> Any:
    """Flexible calibration curve(s) with the distribution of predictions underneath.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome (0/1) and predicted risk.
    groups : array-like, optional
        Subgroup label per patient; one curve per subgroup (e.g. sex or IMD quintile).
    method : {"loess", "spline"}
        Smoother, see :func:`phm_eval.risk.validation.calibration_curve`.
    max_risk : float, optional
        Upper limit of both axes; default the 99th percentile of predictions, rounded up.
    histogram : bool, default True
        Draw a spike histogram of predictions along the bottom (as ``rms::val.prob``).
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    ax = _axes(ax)
    top = max_risk if max_risk is not None else min(1.0, np.ceil(np.quantile(p, 0.99) * 20) / 20)
    top = max(top, 0.05)
    ax.plot([0, top], [0, top], color="0.7", lw=3, label="ideal")
    if groups is None:
        curve = calibration_curve(y, p, method=method)
        ax.plot(curve["predicted"], curve["observed"], color="black", label=label)
        if "lower" in curve:
            ax.fill_between(
                curve["predicted"], curve["lower"], curve["upper"], color="0.8", alpha=0.5
            )
    else:
        g = pd.Series(np.asarray(groups)).astype("object").fillna("missing").to_numpy()
        for level in pd.unique(g):
            mask = g == level
            if y[mask].min() == y[mask].max():
                continue
            curve = calibration_curve(y[mask], p[mask], method=method)
            ax.plot(curve["predicted"], curve["observed"],
                    label=display_label("value", level) if "_" in str(level) else str(level))
    if histogram:
        bins = np.linspace(0, top, 101)
        counts, edges = np.histogram(p[p <= top], bins=bins)
        if counts.max() > 0:
            heights = 0.15 * top * counts / counts.max()
            ax.vlines(edges[:-1], 0, heights, color="0.4", lw=1)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("Predicted risk of emergency admission (proportion)")
    ax.set_ylabel("Observed proportion admitted")
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    return ax


def plot_roc(y_true: Any, y_prob: Any, *, ax: Any = None, label: str = "model") -> Any:
    """ROC curve with the c-statistic in the legend."""
    from sklearn.metrics import roc_curve

    y, p = _as_outcome_and_prob(y_true, y_prob)
    ax = _axes(ax)
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    ax.plot(fpr, tpr, color="black", label=f"{label} (c = {c_statistic(y, p):.3f})")
    ax.set_xlabel("False-positive rate (1 − specificity)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    return ax


def plot_decision_curve(curve: Any, *, ax: Any = None) -> Any:
    """Net benefit of the model, treat-all and treat-none against the risk threshold.

    Parameters
    ----------
    curve : DecisionCurve or pandas.DataFrame
        From :func:`phm_eval.risk.decision_curve.decision_curve` (or its table).
    """
    table = curve.table if hasattr(curve, "table") else curve
    label = getattr(curve, "label", "model")
    ax = _axes(ax)
    th = table["threshold"]
    ax.plot(th, table["net_benefit_model"], color="black", label=label)
    ax.plot(th, table["net_benefit_treat_all"], color="0.5", ls="--", label="flag all")
    ax.plot(th, table["net_benefit_treat_none"], color="0.5", ls=":", label="flag none")
    best = float(np.nanmax(table[["net_benefit_model", "net_benefit_treat_all"]].to_numpy()))
    ax.set_ylim(-0.05 * max(best, 0.01), 1.1 * max(best, 0.01))
    ax.set_xlabel("Risk threshold for offering proactive care (proportion)")
    ax.set_ylabel("Net benefit (true positives per patient, net of harms)")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return ax


def plot_feature_importance(table: pd.DataFrame, *, ax: Any = None, top: int = 20) -> Any:
    """Horizontal bars of permutation importance or logistic coefficients.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`phm_eval.risk.models.feature_importance` (``feature``,
        ``importance_mean``) or :func:`phm_eval.risk.models.model_coefficients` (``term``,
        ``coefficient``; the intercept is left out).
    top : int
        How many of the largest (in absolute value) to show.
    """
    if {"feature", "importance_mean"} <= set(table.columns):
        names, values, xlabel = table["feature"], table["importance_mean"], "Drop in c-statistic"
    elif {"term", "coefficient"} <= set(table.columns):
        keep = table["term"] != "intercept"
        names, values = table.loc[keep, "term"], table.loc[keep, "coefficient"]
        xlabel = "Coefficient (log odds ratio)"
    else:
        raise ValueError("table needs feature/importance_mean or term/coefficient columns")
    frame = pd.DataFrame({"name": names.to_numpy(), "value": values.to_numpy()})
    frame = frame.reindex(frame["value"].abs().sort_values(ascending=False).index).head(top)
    frame = frame.iloc[::-1]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 0.3 * len(frame) + 1))
    # Predictor names in words (phm_eval.labels); a plain one-word name is kept as it is.
    names = [shown_name("covariate", n) for n in frame["name"]]
    ax.barh(names, frame["value"], color="0.3")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    return ax
