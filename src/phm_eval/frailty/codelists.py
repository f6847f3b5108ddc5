"""Loading and checking the code lists behind eFI, eFI2 and the HFRS.

The defaults live in the project's ``config/codelists/`` folder (see ``docs/frailty.md`` for
where each list comes from). Every loader also takes a user's own file or DataFrame with the
same columns, so a site can swap in its local lists without touching code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from phm_eval.errors import ConfigError

#: Environment variable that points at a folder holding the code lists.
CODELIST_DIR_ENV = "PHM_EVAL_CODELISTS"

EFI_CODELIST_FILE = "efi_deficits_snomed.csv"
EFI2_WEIGHTS_FILE = "efi2_weights.csv"
EFI2_CODELIST_FILE = "efi2_candidate_codes_snomed.csv"
HFRS_FILE = "hfrs_icd10.csv"
MEDICATIONS_FILE = "medications_dmd.csv"

#: The 36 eFI deficits of Clegg et al. (2016), as column-friendly keys, in the paper's order.
EFI_DEFICITS: tuple[str, ...] = (
    "activity_limitation",
    "anaemia",
    "arthritis",
    "atrial_fibrillation",
    "cerebrovascular_disease",
    "chronic_kidney_disease",
    "diabetes",
    "dizziness",
    "dyspnoea",
    "falls",
    "foot_problems",
    "fragility_fracture",
    "hearing_impairment",
    "heart_failure",
    "heart_valve_disease",
    "housebound",
    "hypertension",
    "hypotension_syncope",
    "ischaemic_heart_disease",
    "memory_cognitive_problems",
    "mobility_transfer_problems",
    "osteoporosis",
    "parkinsonism_tremor",
    "peptic_ulcer",
    "peripheral_vascular_disease",
    "polypharmacy",
    "requirement_for_care",
    "respiratory_disease",
    "skin_ulcer",
    "sleep_disturbance",
    "social_vulnerability",
    "thyroid_disease",
    "urinary_incontinence",
    "urinary_system_disease",
    "visual_impairment",
    "weight_loss_anorexia",
)

#: Deficits found from code lists (all but polypharmacy, which comes from medication issues).
EFI_CODED_DEFICITS: tuple[str, ...] = tuple(d for d in EFI_DEFICITS if d != "polypharmacy")

#: Names used by the shipped eFI code list (Greater Manchester SDE code sets) -> eFI keys.
EFI_DEFICIT_ALIASES: Mapping[str, str] = {
    "activity-limitation": "activity_limitation",
    "anaemia": "anaemia",
    "arthritis": "arthritis",
    "atrial-fibrillation": "atrial_fibrillation",
    "stroke-tia": "cerebrovascular_disease",
    "ckd": "chronic_kidney_disease",
    "diabetes": "diabetes",
    "dizziness": "dizziness",
    "dyspnoea": "dyspnoea",
    "falls": "falls",
    "foot-problems": "foot_problems",
    "fragility-fracture": "fragility_fracture",
    "hearing-loss": "hearing_impairment",
    "heart-failure": "heart_failure",
    "heart-valve-disease": "heart_valve_disease",
    "housebound": "housebound",
    "hypertension": "hypertension",
    "hypotension": "hypotension_syncope",
    "chd": "ischaemic_heart_disease",
    "cognitive-problems": "memory_cognitive_problems",
    "mobility-problems": "mobility_transfer_problems",
    "osteoporosis": "osteoporosis",
    "parkinsons": "parkinsonism_tremor",
    "peptic-ulcer": "peptic_ulcer",
    "pvd": "peripheral_vascular_disease",
    "care-requirement": "requirement_for_care",
    "respiratory-disease": "respiratory_disease",
    "skin-ulcer": "skin_ulcer",
    "sleep-disturbance": "sleep_disturbance",
    "social-vulnerability": "social_vulnerability",
    "thyroid-disorders": "thyroid_disease",
    "urinary-incontinence": "urinary_incontinence",
    "urinary-system-disease": "urinary_system_disease",
    "vision-problems": "visual_impairment",
    "weight-loss": "weight_loss_anorexia",
}

Source = str | os.PathLike[str] | pd.DataFrame


def default_codelist_dir() -> Path:
    """Return the folder holding the default code lists.

    Looks at the ``PHM_EVAL_CODELISTS`` environment variable first, then at
    ``config/codelists`` in the project checkout this package was imported from.

    Raises
    ------
    ConfigError
        If neither folder exists.
    """
    env = os.environ.get(CODELIST_DIR_ENV)
    if env:
        path = Path(env)
        if path.is_dir():
            return path
        raise ConfigError(f"{CODELIST_DIR_ENV}={env!r} is not a folder")
    from ..paths import CODELIST_DIR

    path = CODELIST_DIR
    if path.is_dir():
        return path
    raise ConfigError(
        "cannot find the default code lists (config/codelists); pass the code list "
        f"explicitly or set {CODELIST_DIR_ENV} to the folder holding them"
    )


def _read(source: Source | None, default_file: str, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.copy(), f"{what} (DataFrame)"
    path = Path(source) if source is not None else default_codelist_dir() / default_file
    if not path.is_file():
        raise ConfigError(f"{what}: file not found: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig"), str(path)


def _require(df: pd.DataFrame, columns: list[str], label: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{label}: missing column(s) {missing}; has {list(df.columns)}")


def _clean_code(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip()


def load_efi_codelist(source: Source | None = None) -> pd.DataFrame:
    """Load the eFI deficit code list.

    Parameters
    ----------
    source : path or DataFrame, optional
        Columns ``deficit`` and ``snomed_code``. Deficit names may be the eFI keys in
        :data:`EFI_DEFICITS` or the names of the shipped list (e.g. ``stroke-tia``).
        Default: ``config/codelists/efi_deficits_snomed.csv``.

    Returns
    -------
    pandas.DataFrame
        Distinct ``deficit`` (eFI key), ``snomed_code`` (string) pairs.
    """
    df, label = _read(source, EFI_CODELIST_FILE, "eFI code list")
    _require(df, ["deficit", "snomed_code"], label)
    deficit = df["deficit"].astype(str).str.strip().map(lambda d: EFI_DEFICIT_ALIASES.get(d, d))
    unknown = sorted(set(deficit) - set(EFI_CODED_DEFICITS))
    if unknown:
        raise ConfigError(
            f"{label}: unknown eFI deficit name(s) {unknown}; expected one of "
            f"{list(EFI_CODED_DEFICITS)} (polypharmacy comes from medication issues)"
        )
    out = pd.DataFrame({"deficit": deficit, "snomed_code": _clean_code(df["snomed_code"])})
    out = out[out["snomed_code"] != ""].drop_duplicates().reset_index(drop=True)
    return out


def load_medications(source: Source | None = None) -> pd.DataFrame:
    """Load the medication (dm+d) code list used for polypharmacy.

    Parameters
    ----------
    source : path or DataFrame, optional
        Column ``snomed_code`` plus, where available, ``drug`` (the drug a product contains,
        so strengths and brands of one drug count once) and ``bnf_code`` (needed by eFI2).
        Default: ``config/codelists/medications_dmd.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``snomed_code``, ``drug`` (falls back to the code itself when absent) and
        ``bnf_code`` (empty string when absent).
    """
    df, label = _read(source, MEDICATIONS_FILE, "medication code list")
    _require(df, ["snomed_code"], label)
    out = pd.DataFrame({"snomed_code": _clean_code(df["snomed_code"])})
    drug = df["drug"].astype(str).str.strip() if "drug" in df.columns else None
    out["drug"] = out["snomed_code"] if drug is None else drug.where(drug != "", out["snomed_code"])
    if "bnf_code" in df.columns:
        out["bnf_code"] = df["bnf_code"].astype(str).str.strip().str.upper()
    else:
        out["bnf_code"] = ""
    out = out[out["snomed_code"] != ""].drop_duplicates("snomed_code").reset_index(drop=True)
    return out


def load_efi2_weights(source: Source | None = None) -> pd.DataFrame:
    """Load the eFI2 coefficients, divisor and cut-points.

    Parameters
    ----------
    source : path or DataFrame, optional
        Columns ``predictor`` and ``coefficient`` (names as in the shipped file; rows named
        ``META: ...`` hold the divisor and cut-points). Default:
        ``config/codelists/efi2_weights.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``predictor`` and ``coefficient`` (float), plus any other columns given.
    """
    df, label = _read(source, EFI2_WEIGHTS_FILE, "eFI2 weights")
    _require(df, ["predictor", "coefficient"], label)
    df["predictor"] = df["predictor"].astype(str).str.strip()
    try:
        df["coefficient"] = df["coefficient"].astype(float)
    except ValueError as err:
        raise ConfigError(f"{label}: column 'coefficient' must be numeric ({err})") from err
    return df


def load_efi2_codelist(source: Source | None = None) -> pd.DataFrame:
    """Load the eFI2 candidate code list (deficit groups with their time and age rules).

    Parameters
    ----------
    source : path or DataFrame, optional
        Columns ``Deficit``, ``SNOMEDCT_CONCEPTID``, ``TimeConstraintyears``, ``AgeLimit``,
        ``Otherinstructions`` (as in the shipped DynAIRx file). Default:
        ``config/codelists/efi2_candidate_codes_snomed.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``snomed_code``, ``window_years`` (float, NaN = whole record),
        ``min_age`` (float, NaN = any age), ``instructions`` and ``description``.
    """
    df, label = _read(source, EFI2_CODELIST_FILE, "eFI2 code list")
    cols = ["Deficit", "SNOMEDCT_CONCEPTID", "TimeConstraintyears", "AgeLimit", "Otherinstructions"]
    _require(df, cols, label)
    out = pd.DataFrame(
        {
            "group": df["Deficit"].astype(str).str.strip(),
            "snomed_code": _clean_code(df["SNOMEDCT_CONCEPTID"]),
            "window_years": pd.to_numeric(df["TimeConstraintyears"].str.strip(), errors="coerce"),
            "min_age": pd.to_numeric(df["AgeLimit"].str.strip(), errors="coerce"),
            "instructions": df["Otherinstructions"].astype(str).str.strip(),
            "description": df.get("Codedescription", pd.Series("", index=df.index))
            .astype(str)
            .str.strip(),
        }
    )
    out = out[out["snomed_code"] != ""]
    out = out.drop_duplicates(["group", "snomed_code", "window_years", "min_age", "instructions"])
    return out.reset_index(drop=True)


def load_hfrs_points(source: Source | None = None) -> pd.DataFrame:
    """Load the Hospital Frailty Risk Score points table.

    Parameters
    ----------
    source : path or DataFrame, optional
        Columns ``icd10_code`` (three characters) and ``points``. Default:
        ``config/codelists/hfrs_icd10.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``icd10_code`` (upper case, three characters) and ``points`` (float).
    """
    df, label = _read(source, HFRS_FILE, "HFRS points")
    _require(df, ["icd10_code", "points"], label)
    code = df["icd10_code"].astype(str).str.strip().str.upper().str.replace(".", "", regex=False)
    bad = code.str.len() != 3
    if bad.any():
        raise ConfigError(f"{label}: icd10_code must have three characters: {list(code[bad])[:5]}")
    if code.duplicated().any():
        raise ConfigError(f"{label}: duplicated icd10_code {list(code[code.duplicated()])[:5]}")
    try:
        points = df["points"].astype(float)
    except ValueError as err:
        raise ConfigError(f"{label}: column 'points' must be numeric ({err})") from err
    return pd.DataFrame({"icd10_code": code, "points": points})
