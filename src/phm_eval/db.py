"""DuckDB connections configured the same way everywhere."""

from __future__ import annotations

import os

import duckdb

#: DuckDB's own default is 80 % of the machine's memory for every connection, and a query uses
#: what it is given: at a million patients one aggregation took 7 GB. Every query of the workflow
#: runs at that size in 2 GB at the same speed (spilling where it must), so that is the default;
#: set ``PHM_EVAL_MEMORY_LIMIT`` (e.g. ``8GB``) for larger populations on larger machines.
DEFAULT_MEMORY_LIMIT = "2GB"


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection without progress bars (they would fill workflow logs).

    ``threads`` defaults to the ``PHM_EVAL_THREADS`` environment variable or DuckDB's default;
    ``memory_limit`` (e.g. ``"6GB"``) to ``PHM_EVAL_MEMORY_LIMIT`` or
    :data:`DEFAULT_MEMORY_LIMIT`.
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    threads = threads or (int(os.environ["PHM_EVAL_THREADS"]) if "PHM_EVAL_THREADS" in os.environ
                          else None)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    memory_limit = (memory_limit or os.environ.get("PHM_EVAL_MEMORY_LIMIT")
                    or DEFAULT_MEMORY_LIMIT)
    con.execute("SET memory_limit = ?", [memory_limit])
    return con
