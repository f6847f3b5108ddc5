"""Risk-model figures: each returns an Axes with the expected content."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from phm_eval.risk.decision_curve import decision_curve
from phm_eval.risk.plots import (
    plot_calibration,
    plot_decision_curve,
    plot_feature_importance,
    plot_roc,
)


@pytest.fixture(scope="module")
def yp() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.5, 3000)
    y = rng.binomial(1, p).astype(float)
    return y, p


def test_calibration_plot_overall_and_by_group(yp):
    y, p = yp
    ax = plot_calibration(y, p)
    assert isinstance(ax, Axes)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["ideal", "model"]
    # the smoothed curve of well-calibrated predictions lies near the diagonal
    x, obs = ax.get_lines()[1].get_data()
    assert np.max(np.abs(np.asarray(obs) - np.asarray(x))) < 0.08
    plt.close(ax.figure)
    groups = np.where(np.arange(y.size) % 2 == 0, "F", "M")
    ax = plot_calibration(y, p, groups=groups, method="spline")
    assert {"F", "M"} <= {line.get_label() for line in ax.get_lines()}
    plt.close(ax.figure)


def test_roc_plot_reports_c(yp):
    y, p = yp
    ax = plot_roc(y, p, label="m")
    label = ax.get_lines()[1].get_label()
    assert label.startswith("m (c = 0.")
    plt.close(ax.figure)


def test_decision_curve_plot(yp):
    y, p = yp
    dc = decision_curve(y, p)
    ax = dc.plot()
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()] == ["model", "flag all", "flag none"]
    plt.close(ax.figure)
    ax = plot_decision_curve(dc.table)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), dc.table["net_benefit_model"])
    plt.close(ax.figure)


def test_feature_importance_plot_orders_by_size():
    table = pd.DataFrame(
        {"term": ["intercept", "a", "b", "c"], "coefficient": [-3, 0.1, -0.9, 0.4]}
    )
    ax = plot_feature_importance(table, top=2)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == ["c", "b"]  # largest |coefficient| at the top, intercept left out
    plt.close(ax.figure)
    with pytest.raises(ValueError):
        plot_feature_importance(pd.DataFrame({"x": [1]}))
