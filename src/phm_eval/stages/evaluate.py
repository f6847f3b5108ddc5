"""Evaluate stage: runs :func:`phm_eval.evaluate.pipeline.evaluate_programme` and writes
effects.json, disclosure-controlled tables and figures."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np

from ..disclosure import apply_disclosure
from ..disclosure.release import disclose_json
from ..disclosure.survival_figures import disclosed_step_tables, plot_disclosed_curves
from ..errors import EstimationError
from ..evaluate.design import Eligibility
from ..evaluate.pipeline import evaluate_programme
from ..evaluate.plots import forest_plot, rtm_plot
from ..plotting import describe_figure, phm_style, save_figure, set_titles
from ..report.effects import not_estimable_text
from .common import output, policy, write_disclosed, write_json

log = logging.getLogger(__name__)


def run(smk) -> None:
    ev = smk.params.evaluate
    study = smk.params.study
    inp = smk.input
    tables = {k: inp[k] for k in ("patients", "events", "admissions", "practices",
                                  "interventions", "rollout")}
    elig = ev.get("eligibility")
    try:
        result = evaluate_programme(
            tables, study["programme"], study["study_end"],
            eligibility=Eligibility(**elig) if elig else None,
            matching=ev.get("matching"), follow_up_days=int(ev.get("follow_up_days", 365)),
            lookback_days=int(ev.get("lookback_days", 365)),
            codelist_dir=smk.params.codelists, seed=int(ev.get("seed", 1)),
        )
    except EstimationError as exc:
        # The design itself cannot be run on these data (too few enrolled or comparators):
        # the run goes on to its report, which says so, instead of stopping here.
        _not_estimable(smk, str(exc))
        return
    pol = policy(smk)
    # Released: counts in the records disclosure-controlled; estimates are statistics.
    write_json(output(smk, "effects.json"), disclose_json(result.records, pol))
    pretrend = (result.study_panel["pretrend"] if result.study_panel else
                {"statistic": None, "df": None, "p_value": None,
                 "note": "event study not estimable (too few matched patients)"})
    write_json(output(smk, "pretrend.json"), pretrend)

    rtm = apply_disclosure(
        result.rtm, pol, count_cols=["patients", "admissions_before", "admissions_after"],
        rate_cols={"rate_before_per_1000": ("admissions_before", "person_years_before", 1000),
                   "rate_after_per_1000": ("admissions_after", "person_years_after", 1000)},
    ).table.drop(columns=["person_years_before", "person_years_after"])
    rtm["change_per_1000"] = rtm["rate_after_per_1000"] - rtm["rate_before_per_1000"]
    rtm = rtm.round(1)
    rtm.to_csv(output(smk, "rtm.csv"), index=False)
    balance = result.matching.balance().reset_index()
    # eCDF maxima describe single people's values: keep them out of human-facing tables.
    balance = balance[[c for c in balance.columns if "max" not in c.lower()]]
    balance.round(4).to_csv(output(smk, "balance.csv"), index=False)
    write_disclosed(apply_disclosure(result.flow, pol, count_cols=["n"]),
                    output(smk, "flow.csv"))
    _figures(smk, result, rtm)
    head = result.headline
    log.info("headline rate ratio %s (%s-%s); naive %s", head["estimate"],
             head["ci_low"], head["ci_high"], result.naive.estimate)


def _not_estimable(smk, reason: str) -> None:
    """Write every output of the stage for a design that could not be estimated: effects.json
    holds one null record with the reason, tables only their headers, figures the reason."""
    note = not_estimable_text(reason)
    log.warning("enrolled-patient evaluation %s", note)
    write_json(output(smk, "effects.json"), [{
        "outcome": "emergency admissions", "method": "matched comparison of enrolled patients",
        "estimate": None, "ci_low": None, "ci_high": None, "scale": "RR", "n": None,
        "primary": True, "fallback": None, "note": note}])
    write_json(output(smk, "pretrend.json"), {"statistic": None, "df": None, "p_value": None,
                                              "note": note})
    headers = {"rtm.csv": "group,patients,rate_before_per_1000,rate_after_per_1000,"
                          "change_per_1000",
               "balance.csv": "covariate", "flow.csv": "step,n",
               "km.csv": "arm,time,n_risk,n_event,n_censor,surv",
               "cif.csv": "arm,time,n_risk,n_event,n_censor,n_competing,surv,cif"}
    for name, header in headers.items():
        output(smk, name).write_text(header + "\n", encoding="utf-8")
    with phm_style():
        for name in ("love_plot.png", "km.png", "cif.png", "forest.png", "rtm.png",
                     "event_study.png"):
            fig, ax = plt.subplots(figsize=(6, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, "Not estimable: " + note.removeprefix("not estimable: "),
                    ha="center", va="center", wrap=True)
            _save(smk, fig, name, f"No figure: the evaluation was {note}.")


def _save(smk, fig, name: str, summary: str) -> None:
    alt = describe_figure(fig, summary=summary)
    save_figure(fig, output(smk, name).with_suffix(""), alt_text=alt)
    plt.close(fig)


def _figures(smk, result, rtm) -> None:
    analysed = result.analysed.assign(
        arm=lambda d: np.where(d["treated"] == 1, "enrolled", "comparators"))
    arms = {"enrolled": "Enrolled", "comparators": "Matched comparators"}
    pol = policy(smk)
    with phm_style():
        ax = result.matching.plot()
        _save(smk, ax.figure, "love_plot.png",
              "Standardised mean differences before and after matching.")

        # Survival figures are drawn only from disclosed (rounded) step tables, which are
        # released beside them.
        km = disclosed_step_tables(analysed, "time_days", "event", "arm", pol, competing=False)
        write_disclosed(km, output(smk, "km.csv"), 4)
        fig, ax = plt.subplots(figsize=(6.5, 4.8))
        plot_disclosed_curves(km, "arm", arms, estimate="surv", ax=ax)
        ax.set_xlabel("Days since the index date")
        ax.set_ylabel("Free of emergency admission (%)")
        set_titles(ax, "Time to first emergency admission",
                   subtitle="Kaplan-Meier from rounded counts; deaths censored")
        fig.subplots_adjust(bottom=0.3)
        _save(smk, fig, "km.png", "Kaplan-Meier curves of time to first emergency admission "
                                  "by arm, from disclosure-controlled counts.")

        cif = disclosed_step_tables(analysed, "time_days", "event", "arm", pol, competing=True)
        write_disclosed(cif, output(smk, "cif.csv"), 4)
        fig, ax = plt.subplots(figsize=(6.5, 4.8))
        plot_disclosed_curves(cif, "arm", arms, estimate="cif", ax=ax)
        ax.set_xlabel("Days since the index date")
        ax.set_ylabel("Had an emergency admission (%)")
        set_titles(ax, "Cumulative incidence of emergency admission",
                   subtitle="Aalen-Johansen from rounded counts; death competes")
        fig.subplots_adjust(bottom=0.3)
        _save(smk, fig, "cif.png", "Cumulative incidence of first emergency admission by arm, "
                                   "with death as a competing event, from "
                                   "disclosure-controlled counts.")

        ax = forest_plot(result.records)
        _save(smk, ax.figure, "forest.png", "Rate ratios of emergency admissions overall and "
                                            "by subgroup.")

        ax = rtm_plot(rtm, result.naive, result.did)
        _save(smk, ax.figure, "rtm.png", "Admission rates before and after the index date for "
                                         "enrolled patients and comparators.")

        if result.study_panel is None:
            fig, ax = plt.subplots(figsize=(6, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, "Event study not estimable: too few matched patients",
                    ha="center", va="center")
        else:
            ax = result.study_panel["plot"]()
            set_titles(ax, "Event study",
                       subtitle="Monthly emergency admissions, enrolled minus comparators, "
                                "relative to month -2 (enrolment in month -1)")
            fig = ax.figure
        _save(smk, fig, "event_study.png", "Event study of monthly emergency admissions "
                                           "relative to the index date.")
