"""Resuming after an interrupted run: who holds the run's Snakemake lock, and clearing a stale one.

Snakemake locks the files a run writes (``.snakemake/locks/N.output.lock`` and its
``N.input.lock`` partner, one path per line) and a run killed before it could unlock leaves them
behind, so the next run stops with a LockException. ``phm-eval run`` records its own process id
per results folder; when a lock covers this run's results folder and the process that took it no
longer exists, the lock is stale and is removed (only that lock: runs of other configurations in
the same folder keep theirs).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import PhmEvalError

SNAKEMAKE_DIR = Path(".snakemake")


def _pid_file(results_dir: str | Path) -> Path:
    name = str(Path(results_dir)).strip("/").replace("/", "_") or "results"
    return SNAKEMAKE_DIR / "phm-eval" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _inside(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def locks_on(results_dir: str | Path) -> list[Path]:
    """Snakemake lock files (both halves of each pair) covering files in ``results_dir``."""
    folder = Path(results_dir)
    found = []
    for out_lock in sorted((SNAKEMAKE_DIR / "locks").glob("*.output.lock")):
        try:
            paths = out_lock.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        if any(_inside(p, folder) for p in paths if p.strip()):
            found.append(out_lock)
            found.append(out_lock.with_name(out_lock.name.replace(".output.", ".input.")))
    return found


def acquire(results_dir: str | Path) -> tuple[Path, int]:
    """Record this process as the run writing ``results_dir``, clearing a stale lock first.

    Returns
    -------
    pid_file : Path
        The file recording this process (pass it to :func:`release`).
    n_cleared : int
        How many stale locks (left by a run that no longer exists) were removed.

    Raises
    ------
    PhmEvalError
        When another live ``phm-eval run`` is writing the same results folder.
    """
    pid_file = _pid_file(results_dir)
    owner = None
    if pid_file.exists():
        try:
            owner = int(pid_file.read_text().strip())
        except ValueError:
            owner = None
    if owner is not None and owner != os.getpid() and _alive(owner):
        raise PhmEvalError(
            f"another phm-eval run (process {owner}) is writing to {results_dir}/; wait for it "
            f"to finish, or stop it first. If no such run exists, delete {pid_file}.")
    stale = [p for p in locks_on(results_dir) if p.exists()]
    for lock in stale:
        lock.unlink(missing_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    return pid_file, len(stale) // 2


def release(pid_file: Path) -> None:
    """Forget this process as the run's writer."""
    try:
        if pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
    except OSError:
        pass
