"""Plasmode simulation of the population-level (ITT) design on the run's own unit-month panel.

The matched design's plasmode (:mod:`~phm_eval.evaluate.plasmode`) re-draws which member of each
matched set is enrolled. The population design's unit of assignment is the adopting unit, so
here each replicate

1. **neutralises** whatever effect the panel holds by re-drawing *which units adopt when*: the
   units' adoption months (never-adopters included, as month 0) are permuted at random over the
   units, or over the PCNs when the roll-out is by PCN and the panel's units are practices (so
   the practices of a PCN keep adopting together). The number of units in each adoption wave
   and the share never adopting stay as they are; every unit keeps its own rates, person-time,
   weight and cluster. Units that really adopted (and carry any real effect after their real
   adoption) are spread at random over placebo waves and placebo never-adopters, so the placebo
   contrast is null in expectation, as in the matched design's re-draw (Bertrand, Duflo &
   Mullainathan 2004 and Burlig, Preonas & Woerman 2020 assign placebo policies to units in the
   same way to measure a panel design's size and power);
2. **injects** a known rate ratio by thinning: every emergency admission of the eligible
   population in a placebo-adopting unit, in a month on or after its placebo adoption month, is
   kept with probability equal to the target rate ratio (binomial thinning of the unit-month
   counts, which multiplies a Poisson intensity by the target, as the programme would);
3. **refits the same estimator** (:class:`~phm_eval.evaluate.population.PopulationITT` with the
   run's settings; Honest DiD, which does not enter the rate ratio, is skipped).

The target is the rate ratio of the placebo-adopting units' eligible population after adoption
relative to the same cells without thinning, i.e. the ITT rate ratio the design estimates. The
summary (bias of the log rate ratio, coverage, power, rejection rate, each with Monte Carlo
standard errors) is :class:`~phm_eval.evaluate.plasmode.PlasmodeResult`'s. The same permutation
and the same uniform draw per admission are used for every target (common random numbers).

What it does not measure: bias from trends that differ between units that really adopted and
units that did not (the permutation makes adoption random), and the variability of which
people are eligible (the panel is fixed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from .. import DEFAULT_SEED
from ..errors import EstimationError, InputError
from .estimands import DesignCheck, design_check_targets
from .plasmode import PlasmodeResult, admission_counts, checked_targets, run_replicates
from .population import PopulationITT
from .population_panel import PopulationPanel

log = logging.getLogger(__name__)

METHOD = ("plasmode simulation: adoption months permuted at random over the adopting units (or "
          "PCNs), known rate ratios injected by thinning the eligible population's emergency "
          "admissions in placebo-adopting units from their placebo adoption month, the "
          "population difference in differences refitted")


def population_plasmode(
    panel: PopulationPanel | pd.DataFrame,
    rate_ratios: float | Sequence[float] = (1.0, 0.93),
    *,
    n_replicates: int = 200,
    seed: int = DEFAULT_SEED,
    estimator: PopulationITT | None = None,
) -> PlasmodeResult:
    """Plasmode power of the population-level design (see the module notes).

    Parameters
    ----------
    panel : PopulationPanel or pandas.DataFrame
        The unit-month panel the ITT analysis used: ``unit``, ``t``, ``admissions``,
        ``person_months``, ``g`` (adoption month as a value of ``t``, 0 never), ``weight`` and
        optionally ``cluster``.
    rate_ratios : float or sequence of float
        Target ITT rate ratios, each in ``(0, 1]``. Include 1 for the size of the test.
    n_replicates : int, default 200
        Replicates per target.
    seed : int
    estimator : PopulationITT, optional
        The run's estimator (its control group, base months, event window, alpha); default
        ``PopulationITT(honest_m=())``. Honest DiD is never run inside the replicates.

    Returns
    -------
    PlasmodeResult
        ``n_treated`` and ``n_control`` count units adopting and never adopting; ``n_sets``
        counts the blocks permuted (units, or PCNs).

    Raises
    ------
    ConfigError
        For a target outside ``(0, 1]`` or fewer than two replicates.
    InputError
        When the panel lacks a column or its adoption month is not constant within a unit.
    EstimationError
        When no unit adopts, or all adopt in the same month (nothing to re-draw).
    """
    df = (panel.panel if isinstance(panel, PopulationPanel) else panel).copy()
    targets = checked_targets(rate_ratios, n_replicates)
    missing = sorted({"unit", "t", "admissions", "person_months", "g", "weight"}
                     - set(df.columns))
    if missing:
        raise InputError("population panel", f"columns {missing} not found")
    if "cluster" not in df.columns:
        df["cluster"] = df["unit"]
    df = df.sort_values(["unit", "t"], kind="stable").reset_index(drop=True)
    per_unit = df.groupby("unit", sort=True)["g"].nunique()
    if (per_unit > 1).any():
        raise InputError("population panel", "the adoption month g must be constant within a "
                         "unit", column="g", rows=list(per_unit.index[per_unit > 1][:5]))
    units = df.groupby("unit", sort=True)[["g", "cluster"]].first()
    if not (units["g"] > 0).any() or units["g"].nunique() < 2:
        raise EstimationError("a plasmode of the roll-out needs units that adopt at different "
                              "times (or never): re-drawing who adopts when changes nothing "
                              "when every unit adopts in the same month")
    # Permute over PCNs when every PCN's units adopt together (and there are several PCNs),
    # else over units.
    by_cluster = units.groupby("cluster")["g"].nunique()
    blocks_are_clusters = bool((by_cluster == 1).all() and len(by_cluster) > 1
                               and len(by_cluster) < len(units))
    block_of_unit = (pd.factorize(units["cluster"])[0] if blocks_are_clusters
                     else np.arange(len(units)))
    n_blocks = int(block_of_unit.max()) + 1
    block_g = np.zeros(n_blocks, dtype=np.int64)
    block_g[block_of_unit] = units["g"].to_numpy(dtype=np.int64)

    unit_index = pd.Index(units.index).get_indexer(df["unit"])
    t = df["t"].to_numpy(dtype=np.int64)
    counts = admission_counts(df["admissions"], table="population panel", what="admissions")
    estimator = estimator or PopulationITT(honest_m=())

    def permute(rng: np.random.Generator, work: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        placebo_g = rng.permutation(block_g)[block_of_unit][unit_index]
        work["g"] = placebo_g
        return (placebo_g > 0).astype(int), (placebo_g > 0) & (t >= placebo_g)

    replicates = run_replicates(df, counts, permute, _refit(_without_honest(estimator), seed),
                                targets=targets, n_replicates=n_replicates, seed=seed,
                                count_col="admissions", alpha=estimator.alpha,
                                label="population plasmode")
    n_adopting = int((units["g"] > 0).sum())
    baseline = ("adoption months permuted at random over the "
                + ("PCNs" if blocks_are_clusters else "adopting units")
                + " (null in expectation), then the eligible population's emergency "
                  "admissions in placebo-adopting units thinned to the target from adoption")
    return PlasmodeResult(replicates, n_adopting, int(len(units) - n_adopting), n_blocks,
                          int(seed), estimator.alpha, baseline,
                          extra={"method": METHOD, "estimand": "ITT population",
                                 "permuted": "PCNs" if blocks_are_clusters else "units"})


def _without_honest(estimator: PopulationITT) -> PopulationITT:
    """A copy of the run's estimator that skips Honest DiD (it does not enter the rate ratio)."""
    return PopulationITT(control_group=estimator.control_group,
                         base_months=estimator.base_months, min_e=estimator.min_e,
                         max_e=estimator.max_e, honest_max_e=estimator.honest_max_e,
                         honest_m=(), alpha=estimator.alpha,
                         small_sample=estimator.small_sample)


