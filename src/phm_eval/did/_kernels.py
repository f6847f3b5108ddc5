"""Compiled inner loops (numba) of the DiD engine.

Only loops that numpy cannot express without large temporaries live here; each is
checked against a plain numpy formulation in the tests.  Functions are compiled
on first use and cached on disk (``cache=True``), and release the GIL so that
the callers can run them in worker threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U = np.uint64


@njit(cache=True, nogil=True, inline="always")
def _sfc64_next(st):
    """One output of numpy's ``SFC64`` from the state ``st = (a, b, c, counter)``."""
    a, b, c, w = st[0], st[1], st[2], st[3]
    out = a + b + w
    st[3] = w + _U(1)
    st[0] = b ^ (b >> _U(11))
    st[1] = c + (c << _U(3))
    st[2] = ((c << _U(24)) | (c >> _U(40))) + out
    return out


@njit(cache=True, nogil=True)
def sfc64_raw(state: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (uint64) with the generator's next outputs (as ``SFC64.random_raw``)."""
    for i in range(out.shape[0]):
        out[i] = _sfc64_next(state)


@njit(cache=True, nogil=True, fastmath=True)
def binary_multiplier_sums(M: np.ndarray, state: np.ndarray, n_draws: int, threshold: int,
                           out: np.ndarray) -> None:
    """Add ``sum_r u[r, b] * M[r, :]`` to ``out[b, :]`` for ``n_draws`` draws of bits ``u``.

    The bits come from numpy's ``SFC64`` generator whose state ``state`` (uint64
    ``a, b, c, counter``, advanced in place) is consumed in this order: rows are
    taken sixteen at a time (a pair of eight-row groups); for ``threshold == 0``
    (fair bits) each output gives four draws, 16 bits per draw, bit ``k`` being
    row ``k`` of the pair; otherwise each draw takes four outputs, i.e. sixteen
    16-bit numbers ``x``, and row ``k``'s bit is ``x_k >= threshold``.

    For each eight-row group the 256 possible sums of its rows are tabulated
    once, after which a draw costs one table lookup per eight rows instead of
    eight multiply-adds.

    Parameters
    ----------
    M : (16 m, c) float array
        Rows padded with zeros to a multiple of 16 (zero rows add nothing).
    state : (4,) uint64 array
    n_draws : int
    threshold : int
        0 for fair bits, else the 16-bit threshold of a Bernoulli bit.
    out : (n_draws, c) array of M's dtype, updated in place
    """
    n, c = M.shape
    if n % 16 != 0 or out.shape[0] != n_draws or out.shape[1] != c:
        raise ValueError("M needs a multiple of 16 rows and out the shape (n_draws, M's columns)")
    t1 = np.zeros((256, c), M.dtype)
    t2 = np.zeros((256, c), M.dtype)
    thr = _U(threshold)
    n_words = (n_draws + 3) // 4
    buf = np.empty(n_words, np.uint64)
    by = buf.view(np.uint8)
    for r0 in range(0, n, 16):
        for k in range(8):
            step = 1 << k
            ra = M[r0 + k]
            rb = M[r0 + 8 + k]
            for v in range(step):
                for q in range(c):
                    t1[step + v, q] = t1[v, q] + ra[q]
                    t2[step + v, q] = t2[v, q] + rb[q]
        if threshold == 0:
            # four draws per output, 16 bits (two bytes, little-endian) per draw
            for i in range(n_words):
                buf[i] = _sfc64_next(state)
            for d in range(n_draws):
                v1 = by[2 * d]
                v2 = by[2 * d + 1]
                for q in range(c):
                    out[d, q] += t1[v1, q] + t2[v2, q]
        else:
            for d in range(n_draws):
                bits = 0
                for word in range(4):
                    x = _sfc64_next(state)
                    for h in range(4):
                        if ((x >> _U(16 * h)) & _U(0xFFFF)) >= thr:
                            bits |= 1 << (4 * word + h)
                v1 = bits & 0xFF
                v2 = bits >> 8
                for q in range(c):
                    out[d, q] += t1[v1, q] + t2[v2, q]


# ----------------------------------------------------------------------------- data layout
@njit(cache=True, nogil=True)
def leading_run(ids: np.ndarray) -> int:
    """Length of the run of equal values at the start of ``ids`` (0 if empty)."""
    N = ids.shape[0]
    if N == 0:
        return 0
    T = 1
    while T < N and ids[T] == ids[0]:
        T += 1
    return T


@njit(cache=True, nogil=True)
def scan_sorted_units(ids: np.ndarray, t: np.ndarray, g: np.ndarray, T: int, u0: int, u1: int,
                      max_distinct: int):
    """Check units ``u0 .. u1 - 1`` of a long panel laid out as ``T`` rows per unit, sorted
    by unit then period, and code their group ``g``.

    The layout holds when every unit's ``T`` rows have the same id, ids increase strictly
    from unit to unit (also across ``u0``) and every unit has the periods ``t[:T]``, which
    increase strictly.  Returns ``(ok, varying, codes, distinct, codes_ok, g_min)``: ``ok``
    False when the layout does not hold (then nothing else is meaningful); ``varying`` the
    first unit whose ``g`` changes over time (-1 if none); ``codes``/``distinct`` code each
    unit's first ``g`` into the distinct values in order of first appearance, by a linear
    scan of the few distinct values (``codes_ok`` False if there are more than
    ``max_distinct``); ``g_min`` the smallest ``g``.
    """
    n = u1 - u0
    codes = np.empty(n, np.int64)
    distinct = np.empty(max_distinct, g.dtype)
    g_min = g[u0 * T] if n > 0 else g.dtype.type(0)
    for j in range(1, T):
        if not t[j] > t[j - 1]:
            return False, -1, codes, distinct[:0], False, g_min
    varying = -1
    n_distinct = 0
    last = 0
    codes_ok = True
    for k in range(u0, u1):
        base = k * T
        unit = ids[base]
        if k > 0 and not unit > ids[base - T]:
            return False, -1, codes, distinct[:0], False, g_min
        gk = g[base]
        for j in range(T):
            if ids[base + j] != unit or t[base + j] != t[j]:
                return False, -1, codes, distinct[:0], False, g_min
            gj = g[base + j]
            if gj != gk and varying < 0:
                varying = k
            if gj < g_min:
                g_min = gj
        if not codes_ok:
            continue
        if n_distinct > 0 and distinct[last] == gk:
            codes[k - u0] = last
            continue
        found = -1
        for d in range(n_distinct):
            if distinct[d] == gk:
                found = d
                break
        if found < 0:
            if n_distinct == max_distinct:
                codes_ok = False
                continue
            distinct[n_distinct] = gk
            found = n_distinct
            n_distinct += 1
        codes[k - u0] = found
        last = found
    return True, varying, codes, distinct[:n_distinct], codes_ok, g_min


@njit(cache=True, nogil=True)
def first_varying_row(mat: np.ndarray) -> int:
    """Index of the first row of ``mat`` whose values are not all equal (-1 if none)."""
    n, T = mat.shape
    for i in range(n):
        v = mat[i, 0]
        for j in range(1, T):
            if mat[i, j] != v:
                return i
    return -1


@njit(cache=True, nogil=True)
def scatter_by_code(src: np.ndarray, codes: np.ndarray, u0: int, u1: int, next_pos: np.ndarray,
                    out: np.ndarray, fill: float, rank: np.ndarray) -> None:
    """Counting-sort scatter of rows ``u0 .. u1 - 1``: row ``i`` goes to
    ``r = next_pos[codes[i]]`` (then incremented), ``out[r, :k] = src[i]`` with the columns
    beyond ``k`` set to ``fill``, and ``rank[i] = r``.  Rows of one code keep their order;
    disjoint row ranges with disjoint positions can run in parallel.  Reading ``src`` in
    order and writing to the few sequential streams of a counting sort is much faster than
    gathering rows in sorted order."""
    k = src.shape[1]
    width = out.shape[1]
    for i in range(u0, u1):
        c = codes[i]
        r = next_pos[c]
        next_pos[c] = r + 1
        rank[i] = r
        for j in range(k):
            out[r, j] = src[i, j]
        for j in range(k, width):
            out[r, j] = fill


@njit(cache=True, nogil=True)
def scatter_rows(src: np.ndarray, rank: np.ndarray, out: np.ndarray) -> None:
    """``out[rank[i], :] = src[i, :]`` (see :func:`scatter_by_code` for why a scatter)."""
    k = src.shape[1]
    for i in range(rank.shape[0]):
        r = rank[i]
        for j in range(k):
            out[r, j] = src[i, j]


# ----------------------------------------------------------------------------- regressions
@njit(cache=True, nogil=True)
def logit_gradient_hessian(Z: np.ndarray, D: np.ndarray, w: np.ndarray, beta: np.ndarray,
                           grad: np.ndarray, H: np.ndarray) -> None:
    """Gradient ``Z'(w (D - p))`` and information ``Z' diag(w p (1 - p)) Z`` of a weighted
    logistic log-likelihood at ``beta`` (``p = expit(Z beta)``), in one pass over rows."""
    n, p = Z.shape
    grad[:] = 0.0
    H[:, :] = 0.0
    for i in range(n):
        eta = 0.0
        for j in range(p):
            eta += Z[i, j] * beta[j]
        prob = 1.0 / (1.0 + np.exp(-eta))
        r = w[i] * (D[i] - prob)
        s = w[i] * prob * (1.0 - prob)
        for j in range(p):
            zj = Z[i, j]
            grad[j] += zj * r
            zs = zj * s
            for k in range(j + 1):
                H[j, k] += zs * Z[i, k]
    for j in range(p):
        for k in range(j):
            H[k, j] = H[j, k]


@njit(cache=True, nogil=True)
def weighted_gram(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``X' diag(v) X`` in one pass over rows."""
    n, p = X.shape
    G = np.zeros((p, p))
    for i in range(n):
        for j in range(p):
            xv = X[i, j] * v[i]
            for k in range(j + 1):
                G[j, k] += xv * X[i, k]
    for j in range(p):
        for k in range(j):
            G[k, j] = G[j, k]
    return G


@njit(cache=True, nogil=True)
def stacked_differences(Y: np.ndarray, starts: np.ndarray, stops: np.ndarray, cs: np.ndarray,
                        bs: np.ndarray) -> np.ndarray:
    """Rows ``starts[k]:stops[k]`` of ``Y[:, cs] - Y[:, bs]``, stacked block after block."""
    n1 = 0
    for k in range(starts.shape[0]):
        n1 += stops[k] - starts[k]
    m = cs.shape[0]
    out = np.empty((n1, m))
    r = 0
    for k in range(starts.shape[0]):
        for i in range(starts[k], stops[k]):
            for j in range(m):
                out[r, j] = Y[i, cs[j]] - Y[i, bs[j]]
            r += 1
    return out


@njit(cache=True, nogil=True)
def weighted_crossprods(X: np.ndarray, Y: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``X' diag(V[:, q]) Y`` for every weight column ``q``: a (q, p, m) array, one pass."""
    n, p = X.shape
    m = Y.shape[1]
    nq = V.shape[1]
    out = np.zeros((nq, p, m))
    for i in range(n):
        for q in range(nq):
            vq = V[i, q]
            for j in range(p):
                xv = X[i, j] * vq
                for k in range(m):
                    out[q, j, k] += xv * Y[i, k]
    return out


@njit(cache=True, nogil=True)
def dr_influence(dY: np.ndarray, X: np.ndarray, beta: np.ndarray, a: np.ndarray,
                 l0: np.ndarray, l1: np.ndarray, s: np.ndarray, G: np.ndarray,
                 eta0: np.ndarray, eta1: np.ndarray) -> np.ndarray:
    """Rows of the doubly robust influence function, one pass:
    ``psi[i] = a_i (dY_i - X_i beta) + l0_i eta0 + l1_i eta1 - s_i X_i G``."""
    n, m = dY.shape
    p = X.shape[1]
    out = np.empty((n, m))
    for i in range(n):
        ai = a[i]
        si = s[i]
        for k in range(m):
            fit = 0.0
            corr = 0.0
            for j in range(p):
                fit += X[i, j] * beta[j, k]
                corr += X[i, j] * G[j, k]
            out[i, k] = ai * (dY[i, k] - fit) + l0[i] * eta0[k] + l1[i] * eta1[k] - si * corr
    return out
