"""Evaluate stage: matched comparison, survival with competing death, rates, DiD, regression to
the mean, subgroups; effects.json and figures."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..disclosure import apply_disclosure
from ..errors import EstimationError
from ..evaluate import effects as fx
from ..evaluate.design import Eligibility, build_cohort
from ..evaluate.event_study import event_study
from ..evaluate.outcomes import follow_up
from ..evaluate.plots import forest_plot, rtm_plot
from ..matching import NearestNeighborMatcher
from ..plotting import describe_figure, phm_style, save_figure, set_titles
from .common import output, policy, write_json

log = logging.getLogger(__name__)
COVARIATES = ["age", "efi_deficits", "n_emergency_admissions_1y", "n_emergency_admissions_2y",
              "bed_days_1y", "n_ltc", "n_medications", "hfrs", "imd_decile", "female",
              "ltc_copd", "ltc_heart_failure", "ltc_dementia", "ltc_diabetes"]


def run(smk) -> None:
    cfg = smk.config
    ev = cfg.get("evaluate", {})
    study = cfg["study"]
    inp = smk.input
    tables = {k: inp[k] for k in ("patients", "events", "admissions", "practices",
                                  "interventions", "rollout")}
    elig_cfg = ev.get("eligibility", {})
    eligibility = Eligibility(**elig_cfg) if elig_cfg else Eligibility()
    cohort = build_cohort(tables, study["programme"], eligibility,
                          codelist_dir=cfg["codelists"]["directory"],
                          study_end=study["study_end"])
    rows = cohort.rows.copy()
    rows["female"] = (rows["sex"] == "F").astype(int)
    rows["imd_decile"] = rows["imd_decile"].fillna(rows["imd_decile"].median())

    match_cfg = ev.get("matching", {})
    exact = ["index_month_code", *match_cfg.get("exact", [])]
    matcher = NearestNeighborMatcher(ratio=int(match_cfg.get("ratio", 1)),
                                     caliper=match_cfg.get("caliper", 0.2), exact=exact,
                                     random_state=int(ev.get("seed", 1)))
    result = matcher.fit(rows, "treated", COVARIATES)
    matched = result.matched_data().copy()
    fx.check_matched(matched)
    # Comparators take the enrolment date of the enrolled patient in their matched set.
    index_of_set = matched[matched["treated"] == 1].set_index("subclass")["enrolment_date"]
    matched["index_date"] = np.where(matched["treated"] == 1, matched["enrolment_date"],
                                     matched["subclass"].map(index_of_set))
    matched["row_id"] = np.arange(len(matched))
    analysed = follow_up(matched, inp.patients, inp.admissions, study["study_end"],
                         int(ev.get("follow_up_days", 365)), int(ev.get("lookback_days", 365)))

    records: list[dict] = []
    headline = fx.rate_ratio(analysed, label="emergency admissions, rate ratio")
    comparators = analysed[analysed["treated"] == 0]
    baseline = 1000 * comparators["emergency_admissions"].sum() / comparators["person_years"].sum()
    head = headline.to_dict() | {"headline": True, "baseline_rate_per_1000": baseline}
    records.append(head)
    records.append(fx.cox_hazard_ratio(analysed, 1, "first emergency admission",
                                       "patient_id").to_dict())
    records.append(fx.fine_gray(analysed).to_dict())
    records.append(fx.cox_hazard_ratio(analysed, 2, "death", "patient_id").to_dict()
                   | {"label": "mortality hazard ratio (emergency admission not censoring)"})
    for outcome in ("bed_days", "readmissions_30d"):
        try:
            records.append(fx.rate_ratio(analysed, outcome, label=f"{outcome} rate ratio")
                           .to_dict())
        except Exception as exc:
            log.warning("rate ratio for %s not estimable: %s", outcome, exc)
    did, rtm = fx.did_before_after(analysed)
    records.append(did.to_dict())
    naive = fx.naive_before_after(analysed)
    records.append(naive.to_dict())

    # Subgroups: frailty, Core20, age band.
    analysed["age_group"] = np.where(analysed["age"] >= 80, "80+", "65-79")
    analysed["core20_group"] = np.where(analysed["core20"] == 1, "Core20", "not Core20")
    for column in ("efi_group", "core20_group", "age_group"):
        for level, sub in analysed.groupby(column):
            if sub["treated"].sum() >= 20 and (sub["treated"] == 0).sum() >= 20:
                try:
                    records.append(fx.rate_ratio(sub, subgroup=f"{column}={level}",
                                                 label=f"{level}").to_dict())
                except Exception as exc:
                    log.warning("subgroup %s=%s not estimable: %s", column, level, exc)

    try:
        study_panel = event_study(analysed, inp.admissions, seed=int(ev.get("seed", 1)))
        records.append(study_panel["effect"])
        write_json(output(smk, "pretrend.json"), study_panel["pretrend"])
    except EstimationError as exc:
        # Too few matched patients for the monthly event study: say so rather than fail.
        log.warning("event study not estimable: %s", exc)
        study_panel = None
        write_json(output(smk, "pretrend.json"), {"statistic": None, "df": None,
                                                  "p_value": None, "note": str(exc)})
    write_json(output(smk, "effects.json"), records)

    # Tables for humans, disclosure-controlled.
    pol = policy(smk)
    rtm_shown = apply_disclosure(
        rtm, pol, count_cols=["patients", "admissions_before", "admissions_after"],
        rate_cols={"rate_before_per_1000": ("admissions_before", "person_years_before", 1000),
                   "rate_after_per_1000": ("admissions_after", "person_years_after", 1000)},
    )
    rtm_out = rtm_shown.table.drop(columns=["person_years_before", "person_years_after"])
    rtm_out["change_per_1000"] = rtm_out["rate_after_per_1000"] - rtm_out["rate_before_per_1000"]
    rtm_out = rtm_out.round(1)
    rtm_out.to_csv(output(smk, "rtm.csv"), index=False)
    balance = result.balance().reset_index()
    balance.round(4).to_csv(output(smk, "balance.csv"), index=False)
    flow = pd.DataFrame(cohort.flow + [
        {"arm": "enrolled", "step": "matched", "reason": "matched to a comparator",
         "n": int(matched["treated"].sum())},
        {"arm": "comparator", "step": "matched", "reason": "matched comparators",
         "n": int((matched["treated"] == 0).sum())},
    ])
    flow_shown = apply_disclosure(flow, pol, count_cols=["n"])
    flow_shown.formatted().to_csv(output(smk, "flow.csv"), index=False)

    _figures(smk, result, analysed, records, rtm_out, naive, did, study_panel)
    log.info("headline rate ratio %.3f (%.3f-%.3f); naive %.3f", headline.estimate,
             headline.ci_low, headline.ci_high, naive.estimate)


def _figures(smk, result, analysed, records, rtm_out, naive, did, study_panel) -> None:
    from lifelines import KaplanMeierFitter

    with phm_style():
        ax = result.plot()
        alt = describe_figure(ax.figure, summary="Standardised mean differences before and "
                                                 "after matching.")
        save_figure(ax.figure, output(smk, "love_plot.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for arm, label in ((1, "Enrolled"), (0, "Matched comparators")):
            sub = analysed[analysed["treated"] == arm]
            km = KaplanMeierFitter(label=label).fit(sub["time_days"], sub["event"] == 1)
            km.plot_survival_function(ax=ax, ci_show=True)
        ax.set_xlabel("Days since index date")
        ax.set_ylabel("Free of emergency admission")
        set_titles(ax, "Time to first emergency admission", subtitle="Kaplan-Meier, deaths "
                                                                       "censored")
        alt = describe_figure(fig, summary="Kaplan-Meier curves of time to first emergency "
                                           "admission by arm.")
        save_figure(fig, output(smk, "km.png").with_suffix(""), alt_text=alt)
        plt.close(fig)

        cif = fx.cumulative_incidence_curves(analysed)
        ax = cif.plot()
        set_titles(ax, "Cumulative incidence", subtitle="Aalen-Johansen; death competes with "
                                                        "admission")
        alt = describe_figure(ax.figure, summary="Cumulative incidence of first emergency "
                                                 "admission and of death by arm.")
        save_figure(ax.figure, output(smk, "cif.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)

        ax = forest_plot([r for r in records if r.get("subgroup") != "all"
                          or r.get("headline")])
        alt = describe_figure(ax.figure, summary="Rate ratios of emergency admissions overall "
                                                 "and by subgroup.")
        save_figure(ax.figure, output(smk, "forest.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)

        ax = rtm_plot(rtm_out, naive, did)
        alt = describe_figure(ax.figure, summary="Admission rates before and after the index "
                                                 "date for enrolled patients and comparators.")
        save_figure(ax.figure, output(smk, "rtm.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)

        if study_panel is None:
            fig, ax = plt.subplots(figsize=(6, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, "Event study not estimable: too few matched patients",
                    ha="center", va="center")
        else:
            ax = study_panel["plot"]()
        alt = describe_figure(ax.figure, summary="Event study of monthly emergency admissions "
                                                 "relative to the index date.")
        save_figure(ax.figure, output(smk, "event_study.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)
