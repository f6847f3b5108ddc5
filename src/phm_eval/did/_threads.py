"""Threads in the DiD engine: single-threaded BLAS, and our own worker threads.

The products here are small or memory-bound, where BLAS threads cost more in
start-up and contention than they save (badly so on a shared machine); the
engine parallelises independent pieces (cohorts, halves of the units, bootstrap
tiles) with its own threads instead, running numpy and compiled kernels that
release the GIL.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def single_threaded_blas(func):
    """Decorator: call ``func`` with BLAS limited to one thread."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _controller
        if _controller is None:
            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


def default_threads() -> int:
    """Worker threads: ``PHM_EVAL_THREADS`` if set, else the cores this process may use, at
    most 2 (the work is memory-bound; more threads add little)."""
    if "PHM_EVAL_THREADS" in os.environ:
        return max(1, int(os.environ["PHM_EVAL_THREADS"]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def map_in_threads(fn: Callable, items: Iterable, n_threads: int | None = None) -> list:
    """``[fn(x) for x in items]``, in order, on up to ``n_threads`` worker threads (default
    :func:`default_threads`); in the calling thread when one thread or one item."""
    items = list(items)
    n_threads = min(default_threads() if n_threads is None else n_threads, len(items))
    if n_threads <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(fn, items))
