"""Coefficient tables in the layout of lifelines' ``CoxPHFitter.summary``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def coefficient_table(params: pd.Series, se: pd.Series, alpha: float = 0.05) -> pd.DataFrame:
    """Coefficients, ratios, Wald z, two-sided p and confidence limits on both scales.

    Column names follow lifelines (``coef``, ``exp(coef)``, ``se(coef)``,
    ``coef lower 95%`` ... ``-log2(p)``) so tables from different fitters line up.
    """
    level = f"{100 * (1 - alpha):g}%"
    zcrit = stats.norm.ppf(1 - alpha / 2)
    coef = params.to_numpy(dtype=float)
    s = se.to_numpy(dtype=float)
    z = coef / s
    p = 2 * stats.norm.sf(np.abs(z))
    lo, hi = coef - zcrit * s, coef + zcrit * s
    with np.errstate(divide="ignore"):
        minus_log2_p = -np.log2(p)
    table = pd.DataFrame(
        {
            "coef": coef,
            "exp(coef)": np.exp(coef),
            "se(coef)": s,
            f"coef lower {level}": lo,
            f"coef upper {level}": hi,
            f"exp(coef) lower {level}": np.exp(lo),
            f"exp(coef) upper {level}": np.exp(hi),
            "cmp to": 0.0,
            "z": z,
            "p": p,
            "-log2(p)": minus_log2_p,
        },
        index=pd.Index(params.index, name="covariate"),
    )
    return table


def format_table(table: pd.DataFrame, decimals: int = 3) -> str:
    """Plain-text rendering of a summary table."""
    with pd.option_context("display.max_columns", None, "display.width", 200):
        return table.to_string(float_format=lambda v: f"{v:.{decimals}f}")
