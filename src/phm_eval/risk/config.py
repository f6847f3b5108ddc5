"""Settings for developing and validating a risk model: :class:`RiskModelConfig` (the
``risk:`` block of the workflow configuration) and its defaults."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from phm_eval import DEFAULT_SEED
from phm_eval.errors import ConfigError, renamed_argument
from phm_eval.risk.decision_curve import DEFAULT_TIERS
from phm_eval.risk.models import MODEL_NAMES

DEFAULT_NUMERIC = (
    "age",
    "efi_score",
    "n_emergency_admissions_1y",
    "n_emergency_admissions_2y",
    "bed_days_1y",
    "n_ltc",
    "n_medications",
    "n_gp_events_1y",
    "hfrs",
    "imd_decile",
)
DEFAULT_CATEGORICAL = ("sex", "ethnicity", "imd_quintile")
DEFAULT_SUBGROUPS = ("sex", "age_band", "ethnicity", "imd_quintile")
AGE_BANDS = (0, 18, 45, 65, 80, 200)
AGE_BAND_LABELS = ("0-17", "18-44", "45-64", "65-79", "80+")

# the metrics corrected for optimism and reported per cluster
CORE_METRICS = ("c_statistic", "calibration_slope", "calibration_in_the_large", "brier", "oe_ratio")


@dataclass(kw_only=True)
class RiskModelConfig:
    """Settings for developing and validating a risk model (the ``risk:`` config block).

    Feature names are configurable; a name listed but absent from the data is an error,
    except that ``binary_features="auto"`` takes every boolean column not listed elsewhere.

    Attributes
    ----------
    model : str
        ``"penalised_logistic"`` or ``"gradient_boosting"``.
    outcome : str
        0/1 outcome column.
    numeric_features, categorical_features, spline_features : sequence of str
        See :func:`phm_eval.risk.models.make_model`.
    binary_features : sequence of str or "auto"
        0/1 flags, or every boolean column.
    cluster : str or None
        Column for internal-external cross-validation (``pcn_id`` or ``practice_id``);
        None skips it.
    subgroups : sequence of str
        Columns for subgroup performance; ``age_band`` is derived from ``age`` if absent.
    thresholds : sequence of float
        Decision-curve thresholds.
    risk_tiers : sequence of float
        Top fractions flagged (0.005, 0.05, 0.20).
    n_bootstrap : int
        Bootstrap replicates for confidence intervals (predictions fixed).
    n_optimism_bootstrap : int
        Bootstrap refits for optimism correction; 0 skips it.
    min_cluster_events : int
        Clusters with fewer events or non-events are left out of the meta-analysis.
    iecv_max_folds : int
        Internal-external cross-validation refits the model once per fold; with more clusters
        than this, clusters are grouped into this many folds of about equal size (each cluster
        still predicted by a model that never saw it, and its metrics still reported), so the
        work does not grow with the number of clusters.
    min_iecv_clusters : int
        Fewest clusters with at least ``min_cluster_events`` events and non-events for
        internal-external cross-validation by ``cluster``; with fewer, a smaller unit
        (practice) is used, or the validation is skipped, with a note
        (:func:`choose_iecv_cluster`).
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
        Seed for everything random (written as ``seed`` in ``to_dict``); the workflow's
        ``risk.seed``, which defaults to the same value. (It was 2024 before phm-eval had one
        default seed; the workflow always passed its own.)
    model_options : mapping
        Extra keyword arguments for ``make_model`` (e.g. ``C``, ``n_knots``, ``max_iter``).
    random_state : int
        Former name of ``seed``: still accepted when building a config (also as a key of
        :meth:`from_dict`, so reports written before the rename read back) with a
        ``DeprecationWarning``, and readable.
    """

    model: str = "penalised_logistic"
    outcome: str = "emergency_admission_12m"
    numeric_features: Sequence[str] = DEFAULT_NUMERIC
    categorical_features: Sequence[str] = DEFAULT_CATEGORICAL
    spline_features: Sequence[str] = ("age",)
    binary_features: Sequence[str] | str = "auto"
    cluster: str | None = "pcn_id"
    subgroups: Sequence[str] = DEFAULT_SUBGROUPS
    thresholds: Sequence[float] = tuple(np.round(np.arange(0.01, 0.51, 0.01), 2))
    risk_tiers: Sequence[float] = DEFAULT_TIERS
    n_bootstrap: int = 200
    n_optimism_bootstrap: int = 20
    min_cluster_events: int = 5
    min_iecv_clusters: int = 3
    iecv_max_folds: int = 10
    seed: int = DEFAULT_SEED
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ConfigError(
                f"risk.model '{self.model}' is unknown; choose one of {', '.join(MODEL_NAMES)}"
            )
        for name in ("n_bootstrap", "n_optimism_bootstrap", "min_cluster_events"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"risk.{name} must be zero or more")
        if int(self.min_iecv_clusters) < 2:
            raise ConfigError("risk.min_iecv_clusters must be 2 or more")
        if int(self.iecv_max_folds) < 2:
            raise ConfigError("risk.iecv_max_folds must be 2 or more")

    @property
    def random_state(self) -> int:
        """Former name of ``seed`` (kept for existing callers, as other former names)."""
        return self.seed

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> RiskModelConfig:
        """Build from a config mapping, rejecting unknown keys by name (``random_state``, the
        former name of ``seed``, is still read)."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)} | {"random_state"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown risk setting(s): {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(known))}"
            )
        for key in ("numeric_features", "categorical_features", "spline_features", "subgroups"):
            if key in values and isinstance(values[key], str):
                raise ConfigError(f"risk.{key} must be a list of column names")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["thresholds"] = [float(t) for t in self.thresholds]
        out["model_options"] = dict(self.model_options)
        return out


def _accepting_former_seed_name(init: Callable[..., None]) -> Callable[..., None]:
    """``RiskModelConfig.__init__`` also taking ``random_state``, the former name of ``seed``.

    Taken here rather than as a dataclass ``InitVar``: an ``InitVar`` would be passed again,
    with the property's value, by :func:`dataclasses.replace`, and could not tell a ``seed``
    given from the default.
    """
    unset = object()

    @functools.wraps(init)
    def __init__(self: RiskModelConfig, *args: Any, random_state: Any = None,
                 **kwargs: Any) -> None:
        if random_state is not None:
            kwargs["seed"] = renamed_argument("RiskModelConfig", "seed",
                                              kwargs.get("seed", unset), "random_state",
                                              random_state, default=unset)
        init(self, *args, **kwargs)

    signature = inspect.signature(init)
    __init__.__signature__ = signature.replace(parameters=[
        *signature.parameters.values(),
        inspect.Parameter("random_state", inspect.Parameter.KEYWORD_ONLY, default=None),
    ])
    return __init__


RiskModelConfig.__init__ = _accepting_former_seed_name(RiskModelConfig.__init__)
