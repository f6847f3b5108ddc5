"""Strict JSON in and out: ``NaN`` never reaches a file, and a bad file is named.

JSON has no ``NaN`` or ``Infinity``; Python's :mod:`json` writes them anyway, and the files
then break every strict reader (browsers, Typst, ``jq``). A quantity that cannot be estimated is
written as ``null``, with its reason in a neighbouring field (e.g. ``note``), never as ``NaN``.

* :func:`to_jsonable` turns numpy and pandas values into plain Python and non-finite floats
  into ``None``, recursively;
* :func:`write_json` writes with ``allow_nan=False`` (after :func:`to_jsonable`, so it never
  fails on a non-finite number), through a temporary file so a reader never sees half a file;
* :func:`read_json` raises :class:`~phm_eval.errors.InputError` naming the file, line and
  column when it is not valid JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["read_json", "to_jsonable", "write_json"]
logger = logging.getLogger(__name__)

_NON_FINITE = re.compile(r"(?<![\w\"])(-?Infinity|NaN)(?![\w\"])")


def _timestamp(value: dt.datetime) -> str:
    """A midnight without a time zone as a date (``2021-03-04``), else ISO 8601 in full."""
    if value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()
    return value.isoformat()


def _key(key: Any) -> str | int | float | bool | None:
    key = to_jsonable(key)
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON-ready Python, with every non-finite number replaced by ``None``.

    Parameters
    ----------
    obj : object
        Nested mappings, sequences, numpy arrays and scalars, pandas objects (a DataFrame
        becomes a list of records), dates and timestamps, paths, dataclasses and objects with
        a ``to_dict()`` method.

    Returns
    -------
    object
        ``dict`` (string keys), ``list``, ``str``, ``int``, ``float`` (finite), ``bool`` or
        ``None``. ``NaN``, ``inf``, ``NaT`` and ``pd.NA`` become ``None``; timestamps at
        midnight become dates (``"2021-03-04"``), others ISO 8601 text; anything else
        unknown becomes its ``str``.
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else _timestamp(pd.Timestamp(obj).to_pydatetime())
    if isinstance(obj, dt.datetime):  # pandas.Timestamp included
        return _timestamp(obj.to_pydatetime() if isinstance(obj, pd.Timestamp) else obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, (pd.Timedelta, dt.timedelta, np.timedelta64)):
        return None if pd.isna(obj) else str(pd.Timedelta(obj))
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, complex):
        return str(obj)
    if isinstance(obj, Mapping):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (pd.Series, pd.Index, np.ndarray)):
        return [to_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray)
                                         else list(obj))]
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    return str(obj)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (``NaN`` and infinities as ``null``).

    Parameters
    ----------
    path : path
        The file; parent folders are created. It is replaced atomically.
    obj : object
        Anything :func:`to_jsonable` accepts.
    indent : int or None, default 2

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def read_json(path: str | os.PathLike[str], *,
              non_finite: Literal["error", "null", "warn"] = "error") -> Any:
    """Parse a JSON file, naming it in any error.

    Parameters
    ----------
    path : path
    non_finite : {"error", "null", "warn"}, default "error"
        What to do with ``NaN``/``Infinity``, which are not JSON: raise (strict), or read
        them as ``None`` (for results folders written before outputs were strict), with a
        logged warning naming the file (``"warn"``).

    Returns
    -------
    object

    Raises
    ------
    InputError
        The file is missing, not UTF-8, not valid JSON, or (strict) holds ``NaN`` or
        ``Infinity``; the message names the file and, for a syntax error, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not a UTF-8 text file: {exc}") from None
    seen: list[str] = []

    def as_null(name: str) -> None:
        seen.append(name)

    hook = _reject_constant if non_finite == "error" else as_null
    try:
        value = json.loads(text, parse_constant=hook)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON (line {exc.lineno}, column {exc.colno}): "
                                    f"{exc.msg}") from None
    except ValueError as exc:  # a NaN or Infinity constant under the strict hook
        match = _NON_FINITE.search(text)
        line = f" (line {text.count(chr(10), 0, match.start()) + 1})" if match else ""
        raise InputError(
            str(path), f"not valid JSON: holds {exc}{line}, which JSON does not allow; a "
            "quantity that cannot be estimated must be null with a reason. Rerun the stage "
            "that wrote this file") from None
    if seen and non_finite == "warn":
        logger.warning("%s holds %d NaN/Infinity value(s), which JSON does not allow; read as "
                       "null (not estimable)", path, len(seen))
    return value
