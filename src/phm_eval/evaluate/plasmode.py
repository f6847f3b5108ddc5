"""Plasmode simulation of the matched design on the user's own data: bias, coverage and power.

A plasmode keeps a real data set's covariates, person-time and outcome distribution and plants
a known effect in it (Franklin et al. 2014; Vaughan et al. 2009). Here the data are the matched
frame the evaluation analysed (``EvaluationResult.analysed``: one row per matched person-index
with its matched set, ``subclass``, and its emergency admissions and person-years after the
index date). Each replicate

1. **neutralises** whatever true effect the data hold by re-drawing, within every matched set,
   which member is "enrolled" (uniformly at random; for 1:k sets one of the k + 1 members).
   Members of a set were matched on the propensity score and exactly on index month,
   recent-admission band and frailty group, so the re-drawn arms keep the design's balance and
   shape, while any difference between the real arms (the programme's effect, or residual
   confounding) is spread evenly over both. The re-drawn contrast is therefore null by
   construction, and its spread over replicates is the randomisation distribution of the
   matched-pair design, which is the sampling variability the analysis' standard error has to
   describe;
2. **injects** a known rate ratio by thinning: each post-index emergency admission of the
   (re-drawn) enrolled is kept with probability equal to the target rate ratio, independently
   (seeded). Thinning a Poisson process with probability ``p`` multiplies its intensity by
   ``p``, also given any unobserved frailty, which is exactly how a programme that multiplies
   the admission rate acts (and how the synthetic generator plants its effect). Each admission
   is thinned on its own; the count of the kept ones is what the rate model sees;
3. **refits only the outcome model** of the headline (by default the negative binomial rate
   ratio, adjusted and clustered as in the pipeline; any ``estimator`` can be passed). The
   matched sets do not depend on post-index outcomes, so the matching is never redone.

Over ``R`` replicates per target it reports bias (on the log scale), the empirical and the
average model standard error, coverage of the 95 % interval, power (interval entirely below 1)
and the two-sided rejection rate, each with its Monte Carlo standard error (Morris, White &
Crowther 2019). The same re-drawn arms and the same uniform draw per admission are used for
every target (common random numbers), so differences between targets are not Monte Carlo noise.

Why not the observed data as the baseline? Thinning the real enrolled plants the effect on top
of the unknown true effect (the target would be ``RR_true x RR_injected``), and with the real
arms fixed the only replicate-to-replicate variation would be the thinning itself, far smaller
than the sampling variation, so coverage and power would be meaningless. Thinning the
comparators instead by the estimated effect would neutralise only in expectation of a noisy
estimate, with the same variance problem. Re-drawing the arms within matched sets solves both.

What a plasmode does not measure: confounding the matching leaves (the re-drawn arms are
exchangeable by construction), and variability from re-matching a different sample.

References
----------
Franklin JM, Schneeweiss S, Polinski JM, Rassen JA (2014). Plasmode simulation for the
evaluation of pharmacoepidemiologic methods in complex healthcare databases. *Computational
Statistics & Data Analysis* 72:219-226.
Vaughan LK, Divers J, Padilla MA et al. (2009). The use of plasmodes as a supplement to
simulations. *Computational Statistics & Data Analysis* 53:1755-1766.
Morris TP, White IR, Crowther MJ (2019). Using simulation studies to evaluate statistical
methods. *Statistics in Medicine* 38:2074-2102.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phm_eval import DEFAULT_SEED
from phm_eval.convention import ResultConvention

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: the columns of ``PlasmodeResult.replicates``
REPLICATE_COLUMNS = ["target_rate_ratio", "replicate", "estimate", "ci_low", "ci_high",
                     "log_estimate", "se_log", "covered", "significant_reduction", "rejected",
                     "events_treated", "events_control", "fallback", "note"]


@dataclass(frozen=True, repr=False)
class PlasmodeResult(ResultConvention):
    """Replicates of a plasmode simulation and their summary (read-only).

    Attributes
    ----------
    replicates : DataFrame
        One row per target and replicate (:data:`REPLICATE_COLUMNS`); a replicate whose
        estimate could not be made has ``NaN`` estimate and the reason in ``note``.
    n_treated, n_control : int
        Rows per arm in every replicate.
    n_sets : int
        Matched sets re-drawn.
    seed : int
    alpha : float
        One minus the confidence level of the estimator's interval (for the labels only; the
        interval is the estimator's).
    baseline : str
        How the null baseline was made, in words.
    """

    replicates: pd.DataFrame
    n_treated: int
    n_control: int
    n_sets: int
    seed: int
    alpha: float = 0.05
    baseline: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        targets = self.replicates["target_rate_ratio"].drop_duplicates().tolist()
        return {"targets": [float(t) for t in targets],
                "replicates": len(self.replicates), "seed": self.seed}

    def _summary_table(self) -> pd.DataFrame:
        """One row per target rate ratio.

        Columns: ``target_rate_ratio``, ``n_replicates`` (estimable), ``n_failed``,
        ``mean_estimate`` (geometric mean of the rate ratios), ``bias_log`` (mean log estimate
        minus log target) and ``bias_log_mcse``, ``relative_bias`` (``exp(bias_log) - 1``),
        ``empirical_se_log`` (SD of the log estimates) and its MCSE, ``model_se_log`` (mean
        model SE), ``se_ratio`` (model / empirical), ``coverage`` and ``coverage_mcse``,
        ``power`` (upper limit below 1) and ``power_mcse``, ``rejection_rate`` (interval
        excludes 1, either side) and its MCSE.
        """
        rows = []
        for target, sub in self.replicates.groupby("target_rate_ratio", sort=False):
            ok = sub[np.isfinite(sub["log_estimate"].astype(float))]
            r = len(ok)
            est = ok["log_estimate"].to_numpy(dtype=float)
            emp = float(np.std(est, ddof=1)) if r > 1 else math.nan
            bias = float(np.mean(est) - math.log(target)) if r else math.nan

            def share(col: str, ok: pd.DataFrame = ok) -> tuple[float, float]:
                if not len(ok):
                    return math.nan, math.nan
                p = float(ok[col].astype(float).mean())
                return p, math.sqrt(p * (1 - p) / len(ok))

            cov, cov_se = share("covered")
            pw, pw_se = share("significant_reduction")
            rej, rej_se = share("rejected")
            model_se = float(ok["se_log"].mean()) if r else math.nan
            rows.append({
                "target_rate_ratio": float(target), "n_replicates": r,
                "n_failed": int(len(sub) - r),
                "mean_estimate": float(np.exp(np.mean(est))) if r else math.nan,
                "bias_log": bias, "bias_log_mcse": emp / math.sqrt(r) if r > 1 else math.nan,
                "relative_bias": math.exp(bias) - 1 if r else math.nan,
                "empirical_se_log": emp,
                "empirical_se_log_mcse": emp / math.sqrt(2 * (r - 1)) if r > 1 else math.nan,
                "model_se_log": model_se,
                "se_ratio": model_se / emp if r > 1 and emp > 0 else math.nan,
                "coverage": cov, "coverage_mcse": cov_se,
                "power": pw, "power_mcse": pw_se,
                "rejection_rate": rej, "rejection_rate_mcse": rej_se,
            })
        return pd.DataFrame(rows)

    def power_at(self, rate_ratio: float) -> float:
        """Plasmode power at one of the targets."""
        table = self.summary().set_index("target_rate_ratio")
        if not np.isclose(table.index.to_numpy(dtype=float), rate_ratio).any():
            raise KeyError(f"{rate_ratio} is not one of the targets {list(table.index)}")
        i = int(np.argmin(np.abs(table.index.to_numpy(dtype=float) - rate_ratio)))
        return float(table["power"].iloc[i])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no patient-level data): the summary rows and the design sizes."""
        records = self.summary().to_dict(orient="records")
        clean = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                  for k, v in rec.items()} for rec in records]
        return {"method": "plasmode: arms re-drawn within matched sets, post-index emergency "
                          "admissions of the enrolled thinned to the target rate ratio, "
                          "outcome model refitted", "baseline": self.baseline,
                "n_treated": self.n_treated, "n_control": self.n_control,
                "n_sets": self.n_sets, "seed": self.seed, "summary": clean} | self.extra


