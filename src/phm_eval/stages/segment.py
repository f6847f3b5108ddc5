"""Segment stage: risk tiers, 3x3 grid, Bridges to Health, Core20PLUS5, DES metrics."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import pandas as pd

from ..disclosure import apply_disclosure
from ..evaluate.design import Eligibility
from ..frailty import efi
from ..plotting import describe_figure, phm_style, save_figure
from ..segment import (
    bridges_to_health,
    build_population,
    core20plus5,
    des_metrics,
    funnel_plot,
    grid_3x3,
    plot_grid,
    segmentation_config,
)
from ..segment._summary import disclose
from ..segment.core20plus5 import reach_table
from ..segment.plots import activity_label
from .call import StageCall
from .common import output, policy, write_disclosed

log = logging.getLogger(__name__)


def run(call: StageCall) -> None:
    """Risk tiers, the 3x3 grid, Bridges to Health, Core20PLUS5 and its reach, DES metrics
    and the segments file (params ``segment``, ``eligibility``, ``study``, ``disclosure``,
    ``codelists``; inputs ``patients``, ``events``, ``admissions``, ``practices``,
    ``predictions``, ``interventions``)."""
    seg_cfg = call.params["segment"]
    study = call.params["study"]
    codelists = call.params["codelists"]
    day = seg_cfg["index_date"]
    inp = call.inputs
    settings = segmentation_config(
        {"risk_tiers": {"cut_points": list(seg_cfg.get("risk_tiers", [0.005, 0.05, 0.2]))},
         **seg_cfg.get("overrides", {})})
    frail = efi(inp["events"], inp["patients"], day, min_age=65)[
        ["patient_id", "efi_category", "efi_score"]]
    risk = pd.read_parquet(inp["predictions"])
    frame = risk.merge(frail, on="patient_id", how="left")
    population = build_population(inp["patients"], inp["events"], inp["admissions"], day,
                                  frailty=frame,
                                  codelist_dir=codelists, config=settings)
    pol = policy(call)

    grid = grid_3x3(population, settings)
    shown = grid.disclose(policy=pol)
    write_disclosed(shown, output(call, "grid_3x3.csv"), 1)
    with phm_style():
        ax = plot_grid(shown, policy=pol)
        alt = describe_figure(ax.figure, summary="Emergency admissions per 1,000 by age group "
                                                 "and need (3x3 grid).")
        save_figure(ax.figure, output(call, "grid_3x3.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)

    tiers = population.groupby("risk_tier", observed=True).agg(
        patients=("patient_id", "size"),
        emergency_admissions=("emergency_admissions_followup", "sum")).reset_index()
    tiers["risk_tier"] = tiers["risk_tier"].astype(str)
    write_disclosed(apply_disclosure(
        tiers, pol, count_cols=["emergency_admissions"], denominator_cols=["patients"],
        rate_cols={"per_1000_patients": ("emergency_admissions", "patients", 1000)},
    ), output(call, "risk_tiers.csv"), 1)

    bridges = bridges_to_health(population, settings)
    write_disclosed(bridges.disclose(policy=pol), output(call, "bridges.csv"), 1)

    c20_result = core20plus5(population, settings)
    c20 = c20_result.disclose(policy=pol)
    eligible, enrolled = _programme_reach(population, pd.read_parquet(inp["interventions"]),
                                          study["programme"], call.params["eligibility"])
    write_disclosed(reach_table(c20_result.flags, eligible, enrolled, policy=pol),
                    output(call, "core20plus5_reach.csv"), 1)
    write_disclosed(c20["breakdown"], output(call, "core20plus5.csv"), 1)
    write_disclosed(c20["by_core20"], output(call, "core20_admissions.csv"), 1)

    des = des_metrics(inp["events"], inp["patients"], inp["practices"], study["study_start"],
                      study["study_end"], codelist_dir=codelists)
    write_disclosed(disclose(des.pcn, des.disclosure_spec, pol), output(call, "des_metrics.csv"),
                    1)
    complete = des.practice[des.practice["complete_year"]]
    activity = "pcsp" if (complete["activity"] == "pcsp").any() else complete["activity"].iloc[0]
    years = sorted(complete.loc[complete["activity"] == activity, "financial_year"].unique())
    # The practice is a column for labelling outliers, not the index.
    table = des.funnel_table(activity, years[-1]).reset_index()
    funnel_shown = disclose(table, des.disclosure_spec, pol)
    with phm_style():
        ax = funnel_plot(funnel_shown, label_col="practice_id")
        alt = describe_figure(ax.figure, summary=f"Funnel plot of {activity_label(activity)} "
                                                 "per 1,000 "
                                                 f"registered patients by practice, {years[-1]}.")
        save_figure(ax.figure, output(call, "des_funnel.png").with_suffix(""), alt_text=alt)
        plt.close(ax.figure)
    keep = ["patient_id", "practice_id", "risk_tier", "predicted_risk", "efi_category"]
    segments = population[[c for c in keep if c in population.columns]].copy()
    segments = segments.merge(grid.segments[["patient_id", "age_group", "need_group"]],
                              on="patient_id", how="left")
    segments.to_parquet(output(call, "segments.parquet"), index=False)
    log.info("segmented %d patients at %s", len(population), day)


def _programme_reach(population: pd.DataFrame, interventions: pd.DataFrame, programme: str,
                     eligibility: dict | None) -> tuple[pd.Series, pd.Series]:
    """Who the programme was for on the segmentation date (the evaluation's eligibility: age,
    and moderate or severe eFI, i.e. 9+ of 36 deficits, or recent emergency admissions) and who
    it enrolled."""
    rules = Eligibility(**(eligibility or {}))
    old = population["age"] >= rules.min_age
    frail = (population["efi_category"].astype(str).isin(["moderate", "severe"])
             if rules.min_efi_deficits is not None else False)
    admitted = (population["prior_emergency_admissions"] >= rules.min_recent_emergency_admissions
                if rules.min_recent_emergency_admissions is not None else False)
    eligible = population.loc[old & (frail | admitted), "patient_id"]
    enrolled = interventions.loc[interventions["programme"] == programme, "patient_id"]
    return eligible, enrolled.drop_duplicates()
