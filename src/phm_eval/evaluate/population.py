"""Population-level effect of a staggered roll-out (intention to treat) by difference in differences.

What did the programme do to emergency admissions among the people it was meant for, enrolled
or not? The eligible population is fixed on a date before the first unit adopts
(:mod:`~phm_eval.evaluate.population_panel`) and aggregated by adopting unit (PCN or practice)
and calendar month. Units adopt in waves and some never do, so the Callaway & Sant'Anna
estimator (:func:`phm_eval.did.att_gt`) compares each adoption cohort, month by month, with
units not treated (never, or optionally not yet), on the units' emergency admission rates per
1,000 person-months:

* **Cells.** ATT(g, t) for every cohort ``g`` (adoption month) and month ``t``, against the
  month before adoption (universal base period, so pre-adoption cells are an event study).
  Unit rates are averaged with weights equal to the unit's eligible person-months before the
  first adoption month (``weightsname``): a person-time weighted mean of unit rates is the
  pooled rate of the cohort's people, so the ATT is per person-month, not per unit. The
  weights are measured before any unit is treated, so the programme cannot move them.
* **Overall ITT (rate difference).** The post-adoption cells averaged with weights equal to
  their person-months (cohort ``g``'s eligible person-months in month ``t``): the effect per
  person-month of exposure, which is what a commissioner's "admissions avoided per 1,000
  person-months among the eligible" means. R's ``aggte(type = "simple")`` would weight every
  post month of a cohort equally, although a cohort fixed on a date shrinks as its members die
  or leave. The weights are treated as fixed (inference conditional on the observed
  person-time), so no share-estimation term is added.
* **Rate ratio.** ``RR = R / (R - ATT)``, where ``R`` is the treated units' observed rate in
  the same cells with the same weights and ``R - ATT`` the counterfactual rate the difference
  in differences implies: the same identifying assumption as the ATT (parallel trends in the
  rate) re-expressed on the ratio scale, so it can be read beside the enrolled-patient rate
  ratio. DiD on log rates would assume parallel trends in logs (another assumption, undefined
  for unit-months without admissions), and a Poisson ETWFE would be a different estimator
  whose ATT need not agree with the additive one reported beside it. The interval is the delta
  method on ``log RR`` from the joint influence functions of ``R`` and the ATT (the engine's
  cell influence functions, combined with the cell weights), summed within clusters: the same
  linearisation as the ATT's own standard error, so the two intervals agree on whether the
  effect is zero.
* **Clustering** on the adopting unit (each unit is one row of the influence function), or on
  the PCN when practices are analysed under a PCN-level roll-out. Standard errors are the
  analytic cluster-robust ones of the engine (R's ``did`` with ``bstrap = FALSE``).
* **Pre-trends.** Nothing is matched on the outcome, so the event study's pre-adoption
  coefficients test parallel trends: a Wald test that months ``min_e`` to -2 are jointly zero
  (month -1 is the reference), with the small-sample F reference distribution of Hotelling's
  T^2 for ``G`` clusters: ``T^2 = W (G - 1) / G`` (the engine's covariance divides the cluster
  sums' cross-products by ``G``, Hotelling's by ``G - 1``) and ``F = T^2 (G - q) / (q (G - 1))``
  on ``q, G - q`` degrees of freedom; the chi-squared p-value of ``W`` is reported beside it. Honest DiD (Rambachan & Roth, relative
  magnitudes, :func:`phm_eval.did.honest_did_from_event_study`) gives intervals for the
  average effect over the first months after adoption that stay valid when post-adoption
  violations of parallel trends are up to ``Mbar`` times the largest pre-adoption one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm
from scipy.stats import f as f_dist
from scipy.stats import t as t_dist

from phm_eval import DEFAULT_SEED
from phm_eval.convention import (
    AnswersForResult,
    ResultConvention,
    check_alpha,
    format_table,
    require_fitted,
    short_repr,
)

from ..did import AggteResult, AttGtResult, att_gt, honest_did_from_event_study
from ..errors import ConfigError, EstimationError, ParameterError
from .design import Eligibility
from .population_panel import PopulationPanel, build_population_panel

log = logging.getLogger(__name__)

#: What a fitted :class:`PopulationITT` answers for from its ``result_``.
_RESULT_API = frozenset({"records", "estimates", "event_study", "pretrend", "honest",
                         "honest_target", "att_gt", "dynamic", "details", "panel", "flow",
                         "rate_ratio", "rate_difference", "plot"})

ESTIMAND = "ITT population"
OUTCOME_RATE = "emergency admissions per 1,000 person-months"
METHOD = ("population difference in differences (Callaway & Sant'Anna, staggered adoption, "
          "{controls} comparison units, person-time weighted, clustered on {cluster})")


@dataclass(frozen=True, repr=False)
class PopulationITTResult(ResultConvention):
    """The population-level effect and everything behind it (read-only).

    Attributes
    ----------
    records : list of dict
        ``effects.json`` records (``outcome, method, estimate, ci_low, ci_high, scale,
        n_treated, n_control, label, subgroup, p_value, fallback, note``) plus ``estimand``
        ("ITT population"), ``unit``, ``n_units_treated``, ``n_units_control`` and the rates.
        The first is the rate ratio, the second the rate difference per 1,000 person-months.
    estimates : pandas.DataFrame
        One row per estimate: ``term, estimate, se, ci_low, ci_high, scale, p_value``
        (``se`` of ``log RR`` for the rate ratio); also ``summary`` (a DataFrame property, as
        every result's).
    event_study : pandas.DataFrame
        ``event_time, att, se, ci_low, ci_high`` (ATT per 1,000 person-months by month
        relative to adoption; -1 is the reference, 0).
    pretrend : dict
        ``statistic, df, p_value`` (F, small-sample), ``df_denominator``, ``chi2_p_value``,
        ``n_clusters``, ``test``.
    honest : pandas.DataFrame
        Honest DiD intervals (``Mbar, lb, ub, method, delta``) for ``honest_target``, with
        the original interval as the row ``Mbar = NaN``; empty when not computed.
    honest_target : str
    panel : PopulationPanel or None
        The unit-month panel (None when fitted on a bare panel).
    att_gt : AttGtResult
    dynamic : AggteResult
        The event study (dynamic aggregation).
    details : dict
        Point estimates and influence-function pieces: ``att, se_att, rate_treated,
        rate_counterfactual, rate_ratio, se_log_rr, cell_weights, n_clusters``.
    """

    records: list[dict]
    estimates: pd.DataFrame
    event_study: pd.DataFrame
    pretrend: dict
    honest: pd.DataFrame
    honest_target: str
    att_gt: AttGtResult
    dynamic: AggteResult
    details: dict
    panel: PopulationPanel | None = None
    flow: list[dict] = field(default_factory=list)

    def _summary_table(self) -> pd.DataFrame:
        return self.estimates.copy()

    def _repr_fields(self) -> dict[str, Any]:
        rr = self.records[0].get("estimate") if self.records else None
        return {"unit": self.records[0].get("unit") if self.records else None,
                "rate_ratio": None if rr is None else round(float(rr), 4),
                "event_times": len(self.event_study)}

    @property
    def rate_ratio(self) -> dict:
        """The rate-ratio record."""
        return self.records[0]

    @property
    def rate_difference(self) -> dict:
        """The rate-difference record (per 1,000 person-months)."""
        return self.records[1]

    def plot(self, *, ax: Any = None) -> Any:
        """Event study: ATT per 1,000 person-months by month since adoption, 95% intervals."""
        import matplotlib.pyplot as plt

        from ..plotting import OKABE_ITO, set_titles

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        es = self.event_study
        post = es["event_time"] >= 0
        for mask, colour, label in ((~post, OKABE_ITO["blue"], "before adoption"),
                                    (post, OKABE_ITO["vermillion"], "after adoption")):
            sub = es[mask]
            ax.errorbar(sub["event_time"], sub["att"],
                        yerr=[sub["att"] - sub["ci_low"], sub["ci_high"] - sub["att"]],
                        fmt="o", ms=4, capsize=2, color=colour, label=label)
        ax.axhline(0, color="grey", lw=1)
        ax.axvline(-0.5, color="grey", lw=1, ls="--")
        ax.set_xlabel("Months since the unit adopted the programme")
        ax.set_ylabel("Change in emergency admissions\nper 1,000 person-months (95% CI)")
        ax.legend(fontsize="small", frameon=False)
        p = self.pretrend.get("p_value")
        subtitle = ("Eligible population, intention to treat; "
                    + (f"pre-trend test p = {p:.2f}" if p is not None and np.isfinite(p)
                       else "pre-trend test not available"))
        set_titles(ax, "Emergency admissions around adoption", subtitle=subtitle)
        return ax


class PopulationITT(AnswersForResult):
    """Staggered difference in differences of a unit-month rate panel (intention to treat).

    Parameters
    ----------
    control_group : {"nevertreated", "notyettreated"}
        Comparison units for each cell (R's ``did``).
    base_months : int
        The overall effect compares each month after adoption with the mean of the
        ``base_months`` months before it (fewer when the panel starts later).
    min_e, max_e : int
        Event-study window (months relative to adoption). ``min_e`` also sets the pre-trend
        test's months (``min_e`` to -2).
    honest_max_e : int
        Last post-adoption month of the Honest DiD analysis, whose target is the average
        effect over months 0 to ``honest_max_e`` (relative-magnitude restrictions with more
        than about ten post-periods are slow to compute).
    honest_m : sequence of float
        Values of Mbar; empty to skip Honest DiD.
    alpha : float
        1 - confidence level.

    As lifelines' fitters: ``fit`` returns the fitter, whose ``result_`` is the read-only
    :class:`PopulationITTResult`; the fitted fitter also answers for the result's attributes
    and methods (``records``, ``event_study``, ``pretrend``, ``plot()``...), so code that used
    ``fit``'s return value as the result keeps working. ``summary`` is the result's table and
    ``print_summary()`` prints it. Bad settings raise
    :class:`~phm_eval.errors.ParameterError` naming the argument.

    Examples
    --------
    >>> fitted = PopulationITT().fit(panel)          # panel: PopulationPanel or DataFrame
    >>> fitted.summary
    >>> fitted.plot()
    """

    _result_api = _RESULT_API

    def __init__(self, *, control_group: str = "nevertreated", base_months: int = 12,
                 min_e: int = -12, max_e: int = 23, honest_max_e: int = 5,
                 honest_m: Sequence[float] = (0.5, 1.0, 1.5, 2.0), alpha: float = 0.05,
                 small_sample: bool = True):
        if control_group not in ("nevertreated", "notyettreated"):
            raise ParameterError("control_group", "must be 'nevertreated' or 'notyettreated'",
                                 control_group)
        for name, value, ok, rule in (("min_e", min_e, min_e <= -2, "must be -2 or less"),
                                      ("max_e", max_e, max_e >= 0, "must be 0 or more"),
                                      ("honest_max_e", honest_max_e, honest_max_e >= 0,
                                       "must be 0 or more")):
            if not ok:
                raise ParameterError(name, rule, value)
        if int(base_months) < 1:
            raise ParameterError("base_months", "must be at least 1", base_months)
        self.control_group = control_group
        self.base_months = int(base_months)
        self.small_sample = bool(small_sample)
        self.min_e, self.max_e, self.honest_max_e = int(min_e), int(max_e), int(honest_max_e)
        self.honest_m = [float(m) for m in honest_m]
        self.alpha = check_alpha(alpha)

    def __repr__(self) -> str:
        fitted = None
        if "result_" in vars(self):
            def fitted() -> str:
                record = self.result_.records[0]
                rr = record.get("estimate")
                shown = "not estimable" if rr is None else f"rate ratio {float(rr):.3f}"
                units = (record.get("n_units_treated") or 0) + (record.get("n_units_control")
                                                                 or 0)
                return f"{shown}, n={units} units"
        return short_repr(self, {"control_group": self.control_group,
                                 "base_months": self.base_months, "alpha": self.alpha},
                          fitted)

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the settings and the estimates."""
        require_fitted(self, "result_")
        print(f"{self!r}\n{format_table(self.summary, decimals)}")

    def fit(self, panel: PopulationPanel | pd.DataFrame, *,
            seed: int = DEFAULT_SEED) -> PopulationITT:
        """Estimate the ITT from a unit-month panel; the result is ``result_``.

        Parameters
        ----------
        panel : PopulationPanel or pandas.DataFrame
            Balanced, one row per unit and month: ``unit``, ``t`` (consecutive whole numbers),
            ``admissions``, ``person_months``, ``g`` (adoption month as a value of ``t``; 0
            never treated), ``weight`` (constant within unit) and optionally ``cluster``
            (constant within unit; default the unit).
        seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
            Seed passed to the engine (no bootstrap is drawn: SEs are analytic).

        Returns
        -------
        PopulationITT
            The fitted fitter (``result_``: :class:`PopulationITTResult`).
        """
        source = panel if isinstance(panel, PopulationPanel) else None
        df = (panel.panel if source is not None else panel).copy()
        need = {"unit", "t", "admissions", "person_months", "g", "weight"}
        missing = sorted(need - set(df.columns))
        if missing:
            raise ParameterError("panel", f"lacks column(s) {missing}")
        self.cluster_note_ = None
        if "cluster" not in df.columns:
            df["cluster"] = df["unit"]
        elif df["cluster"].nunique() < 2 <= df["unit"].nunique():
            # Practices of one PCN adopting at different dates: PCN clusters cannot carry the
            # uncertainty, so the adopting practice (the unit of assignment) is the cluster.
            df["cluster"] = df["unit"]
            self.cluster_note_ = ("clustered on the adopting practice: all practices are in "
                                  "one PCN, too few PCNs to cluster on")
        if (df["person_months"] <= 0).any():
            raise EstimationError("unit-months without person-time have no rate; drop those "
                                  "units (build_population_panel does)")
        df["rate"] = 1000 * df["admissions"] / df["person_months"]
        df = df.sort_values(["unit", "t"], kind="stable").reset_index(drop=True)
        n_per_cluster = df.groupby("cluster")["unit"].nunique()
        clustervars = "cluster" if (n_per_cluster > 1).any() else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            res = att_gt(df, yname="rate", tname="t", idname="unit", gname="g",
                         weightsname="weight", clustervars=clustervars,
                         control_group=self.control_group, est_method="reg",
                         base_period="universal", bstrap=False, cband=False,
                         alp=self.alpha, seed=seed)
        details = self._overall(df)
        dynamic = res.aggregate("dynamic", min_e=self.min_e, max_e=self.max_e, cband=False)
        es = dynamic.summary()
        es = es[es["term"] == "event_time"].rename(columns={"value": "event_time"})
        es = es[["event_time", "att", "se", "ci_low", "ci_high"]].reset_index(drop=True)
        es["event_time"] = es["event_time"].astype(int)
        pretrend = self._pretrend(res, dynamic, details["n_clusters"])
        honest, target = self._honest(res)
        records = self._records(details, df, source)
        summary = pd.DataFrame([
            {"term": "rate ratio (ITT)", "estimate": details["rate_ratio"],
             "se": details["se_log_rr"], "ci_low": records[0]["ci_low"],
             "ci_high": records[0]["ci_high"], "scale": "RR (se of log RR)",
             "p_value": records[0]["p_value"]},
            {"term": "rate difference per 1,000 person-months (ITT)",
             "estimate": details["att"], "se": details["se_att"],
             "ci_low": records[1]["ci_low"], "ci_high": records[1]["ci_high"],
             "scale": "difference", "p_value": records[1]["p_value"]},
            {"term": "treated rate per 1,000 person-months", "estimate":
             details["rate_treated"], "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
             "scale": "rate", "p_value": np.nan},
            {"term": "counterfactual rate per 1,000 person-months", "estimate":
             details["rate_counterfactual"], "se": np.nan, "ci_low": np.nan,
             "ci_high": np.nan, "scale": "rate", "p_value": np.nan},
        ])
        flow = list(source.flow) if source is not None else []
        self.result_ = PopulationITTResult(
            records=records, estimates=summary, event_study=es, pretrend=pretrend,
            honest=honest, honest_target=target, att_gt=res, dynamic=dynamic, details=details,
            panel=source, flow=flow)
        return self

    # ------------------------------------------------------------------ pieces
    def _overall(self, df: pd.DataFrame) -> dict:
        """Person-time weighted ATT, treated rate, rate ratio and their influence functions.

        One :func:`~phm_eval.did.att_gt` per adoption cohort ``g``, on a panel whose first
        period is each unit's mean rate over the ``base_months`` months before ``g`` (the
        base) followed by the months from ``g`` on: ATT(g, t) compares the change from that
        base. A single base month (the engine's universal base period) would put one month's
        Poisson noise into every post-adoption cell of the cohort. Each run's influence
        functions are mapped back to the units and summed, so comparison units used by several
        cohorts are counted once per cluster.
        """
        units = df.groupby("unit")[["g", "cluster", "weight"]].first()
        ids = units.index.to_numpy()
        tlist = np.sort(df["t"].unique())
        Y = df.pivot(index="unit", columns="t", values="rate").reindex(index=ids,
                                                                       columns=tlist).to_numpy()
        PM = df.pivot(index="unit", columns="t", values="person_months").reindex(
            index=ids, columns=tlist).to_numpy()
        g_unit = units["g"].to_numpy(dtype=float)
        w = units["weight"].to_numpy(dtype=float)
        cohorts = [float(g) for g in np.unique(g_unit[g_unit > 0])]
        plans = []
        for g in cohorts:
            pre = np.flatnonzero((tlist < g) & (tlist >= g - self.base_months))
            post = np.flatnonzero(tlist >= g)
            if len(pre) == 0 or len(post) == 0:
                log.warning("adoption cohort %g has no pre- or post-adoption months; left out",
                            g)
                continue
            in_g = g_unit == g
            plans.append((g, pre, post, in_g, PM[np.ix_(in_g, post)].sum(axis=0)))
        if not plans:
            raise EstimationError("no adoption cohort with months before and after adoption")
        total_pm = sum(p[4].sum() for p in plans)
        phi_att = np.zeros(len(ids))
        phi_r = np.zeros(len(ids))
        att = rate = 0.0
        cell_rows = []
        for g, pre, post, in_g, cell_pm in plans:
            a = cell_pm / total_pm
            if self.control_group == "nevertreated":
                keep = in_g | (g_unit == 0)
            else:
                keep = in_g | (g_unit == 0) | (g_unit > g)
            k_ids = ids[keep]
            sub_g = np.where(g_unit[keep] == g, 2.0, 0.0)
            later = g_unit[keep] > g
            # a later cohort adopts at sub-period 2 + (months from g to its adoption)
            sub_g[later] = 2.0 + np.searchsorted(tlist[post], g_unit[keep][later])
            base = Y[np.ix_(keep, pre)].mean(axis=1)
            Ysub = np.column_stack([base, Y[np.ix_(keep, post)]])
            n_sub, n_p = Ysub.shape
            sub = pd.DataFrame({"unit": np.repeat(k_ids, n_p),
                                "p": np.tile(np.arange(1, n_p + 1), n_sub),
                                "y": Ysub.ravel(), "sg": np.repeat(sub_g, n_p),
                                "w": np.repeat(w[keep], n_p)})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                res = att_gt(sub, yname="y", tname="p", idname="unit", gname="sg",
                             weightsname="w", control_group=self.control_group,
                             est_method="reg", base_period="universal", bstrap=False,
                             cband=False, alp=self.alpha)
            cells = np.flatnonzero((res.group == 2.0) & (res.time >= 2.0))
            A = np.zeros((len(res.cells), 1))
            A[cells, 0] = a[(res.time[cells] - 2).astype(int)]
            psi = res.influence.combine(A)[:, 0] / res.n
            pos = pd.Index(ids).get_indexer(np.asarray(res.data.unit_ids))
            treated = g_unit[pos] == g
            if self.small_sample:
                psi = psi * np.where(treated, _kish_factor(w[pos][treated]),
                                     _kish_factor(w[pos][~treated]))
            np.add.at(phi_att, pos, psi)
            cell_att = res.att[cells]
            att += float(cell_att @ A[cells, 0])
            # the treated cohort's observed rate in each post month and its influence function
            wg = w[in_g]
            Yg = Y[np.ix_(in_g, post)]
            ybar = wg @ Yg / wg.sum()
            rate += float(ybar @ a)
            phi_r[in_g] += ((wg[:, None] * (Yg - ybar[None, :]) / wg.sum()) @ a
                            * (_kish_factor(wg) if self.small_sample else 1.0))
            cell_rows.append(pd.DataFrame({"group": g, "time": tlist[post], "weight": a,
                                           "person_months": cell_pm, "att": cell_att,
                                           "treated_rate": ybar}))
        cf = rate - att
        if not (rate > 0 and cf > 0):
            raise EstimationError(f"the treated rate ({rate:.3g}) and its counterfactual "
                                  f"({cf:.3g}) must both be positive for a rate ratio")
        phi_log = phi_r / rate - (phi_r - phi_att) / cf
        cl = pd.factorize(units["cluster"])[0]
        S = np.zeros((cl.max() + 1, 2))
        np.add.at(S, cl, np.column_stack([phi_att, phi_log]))
        se_att, se_log = np.sqrt((S ** 2).sum(axis=0))
        # Welch-Satterthwaite degrees of freedom: the variance is a sum of contributions of
        # independent groups of clusters (each adoption cohort, the never-treated), each
        # estimated from its own clusters
        cluster_cohort = units.groupby(cl)["g"].first().to_numpy()
        df_t = {}
        for j, name in enumerate(("att", "log_rr")):
            parts = [(float(np.sum(S[cluster_cohort == c, j] ** 2)),
                      int(np.sum(cluster_cohort == c))) for c in np.unique(cluster_cohort)]
            num = sum(v for v, _ in parts) ** 2
            den = sum(v ** 2 / (m - 1) for v, m in parts if m > 1)
            df_t[name] = float(num / den) if den > 0 else np.inf
        return {"att": att, "se_att": float(se_att), "rate_treated": rate,
                "rate_counterfactual": cf, "rate_ratio": rate / cf,
                "se_log_rr": float(se_log), "n_clusters": int(cl.max() + 1),
                "df_att": df_t["att"], "df_log_rr": df_t["log_rr"],
                "cell_weights": pd.concat(cell_rows, ignore_index=True),
                "person_months_post": float(total_pm)}

    def _pretrend(self, res: AttGtResult, dynamic: AggteResult, n_clusters: int) -> dict:
        egt = np.asarray(dynamic.egt, dtype=float)
        pre = np.flatnonzero((egt >= self.min_e) & (egt <= -2))
        test = (f"Wald test that the event-study coefficients of months {self.min_e} to -2 "
                "before adoption are jointly zero (month -1 the reference); F reference "
                "distribution for clustered data (Hotelling's T^2)")
        out = {"statistic": None, "df": None, "df_denominator": None, "p_value": None,
               "chi2_statistic": None, "chi2_p_value": None, "n_clusters": n_clusters,
               "test": test}
        if len(pre) == 0:
            out["note"] = "no pre-adoption months in the event study"
            return out
        b = np.asarray(dynamic.att_egt)[pre]
        V = dynamic.covariance_egt()[np.ix_(pre, pre)]
        q = len(pre)
        try:
            W = float(b @ np.linalg.solve(V, b))
        except np.linalg.LinAlgError:
            out["note"] = "singular covariance of the pre-adoption coefficients"
            return out
        if 1.0 / np.linalg.cond(V) <= np.finfo(float).eps * 100 or not np.isfinite(W):
            out["note"] = "singular covariance of the pre-adoption coefficients"
            return out
        out.update(chi2_statistic=W, chi2_p_value=float(chi2.sf(W, q)))
        G = n_clusters
        if G - q >= 1:
            # Hotelling's T^2 uses the covariance of the G cluster sums with divisor G - 1;
            # the engine's (psi' psi / n^2, as R's did) has divisor G, so T^2 = W (G - 1) / G
            # and F = T^2 (G - q) / (q (G - 1)).
            F = W * (G - 1) / G * (G - q) / (q * (G - 1))
            out.update(statistic=float(F), df=q, df_denominator=G - q,
                       p_value=float(f_dist.sf(F, q, G - q)))
        else:
            out["note"] = (f"{q} pre-adoption months need more than {q} clusters ({G}) for "
                           "the F test; narrow min_e")
        return out

    def _honest(self, res: AttGtResult) -> tuple[pd.DataFrame, str]:
        target = (f"average ATT over months 0 to {self.honest_max_e} after adoption "
                  "(per 1,000 person-months)")
        if not self.honest_m:
            return pd.DataFrame(), target
        try:
            es = res.aggregate("dynamic", min_e=self.min_e, max_e=self.honest_max_e,
                               cband=False)
            post = np.asarray(es.egt) >= 0
            l_vec = np.full(int(post.sum()), 1.0 / post.sum())
            hd = honest_did_from_event_study(res, es, l_vec=l_vec, method="relative_magnitude",
                                             m=self.honest_m, alpha=self.alpha)
        except (ConfigError, EstimationError, np.linalg.LinAlgError, ValueError) as exc:
            log.warning("Honest DiD not computed: %s", exc)
            return pd.DataFrame({"Mbar": [np.nan], "lb": [np.nan], "ub": [np.nan],
                                 "method": [f"not computed: {exc}"], "delta": [None]}), target
        table = hd.summary()
        original = pd.DataFrame({"Mbar": [np.nan], "lb": [hd.original[0]],
                                 "ub": [hd.original[1]], "method": ["original"],
                                 "delta": [None]})
        out = pd.concat([original, table], ignore_index=True)
        out["breakdown_Mbar"] = hd.breakdown()
        return out, target

    def _records(self, det: dict, df: pd.DataFrame, source: PopulationPanel | None
                 ) -> list[dict]:
        q = 1 - self.alpha / 2
        if self.small_sample:
            z_rr, z_att = t_dist.ppf(q, det["df_log_rr"]), t_dist.ppf(q, det["df_att"])
            p_rr = 2 * t_dist.sf(abs(np.log(det["rate_ratio"])) / det["se_log_rr"],
                                 det["df_log_rr"])
            p_att = 2 * t_dist.sf(abs(det["att"]) / det["se_att"], det["df_att"])
        else:
            z_rr = z_att = norm.ppf(q)
            p_rr = 2 * norm.sf(abs(np.log(det["rate_ratio"])) / det["se_log_rr"])
            p_att = 2 * norm.sf(abs(det["att"]) / det["se_att"])
        units = df.groupby("unit")[["g", "cluster"]].first()
        n_units_t = int((units["g"] > 0).sum())
        n_units_c = int((units["g"] == 0).sum())
        unit_level = source.unit_level if source is not None else "unit"
        if source is not None:
            n_elig = source.units.set_index("unit")["n_eligible"]
            n_t = int(n_elig.reindex(units.index[units["g"] > 0]).sum())
            n_c = int(n_elig.reindex(units.index[units["g"] == 0]).sum())
        else:
            n_t, n_c = n_units_t, n_units_c
        controls = ("never-treated" if self.control_group == "nevertreated"
                    else "never- and not-yet-treated")
        cluster = ("PCN" if (unit_level == "practice" and det["n_clusters"] < len(units))
                   else unit_level if unit_level != "unit" else "unit")
        method = METHOD.format(controls=controls, cluster=cluster)
        rr, se_log = det["rate_ratio"], det["se_log_rr"]
        att, se = det["att"], det["se_att"]
        common = {"n_treated": n_t, "n_control": n_c, "subgroup": None,
                  "fallback": self.cluster_note_,
                  "note": None, "estimand": ESTIMAND, "unit": unit_level,
                  "n_units_treated": n_units_t, "n_units_control": n_units_c,
                  "n_clusters": det["n_clusters"],
                  "rate_treated_per_1000_person_months": det["rate_treated"],
                  "rate_counterfactual_per_1000_person_months": det["rate_counterfactual"],
                  "person_months_treated": det["person_months_post"]}
        ratio = {"outcome": "emergency admissions",
                 "method": method + "; rate ratio = treated rate / (treated rate - ATT), "
                           "delta method on the log",
                 "estimate": rr, "ci_low": float(np.exp(np.log(rr) - z_rr * se_log)),
                 "ci_high": float(np.exp(np.log(rr) + z_rr * se_log)), "scale": "RR",
                 "label": "emergency admissions among the eligible population, rate ratio "
                          "(intention to treat)",
                 "p_value": float(p_rr), "df": det["df_log_rr"]} | common
        diff = {"outcome": OUTCOME_RATE, "method": method, "estimate": att,
                "ci_low": att - z_att * se, "ci_high": att + z_att * se, "scale": "difference",
                "label": "change in emergency admissions per 1,000 person-months among the "
                         "eligible population (intention to treat)",
                "p_value": float(p_att), "df": det["df_att"]} | common
        records = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for k, v in r.items()} for r in (ratio, diff)]
        for record in records:
            if record["estimate"] is not None and record["ci_low"] is None:
                # A point estimate without its uncertainty must say why.
                record["note"] = (
                    f"only {det['n_clusters']} {cluster}s to cluster on, too few to measure "
                    "the uncertainty of a roll-out (several adopting and several comparison "
                    "units are needed)")
        return records


