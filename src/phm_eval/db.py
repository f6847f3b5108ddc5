"""DuckDB connections configured the same way everywhere, within the memory a job has.

The memory limit and threads of every connection come, in this order, from
``PHM_EVAL_MEMORY_LIMIT`` / ``PHM_EVAL_THREADS`` set by the user, from the workflow job's own
resources (``resources: mem_mb`` and ``threads``, which :func:`phm_eval.workflow_support.run_stage`
passes on), or from :data:`DEFAULT_MEMORY_LIMIT`. Queries that need more spill to
``PHM_EVAL_TEMP_DIR`` (the run's ``internal/tmp/``) instead of failing; a query that still
cannot fit is reported by :func:`out_of_memory_message` in one line that says what to change.
"""

from __future__ import annotations

import os
import re

import duckdb

#: Without a job's resources: every query of the workflow runs at a million patients in 2 GB at
#: the same speed (spilling where it must); DuckDB's own default is 80 % of the machine for
#: every connection, which several jobs side by side would exceed.
DEFAULT_MEMORY_LIMIT = "2GB"
#: Share of a job's declared memory given to DuckDB (the rest is Python, pandas and numpy).
DUCKDB_SHARE_OF_JOB = 0.6

MEMORY_ENV, THREADS_ENV, TEMP_ENV = ("PHM_EVAL_MEMORY_LIMIT", "PHM_EVAL_THREADS",
                                     "PHM_EVAL_TEMP_DIR")


def memory_limit_for_job(mem_mb: float | None) -> str | None:
    """DuckDB's memory limit for a job that may use ``mem_mb`` megabytes in all (a workflow
    job passes the part of its memory meant for DuckDB: :func:`phm_eval.job_memory.duckdb_mb`)."""
    if not mem_mb or mem_mb <= 0:
        return None
    return f"{max(64, int(mem_mb * DUCKDB_SHARE_OF_JOB))}MB"


def connect(threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection without progress bars (they would fill workflow logs).

    Parameters
    ----------
    threads : int, optional
        Default ``PHM_EVAL_THREADS`` or DuckDB's default.
    memory_limit : str, optional
        E.g. ``"6GB"``; default ``PHM_EVAL_MEMORY_LIMIT`` or :data:`DEFAULT_MEMORY_LIMIT`.
    temp_directory : str, optional
        Where queries spill; default ``PHM_EVAL_TEMP_DIR`` or DuckDB's default.
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    threads = threads or (int(os.environ[THREADS_ENV]) if THREADS_ENV in os.environ else None)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    memory_limit = memory_limit or os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
    con.execute("SET memory_limit = ?", [memory_limit])
    temp_directory = temp_directory or os.environ.get(TEMP_ENV)
    if temp_directory:
        os.makedirs(temp_directory, exist_ok=True)
        con.execute("SET temp_directory = ?", [temp_directory])
    return con


def out_of_memory_message(exc: BaseException, stage: str) -> str:
    """One line for a query that did not fit: how much it had, and which setting to change."""
    limit = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
    used = re.search(r"\(([^()]*used)\)", str(exc))
    detail = f" ({used.group(1)})" if used else ""
    return (f"stage {stage} ran out of memory in DuckDB with a limit of {limit}{detail}: give "
            f"the job more memory (a profile's set-resources mem_mb for this rule, or "
            f"`phm-eval run` on a machine with more), or set {MEMORY_ENV} (e.g. 8GB) to raise "
            "the limit directly")


def machine_memory_mb() -> int | None:
    """The memory this process may use in all, in MB: the machine's physical memory, or the
    container's limit (cgroup) when smaller; None when it cannot be read."""
    candidates = []
    try:
        candidates.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path, encoding="ascii").read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            candidates.append(int(text) / 2**20)
    return int(min(candidates)) if candidates else None
