"""Counts, emergency admission rates and deaths by group, in one shape for every segmentation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.disclosure import DisclosedTable, DisclosurePolicy, apply_disclosure

TOTAL = "all"

#: Columns left out of disclosed tables: exact person-time would let a reader recover the
#: number of patients that rounding hides (with full follow-up, person-years = n).
UNDISCLOSED_COLUMNS: tuple[str, ...] = ("person_years", "rate_per_1000_person_years")

#: How the outcome columns are disclosed (see :func:`phm_eval.disclosure.apply_disclosure`).
OUTCOME_DISCLOSURE: dict[str, Any] = {
    "count_cols": ["n_patients", "emergency_admissions", "deaths"],
    "denominator_cols": ["population"],
    "rate_cols": {
        "percent_of_population": ("n_patients", "population", 100.0),
        "rate_per_1000": ("emergency_admissions", "n_patients", 1000.0),
        "deaths_per_1000": ("deaths", "n_patients", 1000.0),
    },
}


def outcome_columns(pop: pd.DataFrame, mask: pd.Series | np.ndarray, population: int) -> dict:
    """Outcome summary of the patients selected by ``mask`` (true counts)."""
    sel = pop.loc[np.asarray(mask, dtype=bool)]
    n = int(len(sel))
    admissions = int(sel["emergency_admissions_followup"].sum())
    person_years = float(sel["followup_days"].sum()) / 365.25
    deaths = int(sel["died_followup"].sum())
    return {
        "n_patients": n,
        "population": int(population),
        "percent_of_population": 100.0 * n / population if population else np.nan,
        "emergency_admissions": admissions,
        "person_years": person_years,
        "rate_per_1000": 1000.0 * admissions / n if n else np.nan,
        "rate_per_1000_person_years": 1000.0 * admissions / person_years if person_years else np.nan,
        "deaths": deaths,
        "deaths_per_1000": 1000.0 * deaths / n if n else np.nan,
    }


def grouped_outcomes(
    pop: pd.DataFrame, groups: pd.Series, order: list[str], total: bool = True
) -> pd.DataFrame:
    """One row per group label in ``order`` (empty groups included), plus a total row."""
    values = groups.to_numpy()
    rows = {label: outcome_columns(pop, values == label, len(pop)) for label in order}
    if total:
        rows[TOTAL] = outcome_columns(pop, np.ones(len(pop), dtype=bool), len(pop))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "group"
    return table


def disclose(
    table: pd.DataFrame, spec: Mapping[str, Any], policy: DisclosurePolicy | None
) -> DisclosedTable:
    """Apply disclosure control to ``table`` with the column roles in ``spec``."""
    spec = dict(spec)
    kept = table.drop(columns=[c for c in UNDISCLOSED_COLUMNS if c in table.columns])
    return apply_disclosure(kept, policy=policy, **spec)