# --------------------------------------------------------------------------------------------
def headline_estimator(
    *,
    adjust: Sequence[str] | None = None,
    count_col: str = "emergency_admissions",
    cluster: str = "patient_id",
) -> Callable[[pd.DataFrame], Any]:
    """The pipeline's headline estimator as a function of the frame: the negative binomial
    rate ratio of ``count_col`` (Poisson with robust SEs when not overdispersed), log
    person-time offset, adjusted for ``adjust`` (default: the pipeline's ``ADJUSTMENT``),
    SEs clustered on ``cluster``. Returns an :class:`~phm_eval.evaluate.effects.Effect`."""
    from . import effects as fx

    if adjust is None:
        from .pipeline import ADJUSTMENT
        adjust = ADJUSTMENT
    adjust = list(adjust)

    def estimate(frame: pd.DataFrame) -> Any:
        return fx.rate_ratio(frame, count_col, label="plasmode", adjust=adjust, cluster=cluster)

    return estimate


def _as_frame(source: Any) -> pd.DataFrame:
    frame = getattr(source, "analysed", source)
    if not isinstance(frame, pd.DataFrame):
        raise InputError("plasmode", "source must be an EvaluationResult or its matched frame "
                                     "(a DataFrame)")
    return frame


def _redraw_arms(sets: np.ndarray, n_sets: int, treated_per_set: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Within each set, a uniformly random subset of its members of the set's treated size."""
    keys = rng.random(sets.size)
    order = np.lexsort((keys, sets))          # sets together, random order within
    rank = np.empty(sets.size, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(sets[order])) + 1]
    counts = np.diff(np.r_[starts, sets.size])
    rank[order] = np.arange(sets.size) - np.repeat(starts, counts)
    return (rank < treated_per_set[sets]).astype(int)


