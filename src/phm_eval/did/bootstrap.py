"""Multiplier bootstrap on influence functions.

For ``B`` draws of i.i.d. multipliers ``v`` (mean 0, variance 1) per unit (or
per cluster), the bootstrap sums are ``S = V @ psi`` (B x k).  Both supported
multiplier distributions take two values, ``v = low + (high - low) u`` with
``u`` a Bernoulli bit, so ``S = low * colsum(psi) + (high - low) * U @ psi``.
``U @ psi`` is formed by a compiled kernel that tabulates the 256 possible sums
of each eight rows and adds one table row per draw (eight times fewer additions
than the product, and no multipliers are ever expanded to floating point).
Rows are processed in tiles, each tile's sums in single precision (the
bootstrap's own Monte Carlo error is far larger than float32 rounding of
centred columns; columns are centred first, see below) and accumulated in
double precision in a fixed tile order, so the result does not depend on the
number of worker threads.  Memory: a single-precision copy of the blocks and
one ``draws x columns`` array per tile.

Multipliers are Rademacher by default, as in R's ``did`` (which draws them in
``BMisc::multiplier_bootstrap``); Mammen's two-point distribution is offered
too.  Standard errors are the interquartile range of the draws scaled to a
normal standard deviation, and the uniform band's critical value is the
``1 - alp`` quantile of the largest studentised draw across cells (R's
``mboot``, type-1 quantiles).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import norm

from phm_eval.errors import renamed_argument

from ._threads import default_threads

_TINY = np.sqrt(np.finfo(float).eps) * 10
_IQR_NORMAL = norm.ppf(0.75) - norm.ppf(0.25)
_MAMMEN_THRESHOLD = int(round((np.sqrt(5) + 1) / (2 * np.sqrt(5)) * 65536))


def multiplier_sums(
    blocks: list,
    n_rows: int,
    n_cols: int,
    n_bootstrap: int | None = None,
    rng: np.random.Generator | None = None,
    *,
    kind: str = "rademacher",
    tile_rows: int = 4096,
    n_threads: int | None = None,
    biters: int | None = None,
) -> np.ndarray:
    """Bootstrap sums ``S[b, j] = sum_i v[b, i] * M[i, j]``.

    Parameters
    ----------
    blocks : list of (rows, cols, M, A)
        The block's rows (only their number is used), the global columns
        ``cols`` it contributes to, its (rows x r) matrix ``M`` (or a list of
        column pieces side by side, to avoid a copy) and an (r x
        len(cols)) matrix ``A`` (None for the identity): the block adds
        ``(V_block @ M) @ A``.  Multipliers are i.i.d. over rows, so each block
        draws its own.
    n_rows : int
        Total number of rows (units or clusters).
    n_cols : int
        Total number of columns of ``S``.
    n_bootstrap : int
        Number of bootstrap draws (required; :func:`~phm_eval.did.att_gt` passes its
        ``biters``).
    rng : numpy.random.Generator
        Required.
    kind : {"rademacher", "mammen"}
        Mammen's points are used with probabilities rounded to 1/65536 and
        re-solved so the multipliers keep mean 0 and variance 1 exactly.
    tile_rows : int
        Rows per tile (rounded to a multiple of 16); the random bits of each
        tile are drawn in order, so the draws depend on it but not on threads.
    n_threads : int, optional
        Worker threads (default :func:`default_threads`); the sums do not depend on it.
    biters : int, optional
        Former name of ``n_bootstrap`` (R's name, which only :func:`att_gt` keeps); still
        accepted with a ``DeprecationWarning``.

    Returns
    -------
    (n_bootstrap x n_cols) float64 array.
    """
    from ._kernels import binary_multiplier_sums

    n_bootstrap = renamed_argument("multiplier_sums", "n_bootstrap", n_bootstrap, "biters",
                                   biters)
    if n_bootstrap is None or rng is None:
        raise TypeError("multiplier_sums() needs n_bootstrap and rng")

    if kind == "rademacher":
        # v = 2u - 1 with u a fair bit: S = 2 (U @ M) - colsum(M)
        low, high = -1.0, 1.0
    elif kind == "mammen":
        q = 1 - _MAMMEN_THRESHOLD / 65536  # P(v = high)
        low, high = -np.sqrt(q / (1 - q)), np.sqrt((1 - q) / q)
    else:
        raise ValueError(f"unknown multiplier distribution {kind!r}")
    tile_rows = max(16, tile_rows - tile_rows % 16)
    colsum = np.zeros(n_cols)
    prepared = []  # (cols, A, padded float32 matrix, r, column means, count column)
    tiles = []  # (block index, first row, number of rows)
    for bi, (_rows, cols, mat, A) in enumerate(blocks):
        pieces = [np.asarray(m, dtype=float) for m in (mat if isinstance(mat, list) else [mat])]
        pieces = [m[:, None] if m.ndim == 1 else m for m in pieces]
        msum = np.concatenate([np.ones(len(m)) @ m for m in pieces])
        cols = np.asarray(cols)
        np.add.at(colsum, cols, msum if A is None else msum @ A)
        nb, r = pieces[0].shape[0], len(msum)
        # Single precision is ample for the multiplier sums of centred columns, but not
        # for raw columns with a large level (costs, say), which the combination with A
        # cancels afterwards. So columns are centred, U @ M = U @ (M - mean) + (U @ 1)
        # mean', with U @ 1 from a column of ones: the block's own if it has one (exact),
        # else an added one.
        count = None
        j = 0
        for m in pieces:
            last = m[:, -1]
            if count is None and nb and last[0] == 1.0 and np.all(last == 1.0):
                count = j + m.shape[1] - 1
            j += m.shape[1]
        mean = msum / max(nb, 1)
        if count is not None:
            mean[count] = 0.0
        width = r if count is not None else r + 1
        # zero rows and columns pad the block to whole pairs of 8-row groups and to
        # a multiple of 8 columns (one vector register): zero rows add nothing
        padded = np.zeros((-(-nb // 16) * 16, -(-width // 8) * 8), dtype=np.float32)
        j = 0
        for m in pieces:
            w = m.shape[1]
            np.subtract(m, mean[j:j + w], out=padded[:nb, j:j + w], casting="unsafe")
            j += w
        if count is None:
            count = r
            padded[:nb, r] = 1.0
        prepared.append((cols, A, padded, r, mean, count))
        for a in range(0, nb, tile_rows):
            tiles.append((bi, a, min(tile_rows, nb - a)))
    if n_threads is None:
        n_threads = default_threads()
    n_threads = max(1, min(n_threads, len(tiles)))
    # every tile has its own SFC64 stream, spawned from one seed drawn from rng
    seeds = np.random.SeedSequence(rng.integers(0, 2**63, size=4)).spawn(len(tiles))
    threshold = 0 if kind == "rademacher" else _MAMMEN_THRESHOLD

    def run(i):
        bi, a, size = tiles[i]
        padded = prepared[bi][2]
        state = np.random.SFC64(seeds[i]).state["state"]["state"].copy()
        out = np.zeros((n_bootstrap, padded.shape[1]), dtype=np.float32)
        binary_multiplier_sums(padded[a: a + -(-size // 16) * 16], state, n_bootstrap, threshold,
                               out)
        return out

    acc = [np.zeros((n_bootstrap, p[2].shape[1])) for p in prepared]
    if n_threads == 1:
        for i, (bi, _, _) in enumerate(tiles):
            acc[bi] += run(i)
    else:
        # tile sums are added in tile order, so the result does not depend on threads
        with ThreadPoolExecutor(n_threads) as pool:
            for (bi, _, _), part in zip(tiles, pool.map(run, range(len(tiles))), strict=True):
                acc[bi] += part
    out = np.tile(low * colsum, (n_bootstrap, 1))
    for (cols, A, _, r, mean, count), part in zip(prepared, acc, strict=True):
        part = (high - low) * (part[:, :r] + part[:, count:count + 1] * mean)
        out[:, cols] += part if A is None else part @ A
    return out


def type1_quantile(x: np.ndarray, p: float, *, axis: int = 0) -> np.ndarray:
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
