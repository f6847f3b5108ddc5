"""Progress bars that show in a terminal and stay quiet in logs and CI."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(total: int | None = None, desc: str = "", unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar, disabled unless standard error is an interactive terminal (and not in CI)."""
    enabled = sys.stderr.isatty() and not os.environ.get("CI")
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, **kwargs)
