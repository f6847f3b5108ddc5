"""The two estimands of an evaluation, the pre-specified primary one, and their power.

* ``ATT enrolled``: the effect on the patients who were enrolled, from the matched comparison
  (:func:`phm_eval.evaluate.pipeline.evaluate_programme`);
* ``ITT population``: the effect on everyone the programme was meant for, in the adopting
  units, from the staggered difference-in-differences across units
  (:func:`phm_eval.evaluate.population.population_itt`).

Every record of ``effects.json`` carries its ``estimand``; exactly one carries
``primary: true`` (the emergency-admission rate ratio of the estimand the configuration names),
and the rate-ratio records of both designs carry the design's minimum detectable effect
(``mde_rate_ratio`` and ``mde_sentence``), so that "no evidence" is never printed without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from phm_eval import DEFAULT_SEED
from phm_eval.convention import ResultConvention

from ..errors import ConfigError
from .power import MDEResult, design_effect_from_fit, mde_from_frame

log = logging.getLogger(__name__)

ATT_ENROLLED = "ATT enrolled"
ITT_POPULATION = "ITT population"
UNCONTROLLED = "before/after among the enrolled (uncontrolled)"
#: Configuration value of ``evaluate.primary`` -> estimand.
PRIMARY_CHOICES = {"att_enrolled": ATT_ENROLLED, "itt_population": ITT_POPULATION}
HEADLINE_OUTCOME = "emergency admissions"


def _is_headline(record: Mapping[str, Any]) -> bool:
    return (record.get("outcome") == HEADLINE_OUTCOME and record.get("scale") == "RR"
            and not record.get("subgroup"))


def label_enrolled_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The matched design's records with their estimand (the naive before/after is none)."""
    out = []
    for record in records:
        record = dict(record)
        naive = "naive" in str(record.get("method", "")).lower()
        record.setdefault("estimand", UNCONTROLLED if naive else ATT_ENROLLED)
        out.append(record)
    return out


def choose_primary(records: list[dict[str, Any]], primary: str) -> list[dict[str, Any]]:
    """Mark the pre-specified primary record: the overall emergency-admission rate ratio of
    the configured estimand (``att_enrolled`` or ``itt_population``).

    The record is marked even when it could not be estimated (its note says why): the primary
    analysis is fixed before the data are seen and is never swapped for the other.
    """
    if primary not in PRIMARY_CHOICES:
        raise ConfigError(f"evaluate.primary must be one of {sorted(PRIMARY_CHOICES)}, "
                          f"got {primary!r}")
    wanted = PRIMARY_CHOICES[primary]
    found = False
    for record in records:
        is_primary = (not found and record.get("estimand") == wanted and _is_headline(record))
        record["primary"] = bool(is_primary)
        found = found or is_primary
    if not found:
        records.append({"outcome": HEADLINE_OUTCOME, "method": f"{wanted}: not run",
                        "estimand": wanted, "estimate": None, "ci_low": None, "ci_high": None,
                        "scale": "RR", "primary": True, "fallback": None,
                        "note": f"not estimable: the {wanted} analysis produced no estimate"})
    return records


def attach_mde(records: list[dict[str, Any]], estimand: str, mde: MDEResult | None,
               *,
               reason: str | None = None) -> None:
    """Put a design's minimum detectable effect on its overall rate-ratio records."""
    for record in records:
        if record.get("estimand") != estimand or not _is_headline(record):
            continue
        if mde is None or not np.isfinite(mde.mde_rate_ratio):
            record["mde_rate_ratio"] = None
            record["mde_sentence"] = (mde.sentence() if mde is not None else None)
            record["mde_note"] = reason or "the design's power could not be assessed"
        else:
            record["mde_rate_ratio"] = float(mde.mde_rate_ratio)
            record["mde_sentence"] = mde.sentence()


