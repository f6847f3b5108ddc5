"""Minimum sample size to develop a risk model for a binary outcome (TRIPOD+AI item 9).

Implements the three criteria of Riley et al., "Calculating the sample size required for
developing a clinical prediction model", BMJ 2020;368:m441 (criteria (i)-(iii) for binary
outcomes, as in the R package ``pmsampsize``):

1. expected uniform shrinkage of predictor effects at least ``S`` (default 0.9)::

       n1 = p / ((S - 1) * ln(1 - R2_CS / S))

2. a small optimism (0.05) in the apparent Nagelkerke R2: criterion 1 with
   ``S = R2_CS / (R2_CS + 0.05 * max(R2_CS))``, where
   ``max(R2_CS) = 1 - (phi^phi * (1 - phi)^(1 - phi))^2`` for outcome proportion ``phi``;
3. the overall risk estimated within +/-0.05 (95% confidence)::

       n3 = (1.96 / 0.05)^2 * phi * (1 - phi)

Each is rounded up; the minimum sample size is the largest.

When the anticipated Cox-Snell R2 is unknown but a c-statistic is reported, it is
approximated as in Riley, Van Calster & Collins (Stat Med 2021;40:859-864): the linear
predictor is taken to be normal with equal variance in events and non-events, so that
``C = Phi(mu / sqrt(2))``; R2_CS is then that of the (correct) logistic model for this
mixture. ``pmsampsize`` estimates it by simulating one million patients; here the same
quantity is computed by numerical integration, so the two agree to simulation error (a few
units in the fourth decimal of R2_CS). With neither, the conservative default of Riley et al.
is used: R2_CS = 15% of its maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, stats
from scipy.special import log_expit

from phm_eval.convention import ResultConvention
from phm_eval.errors import ConfigError

__all__ = ["SampleSizeResult", "max_r2_cs", "r2_cs_from_c_statistic", "riley_minimum"]


def max_r2_cs(prevalence: float) -> float:
    """Largest Cox-Snell R2 attainable for a binary outcome with this prevalence."""
    phi = float(prevalence)
    if not 0 < phi < 1:
        raise ConfigError("prevalence must lie strictly between 0 and 1")
    ln_null = phi * math.log(phi) + (1 - phi) * math.log(1 - phi)
    return 1.0 - math.exp(2.0 * ln_null)


def r2_cs_from_c_statistic(c_statistic: float, prevalence: float) -> float:
    """Cox-Snell R2 implied by a c-statistic and prevalence (Riley et al. 2021).

    Parameters
    ----------
    c_statistic : float
        Anticipated c-statistic, in (0.5, 1).
    prevalence : float
        Anticipated outcome proportion.

    Returns
    -------
    float
        ``1 - exp(-LR / n)`` in the limit of a large sample, where LR is the likelihood-ratio
        statistic of a logistic model whose linear predictor has that c-statistic.
    """
    if not 0.5 < c_statistic < 1:
        raise ConfigError("c_statistic must lie strictly between 0.5 and 1")
    phi = float(prevalence)
    if not 0 < phi < 1:
        raise ConfigError("prevalence must lie strictly between 0 and 1")
    mu = math.sqrt(2.0) * stats.norm.ppf(c_statistic)
    base = math.log(phi / (1 - phi)) - mu * mu / 2.0

    def eta(x: float) -> float:
        return base + mu * x

    def events(x: float) -> float:
        return float(stats.norm.pdf(x, loc=mu) * log_expit(eta(x)))

    def non_events(x: float) -> float:
        return float(stats.norm.pdf(x) * log_expit(-eta(x)))

    lo, hi = min(0.0, mu) - 12.0, max(0.0, mu) + 12.0
    e1, _ = integrate.quad(events, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-12)
    e0, _ = integrate.quad(non_events, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-12)
    loglik_model = phi * e1 + (1 - phi) * e0
    loglik_null = phi * math.log(phi) + (1 - phi) * math.log(1 - phi)
    return 1.0 - math.exp(-2.0 * (loglik_model - loglik_null))


@dataclass(frozen=True, repr=False)
class SampleSizeResult(ResultConvention):
    """Riley et al. (2020) minimum sample size for a binary-outcome prediction model.

    Attributes
    ----------
    minimum_n : int
        Largest of the three criteria.
    minimum_events : float
        ``minimum_n * prevalence``.
    events_per_parameter : float
        ``minimum_events / n_parameters``.
    shrinkage : float
        Expected shrinkage at ``minimum_n`` (the larger of the target and criterion 2's).
    r2_cs : float
        Anticipated Cox-Snell R2 used.
    r2_source : str
        ``"given"``, ``"c_statistic"`` or ``"15% of maximum"``.
    criteria : pandas.DataFrame
        One row per criterion: ``criterion``, ``n``, ``shrinkage``, ``events``, ``epp``.
    """

    minimum_n: int
    minimum_events: float
    events_per_parameter: float
    shrinkage: float
    n_parameters: int
    prevalence: float
    r2_cs: float
    r2_source: str
    max_r2_cs: float
    criteria: pd.DataFrame = field(repr=False)

    def _repr_fields(self) -> dict[str, Any]:
        return {"minimum_n": int(self.minimum_n), "n_parameters": int(self.n_parameters),
                "prevalence": round(float(self.prevalence), 4)}

    def _summary_table(self) -> pd.DataFrame:
        """The criteria table with a final row for the minimum."""
        final = pd.DataFrame(
            [
                {
                    "criterion": "minimum (largest)",
                    "n": self.minimum_n,
                    "shrinkage": self.shrinkage,
                    "events": self.minimum_events,
                    "epp": self.events_per_parameter,
                }
            ]
        )
        return pd.concat([self.criteria, final], ignore_index=True)

    def is_adequate(self, n: int) -> bool:
        """Whether a development sample of ``n`` patients meets all three criteria."""
        return int(n) >= self.minimum_n

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "minimum_n": self.minimum_n,
            "minimum_events": self.minimum_events,
            "events_per_parameter": self.events_per_parameter,
            "shrinkage": self.shrinkage,
            "n_parameters": self.n_parameters,
            "prevalence": self.prevalence,
            "r2_cs": self.r2_cs,
            "r2_source": self.r2_source,
            "max_r2_cs": self.max_r2_cs,
            "criteria": self.criteria.to_dict(orient="records"),
        }


def _shrinkage_n(n_parameters: int, r2_cs: float, shrinkage: float) -> int:
    return math.ceil(n_parameters / ((shrinkage - 1.0) * math.log(1.0 - r2_cs / shrinkage)))


def riley_minimum(
    n_parameters: int,
    prevalence: float,
    *,
    r2_cs: float | None = None,
    shrinkage: float = 0.9,
    c_statistic: float | None = None,
    r2_optimism: float = 0.05,
    margin_of_error: float = 0.05,
) -> SampleSizeResult:
    """Minimum development sample size for a binary-outcome model (Riley et al. 2020).

    Parameters
    ----------
    n_parameters : int
        Candidate predictor parameters (degrees of freedom, not predictors: a 5-knot spline
        counts 4, a 6-level category 5).
    prevalence : float
        Anticipated outcome proportion (e.g. 12-month emergency admission risk).
    r2_cs : float, optional
        Anticipated Cox-Snell R2 (e.g. from an existing model: ``1 - exp(-LR / n)``).
    shrinkage : float, default 0.9
        Target expected uniform shrinkage (criterion 1).
    c_statistic : float, optional
        Used to approximate ``r2_cs`` when that is not given (Riley et al. 2021).
    r2_optimism : float, default 0.05
        Acceptable absolute optimism in Nagelkerke R2 (criterion 2).
    margin_of_error : float, default 0.05
        Acceptable absolute error in the overall risk (criterion 3).

    Returns
    -------
    SampleSizeResult

    Examples
    --------
    Riley et al. (2020), worked example: 24 parameters, prevalence 0.174, R2_CS 0.288:

    >>> riley_minimum(24, 0.174, r2_cs=0.288).minimum_n
    662
    """
    if n_parameters < 1:
        raise ConfigError("n_parameters must be at least 1")
    if not 0 < shrinkage < 1:
        raise ConfigError("shrinkage must lie strictly between 0 and 1")
    max_r2 = max_r2_cs(prevalence)
    if r2_cs is not None:
        r2, source = float(r2_cs), "given"
    elif c_statistic is not None:
        r2, source = r2_cs_from_c_statistic(c_statistic, prevalence), "c_statistic"
    else:
        r2, source = 0.15 * max_r2, "15% of maximum"
    if not 0 < r2 < max_r2:
        raise ConfigError(
            f"anticipated Cox-Snell R2 {r2:.4f} must lie between 0 and its maximum "
            f"{max_r2:.4f} for prevalence {prevalence}"
        )
    if shrinkage <= r2:
        raise ConfigError("shrinkage must exceed the anticipated Cox-Snell R2")
    n1 = _shrinkage_n(n_parameters, r2, shrinkage)
    s2 = r2 / (r2 + r2_optimism * max_r2)
    n2 = _shrinkage_n(n_parameters, r2, s2)
    # 1.96 rather than the exact normal quantile, as pmsampsize, so rounding matches it
    n3 = math.ceil((1.96 / margin_of_error) ** 2 * prevalence * (1 - prevalence))
    rows = []
    for label, n, s in (
        ("1: shrinkage", n1, shrinkage),
        ("2: small optimism in R2", n2, s2),
        ("3: precise overall risk", n3, np.nan),
    ):
        rows.append(
            {
                "criterion": label,
                "n": n,
                "shrinkage": s,
                "events": n * prevalence,
                "epp": n * prevalence / n_parameters,
            }
        )
    criteria = pd.DataFrame(rows)
    minimum = max(n1, n2, n3)
    final_shrinkage = max(shrinkage, s2)
    return SampleSizeResult(
        minimum_n=int(minimum),
        minimum_events=minimum * prevalence,
        events_per_parameter=minimum * prevalence / n_parameters,
        shrinkage=float(final_shrinkage),
        n_parameters=int(n_parameters),
        prevalence=float(prevalence),
        r2_cs=float(r2),
        r2_source=source,
        max_r2_cs=float(max_r2),
        criteria=criteria,
    )
