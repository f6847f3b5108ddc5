"""Funnel-plot control limits against hand-computed Poisson quantiles, and the plot itself."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from phm_eval.disclosure import apply_disclosure  # noqa: E402
from phm_eval.errors import InputError  # noqa: E402
from phm_eval.segment import funnel_data, funnel_limits, funnel_plot, poisson_limit  # noqa: E402


def _cdf(k: int, lam: float) -> float:
    if k < 0:
        return 0.0
    return sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k + 1))


def _hand_limit(lam: float, p: float) -> float:
    """Spiegelhalter (2005) appendix A.1.1, written out from the definition."""
    r = 0
    while _cdf(r, lam) < p:
        r += 1
    alpha = (_cdf(r, lam) - p) / (_cdf(r, lam) - _cdf(r - 1, lam))
    return r - alpha


@pytest.mark.parametrize(
    ("lam", "p", "expected"),
    [
        # Values from R: r <- qpois(p, l); r - (ppois(r, l) - p) / (ppois(r, l) - ppois(r - 1, l))
        (10.0, 0.975, 16.159950673345),
        (10.0, 0.025, 3.775187947688),
        (10.0, 0.999, 20.662000835995),
        (10.0, 0.001, 1.220529315896),
        (2.5, 0.001, -0.987817506039),
        (2.5, 0.999, 8.162536461531),
        (250.0, 0.975, 280.956129345336),
    ],
)
def test_interpolated_poisson_quantile(lam, p, expected):
    assert float(poisson_limit(lam, p)) == pytest.approx(expected, abs=1e-9)
    if lam < 50:
        assert _hand_limit(lam, p) == pytest.approx(expected, abs=1e-9)


def test_exact_limits_by_hand():
    # 500 patients at a target of 20 per 1,000: 10 expected events.
    # Upper 97.5%: P(Y<=16) = 0.97296 < 0.975 <= P(Y<=17) = 0.98572, alpha = 0.8401,
    # limit 16.160 events = 32.32 per 1,000. Lower 2.5%: P(Y<=3) = 0.01034, P(Y<=4) = 0.02925,
    # alpha = 0.2248, limit 3.775 events = 7.55 per 1,000.
    out = funnel_limits([500], 0.02)
    assert out.loc[0, "upper_95"] == pytest.approx(32.32, abs=0.005)
    assert out.loc[0, "lower_95"] == pytest.approx(7.55, abs=0.005)
    assert out.loc[0, "upper_99.8"] == pytest.approx(20.662000835995 / 500 * 1000, abs=1e-9)
    assert out.loc[0, "lower_99.8"] == pytest.approx(1.220529315896 / 500 * 1000, abs=1e-9)
    assert out.loc[0, "expected"] == pytest.approx(10.0)
    assert out.loc[0, "target_rate"] == pytest.approx(20.0)


def test_normal_limits_by_hand():
    # 0.02 +/- 1.959964 * sqrt(0.02 / 500) = 0.02 +/- 0.012396
    out = funnel_limits([500, 10], 0.02, method="normal")
    assert out.loc[0, "upper_95"] == pytest.approx(32.396, abs=0.001)
    assert out.loc[0, "lower_95"] == pytest.approx(7.604, abs=0.001)
    # 3.090232 * sqrt(0.02 / 500) = 0.019545
    assert out.loc[0, "upper_99.8"] == pytest.approx(39.545, abs=0.001)
    # Truncated at zero for a small unit.
    assert out.loc[1, "lower_95"] == 0.0


def test_lower_limit_truncated_at_zero_and_limits_narrow_with_size():
    out = funnel_limits([50, 500, 5000, 50000], 0.02)
    assert out.loc[0, "lower_99.8"] == 0.0
    width = out["upper_95"] - out["lower_95"]
    assert np.all(np.diff(width) < 0)
    assert np.all(out["lower_99.8"] <= out["lower_95"])
    assert np.all(out["upper_99.8"] >= out["upper_95"])


def test_funnel_data_flags_and_pooled_target():
    table = pd.DataFrame(
        {"n_activities": [10, 40, 10, 20], "list_size": [1000, 1000, 1000, 1000]},
        index=["A", "B", "C", "D"],
    )
    data = funnel_data(table, "n_activities", "list_size")
    # Pooled target 80 / 4000 = 20 per 1,000; B (40 per 1,000) is above the 99.8% limit
    # (Poisson(20) 99.9th percentile is about 35 events).
    assert data.attrs["target"] == pytest.approx(0.02)
    assert data.loc["B", "outside_99.8"] == "high"
    assert data.loc["D", "outside_95"] == ""
    assert data.loc["A", "z"] == pytest.approx((10 - 20) / math.sqrt(20))


def test_funnel_data_drops_suppressed_rows():
    table = pd.DataFrame({"n_activities": [10, np.nan, 30], "list_size": [1000, 900, 0]})
    data = funnel_data(table, "n_activities", "list_size")
    assert len(data) == 1 and data.attrs["n_dropped"] == 2


def test_funnel_limits_rejects_bad_input():
    with pytest.raises(InputError):
        funnel_limits([0, 10], 0.02)
    with pytest.raises(InputError):
        funnel_limits([10], 0.02, method="wald")


def _practice_table():
    sizes = [4000, 6000, 8000, 10000, 12000, 7000]
    counts = [80, 125, 160, 330, 240, 60]
    return pd.DataFrame(
        {"pcn_id": "P1", "n_activities": counts, "n_patients": counts, "list_size": sizes},
        index=pd.Index([f"PR{i}" for i in range(6)], name="practice_id"),
    )


def test_funnel_plot_labels_outliers_from_disclosed_table():
    disclosed = apply_disclosure(
        _practice_table(), count_cols=["n_activities", "n_patients"],
        denominator_cols=["list_size"],
        rate_cols={"rate_per_1000": ("n_activities", "list_size", 1000.0)},
    )
    fig, ax = plt.subplots()
    out = funnel_plot(disclosed, ax=ax, target_range=(20, 25))
    assert out is ax
    labels = {t.get_text() for t in ax.texts}
    # Pooled rate 995 / 47000 = 21.2 per 1,000; PR3 (33 per 1,000) and PR5 (8.6) lie outside
    # the 99.8% limits, the others inside.
    assert {"PR3", "PR5"} <= labels
    assert not {"PR0", "PR1", "PR2"} & labels
    plt.close(fig)


def test_funnel_plot_refuses_undisclosed_counts():
    table = _practice_table()
    table.loc["PR0", "n_activities"] = 3  # a small, unrounded count
    with pytest.raises(InputError, match="disclosure"):
        funnel_plot(table)
