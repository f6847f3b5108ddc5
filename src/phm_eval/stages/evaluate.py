"""Evaluate stage: runs :func:`phm_eval.evaluate.pipeline.evaluate_programme` and writes
effects.json, disclosure-controlled tables and figures."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import DEFAULT_SEED
from ..did.plots import EVENT_STUDY_YLABEL, plot_aggte
from ..disclosure import apply_disclosure
from ..disclosure.release import disclose_json
from ..disclosure.survival_figures import disclosed_step_tables, plot_disclosed_curves
from ..errors import ConfigError, EstimationError, InputError
from ..evaluate.design import Eligibility
from ..evaluate.estimands import (
    ATT_ENROLLED,
    ITT_POPULATION,
    attach_mde,
    choose_primary,
    design_check_report,
    enrolled_mde,
    label_enrolled_records,
    population_mde,
)
from ..evaluate.pipeline import ADJUSTMENT, CLUSTER, evaluate_programme
from ..evaluate.plots import forest_plot, rtm_plot
from ..evaluate.population import PopulationITT, population_itt
from ..evaluate.population_plasmode import population_design_check
from ..jsonio import read_json
from ..matching.balance import distinct_covariates
from ..matching.plots import love_plot
from ..plotting import describe_figure, phm_style, save_figure, set_titles
from ..report.effects import not_estimable_text
from .call import StageCall
from .common import output, policy, write_disclosed, write_json

log = logging.getLogger(__name__)


def run(call: StageCall) -> None:
    """The matched design (ATT on the enrolled) and the population-level design (ITT),
    effects.json with the primary estimand marked, and each design's tables and figures
    (params ``evaluate``, ``study``, ``disclosure``, ``codelists``; inputs the six staged
    tables)."""
    ev = call.params["evaluate"]
    inp = call.inputs
    tables = {k: inp[k] for k in ("patients", "events", "admissions", "practices",
                                  "interventions", "rollout")}
    records = _enrolled(call, tables)
    records += _population(call, tables)
    choose_primary(records, ev.get("primary", "att_enrolled"))
    # Released: counts in the records disclosure-controlled; estimates are statistics.
    write_json(output(call, "effects.json"), disclose_json(records, policy(call)))
    for record in records:
        if record.get("primary"):
            log.info("primary (%s): %s %s (%s-%s)", record.get("estimand"), record.get("scale"),
                     record.get("estimate"), record.get("ci_low"), record.get("ci_high"))


def _enrolled(call: StageCall, tables: dict) -> list[dict]:
    """The matched design (ATT on the enrolled): its tables and figures, and its records with
    the design's minimum detectable effect."""
    ev = call.params["evaluate"]
    study = call.params["study"]
    elig = ev.get("eligibility")
    try:
        result = evaluate_programme(
            tables, study["programme"], study["study_end"],
            eligibility=Eligibility(**elig) if elig else None,
            matching=ev.get("matching"), follow_up_days=int(ev.get("follow_up_days", 365)),
            lookback_days=int(ev.get("lookback_days", 365)),
            codelist_dir=call.params["codelists"], seed=int(ev.get("seed", DEFAULT_SEED)),
        )
    except EstimationError as exc:
        # The design itself cannot be run on these data (too few enrolled or comparators):
        # the run goes on to its report, which says so, instead of stopping here.
        return _not_estimable(call, str(exc))
    pol = policy(call)
    records = label_enrolled_records(result.records)
    mde, reason = enrolled_mde(result.analysed, ADJUSTMENT, cluster_col=CLUSTER)
    attach_mde(records, ATT_ENROLLED, mde, reason=reason)
    # The matched sets and outcomes the plasmode power check re-analyses (patient-level).
    result.analysed.to_parquet(output(call, "analysed.parquet"), index=False)
    pretrend = (result.study_panel["pretrend"] if result.study_panel else
                {"statistic": None, "df": None, "p_value": None,
                 "note": "event study not estimable (too few matched patients)"})
    write_json(output(call, "pretrend.json"), pretrend)

    rtm = apply_disclosure(
        result.rtm, pol, count_cols=["patients", "admissions_before", "admissions_after"],
        rate_cols={"rate_before_per_1000": ("admissions_before", "person_years_before", 1000),
                   "rate_after_per_1000": ("admissions_after", "person_years_after", 1000)},
    ).table.drop(columns=["person_years_before", "person_years_after"])
    rtm["change_per_1000"] = rtm["rate_after_per_1000"] - rtm["rate_before_per_1000"]
    rtm = rtm.round(1)
    rtm.to_csv(output(call, "rtm.csv"), index=False)
    balance = _balance(result.matching).reset_index()
    # eCDF maxima describe single people's values: keep them out of human-facing tables.
    balance = balance[[c for c in balance.columns if "max" not in c.lower()]]
    balance.round(4).to_csv(output(call, "balance.csv"), index=False)
    write_disclosed(apply_disclosure(result.flow, pol, count_cols=["n"]),
                    output(call, "flow.csv"))
    _figures(call, result, rtm)
    return records


