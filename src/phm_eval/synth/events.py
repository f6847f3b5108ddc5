"""Primary-care events: condition and deficit codes, medication issues, personalised care.

Built per chunk of patients so that a million-patient population never holds every event in
memory at once. Every code comes from the shipped code lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .conditions import NEVER, Conditions
from .medications import Medicines
from .population import DAYS_PER_YEAR, People, to_days

PERSONALISED_CARE_RATES = {
    # Background activity per 1,000 registered patients per year in the first study year; it
    # grows each year, as practices worked towards the DES targets.
    "pcsp": 8.0,
    "social_prescribing_referral": 7.0,
    "pam": 2.0,
    "smr": 10.0,
    "shared_decision_making": 3.0,
}
ANNUAL_GROWTH = 1.3


@dataclass
class CodeBook:
    """Code arrays used by the generator."""

    vocabulary: np.ndarray  # every SNOMED code the generator can write
    vocabulary_arrow: pa.Array
    condition_codes: list[np.ndarray]  # per condition: vocabulary indices of its codes
    efi_deficit_sets: dict[str, set[int]]  # deficit -> vocabulary indices
    condition_efi_extra: list[np.ndarray | None]  # per condition: eFI codes to add if needed
    medication_codes: np.ndarray  # vocabulary index per medication product
    activity_codes: dict[str, np.ndarray]
    pregnancy_codes: np.ndarray


def build_codebook(conditions: Conditions, ltc, efi, meds, pcare) -> CodeBook:
    """Index every code list into one vocabulary."""
    vocab = sorted(
        set(ltc["snomed_code"]) | set(efi["snomed_code"]) | set(meds["snomed_code"])
        | set(pcare["snomed_code"])
    )
    index = {c: i for i, c in enumerate(vocab)}
    # A code shared by two conditions' lists (e.g. "depression in schizophrenia") would make
    # one condition count as both; the generator writes codes unique to their condition.
    shared = set(ltc.groupby("snomed_code")["condition"].nunique().loc[lambda c: c > 1].index)
    ltc_groups = {}
    for g, sub in ltc.groupby("condition"):
        codes = sorted(set(sub["snomed_code"]) - shared) or sorted(set(sub["snomed_code"]))
        ltc_groups[g] = np.array([index[c] for c in codes])
    efi_groups = {g: np.array([index[c] for c in sorted(set(s["snomed_code"]))])
                  for g, s in efi.groupby("deficit")}
    condition_codes, extra = [], []
    for spec in conditions.specs:
        if spec.source == "ltc":
            if spec.name not in ltc_groups:
                raise KeyError(f"long-term condition '{spec.name}' has no codes in the LTC list")
            condition_codes.append(ltc_groups[spec.name])
            extra.append(efi_groups.get(spec.efi_deficit) if spec.efi_deficit else None)
        else:
            condition_codes.append(efi_groups[spec.name])
            extra.append(None)
    activities = {a: np.array([index[c] for c in sorted(set(s["snomed_code"]))])
                  for a, s in pcare.groupby("activity")}
    return CodeBook(
        vocabulary=np.array(vocab),
        vocabulary_arrow=pa.array(vocab, type=pa.string()),
        condition_codes=condition_codes,
        efi_deficit_sets={g: set(v.tolist()) for g, v in efi_groups.items()},
        condition_efi_extra=extra,
        medication_codes=np.array([index[c] for c in meds["snomed_code"]]),
        activity_codes=activities,
        pregnancy_codes=ltc_groups.get("pregnancy", np.array([], dtype=int)),
    )


def chunk_events(
    lo: int, hi: int, people: People, conditions: Conditions, medicines: Medicines,
    codebook: CodeBook, exit_: np.ndarray, death: np.ndarray, enrolment_day: np.ndarray,
    maternity_days: tuple[np.ndarray, np.ndarray], practice_activity: np.ndarray,
    params: dict, rng: np.random.Generator,
) -> pa.Table:
    """Events of patients ``lo..hi-1`` as an Arrow table in the input contract."""
    pats, days, codes = [], [], []
    # Condition and deficit codes on their onset day.
    onset = conditions.onset[lo:hi]
    for j, code_pool in enumerate(codebook.condition_codes):
        has = np.flatnonzero(onset[:, j] != NEVER)
        if has.size == 0:
            continue
        chosen = code_pool[rng.integers(0, len(code_pool), size=has.size)]
        pats.append(has + lo)
        days.append(onset[has, j])
        codes.append(chosen)
        extra_pool = codebook.condition_efi_extra[j]
        if extra_pool is not None:
            deficit = conditions.specs[j].efi_deficit
            missing = ~np.isin(chosen, list(codebook.efi_deficit_sets[deficit]))
            if missing.any():
                idx = has[missing]
                pats.append(idx + lo)
                days.append(onset[idx, j])
                codes.append(extra_pool[rng.integers(0, len(extra_pool), size=idx.size)])

    # Repeat prescriptions: issues every 28 or 56 days while the drug is current.
    data_start = to_days(params["data_start"])
    sel = (medicines.patient >= lo) & (medicines.patient < hi)
    m_pat = medicines.patient[sel]
    first = np.maximum(medicines.start[sel], data_start)
    last = np.minimum(medicines.stop[sel], exit_[m_pat] - 1)
    interval = medicines.interval[sel]
    n_issue = np.where(last >= first, (last - first) // interval + 1, 0)
    rep = np.repeat(np.arange(len(m_pat)), n_issue)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_issue) - n_issue, n_issue)
    pats.append(m_pat[rep])
    days.append(first[rep] + k * interval[rep])
    codes.append(codebook.medication_codes[medicines.drug[sel][rep]])

    # Personalised care: background activity by practice, growing over time, plus the
    # programme's own care plans and medication reviews at enrolment.
    study_start = to_days(params["study_start"])
    study_end = to_days(params["study_end"])
    n = hi - lo
    local = np.arange(lo, hi)
    entry = np.maximum(people.reg_start[lo:hi], study_start)
    for a, (activity, rate) in enumerate(PERSONALISED_CARE_RATES.items()):
        pool = codebook.activity_codes.get(activity)
        if pool is None or len(pool) == 0:
            continue
        for year_start in range(study_start, study_end, 365):
            s = np.maximum(entry, year_start)
            e = np.minimum(exit_[lo:hi], min(year_start + 365, study_end + 1))
            expo = np.clip(e - s, 0, None) / DAYS_PER_YEAR
            growth = ANNUAL_GROWTH ** ((year_start - study_start) // 365)
            age = people.age_at(year_start)[lo:hi]
            need = np.where(age >= 65, 3.0, np.where(age >= 18, 0.8, 0.2))
            lam = rate / 1000 * growth * need * practice_activity[people.practice_index[lo:hi], a]
            count = rng.poisson(lam * expo)
            idx = np.repeat(np.arange(n), count)
            pats.append(local[idx])
            days.append(s[idx] + np.floor(rng.random(len(idx)) * (e - s)[idx]).astype(np.int64))
            codes.append(pool[rng.integers(0, len(pool), size=len(idx))])
    enrolled = np.flatnonzero(enrolment_day[lo:hi] >= 0)
    for activity, offset in (("pcsp", 0), ("smr", 21)):
        pool = codebook.activity_codes.get(activity)
        if pool is None or len(pool) == 0 or enrolled.size == 0:
            continue
        pats.append(enrolled + lo)
        days.append(enrolment_day[lo:hi][enrolled] + offset)
        codes.append(pool[rng.integers(0, len(pool), size=enrolled.size)])

    # Pregnancy codes about eight months before each maternity spell.
    m_patient, m_day = maternity_days
    msel = (m_patient >= lo) & (m_patient < hi)
    if msel.any() and len(codebook.pregnancy_codes):
        pats.append(m_patient[msel])
        days.append(np.maximum(m_day[msel] - 240, people.dob[m_patient[msel]]))
        codes.append(codebook.pregnancy_codes[
            rng.integers(0, len(codebook.pregnancy_codes), size=int(msel.sum()))])

    patient = np.concatenate(pats).astype(np.int64)
    day = np.concatenate(days).astype(np.int64)
    code = np.concatenate(codes).astype(np.int64)
    # Only what the practice could record: up to death or leaving, and not after the study end.
    observed_to = np.where(death[patient] >= 0, death[patient], exit_[patient] - 1)
    keep = (day <= np.minimum(observed_to, study_end)) & (day >= people.dob[patient])
    patient, day, code = patient[keep], day[keep], code[keep]
    order = np.lexsort((code, day, patient))
    patient, day, code = patient[order], day[order], code[order]
    # Strings are built by Arrow from dictionary indices: far faster than numpy string arrays.
    ids = pa.DictionaryArray.from_arrays(
        pa.array((patient - lo).astype(np.int32)), pa.array(people.patient_id[lo:hi]))
    codes = pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int32)),
                                           codebook.vocabulary_arrow)
    return pa.table(
        {
            "patient_id": ids.cast(pa.string()),
            "date": pa.array(day.astype(np.int32), type=pa.date32()),
            "snomed_code": codes.cast(pa.string()),
            "value": pa.nulls(len(patient), type=pa.float64()),
        }
    )
