"""Result of an Honest DiD sensitivity analysis: summary, breakdown value and plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.convention import ResultConvention


@dataclass(frozen=True, repr=False)
class HonestDiDResult(ResultConvention):
    """Robust confidence intervals over a grid of M (or Mbar) (read-only).

    Attributes
    ----------
    method : {"smoothness", "relative_magnitude"}
    delta : str
        Restriction, R's label (``"DeltaSD"`` or ``"DeltaRM"``).
    ci_method : str
        ``"FLCI"``, ``"C-LF"`` (conditional least-favourable hybrid) or ``"Conditional"``.
    m : array
        M (smoothness) or Mbar (relative magnitudes).
    lb, ub : arrays
        Robust confidence interval for each value of ``m``.
    original : tuple
        ``(lb, ub)`` of the usual interval ``l'beta_post +- z se`` (R's
        ``constructOriginalCS``).
    estimate, se : float
        ``l'beta_post`` and its standard error.
    alpha : float
    l_vec : array
    grid_step : array or None
        Spacing of the test-inversion grid for each Mbar (relative magnitudes): the
        bounds are grid points, so they are accurate to this step.
    """

    method: str
    delta: str
    ci_method: str
    m: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    original: tuple
    estimate: float
    se: float
    alpha: float
    l_vec: np.ndarray
    num_pre: int
    num_post: int
    grid_step: np.ndarray | None = None
    details: list = field(default_factory=list, repr=False)

    @property
    def m_label(self) -> str:
        return "M" if self.method == "smoothness" else "Mbar"

    def _repr_fields(self) -> dict[str, Any]:
        return {"method": self.method, "ci_method": self.ci_method,
                self.m_label: [float(x) for x in self.m], "estimate": round(float(self.estimate), 6)}

    def _summary_table(self) -> pd.DataFrame:
        """One row per value of M/Mbar: ``M`` (or ``Mbar``), lb, ub, method, delta."""
        return pd.DataFrame({self.m_label: self.m, "lb": self.lb, "ub": self.ub,
                             "method": self.ci_method, "delta": self.delta})

    def breakdown(self, *, null: float = 0.0) -> float:
        """Largest M/Mbar of the grid up to which every robust interval excludes ``null``.

        NaN if the smallest value's interval already contains it (the grid says nothing
        finer than its spacing; R's README reads the breakdown value off the same grid).
        """
        order = np.argsort(self.m)
        out = np.nan
        for i in order:
            if self.lb[i] <= null <= self.ub[i] or not np.isfinite(self.lb[i] + self.ub[i]):
                break
            out = float(self.m[i])
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "delta": self.delta, "ci_method": self.ci_method,
                "alpha": self.alpha, "l_vec": [float(x) for x in self.l_vec],
                "original": [float(x) for x in self.original],
                "estimate": float(self.estimate), "se": float(self.se),
                "rows": self.summary().replace({np.nan: None}).to_dict(orient="records")}

    def plot(self, *, ax=None):
        """Robust intervals against M/Mbar, with the original interval at the left.

        As R's ``createSensitivityPlot``: the original interval is drawn one grid step
        to the left of the smallest M/Mbar.
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4))
        m = np.asarray(self.m, dtype=float)
        gap = float(np.min(np.diff(np.sort(m)))) if len(m) > 1 else 1.0
        gap = gap if gap > 0 else 1.0
        x0 = float(m.min()) - gap
        mid = (self.lb + self.ub) / 2
        ax.errorbar([x0], [self.estimate], yerr=[[self.estimate - self.original[0]],
                                                  [self.original[1] - self.estimate]],
                    fmt="none", color="#d62728", capsize=4, lw=1.6, label="Original")
        ax.errorbar(m, mid, yerr=[mid - self.lb, self.ub - mid], fmt="none", color="#1f77b4",
                    capsize=4, lw=1.6, label=f"{self.ci_method} ({self.delta})")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(self.m_label if self.method == "smoothness" else r"$\bar{M}$")
        ax.set_ylabel(r"$\theta = l'\tau_{post}$")
        ax.set_title("Robust confidence intervals (Rambachan & Roth)")
        ax.legend(fontsize=8, frameon=False, loc="best")
        return ax
