"""Run numerical work with single-threaded BLAS.

The products here are small or memory-bound, where BLAS threads cost more in
start-up and contention than they save (badly so on a shared machine); the
bootstrap parallelises over tiles with its own threads instead.
"""

from __future__ import annotations

import functools

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
