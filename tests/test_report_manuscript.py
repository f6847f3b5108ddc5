"""The Typst manuscript builds from a results folder, complete or not."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

typst = pytest.importorskip("typst")

from phm_eval.report import build_manuscript  # noqa: E402
from phm_eval.report.manuscript import manuscript_data  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "report"
CONFIG = yaml.safe_load((FIXTURE / "results" / "manifest.json").read_text())["config"]
PDFTOTEXT = shutil.which("pdftotext")
if PDFTOTEXT is None and os.environ.get("PHM_EVAL_REQUIRE_BROWSER"):
    # CI installs poppler-utils: a missing pdftotext there must fail, not skip.
    raise RuntimeError("PHM_EVAL_REQUIRE_BROWSER is set but pdftotext is not installed")


def _fixture_module():
    spec = importlib.util.spec_from_file_location("report_fixture",
                                                  FIXTURE / "build_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pdf_text(path: Path) -> str | None:
    if PDFTOTEXT is None:
        return None
    done = subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True, timeout=60)
    return " ".join(done.stdout.replace("\u00ad", "").split())


def page_count(build: Path) -> int:
    """Pages, by compiling the kept build again to one PNG per page (no PDF parser needed)."""
    pages = typst.compile(str(build / "manuscript.typ"), root=str(build), format="png", ppi=8,
                          sys_inputs={"data": "/report.json", "results": "/results"},
                          ignore_system_fonts=True)
    return len(pages) if isinstance(pages, list) else 1


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("manuscript")
    results = _fixture_module().build_results(root)
    pdf = build_manuscript(results, config=CONFIG, keep_build=root / "build")
    return results, pdf, root / "build"


def test_pdf_is_written_where_the_workflow_expects_it(built):
    results, pdf, _ = built
    assert pdf == results / "manuscript" / "manuscript.pdf"
    head = pdf.read_bytes()[:8]
    assert head.startswith(b"%PDF-")
    assert page_count(built[2]) > 5


def test_every_output_is_used(built):
    _, _, build = built
    data = json.loads((build / "report.json").read_text())
    assert data["withheld"] == {}
    assert len(data["available"]) == 29  # 14 data files and 15 figures
    assert (build / "results" / "evaluate" / "km.png").exists()
    # The flow table reaches the paper already disclosed.
    assert data["flow"]["rows"][1][3] == "*"


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) not installed")
def test_headline_number_and_tables_appear(built):
    text = pdf_text(built[1])
    assert "67 fewer emergency admissions per 1,000 patients a year" in text
    assert "Synthetic data." in text
    assert "STROBE" in text and "TRIPOD+AI" in text
    # Read by Typst straight from risk/metrics.json and evaluate/effects.json.
    assert re.search(r"c-statistic was 0\.781 \(0\.773 to 0\.789\)", text)
    assert "0.86 (95% CI 0.78 to 0.95)" in text
    assert re.search(r"Callaway B, Sant.Anna PHC\. Difference-in-differences", text)


def test_same_results_give_the_same_pdf(built, tmp_path):
    results, pdf, _ = built
    again = build_manuscript(results, tmp_path / "again.pdf", config=CONFIG)
    assert again.read_bytes() == pdf.read_bytes()


def test_manuscript_degrades_without_outputs(tmp_path):
    empty = tmp_path / "results"
    empty.mkdir()
    pdf = build_manuscript(empty, config=CONFIG, keep_build=tmp_path / "build")
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert json.loads((tmp_path / "build" / "report.json").read_text())["available"] == []
    text = pdf_text(pdf)
    if text is not None:
        assert "The effect estimate is not available in this run." in text
        assert "not available in this run (evaluate/effects.json)" in text


def test_null_result_and_withheld_table(tmp_path):
    results = _fixture_module().build_results(tmp_path, figures=False)
    effects = json.loads((results / "evaluate" / "effects.json").read_text())
    effects[0].update(estimate=0.98, ci_low=0.88, ci_high=1.09)
    (results / "evaluate" / "effects.json").write_text(json.dumps(effects))
    (results / "segment" / "core20plus5.csv").write_text(
        "group,n_registered,n_enrolled\nLearning disability,205,3\n")
    data = manuscript_data(results, CONFIG)
    assert data["headline"]["verdict"] == "no_evidence"
    assert "segment/core20plus5.csv" in data["withheld"]
    assert "segment/core20plus5.csv" not in data["available"]
    pdf = build_manuscript(results, config=CONFIG, keep_build=tmp_path / "build")
    assert not (tmp_path / "build" / "results" / "segment" / "core20plus5.csv").exists()
    text = pdf_text(pdf)
    if text is not None:
        assert "There is no evidence that the programme reduced emergency admissions" in text
        assert "withheld: it fails the disclosure check (segment/core20plus5.csv)" in text
        assert "Learning disability,205,3" not in text
