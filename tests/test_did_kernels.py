"""Compiled kernels of the DiD engine against plain numpy formulations."""

import numpy as np
import pytest

from phm_eval.did import _kernels as K
from phm_eval.did.bootstrap import _MAMMEN_THRESHOLD, multiplier_sums


def _state(seed):
    return np.random.SFC64(seed).state["state"]["state"].copy()


def test_sfc64_matches_numpy():
    out = np.empty(1000, np.uint64)
    K.sfc64_raw(_state(42), out)
    np.testing.assert_array_equal(out, np.random.SFC64(42).random_raw(1000))


def _explicit_bits(seed, n_rows, n_draws, threshold):
    """The bits the kernel documents it draws, built from numpy's SFC64 stream."""
    pairs = -(-n_rows // 16)
    words_per_pair = -(-n_draws // 4) if threshold == 0 else 4 * n_draws
    raw = np.random.SFC64(seed).random_raw(pairs * words_per_pair)
    U = np.zeros((n_draws, 16 * pairs))
    for p in range(pairs):
        w = raw[p * words_per_pair:(p + 1) * words_per_pair]
        if threshold == 0:
            for d in range(n_draws):
                x = int(w[d // 4]) >> (16 * (d % 4))
                U[d, 16 * p:16 * p + 16] = [(x >> k) & 1 for k in range(16)]
        else:
            for d in range(n_draws):
                for k in range(16):
                    x = (int(w[4 * d + k // 4]) >> (16 * (k % 4))) & 0xFFFF
                    U[d, 16 * p + k] = x >= threshold
    return U


@pytest.mark.parametrize("threshold", [0, _MAMMEN_THRESHOLD])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_multiplier_sums_equal_the_product(threshold, dtype):
    rng = np.random.default_rng(1)
    n, c, B = 45, 5, 11
    M = np.zeros((48, c), dtype)
    M[:n] = rng.normal(size=(n, c))
    out = np.zeros((B, c), dtype)
    K.binary_multiplier_sums(M, _state(3), B, threshold, out)
    U = _explicit_bits(3, 48, B, threshold)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, U @ M.astype(float), atol=tol)
    if threshold == 0:
        assert 0.4 < U.mean() < 0.6
    else:  # P(bit) = 1 - threshold / 65536 (about 0.28)
        assert 0.15 < U.mean() < 0.4


def test_multiplier_sums_reproduce_explicit_draws():
    """One block, one tile: the sums are 2 U @ M - colsum(M) with U from the tile's stream."""
    rng = np.random.default_rng(2)
    M = rng.normal(size=(40, 3))
    S = multiplier_sums([(np.arange(40), np.arange(3), M, None)], 40, 3, 9,
                        np.random.default_rng(7), n_threads=1)
    seed = np.random.SeedSequence(np.random.default_rng(7).integers(0, 2**63, size=4)).spawn(1)[0]
    Mp = np.zeros((48, 3))
    Mp[:40] = M
    U = _explicit_bits(seed, 48, 9, 0)
    np.testing.assert_allclose(S, 2 * U @ Mp - M.sum(axis=0), atol=1e-5)


def test_multiplier_sums_factored_block_and_columns():
    """A factored block adds (V M) A to the right columns; the others stay zero."""
    rng = np.random.default_rng(3)
    M = rng.normal(size=(100, 2))
    A = rng.normal(size=(2, 3))
    S = multiplier_sums([(np.arange(100), np.array([0, 2, 4]), M, A)], 100, 5, 50,
                        np.random.default_rng(1), n_threads=1)
    plain = multiplier_sums([(np.arange(100), np.array([0, 2, 4]), M @ A, None)], 100, 5, 50,
                            np.random.default_rng(1), n_threads=1)
    np.testing.assert_allclose(S, plain, atol=1e-4)
    assert np.all(S[:, [1, 3]] == 0)


def test_multiplier_sums_former_name_of_n_bootstrap():
    """``biters`` (R's name, kept by att_gt only) still works here, with a warning."""
    from phm_eval.errors import ParameterError

    block = [(np.arange(40), np.arange(3), np.random.default_rng(2).normal(size=(40, 3)), None)]
    named = multiplier_sums(block, 40, 3, n_bootstrap=9, rng=np.random.default_rng(7))
    with pytest.deprecated_call(match="'biters' is the former name of 'n_bootstrap'"):
        former = multiplier_sums(block, 40, 3, rng=np.random.default_rng(7), biters=9)
    np.testing.assert_array_equal(named, former)
    assert named.shape == (9, 3)
    with pytest.deprecated_call(), pytest.raises(ParameterError, match="n_bootstrap, biters"):
        multiplier_sums(block, 40, 3, 9, np.random.default_rng(7), biters=10)
    with pytest.raises(TypeError, match="n_bootstrap and rng"):
        multiplier_sums(block, 40, 3, rng=np.random.default_rng(7))


def _layout_ok(ids, t):
    T = K.leading_run(ids)
    if T == 0 or len(ids) % T:
        return 0
    g = np.zeros(len(ids))
    return T if K.scan_sorted_units(ids, t, g, T, 0, len(ids) // T, 4)[0] else 0


def test_sorted_balanced_layout():
    ids = np.repeat([3, 5, 9], 4)
    t = np.tile([1, 2, 5, 7], 3)
    assert _layout_ok(ids, t) == 4
    assert _layout_ok(ids.astype(float), t.astype(float)) == 4
    assert _layout_ok(ids[:-1], t[:-1]) == 0  # unbalanced
    assert _layout_ok(ids[::-1].copy(), t) == 0  # ids decreasing
    t2 = t.copy()
    t2[5] = 3
    assert _layout_ok(ids, t2) == 0  # periods differ between units
    assert _layout_ok(ids, np.tile([2, 1, 5, 7], 3)) == 0  # periods not increasing
    assert _layout_ok(ids[:0], t[:0]) == 0
    # a later half is checked against the unit before it
    assert not K.scan_sorted_units(np.repeat([3, 9, 5], 4), t, np.zeros(12), 4, 2, 3, 4)[0]


def test_first_varying_row_and_counting_sort():
    m = np.ones((5, 3))
    assert K.first_varying_row(m) == -1
    m[3, 2] = 2
    m[4, 0] = 0
    assert K.first_varying_row(m) == 3
    assert K.first_varying_row(m[:, :1]) == -1
    codes = np.random.default_rng(0).integers(0, 4, size=1000)
    order = np.argsort(codes, kind="stable")
    src = np.random.default_rng(1).normal(size=(1000, 2))
    out = np.zeros((1000, 3))
    rank = np.empty(1000, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=4))[:-1]])
    # two halves with their own positions, as the threaded preparation runs them
    second = starts + np.bincount(codes[:600], minlength=4)
    K.scatter_by_code(src, codes, 0, 600, starts.copy(), out, 1.0, rank)
    K.scatter_by_code(src, codes, 600, 1000, second, out, 1.0, rank)
    np.testing.assert_array_equal(order[rank], np.arange(1000))
    np.testing.assert_array_equal(out[:, :2], src[order])
    assert np.all(out[:, 2] == 1.0)
    moved = np.zeros((1000, 2))
    K.scatter_rows(src, rank, moved)
    np.testing.assert_array_equal(moved, src[order])


def test_regression_kernels_match_numpy():
    rng = np.random.default_rng(4)
    n, p, m = 200, 3, 4
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    Y = rng.normal(size=(n, m))
    V = rng.random(size=(n, 2))
    D = (rng.random(n) < 0.4).astype(float)
    beta = rng.normal(size=p) * 0.3
    grad, H = np.empty(p), np.empty((p, p))
    K.logit_gradient_hessian(X, D, V[:, 0], beta, grad, H)
    prob = 1 / (1 + np.exp(-X @ beta))
    np.testing.assert_allclose(grad, X.T @ (V[:, 0] * (D - prob)), rtol=1e-12)
    np.testing.assert_allclose(H, (X * (V[:, 0] * prob * (1 - prob))[:, None]).T @ X,
                               rtol=1e-12)
    np.testing.assert_allclose(K.weighted_gram(X, V[:, 1]), (X * V[:, 1:2]).T @ X, rtol=1e-12)
    cross = K.weighted_crossprods(X, Y, V)
    for q in range(2):
        np.testing.assert_allclose(cross[q], (X * V[:, q:q + 1]).T @ Y, rtol=1e-12)
    B, G = rng.normal(size=(p, m)), rng.normal(size=(p, m))
    a, l0, l1, s = rng.normal(size=(4, n))
    e0, e1 = rng.normal(size=(2, m))
    expected = (a[:, None] * (Y - X @ B) + np.outer(l0, e0) + np.outer(l1, e1)
                - s[:, None] * (X @ G))
    np.testing.assert_allclose(K.dr_influence(Y, X, B, a, l0, l1, s, G, e0, e1), expected,
                               rtol=1e-12, atol=1e-12)
    Yw = rng.normal(size=(10, 5))
    out = K.stacked_differences(Yw, np.array([0, 6]), np.array([3, 9]), np.array([2, 4]),
                                np.array([1, 1]))
    rows = np.r_[0:3, 6:9]
    np.testing.assert_array_equal(out, Yw[rows][:, [2, 4]] - Yw[rows][:, [1, 1]])


def test_scan_sorted_units():
    ids = np.repeat([3, 5, 9, 11], 3)
    t = np.tile([1, 2, 4], 4)
    g = np.repeat([4.0, 0.0, 4.0, 2.0], 3)
    ok, varying, codes, distinct, codes_ok, g_min = K.scan_sorted_units(ids, t, g, 3, 0, 4, 8)
    assert (ok, varying, codes_ok, g_min) == (True, -1, True, 0.0)
    np.testing.assert_array_equal(distinct, [4.0, 0.0, 2.0])
    np.testing.assert_array_equal(distinct[codes], [4.0, 0.0, 4.0, 2.0])
    assert not K.scan_sorted_units(ids, t, g, 3, 0, 4, 2)[4]  # more distinct values
    g2 = g.copy()
    g2[7] = -1.0  # unit 9 changes group and has a negative one
    ok, varying, _, _, _, g_min = K.scan_sorted_units(ids, t, g2, 3, 0, 4, 8)
    assert (ok, varying, g_min) == (True, 2, -1.0)
    # the second half on its own, as the threaded scan runs it
    ok, _, codes, distinct, _, _ = K.scan_sorted_units(ids, t, g, 3, 2, 4, 8)
    assert ok and list(distinct[codes]) == [4.0, 2.0]


def test_sorted_panel_scan_in_halves_matches_one_pass():
    from phm_eval.did._prep import _sorted_balanced

    rng = np.random.default_rng(5)
    n, T = 60_000, 4
    ids = np.repeat(np.arange(n) * 2 + 1, T)
    t = np.tile(np.arange(T), n)
    g = np.repeat(rng.choice([0.0, 3.0, 2.0, 5.0], n), T)
    layout = _sorted_balanced(ids, t, g)
    codes, distinct = layout["codes"]
    np.testing.assert_array_equal(distinct[codes], g[::T])
    assert layout["varying"] == -1 and layout["g_min"] == 0.0
    g[T * 40_000 + 1] = 7.0
    assert _sorted_balanced(ids, t, g)["varying"] == 40_000
