"""Multiplier bootstrap on influence functions, as matrix products.

For ``B`` draws of i.i.d. multipliers ``v`` (mean 0, variance 1) per unit (or
per cluster), the bootstrap sums are ``S = V @ psi`` (B x k).  They are formed
chunk by chunk of draws and tile by tile of units: multiplier bits are
expanded to a single-precision tile small enough to stay in cache and
multiplied by the matching rows of ``psi`` (single-threaded BLAS, optionally in
two worker threads).  The bootstrap's own Monte Carlo error is far larger than
float32 rounding.  Memory stays at one chunk of packed bits.

Multipliers are Rademacher by default, as in R's ``did`` (which draws them in
``BMisc::multiplier_bootstrap``); Mammen's two-point distribution is offered
too.  Standard errors are the interquartile range of the draws scaled to a
normal standard deviation, and the uniform band's critical value is the
``1 - alp`` quantile of the largest studentised draw across cells (R's
``mboot``, type-1 quantiles).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import norm

from ._threads import single_threaded_blas

_TINY = np.sqrt(np.finfo(float).eps) * 10
_IQR_NORMAL = norm.ppf(0.75) - norm.ppf(0.25)
_MAMMEN_THRESHOLD = int(round((np.sqrt(5) + 1) / (2 * np.sqrt(5)) * 65536))


def default_threads() -> int:
    """Bootstrap worker threads: ``PHM_EVAL_THREADS`` if set, else the cores this process may
    use, at most 2 (the tiles are memory-bound; more threads add little)."""
    if "PHM_EVAL_THREADS" in os.environ:
        return max(1, int(os.environ["PHM_EVAL_THREADS"]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


@single_threaded_blas
def multiplier_sums(
    blocks: list,
    n_rows: int,
    n_cols: int,
    biters: int,
    rng: np.random.Generator,
    kind: str = "rademacher",
    chunk_draws: int = 256,
    tile_rows: int = 4096,
    n_threads: int | None = None,
) -> np.ndarray:
    """Bootstrap sums ``S[b, j] = sum_i v[b, i] * M[i, j]``.

    Parameters
    ----------
    blocks : list of (rows, cols, M, A)
        The block's rows (only their number is used), the global columns
        ``cols`` it contributes to, its (rows x r) matrix ``M`` and an (r x
        len(cols)) matrix ``A`` (None for the identity): the block adds
        ``(V_block @ M) @ A``.  Multipliers are i.i.d. over rows, so each block
        draws its own.
    n_rows : int
        Total number of rows (units or clusters).
    n_cols : int
        Total number of columns of ``S``.
    biters : int
        Number of bootstrap draws.
    rng : numpy.random.Generator
    kind : {"rademacher", "mammen"}
        Mammen's points are used with probabilities rounded to 1/65536 and
        re-solved so the multipliers keep mean 0 and variance 1 exactly.
    chunk_draws, tile_rows : int
        Draws per chunk and rows per tile.
    n_threads : int, optional
        Worker threads (default :func:`default_threads`); the sums do not depend on it.

    Returns
    -------
    (biters x n_cols) float64 array.
    """
    if kind == "rademacher":
        # v = 2u - 1 with u a fair bit: S = 2 (U @ M) - colsum(M)
        low, high = -1.0, 1.0
    elif kind == "mammen":
        q = 1 - _MAMMEN_THRESHOLD / 65536  # P(v = high)
        low, high = -np.sqrt(q / (1 - q)), np.sqrt((1 - q) / q)
    else:
        raise ValueError(f"unknown multiplier distribution {kind!r}")
    tile_rows = max(8, tile_rows - tile_rows % 8)
    prepared = []
    colsum = np.zeros(n_cols)
    byte_off = 0
    tiles = []
    for bi, (_rows, cols, mat, A) in enumerate(blocks):
        m32 = np.ascontiguousarray(mat, dtype=np.float32)
        cols = np.asarray(cols)
        msum = np.asarray(mat, dtype=float).sum(axis=0)
        np.add.at(colsum, cols, msum if A is None else msum @ A)
        nb = m32.shape[0]
        prepared.append((cols, m32, byte_off, A))
        for a in range(0, nb, tile_rows):
            tiles.append((bi, a, min(a + tile_rows, nb)))
        # Rademacher bits are packed 8 rows per byte; Mammen uses 2 bytes per row
        byte_off += (nb + 7) // 8 if kind == "rademacher" else 2 * nb
    if n_threads is None:
        n_threads = default_threads()
    n_threads = max(1, min(n_threads, len(tiles)))
    # a fixed, contiguous assignment of tiles to workers keeps the sums reproducible
    bounds = np.linspace(0, len(tiles), n_threads + 1).astype(int)
    work = [tiles[bounds[j]:bounds[j + 1]] for j in range(n_threads)]

    def run(my_tiles, raw, m):
        per_block: dict = {}
        for bi, a, b in my_tiles:
            _, m32, off, _ = prepared[bi]
            if kind == "rademacher":
                packed = raw[:, off + a // 8: off + (b + 7) // 8]
                U = np.unpackbits(packed, axis=1, count=b - a).astype(np.float32)
            else:
                r16 = np.ascontiguousarray(raw[:, off + 2 * a: off + 2 * b]).view(np.uint16)
                U = (r16 >= _MAMMEN_THRESHOLD).astype(np.float32)
            part = U @ m32[a:b]
            if bi in per_block:
                per_block[bi] += part
            else:
                per_block[bi] = part.astype(np.float64)
        acc = np.zeros((m, n_cols))
        for bi, part in per_block.items():
            cols, _, _, A = prepared[bi]
            acc[:, cols] += part if A is None else part @ A
        return acc

    out = np.empty((biters, n_cols))
    bitgen = rng.bit_generator
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        done = 0
        while done < biters:
            m = min(chunk_draws, biters - done)
            words = (m * byte_off + 7) // 8
            raw = bitgen.random_raw(words).view(np.uint8)[: m * byte_off]
            raw = raw.reshape(m, byte_off)
            if pool is None:
                acc = run(work[0], raw, m)
            else:
                futures = [pool.submit(run, wk, raw, m) for wk in work]
                acc = futures[0].result()
                for f in futures[1:]:
                    acc += f.result()
            out[done:done + m] = low * colsum + (high - low) * acc
            done += m
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def type1_quantile(x: np.ndarray, p: float, axis: int = 0) -> np.ndarray:
    """R's ``quantile(type = 1)``: the ``ceil(m p)``-th order statistic."""
    xs = np.sort(x, axis=axis)
    m = xs.shape[axis]
    k = int(np.ceil(m * p - 4 * np.finfo(float).eps * m))
    k = min(max(k, 1), m)
    return np.take(xs, k - 1, axis=axis)


