"""Power and the minimum detectable effect (MDE) of the evaluation designs, before the analysis.

A confidence interval that contains 1 means "no evidence of a reduction", which is only useful
beside what the design could have detected. This module computes the **minimum detectable
effect**: the smallest reduction in the emergency admission rate (a rate ratio below 1) that a
two-sided Wald test at level ``alpha`` detects with probability ``power`` (by default 5 % and
80 %), for

* the **enrolled-patient matched design** (enrolled vs matched comparators, one row per
  person-index, counts of emergency admissions with a person-time offset, negative binomial):
  :func:`mde_rate_ratio` from summary numbers, :func:`mde_from_frame` from the matched frame
  (``EvaluationResult.analysed``), using only the comparators' outcomes and everyone's
  covariates and person-time, never the treatment contrast;
* the **population-level (ITT) design** on a units x months panel (practices or PCNs, with or
  without a pre-period): :func:`mde_itt_panel`.

Variance of the log rate ratio
------------------------------
Counts are negative binomial (NB2) with mean ``mu = rate * t`` and variance
``mu + mu**2 / theta``. The expected information for the log rate of ``n`` people with exposures
``t_j`` is ``sum_j mu_j / (1 + mu_j / theta)``, so with equal exposure ``t`` in each arm

``Var(log RR_hat) = (1 / n1) * (1 / (rate0 * RR * t1) + 1 / theta)
+ (1 / n0) * (1 / (rate0 * t0) + 1 / theta)``

which is the variance of Zhu & Lakkis (2014, eq. 3 with their dispersion ``k = 1 / theta``)
evaluated at the alternative (their method 3, the variance the Wald interval actually uses).
With ``theta = inf`` it is the Poisson variance ``1 / events1 + 1 / events0``. Clustering
multiplies it by a design effect (Kish 1965; for clusters of mean size ``m`` and intracluster
correlation ``ICC``, ``1 + (m - 1) ICC``, with unequal sizes ``1 + ((cv**2 + 1) m - 1) ICC``,
Eldridge, Ashby & Kerry 2006), or it can be estimated as the squared ratio of the
cluster-robust to the model-based standard error (:func:`design_effect_from_se`).

The MDE is the rate ratio ``RR < 1`` solving

``-log(RR) = (z_{1 - alpha/2} + z_{power}) * sqrt(DEFF * Var(log RR_hat | RR))``

(the usual normal approximation that ignores the negligible opposite tail).

Cluster-level (ITT) design
--------------------------
For ``c1`` treated and ``c0`` control units with ``y`` person-years each, the unit's observed
rate has, relative to the mean rate squared, variance ``(1 + rate * t_p / theta) / (rate * y)
+ k**2`` (Poisson or negative binomial events of people with ``t_p`` person-years each, plus a
between-unit coefficient of variation ``k`` of the true rates), so by the delta method

``Var(log RR_hat) = [(1 + rate1 t_p / theta) / (rate1 y) + k**2] / c1
+ [(1 + rate0 t_p / theta) / (rate0 y) + k**2] / c0``

(Hayes & Bennett 1999, eq. 2 on the log scale; Signorini 1991 for the Poisson part). With a
pre-period of ``y_pre`` person-years per unit the comparison is of changes within units: each
arm's term gains the pre-period Poisson part and ``k**2`` becomes ``2 k**2 (1 - rho)``, ``rho``
the correlation of a unit's log rate between the periods. With few units the normal quantiles are
replaced by ``t`` quantiles on ``c1 + c0 - 2`` degrees of freedom (Hayes & Bennett recommend
such a small-sample allowance).

References
----------
Zhu H, Lakkis H (2014). Sample size calculation for comparing two negative binomial rates.
*Statistics in Medicine* 33:376-387.
Signorini DF (1991). Sample size for Poisson regression. *Biometrika* 78:446-450.
Hayes RJ, Bennett S (1999). Simple sample size calculation for cluster-randomized trials.
*International Journal of Epidemiology* 28:319-326.
Eldridge SM, Ashby D, Kerry S (2006). Sample size for cluster randomized trials: effect of
coefficient of variation of cluster size and analysis method. *International Journal of
Epidemiology* 35:1292-1300.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from phm_eval.convention import ResultConvention

log = logging.getLogger(__name__)

#: the largest reduction searched for (a rate ratio of 0.01)
_MIN_LOG_RR = math.log(0.01)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class MDEResult(ResultConvention):
    """A minimum detectable effect and what it was computed from (read-only).

    ``mde_rate_ratio`` is the largest rate ratio below 1 (the smallest reduction) detected with
    probability ``power`` by a two-sided test at level ``alpha``; ``NaN`` when the design cannot
    reliably detect even a 99 % reduction. ``se_log_rr`` is the standard error of the log rate
    ratio at the MDE (including the design effect).
    """

    design: str
    mde_rate_ratio: float
    alpha: float
    power: float
    se_log_rr: float
    design_effect: float
    inputs: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    note: str | None = None

    @property
    def reduction_percent(self) -> float:
        """The MDE as a percentage reduction, ``100 * (1 - MDE)``."""
        return 100.0 * (1.0 - self.mde_rate_ratio)

    def sentence(self) -> str:
        """Plain words for the report (see :func:`detectable_reduction_sentence`)."""
        return detectable_reduction_sentence(self.mde_rate_ratio, power=self.power)

    def _repr_fields(self) -> dict[str, Any]:
        return {"design": self.design, "mde_rate_ratio": round(float(self.mde_rate_ratio), 4),
                "power": self.power, "alpha": self.alpha}

    def _summary_table(self) -> pd.DataFrame:
        """One row: design, MDE, reduction, alpha, power, SE, design effect, and the inputs."""
        row = {"design": self.design, "mde_rate_ratio": self.mde_rate_ratio,
               "reduction_percent": self.reduction_percent, "alpha": self.alpha,
               "power": self.power, "se_log_rr": self.se_log_rr,
               "design_effect": self.design_effect, **self.inputs}
        return pd.DataFrame([row])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as None)."""
        def clean(v: Any) -> Any:
            if isinstance(v, (float, np.floating)):
                return float(v) if np.isfinite(v) else None
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v
        out = clean(asdict(self))
        out["reduction_percent"] = clean(self.reduction_percent)
        out["sentence"] = self.sentence()
        return out


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------
def _check_levels(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")


def _multiplier(alpha: float, power: float, df: float | None = None) -> float:
    """``z_{1-alpha/2} + z_{power}`` (or the t quantiles on ``df`` degrees of freedom)."""
    _check_levels(alpha, power)
    if df is None or not np.isfinite(df):
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    if df < 1:
        raise ValueError("at least one degree of freedom is needed (three or more units)")
    return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))


