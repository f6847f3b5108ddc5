"""One exception hierarchy for problems with a user's inputs or configuration.

The command line turns any :class:`PhmEvalError` into one clear message and a
non-zero exit status; library code raises, never prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any


class PhmEvalError(Exception):
    """Base class for errors phm-eval reports to users."""


class InputError(PhmEvalError):
    """An input file breaks the data contract.

    Parameters
    ----------
    file : str
        The file that breaks the rule (``admissions.csv``), or, for a table passed in
        memory, the argument that holds it (``df passed to FineGrayFitter.fit``); never the
        name of the function that found the problem.
    rule : str
        The rule broken, in words a data manager understands.
    column : str, optional
        The offending column, when the rule concerns one.
    rows : sequence of int, optional
        1-based data row numbers (the header is row 0) of the first offending rows.
    keys : sequence of str, optional
        The key values (e.g. ``patient_id``) of those rows, same order as ``rows``.
    n_failing : int, optional
        How many rows break the rule in all.
    """

    def __init__(
        self,
        file: str,
        rule: str,
        column: str | None = None,
        rows: Sequence[int] | None = None,
        keys: Sequence[object] | None = None,
        n_failing: int | None = None,
    ) -> None:
        self.file = str(file)
        self.rule = rule
        self.column = column
        self.rows = list(rows) if rows is not None else []
        self.keys = [str(k) for k in keys] if keys is not None else []
        self.n_failing = n_failing
        super().__init__(self._message())

    def __reduce__(self):
        # rebuilt from its parts, so the error survives a process pool
        return (type(self), (self.file, self.rule, self.column, self.rows, self.keys,
                             self.n_failing))

    def _message(self) -> str:
        where = f"{self.file}"
        if self.column:
            where += f", column '{self.column}'"
        parts = [f"{where}: {self.rule}"]
        if self.rows:
            shown = []
            for i, row in enumerate(self.rows):
                key = f" ({self.keys[i]})" if i < len(self.keys) and self.keys[i] else ""
                shown.append(f"row {row}{key}")
            total = f"{self.n_failing} rows fail" if self.n_failing else f"{len(self.rows)} rows fail"
            parts.append(f"{total}; first: " + ", ".join(shown))
        return ". ".join(parts)


class ConfigError(PhmEvalError):
    """The configuration is invalid (names the key and what is expected)."""


class EstimationError(PhmEvalError):
    """An estimator cannot run on the data given (e.g. an empty comparison group)."""


class ParameterError(ConfigError, ValueError):
    """A function or class was given a bad argument.

    The message starts with the argument's name, then what is expected and what was given,
    e.g. ``alpha: must lie strictly between 0 and 1 (got 1.5)``. It is a ``ValueError``, as
    Python code expects of a bad value, and a :class:`ConfigError` (so a
    :class:`PhmEvalError`), because estimator arguments usually come from the configuration
    and callers that stop a run on a configuration error must stop on this too.

    Parameters
    ----------
    argument : str
        The argument at fault, e.g. ``"alpha"`` or ``"FineGrayFitter.fit(cluster_col)"``.
    rule : str
        What the argument must be, in words.
    value : object, optional
        The value given; shown with ``repr`` when passed.
    """

    _MISSING = object()

    def __init__(self, argument: str, rule: str, value: object = _MISSING) -> None:
        self.argument = argument
        self.rule = rule
        self.value = None if value is self._MISSING else value
        self._has_value = value is not self._MISSING
        got = "" if value is self._MISSING else f" (got {value!r})"
        super().__init__(f"{argument}: {rule}{got}")

    def __reduce__(self):
        # rebuilt from its parts (the default would pass the message as ``argument``)
        if not self._has_value:
            return (type(self), (self.argument, self.rule))
        return (type(self), (self.argument, self.rule, self.value))


def renamed_argument(
    owner: str,
    name: str,
    value: Any,
    former: str,
    former_value: Any,
    *,
    default: Any = None,
    stacklevel: int = 3,
) -> Any:
    """The value of argument ``name`` of ``owner``, which used to be called ``former``.

    A value given under the former name (``former_value`` not ``None``) is still used, with
    a :class:`DeprecationWarning`; given under both names with different values, a
    :class:`ParameterError` names both (``make_model(seed, random_state): ...``). ``value``
    equal to ``default`` counts as not given.

    Parameters
    ----------
    owner : str
        The function or class taking the argument, for messages (``"make_model"``).
    name, former : str
        The argument's name and its former name (``"seed"``, ``"random_state"``).
    value, former_value : object
        What was given under each name; ``None`` under ``former`` means not given.
    default : object, optional
        ``value`` when the caller did not give it.
    stacklevel : int, default 3
        For the warning: 3 points at the caller of a function that calls this directly.
    """
    if former_value is None:
        return value
    warnings.warn(f"{owner}: '{former}' is the former name of '{name}'; use {name}=",
                  DeprecationWarning, stacklevel=stacklevel)
    if not _same(value, default) and not _same(value, former_value):
        raise ParameterError(f"{owner}({name}, {former})",
                             f"give the {name} once ({former} is its former name)",
                             (value, former_value))
    return former_value


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays of more than one element
        return False
