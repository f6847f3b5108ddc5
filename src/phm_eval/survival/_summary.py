"""The coefficient table of the survival fitters, in the layout of lifelines' ``CoxPHFitter``.

The rest of the results convention (the callable summary table, the one-line ``repr``, the
checks of common arguments) is :mod:`phm_eval.convention`, shared by every package; it is
re-exported here for the fitters of this package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.convention import (
    SummaryFrame,
    check_alpha,
    fitted_alias,
    format_table,
    require_fitted,
    short_repr,
)


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


# The pieces every package shares live in phm_eval.convention; survival's fitters (and code
# written against this module) find them here too.
__all__ = ["SummaryFrame", "check_alpha", "coefficient_table", "fitted_alias", "format_table",
           "require_fitted", "short_repr"]
