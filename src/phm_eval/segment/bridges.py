"""Bridges to Health segments (Lynn et al., Milbank Q 2007;85:185), from routine records.

Lynn and colleagues divide a whole population into eight segments with different care needs.
Each patient gets exactly one: the first segment in the priority order whose rule they meet
(``bridges.priority``; default as listed). The rules use what primary-care codes, hospital
spells and the eFI can show *on the index date*; they are proxies, and
``docs/segmentation.md`` says what each one can and cannot capture.

1. ``short_period_of_decline`` (end of life, mostly cancer): whether someone will die within a
   year is not known prospectively, so the proxy is at least 2 emergency admissions in the
   last 12 months together with either a cancer code in the last 12 months or severe frailty
   (eFI) with an organ-failure condition (heart failure, COPD, CKD). Deaths in the following
   12 months are reported per segment so the proxy can be checked.
2. ``organ_failure`` (advanced organ-system failure): heart failure; or COPD or CKD with at
   least one emergency admission in the last 12 months (stage and severity are not in the
   shipped code lists, so an admission stands in for advanced disease).
3. ``frailty`` (long-term frailty): dementia, or moderate/severe eFI at age 65+.
4. ``disability`` (serious but stable disability): learning disability.
5. ``maternal_infant``: a pregnancy code in the last 9 months, or age under 1.
6. ``stable_chronic``: at least one chronic long-term condition.
7. ``acutely_ill``: at least one emergency admission in the last 12 months.
8. ``healthy``: everyone else.

NHS England's national segmentation dataset adapts the same model with hospital and
community data (maternity records, dialysis, palliative care); see ``docs/segmentation.md``.
"""

from __future__ import annotations

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

BRIDGES_SEGMENTS: tuple[str, ...] = (
    "healthy",
    "maternal_infant",
    "acutely_ill",
    "stable_chronic",
    "disability",
    "short_period_of_decline",
    "organ_failure",
    "frailty",
)
#: Lynn et al.'s names for the segments.
BRIDGES_LABELS: dict[str, str] = {
    "healthy": "Healthy",
    "maternal_infant": "Maternal and infant health",
    "acutely_ill": "Acutely ill",
    "stable_chronic": "Stable chronic conditions",
    "disability": "Serious but stable disability",
    "short_period_of_decline": "Short period of decline before dying",
    "organ_failure": "Advanced organ-system failure",
    "frailty": "Long-term frailty",
}


@dataclass(frozen=True, repr=False)
class BridgesResult(ResultConvention):
    """Bridges to Health segments per patient and per-segment outcomes.

    Attributes
    ----------
    segments : DataFrame
        ``patient_id``, ``segment`` (ordered categorical in priority order) and one boolean
        column ``meets_<segment>`` per rule (rules overlap; the segment is the first met).
    table : DataFrame
        One row per segment (priority order, empty ones included) and a total row ``"all"``:
        counts, percentages, emergency admissions and deaths in the 12 months after the index
        date, rates per 1,000. True counts.
    settings : dict
    """

    segments: pd.DataFrame
    table: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    disclosure_spec: dict[str, Any] = field(
        default_factory=lambda: {**OUTCOME_DISCLOSURE, "total_row": TOTAL}
    )

    def _repr_fields(self) -> dict[str, Any]:
        return {"patients": len(self.segments), "segments": len(self.table)}

    def _summary_table(self) -> pd.DataFrame:
        return self.table.copy()

    def disclose(self, *, policy: DisclosurePolicy | None = None) -> DisclosedTable:
        """The segment table after disclosure control (person-time columns left out)."""
        return disclose(self.table, self.disclosure_spec, policy)

    def to_dict(self) -> dict[str, Any]:
        table = self.table.reset_index().astype(object)
        return {
            "table": table.where(table.notna(), None).to_dict(orient="records"),
            "settings": self.settings,
        }


