"""Population segmentation for primary care networks.

Build the per-patient frame once (:func:`build_population`, DuckDB over the contract tables),
then segment it: risk tiers (:func:`risk_tiers`), the 3x3 grid (:func:`grid_3x3`), Bridges to
Health (:func:`bridges_to_health`) and Core20PLUS5 (:func:`core20plus5`). Personalised-care
activity against the Network Contract DES targets comes from :func:`des_metrics`, and practice
variation from :func:`funnel_plot`. Functions return true counts; results offer ``disclose()``
for tables that leave the analysis, and figures are drawn only from disclosed tables.
Settings and their defaults: :func:`segmentation_config` and ``docs/segmentation.md``.
"""

from phm_eval.segment.bridges import (
    BRIDGES_LABELS,
    BRIDGES_SEGMENTS,
    BridgesResult,
    bridges_rules,
    bridges_to_health,
)
from phm_eval.segment.config import CHRONIC_CONDITIONS, DEFAULTS, segmentation_config
from phm_eval.segment.core20plus5 import Core20Plus5Result, core20plus5
from phm_eval.segment.des_metrics import (
    DesMetrics,
    des_metrics,
    financial_year,
    financial_years,
)
from phm_eval.segment.funnel import funnel_data, funnel_limits, poisson_limit
from phm_eval.segment.grid import (
    AGE_GROUPS,
    NEED_GROUPS,
    GridResult,
    complex_criteria,
    grid_3x3,
)
from phm_eval.segment.ltc import ltc_flags
from phm_eval.segment.plots import funnel_plot, plot_grid
from phm_eval.segment.population import build_population
from phm_eval.segment.tiers import risk_tiers, tier_labels, tier_sizes

__all__ = [
    "AGE_GROUPS",
    "BRIDGES_LABELS",
    "BRIDGES_SEGMENTS",
    "CHRONIC_CONDITIONS",
    "DEFAULTS",
    "NEED_GROUPS",
    "BridgesResult",
    "Core20Plus5Result",
    "DesMetrics",
    "GridResult",
    "bridges_rules",
    "bridges_to_health",
    "build_population",
    "complex_criteria",
    "core20plus5",
    "des_metrics",
    "financial_year",
    "financial_years",
    "funnel_data",
    "funnel_limits",
    "funnel_plot",
    "grid_3x3",
    "ltc_flags",
    "plot_grid",
    "poisson_limit",
    "risk_tiers",
    "segmentation_config",
    "tier_labels",
    "tier_sizes",
]
