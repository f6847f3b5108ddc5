"""The results convention every fitter and result class of phm-eval follows (issue 17).

As lifelines: ``fit`` returns the fitter, fitted attributes end in ``_``, ``summary`` is a
DataFrame property computed from the fitted values when asked (nothing is stored twice),
``print_summary()`` prints, ``repr`` is one short line, everything pickles, and a result
cannot be changed after it is built. This module holds the pieces the estimators and the
analyses share: the callable summary table, the short ``repr``, the checks of common
arguments, and :class:`ResultConvention`, the base of the result classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

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


def short_repr(obj: object, settings: Mapping[str, Any],
               fitted: Callable[[], str] | None) -> str:
    """``<ClassName(setting=value, ...): fitted, n=...>``, one short line.

    ``fitted`` returns the description of the fit (e.g. ``"n=500, events=120"``) or is
    ``None`` when ``obj`` is not fitted.
    """
    shown = ", ".join(f"{k}={_brief(v)}" for k, v in settings.items())
    state = "not fitted" if fitted is None else f"fitted, {fitted()}"
    return f"<{type(obj).__name__}({shown}): {state}>"


def result_repr(obj: object, shown: Mapping[str, Any]) -> str:
    """``<ClassName(name=value, ...)>``: one short line naming what the result holds."""
    return f"<{type(obj).__name__}({', '.join(f'{k}={_brief(v)}' for k, v in shown.items())})>"


def _brief(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 3:
        return f"[{', '.join(map(repr, value[:3]))}, ... ({len(value)})]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class AnswersForResult:
    """Base of fitters that keep their read-only result in ``result_`` once fitted and answer
    for the result's attributes named in ``_result_api`` (so code that used ``fit``'s return
    value as the result keeps working), and for its ``summary``."""

    __slots__ = ()
    _result_api: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        # reached only when normal lookup fails: answer for the result's API once fitted
        if name in type(self)._result_api:
            require_fitted(self, "result_")
            return getattr(self.__dict__["result_"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def summary(self) -> pd.DataFrame:
        """The result's table (``result_.summary``)."""
        require_fitted(self, "result_")
        return self.__dict__["result_"].summary


class ResultConvention:
    """Base of the result classes: ``summary`` property, ``print_summary()``, short ``repr``.

    A subclass (a frozen dataclass with ``repr=False``) gives its table in
    ``_summary_table()`` and what its one-line ``repr`` shows in ``_repr_fields()``.
    ``result.summary`` is the table; ``result.summary()`` still returns it, as when it was
    a method.
    """

    __slots__ = ()

    def _summary_table(self) -> pd.DataFrame:
        raise NotImplementedError

    def _repr_fields(self) -> Mapping[str, Any]:
        return {}

    @property
    def summary(self) -> SummaryFrame:
        """The result's table (a DataFrame; calling it, as ``summary()``, also works)."""
        return SummaryFrame(self._summary_table())

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the summary table."""
        print(f"{self!r}\n{format_table(self.summary, decimals)}")

    def __repr__(self) -> str:
        return result_repr(self, self._repr_fields())