def plasmode(
    source: Any,
    rate_ratios: float | Sequence[float] = (1.0, 0.85, 0.75),
    *,
    n_replicates: int = 200,
    seed: int = DEFAULT_SEED,
    estimator: Callable[[pd.DataFrame], Any] | None = None,
    set_col: str | None = "subclass",
    treated_col: str = "treated",
    count_col: str = "emergency_admissions",
    alpha: float = 0.05,
) -> PlasmodeResult:
    """Plasmode simulation of the matched design on the analysed data (see the module notes).

    Parameters
    ----------
    source : EvaluationResult or DataFrame
        The evaluation's result (its ``analysed`` frame is used) or that frame: one row per
        matched person-index with ``set_col``, ``treated_col``, ``count_col`` (post-index
        emergency admissions within follow-up), person-time and whatever the estimator needs.
    rate_ratios : float or sequence of float
        Target rate ratios to inject, each in ``(0, 1]`` (thinning can only remove admissions).
        Include 1 to check the type I error and coverage under the null, and the effect the
        programme is expected to have (e.g. the MDE, or 0.85).
    n_replicates : int, default 200
        Replicates per target (Monte Carlo SE of a power of 0.8 is 0.028 at 200).
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
    estimator : callable, optional
        ``frame -> Effect`` (anything with ``estimate``, ``ci_low``, ``ci_high`` and optionally
        ``fallback``); an exception is recorded as a failed replicate. Default
        :func:`headline_estimator` (the pipeline's headline). Pass the pipeline's own call
        when its headline changes, so the plasmode reruns the same design.
    set_col : str or None, default "subclass"
        Matched-set column; arms are re-drawn within sets. ``None`` re-draws them over the whole
        frame (keeping the arm sizes), for frames without matched sets.
    treated_col, count_col : str
    alpha : float, default 0.05
        Level of the estimator's interval (recorded; used for the labels).

    Returns
    -------
    PlasmodeResult

    Raises
    ------
    ConfigError
        If a target rate ratio is outside ``(0, 1]`` or ``n_replicates < 2``.
    InputError
        If a needed column is missing or a matched set has no variation in arms.
    """
    frame = _as_frame(source).reset_index(drop=True)
    targets = checked_targets(rate_ratios, n_replicates)
    for col in [treated_col, count_col] + ([set_col] if set_col else []):
        if col not in frame.columns:
            raise InputError("plasmode", f"column '{col}' not found in the matched frame")
    estimator = estimator or headline_estimator(count_col=count_col)

    treated = frame[treated_col].to_numpy(dtype=int)
    counts = admission_counts(frame[count_col], table="plasmode", what="counts")
    if set_col:
        sets, _ = pd.factorize(frame[set_col])
    else:
        sets = np.zeros(len(frame), dtype=np.int64)
    n_sets = int(sets.max()) + 1
    treated_per_set = np.bincount(sets, weights=treated, minlength=n_sets).astype(np.int64)
    size = np.bincount(sets, minlength=n_sets)
    if np.any(treated_per_set == 0) or np.any(treated_per_set == size):
        raise InputError("plasmode", "every matched set needs enrolled and comparator rows",
                         column=set_col)

    def redraw(rng: np.random.Generator, work: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        arm = _redraw_arms(sets, n_sets, treated_per_set, rng)
        work[treated_col] = arm
        return arm, arm == 1

    replicates = run_replicates(frame, counts, redraw, estimator, targets=targets,
                                n_replicates=n_replicates, seed=seed, count_col=count_col,
                                alpha=alpha, label="plasmode")
    baseline = ("arms re-drawn at random within matched sets (null by construction), "
                "then the enrolled's post-index emergency admissions thinned to the target"
                if set_col else
                "arms re-drawn at random over the whole frame (null by construction), then the "
                "enrolled's post-index emergency admissions thinned to the target")
    return PlasmodeResult(replicates, int(treated.sum()), int((treated == 0).sum()), n_sets,
                          int(seed), alpha, baseline)


def checked_targets(rate_ratios: float | Sequence[float], n_replicates: int) -> list[float]:
    """The target rate ratios as a list, each checked to be in ``(0, 1]`` (thinning can only
    remove admissions), and the number of replicates checked to be at least 2.

    Raises
    ------
    ConfigError
        For a target outside ``(0, 1]`` or fewer than two replicates.
    """
    targets = [float(rate_ratios)] if np.isscalar(rate_ratios) else [float(r) for r in
                                                                      rate_ratios]
    if not targets or any(not 0 < r <= 1 for r in targets):
        raise ConfigError(f"plasmode rate ratios must be in (0, 1] (thinning removes "
                          f"admissions); got {targets}")
    if int(n_replicates) < 2:
        raise ConfigError("plasmode needs at least 2 replicates")
    return targets


def admission_counts(values: pd.Series, *, table: str, what: str) -> np.ndarray:
    """Admission counts as integers; an :class:`~phm_eval.errors.InputError` naming ``table``
    and the column when one is negative or not whole.

    Parameters
    ----------
    values : pandas.Series
        The counts, named by their column.
    table, what : str
        The table and the words for the counts in the error message.
    """
    counts = values.to_numpy()
    if np.any(counts < 0) or np.any(np.floor(counts) != counts):
        raise InputError(table, f"{what} must be non-negative integers", column=values.name)
    return counts.astype(np.int64)


def run_replicates(
    frame: pd.DataFrame,
    counts: np.ndarray,
    assign: Callable[[np.random.Generator, pd.DataFrame], tuple[np.ndarray, np.ndarray]],
    estimator: Callable[[pd.DataFrame], Any],
    *,
    targets: Sequence[float],
    n_replicates: int,
    seed: int = DEFAULT_SEED,
    count_col: str,
    alpha: float = 0.05,
    label: str = "plasmode",
) -> pd.DataFrame:
    """The replicates of a plasmode, one row per replicate and target (``REPLICATE_COLUMNS``).

    Each replicate re-draws the assignment (``assign(rng, work)`` writes it into ``work``, a
    copy of ``frame``, and returns each row's arm and whether its admissions are exposed), then
    draws one uniform per admission, shared by all targets (common random numbers): an exposed
    row's admission is kept when its uniform is below the target rate ratio. The thinned counts
    go into ``count_col`` and ``estimator`` is refitted; a failed fit is a row with the reason.
    The package's per-fit log messages are silenced while the replicates run.

    Parameters
    ----------
    frame : pandas.DataFrame
        The design's analysis frame, one row per unit of ``counts``.
    counts : ndarray of int
        Each row's admissions (:func:`admission_counts`).
    assign : callable
        ``(rng, work) -> (arm, exposed)``: draws the placebo assignment with ``rng`` (before
        the uniforms, so the draws are reproducible), writes it into ``work`` and returns each
        row's arm (1 treated) and whether its admissions are thinned.
    estimator : callable
        ``work -> effect`` (``estimate``, ``ci_low``, ``ci_high``, optionally ``fallback`` and
        ``se_log``).
    targets : sequence of float
        Rate ratios injected (:func:`checked_targets`).
    n_replicates : int
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
    count_col : str
        Column of ``work`` the thinned counts are written to.
    alpha : float, default 0.05
    label : str
        Names the design in the warning about replicates that could not be estimated.

    Returns
    -------
    pandas.DataFrame
    """
    owner = np.repeat(np.arange(len(frame)), counts)    # one entry per admission: its row
    rows: list[dict[str, Any]] = []
    work = frame.copy()
    # the estimator's per-fit warnings (e.g. the Poisson fallback) are recorded per replicate
    quiet = logging.getLogger("phm_eval")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for rep, child in enumerate(np.random.SeedSequence(int(seed)).spawn(int(n_replicates))):
            rng = np.random.default_rng(child)
            arm, exposed = assign(rng, work)
            uniform = rng.random(owner.size)
            for target in targets:
                drop = (uniform >= target) & exposed[owner]
                new_counts = counts - np.bincount(owner[drop], minlength=len(frame))
                work[count_col] = new_counts
                rows.append(_one(estimator, work, target, rep, arm, new_counts, alpha))
    finally:
        quiet.setLevel(level)
    replicates = pd.DataFrame(rows, columns=REPLICATE_COLUMNS)
    failed = int(replicates["log_estimate"].isna().sum())
    if failed:
        log.warning("%s: %d of %d replicates not estimable", label, failed, len(replicates))
    return replicates


def _one(estimator: Callable[[pd.DataFrame], Any], work: pd.DataFrame, target: float,
         rep: int, arm: np.ndarray, counts: np.ndarray, alpha: float) -> dict[str, Any]:
    """Fit one replicate; a failure is a row with NaN estimates and the reason."""
    z = stats.norm.ppf(1 - alpha / 2)
    base = {"target_rate_ratio": target, "replicate": rep,
            "events_treated": int(counts[arm == 1].sum()),
            "events_control": int(counts[arm == 0].sum())}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            effect = estimator(work)
        est, lo, hi = float(effect.estimate), float(effect.ci_low), float(effect.ci_high)
        if not (est > 0 and lo > 0 and hi > 0 and np.isfinite([est, lo, hi]).all()):
            raise ValueError("estimate or interval not finite")
    except (InputError, ConfigError):
        raise
    except Exception as exc:  # one replicate that cannot be estimated is recorded, not fatal
        return base | {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                       "log_estimate": math.nan, "se_log": math.nan, "covered": math.nan,
                       "significant_reduction": math.nan, "rejected": math.nan,
                       "fallback": None, "note": f"{type(exc).__name__}: {exc}"}
    return base | {
        "estimate": est, "ci_low": lo, "ci_high": hi, "log_estimate": math.log(est),
        # the estimator's own SE of the log estimate when it has one (a t interval's is not
        # the interval's width over 2 z), else the width of its normal interval
        "se_log": (float(effect.se_log) if getattr(effect, "se_log", None) is not None
                   else (math.log(hi) - math.log(lo)) / (2 * z)),
        "covered": float(lo <= target <= hi), "significant_reduction": float(hi < 1),
        "rejected": float(hi < 1 or lo > 1), "fallback": getattr(effect, "fallback", None),
        "note": None}
