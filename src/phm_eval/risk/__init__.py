"""Emergency-admission risk models and their validation, reported to TRIPOD+AI.

See ``docs/risk-model.md``. The usual entry point is :func:`develop_risk_model`.
"""

from phm_eval.risk.decision_curve import (
    DecisionCurve,
    decision_curve,
    net_benefit,
    risk_tier_metrics,
)
from phm_eval.risk.develop import (
    IECVResult,
    RiskModelConfig,
    RiskModelReport,
    TemporalValidationResult,
    ValidationResult,
    bootstrap_optimism,
    develop_risk_model,
    evaluate_predictions,
    example_risk_features,
    internal_external_cv,
    random_effects_c_statistic,
    temporal_validation,
)
from phm_eval.risk.model_card import render_model_card, write_model_card
from phm_eval.risk.models import MODEL_NAMES, feature_importance, make_model, model_coefficients
from phm_eval.risk.sample_size import SampleSizeResult, r2_cs_from_c_statistic, riley_minimum
from phm_eval.risk.validation import (
    bootstrap_metrics,
    c_statistic,
    calibration_curve,
    calibration_metrics,
    delong_ci,
    subgroup_metrics,
)

__all__ = [
    "MODEL_NAMES",
    "DecisionCurve",
    "IECVResult",
    "RiskModelConfig",
    "RiskModelReport",
    "SampleSizeResult",
    "TemporalValidationResult",
    "ValidationResult",
    "bootstrap_metrics",
    "bootstrap_optimism",
    "c_statistic",
    "calibration_curve",
    "calibration_metrics",
    "decision_curve",
    "delong_ci",
    "develop_risk_model",
    "evaluate_predictions",
    "example_risk_features",
    "feature_importance",
    "internal_external_cv",
    "make_model",
    "model_coefficients",
    "net_benefit",
    "r2_cs_from_c_statistic",
    "random_effects_c_statistic",
    "render_model_card",
    "riley_minimum",
    "risk_tier_metrics",
    "subgroup_metrics",
    "temporal_validation",
    "write_model_card",
]
