"""Greedy nearest-neighbour matching: hand-checked cases and a step-by-step reference."""

from __future__ import annotations

import numpy as np
import pytest

from phm_eval.matching.nearest import (
    CONTROLS_EXHAUSTED,
    NO_CONTROL_IN_STRATUM,
    OUTSIDE_CALIPER,
    _partial_sort,
    greedy_nearest,
)


def _reference(distance, treat, ratio, replace, caliper, strata, order):
    """MatchIt's nearest-neighbour search walked one sorted position at a time.

    Written from the description of MatchIt 4.7.2's ``find_control_vec``: from
    the treated unit (or, in later rounds, from its outermost controls so far) step
    alternately left and right, skipping treated, used and other-stratum units; a
    side stops at its first control beyond the caliper, after ``k`` finds, or when
    ``k`` finds are strictly nearer than its next control; keep the ``k`` nearest.
    """
    n = len(distance)
    cal = np.inf if caliper is None else caliper
    sort_idx = np.argsort(distance, kind="stable")
    pos = np.empty(n, dtype=int)
    pos[sort_idx] = np.arange(n)
    treated_rows = np.flatnonzero(treat)
    eligible = np.ones(n, dtype=bool)
    for s in np.unique(strata):
        in_s = strata == s
        if not (treat[in_s].any() and (~treat[in_s]).any()):
            eligible[in_s] = False
    mm = np.full((len(treated_rows), ratio), -1)

    def find(t, r, k, row):
        ii = pos[t]
        taken = [pos[c] for c in row if c >= 0]
        iil = min([ii, *taken])
        iir = max([ii, *taken])
        if not taken:
            min_dist = 0.0
        elif iil == ii:
            min_dist = abs(distance[t] - distance[sort_idx[iir]])
        elif iir == ii:
            min_dist = abs(distance[t] - distance[sort_idx[iil]])
        else:
            min_dist = max(abs(distance[t] - distance[sort_idx[iil]]),
                           abs(distance[t] - distance[sort_idx[iir]]))
        stop = {True: False, False: False}
        found = {True: 0, False: 0}
        pushed, pushed_d = [], []
        left = False
        while not (stop[True] and stop[False]):
            left = False if stop[True] else True if stop[False] else not left
            if left:
                if iil <= 0 or found[True] == k:
                    stop[True] = True
                    continue
                iil -= 1
                z = sort_idx[iil]
            else:
                if iir >= n - 1 or found[False] == k:
                    stop[False] = True
                    continue
                iir += 1
                z = sort_idx[iir]
            if not eligible[z] or treat[z] or z in row:
                continue
            d = abs(distance[t] - distance[z])
            if d > cal:
                stop[left] = True
                continue
            if d < min_dist:
                continue
            if len(pushed) >= k and sum(p < d for p in pushed_d) >= k:
                stop[left] = True
                continue
            if strata[z] != strata[t]:
                continue
            pushed.append(z)
            pushed_d.append(d)
            found[left] += 1
            if found[left] == k:
                stop[left] = True
        if len(pushed) <= 1 or (len(pushed) <= k and pushed_d == sorted(pushed_d)):
            return pushed
        idx = list(range(len(pushed)))
        if len(pushed) > k:
            top = _partial_sort(idx, k, lambda a, b: pushed_d[a] < pushed_d[b])
        else:
            top = sorted(idx, key=lambda a: pushed_d[a])
        return [pushed[a] for a in top]

    if replace:
        for i, t in enumerate(treated_rows):
            if eligible[t]:
                got = find(t, 1, ratio, [])
                mm[i, : len(got)] = got
        return mm
    times = np.zeros(n, dtype=int)
    for r in range(1, ratio + 1):
        for i in order:
            if not (eligible & ~treat).any():
                break
            t = treated_rows[i]
            if not eligible[t]:
                continue
            got = find(t, r, 1, list(mm[i]))
            if not got:
                eligible[t] = False
                continue
            mm[i, r - 1] = got[0]
            for u, allowed in ((got[0], 1), (t, ratio)):
                times[u] += 1
                if times[u] >= allowed:
                    eligible[u] = False
    return mm


