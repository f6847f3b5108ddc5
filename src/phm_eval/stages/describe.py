"""Describe stage: population pyramid, LTC prevalence, emergency admission rates."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..describe import emergency_admission_rates, ltc_prevalence, population_pyramid  # noqa: E402
from ..disclosure import DisclosurePolicy, apply_disclosure  # noqa: E402
from ..plotting import OKABE_ITO, describe_figure, phm_style, save_figure, set_titles  # noqa: E402
from .call import StageCall  # noqa: E402
from .common import output, write_disclosed  # noqa: E402


def run(call: StageCall) -> None:
    """The population pyramid, recorded prevalence of each long-term condition and emergency
    admission rates by age (params ``study``, ``disclosure``, ``codelists``; inputs
    ``patients``, ``events``, ``admissions``)."""
    study = call.params["study"]
    inp = call.inputs
    policy = DisclosurePolicy.from_config(call.params["disclosure"])
    day = study["study_end"]

    pyramid = population_pyramid(inp["patients"], day)
    pyr = pyramid.pivot_table(index="age_band", columns="sex", values="n", fill_value=0)
    pyr = pyr.reindex(columns=[c for c in ("F", "M", "I", "U") if c in pyr.columns])
    disclosed = apply_disclosure(pyr.reset_index(), policy, count_cols=list(pyr.columns))
    table = disclosed.table
    write_disclosed(disclosed, output(call, "population_pyramid.csv"))
    with phm_style():
        fig, ax = plt.subplots(figsize=(7, 6))
        y = np.arange(len(table))
        female = table.get("F").astype(float).fillna(0).to_numpy()
        male = table.get("M").astype(float).fillna(0).to_numpy()
        ax.barh(y, -female, color=OKABE_ITO["vermillion"], label="Female")
        ax.barh(y, male, color=OKABE_ITO["blue"], label="Male")
        ax.set_yticks(y, table["age_band"])
        ticks = ax.get_xticks()
        ax.set_xticks(ticks, [f"{abs(int(t)):,}" for t in ticks])
        ax.set_xlabel("Registered patients (rounded)")
        ax.legend(loc="lower right")
        set_titles(ax, "Population pyramid", subtitle=f"Registered on {day}")
        alt = describe_figure(fig, summary="Registered patients by five-year age band and sex.")
        save_figure(fig, output(call, "population_pyramid.png").with_suffix(""), alt_text=alt)
        plt.close(fig)

    prev = ltc_prevalence(inp["patients"], inp["events"], day,
                          codelist_dir=call.params["codelists"])
    prev = prev.reset_index(drop=True)
    disclosed = apply_disclosure(
        prev, policy, count_cols=["n_with_condition"], denominator_cols=["n_registered"],
        rate_cols={"prevalence_percent": ("n_with_condition", "n_registered", 100)},
    )
    write_disclosed(disclosed, output(call, "ltc_prevalence.csv"), 2)
    overall = prev.groupby("condition")[["n_with_condition", "n_registered"]].sum()
    overall = apply_disclosure(
        overall.reset_index(), policy, count_cols=["n_with_condition"],
        denominator_cols=["n_registered"],
        rate_cols={"prevalence_percent": ("n_with_condition", "n_registered", 100)},
    ).table.sort_values("prevalence_percent")
    with phm_style():
        fig, ax = plt.subplots(figsize=(7, 6))
        ax.barh(overall["condition"].str.replace("_", " "), overall["prevalence_percent"],
                color=OKABE_ITO["bluish_green"])
        ax.set_xlabel("Recorded prevalence (% of registered patients)")
        set_titles(ax, "Long-term conditions", subtitle=f"Recorded by {day}, all ages")
        alt = describe_figure(fig, summary="Recorded prevalence of each long-term condition.")
        save_figure(fig, output(call, "ltc_prevalence.png").with_suffix(""), alt_text=alt)
        plt.close(fig)

    rates = emergency_admission_rates(inp["patients"], inp["admissions"], study["study_start"],
                                      study["study_end"])
    disclosed = apply_disclosure(
        rates, policy, count_cols=["emergency_admissions"],
        rate_cols={"per_1000_person_years": ("emergency_admissions", "person_years", 1000)},
    )
    # Person-years near a head count could undo the rounding: show them to the nearest 10.
    disclosed.table["person_years"] = (disclosed.table["person_years"] / 10).round() * 10
    write_disclosed(disclosed, output(call, "emergency_admission_rates.csv"), 1)
    table = disclosed.table
    with phm_style():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for band, sub in table.groupby("age_band", sort=True):
            ax.plot(sub["financial_year"], sub["per_1000_person_years"], marker="o", label=band)
        ax.set_ylabel("Emergency admissions per 1,000 person-years")
        ax.set_xlabel("Financial year")
        ax.legend(title="Age band", ncol=3, fontsize="small")
        set_titles(ax, "Emergency admissions by age", subtitle="Spells with ADMIMETH 2x")
        alt = describe_figure(fig, summary="Emergency admission rates rise steeply with age.")
        save_figure(fig, output(call, "emergency_admission_rates.png").with_suffix(""),
                    alt_text=alt)
        plt.close(fig)
