"""Core20PLUS5: the NHS England approach to reducing healthcare inequalities.

* **Core20**: people living in the most deprived 20% of neighbourhoods nationally, i.e. English
  IMD deciles 1 and 2 (``core20plus5.core20_deciles``). Patients with no IMD decile are counted
  separately ("IMD unknown"), never as Core20 or as not Core20.
* **PLUS** groups chosen locally; defaults: ethnic minority communities (ethnicity recorded and
  not White: the contract's ONS 2021 high-level groups Asian, Black, Mixed, Other; White
  minorities such as Gypsy or Irish Traveller cannot be told apart at this level), people with
  a learning disability, autistic people, and people with severe mental illness.
* **5 clinical areas, adults (18+)**: maternity (pregnancy code in the last 9 months), severe
  mental illness, chronic respiratory disease (COPD), early cancer diagnosis (a cancer code in
  the last 12 months, a proxy for a new diagnosis) and hypertension. **Children and young
  people (0-17)**: asthma, diabetes, epilepsy, oral health and mental health; the last two have
  no codes in the shipped lists and are reported as unavailable.

Every PLUS group is configurable: ``{"condition": name}`` (a condition flag of the population
frame), ``{"ethnicity_in": [...]}``, ``{"ethnicity_not_in": [...]}`` or
``{"min_chronic_ltc": k}`` (multimorbidity).
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
from phm_eval.segment._summary import OUTCOME_DISCLOSURE, TOTAL, disclose, outcome_columns
from phm_eval.segment.config import segmentation_config

_BREAKDOWN_DISCLOSURE: dict[str, Any] = {
    "count_cols": ["n_patients", "emergency_admissions", "deaths", "n_core20"],
    "denominator_cols": ["population"],
    "rate_cols": {
        **OUTCOME_DISCLOSURE["rate_cols"],
        "percent_core20": ("n_core20", "n_patients", 100.0),
    },
}


@dataclass(frozen=True, repr=False)
class Core20Plus5Result(ResultConvention):
    """Core20PLUS5 flags per patient and breakdown tables.

    Attributes
    ----------
    flags : DataFrame
        ``patient_id``, ``imd_known``, ``core20``, ``plus_<group>`` per PLUS group,
        ``plus_any``, ``adult_<area>`` and ``cyp_<area>`` per clinical area with codes.
    breakdown : DataFrame
        One row per group (index ``"<kind>:<group>"``): ``kind``, ``group``, ``denominator``
        (who the percentage is of), ``n_patients``, ``population``, ``percent_of_population``,
        ``n_core20`` and ``percent_core20`` (share of the group living in Core20 areas),
        emergency admissions, deaths and rates in the 12 months after the index date. True
        counts. Groups overlap, so the table has no total row.
    by_core20 : DataFrame
        Rows ``core20``, ``not_core20``, ``imd_unknown`` and ``all``: counts, emergency
        admissions and rates per 1,000.
    unavailable : list of str
        Clinical areas with no codes (e.g. children's oral health and mental health).
    """

    flags: pd.DataFrame
    breakdown: pd.DataFrame
    by_core20: pd.DataFrame
    unavailable: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    breakdown_disclosure_spec: dict[str, Any] = field(
        default_factory=lambda: dict(_BREAKDOWN_DISCLOSURE)
    )
    by_core20_disclosure_spec: dict[str, Any] = field(
        default_factory=lambda: {**OUTCOME_DISCLOSURE, "total_row": TOTAL}
    )

    def _repr_fields(self) -> dict[str, Any]:
        return {"patients": len(self.flags), "groups": len(self.breakdown),
                "unavailable": list(self.unavailable)}

    def _summary_table(self) -> pd.DataFrame:
        return self.breakdown.copy()

    def disclose(self, *, policy: DisclosurePolicy | None = None) -> dict[str, DisclosedTable]:
        """Both tables after disclosure control: ``{"breakdown": ..., "by_core20": ...}``."""
        return {
            "breakdown": disclose(self.breakdown, self.breakdown_disclosure_spec, policy),
            "by_core20": disclose(self.by_core20, self.by_core20_disclosure_spec, policy),
        }

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict]:
            table = df.reset_index().astype(object)
            return table.where(table.notna(), None).to_dict(orient="records")

        return {
            "breakdown": records(self.breakdown),
            "by_core20": records(self.by_core20),
            "unavailable": list(self.unavailable),
            "settings": self.settings,
        }


def _plus_flag(pop: pd.DataFrame, name: str, rule: Mapping[str, Any]) -> np.ndarray:
    if not isinstance(rule, Mapping) or len(rule) != 1:
        raise ConfigError(f"core20plus5.plus_groups.{name} must be a mapping with one rule")
    (kind, value), = rule.items()
    ethnicity = pop["ethnicity"].astype("string")
    if kind == "condition":
        if value not in pop.columns:
            raise ConfigError(f"core20plus5.plus_groups.{name}: no condition '{value}'")
        return pop[value].to_numpy(dtype=bool)
    if kind == "ethnicity_in":
        return ethnicity.isin(list(value)).fillna(False).to_numpy(dtype=bool)
    if kind == "ethnicity_not_in":
        # Missing ethnicity is not evidence of belonging to a minority group.
        return (ethnicity.notna() & ~ethnicity.isin(list(value))).fillna(False).to_numpy(
            dtype=bool
        )
    if kind == "min_chronic_ltc":
        return (pop["n_ltc"] >= int(value)).to_numpy()
    raise ConfigError(
        f"core20plus5.plus_groups.{name}: unknown rule '{kind}' (expected condition, "
        "ethnicity_in, ethnicity_not_in or min_chronic_ltc)"
    )


def _area_flags(
    pop: pd.DataFrame, areas: Mapping[str, Any], in_age: np.ndarray, prefix: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    flags, unavailable = {}, []
    for area, column in areas.items():
        if column is None:
            unavailable.append(f"{prefix}{area}")
            continue
        if column not in pop.columns:
            raise ConfigError(f"core20plus5 clinical area '{area}': no column '{column}'")
        flags[f"{prefix}{area}"] = pop[column].to_numpy(dtype=bool) & in_age
    return flags, unavailable


def core20plus5(
    population: pd.DataFrame, config: Mapping[str, Any] | None = None
) -> Core20Plus5Result:
    """Core20, PLUS and clinical-area flags, with counts and emergency admission rates.

    Parameters
    ----------
    population : DataFrame
        Output of :func:`~phm_eval.segment.build_population`.
    config : mapping, optional
        Segmentation settings overrides; the ``core20plus5`` section applies.

    Returns
    -------
    Core20Plus5Result
    """
    cfg = segmentation_config(config)["core20plus5"]
    pop = population
    n = len(pop)
    imd = pop["imd_decile"].astype("Int64")
    imd_known = imd.notna().to_numpy()
    core20 = imd.isin([int(d) for d in cfg["core20_deciles"]]).fillna(False).to_numpy(dtype=bool)
    adult = pop["age"].to_numpy() >= int(cfg["adult_min_age"])

    flags = pd.DataFrame({"patient_id": pop["patient_id"].to_numpy(), "imd_known": imd_known,
                          "core20": core20})
    plus_cols = []
    for name, rule in cfg["plus_groups"].items():
        flags[f"plus_{name}"] = _plus_flag(pop, name, rule)
        plus_cols.append(f"plus_{name}")
    flags["plus_any"] = flags[plus_cols].any(axis=1) if plus_cols else False
    adult_flags, unavailable = _area_flags(pop, cfg["adult_areas"], adult, "adult_")
    cyp_flags, cyp_unavailable = _area_flags(pop, cfg["children_areas"], ~adult, "cyp_")
    unavailable += cyp_unavailable
    for name, values in {**adult_flags, **cyp_flags}.items():
        flags[name] = values

    n_adult, n_cyp = int(adult.sum()), int((~adult).sum())
    rows: dict[str, dict[str, Any]] = {}

    def add(kind: str, group: str, mask: np.ndarray, denominator: str, size: int) -> None:
        row = outcome_columns(pop, mask, size)
        n_core = int((mask & core20).sum())
        row.update(
            kind=kind, group=group, denominator=denominator, n_core20=n_core,
            percent_core20=100.0 * n_core / row["n_patients"] if row["n_patients"] else np.nan,
        )
        rows[f"{kind}:{group}"] = row

    add("core20", "core20", core20, "all registered", n)
    add("core20", "imd_unknown", ~imd_known, "all registered", n)
    for col in plus_cols:
        add("plus", col.removeprefix("plus_"), flags[col].to_numpy(dtype=bool), "all registered", n)
    add("plus", "any", flags["plus_any"].to_numpy(dtype=bool), "all registered", n)
    for col in adult_flags:
        add("adult_clinical_area", col.removeprefix("adult_"), flags[col].to_numpy(dtype=bool),
            f"adults ({int(cfg['adult_min_age'])}+)", n_adult)
    for col in cyp_flags:
        add("children_clinical_area", col.removeprefix("cyp_"), flags[col].to_numpy(dtype=bool),
            f"children and young people (0-{int(cfg['adult_min_age']) - 1})", n_cyp)
    breakdown = pd.DataFrame.from_dict(rows, orient="index")
    front = ["kind", "group", "denominator"]
    breakdown = breakdown[front + [c for c in breakdown.columns if c not in front]]
    breakdown.index.name = "row"

    status = np.where(~imd_known, "imd_unknown", np.where(core20, "core20", "not_core20"))
    by_rows = {
        label: outcome_columns(pop, status == label, n)
        for label in ("core20", "not_core20", "imd_unknown")
    }
    by_rows[TOTAL] = outcome_columns(pop, np.ones(n, dtype=bool), n)
    by_core20 = pd.DataFrame.from_dict(by_rows, orient="index")
    by_core20.index.name = "group"
    return Core20Plus5Result(flags=flags, breakdown=breakdown, by_core20=by_core20,
                             unavailable=unavailable, settings=cfg)


#: Column roles of the reach table for disclosure control (see :func:`reach_table`).
REACH_DISCLOSURE: dict[str, Any] = {
    "count_cols": ["n_eligible", "n_enrolled"],
    "denominator_cols": ["total_eligible", "total_enrolled"],
    "rate_cols": {
        "share_of_eligible_percent": ("n_eligible", "total_eligible", 100.0),
        "share_of_enrolled_percent": ("n_enrolled", "total_enrolled", 100.0),
        "enrolment_per_1000": ("n_enrolled", "n_eligible", 1000.0),
    },
}


def reach_table(
    flags: pd.DataFrame,
    eligible: Any,
    enrolled: Any,
    *,
    policy: DisclosurePolicy | None = None,
) -> DisclosedTable:
    """Who the programme reached: each Core20PLUS5 group among the eligible and the enrolled.

    Parameters
    ----------
    flags : DataFrame
        :attr:`Core20Plus5Result.flags` (``patient_id`` and one boolean column per group).
    eligible, enrolled : iterable of patient ids
        The programme's eligible population and the patients it enrolled (enrolled patients
        not in ``eligible`` are counted as eligible too: they were offered it).
    policy : DisclosurePolicy, optional
        Disclosure rules; NHS Digital's by default.

    Returns
    -------
    DisclosedTable
        One row per group (index ``row``, ``"<kind>:<group>"`` as in the breakdown): ``kind``,
        ``group``, ``n_eligible``, ``share_of_eligible_percent`` (of all eligible),
        ``n_enrolled``, ``share_of_enrolled_percent`` (of all enrolled) and
        ``enrolment_per_1000`` (enrolled per 1,000 eligible in the group), with
        ``total_eligible`` and ``total_enrolled`` (dropped from the formatted table's
        readers by the report).  Counts are suppressed and rounded; every share and rate is
        computed from the disclosed counts.  Groups overlap, so shares do not sum to 100.
    """
    ids = flags["patient_id"]
    enrolled_mask = ids.isin(pd.Index(list(enrolled))).to_numpy()
    eligible_mask = ids.isin(pd.Index(list(eligible))).to_numpy() | enrolled_mask
    total_eligible, total_enrolled = int(eligible_mask.sum()), int(enrolled_mask.sum())
    groups: list[tuple[str, str, str]] = [("core20", "core20", "core20"),
                                          ("core20", "imd_unknown", "imd_unknown")]
    groups += [("plus", c.removeprefix("plus_"), c) for c in flags.columns
               if c.startswith("plus_") and c != "plus_any"]
    if "plus_any" in flags.columns:
        groups.append(("plus", "any", "plus_any"))
    groups += [("adult_clinical_area", c.removeprefix("adult_"), c) for c in flags.columns
               if c.startswith("adult_")]
    groups += [("children_clinical_area", c.removeprefix("cyp_"), c) for c in flags.columns
               if c.startswith("cyp_")]
    rows = {}
    for kind, group, column in groups:
        if column == "imd_unknown":
            mask = ~flags["imd_known"].to_numpy(dtype=bool)
        else:
            mask = flags[column].to_numpy(dtype=bool)
        rows[f"{kind}:{group}"] = {
            "kind": kind, "group": group,
            "n_eligible": int((mask & eligible_mask).sum()),
            "total_eligible": total_eligible,
            "share_of_eligible_percent": np.nan,
            "n_enrolled": int((mask & enrolled_mask).sum()),
            "total_enrolled": total_enrolled,
            "share_of_enrolled_percent": np.nan,
            "enrolment_per_1000": np.nan,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "row"
    return disclose(table, REACH_DISCLOSURE, policy)
