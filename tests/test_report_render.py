"""The commissioner HTML report: content, disclosure, graceful gaps, null results."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from phm_eval.errors import InputError
from phm_eval.report import build_context, check_report_outputs, render_report

FIXTURE = Path(__file__).parent / "fixtures" / "report"
PATIENTS = FIXTURE / "patients.csv"
CONFIG = yaml.safe_load((FIXTURE / "results" / "manifest.json").read_text())["config"]
MINUS = "\u2212"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("report_fixture",
                                                  FIXTURE / "build_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The fixture results folder with its figures, built once per module."""
    return _fixture_module().build_results(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def results(pristine, tmp_path):
    """A private copy that a test may change."""
    return Path(shutil.copytree(pristine, tmp_path / "results"))


@pytest.fixture(scope="module")
def rendered(pristine, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "index.html"
    render_report(pristine, out, CONFIG)
    return out.read_text(encoding="utf-8")


def visible_text(html: str) -> str:
    body = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return " ".join(body.split())


def test_headline_in_plain_words_and_money(rendered):
    text = visible_text(rendered)
    assert "Fewer emergency admissions" in text
    assert ("Patients in the programme had about 67 fewer emergency admissions per 1,000 "
            "patients a year than comparable patients without it (95% confidence interval 24 to "
            "106 fewer).") in text
    assert "about £168,000 a year of hospital costs avoided per 1,000 patients" in text
    assert "480 × (1 − 0.86) ≈ 67 fewer" in text


def test_robustness_names_regression_to_the_mean_and_pretrends(rendered):
    text = visible_text(rendered)
    assert "shows 320 fewer emergency admissions per 1,000 patients a year" in text
    assert "regression to the mean" in text
    assert "overstated the effect about 5-fold" in text  # 320 / 65 = 4.9
    assert "chi-squared 3.21 on 4 degrees of freedom, p = 0.523" in text
    assert "Parallel trends check" in text and "check failed" not in text


def test_self_contained_page(rendered):
    # 15 report figures and the model card's two.
    assert rendered.count('<img src="data:image/png;base64,') == 17
    assert "<script" not in rendered
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", rendered)
    assert "@import" not in rendered and "url(" not in rendered
    assert "Content-Security-Policy" in rendered
    # Alt text is the description stored in each PNG.
    assert 'alt="Time to first emergency admission: test figure drawn for the report tests."' \
        in rendered


def test_every_table_has_caption_and_scoped_headers(rendered):
    tables = re.findall(r"<table>.*?</table>", rendered, flags=re.S)
    # 17 report tables (with the reviewers' record of each method), the design check and the
    # model card's two.
    assert len(tables) == 20
    for table in tables:
        assert "<caption" in table
        assert 'scope="col"' in table
    assert rendered.count("<h1>") == 1


def test_flow_table_is_disclosure_controlled(rendered):
    flow = re.search(r"Records read, excluded and kept.*?</table>", rendered, flags=re.S).group(0)
    cells = re.findall(r'<td class="num">([^<]*)</td>', flow)
    # True counts 41237, 3, 412, 40822 ... become 41,235, *, 410, 40,820 ...
    assert cells[:4] == ["41,235", "*", "410", "40,820"]
    assert "41237" not in rendered and "41,237" not in rendered
    assert cells[10] == "*"  # 5 admissions of patients outside the study population


def test_rendered_report_passes_the_release_check(rendered, tmp_path):
    (tmp_path / "index.html").write_text(rendered, encoding="utf-8")
    assert check_report_outputs(tmp_path, PATIENTS) == []


def test_synthetic_truth_table(rendered):
    text = visible_text(rendered)
    assert "Synthetic data: truth against estimate" in text
    assert "not from real patients" in text
    row = re.search(r"Realised rate ratio of admissions, 12 months.*?</tr>", rendered,
                    flags=re.S).group(0)
    assert ">0.85<" in row and "0.86 (95% CI 0.78 to 0.95)" in row and ">Yes<" in row
    row = re.search(r"Realised change in admissions.*?</tr>", rendered, flags=re.S).group(0)
    assert f">{MINUS}66<" in row and ">Yes<" in row


def test_des_targets_are_judged(rendered):
    text = visible_text(rendered)
    assert ("Below the Network Contract DES target in at least one year: Personalised care and "
            "support plans; Social prescribing referrals.") in text
    statuses = re.findall(r"(Below target|Within target range|Meets target|Above target range)",
                          re.search(r"personalised-care activity against targets.*?</table>",
                                    rendered, flags=re.S).group(0))
    # 11.1 in 10-15; 18.0 below 20; 7.1 below 8 (no upper target); 19.1 in 16-22.
    assert statuses == ["Within target range", "Below target", "Below target",
                        "Within target range"]


def test_null_result_reads_clearly(results, tmp_path):
    path = results / "evaluate" / "effects.json"
    effects = json.loads(path.read_text())
    effects[0].update(estimate=0.98, ci_low=0.88, ci_high=1.09)
    path.write_text(json.dumps(effects))
    html = render_report(results, tmp_path / "index.html", CONFIG).read_text()
    text = visible_text(html)
    assert "No evidence of a reduction in emergency admissions" in text
    assert "Fewer emergency admissions" not in text
    # 480 x (0.98 - 1) = -9.6; 480 x -0.12 = -57.6; 480 x 0.09 = 43.2.
    assert ("The best estimate is 10 fewer emergency admissions per 1,000 patients a year, but "
            "the 95% confidence interval runs from 58 fewer to 43 more, which includes no "
            "change: there is no evidence that the programme reduced emergency admissions.") \
        in text
    assert "so no saving is shown" in text
    assert "does not prove the programme has no effect" in text
    assert "Anything from 58 fewer to 43 more per 1,000 patients a year is consistent" in text


def test_failed_pretrend_is_a_warning(results, tmp_path):
    (results / "evaluate" / "pretrend.json").write_text(
        json.dumps({"statistic": 14.2, "df": 4, "p_value": 0.0067}))
    text = visible_text(render_report(results, tmp_path / "i.html", CONFIG).read_text())
    assert "Parallel trends check failed" in text
    assert "p = 0.007" in text and "read it with caution" in text


def test_every_section_degrades_when_outputs_are_missing(tmp_path):
    empty = tmp_path / "results"
    empty.mkdir()
    html = render_report(empty, tmp_path / "index.html", CONFIG).read_text()
    text = visible_text(html)
    context = build_context(empty, CONFIG)
    unavailable = [s["id"] for s in context["sections"] if not s["available"]]
    assert unavailable == ["headline", "robustness", "who-benefits", "population",
                           "risk-model", "segmentation", "des", "data-quality", "truth",
                           "provenance"]
    assert text.count("Not available in this run.") == len(unavailable)
    assert "The estimated effect of the programme: not available in this run." in text
    assert "evaluate/effects.json" in text
    assert "<img" not in html
    # Methods come from the configuration, so they are still there.
    assert "Methods in brief" in text and "Evaluation of the enrolled: each enrolled patient" in text


def test_partial_run_shows_what_exists(tmp_path):
    results = tmp_path / "results"
    (results / "internal" / "data").mkdir(parents=True)
    shutil.copy(FIXTURE / "results" / "internal" / "data" / "flow.csv",
                results / "internal" / "data" / "flow.csv")
    context = build_context(results, {"input": {"source": "folder"}})
    sections = {s["id"]: s for s in context["sections"]}
    assert sections["data-quality"]["available"]
    assert not sections["headline"]["available"]
    assert "truth" not in sections  # real data: no truth section at all
    assert "evaluate/effects.json" in context["missing"]


def test_table_breaking_disclosure_is_withheld(results, tmp_path):
    path = results / "segment" / "core20plus5_reach.csv"
    path.write_text("row,n_eligible,n_enrolled,enrolment_per_1000\n"
                    "plus:learning_disability,205,3,14.6\n")
    (results / "segment" / "core20plus5_reach.sdc.json").unlink()
    html = render_report(results, tmp_path / "index.html", CONFIG).read_text()
    text = visible_text(html)
    assert ("Core20PLUS5: reach of the programme in groups facing health inequalities: withheld "
            "because segment/core20plus5_reach.csv fails the disclosure check") in text
    assert "people with a learning disability" not in text.split("Who benefits?")[1].split(
        "The population")[0]


def test_text_from_outputs_is_escaped(results, tmp_path):
    path = results / "evaluate" / "effects.json"
    effects = json.loads(path.read_text())
    effects[0]["method"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(effects))
    html = render_report(results, tmp_path / "index.html", CONFIG).read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_broken_output_stops_the_report(results, tmp_path):
    (results / "risk" / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="metrics.json: not valid JSON"):
        render_report(results, tmp_path / "index.html", CONFIG)


def test_config_defaults_to_the_manifest(pristine, tmp_path):
    html = render_report(pristine, tmp_path / "index.html").read_text()
    assert "Proactive care: who it reached and what it changed" in html
    assert "about £168,000 a year" in html


def test_both_estimands_primary_first_with_mde_and_design_check(rendered):
    text = visible_text(rendered)
    head = text[text.index("Primary estimate: effect on the patients enrolled"):
                text.index("How sure can we be?", text.index("Primary estimate"))]
    assert "could reliably detect a reduction of 13% or more" in head
    assert "The other question: effect on the whole eligible population" in head
    assert "could reliably detect a reduction of 9% or more" in head
    # The verdicts differ, so the report says why.
    assert "answer different questions about different people" in head
    assert "At the rate ratio built into these synthetic data (0.85), the evaluation detected " \
           "the effect in 91% of simulations" in head
    assert head.index("effect on the patients enrolled") < head.index("eligible population")


def test_no_evidence_always_comes_with_what_the_design_could_detect(results, tmp_path):
    path = results / "evaluate" / "effects.json"
    effects = json.loads(path.read_text())
    effects[0].update(estimate=0.98, ci_low=0.88, ci_high=1.09, mde_rate_ratio=None,
                      mde_sentence=None)
    path.write_text(json.dumps(effects))
    (results / "evaluate" / "design_check.json").unlink()
    html = render_report(results, tmp_path / "index.html", CONFIG).read_text()
    text = visible_text(html)
    # A table may say the power statement of its rows once, in its notes: the table and its
    # notes are the "after" of each row's "no evidence".
    notes = {visible_text(m.group(1)): visible_text(m.group(2)) for m in re.finditer(
        r"(<table>.*?</table>)\s*</div>\s*<div class=\"table-notes\">(.*?)</div>", html,
        flags=re.S)}
    for match in re.finditer(r"no (clear )?evidence", text, flags=re.I):
        after = text[match.start():match.start() + 600]
        after += " ".join(n for t, n in notes.items() if text[match.start():match.end() + 80]
                          in t)
        assert "could reliably detect" in after or "power to detect an effect was not " \
               "assessed" in after, after
    assert "plasmode" not in text


def test_population_estimand_can_be_primary(results, tmp_path):
    path = results / "evaluate" / "effects.json"
    effects = json.loads(path.read_text())
    for record in effects:
        record["primary"] = record.get("estimand") == "ITT population" and record["scale"] == "RR"
        record.pop("headline", None)
    effects[6].update(estimate=0.90, ci_low=0.84, ci_high=0.96)  # agrees with the matched one
    path.write_text(json.dumps(effects))
    text = visible_text(render_report(results, tmp_path / "index.html", CONFIG).read_text())
    assert "Primary estimate: effect on the whole eligible population" in text
    assert "Across everyone eligible in the practices that offered the programme" in text
    assert "The other question: effect on the patients enrolled" in text
    assert "answer different questions about different people" not in text
