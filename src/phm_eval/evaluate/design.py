"""Study design: the enrolled cohort and comparators selected by the same rules.

For every calendar month in which patients were enrolled, baseline characteristics are measured
for everyone registered on the first day of the following month (the index date; history up to
that date only). The enrolled
patients of that month who meet the eligibility rules form the treated rows; eligible patients in
practices that had not adopted the programme by then (not yet, or never) form the candidate
comparators. Matching is exact on the month, so every comparator has the index date of the
enrolled patient it is matched to. A person may be a candidate in several months (as in a
sequence of target trials); standard errors are clustered on the person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..risk.features_at_dates import risk_features_at_dates

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    """Who a proactive-care programme is for (applied identically to both arms).

    Eligible when aged ``min_age`` or over and either frail (``min_efi_deficits`` eFI deficits
    or more) or recently admitted (``min_recent_emergency_admissions`` emergency admissions in
    the 12 months before the index date). Set either criterion to None to drop it.
    """

    min_age: float = 65
    min_efi_deficits: int | None = 9
    min_recent_emergency_admissions: int | None = 1

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        frail = (frame["efi_deficits"].fillna(0) >= self.min_efi_deficits
                 if self.min_efi_deficits is not None else pd.Series(False, frame.index))
        admitted = (frame["n_emergency_admissions_1y"] >= self.min_recent_emergency_admissions
                    if self.min_recent_emergency_admissions is not None
                    else pd.Series(False, frame.index))
        if self.min_efi_deficits is None and self.min_recent_emergency_admissions is None:
            return frame["age"] >= self.min_age
        return (frame["age"] >= self.min_age) & (frail | admitted)


@dataclass
class Cohort:
    """Treated and candidate rows with baseline covariates, and the flow of exclusions."""

    rows: pd.DataFrame  # one row per (person, index month); column ``treated``
    flow: list[dict] = field(default_factory=list)


def practice_adoption(rollout: pd.DataFrame, practices: pd.DataFrame, programme: str
                      ) -> pd.Series:
    """Adoption date of each practice (NaT if it never adopted): its own row or its PCN's."""
    roll = rollout[rollout["programme"] == programme].copy()
    roll["start_date"] = pd.to_datetime(roll["start_date"])
    if "practice_id" not in roll.columns:
        roll["practice_id"] = None
    practice_level = roll["practice_id"].notna()
    by_practice = roll[practice_level].groupby("practice_id")["start_date"].min()
    by_pcn = roll[~practice_level].groupby("pcn_id")["start_date"].min()
    out = practices.set_index("practice_id")["pcn_id"].map(by_pcn)
    own = by_practice.reindex(out.index)
    return own.combine_first(out).astype("datetime64[ns]")


