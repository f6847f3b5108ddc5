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


def output(smk, name: str) -> Path:
    """The job's output file whose name is ``name``."""
    for p in smk.output:
        if Path(p).name == name:
            return Path(p)
    raise KeyError(f"rule has no output named {name}")


def policy(smk) -> DisclosurePolicy:
    return DisclosurePolicy.from_config(smk.params.disclosure)


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