@pytest.mark.parametrize("seed", range(60))
def test_fast_search_equals_step_by_step_walk(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    tied = seed % 2 == 0
    distance = rng.integers(0, 12, n).astype(float) if tied else rng.normal(size=n)
    treat = rng.random(n) < rng.uniform(0.2, 0.6)
    if treat.all() or not treat.any():
        treat[0], treat[-1] = True, False
    strata = rng.integers(0, int(rng.integers(1, 4)), n)
    ratio = int(rng.integers(1, 4))
    replace = bool(rng.random() < 0.4)
    caliper = None if rng.random() < 0.4 else float(rng.uniform(0.3, 3.0) * distance.std())
    order = rng.permutation(int(treat.sum()))
    ours = greedy_nearest(distance, treat, ratio=ratio, replace=replace, caliper=caliper,
                          strata=strata, order=order)
    ref = _reference(distance, treat, ratio, replace, caliper, strata, order)
    np.testing.assert_array_equal(ours.match_matrix, ref)


def test_nearer_control_wins_even_across_a_unit_gap():
    # Treated at 0.5; controls at 0.0 and 0.9: the right one is nearer. (MatchIt <= 4.5.3
    # on Linux compared integer-truncated distances and took the left one.)
    res = greedy_nearest(np.array([0.0, 0.5, 0.9]), np.array([False, True, False]))
    assert res.match_matrix.tolist() == [[2]]


def test_equal_distances_go_to_the_control_reached_first():
    # Exact tie, one step each way: the left control is examined first.
    res = greedy_nearest(np.array([0.875, 1.0, 1.125]), np.array([False, True, False]))
    assert res.match_matrix.tolist() == [[0]]
    # Exact tie, but the left control is two sorted positions away (a treated unit
    # sits between): the walk reaches the right control first.
    d = np.array([0.875, 0.9375, 1.0, 1.125])
    t = np.array([False, True, True, False])
    res = greedy_nearest(d, t, order=np.array([1, 0]))
    assert res.match_matrix[1].tolist() == [3]


def test_caliper_and_reasons():
    d = np.array([0.0, 0.05, 1.0, 3.0, 3.02, 5.0])
    t = np.array([True, False, True, True, False, True])
    strata = np.array([0, 0, 0, 0, 0, 1])
    res = greedy_nearest(d, t, caliper=0.1, strata=strata)
    assert res.match_matrix[:, 0].tolist() == [1, -1, 4, -1]
    assert res.reason.tolist() == ["", OUTSIDE_CALIPER, "", NO_CONTROL_IN_STRATUM]


def test_controls_used_up():
    d = np.array([1.0, 1.1, 1.2, 1.3])
    t = np.array([True, True, True, False])
    res = greedy_nearest(d, t, ratio=1, order=np.array([2, 1, 0]))
    assert res.match_matrix[:, 0].tolist() == [-1, -1, 3]
    assert res.reason.tolist() == [CONTROLS_EXHAUSTED, CONTROLS_EXHAUSTED, ""]


def test_ratio_fills_rounds_before_second_controls():
    # Both treated units get a first control before either gets a second: A (0.1)
    # would otherwise take 0.25, the nearest control of B (0.3).
    d = np.array([0.0, 0.1, 0.25, 0.3, 0.9])
    t = np.array([False, True, False, True, False])
    res = greedy_nearest(d, t, ratio=2, order=np.array([0, 1]))
    assert res.match_matrix.tolist() == [[0, 4], [2, -1]]
    assert res.reason.tolist() == ["", CONTROLS_EXHAUSTED]


def test_partial_sort_keeps_first_of_equal_values_like_libstdcxx():
    vals = [3.0, 1.0, 1.0, 2.0]
    top = _partial_sort(list(range(4)), 2, lambda a, b: vals[a] < vals[b])
    assert sorted(vals[i] for i in top) == [1.0, 1.0]
    top1 = _partial_sort([0, 1], 1, lambda a, b: [1.0, 1.0][a] < [1.0, 1.0][b])
    assert top1 == [0]
