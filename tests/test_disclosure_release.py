"""The release check: every file of a results folder but internal/ passes disclosure control."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from conftest import make_patients

from phm_eval.cli import main
from phm_eval.disclosure import DisclosurePolicy, apply_disclosure
from phm_eval.disclosure.release import check_release, disclose_json, scan_release
from phm_eval.risk.develop import develop_risk_model, example_risk_features
from phm_eval.risk.model_card import model_card_html

PATIENT_IDS = ["SYN00004711", "SYN00012345", "SYN00099999"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
def patients(tmp_path):
    path = tmp_path / "patients.csv"
    make_patients(PATIENT_IDS, sex=["F", "M", "F"]).to_csv(path, index=False)
    return path


def _clean_results(root):
    """A release folder as the workflow writes it, every count disclosed."""
    table = apply_disclosure(
        pd.DataFrame({"tier": ["top", "rest"], "patients": [143, 3861],
                      "pct": [0.0, 0.0]}).set_index("tier"),
        count_cols=["patients"], rate_cols={"pct": ("patients", "patients", 100)})
    (root / "segment").mkdir(parents=True)
    table.to_csv(root / "segment" / "risk_tiers.csv")
    (root / "risk").mkdir()
    (root / "risk" / "metrics.json").write_text(json.dumps({
        "c_statistic": {"estimate": 0.781, "ci_low": 0.773, "ci_high": 0.789},
        "calibration_slope": {"estimate": 1.0, "ci_low": 0.93, "ci_high": 1.07},
        "oe_ratio": {"estimate": 1.0, "ci_low": 1.0, "ci_high": 1.0},
        "observed_risk": 0.081, "n_development": 40115, "events": 3240,
        "n_bootstrap": 4, "optimism_corrected": [{"metric": "c_statistic", "n_bootstrap": 3}],
        "internal_external": {"cluster": "practice_id", "n_clusters": 6, "k": 6,
                              "min_cluster_events": 5},
        "risk_tiers": [{"tier": "top 0.5%", "n_flagged": 20, "events_flagged": 0,
                        "ppv": 0.0, "mean_predicted_risk": 0.41}],
    }))
    (root / "risk" / "model_card.md").write_text(
        "# Model card\n\nDevelopment sample: 40,115 patients, 3,240 with the outcome (8.1%).\n"
        "Statistics describing 7 people or fewer are suppressed; 1 in 5 patients were "
        "flagged.\n\n"
        "| Criterion | Required n | Required events | Events per parameter |\n"
        "| --- | --- | --- | --- |\n| 1: shrinkage | 4,851 | 415.6 | 11.2 |\n\n"
        "| Variable | Group | n | Events | Expected events | c | O/E | Slope |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| sex | F | 1,230 | 110 | 112.4 | 0.699 | 1.000 | 1.000 |\n"
        "| ethnicity | Other | 50 | * | * | * | * | * |\n\n"
        "![ROC curve](roc.png)\n")
    (root / "risk" / "roc.png").write_bytes(PNG)
    (root / "evaluate").mkdir()
    (root / "evaluate" / "km.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><text>0</text><text>2</text><text>4</text>'
        "<text>Admissions</text><text>Enrolled (n = 1,240)</text></svg>")
    (root / "report").mkdir()
    (root / "report" / "index.html").write_text(
        "<html><body><p>We matched 1,240 patients; admissions fell by 12 per 1,000 "
        "patients.</p><table><tr><th>Tier</th><th>Patients</th><th>Rate per 1,000</th>"
        "<th>Share</th></tr><tr><td>top</td><td>145</td><td>3.0</td><td>1.000</td></tr>"
        "</table></body></html>")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "risk_model.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tio_in\n12.3\t0:00:12\t301.2\t812.0\t3\n")
    internal = root / "internal"
    (internal / "data").mkdir(parents=True)
    pd.DataFrame({"patient_id": PATIENT_IDS, "n": [1, 2, 3]}).to_csv(
        internal / "data" / "patients.csv", index=False)
    (internal / "risk").mkdir()
    (internal / "risk" / "risk_model_report.json").write_text(
        json.dumps({"n": 4013, "events": 3, "per_cluster": [{"cluster": "P1", "n": 2}]}))
    (internal / "risk" / "predictions.parquet").write_bytes(b"PAR1\x00\x01PAR1")
    (internal / "logs").mkdir()
    (internal / "logs" / "risk.log").write_text("SYN00004711 had n = 3 admissions\n")
    return root


@pytest.fixture
def results(tmp_path):
    return _clean_results(tmp_path / "results")


def test_clean_release_folder_passes(results, patients):
    assert check_release(results, patients) == []
    outcome = scan_release(results, patients)
    assert outcome.passed
    assert outcome.not_scanned == [
        ("risk/roc.png", "image or document: not readable as text; trusted only if drawn "
                         "from disclosed tables")]
    assert sorted(outcome.scanned) == [
        "benchmarks/risk_model.tsv", "evaluate/km.svg", "report/index.html",
        "risk/metrics.json", "risk/model_card.md", "segment/risk_tiers.csv",
        "segment/risk_tiers.sdc.json"]
    assert outcome.internal == 4  # counted, never read
    assert outcome.notes == []


def test_each_kind_of_breach_in_releasable_files(results, patients):
    csv = results / "segment" / "risk_tiers.csv"
    csv.write_text(csv.read_text().replace("145", "6"))
    metrics = json.loads((results / "risk" / "metrics.json").read_text())
    metrics["n"] = 3
    (results / "risk" / "metrics.json").write_text(json.dumps(metrics))
    card = results / "risk" / "model_card.md"
    card.write_text(card.read_text().replace("| 1,230 | 110 |", "| 1,230 | 4 |"))
    svg = results / "evaluate" / "km.svg"
    svg.write_text(svg.read_text().replace("Admissions", "Admissions of SYN00012345"))
    problems = check_release(results, patients)
    assert problems == [
        "[error] evaluate/km.svg, row line 1: a patient identifier appears in the file "
        "(value sy…)",
        "[error] risk/metrics.json $, column 'n': small count shown: counts of 1-7 must be "
        "suppressed and the smallest count shown is 10 (value 3)",
        "[error] risk/model_card.md (table 2), column 'Events', row 1: small count shown: "
        "counts of 1-7 must be suppressed and the smallest count shown is 10 (value 4)",
        "[error] segment/risk_tiers.csv, column 'patients', row 1: small count shown: counts "
        "of 1-7 must be suppressed and the smallest count shown is 10 (value 6)",
    ]
    # the small counts and the identifier under internal/ are never reported
    assert not any("internal" in p for p in problems)


def test_unrounded_counts_in_json_prose_and_html(results, patients):
    metrics = json.loads((results / "risk" / "metrics.json").read_text())
    metrics["internal_external"]["pooled"] = {"metrics": {"n": 40113, "c_statistic": 0.7},
                                              "decision_curve": [{"threshold": 0.1,
                                                                  "true_positives": 257}]}
    (results / "risk" / "metrics.json").write_text(json.dumps(metrics))
    card = results / "risk" / "model_card.md"
    card.write_text(card.read_text().replace("3,240 with", "3,241 with"))
    page = results / "report" / "index.html"
    page.write_text(page.read_text().replace("<td>145</td>", "<td>143</td>"))
    problems = check_release(results, patients)
    assert [re.sub(r": .*", "", p.removeprefix("[error] ")) for p in problems] == [
        "report/index.html (table 1), column 'Patients', row 1",
        "risk/metrics.json $.internal_external.pooled.decision_curve, column 'true_positives', "
        "row 1",
        "risk/metrics.json $.internal_external.pooled.metrics, column 'n'",
        "risk/model_card.md",
    ]
    assert "(value 3,241 with the outcome)" in problems[-1]


def test_data_file_outside_internal_is_an_error(results):
    (results / "risk" / "predictions.parquet").write_bytes(b"PAR1\x00\x01PAR1")
    (results / "manuscript").mkdir()
    (results / "manuscript" / "manuscript.pdf").write_bytes(b"%PDF-1.7\n\x00\xff")
    outcome = scan_release(results)
    assert [str(v) for v in outcome.errors] == [
        "[error] risk/predictions.parquet: a data file in the releasable part of the folder "
        "(patient-level and unrounded files belong under internal/)"]
    assert [n for n, _ in outcome.not_scanned] == ["manuscript/manuscript.pdf", "risk/roc.png"]
    assert outcome.notes == ["no patients table given: patient identifiers were not searched "
                             "for"]


def test_policy_from_the_runs_manifest(results):
    # Under midpoint-6 rounding counts are multiples of 3: 40,115 cannot be one.
    (results / "manifest.json").write_text(json.dumps(
        {"seed": 1, "platform": {"cpu_count": 2},
         "config": {"disclosure": {"preset": "opensafely_midpoint6"},
                    "synthetic": {"n_patients": 40000, "n_practices": 6}}}))
    problems = check_release(results)
    assert any("n_development" in p and "midpoint-6" in p for p in problems)
    assert check_release(results, policy={"preset": "nhs_digital"}) == []


def test_disclose_json_makes_counts_pass():
    data = {"n": 4013, "events": 3, "c_statistic": 0.71, "n_bootstrap": 4,
            "subgroups": [{"group": "F", "n": 2043, "events": 5, "c_statistic": 0.6,
                           "mean_predicted_risk": 0.1},
                          {"group": "M", "n": 1970, "events": 298, "c_statistic": 0.7}],
            "decision_curve": [{"threshold": 0.3, "true_positives": 2, "net_benefit": 0.01}]}
    out = disclose_json(data)
    assert out["n"] == 4015 and out["events"] is None and out["n_bootstrap"] == 4
    assert out["c_statistic"] is None  # a statistic beside a suppressed count
    assert out["subgroups"][0] == {"group": "F", "n": 2045, "events": None,
                                   "c_statistic": None, "mean_predicted_risk": None}
    assert out["subgroups"][1] == {"group": "M", "n": 1970, "events": 300, "c_statistic": 0.7}
    assert out["decision_curve"][0] == {"threshold": 0.3, "true_positives": None,
                                        "net_benefit": None}


def test_check_outputs_command(results, patients, capsys):
    assert main(["check-outputs", str(results), "--patients", str(patients)]) == 0
    out = capsys.readouterr().out
    assert "passes disclosure control" in out and "risk/roc.png" in out
    # without --patients it finds the run's own table under internal/data/
    metrics = results / "risk" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"k": 6', '"k": 6, "note": "SYN00099999"'))
    assert main(["check-outputs", str(results)]) == 1
    err = capsys.readouterr().err
    assert "internal/data" in err and "a patient identifier appears in the file" in err
    assert "1 disclosure problem(s)" in err


# ------------------------------------------------------------------ the risk model's outputs
@pytest.fixture(scope="module")
def risk_outputs(tmp_path_factory):
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("run")
    development = example_risk_features(3000, seed=5, n_practices=12,
                                        practices_per_pcn=3)
    development.loc[development.index[:37], "imd_decile"] = None
    later = example_risk_features(2500, seed=9, n_practices=12, practices_per_pcn=3)
    with threadpool_limits(limits=1):
        report = develop_risk_model(
            development, {"n_bootstrap": 20, "n_optimism_bootstrap": 2,
                          "min_cluster_events": 5},
            validation_features=later, output_dir=root / "risk",
            report_json_dir=root / "internal" / "risk",
            model_card_options={"policy": DisclosurePolicy()})
    return root, report


def test_model_card_counts_are_disclosed(risk_outputs):
    root, report = risk_outputs
    assert (root / "internal" / "risk" / "risk_model_report.json").exists()
    assert not (root / "risk" / "risk_model_report.json").exists()
    assert check_release(root) == []
    card = (root / "risk" / "model_card.md").read_text()
    assert report.n == 3000 and report.events % 5 != 0  # the test needs an unrounded count
    shown = round(report.events / 5) * 5
    assert f"3,000 patients, {shown:,} with the outcome ({100 * shown / 3000:.1f}%)" in card
    assert f"{report.events:,} with" not in card
    assert "Counts in this card are disclosure-controlled" in card
    # the full, unrounded report fails if it is left in the releasable part of the folder
    (root / "risk" / "leak.json").write_text(
        (root / "internal" / "risk" / "risk_model_report.json").read_text())
    try:
        assert len(check_release(root)) > 50
    finally:
        (root / "risk" / "leak.json").unlink()


def test_model_card_html_embeds_figures_and_stays_disclosed(risk_outputs, tmp_path):
    root, _ = risk_outputs
    card = (root / "risk" / "model_card.md").read_text()
    page = model_card_html(card, image_dir=root / "risk")
    assert page.count('<img src="data:image/png;base64,') == card.count("![")
    assert "<table>" in page and "<h2>" in page and "<h3>Intended use</h3>" in page
    assert not re.search(r"!\[|\]\(|^#|\| ---", page, re.MULTILINE)  # no Markdown left
    (tmp_path / "index.html").write_text(f"<html><body>{page}</body></html>")
    assert check_release(tmp_path) == []
    linked = model_card_html(card, image_dir="risk", embed=False)
    assert '<img src="risk/roc.png" alt="ROC curve">' in linked
