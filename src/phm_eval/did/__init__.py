"""Staggered difference-in-differences (Callaway & Sant'Anna 2021) and comparisons.

>>> res = att_gt(df, yname="y", tname="period", idname="id", gname="first_treated")
>>> res.summary()                      # ATT(g,t) with standard errors and band
>>> es = res.aggregate("dynamic")      # event study, as R's aggte(type = "dynamic")
>>> es.overall_att, es.overall_se
"""

from .aggregate import aggregate
from .att_gt import att_gt
from .honest import HonestDiDResult, honest_did, honest_did_from_event_study, original_ci
from .results import AggteResult, AttGtResult
from .twfe import RegressionResult, did_2x2, event_study_twfe, twfe

__all__ = ["att_gt", "aggregate", "AttGtResult", "AggteResult", "twfe", "event_study_twfe",
           "did_2x2", "RegressionResult", "honest_did", "honest_did_from_event_study",
           "original_ci", "HonestDiDResult"]
