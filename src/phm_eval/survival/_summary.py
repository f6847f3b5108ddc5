"""The results convention shared by the estimators of ``survival`` and ``matching``.

As lifelines: ``fit`` returns the fitter, fitted attributes end in ``_``, ``summary`` is a
property computed from the fitted parameters when asked (nothing is stored twice),
``print_summary()`` prints, and ``repr`` is one short line. This module holds the pieces
they share: the coefficient table in the layout of lifelines' ``CoxPHFitter.summary``, the
checks of common arguments, and the one-line ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval.errors import EstimationError, ParameterError


class SummaryFrame(pd.DataFrame):
    """A summary table that may also be called, for code written when ``summary`` was a method.

    ``fitted.summary`` is the table; ``fitted.summary()`` returns the same table as a plain
    DataFrame. Anything derived from it (a selection, ``reset_index()``...) is a plain
    DataFrame.
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def __call__(self) -> pd.DataFrame:
        return pd.DataFrame(self)


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


def check_alpha(alpha: object, argument: str = "alpha") -> float:
    """``alpha`` (one minus the confidence level) as a float in (0, 1), else ParameterError."""
    try:
        value = float(alpha)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(alpha, bool) or not 0 < value < 1:
        raise ParameterError(argument, "one minus the confidence level must lie strictly "
                             "between 0 and 1 (e.g. 0.05 for 95% intervals)", alpha)
    return value


def require_fitted(obj: object, attribute: str) -> None:
    """Raise EstimationError unless ``obj`` has the fitted ``attribute``."""
    if attribute not in vars(obj):
        raise EstimationError(f"call {type(obj).__name__}.fit() before using the results")


def fitted_alias(name: str) -> property:
    """A read-only former name of a fitted attribute, so callers written before the rename
    keep working."""

    def get(self: Any) -> Any:
        if not isinstance(getattr(type(self), name, None), property):
            require_fitted(self, name)  # a property checks for itself
        return getattr(self, name)

    return property(get, doc=f"Former name of ``{name}`` (kept for existing callers).")


def short_repr(obj: object, settings: dict[str, Any], fitted: Callable[[], str] | None) -> str:
    """``<ClassName(setting=value, ...): fitted, n=...>``, one short line.

    ``fitted`` returns the description of the fit (e.g. ``"n=500, events=120"``) or is
    ``None`` when ``obj`` is not fitted.
    """
    shown = ", ".join(f"{k}={_brief(v)}" for k, v in settings.items())
    state = "not fitted" if fitted is None else f"fitted, {fitted()}"
    return f"<{type(obj).__name__}({shown}): {state}>"


def _brief(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 3:
        return f"[{', '.join(map(repr, value[:3]))}, ... ({len(value)})]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