def design_effect(mean_cluster_size: float, icc: float, *, cv_cluster_size: float = 0.0) -> float:
    """Design effect of clustering: ``1 + ((cv**2 + 1) m - 1) ICC``.

    With equal cluster sizes (``cv_cluster_size = 0``) this is Kish's ``1 + (m - 1) ICC``;
    ``cv_cluster_size`` is the coefficient of variation of the cluster sizes (Eldridge, Ashby &
    Kerry 2006).

    Parameters
    ----------
    mean_cluster_size : float
        ``m``, mean number of people (or person-indexes) per cluster, at least 1.
    icc : float
        Intracluster correlation of the outcome, in ``[0, 1]``.
    cv_cluster_size : float, default 0

    Returns
    -------
    float
    """
    if mean_cluster_size < 1:
        raise ValueError("the mean cluster size must be at least 1")
    if not 0 <= icc <= 1:
        raise ValueError("the ICC must be in [0, 1]")
    if cv_cluster_size < 0:
        raise ValueError("the coefficient of variation of cluster sizes must be >= 0")
    return 1.0 + ((cv_cluster_size ** 2 + 1.0) * mean_cluster_size - 1.0) * icc


def design_effect_from_se(se_robust: float, se_model: float) -> float:
    """Design effect estimated as ``(se_robust / se_model) ** 2``.

    ``se_robust`` is the cluster-robust standard error of the treatment coefficient, and
    ``se_model`` the model-based one from the same fit. With fewer than about 20-40 clusters the
    robust SE, and hence this ratio, is itself very imprecise.
    """
    if not (se_robust > 0 and se_model > 0):
        raise ValueError("standard errors must be positive")
    return float((se_robust / se_model) ** 2)


