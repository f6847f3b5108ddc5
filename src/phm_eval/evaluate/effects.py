"""Effect estimates on the matched cohort, each as a record for ``effects.json``.

Records: ``{outcome, method, estimate, ci_low, ci_high, scale, n_treated, n_control}`` plus
``label``, ``subgroup``, ``fallback`` and ``note`` and, for the headline, ``headline: true`` and
``baseline_rate_per_1000`` (comparators' emergency admissions per 1,000 person-years), so a rate
ratio can be read as admissions avoided. ``se_method`` says how the standard error was computed
(which clusters, how many) and ``n_clusters`` counts the clusters.

Standard errors of matched estimates are clustered on the matched set (Abadie & Spiess 2022:
after matching without replacement, a regression on the matched sample with standard errors
clustered on matched sets is valid; ignoring the sets is not). The rate ratios' clustered
standard errors are the leave-one-cluster-out jackknife (CV3J, MacKinnon, Nielsen & Webb
2023), not the cluster sandwich, whose standard errors of this design were about 5 % too
small in simulation (:func:`rate_ratio`). Because a person can be a
candidate in several index months, the same person can sit in more than one matched set; sets
that share a person are joined into one cluster (:func:`matched_set_clusters`), so the clusters
nest both the matched set and the person. The uncertainty of the estimated propensity score is
not propagated (for the ATT, Abadie & Imbens 2016 show that ignoring it can err either way).

``method`` always says what actually ran. ``fallback`` is ``None``, or why the planned method
was replaced (a negative binomial whose dispersion is not positive is refitted as the same
Poisson model with robust standard errors). An estimate that cannot be made is ``null`` with
its reason in ``note`` (see :func:`not_estimable`), never ``NaN``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from ..errors import EstimationError
from ..survival import (
    CumulativeIncidenceFitter,
    FineGrayFitter,
    NegativeBinomialRateModel,
    RobustCoxPHFitter,
)
from ..survival.jackknife import JackknifeError
from ..survival.rates import DispersionError, PoissonRateModel

log = logging.getLogger(__name__)


@dataclass
class Effect:
    outcome: str
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    scale: str
    n_treated: int
    n_control: int
    label: str = ""
    subgroup: str | None = None
    p_value: float | None = None
    fallback: str | None = None
    note: str | None = None
    se_method: str | None = None
    n_clusters: int | None = None

    @property
    def estimable(self) -> bool:
        """False when the estimate could not be made (``note`` says why)."""
        return bool(np.isfinite(self.estimate))

    def to_dict(self) -> dict:
        """JSON-ready (non-finite numbers as None); ``subgroup`` is None for the whole
        matched cohort."""
        out = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
               for k, v in self.__dict__.items()}
        if out.get("subgroup") == "all":
            out["subgroup"] = None
        return out


def _counts(df: pd.DataFrame) -> tuple[int, int]:
    return int(df["treated"].sum()), int((df["treated"] == 0).sum())


#: How each cluster column is described in ``se_method`` and fallback notes.
CLUSTER_WORDS = {
    "patient_id": "the person",
    "match_cluster": "matched sets (sets sharing a person joined into one cluster, so the "
                     "person is nested in it)",
    "matched_set": "matched sets",
}


#: How each clustered variance is named in ``se_method``.
VARIANCE_WORDS = {
    "sandwich": "cluster-robust (sandwich)",
    "jackknife": "cluster jackknife (leave-one-cluster-out refits)",
}


def cluster_words(cluster: str) -> str:
    """Words for a cluster column (its name with spaces if not a known one)."""
    return CLUSTER_WORDS.get(cluster, cluster.replace("_", " "))


def se_words(cluster: str, n_clusters: int, *, how: str = "cluster-robust (sandwich)") -> str:
    """``se_method`` text: the variance estimator, the clusters and their number."""
    text = f"{how} standard errors clustered on {cluster_words(cluster)}; {n_clusters} clusters"
    if cluster in ("match_cluster", "matched_set"):
        text += "; the propensity score is treated as known"
    return text


def matched_set_clusters(df: pd.DataFrame, *, set_col: str = "matched_set",
                         person_col: str = "patient_id") -> pd.Series:
    """Cluster identifiers that nest both the matched set and the person.

    Matched sets are linked when they share a person (a comparator matched in two index
    months, or a comparator in one month enrolled in a later one); each connected component of
    the set-person graph is one cluster. Without repeated people every matched set is its own
    cluster.

    Parameters
    ----------
    df : pandas.DataFrame
        Matched rows with ``set_col`` and ``person_col``.
    set_col, person_col : str

    Returns
    -------
    pandas.Series
        Integer cluster codes (0, 1, ...), aligned with ``df``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    sets = pd.factorize(df[set_col])[0]
    people = pd.factorize(df[person_col])[0]
    if (sets < 0).any() or (people < 0).any():
        raise EstimationError(f"missing {set_col} or {person_col} in the matched data")
    n_sets = int(sets.max()) + 1
    n_nodes = n_sets + int(people.max()) + 1
    graph = coo_matrix((np.ones(len(df)), (sets, n_sets + people)), shape=(n_nodes, n_nodes))
    _, label = connected_components(graph, directed=False)
    codes = pd.factorize(label[sets])[0]
    return pd.Series(codes, index=df.index, name="match_cluster")


