"""Segmentation settings: documented defaults, and a loader for ``config/segmentation.yaml``.

The defaults live here, in code, so the package behaves the same wherever it runs; the YAML file
in the project's ``config/`` folder is a commented copy a user edits (a test keeps the two
identical). ``docs/segmentation.md`` explains every setting and where it comes from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from phm_eval.errors import ConfigError
from phm_eval.paths import CONFIG_DIR

#: Default file a user edits.
CONFIG_FILE = CONFIG_DIR / "segmentation.yaml"

#: Conditions counted in ``n_ltc`` by default: every condition of the shipped LTC code list
#: except pregnancy (not chronic) and autism (a lifelong neurodevelopmental difference, counted
#: as a PLUS group rather than as a disease).
CHRONIC_CONDITIONS: tuple[str, ...] = (
    "hypertension",
    "diabetes",
    "asthma",
    "copd",
    "chd",
    "atrial_fibrillation",
    "heart_failure",
    "ckd",
    "dementia",
    "smi",
    "learning_disability",
    "cancer",
    "epilepsy",
    "stroke_tia",
    "depression",
    "osteoarthritis",
)

DEFAULTS: dict[str, Any] = {
    "ltc": {
        "chronic_conditions": list(CHRONIC_CONDITIONS),
        # Months before the index date a code must fall within; conditions not listed use the
        # whole record. Cancer: diagnosed or treated in the last 5 years; pregnancy: current.
        "lookback_months": {"cancer": 60, "pregnancy": 9},
        # Window of the separate ``cancer_recent`` flag (early diagnosis; end of life proxy).
        "recent_cancer_months": 12,
    },
    "admissions": {
        "exclude_methods": [],
        "lookback_months": 12,
        "follow_up_months": 12,
    },
    "risk_tiers": {
        "cut_points": [0.005, 0.05, 0.20],
        "keep_ties": False,
    },
    "grid": {
        "children_max_age": 17,
        "older_min_age": 65,
        "complex": {
            "efi_categories": ["moderate", "severe"],
            "efi_min_age": 65,
            "min_chronic_ltc": 4,
            "conditions": ["dementia", "learning_disability", "heart_failure"],
            "top_risk_fraction": 0.02,
        },
        "ltc": {"min_chronic_ltc": 1},
    },
    "bridges": {
        "priority": [
            "short_period_of_decline",
            "organ_failure",
            "frailty",
            "disability",
            "maternal_infant",
            "stable_chronic",
            "acutely_ill",
            "healthy",
        ],
        "short_period_of_decline": {
            "min_prior_emergency_admissions": 2,
            "frailty_categories": ["severe"],
            "organ_failure_conditions": ["heart_failure", "copd", "ckd"],
        },
        "organ_failure": {
            "conditions": ["heart_failure"],
            "conditions_with_admission": ["copd", "ckd"],
            "min_prior_emergency_admissions": 1,
        },
        "frailty": {
            "conditions": ["dementia"],
            "efi_categories": ["moderate", "severe"],
            "efi_min_age": 65,
        },
        "disability": {"conditions": ["learning_disability"]},
        "maternal_infant": {"pregnancy": True, "infant_max_age": 0},
        "stable_chronic": {"min_chronic_ltc": 1},
        "acutely_ill": {"min_prior_emergency_admissions": 1},
    },
    "core20plus5": {
        "core20_deciles": [1, 2],
        "plus_groups": {
            "ethnic_minority": {"ethnicity_not_in": ["White", "Unknown"]},
            "learning_disability": {"condition": "learning_disability"},
            "autism": {"condition": "autism"},
            "smi": {"condition": "smi"},
        },
        "adult_min_age": 18,
        "adult_areas": {
            "maternity": "pregnancy",
            "smi": "smi",
            "chronic_respiratory_disease": "copd",
            "early_cancer_diagnosis": "cancer_recent",
            "hypertension": "hypertension",
        },
        "children_areas": {
            "asthma": "asthma",
            "diabetes": "diabetes",
            "epilepsy": "epilepsy",
            "oral_health": None,
            "mental_health": None,
        },
    },
    "des": {
        "activities": ["pcsp", "social_prescribing_referral", "pam", "smr"],
        "list_size": "mid_year",
        # Published ranges per 1,000 registered patients [low, high]; null = no bound.
        "targets": {
            "pcsp": {"2020/21": [5, 10], "2021/22": [10, 15], "2023/24": [20, 25]},
            "social_prescribing_referral": {
                "2020/21": [4, None],
                "2021/22": [8, None],
                "2023/24": [16, 22],
            },
        },
    },
    "funnel": {
        "levels": [0.95, 0.998],
        "method": "exact",
    },
}


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise ConfigError(
                f"unknown segmentation setting '{where}{key}'; expected one of {sorted(base)}"
            )
        # Free-form mappings (targets, groups, windows, areas) are replaced wholesale so a
        # user can drop or rename their entries; fixed sections merge key by key.
        if isinstance(base[key], dict) and isinstance(value, Mapping) and key not in _FREE_FORM:
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


_FREE_FORM = {"lookback_months", "plus_groups", "adult_areas", "children_areas", "targets"}


def segmentation_config(
    overrides: Mapping[str, Any] | None = None, *, path: str | Path | None = None
) -> dict[str, Any]:
    """The segmentation settings: defaults, then a YAML file, then explicit overrides.

    Parameters
    ----------
    overrides : mapping, optional
        Settings that win over the file and the defaults (nested keys merge).
    path : path, optional
        A YAML file with the same structure as :data:`DEFAULTS` (``config/segmentation.yaml``
        is a documented copy of the defaults). Not read unless given.

    Returns
    -------
    dict
        A fresh nested dictionary (safe to modify).

    Raises
    ------
    ConfigError
        On an unknown key, an unreadable file or an invalid value.
    """
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read segmentation settings {path}: {err}") from err
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path} must hold a mapping of settings")
        config = _merge(config, loaded, "")
    if overrides:
        config = _merge(config, overrides, "")
    _validate(config)
    return config


def _validate(config: Mapping[str, Any]) -> None:
    cuts = config["risk_tiers"]["cut_points"]
    check_cut_points(cuts)
    frac = config["grid"]["complex"]["top_risk_fraction"]
    if frac is not None and not 0 < float(frac) < 1:
        raise ConfigError("grid.complex.top_risk_fraction must lie in (0, 1) or be null")
    grid = config["grid"]
    if not 0 <= int(grid["children_max_age"]) < int(grid["older_min_age"]):
        raise ConfigError("grid.children_max_age must be below grid.older_min_age")
    if config["des"]["list_size"] not in ("mid_year", "average"):
        raise ConfigError("des.list_size must be 'mid_year' or 'average'")
    if config["funnel"]["method"] not in ("exact", "normal"):
        raise ConfigError("funnel.method must be 'exact' or 'normal'")
    order = config["bridges"]["priority"]
    expected = set(DEFAULTS["bridges"]["priority"])
    if set(order) != expected or len(order) != len(expected):
        raise ConfigError(f"bridges.priority must list each of {sorted(expected)} once")
    if order[-1] != "healthy":
        raise ConfigError("bridges.priority must end with 'healthy' (the segment for everyone else)")
    for activity, years in config["des"]["targets"].items():
        for year, bounds in years.items():
            if len(bounds) != 2:
                raise ConfigError(f"des.targets.{activity}.{year} must be [low, high]")


def check_cut_points(cut_points: Any) -> tuple[float, ...]:
    """Validate risk-tier cut points: increasing fractions in (0, 1)."""
    try:
        cuts = tuple(float(c) for c in cut_points)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"risk tier cut points must be numbers, got {cut_points!r}") from err
    if not cuts:
        raise ConfigError("at least one risk tier cut point is needed")
    if any(not 0 < c < 1 for c in cuts) or any(b <= a for a, b in zip(cuts[:-1], cuts[1:], strict=True)):
        raise ConfigError(f"risk tier cut points must increase within (0, 1), got {cuts}")
    return cuts
