"""Plausibility of the segmentation on the synthetic "smoke" population (6,000 patients).

Tolerances are wide enough for seed-to-seed noise in a population this small and narrow enough
to catch a broken definition. Measured with seeds 1-4 at index date 2022-04-01 (4,378-4,440
registered): complex needs 11.4-12.2% with the default rules (the clinical criteria alone,
without the top-5% risk rule, 7.5-8.2%), older people 19.1-21.3%, children and young people
18.0-19.1%; emergency admissions per 1,000 in the next 12 months: generally well 56-73,
long-term conditions 100-111, complex needs 242-308.
"""

from __future__ import annotations

import pandas as pd
import pytest

from phm_eval.frailty import efi
from phm_eval.segment import (
    bridges_to_health,
    build_population,
    core20plus5,
    des_metrics,
    grid_3x3,
)
from phm_eval.synth import simulate

INDEX = "2022-04-01"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    simulate("smoke", out=out, seed=1)
    files = {name: out / f"{name}.parquet"
             for name in ("patients", "events", "admissions", "practices")}
    frailty = efi(files["events"], files["patients"], INDEX)
    pop = build_population(files["patients"], files["events"], files["admissions"], INDEX,
                           frailty=frailty[["patient_id", "efi_category", "efi_score"]])
    return files, pop


def _share(table: pd.DataFrame, column: str, value: str) -> float:
    cells = table.drop(index="all")
    return cells.loc[cells[column] == value, "n_patients"].sum() / table.loc["all", "n_patients"]


def test_grid_shares(smoke):
    _, pop = smoke
    table = grid_3x3(pop).table
    # Defaults (4+ chronic conditions, top 2% risk, moderate/severe eFI, three conditions).
    assert 0.03 <= _share(table, "need_group", "complex_needs") <= 0.10
    assert 0.15 <= _share(table, "age_group", "older_people") <= 0.25
    assert 0.14 <= _share(table, "age_group", "children_young_people") <= 0.22
    clinical_only = grid_3x3(pop, {"grid": {"complex": {"top_risk_fraction": None}}}).table
    assert 0.02 <= _share(clinical_only, "need_group", "complex_needs") <= 0.08


def test_admission_rate_rises_with_need(smoke):
    _, pop = smoke
    cells = grid_3x3(pop).table.drop(index="all")
    by_need = cells.groupby("need_group")[["emergency_admissions", "n_patients"]].sum()
    rate = 1000 * by_need["emergency_admissions"] / by_need["n_patients"]
    assert rate["generally_well"] < rate["long_term_conditions"] < rate["complex_needs"]
    assert rate["complex_needs"] > 2 * rate["generally_well"]
    older = cells[cells["age_group"] == "older_people"].set_index("need_group")["rate_per_1000"]
    # Within older people the smoke population is small; the complex column must still stand out.
    assert older["complex_needs"] > max(older["generally_well"], older["long_term_conditions"])


def test_population_frame_is_plausible(smoke):
    _, pop = smoke
    assert pop["patient_id"].is_unique
    assert 0.10 <= pop["hypertension"].mean() <= 0.18
    # Synthetic admissions run at about 0.1 per person-year.
    assert 60 <= 1000 * pop["emergency_admissions_followup"].sum() / len(pop) <= 160
    tiers = pop["risk_tier"].value_counts()
    n = len(pop)
    assert tiers["top 0.5%"] == -(-5 * n // 1000)
    assert tiers["top 0.5%"] + tiers["0.5-5%"] == -(-5 * n // 100)


def test_bridges_on_synthetic(smoke):
    _, pop = smoke
    table = bridges_to_health(pop).table
    assert table["n_patients"].iloc[:-1].sum() == len(pop)
    shares = table["n_patients"].iloc[:-1] / len(pop)
    assert shares.idxmax() == "healthy" and 0.4 <= shares["healthy"] <= 0.75
    assert 0.2 <= shares["stable_chronic"] <= 0.45
    frail_deaths = table.loc[["organ_failure", "frailty"], "deaths"].sum()
    frail_n = table.loc[["organ_failure", "frailty"], "n_patients"].sum()
    assert frail_deaths / frail_n > 5 * table.loc["healthy", "deaths_per_1000"] / 1000


def test_core20_consistent_with_imd(smoke):
    _, pop = smoke
    result = core20plus5(pop)
    expected = int(pop["imd_decile"].isin([1, 2]).sum())
    assert result.by_core20.loc["core20", "n_patients"] == expected
    assert result.by_core20["n_patients"].iloc[:-1].sum() == len(pop)


def test_des_counts_match_pandas(smoke):
    files, _ = smoke
    metrics = des_metrics(files["events"], files["patients"], files["practices"],
                          "2021-04-01", "2022-03-31")
    patients = pd.read_parquet(files["patients"])
    mid = pd.Timestamp("2021-09-30")
    for col in ("date_of_birth", "registration_start", "registration_end", "date_of_death"):
        patients[col] = pd.to_datetime(patients[col])
    registered = (
        (patients["registration_start"] <= mid)
        & (patients["registration_end"].isna() | (patients["registration_end"] >= mid))
        & (patients["date_of_death"].isna() | (patients["date_of_death"] > mid))
    )
    overall = metrics.overall.set_index("activity")
    assert overall.loc["pcsp", "list_size"] == int(registered.sum())
    events = pd.read_parquet(files["events"])
    events = events[events["snomed_code"].isin(["1187911000000105", "1187921000000104"])]
    events = events.merge(patients, on="patient_id")
    day = pd.to_datetime(events["date"])
    inside = (
        (day >= "2021-04-01") & (day <= "2022-03-31") & (day >= events["registration_start"])
        & (events["registration_end"].isna() | (day <= events["registration_end"]))
    )
    expected = events[inside].drop_duplicates(["patient_id", "date"]).shape[0]
    assert overall.loc["pcsp", "n_activities"] == expected > 0
