"""Event study of monthly emergency admissions around the index date on the matched cohort.

Each matched row contributes months -12..-1 before and 0..11 after its index date ("stacked"
event time), with the count of emergency admissions starting in each month. Event month ``m``
is the days ``(m L, (m + 1) L]`` after the index date (``L`` = 365.25 / 12), so month -1 ends
on the index date itself and an admission on the index date is history, as in
:mod:`phm_eval.definitions`' windows. A post-index month is kept only when it is wholly
observed (it ends on or before the row's end of follow-up): a part-observed month would count
a fraction of a month's admissions as a whole month and, as comparators are censored when their
practice adopts, bias the comparison.
Enrolled rows are a single group first treated at event month 0 and comparators are never
treated, so the Callaway & Sant'Anna ATT(g,t) of :func:`phm_eval.did.att_gt` are the
event-study coefficients. Enrolment falls within month -1 (the index date is the first of the
following month), so month -1 is partly exposed: it is an anticipation period (``anticipation=1``)
and the reference is month -2 (universal base period). The pre-test asks whether months -12..-3
are jointly zero: R's test would include month -1, where an effect that has already begun would
count as a pre-trend.
The overall ATT (mean of post-index months) is converted to admissions per 1,000 person-years.

Rows are matched person-index dates, and the same person can be in several rows (a comparator
in several index months) and the rows of a matched set are not independent, so standard errors
(analytic and the multiplier bootstrap) are clustered on ``cluster_col``: by default the
matched sets joined where they share a person (``match_cluster``), which nests the person.

The pre-trend test is **not informative for this design**: comparators are matched on
admissions in the year before the index date, which are the pre-period outcomes, so the
pre-period months are balanced by construction and the test cannot detect a violation. The
pretrend record says so (``informative: false``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phm_eval import DEFAULT_SEED

from ..db import connect
from ..definitions import emergency_sql
from ..did import att_gt
from ..did.results import AttGtResult
from .effects import cluster_words, se_words

MONTH_DAYS = 365.25 / 12
PRE, POST = 12, 12
# Months before the index date already exposed to the programme (enrolment is in month -1).
ANTICIPATION = 1


PRETREND_NOT_INFORMATIVE = (
    "not informative for the matched design: comparators are matched on emergency admissions "
    "in the 12 months before the index date (the propensity score and the exact "
    "recent-admission band), i.e. on the pre-period outcome, so pre-index months are balanced "
    "by construction and this test cannot detect non-parallel trends. The population-level "
    "difference in differences, which matches on nothing, is where a pre-trend test is "
    "informative.")


def monthly_panel(analysed: pd.DataFrame, admissions: str | None = None,
                  spells: pd.DataFrame | None = None,
                  *,
                  cluster_col: str = "patient_id") -> pd.DataFrame:
    """Person-month panel around each analysed row's index date.

    Parameters
    ----------
    analysed : pandas.DataFrame
        Rows with ``row_id``, ``patient_id``, ``index_date``, ``end_date``, ``treated`` (and
        ``cluster_col``).
    admissions : str, optional
        Parquet path of the admissions table (or give ``spells``).
    spells : pandas.DataFrame, optional
        The admissions as a frame.
    cluster_col : str, default "patient_id"
        Carried into the panel (constant within a row).

    Returns
    -------
    pandas.DataFrame
        ``row_id, patient_id, <cluster_col>, period (1..24), month (-12..11), treated, g, y``;
        post-index months only when wholly observed.
    """
    con = connect()
    keep = list(dict.fromkeys(["row_id", "patient_id", "index_date", "end_date", "treated",
                               cluster_col]))
    frame = analysed[keep].copy()
    frame["index_date"] = pd.to_datetime(frame["index_date"])
    frame["end_date"] = pd.to_datetime(frame["end_date"])
    con.register("cohort", frame)
    source = "spells" if spells is not None else f"read_parquet('{admissions}')"
    if spells is not None:
        con.register("spells", spells)
    counts = con.execute(
        f"""
        SELECT c.row_id,
               CAST(ceil(date_diff('day', CAST(c.index_date AS DATE), a.admission_date)
                         / {MONTH_DAYS}) AS INTEGER) - 1 AS month, count(*) AS y
        FROM cohort c JOIN {source} a ON a.patient_id = c.patient_id
        WHERE {emergency_sql("a.admission_method")}
          AND a.admission_date > CAST(c.index_date AS DATE) - {int(PRE * MONTH_DAYS)}
          AND a.admission_date <= CAST(c.end_date AS DATE)
        GROUP BY ALL
        """
    ).df()
    con.close()
    months = np.arange(-PRE, POST)
    panel = frame.merge(pd.DataFrame({"month": months}), how="cross")
    observed_days = (panel["end_date"] - panel["index_date"]).dt.days
    # Month m's last whole day is floor((m + 1) L) days after the index date (day 365 for
    # month 11); keep the month if it is observed to that day.
    last_day = np.floor((panel["month"] + 1) * MONTH_DAYS)
    panel = panel[(panel["month"] < 0) | (last_day <= observed_days)]
    panel = panel.merge(counts, on=["row_id", "month"], how="left")
    panel["y"] = panel["y"].fillna(0).astype(float)
    panel["period"] = panel["month"] + PRE + 1
    panel["g"] = np.where(panel["treated"] == 1, PRE + 1, 0)
    cols = ["row_id", "patient_id", cluster_col, "period", "month", "treated", "g", "y"]
    return panel[list(dict.fromkeys(cols))].reset_index(drop=True)


def clustered_pretest(res: AttGtResult, anticipation: int) -> dict:
    """Wald pre-test over cells before the anticipation periods, cluster-robust.

    R's ``did`` reports no Wald pre-test when clustering with the bootstrap; the analytic
    cluster-robust covariance of the ATT(g,t) (influence functions summed within clusters,
    ``S'S / n^2``) gives one: ``W = b' V^-1 b``, chi-squared with as many degrees of freedom
    as cells.

    Parameters
    ----------
    res : AttGtResult
        Fitted with ``clustervars``.
    anticipation : int

    Returns
    -------
    dict
        ``statistic``, ``df``, ``pvalue`` (None when the covariance is singular or there are
        no pre-period cells).
    """
    from scipy.stats import chi2

    d = res.data
    if d.unit_cluster is None:
        return res.pretest(exclude_anticipation=True)
    zero_se = res.zero_se if res.zero_se is not None else np.isnan(res.se)
    pre = np.flatnonzero((res.group - anticipation > res.time) & ~zero_se)
    none = {"statistic": None, "df": None, "pvalue": None}
    if len(pre) == 0:
        return none
    S = res.influence.cluster_sums(d.unit_cluster, d.n_clusters)[:, pre]
    V = S.T @ S / res.n ** 2
    if not np.all(np.isfinite(V)) or np.linalg.matrix_rank(V) < len(pre):
        return none
    b = res.att[pre]
    W = float(b @ np.linalg.solve(V, b))
    return {"statistic": W, "df": int(len(pre)), "pvalue": float(chi2.sf(W, len(pre)))}


def event_study(analysed: pd.DataFrame, admissions: str | None = None,
                spells: pd.DataFrame | None = None, *, seed: int = DEFAULT_SEED,
                cluster_col: str | None = None) -> dict:
    """Event-study ATTs, pre-trend test and the overall post-index effect record.

    Parameters
    ----------
    analysed : pandas.DataFrame
        The analysed matched rows (see :func:`monthly_panel`).
    admissions, spells
        The admissions (Parquet path or frame).
    seed : int, default ``phm_eval.DEFAULT_SEED`` (1)
        Seed of the multiplier bootstrap.
    cluster_col : str, optional
        Cluster of the standard errors; default ``match_cluster`` when ``analysed`` has it
        (matched sets joined where they share a person), otherwise ``patient_id``.

    Returns
    -------
    dict
        ``effect`` (the record), ``pretrend`` (the test, with ``informative: false`` and why),
        ``plot``, ``result`` and ``dynamic``.
    """
    if cluster_col is None:
        cluster_col = "match_cluster" if "match_cluster" in analysed.columns else "patient_id"
    panel = monthly_panel(analysed, admissions, spells, cluster_col=cluster_col)
    res = att_gt(panel, yname="y", tname="period", idname="row_id", gname="g",
                 control_group="nevertreated", est_method="reg", base_period="universal",
                 anticipation=ANTICIPATION, allow_unbalanced_panel=True, bstrap=True,
                 biters=999, seed=seed, clustervars=cluster_col)
    dynamic = res.aggregate("dynamic")
    # The overall effect compares the mean of the 12 post-index months with the mean of the 12
    # months before, as a two-period DiD through the same engine: a single base month (as the
    # event-study coefficients use) is too noisy to summarise the effect.
    two = panel.assign(period=np.where(panel["month"] < 0, 1, 2)).groupby(
        ["row_id", cluster_col, "period", "g"], as_index=False)["y"].mean()
    two["g"] = np.where(two["g"] > 0, 2, 0)
    res2 = att_gt(two, yname="y", tname="period", idname="row_id", gname="g",
                  control_group="nevertreated", est_method="reg", bstrap=False,
                  allow_unbalanced_panel=True, clustervars=cluster_col)
    post = res2.aggregate("simple")
    scale = 12 * 1000  # per person-month -> per 1,000 person-years
    est, se = post.overall_att * scale, post.overall_se * scale
    n_t = int(analysed["treated"].sum())
    n_clusters = int(analysed[cluster_col].nunique())
    how = "analytic influence-function"
    se_note = ""
    if cluster_col != "patient_id":
        # As for the matched before/after DiD (effects.did_before_after): the larger of the
        # matched-set and the person clustering, since set-clustered DiD SEs ran small.
        by_person = att_gt(two.merge(analysed[["row_id", "patient_id"]], on="row_id"),
                           yname="y", tname="period", idname="row_id", gname="g",
                           control_group="nevertreated", est_method="reg", bstrap=False,
                           allow_unbalanced_panel=True, clustervars="patient_id")
        person_se = by_person.aggregate("simple").overall_se * scale
        if person_se > se:
            se_note = (f": larger than clustering on {cluster_words(cluster_col)}, so used "
                       "(the larger of the two)")
            se, n_clusters, se_cluster = person_se, int(analysed["patient_id"].nunique()), \
                "patient_id"
        else:
            se_note = " (not smaller than clustering on the person; the larger is used)"
            se_cluster = cluster_col
    else:
        se_cluster = cluster_col
    effect = {
        "outcome": "emergency admissions per 1,000 person-years",
        "method": "difference in differences, 12 months before vs after (Callaway & Sant'Anna "
                  "engine, matched)",
        "estimate": est, "ci_low": est - 1.96 * se, "ci_high": est + 1.96 * se,
        "scale": "ATT", "n_treated": n_t, "n_control": int(len(analysed) - n_t),
        "label": "average change in admissions per 1,000 person-years, enrolled vs comparators",
        "subgroup": None,
        "se_method": f"{se_words(se_cluster, n_clusters, how=how)}{se_note} (rows are "
                     f"person-index dates: {len(analysed)} rows of "
                     f"{analysed['patient_id'].nunique()} people)",
        "n_clusters": n_clusters,
    }
    n_clusters = int(analysed[cluster_col].nunique())
    pre = clustered_pretest(res, ANTICIPATION)
    pretrend = {"statistic": pre["statistic"], "df": pre["df"], "p_value": pre["pvalue"],
                "test": "Wald test that the monthly ATT(g,t) of months -12 to -3 are zero "
                        "(event study against base month -2; month -1, when enrolment "
                        "happens, excluded), with the cluster-robust covariance of the "
                        "influence functions",
                "informative": False, "why": PRETREND_NOT_INFORMATIVE,
                "se_method": se_words(cluster_col, n_clusters,
                                      how="analytic influence-function"),
                "n_clusters": n_clusters}
    return {"effect": effect, "pretrend": pretrend, "plot": dynamic.plot, "result": res,
            "dynamic": dynamic}
