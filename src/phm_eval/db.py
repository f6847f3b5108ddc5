"""DuckDB connections configured the same way everywhere."""

from __future__ import annotations

import os

import duckdb


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection without progress bars (they would fill workflow logs).

    ``threads`` defaults to the ``PHM_EVAL_THREADS`` environment variable or DuckDB's default;
    ``memory_limit`` (e.g. ``"6GB"``) to ``PHM_EVAL_MEMORY_LIMIT`` or DuckDB's default.
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    threads = threads or (int(os.environ["PHM_EVAL_THREADS"]) if "PHM_EVAL_THREADS" in os.environ
                          else None)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    memory_limit = memory_limit or os.environ.get("PHM_EVAL_MEMORY_LIMIT")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con
