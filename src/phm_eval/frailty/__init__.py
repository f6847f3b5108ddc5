"""Frailty scores from routine records: eFI (Clegg 2016), eFI2 (Best 2025) and the HFRS (Gilbert 2018).

Each score is one function that takes the contract tables (pandas DataFrames or paths to
Parquet/CSV files), does the heavy lifting in DuckDB SQL, and returns one row per scored
patient with the score, its category and the items behind it. Who was not scored, and why,
travels with the result in ``.attrs["exclusions"]`` (see :func:`flow_table`). Definitions,
sources and what is unverified: ``docs/frailty.md``.
"""

from phm_eval.frailty.codelists import (
    EFI_DEFICITS,
    load_efi2_codelist,
    load_efi2_weights,
    load_efi_codelist,
    load_hfrs_points,
    load_medications,
)
from phm_eval.frailty.efi import EFI_CATEGORIES, efi, efi_category
from phm_eval.frailty.efi2 import (
    EFI2_CATEGORIES,
    EFI2_PREDICTORS,
    UNVERIFIED_ITEMS,
    Efi2Settings,
    efi2,
    efi2_category,
)
from phm_eval.frailty.hfrs import HFRS_CATEGORIES, hfrs, hfrs_category, normalise_icd10
from phm_eval.frailty.population import EXCLUSION_REASONS, eligibility, flow_table

__all__ = [
    "EFI2_CATEGORIES",
    "EFI2_PREDICTORS",
    "EFI_CATEGORIES",
    "EFI_DEFICITS",
    "EXCLUSION_REASONS",
    "HFRS_CATEGORIES",
    "UNVERIFIED_ITEMS",
    "Efi2Settings",
    "efi",
    "efi2",
    "efi2_category",
    "efi_category",
    "eligibility",
    "flow_table",
    "hfrs",
    "hfrs_category",
    "load_efi2_codelist",
    "load_efi2_weights",
    "load_efi_codelist",
    "load_hfrs_points",
    "load_medications",
    "normalise_icd10",
]
