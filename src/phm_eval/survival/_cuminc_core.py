"""Cumulative incidence estimates, their variances, and Gray's (1988) K-sample test.

The arithmetic reproduces ``cmprsk::cuminc`` (Fortran ``cinc`` and ``crstm``)
term for term, including its tie corrections, but as cumulative sums over the
distinct times instead of loops over people. Arrays are sorted by time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phm_eval.survival._data import distinct_times

# cells of the (time x group x group) arrays handled at once in Gray's test
BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class Curve:
    """One cumulative incidence function: jumps, variances and follow-up."""

    time: np.ndarray  # distinct times with an event of the cause
    estimate: np.ndarray
    variance: np.ndarray
    max_time: float  # largest follow-up time in the group


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def cinc(time: np.ndarray, failed: np.ndarray, cause: np.ndarray) -> Curve:
    """Aalen-Johansen cumulative incidence and cuminc's delta-method variance.

    Parameters
    ----------
    time : array
        Sorted follow-up times of one group.
    failed : bool array
        Any event (not censored).
    cause : bool array
        The event is of the cause being estimated.
    """
    uniq, first, inverse = distinct_times(time)
    rs = (time.size - first).astype(float)
    nd1 = np.bincount(inverse, weights=cause, minlength=uniq.size)
    nd2 = np.bincount(inverse, weights=failed & ~cause, minlength=uniq.size)
    nd = nd1 + nd2
    step = (rs - nd) / rs
    fkn = np.cumprod(step)  # overall Kaplan-Meier just after each time
    fk = np.concatenate(([1.0], fkn[:-1]))  # ... and just before
    est = np.cumsum(fk * nd1 / rs)

    t3_other = _safe_div(np.ones_like(fkn), fkn)
    # tie correction (1 - (d - 1)/(n - 1)) as in cinc
    t5_2 = np.where(nd2 > 1, 1 - _safe_div(nd2 - 1, rs - 1), 1.0)
    t6_2 = np.where((nd2 > 0) & (fkn > 0), fk**2 * t5_2 * nd2 / rs**2, 0.0)
    t4_2 = est * t3_other
    t5_1 = np.where(nd1 > 1, 1 - _safe_div(nd1 - 1, rs - 1), 1.0)
    t6_1 = np.where(nd1 > 0, fk**2 * t5_1 * nd1 / rs**2, 0.0)
    t4_1 = 1 + t3_other * est
    v1 = np.cumsum(t4_2**2 * t6_2 + t4_1**2 * t6_1)
    v2 = np.cumsum(t3_other * t4_2 * t6_2 + t3_other * t4_1 * t6_1)
    v3 = np.cumsum(t3_other**2 * t6_2 + t3_other**2 * t6_1)
    var = v1 + est**2 * v3 - 2 * est * v2
    jump = nd1 > 0
    return Curve(time=uniq[jump], estimate=est[jump], variance=var[jump],
                 max_time=float(time[-1]))


def gray_stratum(
    time: np.ndarray, mark: np.ndarray, group: np.ndarray, n_groups: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score and variance of Gray's test within one stratum (``crst``).

    ``mark`` is 0 censored, 1 the cause tested, 2 any other cause; ``group`` is
    coded ``0..n_groups-1``. Returns the scores of the first ``n_groups - 1``
    groups and their covariance.
    """
    ng = n_groups
    uniq, first, inverse = distinct_times(time)
    counts = np.zeros((uniq.size, ng, 3))
    np.add.at(counts, (inverse, group, mark), 1.0)
    per_time = counts.sum(axis=2)
    size = per_time.sum(axis=0)
    rs_all = size - np.vstack((np.zeros((1, ng)), np.cumsum(per_time, axis=0)[:-1]))
    d1_all, d2_all = counts[:, :, 1], counts[:, :, 2]
    keep = (d1_all.sum(axis=1) + d2_all.sum(axis=1)) > 0
    rs, d1, d2 = rs_all[keep], d1_all[keep], d2_all[keep]
    td = d1 + d2
    pos = rs > 0

    skm = np.cumprod(np.where(pos, _safe_div(rs - td, rs), 1.0), axis=0)
    skmm = np.vstack((np.ones((1, ng)), skm[:-1]))
    inc1 = np.where(pos, _safe_div(skmm * d1, rs), 0.0)
    f1m = np.vstack((np.zeros((1, ng)), np.cumsum(inc1, axis=0)[:-1]))
    t1 = np.where(pos, _safe_div(rs, skmm), 0.0)
    tr = t1.sum(axis=1)
    tq = np.where(pos, _safe_div(rs * (1 - f1m), skmm), 0.0).sum(axis=1)
    nd1 = d1.sum(axis=1)
    f = np.cumsum(nd1 / tr)
    fm = np.concatenate(([0.0], f[:-1]))
    fb = (1 - fm) ** rho

    scale = _safe_div(nd1, tr * (1 - fm))
    score = np.where(pos, fb[:, None] * (d1 - nd1[:, None] * _safe_div(rs * (1 - f1m),
                                                                     skmm * tq[:, None])), 0.0)
    s = score.sum(axis=0)

    # events of the cause tested
    has1 = (nd1 > 0)[:, None] & pos
    t4 = np.where(skm > 0, 1 - _safe_div((1 - f)[:, None] * np.ones_like(skm), skm), 1.0)
    t5 = np.where(nd1[:, None] > 1, 1 - _safe_div((nd1 - 1)[:, None] * np.ones_like(skmm),
                                                  tr[:, None] * skmm - 1), 1.0)
    t3 = np.where(has1, t5 * skmm * nd1[:, None] * _safe_div(np.ones_like(rs),
                                                             tr[:, None] * rs), 0.0)
    # events of other causes
    has2 = (skm > 0) & (d2 > 0)
    t4o = np.where(has2, _safe_div((1 - f)[:, None] * np.ones_like(skm), skm), 0.0)
    t5o = np.where(d2 > 1, 1 - _safe_div(d2 - 1, rs - 1), 1.0)
    t3o = np.where(has2, t5o * _safe_div(skmm**2 * d2, rs**2), 0.0)
    v3 = (t4**2 * t3).sum(axis=0) + (t4o**2 * t3o).sum(axis=0)

    # the (time x group x group) terms, in blocks of times to bound memory with many groups
    v2 = np.zeros((ng, ng))
    v = np.zeros((ng, ng))
    c_carry = np.zeros((ng, ng))
    block = max(1, BLOCK_CELLS // (ng * ng))
    for lo in range(0, rs.shape[0], block):
        sl = slice(lo, lo + block)
        a = fb[sl, None, None] * (np.einsum("ki,ij->kij", t1[sl], np.eye(ng))
                                  - t1[sl, :, None] * t1[sl, None, :] / tr[sl, None, None])
        c = c_carry + np.cumsum(np.where(a != 0, a * scale[sl, None, None], 0.0), axis=0)
        big_t1 = a - t4[sl, None, :] * c
        v2 += np.einsum("kil,kl->il", big_t1, t4[sl] * t3[sl])
        v += np.einsum("kil,kjl,kl->ij", big_t1, big_t1, t3[sl])
        t1o = t4o[sl, None, :] * c
        v2 -= np.einsum("kil,kl->il", t1o, t4o[sl] * t3o[sl])
        v += np.einsum("kil,kjl,kl->ij", t1o, t1o, t3o[sl])
        c_carry = c[-1]

    cf = c_carry
    v += (cf * v3[None, :]) @ cf.T + cf @ v2.T + v2 @ cf.T
    return s[: ng - 1], v[: ng - 1, : ng - 1]
