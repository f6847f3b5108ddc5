"""Survival figures are drawn from disclosed step tables only."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from phm_eval.disclosure import DisclosurePolicy  # noqa: E402
from phm_eval.disclosure.survival import survival_step_table  # noqa: E402
from phm_eval.disclosure.survival_figures import (  # noqa: E402
    disclosed_step_tables,
    plot_disclosed_curves,
)

ARMS = {"enrolled": "Enrolled", "comparators": "Matched comparators"}


def _cohort(seed: int = 3, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "time_days": rng.integers(1, 366, n),
        "event": rng.choice([0, 1, 2], n, p=[0.5, 0.4, 0.1]),
        "arm": rng.choice(list(ARMS), n),
    })


def test_every_drawn_step_comes_from_rounded_counts():
    df = _cohort()
    policy = DisclosurePolicy()
    km = disclosed_step_tables(df, "time_days", "event", "arm", policy, competing=False)
    ax = plot_disclosed_curves(km, "arm", ARMS, estimate="surv")
    for line, arm in zip(ax.get_lines(), ARMS, strict=True):
        drawn = np.asarray(line.get_ydata(), float)[1:] / 100
        expected = km.table.loc[km.table["arm"] == arm].sort_values("time")["surv"].to_numpy()
        np.testing.assert_allclose(drawn, expected)
    # Rounded cumulative counts: every event count is a difference of midpoint-6 values, so
    # the drawn curve has fewer steps than the raw data and no single-event steps.
    raw = survival_step_table(df.assign(event=(df["event"] == 1).astype(int)), "time_days",
                              "event", group_cols=["arm"])
    assert len(km.table) < (raw["n_event"] > 0).sum()
    starts = km.table.groupby("arm")["n_risk"].max()
    assert all(int(n) % 6 == 3 for n in starts)  # midpoint rounding of width 6


def test_cumulative_incidence_is_recomputed_from_rounded_counts():
    df = _cohort(seed=5)
    cif = disclosed_step_tables(df, "time_days", "event", "arm", DisclosurePolicy(),
                                competing=True)
    assert {"n_competing", "cif"} <= set(cif.table.columns)
    for _, part in cif.table.groupby("arm"):
        part = part.sort_values("time")
        d, d2, r = (part[c].to_numpy(float) for c in ("n_event", "n_competing", "n_risk"))
        surv = np.cumprod(1 - (d + d2) / r)
        before = np.concatenate([[1.0], surv[:-1]])
        np.testing.assert_allclose(part["cif"], np.cumsum(before * d / r))


def test_numbers_at_risk_beneath_the_figure_are_the_rounded_ones():
    df = _cohort(seed=7, n=80)
    km = disclosed_step_tables(df, "time_days", "event", "arm", DisclosurePolicy(),
                               competing=False)
    ax = plot_disclosed_curves(km, "arm", ARMS, estimate="surv", risk_times=(0,))
    text = " ".join(t.get_text() for t in ax.texts)
    for arm, label in ARMS.items():
        first = int(km.table.loc[km.table["arm"] == arm].sort_values("time")["n_risk"].iloc[0])
        assert f"{label}: " in text and f"{first:,}" in text
        true = int((df["arm"] == arm).sum())
        assert first != true or true % 6 == 3
