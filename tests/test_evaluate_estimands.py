"""The estimands' bookkeeping: primary record, MDE attachment, period correlation of units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phm_eval.evaluate.estimands import (
    ATT_ENROLLED,
    ITT_POPULATION,
    _period_correlation,
    choose_primary,
    label_enrolled_records,
)


def _pre_panel(true_rates_first, true_rates_second, person_months=2e6, months=12):
    rows = []
    for unit, (a, b) in enumerate(zip(true_rates_first, true_rates_second, strict=True)):
        for t in range(1, months + 1):
            rate = a if t <= months // 2 else b
            rows.append({"unit": unit, "t": t, "person_months": person_months,
                         "admissions": rate * person_months})
    return pd.DataFrame(rows)


def test_period_correlation_recovers_persistence():
    rng = np.random.default_rng(4)
    rates = 0.01 * rng.gamma(25, 1 / 25, 30)
    cv = float(np.std(rates, ddof=1) / np.mean(rates))
    # Rates that persist exactly: correlation at the cap; rates redrawn: near zero.
    assert _period_correlation(_pre_panel(rates, rates), cv) == 0.95
    other = 0.01 * rng.gamma(25, 1 / 25, 30)
    assert _period_correlation(_pre_panel(rates, other), cv) < 0.4
    assert _period_correlation(_pre_panel(rates, rates, months=2), cv) == 0.0


def test_exactly_one_primary_record_even_when_not_estimable():
    records = label_enrolled_records([
        {"outcome": "emergency admissions", "scale": "RR", "method": "negative binomial",
         "estimate": 0.8},
        {"outcome": "emergency admissions", "scale": "RR", "method": "naive before/after",
         "estimate": 0.5},
    ])
    assert [r["estimand"] for r in records][0] == ATT_ENROLLED
    records.append({"outcome": "emergency admissions", "scale": "RR", "estimand": ITT_POPULATION,
                    "estimate": None, "note": "not estimable: too few units"})
    choose_primary(records, "itt_population")
    primary = [r for r in records if r["primary"]]
    assert len(primary) == 1 and primary[0]["estimand"] == ITT_POPULATION
    choose_primary(records, "att_enrolled")
    primary = [r for r in records if r["primary"]]
    assert len(primary) == 1 and primary[0]["estimate"] == 0.8
