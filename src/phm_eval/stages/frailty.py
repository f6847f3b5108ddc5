"""Frailty stage: eFI, eFI2 and HFRS at the index date; summaries by age and sex."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..definitions import age_on, in_follow_up, is_emergency
from ..disclosure import apply_disclosure
from ..frailty import efi, efi2, hfrs
from ..frailty.population import flow_table
from ..plotting import OKABE_ITO, describe_figure, phm_style, save_figure, set_titles
from .call import StageCall
from .common import output, policy, write_disclosed

log = logging.getLogger(__name__)
AGE_BANDS = [65, 70, 75, 80, 85, 90, 200]
AGE_LABELS = ["65-69", "70-74", "75-79", "80-84", "85-89", "90+"]


def run(call: StageCall) -> None:
    """eFI, eFI2 and HFRS at the index date, their summaries by age and sex and admissions by
    eFI category (params ``frailty``, ``disclosure``; inputs ``patients``, ``events``,
    ``admissions``)."""
    cfg = call.params["frailty"]
    day = cfg["index_date"]
    min_age = cfg.get("min_age", 65)
    inp = call.inputs
    frail = efi(inp["events"], inp["patients"], day, min_age=min_age)
    frail2 = efi2(inp["events"], inp["patients"], day, min_age=min_age)
    hosp = hfrs(inp["admissions"], inp["patients"], day, min_age=min_age)
    keep2 = ["patient_id", "efi2_score", "efi2_category"]
    merged = (
        frail.merge(frail2[[c for c in keep2 if c in frail2.columns]], on="patient_id",
                    how="left")
        .merge(hosp[["patient_id", "hfrs_score", "hfrs_category"]], on="patient_id", how="left")
    )
    merged["efi2_unverified_items"] = "; ".join(frail2.attrs.get("efi2_unverified_items", []))
    merged.to_parquet(output(call, "frailty.parquet"), index=False)
    flow_table(frail).to_csv(output(call, "frailty_flow.csv"), index=False)

    pats = pd.read_parquet(inp["patients"], columns=["patient_id", "sex", "date_of_birth"])
    table = merged.merge(pats, on="patient_id")
    age = age_on(table["date_of_birth"], day)
    table["age_band"] = pd.cut(age, AGE_BANDS, right=False, labels=AGE_LABELS)
    counts = (table.groupby(["age_band", "sex", "efi_category"], observed=False).size()
              .unstack("efi_category", fill_value=0).reset_index())
    counts.columns = [str(c) for c in counts.columns]
    cats = ["fit", "mild", "moderate", "severe"]
    counts = counts[counts["sex"].isin(["F", "M"])].reset_index(drop=True)
    counts["total"] = counts[cats].sum(axis=1)
    disclosed = apply_disclosure(counts, policy(call), count_cols=cats, total_col="total")
    write_disclosed(disclosed, output(call, "efi_summary.csv"))

    # eFI category against emergency admissions in the following 12 months (validity check:
    # rates should rise with frailty, as in Clegg et al. 2016).
    adm = pd.read_parquet(inp["admissions"], columns=["patient_id", "admission_date",
                                                   "admission_method"])
    emergency = is_emergency(adm["admission_method"])
    window = adm[emergency & in_follow_up(adm["admission_date"], day, days=365)]
    n_adm = window.groupby("patient_id").size()
    merged["admissions_12m"] = merged["patient_id"].map(n_adm).fillna(0).astype(int)
    by_cat = merged.groupby("efi_category", observed=False).agg(
        patients=("patient_id", "size"), emergency_admissions=("admissions_12m", "sum")
    ).reset_index()
    by_cat["efi_category"] = by_cat["efi_category"].astype(str)
    disclosed = apply_disclosure(
        by_cat, policy(call), count_cols=["emergency_admissions"], denominator_cols=["patients"],
        rate_cols={"per_1000_patients": ("emergency_admissions", "patients", 1000)},
    )
    write_disclosed(disclosed, output(call, "efi_admissions.csv"), 1)

    shown = disclosed.table
    with phm_style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        wide = apply_disclosure(
            counts.groupby("age_band", observed=False)[cats].sum().reset_index(), policy(call),
            count_cols=cats).table
        bottom = np.zeros(len(wide))
        colours = [OKABE_ITO["bluish_green"], OKABE_ITO["yellow"], OKABE_ITO["orange"],
                   OKABE_ITO["vermillion"]]
        totals = wide[cats].astype(float).fillna(0).sum(axis=1).replace(0, np.nan)
        for cat, colour in zip(cats, colours, strict=True):
            share = 100 * wide[cat].astype(float).fillna(0) / totals
            axes[0].bar(wide["age_band"].astype(str), share, bottom=bottom, color=colour,
                        label=cat)
            bottom = bottom + share.fillna(0).to_numpy()
        axes[0].set_ylabel("% of people aged 65+")
        axes[0].legend(title="eFI", fontsize="small")
        set_titles(axes[0], "eFI category by age", subtitle=f"On {day}")
        axes[1].bar(shown["efi_category"], shown["per_1000_patients"], color=colours)
        axes[1].set_ylabel("Emergency admissions per 1,000 in next 12 months")
        set_titles(axes[1], "Admissions rise with frailty")
        alt = describe_figure(fig, summary="Frailty rises with age; emergency admissions rise "
                                           "with eFI category.")
        save_figure(fig, output(call, "efi_distribution.png").with_suffix(""), alt_text=alt)
        plt.close(fig)
    log.info("eFI split: %s", merged["efi_category"].value_counts(normalize=True).round(3)
             .to_dict())
