"""Survival and competing-risks estimators for impact evaluation.

- :class:`FineGrayFitter` — Fine & Gray subdistribution hazards (matches ``cmprsk::crr``).
- :class:`CumulativeIncidenceFitter` — Aalen-Johansen cumulative incidence with
  cuminc's variances and Gray's test (matches ``cmprsk::cuminc``).
- :class:`RobustCoxPHFitter` — lifelines' Cox model with R-matching (cluster-)robust
  standard errors and the ``cox.zph`` proportional-hazards test.
- :class:`NegativeBinomialRateModel` — admission rate ratios from a negative binomial
  GLM with a person-time offset (matches ``MASS::glm.nb``).
"""

from phm_eval.survival.cox import RobustCoxPHFitter
from phm_eval.survival.cumulative_incidence import (
    CumulativeIncidenceFitter,
    cumulative_incidence,
)
from phm_eval.survival.fine_gray import FineGrayFitter
from phm_eval.survival.rates import NegativeBinomialRateModel, NegativeBinomialRateResults

__all__ = [
    "CumulativeIncidenceFitter",
    "FineGrayFitter",
    "NegativeBinomialRateModel",
    "NegativeBinomialRateResults",
    "RobustCoxPHFitter",
    "cumulative_incidence",
]
