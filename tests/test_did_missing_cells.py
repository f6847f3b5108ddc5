"""Cells without treated or comparison observations (unbalanced panels) are NaN, as in R's did,
and aggregations refuse them unless asked to drop them (R's ``aggte(na.rm = TRUE)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.did import att_gt
from phm_eval.errors import EstimationError


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 201):
        g = 0 if i <= 100 else (4 if i <= 150 else 6)
        periods = np.arange(1, 9)
        if g == 0:
            periods = periods[periods != 2]  # no never-treated unit is observed in period 2
        for t in periods:
            effect = 1.0 if (g and t >= g) else 0.0
            rows.append((i, t, g, effect + 0.1 * t + rng.normal()))
    df = pd.DataFrame(rows, columns=["id", "t", "g", "y"])
    with pytest.warns(UserWarning, match="not estimable"):
        res = att_gt(df, "y", "t", "id", "g", allow_unbalanced_panel=True, est_method="reg",
                     bstrap=False)
    return res


def test_cells_needing_period_2_are_nan_and_the_rest_estimated(result):
    table = pd.DataFrame({"g": result.group, "t": result.time, "att": result.att,
                          "se": result.se})
    # Varying base period: the cells for t = 2 (base 1) and t = 3 (base 2) of every cohort.
    missing = table[table["att"].isna()]
    assert set(missing["t"]) == {2.0, 3.0}
    assert missing["se"].isna().all()
    finite = table[table["att"].notna()]
    assert len(finite) == len(table) - 4
    assert finite["se"].gt(0).all()
    post = finite[finite["t"] >= finite["g"]]
    assert post["att"].between(0.4, 1.6).all()


def test_aggregation_refuses_missing_cells_unless_dropped(result):
    with pytest.raises(EstimationError, match="na_rm=True"):
        result.aggregate("simple")
    agg = result.aggregate("simple", na_rm=True)
    post = (result.time >= result.group) & np.isfinite(result.att)
    sizes = {4.0: 50, 6.0: 50}
    w = np.array([sizes[g] for g in result.group[post]], dtype=float)
    assert agg.overall_att == pytest.approx(np.sum(result.att[post] * w) / w.sum(), rel=1e-12)
    dyn = result.aggregate("dynamic", na_rm=True)
    assert np.isfinite(dyn.att_egt).all()
    assert np.isfinite(result.aggregate("group", na_rm=True).overall_att)
    assert np.isfinite(result.aggregate("calendar", na_rm=True).overall_att)
