"""Effect estimates on the matched cohort, each as a record for ``effects.json``.

Records: ``{outcome, method, estimate, ci_low, ci_high, scale, n_treated, n_control}`` plus
``label``, ``subgroup``, ``fallback`` and ``note`` and, for the headline, ``headline: true`` and
``baseline_rate_per_1000`` (comparators' emergency admissions per 1,000 person-years), so a rate
ratio can be read as admissions avoided.

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

from ..errors import EstimationError
from ..survival import (
    CumulativeIncidenceFitter,
    FineGrayFitter,
    NegativeBinomialRateModel,
    RobustCoxPHFitter,
)
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


OUTCOME_NAMES = {"emergency_admissions": "emergency admissions",
                 "bed_days": "emergency bed days",
                 "readmissions_30d": "emergency readmissions within 30 days"}


def not_estimable(outcome: str, method: str, scale: str, reason: str, df: pd.DataFrame | None,
                  label: str = "", subgroup: str | None = None) -> Effect:
    """A record for an estimate that could not be made: estimate and interval null (NaN here,
    ``None`` in JSON), ``note`` the reason in words."""
    nt, nc = _counts(df) if df is not None else (0, 0)
    return Effect(outcome, method, float("nan"), float("nan"), float("nan"), scale, nt, nc,
                  label, subgroup, None, None, f"not estimable: {reason}")


def rate_ratio(df: pd.DataFrame, outcome: str = "emergency_admissions",
               subgroup: str | None = None, label: str = "",
               adjust: list[str] | None = None, cluster: str = "patient_id") -> Effect:
    """Rate ratio, treated vs comparators, log person-time offset, SEs clustered on
    ``cluster`` (the person); optionally adjusted for baseline covariates (``adjust``).

    The model is a negative binomial (NB2) GLM. When its dispersion is not positive (the
    counts are not overdispersed) or cannot be estimated, the same model (same covariates,
    offset and clustering) is fitted as a Poisson GLM with cluster-robust (sandwich) standard
    errors, which are valid whatever the dispersion; ``method`` then says so and ``fallback``
    gives the reason.

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
    fallback = None
    try:
        model = NegativeBinomialRateModel().fit(data, **spec)
        method = f"negative binomial rate ratio ({detail})"
    except DispersionError as exc:
        model = PoissonRateModel().fit(data, **spec)
        method = f"Poisson rate ratio, robust SEs ({exc.reason}; {detail})"
        fallback = (f"negative binomial not used ({exc}): the same model (covariates, log "
                    "person-time offset) fitted as a Poisson regression with standard errors "
                    f"robust to the counts' dispersion, clustered on {cluster.replace('_', ' ')}")
        log.warning("%s: %s", label or outcome, fallback)
    rr = model.rate_ratio("treated")
    nt, nc = _counts(df)
    return Effect(OUTCOME_NAMES.get(outcome, outcome), method,
                  rr["rate_ratio"],
                  rr["lower"], rr["upper"], "RR", nt, nc, label or f"{outcome} rate ratio",
                  subgroup, rr["p"], fallback)


def cox_hazard_ratio(df: pd.DataFrame, event_code: int, outcome: str, cluster: str) -> Effect:
    """Cause-specific Cox hazard ratio (other events censored), cluster-robust SE."""
    data = df[["time_days", "event", "treated", cluster]].copy()
    data["e"] = (data["event"] == event_code).astype(int)
    fitter = RobustCoxPHFitter().fit(data[["time_days", "e", "treated", cluster]], "time_days",
                                     "e", covariates=["treated"], cluster_col=cluster)
    row = fitter.summary.loc["treated"]
    nt, nc = _counts(df)
    effect = Effect(outcome, "Cox proportional hazards (cause-specific, matched)",
                    float(row["exp(coef)"]), float(row["exp(coef) lower 95%"]),
                    float(row["exp(coef) upper 95%"]), "HR", nt, nc,
                    f"{outcome} hazard ratio", None, float(row["p"]))
    try:
        ph = fitter.check_proportional_hazards("km")
        effect.__dict__["ph_test_p"] = float(ph.loc["treated", "p"])
    except Exception as exc:  # the PH check is a diagnostic; never fatal
        log.warning("proportional-hazards check failed: %s", exc)
    return effect


def fine_gray(df: pd.DataFrame) -> Effect:
    """Fine-Gray subdistribution hazard ratio of first emergency admission (death competing)."""
    fitter = FineGrayFitter().fit(df[["time_days", "event", "treated", "patient_id"]],
                                  "time_days", "event", event_of_interest=1,
                                  covariates=["treated"], cluster_col="patient_id")
    row = fitter.summary.loc["treated"]
    nt, nc = _counts(df)
    return Effect("first emergency admission", "Fine-Gray subdistribution hazards (matched)",
                  float(row["exp(coef)"]), float(row["exp(coef) lower 95%"]),
                  float(row["exp(coef) upper 95%"]), "SHR", nt, nc,
                  "first emergency admission, death as competing risk", None, float(row["p"]))


def did_before_after(df: pd.DataFrame) -> tuple[Effect, pd.DataFrame]:
    """Two-period difference in differences of emergency admission rates (per 1,000
    person-years), enrolled vs matched comparators, with SEs clustered on the person.

    Returns the effect and the before/after table that shows regression to the mean.
    """
    long = pd.concat([
        pd.DataFrame({"patient_id": df["patient_id"], "treated": df["treated"], "post": 0,
                      "rate": 1000 * df["emergency_admissions_before"] / df["person_years_before"],
                      "w": df["person_years_before"]}),
        pd.DataFrame({"patient_id": df["patient_id"], "treated": df["treated"], "post": 1,
                      "rate": 1000 * df["emergency_admissions"] / df["person_years"],
                      "w": df["person_years"]}),
    ], ignore_index=True)
    long["treated_post"] = long["treated"] * long["post"]
    X = sm.add_constant(long[["treated", "post", "treated_post"]].astype(float))
    groups = pd.factorize(long["patient_id"])[0]
    fit = sm.WLS(long["rate"], X, weights=long["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    est, se = float(fit.params["treated_post"]), float(fit.bse["treated_post"])
    nt, nc = _counts(df)
    effect = Effect("emergency admissions per 1,000 person-years",
                    "difference in differences (matched, before vs after)", est,
                    est - 1.96 * se, est + 1.96 * se, "difference", nt, nc,
                    "change in emergency admission rate, enrolled minus comparators", None,
                    float(fit.pvalues["treated_post"]))
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
    mean): Poisson rate ratio after vs before with a person-clustered SE."""
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
    return Effect("emergency admissions", "naive before/after (enrolled only, uncontrolled)",
                  float(np.exp(b)), float(np.exp(b - 1.96 * se)), float(np.exp(b + 1.96 * se)),
                  "RR", len(t), 0, "naive before/after rate ratio (biased: regression to the "
                  "mean)", None, float(fit.pvalues["post"]))


def cumulative_incidence_curves(df: pd.DataFrame) -> CumulativeIncidenceFitter:
    """Aalen-Johansen cumulative incidence of first emergency admission and of death by arm."""
    arm = np.where(df["treated"] == 1, "enrolled", "comparators")
    return CumulativeIncidenceFitter().fit(df["time_days"], df["event"], groups=arm)


def check_matched(df: pd.DataFrame) -> None:
    if df["treated"].sum() < 10 or (df["treated"] == 0).sum() < 10:
        raise EstimationError(
            "fewer than 10 matched patients in an arm: widen the caliper or the eligibility")
