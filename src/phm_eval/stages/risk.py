"""Risk stage: features at each index date; develop, validate and apply the admission model."""

from __future__ import annotations

import logging

import pandas as pd

from .. import DEFAULT_SEED
from ..disclosure import apply_disclosure
from ..disclosure.release import disclose_json
from ..risk.develop import develop_risk_model
from ..risk.features import risk_features
from .call import StageCall
from .common import output, policy, write_disclosed, write_json

log = logging.getLogger(__name__)
COUNT_COLUMNS = ("n", "events", "n_flagged", "flagged", "true_positives", "n_events",
                 "events_flagged")
# Columns that identify people or describe the outcome window, never model inputs.
NOT_FEATURES = ("efi_category", "index_date", "died_12m", "died_without_admission",
                "emergency_admission_or_death_12m")


def features(call: StageCall) -> None:
    """The risk features and outcome at one index date (params ``index_date``,
    ``codelists``; inputs ``patients``, ``events``, ``admissions``, ``practices``) to the
    call's one output; wildcard ``when`` names the feature set in the log."""
    day = call.params["index_date"]
    inp = call.inputs
    (target,) = call.outputs
    frame = risk_features(inp["patients"], inp["events"], inp["admissions"],
                          inp["practices"], day,
                          codelist_dir=call.params["codelists"])
    frame.to_parquet(target, index=False)
    log.info("%s features at %s: %d patients, outcome rate %.3f", call.wildcards.get("when"),
             day, len(frame), frame["emergency_admission_12m"].mean())


def model(call: StageCall) -> None:
    """Develop the admission model at the development date, validate it at the validation
    date and score the current population (params ``risk``, ``disclosure``; inputs
    ``development``, ``validation``, ``current``: feature sets)."""
    cfg = call.params["risk"]
    dev = pd.read_parquet(call.inputs["development"])
    val = pd.read_parquet(call.inputs["validation"])
    settings = {
        "model": cfg["model"],
        "cluster": cfg.get("cluster", "pcn_id"),
        "n_optimism_bootstrap": int(cfg.get("bootstrap_replicates", 20)),
        "n_bootstrap": int(cfg.get("ci_bootstrap_replicates", 200)),
        "seed": int(cfg.get("seed", DEFAULT_SEED)),
        "model_options": dict(cfg.get("model_options") or {}),
        "iecv_max_folds": int(cfg.get("iecv_max_folds", 10)),
    }
    # Too few clusters for internal-external validation: develop_risk_model falls back to
    # practices (or skips it) and records why in metrics["internal_external"].
    drop = [c for c in NOT_FEATURES if c in dev.columns]
    out_dir = output(call, "metrics.json").parent
    pol = policy(call)

    def disclose(frame: pd.DataFrame) -> pd.DataFrame:
        counts = [c for c in frame.columns if c in COUNT_COLUMNS]
        if not counts:
            return frame
        numeric = [c for c in frame.select_dtypes("number").columns if c not in counts]
        base = "events" if "events" in counts else counts[0]
        out = apply_disclosure(frame.reset_index(drop=True), pol, count_cols=counts,
                               stat_cols={c: base for c in numeric})
        return out.formatted(decimals=3)

    report = develop_risk_model(dev.drop(columns=drop), settings,
                                validation_features=val.drop(columns=drop), output_dir=out_dir,
                                model_card_options={"disclose": disclose},
                                report_json_dir=output(call, "risk_model_report.json").parent)
    del val  # the population to score is read only now: the two are never in memory together
    full = report.to_dict()
    validation = full["temporal"]["validation"] if full.get("temporal") else full["apparent"]
    metrics = {
        row["metric"]: {"estimate": row["estimate"], "ci_low": row["lower"],
                        "ci_high": row["upper"]}
        for row in validation.get("intervals", [])
    }
    metrics["design"] = "temporal validation" if full.get("temporal") else "apparent"
    metrics["development_index_date"] = cfg["development_index_date"]
    metrics["validation_index_date"] = cfg["validation_index_date"]
    metrics["n_development"] = full["n"]
    metrics["optimism_corrected"] = full.get("optimism")
    iecv = full.get("internal_external")
    if iecv:
        metrics["internal_external"] = {k: v for k, v in iecv.items() if k != "per_cluster"}
    # Released: every count in it disclosure-controlled (the unrounded report stays internal).
    write_json(output(call, "metrics.json"), disclose_json(metrics, pol))

    subgroups = pd.DataFrame(validation.get("subgroups", []))
    if not subgroups.empty:
        stats = [c for c in subgroups.columns if c not in ("variable", "group", "n", "events")]
        disclosed = apply_disclosure(
            subgroups, policy(call), count_cols=["events"], denominator_cols=["n"],
            stat_cols={c: "events" for c in stats},
        )
        write_disclosed(disclosed, output(call, "subgroup_metrics.csv"), 3)
    else:
        pd.DataFrame(columns=["variable", "group"]).to_csv(output(call, "subgroup_metrics.csv"),
                                                           index=False)

    current = pd.read_parquet(call.inputs["current"])
    scored = current.drop(columns=[c for c in drop if c in current.columns])
    predicted = report.model.predict_proba(scored)[:, 1]
    pd.DataFrame({"patient_id": current["patient_id"], "predicted_risk": predicted}).to_parquet(
        output(call, "predictions.parquet"), index=False)
    log.info("validation c-statistic %s, calibration slope %s",
             metrics.get("c_statistic", {}).get("estimate"),
             metrics.get("calibration_slope", {}).get("estimate"))
