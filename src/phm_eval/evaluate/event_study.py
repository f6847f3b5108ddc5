"""Event study of monthly emergency admissions around the index date on the matched cohort.

Each matched row contributes months -12..-1 before and 0..11 after its index date ("stacked"
event time), with the count of emergency admissions starting in each month while observed.
Enrolled rows are a single group first treated at event month 0 and comparators are never
treated, so the Callaway & Sant'Anna ATT(g,t) of :func:`phm_eval.did.att_gt` are the
event-study coefficients. Enrolment falls within month -1 (the index date is the first of the
following month), so month -1 is partly exposed: it is an anticipation period (``anticipation=1``)
and the reference is month -2 (universal base period). The pre-test asks whether months -12..-3
are jointly zero: R's test would include month -1, where an effect that has already begun would
count as a pre-trend.
The overall ATT (mean of post-index months) is converted to admissions per 1,000 person-years.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..db import connect
from ..definitions import emergency_sql
from ..did import att_gt

MONTH_DAYS = 365.25 / 12
PRE, POST = 12, 12
# Months before the index date already exposed to the programme (enrolment is in month -1).
ANTICIPATION = 1


def monthly_panel(analysed: pd.DataFrame, admissions: str | None = None,
                  spells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Person-month panel: ``row_id, period (1..24), treated, g, y``."""
    con = connect()
    frame = analysed[["row_id", "patient_id", "index_date", "end_date", "treated"]].copy()
    frame["index_date"] = pd.to_datetime(frame["index_date"])
    frame["end_date"] = pd.to_datetime(frame["end_date"])
    con.register("cohort", frame)
    source = "spells" if spells is not None else f"read_parquet('{admissions}')"
    if spells is not None:
        con.register("spells", spells)
    counts = con.execute(
        f"""
        SELECT c.row_id,
               CAST(floor(date_diff('day', CAST(c.index_date AS DATE), a.admission_date)
                          / {MONTH_DAYS}) AS INTEGER) AS month, count(*) AS y
        FROM cohort c JOIN {source} a ON a.patient_id = c.patient_id
        WHERE {emergency_sql("a.admission_method")}
          AND a.admission_date > CAST(c.index_date AS DATE) - {int(PRE * MONTH_DAYS)}
          AND a.admission_date <= CAST(c.end_date AS DATE)
        GROUP BY ALL
        """
    ).df()
    con.close()
    months = np.arange(-PRE, POST)
    panel = frame[["row_id", "treated", "index_date", "end_date"]].merge(
        pd.DataFrame({"month": months}), how="cross")
    observed_months = (panel["end_date"] - panel["index_date"]).dt.days / MONTH_DAYS
    panel = panel[(panel["month"] < 0) | (panel["month"] < observed_months)]
    panel = panel.merge(counts, on=["row_id", "month"], how="left")
    panel["y"] = panel["y"].fillna(0).astype(float)
    panel["period"] = panel["month"] + PRE + 1
    panel["g"] = np.where(panel["treated"] == 1, PRE + 1, 0)
    return panel[["row_id", "period", "month", "treated", "g", "y"]]


def event_study(analysed: pd.DataFrame, admissions: str | None = None, seed: int = 1,
                spells: pd.DataFrame | None = None) -> dict:
    """Event-study ATTs, pre-trend test and the overall post-index effect record."""
    panel = monthly_panel(analysed, admissions, spells)
    res = att_gt(panel, yname="y", tname="period", idname="row_id", gname="g",
                 control_group="nevertreated", est_method="reg", base_period="universal",
                 anticipation=ANTICIPATION, allow_unbalanced_panel=True, bstrap=True,
                 biters=999, seed=seed)
    dynamic = res.aggregate("dynamic")
    # The overall effect compares the mean of the 12 post-index months with the mean of the 12
    # months before, as a two-period DiD through the same engine: a single base month (as the
    # event-study coefficients use) is too noisy to summarise the effect.
    two = panel.assign(period=np.where(panel["month"] < 0, 1, 2)).groupby(
        ["row_id", "period", "g"], as_index=False)["y"].mean()
    two["g"] = np.where(two["g"] > 0, 2, 0)
    res2 = att_gt(two, yname="y", tname="period", idname="row_id", gname="g",
                  control_group="nevertreated", est_method="reg", bstrap=False,
                  allow_unbalanced_panel=True)
    post = res2.aggregate("simple")
    scale = 12 * 1000  # per person-month -> per 1,000 person-years
    est, se = post.overall_att * scale, post.overall_se * scale
    n_t = int(analysed["treated"].sum())
    effect = {
        "outcome": "emergency admissions per 1,000 person-years",
        "method": "difference in differences, 12 months before vs after (Callaway & Sant'Anna "
                  "engine, matched)",
        "estimate": est, "ci_low": est - 1.96 * se, "ci_high": est + 1.96 * se,
        "scale": "ATT", "n_treated": n_t, "n_control": int(len(analysed) - n_t),
        "label": "average change in admissions per 1,000 person-years, enrolled vs comparators",
        "subgroup": None,
    }
    pre = res.pretest(exclude_anticipation=True)
    pretrend = {"statistic": pre["statistic"], "df": pre["df"], "p_value": pre["pvalue"],
                "test": "Wald test that the monthly ATT(g,t) of months -12 to -3 are zero "
                        "(event study against base month -2; month -1, when enrolment "
                        "happens, excluded)"}
    return {"effect": effect, "pretrend": pretrend, "plot": dynamic.plot, "result": res,
            "dynamic": dynamic}