def boot_summary(bres: np.ndarray, alp: float, n_eff: int, n: int):
    """Standard errors and uniform critical value from bootstrap draws.

    Parameters
    ----------
    bres : (B x k) array
        ``sqrt(n_eff) * mean`` of multiplier-weighted influence functions.
    alp : float
        Significance level.
    n_eff, n : int
        Number of clusters (``n`` without clustering) and units.

    Returns
    -------
    se : (k,) array (NaN for degenerate columns)
    crit : float (NaN when no column is usable)
    """
    k = bres.shape[1]
    se = np.full(k, np.nan)
    finite = np.all(np.isfinite(bres), axis=0)
    ok = finite & (np.sum(np.where(finite, bres, 0.0) ** 2, axis=0) > _TINY)
    if not ok.any():
        return se, np.nan
    b = bres[:, ok]
    q75 = type1_quantile(b, 0.75)
    q25 = type1_quantile(b, 0.25)
    sigma = (q75 - q25) / _IQR_NORMAL
    se[ok] = sigma * np.sqrt(n_eff) / n
    sig = np.where(sigma > _TINY, sigma, np.nan)
    scaled = np.abs(b / sig)
    scaled = np.where(np.isnan(scaled), -np.inf, scaled)
    bt = scaled.max(axis=1)
    bt = bt[np.isfinite(bt)]
    crit = float(type1_quantile(bt, 1 - alp)) if len(bt) else np.nan
    return se, crit
