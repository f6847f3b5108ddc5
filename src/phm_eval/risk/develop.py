"""Develop and validate an emergency-admission risk model, end to end (TRIPOD+AI).

Takes patient-level feature frames (one row per patient at an index date, with the outcome
``emergency_admission_12m``) and runs the validation designs TRIPOD+AI asks for:

* **apparent and optimism-corrected performance** (Harrell's bootstrap: the whole fitting
  procedure repeated in ``n_optimism_bootstrap`` resamples; optimism = mean of performance
  in the resample minus performance of that model in the original data);
* **internal-external cross-validation** by a cluster column (PCN or practice): fit on all
  other clusters, validate on the held-out one; pooled and per-cluster performance and a
  random-effects (DerSimonian-Laird) summary of the c-statistic on the logit scale;
* **temporal validation**: develop at an earlier index date, validate at a later one;
* clinical utility (decision curve, risk tiers), subgroup performance and the Riley et al.
  sample-size check; then a model card.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from phm_eval.errors import ConfigError, EstimationError, InputError
from phm_eval.jsonio import write_json
from phm_eval.risk.decision_curve import (
    DEFAULT_TIERS,
    DecisionCurve,
    decision_curve,
    risk_tier_metrics,
)
from phm_eval.risk.models import MODEL_NAMES, make_model
from phm_eval.risk.sample_size import SampleSizeResult, riley_minimum
from phm_eval.risk.validation import (
    _as_outcome_and_prob,
    bootstrap_metrics,
    calibration_curve,
    calibration_metrics,
    delong_ci,
    subgroup_metrics,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IECVClusterChoice",
    "IECVResult",
    "RiskModelConfig",
    "RiskModelReport",
    "TemporalValidationResult",
    "ValidationResult",
    "bootstrap_optimism",
    "choose_iecv_cluster",
    "develop_risk_model",
    "evaluate_predictions",
    "example_risk_features",
    "internal_external_cv",
    "random_effects_c_statistic",
    "temporal_validation",
]

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


@dataclass
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
    random_state : int
        Seed for everything random.
    model_options : mapping
        Extra keyword arguments for ``make_model`` (e.g. ``C``, ``n_knots``, ``max_iter``).
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
    random_state: int = 2024
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

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> RiskModelConfig:
        """Build from a config mapping, rejecting unknown keys by name."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
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


def _one_blas_thread(func: Any) -> Any:
    """Run with single-threaded BLAS.

    scipy's L-BFGS-B (behind LogisticRegression) makes many small BLAS calls; with threaded
    BLAS on a busy machine they spin and a fit runs 2-5 times slower (measured at 4,000 and
    300,000 rows on 2 cores).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# preparing frames


def _resolve_features(df: pd.DataFrame, config: RiskModelConfig) -> dict[str, list[str]]:
    numeric = list(config.numeric_features)
    categorical = list(config.categorical_features)
    spline = [f for f in config.spline_features if f in numeric or f not in categorical]
    if config.binary_features == "auto":
        listed = set(numeric) | set(categorical) | set(spline) | {config.outcome}
        binary = [c for c in df.columns if pd.api.types.is_bool_dtype(df[c]) and c not in listed]
    else:
        binary = list(config.binary_features)
    wanted = dict.fromkeys(numeric + categorical + spline + binary)
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InputError(
            "features",
            f"feature column(s) named in the risk configuration are missing: {', '.join(missing)}",
        )
    return {"numeric": numeric, "categorical": categorical, "spline": spline, "binary": binary}


def _outcome(df: pd.DataFrame, config: RiskModelConfig, table: str = "features") -> np.ndarray:
    if config.outcome not in df.columns:
        raise InputError(table, f"outcome column '{config.outcome}' is missing")
    y = df[config.outcome]
    bad = ~y.isin([0, 1, True, False])
    if bad.any():
        rows = list(np.flatnonzero(bad.to_numpy())[:5] + 1)
        raise InputError(
            table,
            "outcome must be 0 or 1 with no missing values",
            column=config.outcome,
            rows=rows,
            n_failing=int(bad.sum()),
        )
    return y.astype(float).to_numpy()


def _with_age_band(df: pd.DataFrame) -> pd.DataFrame:
    if "age_band" in df.columns or "age" not in df.columns:
        return df
    out = df.copy()
    out["age_band"] = pd.cut(
        out["age"], bins=list(AGE_BANDS), labels=list(AGE_BAND_LABELS), right=False
    ).astype("object")
    return out


def _build(df: pd.DataFrame, config: RiskModelConfig) -> Pipeline:
    f = _resolve_features(df, config)
    return make_model(
        config.model,
        f["numeric"],
        f["categorical"],
        f["spline"],
        binary_features=f["binary"],
        random_state=config.random_state,
        **dict(config.model_options),
    )


def _fit(df: pd.DataFrame, config: RiskModelConfig) -> Pipeline:
    y = _outcome(df, config)
    if y.min() == y.max():
        raise EstimationError("the development data hold only one outcome class")
    return _build(df, config).fit(df, y)


def _predict(model: Pipeline, df: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(df)[:, 1]


def candidate_parameters(df: pd.DataFrame, config: RiskModelConfig) -> int:
    """Degrees of freedom the logistic model spends: the count for Riley's criteria."""
    f = _resolve_features(df, config)
    n_knots = int(dict(config.model_options).get("n_knots", 5))
    count = len(f["spline"]) * (n_knots + 3 - 2)  # cubic B-splines without the bias column
    for col in f["numeric"]:
        if col in f["spline"]:
            continue
        count += 1 + int(df[col].isna().any())  # a missing indicator costs one more
    for col in f["categorical"]:
        levels = df[col].astype("object").fillna("missing").nunique()
        count += max(levels - 1, 0)
    return count + len(f["binary"])