def _population(call: StageCall, tables: dict) -> list[dict]:
    """The staggered roll-out analysed as one (ITT in the eligible population): its records,
    event study, pre-trend test and Honest DiD bounds."""
    ev = call.params["evaluate"]
    study = call.params["study"]
    options = ev.get("population") or {}
    elig = ev.get("eligibility")
    control = options.get("control_group", "nevertreated")

    def fit(control_group: str):
        return population_itt(
            tables, study["programme"], study["study_start"], study["study_end"],
            eligibility=Eligibility(**elig) if elig else None,
            eligibility_date=options.get("eligibility_date"), unit=options.get("unit"),
            control_group=control_group, codelist_dir=call.params["codelists"],
            seed=int(ev.get("seed", DEFAULT_SEED)))

    fallback = None
    try:
        try:
            itt = fit(control)
        except EstimationError as first:
            if control != "nevertreated":
                raise
            # Too few never-adopting units: units that adopt later are the comparison until
            # they adopt (Callaway & Sant'Anna's not-yet-treated group), and the record says so.
            log.info("population-level analysis with never-adopting comparisons: %s", first)
            itt = fit("notyettreated")
            fallback = ("comparison units: units not yet adopting as well as those never "
                        "adopting, since too few units never adopted the programme")
    except (InputError, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001 - one design failing must not sink the run
        reason = not_estimable_text(str(exc) or type(exc).__name__)
        log.warning("population-level (ITT) analysis %s", reason)
        _write_itt_design(call, None, None, reason)
        write_json(output(call, "itt_pretrend.json"), {"statistic": None, "df": None,
                                                      "p_value": None, "note": reason})
        output(call, "itt_event_study.csv").write_text("event_time,att,se,ci_low,ci_high\n")
        output(call, "itt_honest.csv").write_text("Mbar,lb,ub,method,delta\n")
        with phm_style():
            _placeholder(call, "itt_event_study.png", reason)
        return [{"outcome": "emergency admissions", "estimand": ITT_POPULATION,
                 "method": "staggered difference-in-differences (Callaway & Sant'Anna)",
                 "estimate": None, "ci_low": None, "ci_high": None, "scale": "RR",
                 "fallback": None, "note": reason}]
    records = [dict(r) for r in itt.records]
    if fallback:
        for record in records:
            record["fallback"] = "; ".join(x for x in (fallback, record.get("fallback")) if x)
    mde, reason = population_mde(itt)
    attach_mde(records, ITT_POPULATION, mde, reason=reason)
    if records[0].get("ci_low") is None:
        # No interval (too few units to cluster on): there is no power to check either.
        _write_itt_design(call, None, None, "not checked: the population-level estimate has "
                          "no confidence interval on these data (too few units to cluster on)")
    else:
        _write_itt_design(call, itt, _itt_control_group(fallback, control), None,
                          None if mde is None else mde.mde_rate_ratio)
    pretrend = dict(itt.pretrend)
    pretrend["informative"] = True
    write_json(output(call, "itt_pretrend.json"), pretrend)
    itt.event_study.round(6).to_csv(output(call, "itt_event_study.csv"), index=False)
    itt.honest.round(6).to_csv(output(call, "itt_honest.csv"), index=False)
    with phm_style():
        ax = itt.plot()
        set_titles(ax, "Population-level event study",
                   subtitle="Emergency admissions per 1,000 eligible person-months, adopting "
                            "units against comparison units, by month since adoption")
        _save(call, ax.figure, "itt_event_study.png",
              "Event study of emergency admissions in the eligible population by month "
              "since the unit adopted the programme.")
    return records


def _itt_control_group(fallback: str | None, requested: str) -> str:
    """The comparison group the population-level analysis used (the fallback is not-yet)."""
    return "notyettreated" if fallback else requested


#: The columns of the unit-month panel the population design check re-analyses.
ITT_PANEL_COLUMNS = ["unit", "t", "admissions", "person_months", "g", "weight", "cluster"]


def _write_itt_design(call: StageCall, itt: Any, control_group: str | None,
                      reason: str | None, mde_rate_ratio: float | None = None) -> None:
    """The unit-month panel and the estimator's settings, which the design check re-analyses
    (internal: the panel holds small unit-month counts). Without an estimate, an empty panel
    and the reason."""
    if itt is None or itt.panel is None:
        pd.DataFrame(columns=ITT_PANEL_COLUMNS).to_parquet(output(call, "itt_panel.parquet"))
        write_json(output(call, "itt_design.json"), {"estimable": False, "note": reason})
        return
    itt.panel.panel[ITT_PANEL_COLUMNS].to_parquet(output(call, "itt_panel.parquet"),
                                                  index=False)
    write_json(output(call, "itt_design.json"), {
        "estimable": True, "control_group": control_group,
        "mde_rate_ratio": mde_rate_ratio})


def _not_estimable(call: StageCall, reason: str) -> list[dict]:
    """The matched design's outputs when it could not be estimated: one null record with the
    reason, tables with only their headers, figures that say why."""
    note = not_estimable_text(reason)
    log.warning("enrolled-patient evaluation %s", note)
    write_json(output(call, "pretrend.json"), {"statistic": None, "df": None, "p_value": None,
                                              "note": note})
    headers = {"rtm.csv": "group,patients,rate_before_per_1000,rate_after_per_1000,"
                          "change_per_1000",
               "balance.csv": "covariate", "flow.csv": "step,n",
               "km.csv": "arm,time,n_risk,n_event,n_censor,surv",
               "cif.csv": "arm,time,n_risk,n_event,n_censor,n_competing,surv,cif"}
    for name, header in headers.items():
        output(call, name).write_text(header + "\n", encoding="utf-8")
    pd.DataFrame({"patient_id": pd.Series(dtype=str)}).to_parquet(
        output(call, "analysed.parquet"), index=False)
    with phm_style():
        for name in ("love_plot.png", "km.png", "cif.png", "forest.png", "rtm.png",
                     "event_study.png"):
            _placeholder(call, name, note)
    return [{"outcome": "emergency admissions", "estimand": ATT_ENROLLED,
             "method": "matched comparison of enrolled patients", "estimate": None,
             "ci_low": None, "ci_high": None, "scale": "RR", "n": None, "fallback": None,
             "note": note}]


def _placeholder(call: StageCall, name: str, note: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "Not estimable: " + note.removeprefix("not estimable: "),
            ha="center", va="center", wrap=True)
    _save(call, fig, name, f"No figure: the analysis was {note}.")


def _save(call: StageCall, fig, name: str, summary: str) -> None:
    alt = describe_figure(fig, summary=summary)
    save_figure(fig, output(call, name).with_suffix(""), alt_text=alt)
    plt.close(fig)


def _balance(matching) -> pd.DataFrame:
    """The balance table with each characteristic once (no 0/1 ``female`` beside the exact
    ``sex``'s levels: one row for the same thing under two names)."""
    return matching.balance(distinct_covariates(matching.data, matching.covariates,
                                                matching.exact))


def _figures(call: StageCall, result, rtm) -> None:
    analysed = result.analysed.assign(
        arm=lambda d: np.where(d["treated"] == 1, "enrolled", "comparators"))
    arms = {"enrolled": "Enrolled", "comparators": "Matched comparators"}
    pol = policy(call)
    with phm_style():
        ax = love_plot(_balance(result.matching))
        _save(call, ax.figure, "love_plot.png",
              "Standardised mean differences before and after matching.")

        # Survival figures are drawn only from disclosed (rounded) step tables, which are
        # released beside them.
        for name, competing, ylabel, title, subtitle, summary in (
            ("km", False, "Free of emergency admission (%)", "Time to first emergency admission",
             "Kaplan-Meier from rounded counts; deaths censored",
             "Kaplan-Meier curves of time to first emergency admission by arm"),
            ("cif", True, "Had an emergency admission (%)",
             "Cumulative incidence of emergency admission",
             "Aalen-Johansen from rounded counts; death competes",
             "Cumulative incidence of first emergency admission by arm, with death as a "
             "competing event"),
        ):
            steps = disclosed_step_tables(analysed, "time_days", "event", "arm", pol,
                                          competing=competing)
            write_disclosed(steps, output(call, f"{name}.csv"), 4)
            fig, ax = plt.subplots(figsize=(6.5, 4.8))
            plot_disclosed_curves(steps, "arm", arms, estimate="cif" if competing else "surv",
                                  ax=ax)
            ax.set_xlabel("Days since the index date")
            ax.set_ylabel(ylabel)
            set_titles(ax, title, subtitle=subtitle)
            fig.subplots_adjust(bottom=0.3)
            _save(call, fig, f"{name}.png", f"{summary}, from disclosure-controlled counts.")

        ax = forest_plot(result.records)
        _save(call, ax.figure, "forest.png", "Rate ratios of emergency admissions overall and "
                                            "by subgroup.")

        ax = rtm_plot(rtm, result.naive, result.did)
        _save(call, ax.figure, "rtm.png", "Admission rates before and after the index date for "
                                         "enrolled patients and comparators.")

        if result.study_panel is None:
            fig, ax = plt.subplots(figsize=(6, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, "Event study not estimable: too few matched patients",
                    ha="center", va="center")
        else:
            ax = plot_aggte(result.study_panel["dynamic"], ylabel=EVENT_STUDY_YLABEL,
                            scale=1000)
            set_titles(ax, "Event study",
                       subtitle="Monthly emergency admissions, enrolled minus comparators, "
                                "relative to month -2 (enrolment in month -1)")
            fig = ax.figure
        _save(call, fig, "event_study.png", "Event study of monthly emergency admissions "
                                           "relative to the index date.")


def design_check(call: StageCall) -> None:
    """Plasmode power of both designs on this run's own data: known rate ratios injected (no
    effect, the synthetic truth or an assumed reduction, and the design's analytic minimum
    detectable effect) and the design refitted (params ``design_check``; inputs ``analysed``,
    ``itt_panel``, ``itt_design`` and ``truth``, a list: the synthetic truth or nothing).
    ``design_check.json`` holds the matched design's check at its top level (``estimand``
    "ATT enrolled") and the population design's under ``itt``."""
    cfg = call.params["design_check"]
    analysed = pd.read_parquet(call.inputs["analysed"])
    csv, summary_json = output(call, "design_check.csv"), output(call, "design_check.json")
    truth_files = list(call.inputs.get("truth") or [])
    truth = read_json(truth_files[0]) if truth_files else None
    true_rr = (truth or {}).get("true_effect", {}).get("hazard_ratio")
    n_replicates, seed = int(cfg.get("replicates", 200)), int(cfg.get("seed", DEFAULT_SEED))
    tables = []
    if analysed.empty or "treated" not in analysed.columns:
        # The matched design could not be estimated: there is no design to check.
        summary = {"estimand": ATT_ENROLLED, "targets": [], "n_replicates": 0, "note": (
            "not estimable: the matched design could not be estimated on these data")}
    else:
        report = design_check_report(analysed, n_replicates=n_replicates, seed=seed,
                                     true_rate_ratio=true_rr)
        tables.append(report.targets.assign(estimand=ATT_ENROLLED))
        summary = report.to_dict() | {"estimand": ATT_ENROLLED}
    population, note = _population_design_check(call, truth, n_replicates, seed)
    if population is not None:
        tables.append(population.targets.assign(estimand=ITT_POPULATION))
        summary["itt"] = population.to_dict()
    else:
        summary["itt"] = {"estimand": ITT_POPULATION, "targets": [], "n_replicates": 0,
                          "note": note}
    table = (pd.concat(tables, ignore_index=True) if tables else
             pd.DataFrame(columns=["target_rate_ratio", "power", "coverage", "estimand"]))
    table.to_csv(csv, index=False)
    write_json(summary_json, summary)


ONE_ADOPTION_MONTH = ("not checked: every adopting unit adopted in the same month, so "
                      "re-drawing who adopts when changes nothing")


def _population_design_check(call: StageCall, truth: dict | None, n_replicates: int,
                             seed: int) -> tuple[Any, str | None]:
    """The population-level design's plasmode check at no effect, the synthetic truth (or a
    10 % reduction) and its analytic MDE; or None and the reason it was not run."""
    design = read_json(call.inputs["itt_design"])
    if not design.get("estimable"):
        return None, design.get("note") or ONE_ADOPTION_MONTH
    panel = pd.read_parquet(call.inputs["itt_panel"])
    true_itt = ((truth or {}).get("itt_population") or {}).get("rate_ratio")
    try:
        return population_design_check(
            panel, n_replicates=n_replicates, seed=seed, true_rate_ratio=true_itt,
            mde_rate_ratio=design.get("mde_rate_ratio"),
            estimator=PopulationITT(control_group=design["control_group"], honest_m=())), None
    except EstimationError as exc:
        log.warning("population-level design check not run: %s", exc)
        return None, ONE_ADOPTION_MONTH
