"""The 3x3 population grid: age group by level of need.

Rows are children and young people (age 0-17 on the index date), adults (18-64) and older
people (65+). Columns, tested in this order so each patient lands in exactly one:

1. **complex needs**, when any of these holds (``grid.complex`` in the settings):
   moderate or severe eFI in people aged 65+; at least 3 chronic long-term conditions
   (multimorbidity with complexity); dementia; learning disability; heart failure; or a risk
   rank in the top 5% of the registered population (see :mod:`phm_eval.segment.tiers`);
2. **long-term conditions**, at least 1 chronic condition;
3. **generally well**, everyone else.

There is no single national definition of the grid; these defaults are a documented,
configurable starting point (``docs/segmentation.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phm_eval.convention import ResultConvention
from phm_eval.disclosure import DisclosedTable, DisclosurePolicy
from phm_eval.errors import ConfigError
from phm_eval.segment._summary import OUTCOME_DISCLOSURE, TOTAL, disclose, grouped_outcomes
from phm_eval.segment.config import segmentation_config

AGE_GROUPS: tuple[str, ...] = ("children_young_people", "adults", "older_people")
NEED_GROUPS: tuple[str, ...] = ("generally_well", "long_term_conditions", "complex_needs")
NEED_LABELS: dict[str, str] = {
    "generally_well": "Generally well",
    "long_term_conditions": "Long-term conditions",
    "complex_needs": "Complex needs",
}
COMPLEX_CRITERIA: tuple[str, ...] = ("frailty", "multimorbidity", "condition", "top_risk")


def age_group_labels(*, children_max_age: int = 17, older_min_age: int = 65) -> dict[str, str]:
    """Readable row labels, e.g. ``"Children and young people (0-17)"``."""
    return {
        "children_young_people": f"Children and young people (0-{children_max_age})",
        "adults": f"Adults ({children_max_age + 1}-{older_min_age - 1})",
        "older_people": f"Older people ({older_min_age}+)",
    }


def cell_key(age_group: str, need_group: str) -> str:
    """Row label of a grid cell in the table: ``"<age_group>|<need_group>"``."""
    return f"{age_group}|{need_group}"


@dataclass(frozen=True, repr=False)
class GridResult(ResultConvention):
    """The 3x3 grid: per-patient cells and the table of counts and rates per cell.

    Attributes
    ----------
    segments : DataFrame
        ``patient_id``, ``age_group``, ``need_group`` and ``complex_reasons`` (the complex
        criteria met, ``;``-separated; empty when none).
    table : DataFrame
        One row per cell (index ``"<age_group>|<need_group>"``, all nine cells even when empty)
        and a total row ``"all"``: ``age_group``, ``need_group``, ``n_patients``,
        ``population``, ``percent_of_population``, ``emergency_admissions`` (in the 12 months
        after the index date), ``person_years``, ``rate_per_1000`` (per 1,000 patients),
        ``rate_per_1000_person_years``, ``deaths``, ``deaths_per_1000``. True counts.
    criteria : DataFrame
        For each complex criterion: patients meeting it and patients for whom it is the only one.
    settings : dict
        The ``grid`` settings used.
    """

    segments: pd.DataFrame
    table: pd.DataFrame
    criteria: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    disclosure_spec: dict[str, Any] = field(
        default_factory=lambda: {**OUTCOME_DISCLOSURE, "total_row": TOTAL}
    )

    def _repr_fields(self) -> dict[str, Any]:
        return {"patients": len(self.segments), "cells": len(self.table)}

    def _summary_table(self) -> pd.DataFrame:
        """The cell table (true counts)."""
        return self.table.copy()

    def counts(self) -> pd.DataFrame:
        """Patients per cell as a 3x3 crosstab (rows: age groups; columns: need groups)."""
        cells = self.table.drop(index=TOTAL)
        return cells.pivot(index="age_group", columns="need_group", values="n_patients").loc[
            list(AGE_GROUPS), list(NEED_GROUPS)
        ]

    def disclose(self, *, policy: DisclosurePolicy | None = None) -> DisclosedTable:
        """The cell table after disclosure control (person-time columns left out)."""
        return disclose(self.table, self.disclosure_spec, policy)

    def to_dict(self) -> dict[str, Any]:
        """True-count table and settings, JSON-ready (not for release: disclose first)."""
        table = self.table.reset_index().astype(object)
        return {
            "table": table.where(table.notna(), None).to_dict(orient="records"),
            "criteria": self.criteria.to_dict(orient="records"),
            "settings": self.settings,
        }


def age_groups(age: pd.Series, children_max_age: int, older_min_age: int) -> pd.Series:
    """Row of the grid from age in completed years."""
    out = np.where(age <= children_max_age, AGE_GROUPS[0],
                   np.where(age >= older_min_age, AGE_GROUPS[2], AGE_GROUPS[1]))
    return pd.Series(out, index=age.index)


def complex_criteria(pop: pd.DataFrame, complex_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Boolean frame: which complex-needs criterion each patient meets."""
    missing = [c for c in complex_cfg["conditions"] if c not in pop.columns]
    if missing:
        raise ConfigError(f"grid.complex.conditions not in the population frame: {missing}")
    efi = pop["efi_category"].astype("string").isin(list(complex_cfg["efi_categories"]))
    frailty = efi.fillna(False).to_numpy() & (pop["age"] >= int(complex_cfg["efi_min_age"]))
    multimorbidity = pop["n_ltc"] >= int(complex_cfg["min_chronic_ltc"])
    conditions = pop[list(complex_cfg["conditions"])].any(axis=1) if complex_cfg["conditions"] \
        else pd.Series(False, index=pop.index)
    frac = complex_cfg["top_risk_fraction"]
    if frac is None:
        top = pd.Series(False, index=pop.index)
    else:
        # Same rank rule as the tiers: the first ceil(fraction * n) ranks.
        top = pop["risk_rank"] <= math.ceil(float(frac) * len(pop) - 1e-9)
    return pd.DataFrame(
        {
            "frailty": np.asarray(frailty, dtype=bool),
            "multimorbidity": multimorbidity.to_numpy(),
            "condition": conditions.to_numpy(),
            "top_risk": top.to_numpy(),
        },
        index=pop.index,
    )


