"""The electronic Frailty Index 2 (eFI2) of Best et al., Age Ageing 2025;54(4):afaf077.

eFI2 is a weighted Cox model with 36 predictors for adults aged 65 and over. The score is the
sum of the coefficients of the predictors present divided by 8.429 (the largest attainable
sum, so the score runs 0-1), cut at 0.0857, 0.1624 and 0.2392 into robust, mild, moderate and
severe frailty. Predictors carry time windows and age rules, taken per code from the eFI2
candidate code list (its ``TimeConstraintyears`` and ``AgeLimit`` columns) and, where the paper's
Appendix 1 says more, from that.

Several details could not be checked against the paper's own text; they are configurable, listed
in :data:`UNVERIFIED_ITEMS`, and named in every output (column ``efi2_unverified_items`` and
``.attrs["efi2_unverified_items"]``). ``docs/frailty.md`` gives the source of each number.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from phm_eval.db import connect
from phm_eval.errors import ConfigError
from phm_eval.frailty._tables import TableSource, as_date, fetch, register, sql_date
from phm_eval.frailty.codelists import (
    Source,
    load_efi2_codelist,
    load_efi2_weights,
    load_medications,
)
from phm_eval.frailty.population import age_sql, create_population_view, exclusion_counts

log = logging.getLogger(__name__)

EFI2_CATEGORIES: tuple[str, ...] = ("robust", "mild", "moderate", "severe")
DEFAULT_DIVISOR = 8.429
DEFAULT_CUT_POINTS: tuple[float, float, float] = (0.0857, 0.1624, 0.2392)

#: Items that could not be verified against the paper's own text (see docs/frailty.md).
UNVERIFIED_ITEMS: dict[str, str] = {
    "coefficients_not_read_in_paper": (
        "coefficients, divisor and cut-points agree in two independent implementations "
        "(OHDSI OmopIndices, NCL ICB rulesets) but were not read in the paper's Table 3"
    ),
    "cut_point_inclusivity": "which side of each cut-point is inclusive",
    "falls_window": "falls limited to 5 years for all codes (Appendix 1) or only some (code list)",
    "alcohol_category_rule": "how current and 'previous' harmful drinking are derived",
    "polypharmacy_bnf_level": "BNF level counted (paragraph, 6 characters, by default)",
    "hypotension_bp_readings": "low blood pressure readings: window and combined-reading codes",
    "bmi_window": "BMI taken from the last 5 years (code list) rather than the whole record",
    "barthel_100_point_scale": "Barthel values 21-90 read as the 100-point scale",
}


@dataclass(frozen=True)
class Efi2Predictor:
    """One eFI2 predictor: its output key, weight name(s) and code-list group(s)."""

    key: str
    weights: tuple[str, ...]
    groups: tuple[str, ...]
    kind: Literal["binary", "alcohol", "bmi", "smoking", "polypharmacy"] = "binary"


def _b(key: str, weight: str, group: str | None = None) -> Efi2Predictor:
    return Efi2Predictor(key, (weight,), (group or weight,))


#: The 36 eFI2 predictors: weight names as in ``efi2_weights.csv``, groups as in the eFI2
#: candidate code list (``Deficit`` column).
EFI2_PREDICTORS: tuple[Efi2Predictor, ...] = (
    _b("activity_limitation", "Activity limitation"),
    Efi2Predictor(
        "alcohol",
        (
            "Alcohol: harmful drinking (current)",
            "Alcohol: missing (no alcohol record)",
            "Alcohol: previous harmful/higher-risk drinking",
        ),
        ("Alcohol",),
        "alcohol",
    ),
    _b("atrial_fibrillation", "Atrial fibrillation"),
    _b("cancer", "Cancer"),
    _b("cognitive_impairment", "Cognitive impairment"),
    _b("copd", "COPD"),
    _b("dementia", "Dementia"),
    _b(
        "dressing_grooming_problems",
        "Dressing or grooming problems",
        "Dressing & grooming problems",
    ),
    _b("environment_problems", "Environment problems"),
    _b("falls", "Falls (history of)", "Falls"),
    _b("fracture", "Fracture"),
    _b("fragility_fracture", "Fragility fracture"),
    _b("heart_failure", "Heart failure", "Heart Failure"),
    _b("housebound", "Housebound"),
    _b("hypotension_syncope", "Hypotension or syncope", "Hypotension / syncope"),
    _b("liver_problems", "Liver problems"),
    _b(
        "medication_management_problems",
        "Medication management problems (unable to manage medications)",
        "Medication management problems",
    ),
    _b("memory_concerns", "Memory concerns"),
    _b("mobility_problems", "Mobility problems"),
    _b("motor_neurone_disease", "Motor neurone disease", "Motor neuron disease"),
    Efi2Predictor(
        "bmi", ("BMI: missing", "BMI: underweight"), ("Body mass index", "Obesity"), "bmi"
    ),
    _b("palliative_care", "Palliative care"),
    _b("parkinsonism_tremor", "Parkinsonism or tremor", "Parkinsonism & tremor"),
    _b("peptic_ulcer_disease", "Peptic ulcer disease"),
    _b("peripheral_vascular_disease", "Peripheral vascular disease"),
    Efi2Predictor(
        "polypharmacy",
        ("Polypharmacy: 5-9 medications", "Polypharmacy: 10+ medications"),
        (),
        "polypharmacy",
    ),
    _b("requirement_for_care", "Requirement for care"),
    _b("respiratory_disease", "Respiratory disease"),
    _b("seizures", "Seizures"),
    _b("self_harm", "Self-harm"),
    _b("skin_ulcer", "Skin ulcer"),
    Efi2Predictor(
        "smoker_current", ("Smoker (current)",), ("Smoker (current)", "Smoker (ex)"), "smoking"
    ),
    _b("social_vulnerability", "Social vulnerability"),
    _b("stroke", "Stroke"),
    _b("transient_ischaemic_attack", "Transient ischaemic attack"),
    _b("weight_loss", "Weight loss"),
)

BINARY_PREDICTORS: tuple[str, ...] = tuple(p.key for p in EFI2_PREDICTORS if p.kind == "binary")
_ALCOHOL_LEVELS = ("zero", "lower", "higher", "harmful", "previous")  # ascending severity
_ALCOHOL_TEXT = {
    "zero alcohol": "zero",
    "lower risk drinking": "lower",
    "higher risk drinking": "higher",
    "harmful drinking": "harmful",
    "previous higher risk/harmful drinking": "previous",
}
_NUMBER = r"(-?\d+(?:\.\d+)?)"


@dataclass(frozen=True, kw_only=True)
class Efi2Settings:
    """The configurable (and partly unverified) rules of eFI2, with their defaults."""

    divisor: float = DEFAULT_DIVISOR
    cut_points: tuple[float, float, float] = DEFAULT_CUT_POINTS
    cut_point_inclusive: Literal["upper_category", "lower_category"] = "upper_category"
    falls_window_years: float | None = 5
    alcohol_window_years: float = 5
    alcohol_rule: Literal["latest", "most_severe"] = "latest"
    bmi_window_years: float | None = 5
    bmi_underweight_below: float = 18.5
    polypharmacy_window_days: int = 90
    polypharmacy_bnf_prefix_length: int = 6
    polypharmacy_levels: tuple[int, int] = (5, 10)
    low_bp_readings_required: int = 3
    af_min_age: float | None = 18


def _value_bounds(instructions: str, description: str) -> list[tuple]:
    """Value rules of one code row as (lo, lo_inclusive, hi, hi_inclusive, value_required).

    An empty list means the code counts whatever its value.
    """
    text = instructions.lower()
    if not text or text.startswith("removed if") or text.startswith("exclude all fracture"):
        return []
    if text.startswith("if code recorded age"):
        return []
    if text == "any value":
        return [(None, False, None, False, True)]
    if m := re.fullmatch(rf"(?:if )?equal to or less than {_NUMBER}", text):
        rules = [(None, False, float(m[1]), True, True)]
        if "barthel" in description.lower():
            # Barthel is recorded on a 0-20 or a 0-100 scale; <=18 of 20 is <=90 of 100.
            rules.append((21.0, True, 90.0, True, True))
        return rules
    if m := re.fullmatch(rf"(?:if )?equal to or greater than {_NUMBER}", text):
        return [(float(m[1]), True, None, False, True)]
    if m := re.fullmatch(rf"(?:code )?(?:if )?(?:greater than|>) ?{_NUMBER}", text):
        return [(float(m[1]), False, None, False, True)]
    if m := re.fullmatch(rf"(?:if )?less than {_NUMBER}", text):
        return [(None, False, float(m[1]), False, True)]
    raise ValueError(instructions)


def _years_before(index: dt.date, years: float | None) -> dt.date | None:
    if years is None or (isinstance(years, float) and np.isnan(years)):
        return None
    return (pd.Timestamp(index) - pd.DateOffset(months=int(round(float(years) * 12)))).date()


def build_rules(
    codes: pd.DataFrame, index: dt.date, settings: Efi2Settings
) -> dict[str, pd.DataFrame]:
    """Turn the candidate code list into the lookup tables the SQL joins against.

    Returns a dict of DataFrames: ``binary`` (predictor, code, window start, minimum age at
    event and value bounds), ``low_bp`` (code, window start, threshold), ``alcohol``,
    ``bmi`` and ``smoking``.
    """
    by_group = {g: p for p in EFI2_PREDICTORS for g in p.groups}
    known = set(codes["group"])
    for predictor in EFI2_PREDICTORS:
        for group in predictor.groups:
            if group not in known and predictor.kind != "bmi":
                log.warning("eFI2 code list has no group %r (predictor %s)", group, predictor.key)

    binary, low_bp, alcohol, bmi, smoking = [], [], [], [], []
    for row in codes.itertuples(index=False):
        predictor = by_group.get(row.group)
        if predictor is None:
            continue
        window = _years_before(index, row.window_years)
        text = row.instructions
        if predictor.kind == "alcohol":
            low = text.lower()
            if low.startswith("alcohol - numeric"):
                per_day = "multiply by 7" in low
                alcohol.append((row.snomed_code, "numeric", 7.0 if per_day else 1.0))
            elif low in _ALCOHOL_TEXT:
                alcohol.append((row.snomed_code, _ALCOHOL_TEXT[low], 1.0))
            else:
                log.warning("eFI2 alcohol code %s has no category (%r)", row.snomed_code, text)
            continue
        if predictor.kind == "bmi":
            if row.group == "Body mass index" or "bmi" in text.lower():
                bmi.append(row.snomed_code)
            continue
        if predictor.kind == "smoking":
            smoking.append((row.snomed_code, 1 if row.group == "Smoker (current)" else 0))
            continue
        if text.lower().startswith("3 reading"):
            if "systolic or" in text.lower():
                continue  # one value cannot say whether systolic or diastolic was low
            m = re.search(rf"less than {_NUMBER}", text.lower())
            if m is None:
                raise ConfigError(f"eFI2 code {row.snomed_code}: cannot read rule {text!r}")
            low_bp.append((predictor.key, row.snomed_code, window, float(m[1])))
            continue
        min_age = None if np.isnan(row.min_age) else float(row.min_age)
        if predictor.key == "falls" and settings.falls_window_years is not None:
            window = _years_before(index, settings.falls_window_years)
        if predictor.key == "atrial_fibrillation" and min_age is None:
            min_age = settings.af_min_age
        try:
            bounds = _value_bounds(text, row.description)
        except ValueError as err:
            raise ConfigError(
                f"eFI2 code {row.snomed_code} ({row.group}): cannot read rule {text!r}"
            ) from err
        for lo, lo_inc, hi, hi_inc, needs_value in bounds or [(None, False, None, False, False)]:
            binary.append(
                (
                    predictor.key,
                    row.snomed_code,
                    window,
                    min_age,
                    lo,
                    lo_inc,
                    hi,
                    hi_inc,
                    needs_value,
                )
            )

    def frame(rows: list, columns: list[str]) -> pd.DataFrame:
        df = pd.DataFrame(rows, columns=columns).drop_duplicates()
        for col in columns:
            if col.endswith("_start"):
                df[col] = pd.to_datetime(df[col])
            elif col in {"min_age", "lo", "hi", "threshold", "multiplier"}:
                # Nullable floats so DuckDB sees NULL (a NaN would compare as a number).
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("Float64")
            elif col in {"lo_inclusive", "hi_inclusive", "value_required"}:
                df[col] = df[col].astype(bool)
        return df

    rules = {
        "binary": frame(
            binary,
            [
                "predictor",
                "snomed_code",
                "window_start",
                "min_age",
                "lo",
                "lo_inclusive",
                "hi",
                "hi_inclusive",
                "value_required",
            ],
        ),
        "low_bp": frame(low_bp, ["predictor", "snomed_code", "window_start", "threshold"]),
        "alcohol": frame(alcohol, ["snomed_code", "category", "multiplier"]),
        "bmi": frame([(c,) for c in bmi], ["snomed_code"]),
        "smoking": frame(smoking, ["snomed_code", "is_current"]),
    }
    return rules


def _efi2_sql(index: dt.date, settings: Efi2Settings) -> str:
    idx = sql_date(index)
    alcohol_start = sql_date(_years_before(index, settings.alcohol_window_years))
    bmi_start = _years_before(index, settings.bmi_window_years)
    bmi_cond = "TRUE" if bmi_start is None else f"ev.date >= {sql_date(bmi_start)}"
    poly_start = f"({idx} - INTERVAL {int(settings.polypharmacy_window_days)} DAY)"
    k = int(settings.polypharmacy_bnf_prefix_length)
    severity = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(_ALCOHOL_LEVELS))
    alcohol_order = (
        "date DESC, severity DESC"
        if settings.alcohol_rule == "latest"
        else "severity DESC, date DESC"
    )
    flags = ",\n".join(f"bool_or(predictor = '{p}') AS {p}" for p in BINARY_PREDICTORS)
    cols = ",\n".join(f"coalesce(b.{p}, FALSE) AS efi2_{p}" for p in BINARY_PREDICTORS)
    return f"""
    WITH pop AS (
        SELECT patient_id, date_of_birth FROM population WHERE exclusion_reason IS NULL
    ),
    ev AS (
        SELECT e.patient_id, e.snomed_code, e.date, e.value,
               {age_sql("pop.date_of_birth", "e.date")} AS age_at_event
        FROM events e JOIN pop ON e.patient_id = pop.patient_id
        WHERE e.date <= {idx}
          AND e.snomed_code IN (SELECT snomed_code FROM efi2_relevant_codes)
    ),
    binary_hits AS (
        SELECT ev.patient_id, r.predictor
        FROM ev JOIN efi2_binary r ON ev.snomed_code = r.snomed_code
        WHERE (r.window_start IS NULL OR ev.date >= CAST(r.window_start AS DATE))
          AND (r.min_age IS NULL OR ev.age_at_event >= r.min_age)
          AND (NOT r.value_required OR (
                ev.value IS NOT NULL
                AND (r.lo IS NULL OR ev.value > r.lo OR (r.lo_inclusive AND ev.value = r.lo))
                AND (r.hi IS NULL OR ev.value < r.hi OR (r.hi_inclusive AND ev.value = r.hi))))
        UNION ALL
        SELECT ev.patient_id, r.predictor
        FROM ev JOIN efi2_low_bp r ON ev.snomed_code = r.snomed_code
        WHERE (r.window_start IS NULL OR ev.date >= CAST(r.window_start AS DATE))
          AND ev.value < r.threshold
        GROUP BY ev.patient_id, r.predictor
        HAVING count(DISTINCT ev.date) >= {int(settings.low_bp_readings_required)}
    ),
    b AS (
        SELECT patient_id, {flags} FROM binary_hits GROUP BY patient_id
    ),
    alcohol_events AS (
        SELECT ev.patient_id, ev.date,
               CASE WHEN a.category <> 'numeric' THEN a.category
                    WHEN ev.value * a.multiplier <= 0 THEN 'zero'
                    WHEN ev.value * a.multiplier < 21 THEN 'lower'
                    WHEN ev.value * a.multiplier < 49 THEN 'higher'
                    ELSE 'harmful' END AS category
        FROM ev JOIN efi2_alcohol a ON ev.snomed_code = a.snomed_code
        WHERE ev.date >= {alcohol_start}
          AND (a.category <> 'numeric' OR ev.value IS NOT NULL)
    ),
    alc AS (
        SELECT patient_id, category
        FROM (SELECT *, CASE category {severity} END AS severity FROM alcohol_events)
        QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY {alcohol_order}) = 1
    ),
    bmi AS (
        SELECT patient_id, bmi_value FROM (
            SELECT ev.patient_id, ev.date, avg(ev.value) AS bmi_value
            FROM ev JOIN efi2_bmi m ON ev.snomed_code = m.snomed_code
            WHERE ev.value > 0 AND {bmi_cond}
            GROUP BY ev.patient_id, ev.date)
        QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY date DESC) = 1
    ),
    smk AS (
        SELECT ev.patient_id, s.is_current
        FROM ev JOIN efi2_smoking s ON ev.snomed_code = s.snomed_code
        QUALIFY row_number() OVER (
            PARTITION BY ev.patient_id ORDER BY ev.date DESC, s.is_current DESC) = 1
    ),
    poly AS (
        SELECT ev.patient_id, count(DISTINCT left(m.bnf_code, {k})) AS n_bnf
        FROM ev JOIN efi2_medications m ON ev.snomed_code = m.snomed_code
        WHERE ev.date >= {poly_start} AND length(m.bnf_code) >= {k}
        GROUP BY ev.patient_id
    )
    SELECT pop.patient_id,
           {cols},
           coalesce(alc.category, 'missing') AS efi2_alcohol,
           bmi.bmi_value AS efi2_bmi_value,
           coalesce(smk.is_current = 1, FALSE) AS efi2_smoker_current,
           coalesce(poly.n_bnf, 0) AS efi2_polypharmacy_count
    FROM pop
    LEFT JOIN b ON b.patient_id = pop.patient_id
    LEFT JOIN alc ON alc.patient_id = pop.patient_id
    LEFT JOIN bmi ON bmi.patient_id = pop.patient_id
    LEFT JOIN smk ON smk.patient_id = pop.patient_id
    LEFT JOIN poly ON poly.patient_id = pop.patient_id
    ORDER BY pop.patient_id
    """


def _coefficients(weights: pd.DataFrame) -> dict[str, float]:
    table = dict(zip(weights["predictor"], weights["coefficient"], strict=False))
    out = {}
    for predictor in EFI2_PREDICTORS:
        for name in predictor.weights:
            if name not in table:
                raise ConfigError(f"eFI2 weights: no row for predictor {name!r}")
            out[name] = float(table[name])
    return out


def efi2_category(
    score: pd.Series | np.ndarray,
    *,
    cut_points: tuple[float, float, float] = DEFAULT_CUT_POINTS,
    inclusive: Literal["upper_category", "lower_category"] = "upper_category",
) -> pd.Categorical:
    """eFI2 category from the score.

    Parameters
    ----------
    score : array-like of float
    cut_points : three floats
        Robust/mild, mild/moderate and moderate/severe boundaries.
    inclusive : {"upper_category", "lower_category"}
        Where a score equal to a cut-point goes: ``"upper_category"`` (default; e.g. 0.0857 is
        mild) or ``"lower_category"`` (0.0857 is robust). Unverified against the paper.

    Returns
    -------
    pandas.Categorical
        Ordered ``robust`` < ``mild`` < ``moderate`` < ``severe``.
    """
    cuts = np.asarray(cut_points, dtype=float)
    if cuts.shape != (3,) or np.any(np.diff(cuts) <= 0):
        raise ConfigError(f"cut_points must be three increasing numbers, got {cut_points}")
    if inclusive not in ("upper_category", "lower_category"):
        raise ConfigError(f"inclusive must be 'upper_category' or 'lower_category': {inclusive!r}")
    values = np.round(np.asarray(score, dtype=float), 10)
    side = "right" if inclusive == "upper_category" else "left"
    codes = np.searchsorted(cuts, values, side=side)
    codes = np.where(np.isnan(values), -1, codes)
    return pd.Categorical.from_codes(
        codes, dtype=pd.CategoricalDtype(list(EFI2_CATEGORIES), ordered=True)
    )


def efi2(
    events: TableSource,
    patients: TableSource,
    index_date: object,
    *,
    codelist: Source | None = None,
    weights: Source | None = None,
    medications: Source | None = None,
    min_age: float | None = 65,
    max_age: float | None = None,
    settings: Efi2Settings | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Electronic Frailty Index 2 (Best et al. 2025) for every eligible patient at ``index_date``.

    Parameters
    ----------
    events : DataFrame or path
        Primary-care events (``patient_id``, ``date``, ``snomed_code``, ``value``). Events
        dated after ``index_date`` are ignored; events on it count.
    patients : DataFrame or path
        The ``patients`` table of the data contract.
    index_date : date-like
        The date the score describes.
    codelist : path or DataFrame, optional
        eFI2 candidate code list (default ``config/codelists/efi2_candidate_codes_snomed.csv``).
    weights : path or DataFrame, optional
        Coefficients by predictor name (default ``config/codelists/efi2_weights.csv``).
    medications : path or DataFrame, optional
        Medication list with ``bnf_code`` (default ``config/codelists/medications_dmd.csv``).
    min_age, max_age : float, optional
        Inclusive age range in completed years on the index date (eFI2 is for people >= 65).
    settings : Efi2Settings, optional
        Divisor, cut-points and the rules that are configurable because they could not be
        verified against the paper (see :data:`UNVERIFIED_ITEMS`).
    threads : int, optional
        DuckDB threads.

    Returns
    -------
    pandas.DataFrame
        One row per scored patient, sorted by ``patient_id``: ``efi2_score`` (0-1),
        ``efi2_category`` (ordered robust < mild < moderate < severe),
        ``efi2_linear_predictor`` (sum of coefficients), a boolean ``efi2_<predictor>`` for
        each binary predictor (including ``efi2_smoker_current``), ``efi2_alcohol`` (zero,
        lower, higher, harmful, previous or missing), ``efi2_bmi_value`` and ``efi2_bmi``
        (underweight, not_underweight, missing), ``efi2_polypharmacy_count`` (distinct BNF
        groups in the window) and ``efi2_polypharmacy`` (0-4, 5-9, 10+), and
        ``efi2_unverified_items``. ``.attrs`` carries ``exclusions`` and
        ``efi2_unverified_items``.

    Notes
    -----
    Window convention: "within N years" means an event dated on or after the index date minus
    N years; polypharmacy counts medication issues dated from ``index_date - 90 days`` to the
    index date inclusive. Cognitive impairment is not counted when dementia is present, and
    memory concerns are not counted when cognitive impairment or dementia is present.
    """
    s = settings or Efi2Settings()
    index = as_date(index_date)
    if s.divisor <= 0:
        raise ConfigError("eFI2 divisor must be positive")
    if s.alcohol_rule not in ("latest", "most_severe"):
        raise ConfigError(f"alcohol_rule must be 'latest' or 'most_severe': {s.alcohol_rule!r}")
    if s.polypharmacy_bnf_prefix_length < 2 or s.polypharmacy_levels[0] >= s.polypharmacy_levels[1]:
        raise ConfigError("polypharmacy_bnf_prefix_length >= 2 and increasing levels are required")
    coef = _coefficients(load_efi2_weights(weights))
    codes = load_efi2_codelist(codelist)
    meds = load_medications(medications)[["snomed_code", "bnf_code"]]
    if (meds["bnf_code"] == "").all():
        raise ConfigError("eFI2 polypharmacy needs a medication list with a 'bnf_code' column")
    rules = build_rules(codes, index, s)

    con = connect(threads=threads)
    register(con, "patients", patients)
    label = register(con, "events", events)
    for name, table in rules.items():
        con.register(f"efi2_{name}", table)
    con.register("efi2_medications", meds)
    relevant = pd.concat([t["snomed_code"] for t in rules.values()] + [meds["snomed_code"]])
    con.register("efi2_relevant_codes", pd.DataFrame({"snomed_code": relevant.unique()}))
    create_population_view(con, index, min_age, max_age)
    out = fetch(con, _efi2_sql(index, s), label)
    counts = exclusion_counts(con, label)
    con.close()
    return _score(out, coef, s, index, counts)