def enrolled_mde(analysed: pd.DataFrame, adjust: list[str],
                 *,
                 cluster_col: str = "patient_id") -> tuple[MDEResult | None, str | None]:
    """The analytic minimum detectable rate ratio of the matched design on its own data, with
    the design effect of the clustering the headline uses (never below 1).

    Returns ``(mde, None)``, or ``(None, reason)`` when it cannot be computed.
    """
    try:
        cluster = cluster_col if cluster_col in analysed.columns else "patient_id"
        deff, _ = design_effect_from_fit(analysed, cluster, adjust=adjust)
        deff = max(float(deff), 1.0) if np.isfinite(deff) else 1.0
        return mde_from_frame(analysed, adjust=adjust, design_effect=deff), None
    except Exception as exc:  # noqa: BLE001 - power is reported, never allowed to stop the run
        log.warning("minimum detectable effect of the matched design not computed: %s", exc)
        return None, f"not computed: {exc}"


def _period_correlation(pre: pd.DataFrame, cv: float) -> float:
    """How much of a unit's rate persists from one period to the next: the covariance of the
    units' rates in the two halves of the pre-roll-out months (Poisson noise is independent
    between the halves, so it estimates the covariance of the true rates) over the between-unit
    variance of the true rates. Clipped to [0, 0.95]; 0 (no persistence, conservative) when
    it cannot be estimated."""
    months = np.sort(pre["t"].unique())
    if len(months) < 4 or cv <= 0:
        return 0.0
    half = months[len(months) // 2]
    rates = []
    for part in (pre[pre["t"] < half], pre[pre["t"] >= half]):
        sums = part.groupby("unit")[["admissions", "person_months"]].sum()
        rates.append(sums["admissions"] / sums["person_months"])
    first, second = rates[0].align(rates[1], join="inner")
    if len(first) < 3:
        return 0.0
    mean = float(pd.concat([first, second]).mean())
    covariance = float(np.cov(first.to_numpy(float), second.to_numpy(float))[0, 1])
    signal = (cv * mean) ** 2
    return float(np.clip(covariance / signal, 0.0, 0.95)) if signal > 0 else 0.0


def population_mde(itt: Any) -> tuple[MDEResult | None, str | None]:
    """The analytic minimum detectable rate ratio of the population-level design, from its own
    unit-month panel: adopting and comparison units, eligible person-years per unit after
    roll-out, the pre-roll-out rate, the between-unit variation of pre-roll-out rates
    (Hayes & Bennett 1999) and how much of it persists over time (which the comparison with
    the unit's own pre-roll-out rate removes; :func:`_period_correlation`).

    Returns ``(mde, None)``, or ``(None, reason)`` when it cannot be computed.
    """
    from .power import estimate_between_unit_cv, mde_itt_panel

    try:
        source = itt.panel
        if source is None:
            return None, "not computed: the panel is not available"
        panel = source.panel
        first = panel.loc[panel["g"] > 0, "g"].min()
        pre = panel[panel["t"] < first]
        post = panel[panel["t"] >= first]
        by_unit_pre = pre.groupby("unit")[["admissions", "person_months"]].sum()
        treated = panel.loc[panel["g"] > 0, "unit"].nunique()
        control = panel.loc[panel["g"] == 0, "unit"].nunique()
        if treated < 1 or control < 1 or len(by_unit_pre) < 2:
            return None, "not computed: too few adopting or comparison units"
        pre_py = by_unit_pre["person_months"] / 12.0
        cv = estimate_between_unit_cv(by_unit_pre["admissions"].to_numpy(float),
                                      pre_py.to_numpy(float))
        post_py = post.groupby("unit")["person_months"].sum().mean() / 12.0
        rate = float(by_unit_pre["admissions"].sum() / pre_py.sum())
        rho = _period_correlation(pre, cv)
        mde = mde_itt_panel(int(treated), int(control), person_years_per_unit=float(post_py),
                            baseline_rate=rate, between_unit_cv=float(cv),
                            pre_person_years_per_unit=float(pre_py.mean()),
                            period_correlation=rho)
        return mde, None
    except Exception as exc:  # noqa: BLE001 - power is reported, never allowed to stop the run
        log.warning("minimum detectable effect of the population design not computed: %s", exc)
        return None, f"not computed: {exc}"


@dataclass(frozen=True, repr=False)
class DesignCheck(ResultConvention):
    """Plasmode power of the matched design on a run's own data (see :func:`design_check_report`;
    read-only).

    Attributes
    ----------
    targets : pandas.DataFrame
        One row per injected rate ratio: ``target_rate_ratio``, ``power`` (interval wholly
        below 1), ``coverage``, ``bias_log`` and their Monte Carlo standard errors; also
        ``summary`` (a DataFrame property, as every result's).
    n_replicates : int
    true_rate_ratio : float or None
        The synthetic truth when known (real data: None).
    mde_rate_ratio : float or None
        The analytic minimum detectable rate ratio also injected.
    """

    targets: pd.DataFrame
    n_replicates: int
    true_rate_ratio: float | None
    mde_rate_ratio: float | None

    def _summary_table(self) -> pd.DataFrame:
        return self.targets.copy()

    def _repr_fields(self) -> dict[str, Any]:
        return {"targets": [float(t) for t in self.targets.get("target_rate_ratio", [])],
                "n_replicates": self.n_replicates, "true_rate_ratio": self.true_rate_ratio}

    def to_dict(self) -> dict[str, Any]:
        keep = ["target_rate_ratio", "n_replicates", "n_failed", "mean_estimate", "bias_log",
                "bias_log_mcse", "coverage", "coverage_mcse", "power", "power_mcse", "se_ratio"]
        targets = self.summary[[c for c in keep if c in self.summary.columns]]
        return {"method": "plasmode simulation: arms re-drawn within matched sets, known rate "
                          "ratios injected by thinning the enrolled arm's admissions after the "
                          "index date, the headline model refitted (matching reused)",
                "n_replicates": self.n_replicates, "true_rate_ratio": self.true_rate_ratio,
                "mde_rate_ratio": self.mde_rate_ratio,
                "targets": targets.rename(columns={"target_rate_ratio": "rate_ratio",
                                                   "power_mcse": "mc_se_power"})
                .to_dict(orient="records")}


def design_check_targets(true_rate_ratio: float | None, *, assumed: float,
                         mde_rate_ratio: float | None) -> tuple[float, ...]:
    """The rate ratios a design check injects: no effect, the synthetic truth (real data: the
    ``assumed`` reduction) and the design's minimum detectable effect, rounded to 3 decimals,
    unless it is one of the others."""
    targets = [1.0, float(true_rate_ratio) if true_rate_ratio else assumed]
    if (mde_rate_ratio is not None
            and round(mde_rate_ratio, 3) not in [round(t, 3) for t in targets]):
        targets.append(round(float(mde_rate_ratio), 3))
    return tuple(targets)


def design_check_report(analysed: pd.DataFrame, *, n_replicates: int = 200,
                        seed: int = DEFAULT_SEED,
                        true_rate_ratio: float | None = None) -> DesignCheck:
    """Plasmode power of the matched design at no effect, at the true (or a 15 %) reduction and
    at the analytic minimum detectable effect.

    Parameters
    ----------
    analysed : DataFrame
        The matched analysis frame (``EvaluationResult.analysed``: matched sets in
        ``subclass``, clusters in ``match_cluster``, outcomes and the adjustment columns).
    n_replicates : int
        Re-analyses per injected rate ratio.
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
    true_rate_ratio : float, optional
        The synthetic truth, injected as one of the targets.
    """
    from .pipeline import ADJUSTMENT, CLUSTER
    from .plasmode import headline_estimator, plasmode

    mde, _ = enrolled_mde(analysed, ADJUSTMENT, cluster_col=CLUSTER)
    mde_rr = (float(mde.mde_rate_ratio) if mde is not None and np.isfinite(mde.mde_rate_ratio)
              else None)
    targets = design_check_targets(true_rate_ratio, assumed=0.85, mde_rate_ratio=mde_rr)
    result = plasmode(analysed, targets, n_replicates=n_replicates, seed=seed,
                      estimator=headline_estimator(adjust=ADJUSTMENT, cluster=CLUSTER))
    return DesignCheck(targets=result.summary(), n_replicates=n_replicates,
                       true_rate_ratio=true_rate_ratio, mde_rate_ratio=mde_rr)