def _refit(estimator: PopulationITT, seed: int):
    """The population estimator as the matched plasmode's replicate runner expects it: a
    function of the panel returning the rate-ratio record's estimate, interval, fallback and
    the SE of its log (the interval is a t interval, so not its width over 2 z)."""
    def fit(work: pd.DataFrame) -> SimpleNamespace:
        result = estimator.fit(work, seed=seed)
        record = result.records[0]
        est, lo, hi = (math.nan if record[k] is None else float(record[k])
                       for k in ("estimate", "ci_low", "ci_high"))
        return SimpleNamespace(estimate=est, ci_low=lo, ci_high=hi,
                               fallback=record.get("fallback"),
                               se_log=float(result.details["se_log_rr"]))
    return fit


@dataclass(frozen=True, repr=False)
class PopulationDesignCheck(DesignCheck):
    """Plasmode power of the population-level design on a run's own panel (as
    :class:`~phm_eval.evaluate.estimands.DesignCheck` for the matched design)."""

    permuted: str = "units"

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"method": METHOD, "estimand": "ITT population",
                                    "permuted": self.permuted}


def population_design_check(
    panel: PopulationPanel | pd.DataFrame,
    *,
    n_replicates: int = 200,
    seed: int = DEFAULT_SEED,
    true_rate_ratio: float | None = None,
    mde_rate_ratio: float | None = None,
    estimator: PopulationITT | None = None,
) -> PopulationDesignCheck:
    """Plasmode power of the population-level design at no effect, at the synthetic truth
    (real data: a 10 % reduction) and at the design's analytic minimum detectable effect.

    Parameters
    ----------
    panel : PopulationPanel or pandas.DataFrame
        The unit-month panel of the ITT analysis.
    n_replicates : int
        Re-analyses per injected rate ratio.
    seed : int
    true_rate_ratio : float, optional
        The ITT rate ratio the synthetic generator implies.
    mde_rate_ratio : float, optional
        The analytic minimum detectable ITT rate ratio, injected as well.
    estimator : PopulationITT, optional
        The run's estimator (its comparison group); Honest DiD is skipped.
    """
    usable = (mde_rate_ratio is not None and np.isfinite(mde_rate_ratio)
              and 0 < mde_rate_ratio < 1)
    targets = design_check_targets(true_rate_ratio, assumed=0.9,
                                   mde_rate_ratio=mde_rate_ratio if usable else None)
    result = population_plasmode(panel, targets, n_replicates=n_replicates, seed=seed,
                                 estimator=estimator)
    return PopulationDesignCheck(targets=result.summary, n_replicates=n_replicates,
                                 true_rate_ratio=true_rate_ratio,
                                 mde_rate_ratio=(None if mde_rate_ratio is None
                                                 else float(mde_rate_ratio)),
                                 permuted=result.extra["permuted"])