OUTCOME_NAMES = {"emergency_admissions": "emergency admissions",
                 "bed_days": "emergency bed days",
                 "readmissions_30d": "emergency readmissions within 30 days"}


def not_estimable(outcome: str, method: str, scale: str, reason: str, df: pd.DataFrame | None,
                  *, label: str = "", subgroup: str | None = None) -> Effect:
    """A record for an estimate that could not be made: estimate and interval null (NaN here,
    ``None`` in JSON), ``note`` the reason in words."""
    nt, nc = _counts(df) if df is not None else (0, 0)
    return Effect(outcome, method, float("nan"), float("nan"), float("nan"), scale, nt, nc,
                  label, subgroup, None, None, f"not estimable: {reason}")


def rate_ratio(df: pd.DataFrame, outcome: str = "emergency_admissions", *,
               subgroup: str | None = None, label: str = "",
               adjust: list[str] | None = None, cluster: str = "patient_id",
               cluster_variance: str = "jackknife") -> Effect:
    """Rate ratio, treated vs comparators, log person-time offset, clustered SEs.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per analysed person-index with ``treated``, the count ``outcome``,
        ``person_years`` and the ``cluster`` column.
    outcome : str
        Count column.
    subgroup, label : str, optional
        Copied to the record.
    adjust : list of str, optional
        Baseline covariates to adjust for (those constant in ``df`` are dropped).
    cluster : str, default "patient_id"
        Cluster column of the variance: ``match_cluster`` (matched sets, see
        :func:`matched_set_clusters`) for matched estimates.
    cluster_variance : {"jackknife", "sandwich"}, default "jackknife"
        The leave-one-cluster-out jackknife (CV3J), or the cluster sandwich (CV1). The
        jackknife is the default because the sandwich's standard errors of this design were
        about 5 % smaller than the spread of its estimates over 500 simulated evaluations
        (``docs/validation/coverage.md``): with a few hundred matched sets, a few sets with
        many admissions carry much of the information, which biases CV1 downwards.

    Returns
    -------
    Effect
        ``se_method`` names the clusters and their number.

    Notes
    -----
    The model is a negative binomial (NB2) GLM. When its dispersion is not positive (the
    counts are not overdispersed) or cannot be estimated, the same model (same covariates,
    offset and clustering) is fitted as a Poisson GLM with cluster-robust (sandwich) standard
    errors, which are valid whatever the dispersion; ``method`` then says so and ``fallback``
    gives the reason. When a leave-one-cluster-out refit does not exist (without that cluster
    an arm or covariate level has no events), the cluster sandwich replaces the jackknife;
    ``fallback`` says so and ``se_method`` names the sandwich.

    Raises
    ------
    EstimationError
        If neither model can be fitted (the caller records it as not estimable).
    """
    covariates = ["treated", *[c for c in (adjust or []) if df[c].nunique() > 1]]
    data = df[[outcome, "person_years", cluster, *covariates]].copy()
    data[covariates] = data[covariates].astype(float)
    spec = dict(count_col=outcome, person_time_col="person_years", covariates=covariates,
                cluster_col=cluster)
    detail = "matched" + (", adjusted" if adjust else "")
    notes = []
    variance = cluster_variance

    def fit(model_class):
        nonlocal variance
        try:
            return model_class(cluster_variance=variance).fit(data, **spec)
        except JackknifeError as exc:
            if variance != "jackknife":
                raise
            # The refits without some cluster do not exist (e.g. its arm has no events
            # left): the sandwich, which needs no refits, is used and the record says so.
            variance = "sandwich"
            notes.append(f"cluster jackknife not used ({exc}): cluster-robust sandwich "
                         "standard errors instead")
            return model_class(cluster_variance=variance).fit(data, **spec)

    try:
        model = fit(NegativeBinomialRateModel)
        method = f"negative binomial rate ratio ({detail})"
    except DispersionError as exc:
        model = fit(PoissonRateModel)
        method = f"Poisson rate ratio, robust SEs ({exc.reason}; {detail})"
        notes.insert(0, f"negative binomial not used ({exc}): the same model (covariates, "
                        "log person-time offset) fitted as a Poisson regression with standard "
                        "errors robust to the counts' dispersion, clustered on "
                        f"{cluster_words(cluster)}")
    fallback = "; ".join(notes) or None
    if fallback:
        log.warning("%s: %s", label or outcome, fallback)
    rr = model.rate_ratio("treated")
    nt, nc = _counts(df)
    n_clusters = int(df[cluster].nunique())
    return Effect(OUTCOME_NAMES.get(outcome, outcome), method,
                  rr["rate_ratio"],
                  rr["lower"], rr["upper"], "RR", nt, nc, label or f"{outcome} rate ratio",
                  subgroup, rr["p"], fallback, None,
                  se_words(cluster, n_clusters, how=VARIANCE_WORDS[variance]), n_clusters)