def nb_log_rate_ratio_variance(
    n_treated: float,
    n_control: float,
    rate_control: float,
    rate_ratio: float,
    person_years_treated: float,
    person_years_control: float | None = None,
    *,
    theta: float = math.inf,
) -> float:
    """Variance of the log rate ratio of two negative binomial arms (Zhu & Lakkis 2014).

    ``(1/n1) (1/(rate0 RR t1) + 1/theta) + (1/n0) (1/(rate0 t0) + 1/theta)``, evaluated at the
    alternative ``RR``.

    Parameters
    ----------
    n_treated, n_control : float
        People (person-indexes) per arm.
    rate_control : float
        Events per person-year without the programme (the comparators' rate).
    rate_ratio : float
        The alternative.
    person_years_treated, person_years_control : float
        Mean person-years per person in each arm (``t1``, ``t0``; ``t0`` defaults to ``t1``).
    theta : float, default inf
        Negative binomial shape (R's ``theta``; variance ``mu + mu**2/theta``); ``inf`` is
        Poisson.

    Returns
    -------
    float
    """
    t0 = person_years_treated if person_years_control is None else person_years_control
    for name, value in [("n_treated", n_treated), ("n_control", n_control),
                        ("rate_control", rate_control), ("rate_ratio", rate_ratio),
                        ("person_years_treated", person_years_treated),
                        ("person_years_control", t0), ("theta", theta)]:
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    inv_theta = 0.0 if math.isinf(theta) else 1.0 / theta
    return ((1.0 / (rate_control * rate_ratio * person_years_treated) + inv_theta) / n_treated
            + (1.0 / (rate_control * t0) + inv_theta) / n_control)


def _solve_mde(variance: Callable[[float], float], multiplier: float) -> tuple[float, float]:
    """The rate ratio ``RR < 1`` closest to 1 with ``-log RR = multiplier * sd(RR)``.

    ``variance(log_rr)`` is the variance of the log rate ratio (design effect included) at the
    alternative. Returns ``(rr, se)``; ``(nan, nan)`` when no reduction down to 1 % is
    detectable. The gap ``-b - multiplier * sd(b)`` is negative at ``b = 0`` and, because the
    treated arm's events vanish as ``b -> -inf``, negative again far out, so the MDE is the
    root between 0 and the gap's maximum.
    """
    def gap(b: float) -> float:
        return -b - multiplier * math.sqrt(variance(b))

    peak = optimize.minimize_scalar(lambda b: -gap(b), bounds=(_MIN_LOG_RR, 0.0),
                                    method="bounded", options={"xatol": 1e-10})
    b_peak = float(peak.x)
    if gap(b_peak) < 0:
        return math.nan, math.nan
    b = optimize.brentq(gap, b_peak, 0.0, xtol=1e-13, rtol=1e-13)
    return math.exp(b), math.sqrt(variance(b))