def build_cohort(
    tables: dict[str, str | Path],
    programme: str,
    *,
    eligibility: Eligibility = Eligibility(),
    codelist_dir: str | Path | None = None,
    study_end: str | None = None,
) -> Cohort:
    """Assemble treated and candidate comparator rows, one batch per enrolment month.

    Parameters
    ----------
    tables : dict
        Paths of the validated ``patients``, ``events``, ``admissions``, ``practices``,
        ``interventions`` and ``rollout`` Parquet files.
    programme : str
        The programme evaluated (``interventions.programme`` / ``rollout.programme``).
    eligibility : Eligibility
    codelist_dir : path, optional
    study_end : str, optional
        Enrolments after this date are excluded (no follow-up).

    Returns
    -------
    Cohort
        ``rows`` has the risk-feature columns plus ``treated`` (0/1), ``index_month``,
        ``enrolment_date`` (treated), ``adoption_date`` (of the person's practice) and
        ``own_enrolment_date`` (comparators enrolled later) and ``censor_date`` (comparators:
        the adoption date of their practice, where follow-up as a comparator ends).
    """
    interventions = pd.read_parquet(tables["interventions"])
    interventions = interventions[interventions["programme"] == programme].copy()
    interventions["enrolment_date"] = pd.to_datetime(interventions["enrolment_date"])
    first = interventions.sort_values("enrolment_date").drop_duplicates("patient_id")
    flow: list[dict] = [{"arm": "enrolled", "step": "read", "reason": "enrolments",
                         "n": len(interventions)}]
    if len(first) < len(interventions):
        flow.append({"arm": "enrolled", "step": "exclude",
                     "reason": "repeat enrolment (first kept)",
                     "n": len(interventions) - len(first)})
    if study_end is not None:
        late = first["enrolment_date"] > pd.Timestamp(study_end)
        flow.append({"arm": "enrolled", "step": "exclude",
                     "reason": "enrolled after the study end", "n": int(late.sum())})
        first = first[~late]
    if first.empty:
        raise EstimationError(f"no enrolments in programme '{programme}' to evaluate")
    practices = pd.read_parquet(tables["practices"])
    rollout = (pd.read_parquet(tables["rollout"]) if tables.get("rollout")
               and Path(tables["rollout"]).exists() else pd.DataFrame(
                   columns=["pcn_id", "practice_id", "programme", "start_date"]))
    adoption = practice_adoption(rollout, practices, programme)
    patients = pd.read_parquet(tables["patients"], columns=["patient_id", "practice_id"])
    first = first.merge(patients, on="patient_id", how="left")
    # Practices without a roll-out row but with enrolments adopted at their first enrolment.
    implied = first.groupby("practice_id")["enrolment_date"].min()
    adoption = adoption.combine_first(implied.reindex(adoption.index))
    # Index date: the first day of the month after enrolment, for both arms. Baseline history
    # then includes everything the enrolment decision could have used (e.g. an admission days
    # before enrolment), so matching can balance it; the few weeks of programme exposure
    # before the index date bias the estimate slightly towards no effect, never away from it.
    first["index_month"] = (first["enrolment_date"].dt.to_period("M") + 1).dt.to_timestamp()
    enrolment_of = first.set_index("patient_id")["enrolment_date"]

    batches = []
    n_not_found = n_ineligible = n_no_comparators = 0
    by_month = dict(tuple(first.groupby("index_month", sort=True)))
    # At each month only two groups are wanted: the enrolled, and candidate comparators in
    # practices that have not adopted yet; features are per person, so the rows are the same.
    not_adopted_at = {
        month.date(): set(practices.loc[~practices["practice_id"].map(adoption).le(month),
                                        "practice_id"])
        | set(enrolled["practice_id"].dropna())
        for month, enrolled in by_month.items()
    }
    features = risk_features_at_dates(
        tables["patients"], tables["events"], tables["admissions"], tables["practices"],
        [m.date() for m in by_month], min_age=eligibility.min_age, codelist_dir=codelist_dir,
        practices_at=not_adopted_at)
    for (month, enrolled), (_, frame) in zip(by_month.items(), features, strict=True):
        frame = frame.drop(columns=[c for c in ("emergency_admission_12m", "died_12m",
                                                "died_without_admission",
                                                "emergency_admission_or_death_12m")
                                    if c in frame.columns])
        eligible = eligibility.mask(frame)
        is_enrolled = frame["patient_id"].isin(enrolled["patient_id"])
        n_not_found += int((~enrolled["patient_id"].isin(frame["patient_id"])).sum())
        n_ineligible += int((is_enrolled & ~eligible).sum())
        treated = frame[is_enrolled & eligible].copy()
        treated["treated"] = 1
        treated["enrolment_date"] = treated["patient_id"].map(enrolment_of)
        practice_start = frame["practice_id"].map(adoption)
        not_adopted = practice_start.isna() | (practice_start > month)
        never_enrolled_yet = ~frame["patient_id"].isin(
            enrolment_of[enrolment_of <= month].index)
        candidates = frame[eligible & not_adopted & never_enrolled_yet & ~is_enrolled].copy()
        if candidates.empty:
            # Every practice had adopted by then: nobody to compare with in this month.
            n_no_comparators += len(treated)
            log.info("index month %s: no eligible comparators; %d enrolled excluded",
                     month.date(), len(treated))
            continue
        candidates["treated"] = 0
        candidates["enrolment_date"] = pd.NaT
        batch = pd.concat([treated, candidates], ignore_index=True)
        batch["index_month"] = month
        batches.append(batch)
        log.info("index month %s: %d enrolled eligible, %d candidate comparators",
                 month.date(), len(treated), len(candidates))
    if not batches:
        raise EstimationError("no eligible comparators in not-yet- or never-adopting practices")
    rows = pd.concat(batches, ignore_index=True)
    rows["adoption_date"] = rows["practice_id"].map(adoption)
    rows["own_enrolment_date"] = rows["patient_id"].map(enrolment_of)
    # Comparators stop being comparators when their practice adopts the programme. Censoring
    # there (a practice-level date) is uninformative; censoring at a comparator's own enrolment
    # would be informative, because enrolment follows that person's recent admissions.
    rows["censor_date"] = rows["adoption_date"].where(rows["treated"] == 0)
    rows["core20"] = rows["imd_decile"].le(2).astype(int)
    flow += [
        {"arm": "enrolled", "step": "exclude",
         "reason": "not registered, alive and of eligible age at the index month",
         "n": n_not_found},
        {"arm": "enrolled", "step": "exclude",
         "reason": "did not meet the eligibility rules at the index month", "n": n_ineligible},
        {"arm": "enrolled", "step": "exclude",
         "reason": "no eligible comparator in not-yet/never-adopting practices that month",
         "n": n_no_comparators},
        {"arm": "enrolled", "step": "kept", "reason": "eligible enrolled patients",
         "n": int(rows["treated"].sum())},
        {"arm": "comparator", "step": "kept",
         "reason": "eligible candidates in not-yet/never-adopting practices (person-months)",
         "n": int((rows["treated"] == 0).sum())},
    ]
    if rows["treated"].sum() == 0:
        raise EstimationError("no enrolled patient met the eligibility rules")
    if (rows["treated"] == 0).sum() == 0:
        raise EstimationError("no eligible comparators in not-yet- or never-adopting practices")
    rows["index_month_code"] = rows["index_month"].dt.strftime("%Y-%m")
    rows["efi_group"] = np.where(rows["efi_deficits"].fillna(0) >= 9, "moderate/severe",
                                 "fit/mild")
    return Cohort(rows=rows, flow=flow)
