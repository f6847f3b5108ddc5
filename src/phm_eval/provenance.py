"""Run provenance: what ran, on what, with which software.

Every run writes a manifest (JSON) naming the package versions, the platform,
the configuration, a SHA-256 digest of every input file, the random seed, the
git commit of the code (and whether it had uncommitted changes), and when the
run started and finished (UTC, ISO 8601).  Two runs with equal manifests used
the same code, inputs and settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1

#: Distributions whose versions every manifest records.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "phm-eval",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "lifelines",
    "duckdb",
    "snakemake",
    "matplotlib",
    "pyarrow",
)


def hash_file(path: str | Path, *, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks so that large inputs need little memory.

    Parameters
    ----------
    path : path
    algorithm : str, default "sha256"
        Any name :func:`hashlib.new` accepts.
    chunk_size : int, default 1 MiB
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``packages`` (distribution names), ``None`` if absent, plus Python."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def platform_info() -> dict[str, Any]:
    """Operating system, machine and Python build."""
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
    }


def git_info(directory: str | Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree holding ``directory``.

    ``dirty`` is True when tracked files differ from the commit (untracked files
    are ignored).  Returns ``None`` outside a git work tree or without git.
    """
    cwd = Path(directory) if directory is not None else Path.cwd()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status)}


def _utc_iso(moment: dt.datetime | str | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z; naive datetimes are taken to be UTC already."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return value.tolist()
    return str(value)


def describe_inputs(inputs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of each input; a folder contributes every file under it."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path)
    described = []
    for path in files:
        if not path.exists():
            described.append({"path": str(path), "bytes": None, "sha256": None, "missing": True})
            logger.warning("input %s does not exist; recorded as missing", path)
            continue
        described.append(
            {"path": str(path), "bytes": path.stat().st_size, "sha256": hash_file(path)}
        )
    return described


def build_manifest(
    config: Mapping[str, Any],
    inputs: Sequence[str | Path],
    *,
    seed: int | None,
    started_at: dt.datetime | str,
    finished_at: dt.datetime | str | None = None,
    extra: Mapping[str, Any] | None = None,
    repo_dir: str | Path | None = None,
    packages: Iterable[str] = DEFAULT_PACKAGES,
) -> dict[str, Any]:
    """The manifest as a dictionary (see :func:`write_manifest`)."""
    started = _utc_iso(started_at)
    finished = _utc_iso(finished_at if finished_at is not None else dt.datetime.now(dt.UTC))
    duration = (
        dt.datetime.fromisoformat(finished.replace("Z", "+00:00"))
        - dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    ).total_seconds()
    return {
        "manifest_version": MANIFEST_VERSION,
        "started_at": started,
        "finished_at": finished,
        "duration_seconds": duration,
        "seed": seed,
        "git": git_info(repo_dir if repo_dir is not None else Path(__file__).parent),
        "packages": package_versions(packages),
        "platform": platform_info(),
        "inputs": describe_inputs(inputs),
        "config": dict(config),
        "extra": dict(extra) if extra else {},
    }


def write_manifest(
    path: str | Path,
    config: Mapping[str, Any],
    inputs: Sequence[str | Path],
    *,
    seed: int | None,
    started_at: dt.datetime | str,
    finished_at: dt.datetime | str | None = None,
    extra: Mapping[str, Any] | None = None,
    repo_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write the run manifest as JSON and return it.

    Parameters
    ----------
    path : path
        Destination, e.g. ``results/manifest.json``; folders are created.  The
        file is written to a temporary name and renamed, so a reader never
        sees half a manifest.
    config : mapping
        The configuration the run used (as loaded, after defaults).
    inputs : sequence of paths
        Input files (or folders, expanded to their files); each is hashed.
    seed : int or None
        The random seed.
    started_at, finished_at : datetime or ISO string
        Start and end of the run; ``finished_at`` defaults to now.  Naive
        datetimes are taken to be UTC.
    extra : mapping, optional
        Anything else worth keeping (e.g. row counts per stage).
    repo_dir : path, optional
        Where to look for the git work tree; defaults to the installed
        package's folder, which is the project's own tree in a development install.

    Returns
    -------
    dict
        The manifest written.
    """
    manifest = build_manifest(config, inputs, seed=seed, started_at=started_at,
                              finished_at=finished_at, extra=extra, repo_dir=repo_dir)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps(manifest, indent=2, default=_jsonable, sort_keys=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)
    return json.loads(path.read_text(encoding="utf-8"))