def _any(pop: pd.DataFrame, columns: list[str], where: str) -> np.ndarray:
    missing = [c for c in columns if c not in pop.columns]
    if missing:
        raise ConfigError(f"{where} names columns absent from the population frame: {missing}")
    if not columns:
        return np.zeros(len(pop), dtype=bool)
    return pop[columns].to_numpy(dtype=bool).any(axis=1)


def _efi_in(pop: pd.DataFrame, categories: list[str]) -> np.ndarray:
    return pop["efi_category"].astype("string").isin(list(categories)).fillna(False).to_numpy(
        dtype=bool
    )


def bridges_rules(pop: pd.DataFrame, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Boolean frame: which Bridges to Health rule each patient meets (before prioritising)."""
    prior = pop["prior_emergency_admissions"].to_numpy()
    spd = cfg["short_period_of_decline"]
    organ_spd = _any(pop, list(spd["organ_failure_conditions"]), "bridges.short_period_of_decline")
    decline = (prior >= int(spd["min_prior_emergency_admissions"])) & (
        pop["cancer_recent"].to_numpy(dtype=bool)
        | (_efi_in(pop, spd["frailty_categories"]) & organ_spd)
    )
    org = cfg["organ_failure"]
    organ = _any(pop, list(org["conditions"]), "bridges.organ_failure") | (
        _any(pop, list(org["conditions_with_admission"]), "bridges.organ_failure")
        & (prior >= int(org["min_prior_emergency_admissions"]))
    )
    fr = cfg["frailty"]
    frailty = _any(pop, list(fr["conditions"]), "bridges.frailty") | (
        _efi_in(pop, fr["efi_categories"]) & (pop["age"].to_numpy() >= int(fr["efi_min_age"]))
    )
    disability = _any(pop, list(cfg["disability"]["conditions"]), "bridges.disability")
    mi = cfg["maternal_infant"]
    maternal = pop["age"].to_numpy() <= int(mi["infant_max_age"])
    if mi["pregnancy"]:
        maternal = maternal | pop["pregnancy"].to_numpy(dtype=bool)
    chronic = pop["n_ltc"].to_numpy() >= int(cfg["stable_chronic"]["min_chronic_ltc"])
    acute = prior >= int(cfg["acutely_ill"]["min_prior_emergency_admissions"])
    return pd.DataFrame(
        {
            "short_period_of_decline": decline,
            "organ_failure": organ,
            "frailty": frailty,
            "disability": disability,
            "maternal_infant": maternal,
            "stable_chronic": chronic,
            "acutely_ill": acute,
            "healthy": np.ones(len(pop), dtype=bool),
        },
        index=pop.index,
    )


def bridges_to_health(
    population: pd.DataFrame, config: Mapping[str, Any] | None = None
) -> BridgesResult:
    """Assign each patient one Bridges to Health segment and summarise the segments.

    Parameters
    ----------
    population : DataFrame
        Output of :func:`~phm_eval.segment.build_population` (with ``efi_category`` for the
        frailty rules; without it those rules never fire).
    config : mapping, optional
        Segmentation settings overrides; the ``bridges`` section applies.

    Returns
    -------
    BridgesResult
    """
    cfg = segmentation_config(config)["bridges"]
    rules = bridges_rules(population, cfg)
    order = list(cfg["priority"])
    met = rules[order].to_numpy()
    # The last segment (healthy) always holds, so argmax finds a segment for everyone.
    first = met.argmax(axis=1)
    segment = pd.Categorical.from_codes(first, categories=order, ordered=True)
    segments = pd.DataFrame({"patient_id": population["patient_id"].to_numpy(),
                             "segment": segment})
    for name in order:
        segments[f"meets_{name}"] = rules[name].to_numpy()
    labels = pd.Series(np.asarray(order, dtype=object)[first], index=population.index)
    table = grouped_outcomes(population, labels, order)
    table.insert(0, "label", [BRIDGES_LABELS.get(k, k) for k in order] + ["All patients"])
    return BridgesResult(segments=segments, table=table, settings=cfg)
