"""Helpers shared by workflow stages: outputs by name, disclosure policy, figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")

from ..disclosure import DisclosurePolicy  # noqa: E402

# Stages write JSON strictly: NaN and infinities become null, never invalid JSON.
from ..jsonio import write_json  # noqa: E402, F401
from .call import StageCall  # noqa: E402


def output(call: StageCall, name: str) -> Path:
    """The output of ``call`` whose file name is ``name`` (``"effects.json"``): stages name
    the files they write, the rule (or the caller) says where they go."""
    for path in call.outputs:
        if path.name == name:
            return path
    raise KeyError(f"rule has no output named {name}")


def policy(call: StageCall) -> DisclosurePolicy:
    """The disclosure policy in the call's ``disclosure`` params."""
    return DisclosurePolicy.from_config(call.params["disclosure"])


def write_disclosed(disclosed, path: str | Path, decimals: int | None = None) -> Path:
    """Write a disclosure-controlled table as CSV, with the ``.sdc.json`` sidecar naming its
    column roles (so the release check knows which columns are counts)."""
    from ..disclosure.tables import SIDECAR_SUFFIX

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = disclosed.formatted(decimals=decimals)
    frame.to_csv(path, index=not isinstance(frame.index, pd.RangeIndex))
    path.with_name(path.stem + SIDECAR_SUFFIX).write_text(
        json.dumps(disclosed.column_roles(), indent=2) + "\n", encoding="utf-8")
    return path