def _reasons(flags: pd.DataFrame, condition_cols: list[str], pop: pd.DataFrame) -> pd.Series:
    parts = []
    for name in ("frailty", "multimorbidity"):
        parts.append(np.where(flags[name], name, ""))
    for cond in condition_cols:
        parts.append(np.where(pop[cond].to_numpy(), cond, ""))
    parts.append(np.where(flags["top_risk"], "top_risk", ""))
    joined = pd.Series([";".join(p for p in row if p) for row in zip(*parts, strict=True)], index=pop.index,
                       dtype=object)
    return joined


def grid_3x3(population: pd.DataFrame, config: Mapping[str, Any] | None = None) -> GridResult:
    """Place every patient in the 3x3 grid and summarise each cell.

    Parameters
    ----------
    population : DataFrame
        Output of :func:`~phm_eval.segment.build_population`.
    config : mapping, optional
        Segmentation settings overrides; the ``grid`` section applies.

    Returns
    -------
    GridResult

    Examples
    --------
    >>> pop = build_population(patients, events, admissions, "2022-04-01")  # doctest: +SKIP
    >>> grid_3x3(pop).counts()  # doctest: +SKIP
    """
    settings = segmentation_config(config)["grid"]
    complex_cfg = settings["complex"]
    ages = age_groups(population["age"], int(settings["children_max_age"]),
                      int(settings["older_min_age"]))
    flags = complex_criteria(population, complex_cfg)
    is_complex = flags.any(axis=1)
    has_ltc = population["n_ltc"] >= int(settings["ltc"]["min_chronic_ltc"])
    need = np.where(is_complex, NEED_GROUPS[2], np.where(has_ltc, NEED_GROUPS[1], NEED_GROUPS[0]))
    segments = pd.DataFrame(
        {
            "patient_id": population["patient_id"].to_numpy(),
            "age_group": ages.to_numpy(),
            "need_group": need,
            "complex_reasons": _reasons(flags, list(complex_cfg["conditions"]), population)
            .to_numpy(),
        }
    )
    keys = [cell_key(a, n) for a in AGE_GROUPS for n in NEED_GROUPS]
    cell = pd.Series(segments["age_group"] + "|" + segments["need_group"],
                     index=population.index)
    table = grouped_outcomes(population, cell, keys)
    split = [k.split("|") if k != TOTAL else [TOTAL, TOTAL] for k in table.index]
    table.insert(0, "age_group", [s[0] for s in split])
    table.insert(1, "need_group", [s[1] for s in split])

    only = flags.sum(axis=1) == 1
    criteria = pd.DataFrame(
        {
            "criterion": list(COMPLEX_CRITERIA),
            "n_patients": [int(flags[c].sum()) for c in COMPLEX_CRITERIA],
            "n_only_criterion": [int((flags[c] & only).sum()) for c in COMPLEX_CRITERIA],
        }
    )
    return GridResult(segments=segments, table=table, criteria=criteria, settings=settings)