def cox_hazard_ratio(df: pd.DataFrame, event_code: int, outcome: str, cluster: str,
                     *, strata: str | None = None) -> Effect:
    """Cause-specific Cox hazard ratio (other events censored), cluster-robust SE.

    Parameters
    ----------
    df : pandas.DataFrame
        Analysed rows with ``time_days``, ``event`` (0 censored, 1 admission, 2 death),
        ``treated`` and the ``cluster`` (and ``strata``) columns.
    event_code : int
        The event of interest; other events are censored.
    outcome : str
    cluster : str
        Cluster column of the robust variance.
    strata : str, optional
        Stratify on this column (a baseline hazard per matched set, R's ``strata()``): the
        hazard ratio then compares each enrolled patient only with their own comparators.

    Returns
    -------
    Effect
        With ``ph_test_p`` (the ``cox.zph`` test of ``treated``) when it can be computed.
    """
    cols = ["time_days", "event", "treated", cluster, *([strata] if strata else [])]
    data = df[list(dict.fromkeys(cols))].copy()
    data["e"] = (data["event"] == event_code).astype(int)
    data = data.drop(columns=["event"])
    fitter = RobustCoxPHFitter().fit(data, "time_days", "e", covariates=["treated"],
                                     cluster_col=cluster,
                                     strata=[strata] if strata else None)
    row = fitter.summary.loc["treated"]
    nt, nc = _counts(df)
    if strata:
        method = "Cox proportional hazards stratified on matched sets (cause-specific)"
        label = f"{outcome} hazard ratio within matched sets"
    else:
        method = "Cox proportional hazards (cause-specific, matched)"
        label = f"{outcome} hazard ratio"
    n_clusters = int(df[cluster].nunique())
    effect = Effect(outcome, method,
                    float(row["exp(coef)"]), float(row["exp(coef) lower 95%"]),
                    float(row["exp(coef) upper 95%"]), "HR", nt, nc,
                    label, None, float(row["p"]), None, None,
                    se_words(cluster, n_clusters, how="robust (Lin-Wei sandwich)"), n_clusters)
    if strata:
        effect.__dict__["n_strata"] = int(fitter.n_strata_)
    try:
        ph = fitter.check_proportional_hazards("km")
        effect.__dict__["ph_test_p"] = float(ph.loc["treated", "p"])
    except Exception as exc:  # the PH check is a diagnostic; never fatal
        log.warning("proportional-hazards check failed: %s", exc)
    return effect