def power_from_se(rate_ratio: float, se_log_rr: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided Wald test of ``RR = 1`` when the log rate ratio has standard error
    ``se_log_rr`` (both tails): ``Phi(|log RR|/se - z) + Phi(-|log RR|/se - z)``."""
    _check_levels(alpha, 0.5)
    z = stats.norm.ppf(1 - alpha / 2)
    d = abs(math.log(rate_ratio)) / se_log_rr
    return float(stats.norm.cdf(d - z) + stats.norm.cdf(-d - z))


def power_rate_ratio(
    rate_ratio: float,
    n_treated: float,
    n_control: float,
    rate_control: float,
    person_years_treated: float,
    person_years_control: float | None = None,
    *,
    theta: float = math.inf,
    design_effect: float = 1.0,
    alpha: float = 0.05,
) -> float:
    """Power of the matched (two-arm) design to detect ``rate_ratio`` (arguments as
    :func:`mde_rate_ratio`)."""
    var = nb_log_rate_ratio_variance(n_treated, n_control, rate_control, rate_ratio,
                                     person_years_treated, person_years_control, theta=theta)
    return power_from_se(rate_ratio, math.sqrt(design_effect * var), alpha=alpha)


# --------------------------------------------------------------------------------------------
# the enrolled-patient matched design
# --------------------------------------------------------------------------------------------
def mde_rate_ratio(
    n_treated: float,
    n_control: float,
    rate_control: float,
    person_years_treated: float,
    person_years_control: float | None = None,
    *,
    theta: float = math.inf,
    design_effect: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.80,
) -> MDEResult:
    """Minimum detectable rate ratio of two negative binomial arms (closed form inputs).

    Solves ``-log RR = (z_{1-alpha/2} + z_power) sqrt(DEFF Var(log RR_hat | RR))`` with the
    variance of :func:`nb_log_rate_ratio_variance` (Zhu & Lakkis 2014).

    Parameters
    ----------
    n_treated, n_control : float
        Enrolled and comparator person-indexes (ratio ``k = n_control / n_treated``).
    rate_control : float
        Emergency admissions per person-year among comparators.
    person_years_treated, person_years_control : float
        Mean follow-up (person-years) per person in each arm.
    theta : float, default inf
        Negative binomial shape; ``inf`` for Poisson counts.
    design_effect : float, default 1
        Variance inflation for clustering (:func:`design_effect`,
        :func:`design_effect_from_se`).
    alpha, power : float

    Returns
    -------
    MDEResult
    """
    if not design_effect >= 1 - 1e-12:
        log.warning("design effect %.3f is below 1 (clustering that reduces the variance)",
                    design_effect)
    mult = _multiplier(alpha, power)

    def variance(b: float) -> float:
        return design_effect * nb_log_rate_ratio_variance(
            n_treated, n_control, rate_control, math.exp(b), person_years_treated,
            person_years_control, theta=theta)

    rr, se = _solve_mde(variance, mult)
    t0 = person_years_treated if person_years_control is None else person_years_control
    inputs = {"n_treated": n_treated, "n_control": n_control, "rate_control": rate_control,
              "person_years_treated": person_years_treated, "person_years_control": t0,
              "theta": theta}
    return MDEResult("ATT enrolled (matched)", rr, alpha, power, se, design_effect, inputs,
                     "negative binomial rate ratio, Wald test; variance of Zhu & Lakkis (2014) "
                     "at the alternative, times the design effect")


def _nb_fit_comparators(frame: pd.DataFrame, count_col: str, person_time_col: str,
                        covariates: list[str]) -> tuple[np.ndarray, float, str | None]:
    """Comparator-only outcome model: linear predictor (with offset) for every row, and theta.

    Returns ``(mu, theta, note)``: ``mu`` the expected untreated count of every row (enrolled
    included, as their counterfactual), ``theta = inf`` if the counts are not overdispersed.
    """
    from ..survival import NegativeBinomialRateModel
    from ..survival.rates import DispersionError, PoissonRateModel

    comparators = frame[frame["_treated"] == 0]
    data = comparators[[count_col, person_time_col, *covariates]].astype(float)
    note = None
    try:
        fit = NegativeBinomialRateModel().fit(data, count_col, person_time_col,
                                              covariates=covariates)
        theta = fit.theta
    except DispersionError as exc:
        fit = PoissonRateModel().fit(data, count_col, person_time_col, covariates=covariates)
        theta = math.inf
        note = f"comparators' counts: {exc.reason}; Poisson variance used"
    X = np.column_stack([np.ones(len(frame)), frame[covariates].to_numpy(dtype=float)])
    eta = X @ fit.params.to_numpy() + np.log(frame[person_time_col].to_numpy(dtype=float))
    return np.exp(eta), theta, note


def mde_from_frame(
    frame: pd.DataFrame,
    *,
    adjust: Sequence[str] | None = None,
    treated_col: str = "treated",
    count_col: str = "emergency_admissions",
    person_time_col: str = "person_years",
    theta: float | None = None,
    design_effect: float = 1.0,
    unit_col: str | None = None,
    between_unit_cv: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.80,
) -> MDEResult:
    """Minimum detectable rate ratio of the matched design, from the matched frame.

    The design is the one analysed: every row's covariates and person-time, the arms as
    matched. The outcome model is fitted to the **comparators only** (negative binomial,
    ``count ~ adjust + offset(log person-time)``), so the enrolled's outcomes, and hence the
    estimate, are never used. Each row's expected untreated count ``mu_i`` comes from that model;
    under the alternative ``RR`` the enrolled's is ``RR mu_i``. The variance of the treatment
    coefficient of the analysis model (intercept, treatment, ``adjust``) is the inverse expected
    information ``[(X' W X)^-1]_treated`` with the NB2 weights ``W_i = m_i / (1 + m_i / theta)``
    (Zhu & Lakkis 2014 generalised to unequal person-time and covariates; identical to
    :func:`nb_log_rate_ratio_variance` without covariates and with equal person-time).

    Clustering: the variance is multiplied by ``design_effect``, and a between-unit random
    effect with coefficient of variation ``between_unit_cv`` (``k``) on the rate of ``unit_col``
    (e.g. practice) adds ``k**2 sum_p (w1_p - w0_p)**2``, where ``w_g,p`` is unit ``p``'s share
    of arm ``g``'s information: a unit contributing to both arms (comparators before it adopts,
    enrolled after) cancels, one contributing to a single arm does not.

    Parameters
    ----------
    frame : DataFrame
        One row per matched person-index (``EvaluationResult.analysed``) with ``treated_col``,
        ``count_col``, ``person_time_col``, ``adjust`` and, if given, ``unit_col``.
    adjust : sequence of str, optional
        Baseline covariates of the analysis model (the pipeline's ``ADJUSTMENT``); constant
        columns are dropped, as the analysis does.
    theta : float, optional
        Negative binomial shape; by default estimated from the comparators (``inf`` when they
        are not overdispersed).
    design_effect : float, default 1
    unit_col : str, optional
    between_unit_cv : float, default 0
    alpha, power : float

    Returns
    -------
    MDEResult
    """
    adjust = [c for c in (adjust or []) if frame[c].nunique() > 1]
    data = frame.copy()
    data["_treated"] = data[treated_col].astype(int)
    n1, n0 = int(data["_treated"].sum()), int((data["_treated"] == 0).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("both arms need at least one row")
    mu, theta_hat, note = _nb_fit_comparators(data, count_col, person_time_col, adjust)
    theta = theta_hat if theta is None else float(theta)
    inv_theta = 0.0 if math.isinf(theta) else 1.0 / theta
    t = data["_treated"].to_numpy()
    X = np.column_stack([np.ones(len(data)), t, data[adjust].to_numpy(dtype=float)])
    units = pd.factorize(data[unit_col])[0] if unit_col else None
    if units is not None and np.any(units < 0):
        raise ValueError(f"column '{unit_col}' has missing values")

    def variance(b: float) -> float:
        m = mu * np.exp(b * t)
        w = m / (1.0 + m * inv_theta)
        info = X.T @ (w[:, None] * X)
        var = float(np.linalg.solve(info, np.eye(info.shape[0])[:, 1])[1])
        if units is not None and between_unit_cv > 0:
            share1 = np.bincount(units, weights=w * t) / np.sum(w * t)
            share0 = np.bincount(units, weights=w * (1 - t)) / np.sum(w * (1 - t))
            var += between_unit_cv ** 2 * float(np.sum((share1 - share0) ** 2))
        return design_effect * var

    rr, se = _solve_mde(variance, _multiplier(alpha, power))
    comparators = data[data["_treated"] == 0]
    enrolled = data[data["_treated"] == 1]
    inputs = {"n_treated": n1, "n_control": n0,
              "rate_control": float(comparators[count_col].sum()
                                    / comparators[person_time_col].sum()),
              "person_years_treated": float(enrolled[person_time_col].mean()),
              "person_years_control": float(comparators[person_time_col].mean()),
              "theta": theta, "adjusted_for": ", ".join(adjust) or None,
              "unit": unit_col, "between_unit_cv": between_unit_cv if unit_col else None}
    return MDEResult("ATT enrolled (matched)", rr, alpha, power, se, design_effect, inputs,
                     "negative binomial rate ratio, Wald test; expected information of the "
                     "analysis model at the alternative, outcome model fitted to the "
                     "comparators only (Zhu & Lakkis 2014), times the design effect", note)


def design_effect_from_fit(
    frame: pd.DataFrame,
    cluster_col: str,
    *,
    adjust: Sequence[str] | None = None,
    treated_col: str = "treated",
    count_col: str = "emergency_admissions",
    person_time_col: str = "person_years",
) -> tuple[float, int]:
    """Design effect of clustering on ``cluster_col`` estimated from the analysis model.

    Fits the negative binomial rate model (treatment plus ``adjust``, log person-time offset)
    with model-based and with cluster-robust (HC1) standard errors and returns
    ``((se_robust / se_model)**2, n_clusters)`` for the treatment coefficient. It uses the
    variance structure of the outcome, not the estimate. Imprecise with few clusters: with fewer
    than about 20 prefer :func:`design_effect` with an ICC from comparable data.
    """
    from ..survival import NegativeBinomialRateModel

    covariates = [treated_col, *[c for c in (adjust or []) if frame[c].nunique() > 1]]
    data = frame[[count_col, person_time_col, cluster_col, *covariates]].copy()
    data[covariates] = data[covariates].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NegativeBinomialRateModel().fit(data.drop(columns=[cluster_col]), count_col,
                                                person_time_col, covariates=covariates)
        robust = NegativeBinomialRateModel().fit(data, count_col, person_time_col,
                                                 covariates=covariates, cluster_col=cluster_col)
    return (design_effect_from_se(float(robust.bse[treated_col]),
                                  float(model.bse[treated_col])), int(robust.n_clusters or 0))


# --------------------------------------------------------------------------------------------
# the population-level (ITT) design
# --------------------------------------------------------------------------------------------
def itt_log_rate_ratio_variance(
    n_treated_units: float,
    n_control_units: float,
    person_years_per_unit: float,
    baseline_rate: float,
    rate_ratio: float,
    between_unit_cv: float,
    *,
    theta: float = math.inf,
    person_years_per_person: float = 1.0,
    pre_person_years_per_unit: float | None = None,
    period_correlation: float = 0.0,
) -> float:
    """Variance of the log rate ratio of a cluster-level comparison (Hayes & Bennett 1999).

    Per unit, relative to the squared mean rate, an arm with rate ``r`` contributes
    ``(1 + r t_p / theta) / (r y) + k**2`` (post-period only) or
    ``(1 + r t_p / theta) / (r y) + (1 + r0 t_p / theta) / (r0 y_pre) + 2 k**2 (1 - rho)``
    (change from the pre-period, in which both arms have the baseline rate ``r0``); the arm's
    term is divided by its number of units.

    Parameters
    ----------
    n_treated_units, n_control_units : float
    person_years_per_unit : float
        ``y``: person-years of the eligible population per unit over the post period.
    baseline_rate : float
        ``r0``: events per person-year without the programme.
    rate_ratio : float
        The alternative (ITT scale).
    between_unit_cv : float
        ``k``: coefficient of variation of the units' true rates (``k**2`` is the
        between-unit variance of the rate over its squared mean, about the variance of the log
        rate).
    theta : float, default inf
        Person-level negative binomial shape (``inf``: Poisson within units).
    person_years_per_person : float, default 1
        ``t_p``, used only with a finite ``theta``.
    pre_person_years_per_unit : float, optional
        ``y_pre``: with it the comparison is of changes from the pre-period.
    period_correlation : float, default 0
        ``rho``: correlation of a unit's log rate between the pre and post periods.

    Returns
    -------
    float
    """
    for name, value in [("n_treated_units", n_treated_units),
                        ("n_control_units", n_control_units),
                        ("person_years_per_unit", person_years_per_unit),
                        ("baseline_rate", baseline_rate), ("rate_ratio", rate_ratio),
                        ("theta", theta), ("person_years_per_person", person_years_per_person)]:
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if between_unit_cv < 0:
        raise ValueError("between_unit_cv must be >= 0")
    if not -1 <= period_correlation <= 1:
        raise ValueError("period_correlation must be in [-1, 1]")
    inv_theta = 0.0 if math.isinf(theta) else 1.0 / theta

    def poisson_part(rate: float, y: float) -> float:
        return (1.0 + rate * person_years_per_person * inv_theta) / (rate * y)

    def arm(rate: float) -> float:
        if pre_person_years_per_unit is None:
            return poisson_part(rate, person_years_per_unit) + between_unit_cv ** 2
        return (poisson_part(rate, person_years_per_unit)
                + poisson_part(baseline_rate, pre_person_years_per_unit)
                + 2.0 * between_unit_cv ** 2 * (1.0 - period_correlation))

    return (arm(baseline_rate * rate_ratio) / n_treated_units
            + arm(baseline_rate) / n_control_units)


def estimate_between_unit_cv(events: Sequence[float], person_years: Sequence[float]) -> float:
    """Moment estimate of the between-unit coefficient of variation ``k`` of the true rates.

    From pre-roll-out events and person-years per unit (Hayes & Bennett 1999, section 4): the
    variance of the observed unit rates ``r_u`` minus its Poisson part, over the squared mean
    rate, ``k**2 = max(0, s**2 - mean(r_bar / y_u)) / r_bar**2`` with ``r_bar`` the mean of the
    unit rates and ``s**2`` their sample variance. Person-level overdispersion within units is
    absorbed into ``k``, which is then slightly conservative.

    Parameters
    ----------
    events, person_years : sequence of float
        One value per unit (at least 2 units).

    Returns
    -------
    float
    """
    e = np.asarray(events, dtype=float)
    y = np.asarray(person_years, dtype=float)
    if e.shape != y.shape or e.size < 2:
        raise ValueError("events and person_years need one value per unit, at least 2 units")
    if np.any(y <= 0) or np.any(e < 0):
        raise ValueError("person-years must be positive and events non-negative")
    rates = e / y
    r_bar = float(rates.mean())
    if r_bar <= 0:
        raise ValueError("no events: the between-unit variation cannot be estimated")
    k2 = (float(rates.var(ddof=1)) - float(np.mean(r_bar / y))) / r_bar ** 2
    return math.sqrt(max(k2, 0.0))


def mde_itt_panel(
    n_treated_units: int,
    n_control_units: int,
    person_years_per_unit: float,
    baseline_rate: float,
    between_unit_cv: float,
    *,
    theta: float = math.inf,
    person_years_per_person: float = 1.0,
    pre_person_years_per_unit: float | None = None,
    period_correlation: float = 0.0,
    enrolled_share: float | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    small_sample: bool = True,
) -> MDEResult:
    """Minimum detectable ITT rate ratio of a population-level (units x months) design.

    Solves ``-log RR = (q_{1-alpha/2} + q_power) sqrt(Var(log RR_hat | RR))`` with the
    cluster-level variance of :func:`itt_log_rate_ratio_variance` (Hayes & Bennett 1999) and
    ``q`` the ``t`` quantiles on ``c1 + c0 - 2`` degrees of freedom (``small_sample``) or
    normal ones. A staggered roll-out is approximated by its treated units' post-adoption
    person-time and the comparison units' person-time over the same months.

    Parameters
    ----------
    n_treated_units, n_control_units : int
        Adopting and comparison units (practices or PCNs).
    person_years_per_unit : float
        Eligible population person-years per unit after adoption (e.g. ``persons x months / 12``).
    baseline_rate : float
        Emergency admissions per person-year in the eligible population.
    between_unit_cv : float
        Coefficient of variation ``k`` of the units' true rates (0.1-0.3 is common for
        practices).
    theta, person_years_per_person, pre_person_years_per_unit, period_correlation
        As :func:`itt_log_rate_ratio_variance`.
    enrolled_share : float, optional
        Share of the eligible population enrolled: the MDE is then also given on the enrolled
        scale (``1 - (1 - MDE_ITT) / share``, the effect among the enrolled that would produce
        it, assuming no effect on those not enrolled), in ``inputs["mde_enrolled_equivalent"]``.
    alpha, power : float
    small_sample : bool, default True

    Returns
    -------
    MDEResult
    """
    df = (n_treated_units + n_control_units - 2) if small_sample else None
    mult = _multiplier(alpha, power, df)

    def variance(b: float) -> float:
        return itt_log_rate_ratio_variance(
            n_treated_units, n_control_units, person_years_per_unit, baseline_rate,
            math.exp(b), between_unit_cv, theta=theta,
            person_years_per_person=person_years_per_person,
            pre_person_years_per_unit=pre_person_years_per_unit,
            period_correlation=period_correlation)

    rr, se = _solve_mde(variance, mult)
    inputs: dict[str, Any] = {
        "n_treated_units": n_treated_units, "n_control_units": n_control_units,
        "person_years_per_unit": person_years_per_unit, "baseline_rate": baseline_rate,
        "between_unit_cv": between_unit_cv, "theta": theta,
        "pre_person_years_per_unit": pre_person_years_per_unit,
        "period_correlation": period_correlation if pre_person_years_per_unit else None}
    if enrolled_share is not None:
        if not 0 < enrolled_share <= 1:
            raise ValueError("enrolled_share must be in (0, 1]")
        enrolled = 1.0 - (1.0 - rr) / enrolled_share
        inputs["enrolled_share"] = enrolled_share
        inputs["mde_enrolled_equivalent"] = enrolled if enrolled > 0 else math.nan
    return MDEResult("ITT population (units x months)", rr, alpha, power, se, 1.0, inputs,
                     "cluster-level comparison of log rates (Hayes & Bennett 1999), "
                     + ("t" if small_sample else "normal") + " quantiles")


def itt_to_enrolled(itt_rate_ratio: float, enrolled_share: float) -> float:
    """The rate ratio among the enrolled that an ITT rate ratio implies when a share
    ``enrolled_share`` of the population is enrolled and the rest are unaffected:
    ``1 - (1 - RR_ITT) / share`` (``NaN`` if it would be below 0)."""
    if not 0 < enrolled_share <= 1:
        raise ValueError("enrolled_share must be in (0, 1]")
    value = 1.0 - (1.0 - itt_rate_ratio) / enrolled_share
    return value if value > 0 else math.nan


# --------------------------------------------------------------------------------------------
# the sentence
# --------------------------------------------------------------------------------------------
def detectable_reduction_sentence(mde_rate_ratio: float, *, power: float = 0.80) -> str:
    """The words that must accompany "no evidence of a reduction".

    The reduction is rounded **up** (to a whole per cent, or a tenth below 1 %), so the sentence
    never claims more sensitivity than the design has, and the rate ratio shown is the rounded
    reduction's.

    Parameters
    ----------
    mde_rate_ratio : float
        The minimum detectable rate ratio (``MDEResult.mde_rate_ratio``); ``NaN`` when no
        reduction is reliably detectable.
    power : float, default 0.8
        The power the MDE was computed at ("reliably" means this probability).

    Returns
    -------
    str

    Examples
    --------
    >>> detectable_reduction_sentence(0.7612)
    'this evaluation could reliably detect a reduction of 24 % or more (a rate ratio of 0.76 or lower, with 80 % power)'
    """  # noqa: E501
    pct_power = f"{100 * power:.0f} %"
    if mde_rate_ratio is None or not np.isfinite(mde_rate_ratio) or mde_rate_ratio <= 0:
        return ("this evaluation was too small to reliably detect any reduction, however large "
                f"(less than {pct_power} power even for a 99 % reduction)")
    if mde_rate_ratio >= 1:
        raise ValueError("a minimum detectable rate ratio is below 1")
    reduction = 100.0 * (1.0 - mde_rate_ratio)
    step = 1.0 if reduction >= 1 else 0.1
    shown = math.ceil(round(reduction / step, 9)) * step
    text = f"{shown:.0f}" if step == 1.0 else f"{shown:.1f}"
    return (f"this evaluation could reliably detect a reduction of {text} % or more "
            f"(a rate ratio of {1 - shown / 100:.{2 if step == 1.0 else 3}f} or lower, "
            f"with {pct_power} power)")
