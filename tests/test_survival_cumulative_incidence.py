"""CumulativeIncidenceFitter against R cmprsk::cuminc (committed fixtures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import InputError, ParameterError
from phm_eval.survival import CumulativeIncidenceFitter, cumulative_incidence

matplotlib.use("Agg")

FIX = Path(__file__).parent / "fixtures" / "survival"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "competing_risks.csv")


def _jumps(ref: pd.DataFrame, curve: str) -> pd.DataFrame:
    """cuminc lists step corners (0, t1, t1, t2, t2, ..., t_max); the jumps are at 2, 4, ..."""
    rows = ref[ref["curve"] == curve].reset_index(drop=True)
    return rows.iloc[2:-1:2]


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag, group_col", [("overall", None), ("frail", "frail"),
                                            ("imdgroup", "imd_group")])
def test_curves_match_cuminc(data, tag, group_col):
    ref = pd.read_csv(FIX / f"cuminc_{tag}_curves.csv")
    groups = data[group_col] if group_col else None
    fit = CumulativeIncidenceFitter().fit(data["time"], data["status"], groups=groups)
    ours = fit.cumulative_incidence_
    n_checked = 0
    for curve in ref["curve"].unique():
        level, cause = curve.rsplit(" ", 1)
        mine = ours[(ours["group"].astype(str) == level) & (ours["cause"] == int(cause))]
        mine = mine[mine["time"] > 0]
        r = _jumps(ref, curve)
        assert len(mine) == len(r)
        np.testing.assert_allclose(mine["time"], r["time"], atol=1e-12)
        np.testing.assert_allclose(mine["estimate"], r["est"], atol=1e-12)
        np.testing.assert_allclose(mine["variance"], r["var"], atol=1e-12)
        n_checked += len(r)
    assert n_checked > 50


@pytest.mark.r_fixture
@pytest.mark.parametrize("tag, kwargs", [
    ("frail", {}), ("imdgroup", {}), ("frail_rho1", {"rho": 1.0}), ("frail_strata", {}),
])
def test_gray_test_matches_cuminc(data, tag, kwargs):
    ref = pd.read_csv(FIX / f"cuminc_{tag}_tests.csv").set_index("cause")
    group = data["imd_group"] if tag == "imdgroup" else data["frail"]
    strata = data["imd_group"] if tag == "frail_strata" else None
    fit = CumulativeIncidenceFitter(**kwargs).fit(data["time"], data["status"], groups=group,
                                                  strata=strata)
    np.testing.assert_allclose(fit.tests_["statistic"], ref["stat"], rtol=1e-10)
    np.testing.assert_allclose(fit.tests_["p"], ref["pv"], rtol=1e-8, atol=1e-14)
    assert (fit.tests_["df"] == ref["df"]).all()


@pytest.mark.r_fixture
def test_timepoints_match_cuminc(data):
    est = pd.read_csv(FIX / "cuminc_frail_timepoints_est.csv").set_index("curve")
    var = pd.read_csv(FIX / "cuminc_frail_timepoints_var.csv").set_index("curve")
    fit = CumulativeIncidenceFitter().fit(data["time"], data["status"], groups=data["frail"])
    at = fit.at([3, 0.5, 2, 1])
    at["curve"] = at["group"].astype(str) + " " + at["cause"].astype(str)
    wide_est = at.pivot(index="curve", columns="time", values="estimate")
    wide_var = at.pivot(index="curve", columns="time", values="variance")
    np.testing.assert_allclose(wide_est.loc[est.index].to_numpy(), est.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(wide_var.loc[var.index].to_numpy(), var.to_numpy(), atol=1e-12)


def test_beyond_follow_up_is_missing_and_limits_bracket(data):
    fit = cumulative_incidence(data["time"], data["status"], event_of_interest=2,
                               groups=data["frail"])
    assert fit.causes_ == [2]
    at = fit.at([0.0, 1.0, 100.0])
    assert at.loc[at["time"] == 100.0, "estimate"].isna().all()
    assert (at.loc[at["time"] == 0.0, "estimate"] == 0).all()
    c = fit.cumulative_incidence_
    inner = c[c["estimate"] > 0]
    assert ((inner["lower"] < inner["estimate"]) & (inner["estimate"] < inner["upper"])).all()
    assert ((inner["lower"] > 0) & (inner["upper"] < 1)).all()


def test_no_competing_events_equals_one_minus_kaplan_meier():
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(5)
    t = np.round(rng.exponential(size=300), 1)
    e = rng.integers(0, 2, 300)
    fit = CumulativeIncidenceFitter().fit(t, e)
    km = KaplanMeierFitter().fit(t, e)
    c = fit.cumulative_incidence_.iloc[1:]  # the first row is the curve's start at 0
    np.testing.assert_allclose(c["estimate"], 1 - km.survival_function_at_times(c["time"]),
                               atol=1e-12)


def test_summary_plot_and_errors(data):
    fit = CumulativeIncidenceFitter().fit(data["time"], data["status"], groups=data["frail"])
    assert list(fit.summary.columns) == ["statistic", "df", "p"]
    assert list(fit.summary().columns) == ["statistic", "df", "p"]  # the former spelling
    ax = fit.plot(cause=1)
    assert len(ax.get_lines()) == 2
    assert fit.to_dict()["gray_test"][0]["cause"] == "1"
    with pytest.raises(InputError):
        CumulativeIncidenceFitter().fit([1.0, -1.0], [1, 0])
    with pytest.raises(ParameterError, match="groups"):
        CumulativeIncidenceFitter().fit([1.0, 2.0], [1, 0], groups=[1])


def test_gray_test_in_time_blocks_equals_one_block(data, monkeypatch):
    """Many groups are processed in blocks of times; the blocks must not change the answer."""
    from phm_eval.survival import _cuminc_core

    whole = CumulativeIncidenceFitter().fit(data["time"], data["status"],
                                            groups=data["imd"]).tests_
    monkeypatch.setattr(_cuminc_core, "BLOCK_CELLS", 7 * 100)  # 7 times per block
    blocked = CumulativeIncidenceFitter().fit(data["time"], data["status"],
                                              groups=data["imd"]).tests_
    np.testing.assert_allclose(blocked["statistic"], whole["statistic"], rtol=1e-12)
    assert (whole["df"] == 9).all()
