"""Block-sparse, optionally factored, storage of the units x cells influence functions.

Units are sorted by cohort; a cohort takes part only in the cells where it is
the treated cohort or in the comparison group, so each cohort's rows are
stored over those cells only.  A block is held as ``M @ A``: either dense
(``M`` the influence functions themselves, ``A`` the identity) or factored.
Without covariates every cell's influence function is a linear combination of
the unit's weighted outcomes in each period and its weight, so ``M`` is the
(units x periods+1) matrix ``[w * Y, w]`` shared by all of the cohort's cells
and ``A`` holds one column per cell.  Memory is then units x periods instead
of units x cells, and products with ``psi`` cost the same saving.
"""

from __future__ import annotations

import numpy as np


class _Block:
    __slots__ = ("M", "A", "cols", "_MtM")

    def __init__(self, M: np.ndarray, A: np.ndarray | None, cols: np.ndarray,
                 MtM: np.ndarray | None = None):
        self.M, self.A, self.cols = M, A, cols
        self._MtM = MtM

    @property
    def MtM(self) -> np.ndarray:
        if self._MtM is None:
            self._MtM = self.M.T @ self.M
        return self._MtM

    def values(self) -> np.ndarray:
        return self.M if self.A is None else self.M @ self.A

    def times(self, B: np.ndarray) -> np.ndarray:
        """``psi_block @ B`` for B with one row per column of the block."""
        return self.M @ B if self.A is None else self.M @ (self.A @ B)


class BlockInfluence:
    """Influence functions ``psi`` (n units x k cells) stored by cohort block.

    Parameters
    ----------
    n : int
        Number of units (rows).
    k : int
        Number of cells (columns).
    blocks : dict
        Cohort value -> ``slice`` of unit rows.
    """

    def __init__(self, n: int, k: int, blocks: dict):
        self.n = n
        self.k = k
        self.slices = dict(blocks)
        self._dense: dict = {c: [] for c in blocks}
        self._factor: dict = {}
        self._factor_MtM: dict = {}
        self._factor_pieces: dict = {c: [] for c in blocks}
        self._built: dict | None = None

    def add(self, cohort: float, cols, values: np.ndarray) -> None:
        """Record dense ``values`` (rows of ``cohort``'s block x ``cols``)."""
        self._dense[cohort].append((np.asarray(cols, dtype=np.int64), values))
        self._built = None

    def set_factor(self, cohort: float, M: np.ndarray, MtM: np.ndarray | None = None) -> None:
        """Use ``M`` (rows of ``cohort``'s block x r) as the block's factor (``MtM``:
        ``M' M`` if already known)."""
        self._factor[cohort] = M
        self._factor_MtM[cohort] = MtM
        self._built = None

    def add_factored(self, cohort: float, cols, A: np.ndarray) -> None:
        """Record cells ``cols`` whose influence functions are ``factor @ A``."""
        self._factor_pieces[cohort].append((np.asarray(cols, dtype=np.int64), A))
        self._built = None

    @property
    def built(self) -> dict:
        """Cohort -> _Block with each cell at most once per block."""
        if self._built is None:
            out = {}
            for c in self.slices:
                dense, fac = self._dense[c], self._factor_pieces[c]
                if dense and fac:
                    raise ValueError("a block cannot mix dense and factored cells")
                if dense:
                    cols = np.concatenate([p[0] for p in dense])
                    M = dense[0][1] if len(dense) == 1 else np.concatenate(
                        [p[1] for p in dense], axis=1)
                    out[c] = _Block(M, None, cols)
                elif fac:
                    cols = np.concatenate([p[0] for p in fac])
                    A = np.concatenate([p[1] for p in fac], axis=1)
                    out[c] = _Block(self._factor[c], A, cols, self._factor_MtM.get(c))
            self._built = out
        return self._built

    def column_sumsq(self) -> np.ndarray:
        """Sum over units of psi squared, per cell."""
        s = np.zeros(self.k)
        for b in self.built.values():
            if b.A is None:
                s[b.cols] += np.einsum("ij,ij->j", b.M, b.M)
            else:
                s[b.cols] += np.einsum("ij,ij->j", b.A, b.MtM @ b.A)
        return s

    def gram(self, cells=None) -> np.ndarray:
        """``psi' psi`` over the given cells (all by default)."""
        cells = np.arange(self.k) if cells is None else np.asarray(cells)
        pos = np.full(self.k, -1)
        pos[cells] = np.arange(len(cells))
        G = np.zeros((len(cells), len(cells)))
        for b in self.built.values():
            keep = pos[b.cols] >= 0
            if not keep.any():
                continue
            p = pos[b.cols[keep]]
            if b.A is None:
                sub = b.M[:, keep] if not keep.all() else b.M
                G[np.ix_(p, p)] += sub.T @ sub
            else:
                Ak = b.A[:, keep]
                G[np.ix_(p, p)] += Ak.T @ b.MtM @ Ak
        return G

    def combine(self, A: np.ndarray) -> np.ndarray:
        """Dense ``psi @ A`` for a (k x m) matrix ``A``; returns (n x m)."""
        A = np.asarray(A, dtype=float)
        out = np.zeros((self.n, A.shape[1]))
        for c, b in self.built.items():
            out[self.slices[c]] = b.times(A[b.cols])
        return out

    def to_dense(self) -> np.ndarray:
        """The full (n x k) matrix (for small problems and tests)."""
        out = np.zeros((self.n, self.k))
        for c, b in self.built.items():
            out[self.slices[c], b.cols] = b.values()
        return out

    def cluster_sums(self, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
        """Sum psi over the units of each cluster; returns (n_clusters x k)."""
        out = np.zeros((n_clusters, self.k))
        for c, b in self.built.items():
            sl = self.slices[c]
            part = np.zeros((n_clusters, b.M.shape[1]))
            np.add.at(part, cluster[sl], b.M)
            out[:, b.cols] += part if b.A is None else part @ b.A
        return out
