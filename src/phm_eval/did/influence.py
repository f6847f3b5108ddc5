"""Block-sparse storage of the units x cells influence-function matrix.

Units are sorted by cohort; a cohort takes part only in the cells where it is
the treated cohort or in the comparison group, so each cohort's rows are
stored as a dense matrix over those cells only.  With never-treated
comparisons this stores each treated cohort's rows for its own cells and the
never-treated rows for all cells, which is what R's ``did`` sparse matrix holds
too, without its per-element overhead.
"""

from __future__ import annotations

import numpy as np


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
        self._pieces: dict = {c: [] for c in blocks}
        self._built: dict | None = None

    def add(self, cohort: float, cols, values: np.ndarray) -> None:
        """Record ``values`` (rows of ``cohort``'s block x ``cols``)."""
        self._pieces[cohort].append((np.asarray(cols, dtype=np.int64), values))
        self._built = None

    def set_nan_column(self, col: int) -> None:
        for c, sl in self.slices.items():
            if sl.stop > sl.start:
                self.add(c, [col], np.full((sl.stop - sl.start, 1), np.nan))

    @property
    def built(self) -> dict:
        """Cohort -> (cols, dense matrix) with each cell at most once per block."""
        if self._built is None:
            out = {}
            for c, pieces in self._pieces.items():
                if not pieces:
                    continue
                cols = np.concatenate([p[0] for p in pieces])
                if len(pieces) == 1:
                    mat = pieces[0][1]
                else:
                    mat = np.concatenate([p[1] for p in pieces], axis=1)
                order = np.argsort(cols, kind="stable")
                if not np.all(order == np.arange(len(cols))):
                    cols, mat = cols[order], mat[:, order]
                out[c] = (cols, mat)
            self._built = out
        return self._built

    def column_sumsq(self) -> np.ndarray:
        """Sum over units of psi squared, per cell."""
        s = np.zeros(self.k)
        for cols, mat in self.built.values():
            s[cols] += np.einsum("ij,ij->j", mat, mat)
        return s

    def gram(self, cells=None) -> np.ndarray:
        """``psi' psi`` over the given cells (all by default)."""
        cells = np.arange(self.k) if cells is None else np.asarray(cells)
        pos = np.full(self.k, -1)
        pos[cells] = np.arange(len(cells))
        G = np.zeros((len(cells), len(cells)))
        for cols, mat in self.built.values():
            keep = pos[cols] >= 0
            if not keep.any():
                continue
            sub = mat[:, keep] if not keep.all() else mat
            p = pos[cols[keep]]
            G[np.ix_(p, p)] += sub.T @ sub
        return G

    def combine(self, A: np.ndarray) -> np.ndarray:
        """Dense ``psi @ A`` for a (k x m) matrix ``A``; returns (n x m)."""
        A = np.asarray(A, dtype=float)
        out = np.zeros((self.n, A.shape[1]))
        for c, (cols, mat) in self.built.items():
            sl = self.slices[c]
            out[sl] = mat @ A[cols]
        return out

    def to_dense(self) -> np.ndarray:
        """The full (n x k) matrix (for small problems and tests)."""
        out = np.zeros((self.n, self.k))
        for c, (cols, mat) in self.built.items():
            out[self.slices[c], cols] = mat
        return out

    def cluster_sums(self, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
        """Sum psi over the units of each cluster; returns (n_clusters x k)."""
        out = np.zeros((n_clusters, self.k))
        for c, (cols, mat) in self.built.items():
            sl = self.slices[c]
            part = np.zeros((n_clusters, len(cols)))
            np.add.at(part, cluster[sl], mat)
            out[:, cols] += part
        return out
