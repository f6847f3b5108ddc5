"""Relative-magnitudes restriction Delta^RM(Mbar): constraint matrices, grid and ARP test inversion."""

from __future__ import annotations

import math

import numpy as np

from ._arp import _arp_accept_no_nuisance, _arp_accept_nuisance


def _create_a_rm(num_pre, num_post, mbar, s, max_positive):
    """R's ``.create_A_RM``: Delta^RM with the largest pre-period change at ``s``."""
    n = num_pre + num_post
    At = np.zeros((n, n + 1))
    for r in range(n):
        At[r, r:r + 2] = (-1.0, 1.0)
    v = np.zeros(n + 1)
    v[num_pre + s - 1:num_pre + s + 1] = (-1.0, 1.0)
    if not max_positive:
        v = -v
    ub = np.vstack([np.tile(v, (num_pre, 1)), np.tile(mbar * v, (num_post, 1))])
    A = np.vstack([At - ub, -At - ub])
    A = A[np.sum(A * A, axis=1) > 1e-10]
    return np.delete(A, num_pre, axis=1)


def _rm_grid_bounds(b, S, num_pre, num_post, lv, mbar):
    """Default test-inversion grid for Delta^RM(Mbar) (HonestDiD pull request #53)."""
    se = math.sqrt(float(lv @ S[num_pre:, num_pre:] @ lv))
    maxpre = float(np.max(np.abs(np.diff(np.append(b[:num_pre], 0.0))))) if num_pre > 1 \
        else abs(float(b[0]))
    centre = float(lv @ b[num_pre:])
    half = mbar * float(np.arange(1, num_post + 1) @ np.abs(lv)) * maxpre + 20 * se
    return centre - half, centre + half


def _rm_accept(b, S, num_pre, num_post, lv, mbar, alpha, hybrid, grid, seed, force_lp=False):
    """R's ``computeConditionalCS_DeltaRM``: union over the location and sign of the
    largest pre-period change of the ARP confidence sets (post-period moments only)."""
    kappa = alpha / 10
    acc = np.zeros(len(grid), dtype=bool)
    for s in range(-(num_pre - 1), 1):
        for pos in (True, False):
            A = _create_a_rm(num_pre, num_post, mbar, s, pos)
            d = np.zeros(A.shape[0])
            if num_post > 1:
                rows = np.flatnonzero(np.any(A[:, num_pre:] != 0, axis=1))
                acc |= _arp_accept_nuisance(b, S, num_pre, num_post, A, d, lv, alpha, hybrid,
                                            kappa, grid, rows, seed, force_lp=force_lp)
            else:
                rows = np.flatnonzero(A[:, -1] != 0)
                acc |= _arp_accept_no_nuisance(b, S, num_pre, A[rows], d[rows], lv, alpha,
                                               hybrid, kappa, grid, seed)
    return acc
