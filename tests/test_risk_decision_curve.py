"""Net benefit and risk tiers against hand calculations (Vickers & Elkin 2006)."""

from __future__ import annotations

import numpy as np
import pytest

from phm_eval.risk.decision_curve import decision_curve, net_benefit, risk_tier_metrics

Y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.6, 0.55, 0.3, 0.3, 0.2, 0.1, 0.1, 0.05, 0.05])


def test_net_benefit_by_hand():
    # pt = 0.25: flagged p >= 0.25 -> 5 patients, TP 3, FP 2: 3/10 - 2/10 * (1/3)
    assert net_benefit(Y, P, 0.25) == pytest.approx(0.3 - 0.2 / 3)
    # pt = 0.5: TP 2, FP 1: 2/10 - 1/10 * 1
    assert net_benefit(Y, P, 0.5) == pytest.approx(0.1)
    # a threshold equal to a prediction flags that patient (>=)
    assert net_benefit(Y, P, 0.6) == pytest.approx(0.2 - 0.0)


def test_decision_curve_table():
    dc = decision_curve(Y, P, thresholds=[0.25, 0.5])
    t = dc.summary().set_index("threshold")
    assert t.loc[0.25, "net_benefit_treat_all"] == pytest.approx(0.3 - 0.7 / 3)
    assert t.loc[0.5, "net_benefit_treat_all"] == pytest.approx(0.3 - 0.7)
    assert (t["net_benefit_treat_none"] == 0).all()
    assert t.loc[0.25, "true_positives"] == 3 and t.loc[0.25, "false_positives"] == 2
    assert t.loc[0.25, "flag_rate"] == pytest.approx(0.5)
    # (NB_model - NB_all) / odds * 100 = (0.2333 - 0.0667) * 3 * 100 = 50
    assert t.loc[0.25, "interventions_avoided_per_100"] == pytest.approx(50.0)
    assert dc.prevalence == pytest.approx(0.3)


def test_perfect_model_net_benefit_equals_prevalence():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.where(y == 1, 0.99, 0.01)
    dc = decision_curve(y, p, thresholds=[0.1, 0.3, 0.7])
    np.testing.assert_allclose(dc.table["net_benefit_model"], 0.5)


def test_risk_tiers_by_hand():
    t = risk_tier_metrics(Y, P, top_fractions=(0.05, 0.2, 0.5)).set_index("tier")
    assert t.loc["top 5%", "n_flagged"] == 1
    assert t.loc["top 5%", "sensitivity"] == pytest.approx(1 / 3)
    assert t.loc["top 20%", "ppv"] == pytest.approx(1.0)
    assert t.loc["top 20%", "risk_threshold"] == pytest.approx(0.6)
    # top 50%: the tie at 0.3 is broken by row order, so the event in row 5 is included
    assert t.loc["top 50%", "events_flagged"] == 3
    assert t.loc["top 50%", "lift"] == pytest.approx((3 / 5) / 0.3)


def test_thresholds_outside_unit_interval_rejected():
    with pytest.raises(ValueError):
        decision_curve(Y, P, thresholds=[0.0, 0.5])
