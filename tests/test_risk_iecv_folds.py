"""Internal-external validation costs at most iecv_max_folds refits, whatever the clusters."""

from __future__ import annotations

import numpy as np
import pytest

from phm_eval.risk import designs
from phm_eval.risk.develop import RiskModelConfig, cluster_folds, example_risk_features


def test_clusters_are_grouped_into_balanced_folds():
    rng = np.random.default_rng(1)
    labels = np.repeat([f"P{i:02d}" for i in range(25)], rng.integers(50, 150, 25))
    folds = cluster_folds(labels, 10)
    assert len(np.unique(folds)) == 10
    # Each cluster lies in exactly one fold.
    for level in np.unique(labels):
        assert len(np.unique(folds[labels == level])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 150  # no fold exceeds another by more than a cluster
    # Few clusters: one fold each (leave one cluster out, as before).
    few = np.array(["a", "b", "b", "c"])
    assert len(np.unique(cluster_folds(few, 10))) == 3


@pytest.mark.parametrize("max_folds", [3, 50])
def test_refits_are_bounded_and_every_cluster_keeps_its_row(monkeypatch, max_folds):
    df = example_risk_features(4000, n_practices=12, practices_per_pcn=1, seed=3)
    fits = []
    original = designs._warm_started

    def counting(model, start):
        fits.append(1)
        return original(model, start)

    monkeypatch.setattr(designs, "_warm_started", counting)
    config = RiskModelConfig(cluster="practice_id", iecv_max_folds=max_folds,
                             n_bootstrap=0, n_optimism_bootstrap=0)
    result = designs.internal_external_cv(df, config)
    n_clusters = df["practice_id"].nunique()
    assert len(fits) == min(max_folds, n_clusters)
    assert len(result.per_cluster) == n_clusters
    assert result.per_cluster["c_statistic"].notna().sum() >= n_clusters - 1
