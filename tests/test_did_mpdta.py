"""att_gt/aggregate on R's mpdta against the numbers printed by R's did 2.5.1.

Point estimates and pre-test p-values are deterministic and must match to the
printed precision; R's standard errors are from its multiplier bootstrap (a
random 1,000 draws), so ours (different draws) must only be close.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_eval.did import att_gt

FIX = Path(__file__).parent / "fixtures" / "did"
PUB = json.loads((FIX / "r_did_published.json").read_text())
EST_TOL = 5e-5 + 1e-12  # printed to 4 decimals
P_TOL = 5e-6 + 1e-12  # printed to 5 decimals
BOOT_RTOL = 0.15  # two independent 1,000-draw bootstraps


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(FIX / "mpdta.csv")


CASES = {
    "dr_nocov_nevertreated": dict(est_method="dr", xformla=None, control_group="nevertreated"),
    "reg_nocov_nevertreated": dict(est_method="reg", xformla=None, control_group="nevertreated"),
    "dr_lpop_nevertreated": dict(est_method="dr", xformla="~ lpop", control_group="nevertreated"),
    "dr_lpop_notyettreated": dict(est_method="dr", xformla="~ lpop",
                                  control_group="notyettreated"),
}


def _fit(mpdta, seed=2024, **kw):
    return att_gt(mpdta, yname="lemp", tname="year", idname="countyreal",
                  gname="first.treat", seed=seed, **kw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_att_gt_matches_published_r(mpdta, case):
    ref = PUB["att_gt"][case]
    res = _fit(mpdta, **CASES[case])
    np.testing.assert_array_equal(res.group, PUB["att_gt"]["group"])
    np.testing.assert_array_equal(res.time, PUB["att_gt"]["time"])
    np.testing.assert_allclose(res.att, ref["att"], rtol=0, atol=EST_TOL)
    assert res.wald_pvalue == pytest.approx(ref["pretest_pvalue"], abs=P_TOL)
    if "boot_se" in ref:
        np.testing.assert_allclose(res.se, ref["boot_se"], rtol=BOOT_RTOL)


@pytest.mark.parametrize("method", ["dr", "reg"])
def test_aggregations_match_published_r(mpdta, method):
    res = _fit(mpdta, est_method=method)
    for typ, ref in PUB[f"aggte_{method}_nocov_nevertreated"].items():
        agg = res.aggregate(typ)
        assert agg.overall_att == pytest.approx(ref["overall_att"], abs=EST_TOL)
        assert agg.overall_se == pytest.approx(ref["overall_se"], rel=BOOT_RTOL)
        if "egt" in ref:
            np.testing.assert_array_equal(agg.egt, ref["egt"])
            np.testing.assert_allclose(agg.att_egt, ref["att_egt"], rtol=0, atol=EST_TOL)
            np.testing.assert_allclose(agg.se_egt, ref["se_egt"], rtol=BOOT_RTOL)
            assert agg.crit_val_egt > 1.96


def test_bootstrap_is_reproducible_and_close_to_analytic(mpdta):
    a = _fit(mpdta, seed=7)
    b = _fit(mpdta, seed=7)
    np.testing.assert_array_equal(a.se, b.se)
    assert a.crit_val == b.crit_val
    analytic = _fit(mpdta, bstrap=False)
    np.testing.assert_allclose(a.se, analytic.se, rtol=0.15)
    # a uniform band over 12 cells must be wider than pointwise intervals
    assert 2.2 < a.crit_val < 3.5
    assert analytic.crit_val == pytest.approx(1.959964, abs=1e-6)
