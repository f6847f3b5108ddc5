"""Multiplier bootstrap on influence functions, as matrix products.

For ``B`` draws of i.i.d. multipliers ``v`` (mean 0, variance 1) per unit (or
per cluster), the bootstrap sums are ``S = V @ psi`` (B x k).  They are formed
in chunks of draws, block by block (see :class:`~.influence.BlockInfluence`),
in single precision (the bootstrap's own Monte Carlo error is far larger than
float32 rounding), so memory stays at one chunk of multipliers.

Multipliers are Rademacher by default, as in R's ``did`` (which draws them in
``BMisc::multiplier_bootstrap``); Mammen's two-point distribution is offered
too.  Standard errors are the interquartile range of the draws scaled to a
normal standard deviation, and the uniform band's critical value is the
``1 - alp`` quantile of the largest studentised draw across cells (R's
``mboot``, type-1 quantiles).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

_TINY = np.sqrt(np.finfo(float).eps) * 10
_IQR_NORMAL = norm.ppf(0.75) - norm.ppf(0.25)
_MAMMEN_THRESHOLD = int(round((np.sqrt(5) + 1) / (2 * np.sqrt(5)) * 65536))


def multiplier_sums(
    blocks: list,
    n_rows: int,
    n_cols: int,
    biters: int,
    rng: np.random.Generator,
    kind: str = "rademacher",
    max_chunk_bytes: int = 48 * 2**20,
) -> np.ndarray:
    """Bootstrap sums ``S[b, j] = sum_i v[b, i] * M[i, j]``.

    Parameters
    ----------
    blocks : list of (slice, cols, matrix)
        Rows ``slice`` of the multiplier matrix, the global columns ``cols`` the
        block contributes to, and its (rows x len(cols)) values.
    n_rows : int
        Total number of rows (units or clusters); one multiplier per row and draw.
    n_cols : int
        Total number of columns of ``S``.
    biters : int
        Number of bootstrap draws.
    rng : numpy.random.Generator
    kind : {"rademacher", "mammen"}
    max_chunk_bytes : int
        Memory bound for one chunk of single-precision multipliers.

    Returns
    -------
    (biters x n_cols) float64 array.
    """
    prepared = []
    colsum = np.zeros(n_cols)
    for sl, cols, mat in blocks:
        m32 = np.ascontiguousarray(mat, dtype=np.float32)
        prepared.append((sl, np.asarray(cols), m32))
        np.add.at(colsum, cols, mat.sum(axis=0))
    if kind == "rademacher":
        # v = 2u - 1 with u a fair bit: S = 2 (U @ M) - colsum(M)
        low, high = -1.0, 1.0
    elif kind == "mammen":
        q = 1 - _MAMMEN_THRESHOLD / 65536  # P(v = high) after 16-bit discretisation
        low, high = -np.sqrt(q / (1 - q)), np.sqrt((1 - q) / q)
    else:
        raise ValueError(f"unknown multiplier distribution {kind!r}")
    per_draw = max(n_rows * 4, 1)
    chunk = int(max(8, min(biters, max_chunk_bytes // per_draw)))
    chunk -= chunk % 8 if chunk > 8 else 0
    out = np.empty((biters, n_cols))
    bitgen = rng.bit_generator
    done = 0
    while done < biters:
        m = min(chunk, biters - done)
        U = _bits(bitgen, m, n_rows) if kind == "rademacher" else _mammen_bits(bitgen, m, n_rows)
        acc = np.zeros((m, n_cols))
        for sl, cols, m32 in prepared:
            acc[:, cols] += U[:, sl] @ m32
        out[done:done + m] = low * colsum + (high - low) * acc
        done += m
    return out


def _bits(bitgen, m: int, n: int) -> np.ndarray:
    """(m x n) float32 matrix of fair 0/1 bits."""
    nbytes = (n + 7) // 8
    words = (m * nbytes + 7) // 8
    raw = bitgen.random_raw(words).view(np.uint8)[: m * nbytes].reshape(m, nbytes)
    return np.unpackbits(raw, axis=1, count=n).astype(np.float32)


def _mammen_bits(bitgen, m: int, n: int) -> np.ndarray:
    """(m x n) float32 indicators of the upper Mammen point."""
    words = (m * n + 3) // 4
    raw = bitgen.random_raw(words).view(np.uint16)[: m * n].reshape(m, n)
    return (raw >= _MAMMEN_THRESHOLD).astype(np.float32)


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
