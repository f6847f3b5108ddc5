"""Critical values: R's normal stream, R's quantiles, folded and truncated normal quantiles."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from ._common import _EPS


@lru_cache(maxsize=8)
def _r_rnorm(n: int, seed: int) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (Mersenne-Twister, inversion), read-only.

    R seeds its generator by scrambling ``seed`` with an LCG (``RNG_Init``), draws
    uniforms ``y * 2^-32`` and turns two of them into one normal by inversion with
    2^27 resolution (``norm_rand``).  numpy's MT19937 gives the same 32-bit stream
    once given R's state.
    """
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    key = []
    for _ in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        key.append(s)
    bg = np.random.MT19937()
    bg.state = {"bit_generator": "MT19937",
                "state": {"key": np.array(key[1:], dtype=np.uint32), "pos": 624}}
    u = bg.random_raw(2 * n).astype(np.float64) * 2.3283064365386963e-10
    half = 0.5 * 2.328306437080797e-10
    u = np.where(u <= 0.0, half, np.where(1.0 - u <= 0.0, 1.0 - half, u)).reshape(n, 2)
    big = 134217728.0
    z = ndtri((np.floor(big * u[:, 0]) + u[:, 1]) / big)
    z.setflags(write=False)
    return z


def _r_rmvnorm(n: int, sigma: np.ndarray, seed: int) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (eigen square root)."""
    p = sigma.shape[0]
    lam, vec = np.linalg.eigh((sigma + sigma.T) / 2)
    root = (vec * np.sqrt(np.maximum(lam, 0.0))) @ vec.T
    return _r_rnorm(n * p, seed).reshape(n, p) @ root.T


def _quantile7(x: np.ndarray, p: float) -> float:
    """R's ``quantile(x, p)`` (type 7)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    index = 1 + (n - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    part = np.partition(x, sorted({lo - 1, hi - 1}))
    qlo = part[lo - 1]
    xhi = part[hi - 1]
    h = index - lo
    if index > lo and xhi != qlo:
        return float((1 - h) * qlo + h * xhi)
    return float(qlo)


class _FoldedNormal:
    """Quantile ``p`` of ``|N(mu, 1)|``: R's simulation (10^6 draws) or exact."""

    def __init__(self, p: float, seed: int, exact: bool):
        self.p, self.exact = p, exact
        self.draws = None if exact else _r_rnorm(1_000_000, seed)
        self._cache: dict = {}

    def q(self, mu: float) -> float:
        if mu in self._cache:
            return self._cache[mu]
        if self.exact:
            a = abs(mu)
            f = lambda c: ndtr(c - a) - ndtr(-c - a) - self.p  # noqa: E731
            out = brentq(f, 0.0, a + 10.0, xtol=1e-15, rtol=4 * _EPS, maxiter=200)
        else:
            out = _quantile7(np.abs(self.draws + mu), self.p)
        self._cache[mu] = out
        return out


def _trunc_norm_quantile(p, lo, hi, mu=0.0, sd=1.0):
    """Quantile ``p`` of N(mu, sd^2) truncated to [lo, hi] (R's ``TruncatedNormal::norminvp``)."""
    a, b = (lo - mu) / sd, (hi - mu) / sd
    if not a < b:
        return math.nan
    if a > 0:  # upper tail: work with survival functions on the log scale
        la, lb = log_ndtr(-a), log_ndtr(-b)
        lq = la + math.log1p(-p * -math.expm1(lb - la)) if np.isfinite(lb) else \
            la + math.log1p(-p)
        return mu - sd * float(ndtri_exp(lq))
    la, lb = log_ndtr(a), log_ndtr(b)
    if np.isfinite(la):
        lq = lb + math.log1p(-(1 - p) * -math.expm1(la - lb))
    else:
        lq = lb + math.log(p)
    return mu + sd * float(ndtri_exp(lq))
