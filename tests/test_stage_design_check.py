"""The design_check stage: both designs' plasmode checks, each in its own part of the file."""

from __future__ import annotations

import json

import pandas as pd
from test_population_plasmode import _panel

from phm_eval import outputs
from phm_eval.stages import evaluate
from phm_eval.stages.call import StageCall


def _call(results, replicates=4, truth=None):
    for path in (outputs.ANALYSED, outputs.DESIGN_CHECK):
        (results / path).parent.mkdir(parents=True, exist_ok=True)
    inputs = {"analysed": results / outputs.ANALYSED, "itt_panel": results / outputs.ITT_PANEL,
              "itt_design": results / outputs.ITT_DESIGN, "truth": []}
    if truth is not None:
        (results / "truth.json").write_text(json.dumps(truth))
        inputs["truth"] = [results / "truth.json"]
    return StageCall(inputs=inputs, params={"design_check": {"replicates": replicates,
                                                             "seed": 3}},
                     outputs=(results / outputs.DESIGN_CHECK,
                              results / outputs.DESIGN_CHECK_CSV))


def test_population_design_is_checked_when_the_matched_one_is_not(tmp_path):
    call = _call(tmp_path, truth={"itt_population": {"rate_ratio": 0.9},
                                  "true_effect": {"hazard_ratio": 0.85}})
    pd.DataFrame().to_parquet(call.inputs["analysed"])          # matched design not estimable
    _panel(1).to_parquet(call.inputs["itt_panel"])
    call.inputs["itt_design"].write_text(json.dumps(
        {"estimable": True, "control_group": "nevertreated", "mde_rate_ratio": 0.8}))
    evaluate.design_check(call)
    check = json.loads((tmp_path / outputs.DESIGN_CHECK).read_text())
    assert check["estimand"] == "ATT enrolled" and check["targets"] == []
    assert check["note"].startswith("not estimable")
    itt = check["itt"]
    assert itt["estimand"] == "ITT population" and itt["n_replicates"] == 4
    assert [t["rate_ratio"] for t in itt["targets"]] == [1.0, 0.9, 0.8]
    assert itt["true_rate_ratio"] == 0.9 and itt["mde_rate_ratio"] == 0.8
    assert all(0 <= t["power"] <= 1 for t in itt["targets"])
    table = pd.read_csv(tmp_path / outputs.DESIGN_CHECK_CSV)
    assert set(table["estimand"]) == {"ITT population"} and len(table) == 3


def test_a_population_design_without_an_estimate_is_noted_not_checked(tmp_path):
    call = _call(tmp_path)
    pd.DataFrame().to_parquet(call.inputs["analysed"])
    pd.DataFrame(columns=["unit", "t"]).to_parquet(call.inputs["itt_panel"])
    call.inputs["itt_design"].write_text(json.dumps({"estimable": False,
                                                     "note": "not estimable: no roll-out"}))
    evaluate.design_check(call)
    check = json.loads((tmp_path / outputs.DESIGN_CHECK).read_text())
    assert check["itt"]["targets"] == [] and check["itt"]["note"] == "not estimable: no roll-out"