def _kish_factor(w: np.ndarray) -> float:
    """``sqrt(m / (m - 1))`` for the Kish effective size ``m = (sum w)^2 / sum w^2`` of a
    weighted group: the influence function of a weighted mean gives its variance with divisor
    ``m`` (as a sample variance with divisor ``n``); this makes it ``m - 1``."""
    m = float(w.sum() ** 2 / np.sum(w ** 2))
    return float(np.sqrt(m / (m - 1))) if m > 1 else np.nan


def population_itt(
    tables: dict[str, str | Path],
    programme: str,
    study_start: str,
    study_end: str,
    *,
    eligibility: Eligibility | None = None,
    eligibility_date: str | None = None,
    unit: str | None = None,
    control_group: str = "nevertreated",
    codelist_dir: str | Path | None = None,
    exclude_methods: tuple[str, ...] = (),
    seed: int = DEFAULT_SEED,
    **options: Any,
) -> PopulationITTResult:
    """The programme's effect on emergency admissions in its eligible population (ITT).

    Parameters
    ----------
    tables : dict
        Validated Parquet paths: ``patients``, ``events``, ``admissions``, ``practices``,
        ``rollout``.
    programme, study_start, study_end : str
    eligibility : Eligibility, optional
        Who the programme is for (default ``Eligibility()``: aged 65+, and moderate/severe
        eFI or an emergency admission in the previous 12 months), applied once, on
        ``eligibility_date``.
    eligibility_date : date-like, optional
        Default: the day before the month 12 months before the first adoption month (or the
        day before the study start, if later).
    unit : {"pcn", "practice"}, optional
        Adopting unit; default from the roll-out table (PCN when all rows are PCN-level).
    control_group : {"nevertreated", "notyettreated"}
    codelist_dir : path, optional
    exclude_methods : tuple of str
        Emergency admission methods not counted.
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
    **options
        ``min_e``, ``max_e``, ``honest_max_e``, ``honest_m``, ``alpha`` of
        :class:`PopulationITT`.

    Returns
    -------
    PopulationITTResult
    """
    panel = build_population_panel(tables, programme, study_start, study_end,
                                   eligibility=eligibility, eligibility_date=eligibility_date,
                                   unit=unit, codelist_dir=codelist_dir,
                                   exclude_methods=exclude_methods)
    return PopulationITT(control_group=control_group, **options).fit(panel, seed=seed).result_