def missing_data_summary(df: pd.DataFrame, config: RiskModelConfig) -> pd.DataFrame:
    """Number and percentage missing per predictor (TRIPOD+AI item 9/20)."""
    f = _resolve_features(df, config)
    cols = list(dict.fromkeys(f["spline"] + f["numeric"] + f["categorical"] + f["binary"]))
    n_missing = df[cols].isna().sum()
    return pd.DataFrame(
        {
            "feature": cols,
            "n_missing": n_missing.to_numpy(),
            "percent_missing": (100.0 * n_missing / max(len(df), 1)).to_numpy(),
        }
    )


# ---------------------------------------------------------------------------------------------
# one set of predictions


@dataclass
class ValidationResult:
    """Performance of predictions in one validation sample.

    Attributes
    ----------
    label : str
        Design, e.g. ``"apparent"``, ``"temporal"`` or ``"internal-external (pooled)"``.
    metrics : dict
        :func:`~phm_eval.risk.validation.calibration_metrics`.
    intervals : pandas.DataFrame
        :func:`~phm_eval.risk.validation.bootstrap_metrics` (empty when ``n_bootstrap=0``).
    calibration : pandas.DataFrame
        Loess calibration curve.
    decision : DecisionCurve
    tiers : pandas.DataFrame
    subgroups : pandas.DataFrame
    y, p : ndarray
        Outcome and predictions, for figures.
    """

    label: str
    metrics: dict[str, float]
    intervals: pd.DataFrame
    calibration: pd.DataFrame
    decision: DecisionCurve
    tiers: pd.DataFrame
    subgroups: pd.DataFrame
    y: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    groups: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def summary(self) -> pd.DataFrame:
        """Point estimates with confidence intervals, one row per metric."""
        if len(self.intervals):
            return self.intervals.copy()
        return pd.DataFrame({"estimate": pd.Series(self.metrics)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (no patient-level data)."""
        return {
            "label": self.label,
            "metrics": self.metrics,
            "intervals": _records(self.intervals.reset_index()) if len(self.intervals) else [],
            "decision_curve": _records(self.decision.table),
            "risk_tiers": _records(self.tiers),
            "subgroups": _records(self.subgroups),
        }

    def plot_calibration(self, ax: Any = None, by: str | None = None) -> Any:
        """Calibration curve, overall or by a subgroup column; returns the Axes."""
        from phm_eval.risk.plots import plot_calibration

        groups = None
        if by is not None:
            if by not in self.groups.columns:
                raise KeyError(f"no subgroup column '{by}' kept with these predictions")
            groups = self.groups[by].to_numpy()
        return plot_calibration(self.y, self.p, groups=groups, ax=ax, label=self.label)

    def plot_roc(self, ax: Any = None) -> Any:
        """ROC curve; returns the Axes."""
        from phm_eval.risk.plots import plot_roc

        return plot_roc(self.y, self.p, ax=ax, label=self.label)

    def plot_decision_curve(self, ax: Any = None) -> Any:
        """Decision curve; returns the Axes."""
        return self.decision.plot(ax=ax)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def evaluate_predictions(
    y_true: Any,
    y_prob: Any,
    config: RiskModelConfig | None = None,
    *,
    frame: pd.DataFrame | None = None,
    label: str = "validation",
) -> ValidationResult:
    """All validation outputs for one set of predictions.

    Parameters
    ----------
    y_true, y_prob : array-like
        Outcome and predicted risk.
    config : RiskModelConfig, optional
        Thresholds, tiers, subgroups and bootstrap settings.
    frame : pandas.DataFrame, optional
        Rows aligned with ``y_true`` holding the subgroup columns.
    label : str
        Name of the design.
    """
    config = config or RiskModelConfig()
    y, p = _as_outcome_and_prob(y_true, y_prob)
    metrics = calibration_metrics(y, p)
    intervals = (
        bootstrap_metrics(y, p, n_boot=config.n_bootstrap, random_state=config.random_state)
        if config.n_bootstrap > 0
        else pd.DataFrame()
    )
    groups = pd.DataFrame()
    subgroups = pd.DataFrame()
    if frame is not None:
        frame = _with_age_band(frame)
        cols = [c for c in config.subgroups if c in frame.columns]
        absent = sorted(set(config.subgroups) - set(cols))
        if absent:
            logger.warning("subgroup column(s) not in the data: %s", ", ".join(absent))
        groups = frame[cols].reset_index(drop=True)
        work = groups.assign(_y=y, _p=p)
        subgroups = subgroup_metrics(work, "_y", "_p", by=cols) if cols else pd.DataFrame()
    return ValidationResult(
        label=label,
        metrics=metrics,
        intervals=intervals,
        calibration=calibration_curve(y, p),
        decision=decision_curve(y, p, config.thresholds, label=label),
        tiers=risk_tier_metrics(y, p, config.risk_tiers),
        subgroups=subgroups,
        y=y,
        p=p,
        groups=groups,
    )


# ---------------------------------------------------------------------------------------------
# validation designs


@_one_blas_thread
def bootstrap_optimism(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    n_bootstrap: int | None = None,
    model: Pipeline | None = None,
) -> pd.DataFrame:
    """Harrell's bootstrap optimism correction of apparent performance.

    Each replicate refits the whole pipeline (including spline knots, imputation and, with
    ``C="cv"``, the penalty) to a resample, scores it on that resample and on the original
    data; the mean difference is the optimism.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data.
    config : RiskModelConfig, optional
    n_bootstrap : int, optional
        Replicates; default ``config.n_optimism_bootstrap``.
    model : Pipeline, optional
        The model already fitted to ``df`` (refitted if omitted).

    Returns
    -------
    pandas.DataFrame
        Indexed by metric (c-statistic, calibration slope, calibration-in-the-large, Brier,
        O/E), with ``apparent``, ``optimism``, ``corrected``, ``optimism_sd`` and
        ``n_bootstrap``.
    """
    config = config or RiskModelConfig()
    b_total = config.n_optimism_bootstrap if n_bootstrap is None else int(n_bootstrap)
    if b_total < 1:
        raise ConfigError("bootstrap optimism needs at least one replicate")
    y = _outcome(df, config)
    fitted = model if model is not None else _fit(df, config)
    apparent = calibration_metrics(y, _predict(fitted, df), smooth=False)
    rng = np.random.default_rng(config.random_state)
    diffs = []
    template = _build(df, config)
    for b in range(b_total):
        idx = rng.integers(0, len(df), size=len(df))
        boot = df.iloc[idx]
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        mb = clone(template).fit(boot, yb)
        in_boot = calibration_metrics(yb, _predict(mb, boot), smooth=False)
        in_orig = calibration_metrics(y, _predict(mb, df), smooth=False)
        diffs.append([in_boot[m] - in_orig[m] for m in CORE_METRICS])
        logger.debug("optimism bootstrap %d/%d done", b + 1, b_total)
    if not diffs:
        raise EstimationError("no bootstrap replicate had both outcome classes")
    d = np.asarray(diffs)
    optimism = d.mean(axis=0)
    table = pd.DataFrame(
        {
            "apparent": [apparent[m] for m in CORE_METRICS],
            "optimism": optimism,
            "corrected": [apparent[m] for m in CORE_METRICS] - optimism,
            "optimism_sd": d.std(axis=0, ddof=1) if len(d) > 1 else np.nan,
            "n_bootstrap": len(d),
        },
        index=pd.Index(CORE_METRICS, name="metric"),
    )
    return table


def random_effects_c_statistic(
    c: Sequence[float], se: Sequence[float], alpha: float = 0.05
) -> dict[str, Any]:
    """DerSimonian-Laird random-effects summary of c-statistics on the logit scale.

    Follows Debray et al. (BMJ 2017;356:i6460): ``logit(c)`` with standard error
    ``se / (c (1 - c))``; the 95% prediction interval uses a t distribution with ``k - 2``
    degrees of freedom (Riley et al., BMJ 2011;342:d549).

    Returns
    -------
    dict
        ``c_statistic``, ``lower``, ``upper``, ``prediction_lower``, ``prediction_upper``,
        ``tau2`` (logit scale), ``i2``, ``q``, ``k``; with fewer than three clusters the
        prediction limits are NaN and ``prediction_note`` says why.
    """
    c_arr = np.asarray(c, dtype=float)
    se_arr = np.asarray(se, dtype=float)
    ok = np.isfinite(c_arr) & np.isfinite(se_arr) & (se_arr > 0) & (c_arr > 0) & (c_arr < 1)
    c_arr, se_arr = c_arr[ok], se_arr[ok]
    k = c_arr.size
    if k == 0:
        raise EstimationError("no cluster has a usable c-statistic for the meta-analysis")
    yi = logit(c_arr)
    vi = (se_arr / (c_arr * (1 - c_arr))) ** 2
    w = 1.0 / vi
    fixed = np.sum(w * yi) / np.sum(w)
    q = float(np.sum(w * (yi - fixed) ** 2))
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (q - (k - 1)) / denom) if k > 1 else 0.0
    ws = 1.0 / (vi + tau2)
    mu = np.sum(ws * yi) / np.sum(ws)
    se_mu = np.sqrt(1.0 / np.sum(ws))
    z = stats.norm.ppf(1 - alpha / 2)
    if k > 2:
        half = stats.t.ppf(1 - alpha / 2, k - 2) * np.sqrt(tau2 + se_mu**2)
        pred = (float(expit(mu - half)), float(expit(mu + half)))
    else:
        pred = (float("nan"), float("nan"))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    out: dict[str, Any] = {
        "c_statistic": float(expit(mu)),
        "lower": float(expit(mu - z * se_mu)),
        "upper": float(expit(mu + z * se_mu)),
        "prediction_lower": pred[0],
        "prediction_upper": pred[1],
        "tau2": float(tau2),
        "i2": float(i2),
        "q": q,
        "k": int(k),
    }
    if k <= 2:
        out["prediction_note"] = (f"not estimable: a prediction interval needs at least 3 "
                                  f"clusters with a usable c-statistic (t on k - 2 degrees of "
                                  f"freedom); {k} available")
    return out


@dataclass
class IECVResult:
    """Internal-external cross-validation by cluster.

    Attributes
    ----------
    per_cluster : pandas.DataFrame
        One row per held-out cluster: ``cluster``, ``n``, ``events``, ``c_statistic``,
        ``c_se``, ``calibration_slope``, ``calibration_in_the_large``, ``oe_ratio``, ``brier``.
    pooled : ValidationResult
        All held-out predictions stacked.
    meta : dict
        :func:`random_effects_c_statistic` over clusters with enough events.
    cluster : str
        The cluster column.
    choice : IECVClusterChoice, optional
        How the cluster column was chosen (requested column, counts, fallback note).
    """

    per_cluster: pd.DataFrame
    pooled: ValidationResult
    meta: dict[str, Any]
    cluster: str
    choice: IECVClusterChoice | None = None

    def summary(self) -> pd.DataFrame:
        """Per-cluster table."""
        return self.per_cluster.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        out = {
            "cluster": self.cluster,
            "per_cluster": _records(self.per_cluster),
            "pooled": self.pooled.to_dict(),
            "random_effects_c_statistic": self.meta,
        }
        if self.choice is not None:
            out |= {k: v for k, v in self.choice.to_dict().items() if k != "cluster"}
        return out


#: Fewest clusters with a usable c-statistic for internal-external cross-validation. The
#: random-effects summary's 95% prediction interval, which shows how performance varies between
#: clusters (the point of internal-external validation), uses a t distribution on k - 2 degrees
#: of freedom (Riley et al., BMJ 2011;342:d549): three clusters are the fewest that give one.
#: "Usable" means at least ``min_cluster_events`` events and as many non-events (default 5),
#: enough for a held-out c-statistic and its DeLong standard error.
MIN_IECV_CLUSTERS = 3

#: Smaller units tried, in order, when the configured cluster has too few usable clusters.
IECV_FALLBACK_UNITS = ("practice_id",)


@dataclass(frozen=True)
class IECVClusterChoice:
    """Which unit internal-external cross-validation leaves out, and why.

    Attributes
    ----------
    cluster : str or None
        Column used; None when no unit has enough usable clusters (validation skipped).
    requested : str or None
        The configured column (``config.cluster``).
    n_clusters, n_usable_clusters : int
        Levels of ``cluster`` (of ``requested`` when skipped), and how many have enough
        events and non-events for a c-statistic.
    min_clusters : int
        The minimum applied.
    note : str or None
        Why the requested unit was not used (None when it was).
    """

    cluster: str | None
    requested: str | None
    n_clusters: int
    n_usable_clusters: int
    min_clusters: int
    note: str | None = None

    @property
    def fell_back(self) -> bool:
        """True when the unit used is not the one requested."""
        return self.cluster != self.requested

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {"cluster": self.cluster, "requested_cluster": self.requested,
                "n_clusters": self.n_clusters, "n_usable_clusters": self.n_usable_clusters,
                "min_usable_clusters": self.min_clusters, "note": self.note}


def _cluster_counts(df: pd.DataFrame, y: np.ndarray, col: str, min_events: int
                    ) -> tuple[int, int]:
    labels = df[col].astype("object").where(df[col].notna(), "missing")
    counts = pd.DataFrame({"c": labels.to_numpy(), "y": y}).groupby("c")["y"].agg(["sum", "size"])
    usable = np.minimum(counts["sum"], counts["size"] - counts["sum"]) >= min_events
    return len(counts), int(usable.sum())


def _unit(col: str) -> str:
    return {"pcn_id": "PCN", "practice_id": "practice"}.get(col, col)


def choose_iecv_cluster(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    fallback: Sequence[str] = IECV_FALLBACK_UNITS,
) -> IECVClusterChoice:
    """Choose the unit internal-external cross-validation leaves out.

    The configured ``config.cluster`` (e.g. ``pcn_id``) is used when at least
    ``config.min_iecv_clusters`` (default :data:`MIN_IECV_CLUSTERS`, 3) of its clusters have
    ``config.min_cluster_events`` events and as many non-events; otherwise the first unit of
    ``fallback`` (practice) that has enough, with a note; otherwise none (validation skipped,
    with a note). A 2-PCN extract is thus validated practice by practice.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data with the outcome and the cluster columns.
    config : RiskModelConfig, optional
    fallback : sequence of str
        Smaller units to try, in order (those absent from ``df`` are passed over).

    Returns
    -------
    IECVClusterChoice
    """
    config = config or RiskModelConfig()
    requested = config.cluster
    minimum = int(config.min_iecv_clusters)
    min_events = max(int(config.min_cluster_events), 2)
    y = _outcome(df, config)
    reasons = []
    first: tuple[int, int] | None = None
    for col in dict.fromkeys([c for c in (requested, *fallback) if c]):
        if col not in df.columns:
            if col == requested:
                reasons.append(f"the {col} column is missing")
            continue
        n, usable = _cluster_counts(df, y, col, min_events)
        first = first or (n, usable)
        if usable >= minimum:
            note = None
            if col != requested:
                note = (f"internal-external validation by {_unit(col)} instead of "
                        f"{_unit(requested or '')}: " + "; ".join(reasons))
            return IECVClusterChoice(col, requested, n, usable, minimum, note)
        reasons.append(f"{n} {_unit(col)}(s), {usable} of them with at least {min_events} "
                       f"patients with and {min_events} without the outcome; at least "
                       f"{minimum} such are needed")
    n, usable = first or (0, 0)
    return IECVClusterChoice(None, requested, n, usable, minimum,
                             "internal-external validation not run: " + "; ".join(reasons))


def _warm_started(model: Pipeline, start: Pipeline | None) -> Pipeline:
    """``model`` set to start a logistic fit from ``start``'s coefficients (else unchanged)."""
    if start is None:
        return model
    final, fitted = model.named_steps.get("model"), start.named_steps.get("model")
    if not (isinstance(final, LogisticRegression) and isinstance(fitted, LogisticRegression)
            and hasattr(fitted, "coef_")):
        return model
    final.set_params(warm_start=True)
    final.coef_ = fitted.coef_.copy()
    final.intercept_ = fitted.intercept_.copy()
    return model


@_one_blas_thread
def cluster_folds(labels: np.ndarray, max_folds: int) -> np.ndarray:
    """Fold of each row: one fold per cluster when there are at most ``max_folds`` clusters,
    else clusters grouped into ``max_folds`` folds of about equal size (largest cluster first
    into the smallest fold; deterministic, ties by label)."""
    levels, codes, sizes = np.unique(labels.astype(str), return_inverse=True,
                                     return_counts=True)
    if len(levels) <= max_folds:
        return codes
    order = sorted(range(len(levels)), key=lambda i: (-sizes[i], levels[i]))
    totals = np.zeros(max_folds)
    fold_of = np.empty(len(levels), dtype=int)
    for i in order:
        fold = int(np.argmin(totals))
        fold_of[i] = fold
        totals[fold] += sizes[i]
    return fold_of[codes]


def internal_external_cv(
    df: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    cluster: str | None = None,
    start: Pipeline | None = None,
) -> IECVResult:
    """Internal-external cross-validation: leave one cluster (PCN or practice) out at a time.

    Parameters
    ----------
    df : pandas.DataFrame
        Development data with the cluster column.
    config : RiskModelConfig, optional
    cluster : str, optional
        Cluster column; default ``config.cluster``.
    start : Pipeline, optional
        The model fitted on all of ``df``. A penalised logistic model of each fold then starts
        its optimiser from these coefficients (warm start): the same optimum, reached in fewer
        iterations, since leaving one cluster out moves the coefficients little.

    Returns
    -------
    IECVResult
    """
    config = config or RiskModelConfig()
    col = cluster or config.cluster
    if not col:
        raise ConfigError("internal-external cross-validation needs a cluster column")
    if col not in df.columns:
        raise InputError("features", f"cluster column '{col}' is missing")
    y = _outcome(df, config)
    labels = df[col].astype("object").where(df[col].notna(), "missing").to_numpy()
    levels = pd.unique(labels)
    if levels.size < 2:
        raise EstimationError(f"internal-external cross-validation needs at least two {col}s")
    template = _build(df, config)
    p_all = np.full(len(df), np.nan)
    folds = cluster_folds(labels, int(config.iecv_max_folds))
    for fold in np.unique(folds):
        held = folds == fold
        train_y = y[~held]
        if train_y.min() == train_y.max():
            raise EstimationError(f"leaving out fold {fold} of {col}s leaves one outcome class")
        model = _warm_started(clone(template), start).fit(df.loc[~held], train_y)
        p_all[held] = _predict(model, df.loc[held])
    rows = []
    for level in levels:
        held = labels == level
        p = p_all[held]
        yy = y[held]
        ev = float(yy.sum())
        row: dict[str, Any] = {"cluster": level, "n": int(held.sum()), "events": ev}
        row.update(dict.fromkeys(("c_statistic", "c_se", *CORE_METRICS[1:]), np.nan))
        row["oe_ratio"] = ev / p.sum() if p.sum() > 0 else np.nan
        row["brier"] = float(np.mean((p - yy) ** 2))
        if min(ev, yy.size - ev) >= max(config.min_cluster_events, 2):
            m = calibration_metrics(yy, p, smooth=False)
            dl = delong_ci(yy, p)
            row.update({k: m[k] for k in CORE_METRICS})
            row["c_se"] = dl["se"]
        rows.append(row)
    per_cluster = pd.DataFrame(rows)
    ordered = ["cluster", "n", "events", "c_statistic", "c_se", *CORE_METRICS[1:]]
    per_cluster = per_cluster[ordered]
    pooled = evaluate_predictions(y, p_all, config, frame=df, label="internal-external (pooled)")
    meta = random_effects_c_statistic(per_cluster["c_statistic"], per_cluster["c_se"])
    return IECVResult(per_cluster=per_cluster, pooled=pooled, meta=meta, cluster=col)


@dataclass
class TemporalValidationResult:
    """A model developed at one index date and validated at a later one."""

    model: Pipeline = field(repr=False)
    development: ValidationResult
    validation: ValidationResult

    def summary(self) -> pd.DataFrame:
        """Apparent (development) and temporal-validation estimates side by side."""
        return pd.DataFrame(
            {
                "development": pd.Series(self.development.metrics),
                "validation": pd.Series(self.validation.metrics),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {"development": self.development.to_dict(), "validation": self.validation.to_dict()}


@_one_blas_thread
def temporal_validation(
    development: pd.DataFrame,
    validation: pd.DataFrame,
    config: RiskModelConfig | None = None,
    *,
    model: Pipeline | None = None,
) -> TemporalValidationResult:
    """Fit on the earlier index date's features and validate on the later one's.

    Patients may appear in both frames (a person is at risk at both dates); the outcome
    windows must not overlap, which is the feature extraction's job.
    """
    config = config or RiskModelConfig()
    fitted = model if model is not None else _fit(development, config)
    y_dev = _outcome(development, config)
    y_val = _outcome(validation, config, table="validation features")
    _resolve_features(validation, config)
    dev = evaluate_predictions(
        y_dev,
        _predict(fitted, development),
        _no_bootstrap(config),
        frame=development,
        label="development (apparent)",
    )
    val = evaluate_predictions(
        y_val, _predict(fitted, validation), config, frame=validation, label="temporal validation"
    )
    return TemporalValidationResult(model=fitted, development=dev, validation=val)


def _no_bootstrap(config: RiskModelConfig) -> RiskModelConfig:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values["n_bootstrap"] = 0
    return RiskModelConfig(**values)


# ---------------------------------------------------------------------------------------------
# orchestration


@dataclass
class RiskModelReport:
    """Everything the model card reports.

    Attributes
    ----------
    config : RiskModelConfig
    model : Pipeline
        Final model, fitted to all development data.
    apparent : ValidationResult
    optimism : pandas.DataFrame or None
    iecv : IECVResult or None
    temporal : TemporalValidationResult or None
    sample_size : SampleSizeResult
    n_parameters : int
    missing : pandas.DataFrame
    n, events : int
        Development sample.
    """

    config: RiskModelConfig
    model: Pipeline = field(repr=False)
    apparent: ValidationResult
    optimism: pd.DataFrame | None
    iecv: IECVResult | None
    temporal: TemporalValidationResult | None
    sample_size: SampleSizeResult
    n_parameters: int
    missing: pd.DataFrame
    n: int
    events: int
    feature_sets: dict[str, list[str]] = field(default_factory=dict)
    development_frame: pd.DataFrame | None = field(default=None, repr=False)
    iecv_choice: IECVClusterChoice | None = None

    def summary(self) -> pd.DataFrame:
        """Headline metrics by design (rows) for c-statistic, calibration and Brier."""
        rows = {"apparent": self.apparent.metrics}
        if self.optimism is not None:
            rows["optimism-corrected"] = self.optimism["corrected"].to_dict()
        if self.iecv is not None:
            rows["internal-external (pooled)"] = self.iecv.pooled.metrics
        if self.temporal is not None:
            rows["temporal validation"] = self.temporal.validation.metrics
        return pd.DataFrame(rows).T.reindex(columns=list(CORE_METRICS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (aggregate statistics only)."""
        return {
            "config": self.config.to_dict(),
            "n": self.n,
            "events": self.events,
            "n_parameters": self.n_parameters,
            "features": self.feature_sets,
            "sample_size": self.sample_size.to_dict(),
            "missing": _records(self.missing),
            "apparent": self.apparent.to_dict(),
            "optimism": _records(self.optimism.reset_index())
            if self.optimism is not None
            else None,
            "internal_external": self._iecv_dict(),
            "temporal": self.temporal.to_dict() if self.temporal is not None else None,
        }

    def _iecv_dict(self) -> dict[str, Any] | None:
        if self.iecv is not None:
            return self.iecv.to_dict()
        if self.iecv_choice is not None:  # skipped: say why, the results are null
            return self.iecv_choice.to_dict() | {"per_cluster": [], "pooled": None,
                                                 "random_effects_c_statistic": None}
        return None

    def primary_validation(self) -> ValidationResult:
        """The most external validation available: temporal, else IECV, else apparent."""
        if self.temporal is not None:
            return self.temporal.validation
        if self.iecv is not None:
            return self.iecv.pooled
        return self.apparent

    def write(
        self,
        output_dir: str | Path,
        report_json_dir: str | Path | None = None,
        **card_kwargs: Any,
    ) -> dict[str, Path]:
        """Write figures, ``risk_model_report.json`` and ``model_card.md``.

        Parameters
        ----------
        output_dir : path
            Folder of the figures and the model card.
        report_json_dir : path, optional
            Folder of ``risk_model_report.json``, the full report with unrounded counts
            (development and validation sizes, events, true and false positives at every
            threshold, missing values...).  Defaults to ``output_dir``; a workflow that
            releases ``output_dir`` puts it under the results folder's ``internal/``.
        **card_kwargs
            For :func:`phm_eval.risk.model_card.render_model_card` (``policy`` or
            ``disclose`` for disclosure control of the card's counts).

        Returns
        -------
        dict of str to Path
            Every file written: figure names, ``"report"`` and ``"model_card"``.
        """
        from phm_eval.risk.model_card import write_model_card

        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = _write_figures(self, out)
        json_dir = Path(report_json_dir) if report_json_dir is not None else out
        json_dir.mkdir(parents=True, exist_ok=True)
        report_path = json_dir / "risk_model_report.json"
        write_json(report_path, self.to_dict())  # NaN as null: strict JSON
        paths["report"] = report_path
        figures = {k: v.name for k, v in paths.items() if v.suffix == ".png"}
        paths["model_card"] = write_model_card(
            out / "model_card.md", self, figures=figures, **card_kwargs
        )
        return paths


def _write_figures(report: RiskModelReport, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phm_eval.risk.models import feature_importance, model_coefficients
    from phm_eval.risk.plots import plot_feature_importance

    main = report.primary_validation()
    paths: dict[str, Path] = {}

    def save(name: str, draw: Any) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        draw(ax)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths[name] = path

    save("calibration", lambda ax: main.plot_calibration(ax=ax))
    for col in main.groups.columns:
        save(f"calibration_by_{col}", lambda ax, c=col: main.plot_calibration(ax=ax, by=c))
    save("roc", lambda ax: main.plot_roc(ax=ax))
    save("decision_curve", lambda ax: main.plot_decision_curve(ax=ax))
    table = None
    if report.config.model == "penalised_logistic":
        table, name = model_coefficients(report.model), "coefficients"
    elif report.development_frame is not None:
        data = report.development_frame
        # permutation importance on a subsample keeps this to seconds
        table = feature_importance(
            report.model,
            data,
            _outcome(data, report.config),
            random_state=report.config.random_state,
        )
        name = "feature_importance"
    if table is not None:
        save(name, lambda ax: plot_feature_importance(table, ax=ax))
    return paths


@_one_blas_thread
def develop_risk_model(
    features: pd.DataFrame,
    config: RiskModelConfig | Mapping[str, Any] | None = None,
    *,
    validation_features: pd.DataFrame | None = None,
    output_dir: str | Path | None = None,
    run_iecv: bool = True,
    anticipated_c_statistic: float = 0.75,
    model_card_options: Mapping[str, Any] | None = None,
    report_json_dir: str | Path | None = None,
) -> RiskModelReport:
    """Develop the risk model and validate it by every design the data allow.

    Parameters
    ----------
    features : pandas.DataFrame
        Development frame: one row per patient at the (earlier) index date, with the
        configured features, ``config.cluster`` and the outcome.
    config : RiskModelConfig or mapping, optional
        The ``risk:`` configuration block.
    validation_features : pandas.DataFrame, optional
        Frame at a later index date for temporal validation.
    output_dir : path, optional
        If given, figures, a JSON report and ``model_card.md`` are written there.
    run_iecv : bool, default True
        Run internal-external cross-validation by ``config.cluster`` when it has at least
        ``config.min_iecv_clusters`` usable clusters, else by practice, else not at all; the
        choice and its reason are in ``report.iecv_choice`` and in ``to_dict()``
        (``internal_external.cluster``, ``requested_cluster`` and ``note``).
    anticipated_c_statistic : float, default 0.75
        For the Riley sample-size check (routine-data admission models report 0.7-0.8).
    model_card_options : mapping, optional
        Keyword arguments for :func:`phm_eval.risk.model_card.render_model_card` (free text,
        and ``policy`` or ``disclose`` to apply disclosure control to every count in the card).
    report_json_dir : path, optional
        Where ``risk_model_report.json`` (unrounded counts: not for release) is written;
        defaults to ``output_dir``.

    Returns
    -------
    RiskModelReport
    """
    if not isinstance(config, RiskModelConfig):
        config = RiskModelConfig.from_dict(config)
    y = _outcome(features, config)
    if y.min() == y.max():
        raise EstimationError("the development data hold only one outcome class")
    model = _fit(features, config)
    apparent = evaluate_predictions(
        y, _predict(model, features), _no_bootstrap(config), frame=features, label="apparent"
    )
    optimism = (
        bootstrap_optimism(features, config, model=model)
        if config.n_optimism_bootstrap > 0
        else None
    )
    iecv = choice = None
    if run_iecv and config.cluster:
        choice = choose_iecv_cluster(features, config)
        if choice.note:
            logger.warning("%s", choice.note)
        if choice.cluster is not None:
            iecv = internal_external_cv(features, config, cluster=choice.cluster, start=model)
            iecv.choice = choice
    temporal = (
        temporal_validation(features, validation_features, config, model=model)
        if validation_features is not None
        else None
    )
    n_par = candidate_parameters(features, config)
    sample = riley_minimum(max(n_par, 1), float(y.mean()), c_statistic=anticipated_c_statistic)
    report = RiskModelReport(
        config=config,
        model=model,
        apparent=apparent,
        optimism=optimism,
        iecv=iecv,
        temporal=temporal,
        sample_size=sample,
        n_parameters=n_par,
        missing=missing_data_summary(features, config),
        n=len(features),
        events=int(y.sum()),
        feature_sets=_resolve_features(features, config),
        development_frame=features,
        iecv_choice=choice,
    )
    if output_dir is not None:
        report.write(output_dir, report_json_dir=report_json_dir,
                     **dict(model_card_options or {}))
    return report


# ---------------------------------------------------------------------------------------------
# example data


def example_risk_features(
    n: int = 20_000,
    *,
    random_state: int | None = 0,
    n_practices: int = 40,
    practices_per_pcn: int = 5,
    n_ltc_flags: int = 10,
    intercept_shift: float = 0.0,
) -> pd.DataFrame:
    """Synthetic feature frame with a known risk model, for examples, tests and benchmarks.

    The outcome is drawn from a logistic model linear in the features (age, frailty, prior
    admissions, deprivation, sex, ethnicity and the first five long-term-condition flags);
    the true risk is kept in ``true_risk``. ``intercept_shift`` moves the baseline log-odds
    (e.g. a later cohort with a different admission rate).
    """
    rng = np.random.default_rng(random_state)
    age = rng.uniform(18, 100, n)
    sex = rng.choice(["F", "M"], n)
    ethnicity = rng.choice(
        ["White", "Asian", "Black", "Mixed", "Other", "Unknown"],
        n,
        p=[0.8, 0.08, 0.04, 0.03, 0.02, 0.03],
    )
    imd = rng.integers(1, 11, n)
    n_ltc = rng.poisson(np.clip((age - 18) / 25, 0, None))
    efi = np.clip(rng.beta(1.5, 12, n) + n_ltc * 0.01, 0, 1)
    ea1 = rng.poisson(0.1 + 0.05 * n_ltc)
    ea2 = ea1 + rng.poisson(0.1 + 0.05 * n_ltc)
    practice = rng.integers(0, n_practices, n)
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i:07d}" for i in range(n)],
            "practice_id": [f"K{j:03d}" for j in practice],
            "pcn_id": [f"U{j // practices_per_pcn:02d}" for j in practice],
            "age": age,
            "sex": sex,
            "ethnicity": ethnicity,
            "imd_decile": imd.astype(float),
            "imd_quintile": ((imd + 1) // 2).astype(str),
            "n_ltc": n_ltc,
            "efi_score": efi,
            "n_emergency_admissions_1y": ea1,
            "n_emergency_admissions_2y": ea2,
            "bed_days_1y": rng.poisson(2 * ea1),
            "n_medications": rng.poisson(1 + n_ltc),
            "n_gp_events_1y": rng.poisson(3 + 2 * n_ltc),
            "hfrs": rng.gamma(1, 2, n) * (ea1 > 0),
        }
    )
    flags = rng.random((n, n_ltc_flags)) < 0.08
    for j in range(n_ltc_flags):
        frame[f"ltc_flag_{j:02d}"] = flags[:, j]
    weights = np.array([0.3, 0.2, 0.2, 0.1, 0.1])[: min(5, n_ltc_flags)]
    lp = (
        -3.2
        + intercept_shift
        + 0.025 * (age - 60)
        + 0.45 * ea1
        + 0.1 * ea2
        + 2.0 * efi
        + 0.08 * n_ltc
        - 0.05 * (imd - 5)
        + 0.1 * (sex == "M")
        + 0.2 * (ethnicity == "Black")
        + flags[:, : weights.size] @ weights
    )
    frame["true_risk"] = expit(lp)
    frame["emergency_admission_12m"] = rng.binomial(1, frame["true_risk"].to_numpy())
    missing_imd = rng.random(n) < 0.03
    frame.loc[missing_imd, "imd_decile"] = np.nan
    frame.loc[missing_imd, "imd_quintile"] = None
    return frame
