"""Words for people: one table of display labels for everything a reader sees.

The stages write short machine names (``bed_days``, ``efi_group=fit/mild``,
``core20:core20``, ``sexF``, ``index_month_code2020-11``, ``pcsp``); the report, the
manuscript and every figure show them through :func:`label`, so that no internal identifier
reaches a reader.  An unknown name still reads as words: underscores become spaces, known
prefixes and suffixes (``n_``, ``ltc_``, ``_1y``, ``_30d``) are spelled out, and the first
letter is capitalised.

Examples
--------
>>> label("covariate", "index_month_code2020-11")
'Index month: November 2020'
>>> label("subgroup", "efi_group=fit/mild")
'Frailty: fit or mild'
>>> label("core20", "plus:any")
'Any PLUS group'
>>> label("outcome", "readmissions_30d")
'Emergency readmissions within 30 days'
>>> label("covariate", "n_frobnications_2y")
'Number of frobnications in the previous 2 years'
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping

__all__ = [
    "DES_EXPLANATIONS",
    "KINDS",
    "LABELS",
    "des_explanation",
    "humanise_text",
    "label",
    "fallback_label",
    "looks_internal",
    "method_label",
    "model_name",
    "shown_name",
    "words",
]

#: Outcomes, by the names stages and records use.
_OUTCOMES = {
    "emergency_admissions": "Emergency admissions",
    "emergency admissions": "Emergency admissions",
    "emergency_admission_12m": "An emergency admission within 12 months",
    "first emergency admission": "Time to first emergency admission",
    "time to first emergency admission": "Time to first emergency admission",
    "emergency admissions per 1,000 person-years": "Emergency admissions per 1,000 person-years",
    "emergency admissions per 1,000 person-months": "Emergency admissions per 1,000 "
                                                   "person-months",
    "bed_days": "Emergency bed days",
    "emergency bed days": "Emergency bed days",
    "readmissions_30d": "Emergency readmissions within 30 days",
    "emergency readmissions within 30 days": "Emergency readmissions within 30 days",
    "death": "Deaths",
    "deaths": "Deaths",
    "died_followup": "Deaths",
}

#: Estimation methods, by short key (records carry methods in words already).
_METHODS = {
    "negative_binomial": "Negative binomial rate model",
    "poisson": "Poisson rate model",
    "cox": "Cox proportional hazards model",
    "cox_strata": "Cox model stratified on matched sets",
    "fine_gray": "Fine-Gray model (death as a competing risk)",
    "did": "Difference in differences",
    "callaway_santanna": "Staggered difference in differences (Callaway and Sant'Anna)",
    "naive": "Before and after, enrolled patients only (uncontrolled)",
    "penalised_logistic": "Penalised logistic regression",
    "gradient_boosting": "Gradient boosting",
}

#: The two questions the evaluation answers.
_ESTIMANDS = {
    "ATT enrolled": "Effect on the patients enrolled",
    "ITT population": "Effect on the whole eligible population",
}

#: Longer descriptions of the estimands, for the report's explanations.
ESTIMAND_QUESTIONS = {
    "ATT enrolled": "What did the programme change for the patients it enrolled, compared with "
                    "similar patients who were not enrolled?",
    "ITT population": "What did offering the programme change across everyone eligible in the "
                      "practices that ran it, enrolled or not, compared with practices that had "
                      "not started?",
}

#: Effect scales.
_SCALES = {
    "HR": "Hazard ratio",
    "SHR": "Subdistribution hazard ratio",
    "RR": "Rate ratio",
    "ATT": "Average effect on the enrolled",
    "difference": "Difference",
}

#: Subgroup variables (``<variable>=<value>`` in effects.json).
_SUBGROUP_VARIABLES = {
    "efi_group": "Frailty",
    "efi_category": "Frailty",
    "core20_group": "Deprivation",
    "core20": "Deprivation",
    "age_group": "Age",
    "age_band": "Age",
    "sex": "Sex",
    "imd_quintile": "Deprivation quintile",
    "imd_decile": "Deprivation decile",
    "ethnicity": "Ethnic group",
    "recent_admissions_band": "Emergency admissions in the previous year",
}

#: Subgroup and category values.
_VALUES = {
    "fit/mild": "fit or mild",
    "moderate/severe": "moderate or severe",
    "fit": "fit",
    "mild": "mild",
    "moderate": "moderate",
    "severe": "severe",
    "Core20": "most deprived 20% of neighbourhoods (Core20)",
    "core20": "most deprived 20% of neighbourhoods (Core20)",
    "not Core20": "other neighbourhoods",
    "not_core20": "other neighbourhoods",
    "imd_unknown": "deprivation not known",
    "65-79": "65 to 79",
    "80+": "80 and over",
    "18-64": "18 to 64",
    "F": "female",
    "M": "male",
    "I": "indeterminate",
    "U": "not known",
    "3+": "3 or more",
    "all": "everyone",
    "children_young_people": "children and young people",
    "adults": "adults",
    "older_people": "older people",
    "generally_well": "generally well",
    "long_term_conditions": "long-term conditions",
    "complex_needs": "complex needs",
    "enrolled": "enrolled patients",
    "matched comparators": "matched comparators",
    "unknown": "not known",
}

#: Conditions (long-term conditions, Core20PLUS5 groups and clinical areas).
_CONDITIONS = {
    "asthma": "Asthma",
    "atrial_fibrillation": "Atrial fibrillation",
    "autism": "Autism",
    "cancer": "Cancer",
    "cancer_recent": "Cancer diagnosed in the last 12 months",
    "chd": "Coronary heart disease",
    "ckd": "Chronic kidney disease",
    "copd": "COPD",
    "dementia": "Dementia",
    "depression": "Depression",
    "diabetes": "Diabetes",
    "epilepsy": "Epilepsy",
    "heart_failure": "Heart failure",
    "hypertension": "Hypertension",
    "learning_disability": "Learning disability",
    "osteoarthritis": "Osteoarthritis",
    "pregnancy": "Pregnancy",
    "smi": "Severe mental illness",
    "stroke_tia": "Stroke or transient ischaemic attack",
    "maternity": "Maternity",
    "chronic_respiratory_disease": "Chronic respiratory disease",
    "early_cancer_diagnosis": "Early cancer diagnosis",
    "oral_health": "Oral health",
    "mental_health": "Mental health",
    "ethnic_minority": "Ethnic minority groups",
}

#: Core20PLUS5 rows (``<kind>:<group>`` in segment/core20plus5.csv).
_CORE20_KINDS = {
    "core20": "",
    "plus": "PLUS group",
    "adult_clinical_area": "adults",
    "children_clinical_area": "children and young people",
}
_CORE20 = {
    "core20:core20": "Core20: most deprived 20% of neighbourhoods",
    "core20:imd_unknown": "Deprivation not known (no IMD decile)",
    "core20:not_core20": "Other neighbourhoods (not Core20)",
    "plus:any": "Any PLUS group",
    "plus:ethnic_minority": "PLUS: ethnic minority groups",
    "plus:learning_disability": "PLUS: people with a learning disability",
    "plus:autism": "PLUS: autistic people",
    "plus:smi": "PLUS: people with severe mental illness",
}

#: Network Contract DES personalised-care activities.
_DES = {
    "pcsp": "Personalised care and support plans",
    "smr": "Structured medication reviews",
    "pam": "Patient activation measures",
    "social_prescribing_referral": "Social prescribing referrals",
    "social_prescribing": "Social prescribing referrals",
    "shared_decision_making": "Shared decision making",
}

#: One line on each DES activity, for readers who do not know the acronyms.
DES_EXPLANATIONS = {
    "pcsp": "Personalised care and support plan (PCSP): a plan agreed between a patient and "
            "their care team about what matters to them and how their care will meet it.",
    "smr": "Structured medication review (SMR): a clinician reviews all of a patient's "
           "medicines with them, to keep those that help and stop those that no longer do.",
    "pam": "Patient activation measure (PAM): a short questionnaire of how much knowledge, "
           "skill and confidence a person has to manage their own health.",
    "social_prescribing_referral": "Social prescribing referral: a referral to a link worker "
                                   "who connects the patient with community support such as "
                                   "groups, advice and activities.",
    "shared_decision_making": "Shared decision making: a conversation in which patient and "
                              "clinician choose a test or treatment together.",
}

#: Balance covariates and model predictors.
_COVARIATES = {
    "distance": "Matching score (propensity)",
    "age": "Age (years)",
    "female": "Female",
    "efi_deficits": "Frailty deficits (eFI count)",
    "efi_score": "Electronic Frailty Index score",
    "efi": "Electronic Frailty Index score",
    "hfrs": "Hospital Frailty Risk Score",
    "imd_decile": "Deprivation decile (IMD)",
    "imd_quintile": "Deprivation quintile (IMD)",
    "n_ltc": "Number of long-term conditions",
    "n_medications": "Number of repeat medicines",
    "n_emergency_admissions_1y": "Emergency admissions in the previous year",
    "n_emergency_admissions_2y": "Emergency admissions in the previous 2 years",
    "bed_days_1y": "Emergency bed days in the previous year",
    "list_size": "Registered patients",
    "predicted_risk": "Predicted risk",
    "risk_tier": "Risk tier",
    "recent_admissions_band": "Emergency admissions in the previous year (band)",
    "n_gp_events_1y": "Number of GP events in the previous year",
    "gp_events_1y": "GP events in the previous year",
}

#: One-hot prefixes (``<variable><value>``) and how their variable reads.
_ONE_HOT = {
    "index_month_code": "Index month",
    "recent_admissions_band": "Emergency admissions in the previous year",
    "efi_group": "Frailty (eFI)",
    "efi_category": "Frailty (eFI)",
    "sex": "Sex",
    "ethnicity": "Ethnic group",
    "age_band": "Age band",
    "imd_quintile": "Deprivation quintile (IMD)",
    "imd_decile": "Deprivation decile (IMD)",
    "core20_group": "Deprivation",
    "practice_id": "Practice",
    "pcn_id": "PCN",
}

#: Every table, by kind.
LABELS: dict[str, dict[str, str]] = {
    "outcome": _OUTCOMES,
    "method": _METHODS,
    "estimand": _ESTIMANDS,
    "scale": _SCALES,
    "subgroup_variable": _SUBGROUP_VARIABLES,
    "value": _VALUES,
    "condition": _CONDITIONS,
    "core20": _CORE20,
    "des_activity": _DES,
    "covariate": _COVARIATES,
}
KINDS = (*LABELS, "subgroup")

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_SNAKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")


def _month(value: str) -> str | None:
    match = _MONTH.match(value.strip())
    if match and 1 <= int(match.group(2)) <= 12:
        return f"{calendar.month_name[int(match.group(2))]} {match.group(1)}"
    return None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lower-case the first letter, unless it starts an acronym (``COPD``, ``PLUS``)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def words(key: object) -> str:
    """Any machine name as words: the fallback of :func:`label` (never snake_case).

    ``n_`` becomes "Number of", ``ltc_`` "Long-term condition:", ``_1y`` "in the previous
    year", ``_<k>y`` "in the previous k years", ``_<k>d`` "within k days" and ``_12m``
    "within 12 months"; remaining underscores become spaces.
    """
    text = str(key).strip()
    if not text:
        return ""
    for sep in ("=", ":"):
        if sep in text:
            head, _, tail = text.partition(sep)
            return f"{words(head)}: {_lower_first(words(tail))}".strip(": ")
    if text in _CONDITIONS:
        return _CONDITIONS[text]
    if text.startswith("ltc_"):
        return "Long-term condition: " + _lower_first(label("condition", text[4:]))
    suffix = ""
    found = re.search(r"_(\d+)([ydm])$", text)
    if found:
        k, unit = int(found.group(1)), found.group(2)
        text = text[: found.start()]
        suffix = {
            "y": " in the previous year" if k == 1 else f" in the previous {k} years",
            "d": f" within {k} days",
            "m": f" within {k} months",
        }[unit]
    if text.startswith("n_"):
        text = "number of " + text[2:]
    text = re.sub(r"_+", " ", text).strip()
    return _capital(text + suffix)


def _one_hot(key: str) -> str | None:
    for prefix in sorted(_ONE_HOT, key=len, reverse=True):
        if key.startswith(prefix) and len(key) > len(prefix):
            value = key[len(prefix):].lstrip("_=:[").rstrip("]")
            if not value:
                return None
            shown = _month(value) or _VALUES.get(value) or words(value)
            return f"{_ONE_HOT[prefix]}: {shown}"
    return None


def _subgroup(key: str) -> str:
    variable, _, value = key.partition("=")
    name = _SUBGROUP_VARIABLES.get(variable.strip()) or words(variable)
    value = value.strip()
    shown = _VALUES.get(value) or _month(value) or words(value).lower()
    # "Deprivation: most deprived 20% ..." reads better than repeating the variable.
    return f"{name}: {shown}"


def _core20(key: str) -> str:
    kind, _, group = key.partition(":")
    if not group:
        return _CORE20.get(f"core20:{kind}") or _CONDITIONS.get(kind) or words(kind)
    name = _CONDITIONS.get(group) or _VALUES.get(group) or words(group)
    where = _CORE20_KINDS.get(kind)
    if where is None:
        return f"{words(kind)}: {_lower_first(name)}"
    if kind == "plus":
        return f"PLUS: {_lower_first(name)}"
    return f"{name} ({where})" if where else _capital(name)


def label(kind: str, key: object) -> str:
    """The words a reader sees for a machine name.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`: ``"outcome"``, ``"method"``, ``"estimand"``, ``"scale"``,
        ``"subgroup"`` (``variable=value``), ``"subgroup_variable"``, ``"value"``,
        ``"condition"``, ``"core20"`` (``kind:group`` rows of Core20PLUS5 tables),
        ``"des_activity"`` or ``"covariate"`` (balance rows and predictors, one-hot names
        such as ``sexF`` included).
    key : object
        The machine name.  ``None`` gives an empty string.

    Returns
    -------
    str
        The display label; for an unknown key, :func:`words` of it (never snake_case).
    """
    if key is None:
        return ""
    text = str(key).strip()
    table: Mapping[str, str] = LABELS.get(kind, {})
    if text in table:
        return table[text]
    if kind == "subgroup":
        if "=" in text:
            return _subgroup(text)
        return _capital(_VALUES[text]) if text in _VALUES else words(text)
    if kind == "core20":
        return _core20(text)
    if kind == "covariate":
        if text in _CONDITIONS:
            return _CONDITIONS[text]
        return _one_hot(text) or words(text)
    if kind == "value":
        return _month(text) or (words(text).lower() if "_" in text else text)
    if kind == "outcome" and text.lower() in _OUTCOMES:
        return _OUTCOMES[text.lower()]
    return words(text)


def looks_internal(name: object) -> bool:
    """True for a machine name a reader should not see as it is: snake_case, ``var=value``,
    ``kind:group`` or a one-hot name such as ``sexF``."""
    text = str(name)
    if re.search(r"[_=]", text) or re.fullmatch(r"[a-z0-9]+:[a-z0-9]+", text):
        return True
    return any(text.startswith(p) and len(text) > len(p) for p in _ONE_HOT)


def shown_name(kind: str, name: object) -> str:
    """``label(kind, name)`` for a machine name (:func:`looks_internal`), else the name as it
    is: plain words a caller chose (``age``, ``frail``) are kept."""
    return label(kind, name) if looks_internal(name) else str(name)


def des_explanation(activity: object) -> str | None:
    """The one-line explanation of a DES activity (by key or by its label), if known."""
    text = str(activity).strip()
    if text in DES_EXPLANATIONS:
        return DES_EXPLANATIONS[text]
    for key, shown in _DES.items():
        if shown.lower() == text.lower() and key in DES_EXPLANATIONS:
            return DES_EXPLANATIONS[key]
    return None


def humanise_text(text: str, kind: str = "covariate") -> str:
    """Replace every snake_case token in free text by its label (``kind`` first, then any).

    Used on text written by other modules (method names, notes, the model card) before a
    reader sees it.  Tokens that look like file paths (``risk/model_card.md``) are left alone.
    """
    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        before = text[max(0, match.start() - 1):match.start()]
        after = text[match.end():match.end() + 1]
        if before in ("/", ".") or after in ("/", "."):
            return token
        shown = None
        for k in (kind, "covariate", "condition", "des_activity", "outcome"):
            if token in LABELS.get(k, {}):
                shown = LABELS[k][token]
                break
        shown = shown or label("covariate", token)
        at_start = not text[:match.start()].strip() or text[:match.start()].rstrip()[-1] == "."
        return shown if at_start else _lower_first(shown)

    return _SNAKE.sub(swap, text)


# --------------------------------------------------------------------------- methods in words
#: The units a population design compares, by the word the record clusters on.
_UNIT_WORDS = {"practice": "practices", "pcn": "PCNs", "PCN": "PCNs", "unit": "areas"}


def _rate_words(outcome: str | None) -> str:
    if not outcome:
        return "rate"
    what = re.sub(r"\s+per 1,000 person-(?:years|months)$", "", str(outcome).strip())
    return f"rate of {_lower_first(label('outcome', what))}"


def method_label(method: object, outcome: str | None = None, unit: str | None = None) -> str:
    """What a recorded method did, in plain words a commissioner can read.

    Derived piece by piece from the ``method`` string the run recorded in
    ``evaluate/effects.json`` (which stays exact and technical: it is the record), so the
    words claim only what ran: "adjusted" only for an adjusted model, "within each matched
    set" only for a stratified one, the comparison units the population design actually used.
    An unknown method is shown as :func:`humanise_text` of the record.

    Parameters
    ----------
    method : str
        The ``method`` of an effect record.
    outcome : str, optional
        The record's outcome, for "rate of emergency admissions ..." (rate models only).
    unit : str, optional
        The population design's unit (``practice``, ``PCN``); read from "clustered on ..."
        when not given.

    Returns
    -------
    str
        A phrase starting with a lower-case letter (capitalise it to start a cell).

    Examples
    --------
    >>> method_label("negative binomial rate ratio (matched, adjusted)", "emergency admissions")
    'rate of emergency admissions compared with matched similar patients, adjusted for \
differences at baseline'
    >>> method_label("Cox proportional hazards stratified on matched sets (cause-specific)")
    'time to the first event, each enrolled patient compared with their own matched comparators'
    """
    text = str(method or "").strip()
    low = text.lower()
    if not text:
        return "method not recorded"
    if low.endswith(": not run"):
        return f"{_lower_first(label('estimand', text[:-len(': not run')]))}: not run"
    if "naive" in low or "uncontrolled" in low:
        return "enrolled patients before against after enrolment, with no comparison group"
    if "population difference in differences" in low or "staggered" in low:
        found = re.search(r"clustered on (?:the )?(\w+)", text)
        units = _UNIT_WORDS.get(unit or (found.group(1) if found else "practice"), "areas")
        if "never- and not-yet" in low:
            others = f"{units} that had not yet started or never started"
        elif "not-yet" in low:
            others = f"{units} that had not yet started"
        elif "never-treated" in low:
            others = f"{units} that never started"
        else:
            others = f"{units} that had not started"
        what = (_rate_words(outcome).replace("rate", "change in the rate", 1)
                if outcome else "change")
        return (f"{what} among everyone eligible in {units} that started the programme, "
                f"compared with the change in {others}")
    if "difference in differences" in low:
        months = re.search(r"(\d+) months before vs after", low)
        span = f"the {months.group(1)} months" if months else "the period"
        return (f"change from {span} before enrolment to {span} after, compared with the "
                "change in matched similar patients")
    matched = "matched" in low
    against = ("compared with matched similar patients" if matched
               else "compared with patients not enrolled")
    if "rate ratio" in low or "rate model" in low:
        words = f"{_rate_words(outcome)} {against}"
        if "adjusted" in low:
            words += ", adjusted for differences at baseline"
        if low.startswith("poisson"):
            words += " (a simpler rate model than planned)"
        return words
    if "fine-gray" in low or "subdistribution" in low:
        return (f"chance of a first event over time {against}, with death counted as "
                "preventing it")
    if "cox" in low or "hazard" in low:
        if "stratified on matched sets" in low:
            return ("time to the first event, each enrolled patient compared with their own "
                    "matched comparators")
        return f"time to the first event {against}"
    if low.startswith("matched comparison"):
        return "enrolled patients compared with matched similar patients"
    return _lower_first(humanise_text(text))


def fallback_label(fallback: object, unit: str | None = None) -> str | None:
    """Why the planned method was not used, in short plain words (from the record's
    ``fallback``; each "; "-separated reason once).  ``None`` without a fallback."""
    text = str(fallback or "").strip()
    if not text:
        return None
    units = _UNIT_WORDS.get(unit or "practice", "areas")
    out = []
    for part in re.split(r";\s+(?=[a-z])", text):
        low = part.lower()
        if "not yet adopting as well as those never adopting" in low:
            out.append(f"too few {units} never started, so {units} that had not yet started "
                       "were compared as well")
        elif low.startswith("clustered on the adopting") and "one pcn" in low:
            out.append("all practices are in one PCN, so uncertainty was measured across "
                       "practices instead of PCNs")
        elif low.startswith("negative binomial not used"):
            out.append("the admission counts did not vary enough for the planned model, so a "
                       "simpler rate model was used")
        else:
            out.append(_lower_first(humanise_text(part)))
    return "; ".join(dict.fromkeys(out))


def model_name(method: object) -> str | None:
    """The statistical model a recorded method used, for reviewers ("negative binomial
    regression"); ``None`` when the record names none."""
    low = str(method or "").lower()
    for needle, name in (("negative binomial", "negative binomial regression"),
                         ("poisson", "Poisson regression with robust standard errors"),
                         ("fine-gray", "Fine-Gray subdistribution hazards model"),
                         ("cox", "Cox proportional hazards model"),
                         ("callaway", "difference in differences (Callaway and Sant'Anna)"),
                         ("difference in differences", "difference in differences"),
                         ("naive", "uncontrolled before-after comparison")):
        if needle in low:
            if needle == "cox" and "stratified" in low:
                return "Cox proportional hazards model stratified on matched sets"
            return name
    return None