def fine_gray(df: pd.DataFrame, *, cluster: str = "patient_id") -> Effect:
    """Fine-Gray subdistribution hazard ratio of first emergency admission (death competing),
    robust SE clustered on ``cluster``."""
    cols = list(dict.fromkeys(["time_days", "event", "treated", cluster]))
    fitter = FineGrayFitter().fit(df[cols], "time_days", "event", event_of_interest=1,
                                  covariates=["treated"], cluster_col=cluster)
    row = fitter.summary.loc["treated"]
    nt, nc = _counts(df)
    n_clusters = int(df[cluster].nunique())
    return Effect("first emergency admission", "Fine-Gray subdistribution hazards (matched)",
                  float(row["exp(coef)"]), float(row["exp(coef) lower 95%"]),
                  float(row["exp(coef) upper 95%"]), "SHR", nt, nc,
                  "first emergency admission, death as competing risk", None, float(row["p"]),
                  None, None, se_words(cluster, n_clusters, how="robust (sandwich)"), n_clusters)


def did_before_after(df: pd.DataFrame, *, cluster: str = "patient_id",
                     conservative_cluster: str | None = None) -> tuple[Effect, pd.DataFrame]:
    """Two-period difference in differences of emergency admission rates (per 1,000
    person-years), enrolled vs matched comparators, with SEs clustered on ``cluster``.

    With ``conservative_cluster`` the standard error is the larger of the two clusterings'.
    Clustering on matched sets credits the DiD with the within-set balance of the pre-period
    rates that matching creates; in simulations (60 synthetic PCNs of 20,000 patients) that
    standard error was about 12 % smaller than the estimates' spread (coverage 0.88), while
    clustering on the person was about 15 % larger (0.98). The pipeline therefore reports the
    larger, and ``se_method`` says which was used.

    Each row contributes its rate before (look-back) and after (follow-up) the index date,
    weighted by its person-time in that period. The model (treated, post, treated x post) is
    saturated, so the estimate is the person-time-weighted (pooled) rates' difference in
    differences: (admissions / person-years) after minus before, enrolled minus comparators,
    exactly the rates of :func:`rtm_table`.

    Returns
    -------
    tuple of (Effect, pandas.DataFrame)
        The effect and the before/after table that shows regression to the mean.
    """
    long = pd.concat([
        pd.DataFrame({"cl": df[cluster], "treated": df["treated"], "post": 0,
                      "rate": 1000 * df["emergency_admissions_before"] / df["person_years_before"],
                      "w": df["person_years_before"]}),
        pd.DataFrame({"cl": df[cluster], "treated": df["treated"], "post": 1,
                      "rate": 1000 * df["emergency_admissions"] / df["person_years"],
                      "w": df["person_years"]}),
    ], ignore_index=True)
    long["treated_post"] = long["treated"] * long["post"]
    X = sm.add_constant(long[["treated", "post", "treated_post"]].astype(float))
    groups = pd.factorize(long["cl"])[0]
    fit = sm.WLS(long["rate"], X, weights=long["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    est, se = float(fit.params["treated_post"]), float(fit.bse["treated_post"])
    n_clusters = int(groups.max()) + 1
    se_method = se_words(cluster, n_clusters, how="cluster-robust (sandwich, WLS)")
    if conservative_cluster is not None and conservative_cluster != cluster:
        other_groups = pd.factorize(pd.concat([df[conservative_cluster]] * 2,
                                              ignore_index=True))[0]
        other = sm.WLS(long["rate"], X, weights=long["w"]).fit(
            cov_type="cluster", cov_kwds={"groups": other_groups})
        other_se = float(other.bse["treated_post"])
        n_other = int(other_groups.max()) + 1
        if other_se > se:
            se, n_clusters = other_se, n_other
            se_method = (se_words(conservative_cluster, n_other,
                                  how="cluster-robust (sandwich, WLS)")
                         + f": larger than clustering on {cluster_words(cluster)}, so used "
                         "(the larger of the two; set-clustered DiD SEs were too small in "
                         "simulations)")
        else:
            se_method += (f" (not smaller than clustering on "
                          f"{cluster_words(conservative_cluster)}; the larger is used)")
    z = est / se
    p_value = float(2 * stats.norm.sf(abs(z)))
    nt, nc = _counts(df)
    effect = Effect("emergency admissions per 1,000 person-years",
                    "difference in differences (matched, before vs after)", est,
                    est - 1.96 * se, est + 1.96 * se, "difference", nt, nc,
                    "change in emergency admission rate, enrolled minus comparators", None,
                    p_value, None, None, se_method, n_clusters)
    table = rtm_table(df)
    return effect, table


def rtm_table(df: pd.DataFrame) -> pd.DataFrame:
    """Emergency admissions per 1,000 person-years before and after the index date, by arm."""
    rows = []
    for arm, sub in df.groupby("treated"):
        before = 1000 * sub["emergency_admissions_before"].sum() / sub["person_years_before"].sum()
        after = 1000 * sub["emergency_admissions"].sum() / sub["person_years"].sum()
        rows.append({"arm": "enrolled" if arm == 1 else "matched comparators",
                     "patients": len(sub),
                     "admissions_before": int(sub["emergency_admissions_before"].sum()),
                     "person_years_before": float(sub["person_years_before"].sum()),
                     "admissions_after": int(sub["emergency_admissions"].sum()),
                     "person_years_after": float(sub["person_years"].sum()),
                     "rate_before_per_1000": before, "rate_after_per_1000": after,
                     "change_per_1000": after - before})
    return pd.DataFrame(rows)


def naive_before_after(df: pd.DataFrame) -> Effect:
    """The uncontrolled before/after change among the enrolled (biased by regression to the
    mean): Poisson rate ratio after vs before with a person-clustered SE.

    The look-back ``(index - lookback_days, index]`` and the follow-up ``(index, end]`` are
    adjacent and of the same length (the shared definitions' windows); each period's
    person-time is its offset.
    """
    t = df[df["treated"] == 1]
    long = pd.concat([
        pd.DataFrame({"pid": t["patient_id"], "post": 0, "y": t["emergency_admissions_before"],
                      "py": t["person_years_before"]}),
        pd.DataFrame({"pid": t["patient_id"], "post": 1, "y": t["emergency_admissions"],
                      "py": t["person_years"]}),
    ], ignore_index=True)
    X = sm.add_constant(long[["post"]].astype(float))
    fit = sm.GLM(long["y"], X, family=sm.families.Poisson(), offset=np.log(long["py"])).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(long["pid"])[0]})
    b, se = float(fit.params["post"]), float(fit.bse["post"])
    n_clusters = int(t["patient_id"].nunique())
    return Effect("emergency admissions", "naive before/after (enrolled only, uncontrolled)",
                  float(np.exp(b)), float(np.exp(b - 1.96 * se)), float(np.exp(b + 1.96 * se)),
                  "RR", len(t), 0, "naive before/after rate ratio (biased: regression to the "
                  "mean)", None, float(fit.pvalues["post"]), None, None,
                  se_words("patient_id", n_clusters, how="cluster-robust (sandwich, Poisson)"),
                  n_clusters)


def cumulative_incidence_curves(df: pd.DataFrame) -> CumulativeIncidenceFitter:
    """Aalen-Johansen cumulative incidence of first emergency admission and of death by arm."""
    arm = np.where(df["treated"] == 1, "enrolled", "comparators")
    return CumulativeIncidenceFitter().fit(df["time_days"], df["event"], groups=arm)


def check_matched(df: pd.DataFrame) -> None:
    if df["treated"].sum() < 10 or (df["treated"] == 0).sum() < 10:
        raise EstimationError(
            "fewer than 10 matched patients in an arm: widen the caliper or the eligibility")
