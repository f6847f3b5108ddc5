"""Survival and competing-risks estimators for impact evaluation.

- :class:`FineGrayFitter` — Fine & Gray subdistribution hazards (matches ``cmprsk::crr``).
- :class:`CumulativeIncidenceFitter` — Aalen-Johansen cumulative incidence with
  cuminc's variances and Gray's test (matches ``cmprsk::cuminc``).
- :class:`RobustCoxPHFitter` — lifelines' Cox model with R-matching (cluster-)robust
  standard errors and the ``cox.zph`` proportional-hazards test.
- :class:`NegativeBinomialRateModel` — admission rate ratios from a negative binomial
  GLM with a person-time offset (matches ``MASS::glm.nb``); :class:`PoissonRateModel`, the
  same mean model with robust standard errors, when the counts are not overdispersed.

Every fitter follows lifelines' conventions: options are keyword-only, ``fit`` returns the
fitter, fitted attributes end in ``_``, ``summary`` is a DataFrame property computed from
the fitted parameters, ``print_summary()`` prints, and ``alpha`` is always one minus the
confidence level. Bad arguments raise :class:`~phm_eval.errors.ParameterError` (a
``ValueError``) naming the argument; bad values in the data raise
:class:`~phm_eval.errors.InputError` naming the argument that holds them.
"""

from phm_eval.survival.cox import RobustCoxPHFitter
from phm_eval.survival.cumulative_incidence import (
    CumulativeIncidenceFitter,
    cumulative_incidence,
)
from phm_eval.survival.fine_gray import FineGrayFitter
from phm_eval.survival.rates import (
    DispersionError,
    NegativeBinomialRateModel,
    NegativeBinomialRateResults,
    PoissonRateModel,
)

__all__ = [
    "CumulativeIncidenceFitter",
    "DispersionError",
    "FineGrayFitter",
    "NegativeBinomialRateModel",
    "NegativeBinomialRateResults",
    "PoissonRateModel",
    "RobustCoxPHFitter",
    "cumulative_incidence",
]
