"""The whole evaluation on validated tables: cohort, matching, follow-up and every estimate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_eval import DEFAULT_SEED
from phm_eval.convention import ResultConvention

from ..errors import ConfigError, EstimationError, InputError
from ..matching import MatchResult, NearestNeighborMatcher
from . import effects as fx
from .design import Cohort, Eligibility, build_cohort
from .event_study import event_study
from .outcomes import follow_up

log = logging.getLogger(__name__)
COVARIATES = ["age", "efi_deficits", "n_emergency_admissions_1y", "n_emergency_admissions_2y",
              "bed_days_1y", "n_ltc", "n_medications", "hfrs", "imd_decile", "female",
              "ltc_copd", "ltc_heart_failure", "ltc_dementia", "ltc_diabetes"]
SUBGROUPS = ("efi_group", "core20_group", "age_group")
# Regression adjustment on the matched sample removes the imbalance matching leaves within pairs
# (doubly robust in spirit: matching for design, the model for what is left).
ADJUSTMENT = ["n_emergency_admissions_1y", "n_emergency_admissions_2y", "efi_deficits", "age",
              "bed_days_1y"]
# Problems with the user's data or configuration stop the run; anything else an estimator
# raises means that one estimate cannot be made, which is recorded (null, with the reason).
STOPS_THE_RUN = (InputError, ConfigError)
# Standard errors of every matched estimate are clustered on matched sets, joined where they
# share a person (a person can be matched in several index months), so the clusters nest both
# the matched set (Abadie & Spiess 2022) and the person.
CLUSTER = "match_cluster"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, EstimationError) else f"{type(exc).__name__}: {text}"


def _estimate(fit: Callable[[], fx.Effect], outcome: str, method: str, scale: str,
              data: pd.DataFrame | None, label: str = "",
              subgroup: str | None = None) -> fx.Effect:
    """``fit()``, or a not-estimable record (null estimate, reason in ``note``) if it fails."""
    try:
        return fit()
    except STOPS_THE_RUN:
        raise
    except Exception as exc:
        log.warning("%s not estimable: %s", label or outcome, _reason(exc))
        return fx.not_estimable(outcome, method, scale, _reason(exc), data, label=label,
                                subgroup=subgroup)


@dataclass(frozen=True, repr=False)
class EvaluationResult(ResultConvention):
    """Estimates and the data behind the tables and figures (patient-level: keep inside;
    read-only). ``summary`` is one row per estimate."""

    records: list[dict]
    cohort: Cohort
    matching: MatchResult
    analysed: pd.DataFrame
    rtm: pd.DataFrame
    naive: fx.Effect
    did: fx.Effect
    study_panel: dict | None
    flow: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def headline(self) -> dict:
        return next(r for r in self.records if r.get("headline"))

    def _repr_fields(self) -> dict[str, Any]:
        headline = next((r for r in self.records if r.get("headline")), {})
        estimate = headline.get("estimate")
        return {"estimates": len(self.records), "analysed": len(self.analysed),
                "headline": None if estimate is None else round(float(estimate), 4)}

    def _summary_table(self) -> pd.DataFrame:
        """One row per estimate."""
        cols = ["outcome", "method", "subgroup", "estimate", "ci_low", "ci_high", "scale",
                "n_treated", "n_control"]
        return pd.DataFrame(self.records).reindex(columns=cols)


def match_cohort(rows: pd.DataFrame, *, matching: dict[str, Any] | None = None,
                 seed: int = DEFAULT_SEED
                 ) -> tuple[pd.DataFrame, MatchResult, pd.DataFrame]:
    """Match enrolled rows to comparators: the matched sets every estimate is built on.

    Nearest neighbour on the logit of a propensity score of :data:`COVARIATES`, caliper 0.2 SD,
    exact on the index month, the recent-admission band (0, 1, 2, 3+ emergency admissions in
    the year before) and the frailty group.

    Parameters
    ----------
    rows : pandas.DataFrame
        The cohort's rows (:class:`~phm_eval.evaluate.design.Cohort`): ``treated``,
        ``index_month_code``, ``efi_group``, ``sex``, ``imd_decile`` and the covariates.
    matching : dict, optional
        ``ratio``, ``caliper``, ``exact`` (see :func:`evaluate_programme`).
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)

    Returns
    -------
    tuple
        The rows with derived columns (``female``, ``recent_admissions_band``), the
        :class:`~phm_eval.matching.MatchResult`, and the matched rows with ``matched_set``
        (one enrolled patient and its comparators) and ``match_cluster`` (matched sets joined
        where they share a person: the cluster of every matched estimate's standard errors).
    """
    matching = dict(matching or {})
    rows = rows.copy()
    rows["female"] = (rows["sex"] == "F").astype(int)
    rows["imd_decile"] = rows["imd_decile"].fillna(rows["imd_decile"].median())
    # Recent admissions drive both enrolment and outcome: match exactly on their band as well
    # as on the propensity score, so pairs do not trade three admissions for two.
    rows["recent_admissions_band"] = np.minimum(rows["n_emergency_admissions_1y"], 3)
    # The same for frailty, whose eligibility threshold (moderate/severe eFI) a linear score
    # cannot capture.
    exact = ["index_month_code", "recent_admissions_band", "efi_group",
             *matching.get("exact", [])]
    matcher = NearestNeighborMatcher(ratio=int(matching.get("ratio", 1)),
                                     caliper=matching.get("caliper", 0.2), exact=exact,
                                     seed=seed)
    result = matcher.fit(rows, "treated", COVARIATES)
    matched = result.matched_data().copy()
    fx.check_matched(matched)
    # Matched sets (each enrolled patient with its comparators) and the clusters of every
    # matched estimate's standard errors: sets joined where they share a person.
    matched["matched_set"] = matched["subclass"].astype(int)
    matched["match_cluster"] = fx.matched_set_clusters(matched)
    return rows, result, matched


def evaluate_programme(
    tables: dict[str, str | Path],
    programme: str,
    study_end: str,
    *,
    eligibility: Eligibility | None = None,
    matching: dict[str, Any] | None = None,
    follow_up_days: int = 365,
    lookback_days: int = 365,
    codelist_dir: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    subgroups: bool = True,
    event_study_panel: bool = True,
) -> EvaluationResult:
    """Evaluate a proactive-care programme's effect on emergency admissions.

    Parameters
    ----------
    tables : dict
        Validated Parquet paths: ``patients``, ``events``, ``admissions``, ``practices``,
        ``interventions``, ``rollout``.
    programme, study_end : str
    eligibility : Eligibility, optional
        Applied to both arms at the index month.
    matching : dict, optional
        ``ratio`` (default 1), ``caliper`` (0.2 SD of the logit propensity score), ``exact``
        (extra columns to match exactly on; the index month is always exact).
    follow_up_days, lookback_days : int
    codelist_dir : path, optional
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
    subgroups, event_study_panel : bool
        Whether to estimate subgroup effects and the monthly event study.

    Returns
    -------
    EvaluationResult
        ``records`` are the effect records of ``effects.json``; the headline is the negative
        binomial rate ratio of emergency admissions (it estimates the rate ratio directly,
        unlike a Cox hazard ratio of first admission, which unobserved frailty attenuates).
    """
    matching = dict(matching or {})
    cohort = build_cohort(tables, programme, eligibility=eligibility or Eligibility(),
                          codelist_dir=codelist_dir, study_end=study_end)
    rows, result, matched = match_cohort(cohort.rows, matching=matching, seed=seed)
    # Both arms start follow-up on the index date of their matched set (exact on the month).
    matched["index_date"] = matched["index_month"]
    matched["row_id"] = np.arange(len(matched))
    analysed = follow_up(matched, tables["patients"], tables["admissions"], study_end,
                         follow_up_days=follow_up_days, lookback_days=lookback_days)

    records: list[dict] = []
    rr_method = "negative binomial rate ratio (matched, adjusted)"
    headline = _estimate(lambda: fx.rate_ratio(analysed, label="emergency admissions, rate ratio",
                                               adjust=ADJUSTMENT, cluster=CLUSTER),
                         fx.OUTCOME_NAMES["emergency_admissions"], rr_method, "RR", analysed,
                         "emergency admissions, rate ratio")
    comparators = analysed[analysed["treated"] == 0]
    baseline = 1000 * comparators["emergency_admissions"].sum() / comparators["person_years"].sum()
    records.append(headline.to_dict() | {"headline": True, "baseline_rate_per_1000": baseline})
    cox_method = "Cox proportional hazards (cause-specific, matched)"
    records.append(_estimate(lambda: fx.cox_hazard_ratio(analysed, 1, "first emergency admission",
                                                         CLUSTER),
                             "first emergency admission", cox_method, "HR", analysed,
                             "first emergency admission hazard ratio").to_dict())
    # The same comparison within matched sets: a baseline hazard per set (R's strata()), so
    # each enrolled patient is compared only with their own comparators.
    records.append(_estimate(lambda: fx.cox_hazard_ratio(analysed, 1, "first emergency admission",
                                                         CLUSTER, strata="matched_set"),
                             "first emergency admission",
                             "Cox proportional hazards stratified on matched sets "
                             "(cause-specific)", "HR", analysed,
                             "first emergency admission hazard ratio within matched sets"
                             ).to_dict())
    records.append(_estimate(lambda: fx.fine_gray(analysed, cluster=CLUSTER), "first emergency admission",
                             "Fine-Gray subdistribution hazards (matched)", "SHR", analysed,
                             "first emergency admission, death as competing risk").to_dict())
    records.append(_estimate(lambda: fx.cox_hazard_ratio(analysed, 2, "death", CLUSTER),
                             "death", cox_method, "HR", analysed).to_dict()
                   | {"label": "mortality hazard ratio (cause-specific)"})
    for outcome in ("bed_days", "readmissions_30d"):
        records.append(_estimate(
            lambda o=outcome: fx.rate_ratio(analysed, o, label=f"{o} rate ratio",
                                            adjust=ADJUSTMENT, cluster=CLUSTER),
            fx.OUTCOME_NAMES[outcome], rr_method, "RR", analysed, f"{outcome} rate ratio",
        ).to_dict())
    did_label = "change in emergency admission rate, enrolled minus comparators"
    try:
        did, rtm = fx.did_before_after(analysed, cluster=CLUSTER,
                                       conservative_cluster="patient_id")
    except STOPS_THE_RUN:
        raise
    except Exception as exc:
        log.warning("difference in differences not estimable: %s", _reason(exc))
        did = fx.not_estimable("emergency admissions per 1,000 person-years",
                               "difference in differences (matched, before vs after)",
                               "difference", _reason(exc), analysed, label=did_label)
        rtm = fx.rtm_table(analysed)
    records.append(did.to_dict())
    naive = _estimate(lambda: fx.naive_before_after(analysed), "emergency admissions",
                      "naive before/after (enrolled only, uncontrolled)", "RR",
                      analysed[analysed["treated"] == 1],
                      "naive before/after rate ratio (biased: regression to the mean)")
    records.append(naive.to_dict())

    analysed["age_group"] = np.where(analysed["age"] >= 80, "80+", "65-79")
    analysed["core20_group"] = np.where(analysed["core20"] == 1, "Core20", "not Core20")
    if subgroups:
        for column in SUBGROUPS:
            for level, sub in analysed.groupby(column):
                # subgroups below 20 per arm are not analysed (a pre-specified rule)
                if sub["treated"].sum() >= 20 and (sub["treated"] == 0).sum() >= 20:
                    name = f"{column}={level}"
                    records.append(_estimate(
                        lambda s=sub, n=name, lv=level: fx.rate_ratio(
                            s, subgroup=n, label=str(lv), adjust=ADJUSTMENT, cluster=CLUSTER),
                        fx.OUTCOME_NAMES["emergency_admissions"], rr_method, "RR", sub,
                        str(level), name).to_dict())
    study_panel = None
    if event_study_panel:
        try:
            study_panel = event_study(analysed, str(tables["admissions"]), seed=seed,
                                      cluster_col=CLUSTER)
            records.append({"fallback": None, "note": None} | study_panel["effect"])
        except STOPS_THE_RUN:
            raise
        except Exception as exc:
            log.warning("event study not estimable: %s", _reason(exc))
            study_panel = None
            records.append(fx.not_estimable(
                "emergency admissions per 1,000 person-years",
                "difference in differences, 12 months before vs after (Callaway & Sant'Anna "
                "engine, matched)", "ATT", _reason(exc), analysed,
                label="average change in admissions per 1,000 person-years, enrolled vs "
                      "comparators").to_dict())
    flow = pd.DataFrame(cohort.flow + [
        {"arm": "enrolled", "step": "matched", "reason": "matched to a comparator",
         "n": int(matched["treated"].sum())},
        {"arm": "enrolled", "step": "exclude", "reason": "no comparator within the caliper",
         "n": int(rows["treated"].sum() - matched["treated"].sum())},
        {"arm": "comparator", "step": "matched", "reason": "matched comparators",
         "n": int((matched["treated"] == 0).sum())},
    ])
    return EvaluationResult(records, cohort, result, analysed, rtm, naive, did, study_panel,
                            flow)
