"""Clinical utility: decision curves (net benefit) and performance at risk tiers.

Net benefit (Vickers & Elkin, Med Decis Making 2006;26:565) of flagging everyone whose
predicted risk is at or above a threshold ``pt``::

    NB(pt) = TP / n - FP / n * pt / (1 - pt)

compared with flagging everyone ("treat all": ``prevalence - (1 - prevalence) * pt / (1 - pt)``)
and no one ("treat none": 0). The threshold expresses how many false positives one true
positive is worth: at ``pt = 0.2`` one admission found is worth four patients reviewed needlessly.

Risk tiers follow the population-health "pyramid": the top 0.5%, 5% and 20% of patients by
predicted risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.convention import ResultConvention
from phm_eval.risk.validation import _as_outcome_and_prob

__all__ = ["DecisionCurve", "decision_curve", "net_benefit", "risk_tier_metrics"]

DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 0.51, 0.01), 2)
DEFAULT_TIERS = (0.005, 0.05, 0.20)


def net_benefit(y_true: Any, y_prob: Any, threshold: float) -> float:
    """Net benefit of flagging patients with predicted risk ``>= threshold``.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome (0/1) and predicted risk.
    threshold : float
        Risk threshold, strictly between 0 and 1.

    Returns
    -------
    float
        True positives per patient minus false positives per patient weighted by the odds
        of the threshold.
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    return float(_net_benefit(y, p, np.array([threshold]))[0][0])


def _net_benefit(
    y: np.ndarray, p: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if ((thresholds <= 0) | (thresholds >= 1)).any():
        raise ValueError("thresholds must lie strictly between 0 and 1")
    n = y.size
    order = np.argsort(p, kind="stable")
    p_sorted = p[order]
    y_sorted = y[order]
    # events and non-events at or above each threshold, via suffix sums
    events_above = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0.0]])
    first = np.searchsorted(p_sorted, thresholds, side="left")
    tp = events_above[first]
    flagged = n - first
    fp = flagged - tp
    odds = thresholds / (1.0 - thresholds)
    return tp / n - fp / n * odds, tp, fp


@dataclass(frozen=True, repr=False)
class DecisionCurve(ResultConvention):
    """Net benefit of a model against flagging everyone or no one.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per threshold: ``threshold``, ``net_benefit_model``,
        ``net_benefit_treat_all``, ``net_benefit_treat_none``, ``true_positives``,
        ``false_positives``, ``flag_rate``, ``interventions_avoided_per_100`` (net reduction
        in needless flags per 100 patients compared with flagging everyone).
    prevalence : float
        Observed event rate.
    n : int
        Patients.
    """

    table: pd.DataFrame
    prevalence: float
    n: int
    label: str = "model"
    extra: dict[str, Any] = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        return {"label": self.label, "n": int(self.n), "thresholds": len(self.table)}

    def _summary_table(self) -> pd.DataFrame:
        """The decision-curve table."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "prevalence": self.prevalence,
            "n": self.n,
            "label": self.label,
            "table": self.table.to_dict(orient="list"),
        }

    def plot(self, *, ax: Any = None, **kwargs: Any) -> Any:
        """Plot net benefit against threshold; returns the matplotlib Axes."""
        from phm_eval.risk.plots import plot_decision_curve

        return plot_decision_curve(self, ax=ax, **kwargs)


def decision_curve(
    y_true: Any,
    y_prob: Any,
    *,
    thresholds: Sequence[float] | np.ndarray | None = None,
    label: str = "model",
) -> DecisionCurve:
    """Decision-curve analysis (Vickers & Elkin 2006).

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome (0/1) and predicted risk.
    thresholds : sequence of float, optional
        Risk thresholds; default 0.01 to 0.50 by 0.01. A patient is flagged when
        ``y_prob >= threshold``.
    label : str
        Name of the model, used in plots.

    Returns
    -------
    DecisionCurve
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    th = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float)
    nb, tp, fp = _net_benefit(y, p, th)
    prevalence = float(y.mean())
    odds = th / (1.0 - th)
    nb_all = prevalence - (1.0 - prevalence) * odds
    with np.errstate(divide="ignore", invalid="ignore"):
        avoided = np.where(odds > 0, (nb - nb_all) / odds * 100.0, np.nan)
    table = pd.DataFrame(
        {
            "threshold": th,
            "net_benefit_model": nb,
            "net_benefit_treat_all": nb_all,
            "net_benefit_treat_none": 0.0,
            "true_positives": tp.astype(int),
            "false_positives": fp.astype(int),
            "flag_rate": (tp + fp) / y.size,
            "interventions_avoided_per_100": avoided,
        }
    )
    return DecisionCurve(table=table, prevalence=prevalence, n=int(y.size), label=label)


def risk_tier_metrics(
    y_true: Any,
    y_prob: Any,
    *,
    top_fractions: Sequence[float] = DEFAULT_TIERS,
) -> pd.DataFrame:
    """Sensitivity, PPV and flag rate when the top fraction of patients by risk is flagged.

    Exactly ``ceil(fraction * n)`` patients are flagged per tier; ties at the boundary are
    broken by row order, so tier sizes are what a practice would actually list.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome (0/1) and predicted risk.
    top_fractions : sequence of float
        Tiers, e.g. (0.005, 0.05, 0.20) for the top 0.5%, 5% and 20%.

    Returns
    -------
    pandas.DataFrame
        ``tier`` (e.g. "top 5%"), ``fraction``, ``n_flagged``, ``flag_rate``,
        ``risk_threshold`` (lowest predicted risk flagged), ``events_flagged``,
        ``sensitivity``, ``ppv``, ``mean_predicted_risk`` (among flagged) and ``lift``
        (PPV / overall event rate).
    """
    y, p = _as_outcome_and_prob(y_true, y_prob)
    n = y.size
    order = np.argsort(-p, kind="stable")
    events_cum = np.cumsum(y[order])
    p_cum = np.cumsum(p[order])
    total_events = float(y.sum())
    prevalence = total_events / n
    rows = []
    for frac in top_fractions:
        if not 0 < frac <= 1:
            raise ValueError("top_fractions must lie in (0, 1]")
        k = int(np.ceil(frac * n - 1e-9))
        k = max(1, min(k, n))
        events = float(events_cum[k - 1])
        ppv = events / k
        rows.append(
            {
                "tier": f"top {frac * 100:g}%",
                "fraction": frac,
                "n_flagged": k,
                "flag_rate": k / n,
                "risk_threshold": float(p[order[k - 1]]),
                "events_flagged": events,
                "sensitivity": events / total_events if total_events > 0 else float("nan"),
                "ppv": ppv,
                "mean_predicted_risk": float(p_cum[k - 1] / k),
                "lift": ppv / prevalence if prevalence > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)
