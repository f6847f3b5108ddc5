"""Plasmode of the population-level (ITT) design: permuted adoption, thinned admissions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phm_eval.errors import ConfigError, EstimationError, InputError
from phm_eval.evaluate.population import PopulationITT
from phm_eval.evaluate.population_plasmode import population_plasmode

WAVES = {13: 6, 25: 6, 37: 4, 0: 8}   # adoption month (t) -> units; 0 never adopts


def _panel(seed: int, real_rate_ratio: float = 1.0, pcn_of_unit: bool = False) -> pd.DataFrame:
    """24 units x 48 months of Poisson admissions with unit and month effects; the units that
    adopt have their admissions from adoption multiplied by ``real_rate_ratio``."""
    rng = np.random.default_rng(seed)
    g = np.concatenate([[w] * n for w, n in WAVES.items()])
    units = len(g)
    months = np.arange(1, 49)
    person_months = rng.uniform(1200, 2400, units)
    unit_rate = np.exp(rng.normal(np.log(0.03), 0.15, units))
    month_rate = np.exp(0.1 * np.sin(months / 6.0) + 0.002 * months)
    rows = []
    for u in range(units):
        for t in months:
            mu = person_months[u] * unit_rate[u] * month_rate[t - 1]
            if g[u] > 0 and t >= g[u]:
                mu *= real_rate_ratio
            rows.append({"unit": f"U{u:02d}", "t": t, "admissions": rng.poisson(mu),
                         "person_months": person_months[u], "g": g[u],
                         "weight": person_months[u] * 12,
                         "cluster": f"P{u // 2:02d}" if pcn_of_unit else f"U{u:02d}"})
    return pd.DataFrame(rows)


def _summary(result) -> pd.DataFrame:
    return result.summary().set_index("target_rate_ratio")


@pytest.mark.parametrize("seed", [1, 2])
def test_known_injected_rate_ratio_is_recovered_with_honest_intervals(seed):
    result = population_plasmode(_panel(seed), (1.0, 0.8), n_replicates=60, seed=seed)
    table = _summary(result)
    assert (table["n_failed"] == 0).all()
    for target, row in table.iterrows():
        # bias of the log rate ratio within 3 Monte Carlo SEs (and small in absolute terms)
        assert abs(row["bias_log"]) < 3 * row["bias_log_mcse"] + 0.01, target
        # two-sided coverage bounds: 95 % +- 3 MC SEs at 60 replicates
        assert 0.86 <= row["coverage"] <= 1.0, target
    assert table.loc[1.0, "rejection_rate"] <= 0.15
    assert table.loc[0.8, "power"] > 0.5 > table.loc[1.0, "power"]
    # thinning touches only placebo-adopting units: the others keep every admission
    reps = result.replicates.pivot(index="replicate", columns="target_rate_ratio",
                                   values=["events_control", "events_treated"])
    assert (reps[("events_control", 0.8)] == reps[("events_control", 1.0)]).all()
    assert (reps[("events_treated", 0.8)] < reps[("events_treated", 1.0)]).all()


def test_a_real_effect_in_the_panel_is_neutralised_by_the_permutation():
    # the adopting units really have a rate ratio of 0.7: the placebo baseline is still null
    result = population_plasmode(_panel(3, real_rate_ratio=0.7), (1.0, 0.8), n_replicates=60,
                                 seed=4)
    table = _summary(result)
    assert abs(table.loc[1.0, "bias_log"]) < 3 * table.loc[1.0, "bias_log_mcse"] + 0.02
    assert abs(table.loc[0.8, "bias_log"]) < 3 * table.loc[0.8, "bias_log_mcse"] + 0.02


def test_pcns_adopting_together_are_permuted_as_blocks():
    panel = _panel(5, pcn_of_unit=True)
    # two practices per PCN with the same adoption month
    assert (panel.groupby("cluster")["g"].nunique() == 1).all()
    result = population_plasmode(panel, 0.8, n_replicates=4, seed=1)
    assert result.extra["permuted"] == "PCNs" and result.n_sets == 12
    assert (result.n_treated, result.n_control) == (16, 8)
    assert result.to_dict()["estimand"] == "ITT population"


def test_same_seed_same_replicates():
    panel = _panel(6)
    a = population_plasmode(panel, (1.0, 0.9), n_replicates=5, seed=11).replicates
    b = population_plasmode(panel, (1.0, 0.9), n_replicates=5, seed=11).replicates
    pd.testing.assert_frame_equal(a, b)


def test_bad_settings_and_panels_are_errors():
    panel = _panel(7)
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        population_plasmode(panel, 1.2, n_replicates=5)
    with pytest.raises(ConfigError, match="at least 2"):
        population_plasmode(panel, 0.9, n_replicates=1)
    with pytest.raises(EstimationError, match="same month"):
        population_plasmode(panel.assign(g=13), 0.9, n_replicates=5)
    # every unit adopting, at different times (a not-yet-adopted comparison): still checked
    staggered = panel.assign(g=np.where(panel["g"] == 0, 25, panel["g"]))
    result = population_plasmode(staggered, 0.9, n_replicates=2,
                                 estimator=PopulationITT(control_group="notyettreated",
                                                         honest_m=()))
    assert result.n_control == 0 and len(result.replicates) == 2
    with pytest.raises(InputError, match="weight"):
        population_plasmode(panel.drop(columns="weight"), 0.9, n_replicates=5)
