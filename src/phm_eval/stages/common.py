"""Helpers shared by workflow stages: outputs by name, disclosure policy, figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from ..disclosure import DisclosurePolicy  # noqa: E402


def output(smk, name: str) -> Path:
    """The job's output file whose name is ``name``."""
    for p in smk.output:
        if Path(p).name == name:
            return Path(p)
    raise KeyError(f"rule has no output named {name}")


def policy(smk) -> DisclosurePolicy:
    return DisclosurePolicy.from_config(smk.config.get("disclosure"))


def write_json(path: str | Path, obj: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