def _score(
    out: pd.DataFrame,
    coef: dict[str, float],
    s: Efi2Settings,
    index: dt.date,
    counts: dict[str, int],
) -> pd.DataFrame:
    for p in BINARY_PREDICTORS:
        out[f"efi2_{p}"] = out[f"efi2_{p}"].astype(bool)
    out["efi2_smoker_current"] = out["efi2_smoker_current"].astype(bool)
    # The memory/cognition hierarchy: a higher level replaces the lower ones.
    dementia = out["efi2_dementia"]
    cognitive = out["efi2_cognitive_impairment"]
    out["efi2_cognitive_impairment"] = cognitive & ~dementia
    out["efi2_memory_concerns"] = out["efi2_memory_concerns"] & ~cognitive & ~dementia

    bmi = out["efi2_bmi_value"]
    out["efi2_bmi"] = np.where(
        bmi.isna(),
        "missing",
        np.where(bmi < s.bmi_underweight_below, "underweight", "not_underweight"),
    )
    n_poly = out["efi2_polypharmacy_count"].astype("int64")
    out["efi2_polypharmacy_count"] = n_poly
    lo, hi = s.polypharmacy_levels
    out["efi2_polypharmacy"] = np.where(
        n_poly >= hi, f"{hi}+", np.where(n_poly >= lo, f"{lo}-{hi - 1}", f"0-{lo - 1}")
    )

    by_key = {p.key: p for p in EFI2_PREDICTORS}
    lp = np.zeros(len(out))
    for p in BINARY_PREDICTORS:
        lp += coef[by_key[p].weights[0]] * out[f"efi2_{p}"].to_numpy(dtype=float)
    lp += coef["Smoker (current)"] * out["efi2_smoker_current"].to_numpy(dtype=float)
    alcohol = out["efi2_alcohol"]
    lp += np.select(
        [alcohol == "harmful", alcohol == "missing", alcohol == "previous"],
        [
            coef["Alcohol: harmful drinking (current)"],
            coef["Alcohol: missing (no alcohol record)"],
            coef["Alcohol: previous harmful/higher-risk drinking"],
        ],
        0.0,
    )
    lp += np.select(
        [out["efi2_bmi"] == "missing", out["efi2_bmi"] == "underweight"],
        [coef["BMI: missing"], coef["BMI: underweight"]],
        0.0,
    )
    lp += np.select(
        [n_poly >= hi, n_poly >= lo],
        [coef["Polypharmacy: 10+ medications"], coef["Polypharmacy: 5-9 medications"]],
        0.0,
    )
    score = lp / s.divisor
    out.insert(1, "efi2_score", score)
    out.insert(2, "efi2_category", efi2_category(score, cut_points=s.cut_points,
                                                    inclusive=s.cut_point_inclusive))
    out.insert(3, "efi2_linear_predictor", lp)
    unverified = ";".join(UNVERIFIED_ITEMS)
    out["efi2_unverified_items"] = unverified
    out.attrs["exclusions"] = counts
    out.attrs["index_date"] = index.isoformat()
    out.attrs["score"] = "eFI2 (Best et al. 2025)"
    out.attrs["efi2_unverified_items"] = dict(UNVERIFIED_ITEMS)
    out.attrs["efi2_settings"] = {k: getattr(s, k) for k in s.__dataclass_fields__}
    return out
