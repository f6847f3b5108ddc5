"""The Typst manuscript builds from a results folder, complete or not; its Methods describe only
what ran, its Discussion follows the result, and its main text fits in 12 pages."""

from __future__ import annotations

import copy
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
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None,
                                     reason="pdftotext (poppler-utils) not installed")

SUPPLEMENT = "Supplementary material"
MAX_MAIN_PAGES = 12


def _fixture_module():
    spec = importlib.util.spec_from_file_location("report_fixture",
                                                  FIXTURE / "build_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clean(text: str) -> str:
    # Typst hyphenates at line ends: join "admis-\nsion" and "difference-in-\ndifferences".
    text = re.sub("\u00ad\\s*\n\\s*", "", text).replace("\u00ad", "")
    text = re.sub(r"(?<=\w-)\s*\n\s*(?=\w)", "", text)
    return " ".join(text.split())


def _body(page: str) -> str:
    """A page without its running header (first line, from page 2) and page number."""
    lines = page.splitlines()
    if lines and " — synthetic data" in lines[0] or lines and lines[0].strip() in (
            CONFIG["report"]["title"], "Proactive care"):
        lines = lines[1:]
    return "\n".join(line for line in lines if not re.fullmatch(r"\s*\d+\s*", line))


def pdf_pages(path: Path) -> list[str]:
    """The PDF's text page by page (pdftotext separates pages with form feeds), without
    running headers and page numbers."""
    done = subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True, timeout=60)
    pages = done.stdout.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    return [_body(page) for page in pages]


def pdf_text(path: Path) -> str | None:
    if PDFTOTEXT is None:
        return None
    return _clean("\n".join(pdf_pages(path)))


def main_text_pages(path: Path) -> tuple[int, int]:
    """(pages before the supplement heading, pages in all)."""
    pages = pdf_pages(path)
    for number, page in enumerate(pages, start=1):
        if any(line.strip() == SUPPLEMENT for line in page.splitlines()):
            return number - 1, len(pages)
    raise AssertionError("no supplement heading in the PDF")


def section(text: str, start: str, end: str) -> str:
    """The text between two numbered headings, e.g. "2 Methods" and "3 Results"."""
    match = re.search(rf"\b{re.escape(start)}\b(.*?)\b{re.escape(end)}\b", text, flags=re.S)
    assert match, f"no section between {start!r} and {end!r}"
    return match.group(1)


def methods_of(text: str) -> str:
    return section(text, "2 Methods", "3 Results")


def discussion_of(text: str) -> str:
    return section(text, "4 Discussion", "5 Data, code and reproducibility")


def page_count(build: Path) -> int:
    """Pages, by compiling the kept build again to one PNG per page (no PDF parser needed)."""
    pages = typst.compile(str(build / "manuscript.typ"), root=str(build), format="png", ppi=8,
                          sys_inputs={"data": "/report.json", "results": "/results"},
                          ignore_system_fonts=True)
    return len(pages) if isinstance(pages, list) else 1


# --------------------------------------------------------------------------- the run's record
#: Effect records written into each test's copy of the fixture (the committed fixture may
#: change for the HTML report): an enrolled-patient (ATT) primary with its MDE, secondary ATT
#: analyses, the population (ITT) staggered difference in differences, and subgroups.
EFFECTS = [
    {"outcome": "emergency admissions", "label": "emergency admissions, rate ratio",
     "method": "negative binomial rate ratio (matched, adjusted)", "scale": "RR",
     "estimate": 0.86, "ci_low": 0.78, "ci_high": 0.95, "n_treated": 1240, "n_control": 1240,
     "baseline_rate_per_1000": 480.0, "headline": True, "primary": True,
     "estimand": "ATT enrolled", "fallback": None, "note": None,
     "se_method": "cluster-robust (sandwich) standard errors clustered on matched sets; "
                  "1240 clusters",
     "mde_rate_ratio": 0.87,
     "mde_sentence": "this evaluation could reliably detect a reduction of 13 % or more (a "
                     "rate ratio of 0.87 or lower, with 80 % power)"},
    {"outcome": "first emergency admission", "label": "first emergency admission hazard ratio",
     "method": "Cox proportional hazards (cause-specific, matched)", "scale": "HR",
     "estimate": 0.89, "ci_low": 0.80, "ci_high": 0.99, "n_treated": 1240, "n_control": 1240,
     "estimand": "ATT enrolled", "primary": False, "fallback": None, "note": None},
    {"outcome": "first emergency admission",
     "label": "first emergency admission, death as competing risk",
     "method": "Fine-Gray subdistribution hazards (matched)", "scale": "SHR",
     "estimate": 0.90, "ci_low": 0.81, "ci_high": 1.00, "n_treated": 1240, "n_control": 1240,
     "estimand": "ATT enrolled", "primary": False, "fallback": None, "note": None},
    {"outcome": "emergency admissions", "label": "naive before/after rate ratio",
     "method": "naive before/after (enrolled only, uncontrolled)", "scale": "RR",
     "estimate": 0.74, "ci_low": 0.70, "ci_high": 0.78, "n_treated": 1240, "n_control": 0,
     "estimand": "ATT enrolled", "primary": False, "fallback": None, "note": None},
    {"outcome": "emergency admissions",
     "label": "emergency admissions among the eligible population, rate ratio (intention to "
              "treat)",
     "method": "population difference in differences (Callaway & Sant'Anna, staggered "
               "adoption, never- and not-yet-treated comparison units, person-time weighted, "
               "clustered on PCN)", "scale": "RR",
     "estimate": 0.97, "ci_low": 0.90, "ci_high": 1.05, "n_treated": 10240, "n_control": 9875,
     "estimand": "ITT population", "primary": False, "unit": "practice",
     "n_units_treated": 6, "n_units_control": 5, "fallback": None, "note": None},
    {"outcome": "emergency admissions", "label": "moderate/severe",
     "method": "negative binomial rate ratio (matched, adjusted)", "scale": "RR",
     "subgroup": "efi_group=moderate/severe", "estimate": 0.80, "ci_low": 0.70,
     "ci_high": 0.91, "n_treated": 855, "n_control": 855, "estimand": "ATT enrolled"},
    {"outcome": "emergency admissions", "label": "fit/mild",
     "method": "negative binomial rate ratio (matched, adjusted)", "scale": "RR",
     "subgroup": "efi_group=fit/mild", "estimate": 0.97, "ci_low": 0.82, "ci_high": 1.15,
     "n_treated": 385, "n_control": 385, "estimand": "ATT enrolled"},
]

IECV = {"cluster": "practice_id", "requested_cluster": "pcn_id", "n_clusters": 11,
        "n_usable_clusters": 11, "min_usable_clusters": 3,
        "note": "internal-external validation by practice instead of PCN: 2 PCN(s), 2 of them "
                "with at least 5 patients with and 5 without the outcome; at least 3 such are "
                "needed",
        "random_effects_c_statistic": {"c_statistic": 0.77, "lower": 0.74, "upper": 0.80,
                                       "prediction_lower": 0.70, "prediction_upper": 0.84,
                                       "k": 11}}


def make_results(root: Path, *, effects=None, metrics=None, figures: bool = False,
                 manifest=None, files=None, drop=()) -> Path:
    """A private copy of the fixture with the given effect records and risk metrics;
    ``files`` (relative path -> text) written over it and ``drop`` (relative paths) removed."""
    results = _fixture_module().build_results(root, figures=figures)
    (results / "evaluate" / "effects.json").write_text(
        json.dumps(EFFECTS if effects is None else effects))
    base = json.loads((results / "risk" / "metrics.json").read_text())
    base.pop("internal_external", None)
    base |= {"internal_external": IECV, "optimism_corrected": {"c_statistic": 0.004}}
    (results / "risk" / "metrics.json").write_text(json.dumps(
        base if metrics is None else metrics(base)))
    if manifest is not None:
        record = json.loads((results / "manifest.json").read_text())
        (results / "manifest.json").write_text(json.dumps(manifest(record)))
    for relative, text in (files or {}).items():
        (results / relative).write_text(text)
    for relative in drop:
        target = results / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return results


def build(root: Path, config=None, **kwargs) -> tuple[Path, str]:
    results = make_results(root, **kwargs)
    pdf = build_manuscript(results, config=CONFIG if config is None else config)
    return pdf, pdf_text(pdf) or ""


def with_primary(**changes) -> list[dict]:
    effects = copy.deepcopy(EFFECTS)
    effects[0].update(changes)
    return effects


# --------------------------------------------------------------------------- the committed fixture
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
    _, _, build_dir = built
    data = json.loads((build_dir / "report.json").read_text())
    assert data["withheld"] == {}
    assert len(data["available"]) == 29  # 14 data files and 15 figures
    assert (build_dir / "results" / "evaluate" / "km.png").exists()
    # The flow table reaches the paper already disclosed.
    assert data["flow"]["rows"][1][3] == "*"


@needs_pdftotext
def test_headline_number_and_tables_appear(built):
    text = pdf_text(built[1])
    assert "67 fewer emergency admissions per 1,000 patients a year" in text
    assert "Synthetic data." in text
    assert "STROBE" in text and "TRIPOD+AI" in text and "RECORD" in text
    # Read by Typst straight from risk/metrics.json and evaluate/effects.json.
    assert re.search(r"c-statistic was 0\.781 \(0\.773 to 0\.789\)", text)
    assert "0.86 (95% CI 0.78 to 0.95)" in text


@needs_pdftotext
def test_long_tables_are_in_the_supplement_after_the_references(built):
    pages = [_clean(p) for p in pdf_pages(built[1])]
    main, total = main_text_pages(built[1])
    assert main <= MAX_MAIN_PAGES and total > main
    main_text, supplement = " ".join(pages[:main]), " ".join(pages[main:])
    assert "References" in main_text and "References" not in supplement
    assert "Table S1: Reporting checklist" in supplement
    # the prevalence table by age band and IMD is in the supplement and only there
    assert re.search(r"Table S\d+: Recorded prevalence of long-term conditions by age band",
                     supplement)
    assert "Recorded prevalence of long-term conditions by age band" not in main_text
    # the checklist points at numbered sections of the main text
    assert re.search(r"Section 2\.\d", supplement) and re.search(r"Section 4\.\d", supplement)


def test_same_results_give_the_same_pdf(built, tmp_path):
    results, pdf, _ = built
    again = build_manuscript(results, tmp_path / "again.pdf", config=CONFIG)
    assert again.read_bytes() == pdf.read_bytes()


# --------------------------------------------------------------------------- 12 pages
def _long_outputs(results: Path) -> None:
    """Outputs the size of a real run's: prevalence by condition x age band x IMD quintile,
    a balance table with one-hot index months, many subgroups, a long flow table."""
    conditions = ["asthma", "atrial_fibrillation", "chd", "ckd", "copd", "dementia",
                  "diabetes", "heart_failure", "hypertension", "learning_disability", "smi",
                  "cancer", "epilepsy", "osteoporosis"]
    lines = ["condition,age_band,imd_quintile,n_with_condition,n_registered,prevalence_percent"]
    for i, condition in enumerate(conditions):
        for j, band in enumerate(["0-17", "18-39", "40-64", "65-79", "80+"]):
            for q in ["1", "2", "3", "4", "5", "unknown"]:
                n, d = 10 * (i + j + 2), 1500
                lines.append(f"{condition},{band},{q},{n},{d},{100 * n / d:.2f}")
    (results / "describe" / "ltc_prevalence.csv").write_text("\n".join(lines) + "\n")
    lines = ["covariate,smd_before,smd_after"]
    lines += [f"index_month_code{2019 + k // 12}-{k % 12 + 1:02d},0.{k + 10},0.0{k % 9}"
              for k in range(48)]
    (results / "evaluate" / "balance.csv").write_text("\n".join(lines) + "\n")
    lines = ["subgroup,level,n,events,c_statistic,calibration_slope,oe_ratio"]
    lines += [f"practice,P{k:03d},{1000 + 10 * k},{100 + 5 * k},0.7{k % 10},0.9{k % 10},1.0{k % 10}"
              for k in range(40)]
    (results / "risk" / "subgroup_metrics.csv").write_text("\n".join(lines) + "\n")
    effects = copy.deepcopy(EFFECTS)
    for k in range(24):
        effects.append({"outcome": "emergency admissions", "label": f"practice {k}",
                        "method": "negative binomial rate ratio (matched, adjusted)",
                        "scale": "RR", "subgroup": f"practice=P{k:03d}", "estimate": 0.9,
                        "ci_low": 0.6, "ci_high": 1.3, "n_treated": 50, "n_control": 50})
    (results / "evaluate" / "effects.json").write_text(json.dumps(effects))


@needs_pdftotext
def test_main_text_is_at_most_12_pages_with_a_real_runs_long_tables(tmp_path):
    results = make_results(tmp_path, figures=True)
    _long_outputs(results)
    pdf = build_manuscript(results, config=CONFIG)
    main, total = main_text_pages(pdf)
    assert main <= MAX_MAIN_PAGES, f"main text runs to {main} pages"
    assert total - main >= 8  # the long tables went somewhere: the supplement
    text = pdf_text(pdf)
    assert "References" in _clean(" ".join(pdf_pages(pdf)[:main]))
    assert "osteoporosis" in text.split(SUPPLEMENT, 1)[1].lower()


# --------------------------------------------------------------------------- Methods = record
#: Claims the Methods may make, each with what in the run's record licenses it.
CLAIMS = {
    r"propensity score": lambda e, m: any(r.get("estimand") == "ATT enrolled" and
                                          "naive" not in r["method"] for r in e),
    r"staggered difference-in-differences|Callaway": lambda e, m: any(
        r.get("estimand") == "ITT population" for r in e),
    r"Fine-Gray": lambda e, m: any(r["scale"] == "SHR" for r in e),
    r"Cox proportional hazards": lambda e, m: any("Cox" in r["method"] for r in e),
    r"Poisson": lambda e, m: any("Poisson" in r["method"] for r in e),
    r"[Ii]nternal-external": lambda e, m: "internal_external" in m,
    r"[Oo]ptimism": lambda e, m: m.get("optimism_corrected") is not None,
    r"[Uu]ncontrolled before-and-after": lambda e, m: any("naive" in r["method"] for r in e)
    or True,  # also licensed by evaluate/rtm.csv, present in every copy of the fixture
}


def _check_claims(methods: str, effects: list[dict], metrics: dict) -> None:
    for pattern, licensed in CLAIMS.items():
        found = re.search(pattern, methods) is not None
        if found:
            assert licensed(effects, metrics), f"Methods claim {pattern!r} without a record"


@needs_pdftotext
def test_methods_describe_what_ran(tmp_path):
    # as recorded: matched ATT, population ITT, IECV by practice (PCN requested)
    pdf, text = build(tmp_path / "full")
    methods = methods_of(text)
    metrics = json.loads((tmp_path / "full" / "results" / "risk" / "metrics.json").read_text())
    _check_claims(methods, EFFECTS, metrics)
    assert "staggered difference-in-differences estimator of Callaway and Sant'Anna" in methods
    assert "propensity score" in methods and "caliper of 0.2" in methods
    assert "left out one practice at a time" in methods
    assert "planned by PCN and run by practice" in methods
    assert "by PCN." not in methods and "one PCN at a time" not in methods
    assert "statsmodels 0.14.2" in methods and "commit 0123456789ab" in methods
    # the recorded method in words, with the model's name (the record itself is Table S10)
    assert "negative binomial regression" in methods
    assert "adjusted for differences at baseline" in methods
    assert "clustered on matched sets" in methods
    assert "with death counted as preventing it (Fine-Gray subdistribution hazards model)" \
        in methods


@needs_pdftotext
def test_no_population_record_no_difference_in_differences(tmp_path):
    effects = [r for r in EFFECTS if r.get("estimand") != "ITT population"]
    _, text = build(tmp_path, effects=effects)
    methods = methods_of(text)
    _check_claims(methods, effects, {"internal_external": 1, "optimism_corrected": 1})
    for phrase in ("staggered", "Callaway", "difference-in-differences", "intention to treat"):
        assert phrase not in methods, phrase
    abstract = text.split("Conclusions.")[0]
    assert "difference-in-differences" not in abstract
    assert "Callaway B, Sant'Anna PHC" not in text  # an uncited reference is not listed


@needs_pdftotext
def test_internal_external_unit_is_the_one_used(tmp_path):
    by_pcn = {**IECV, "cluster": "pcn_id", "note": None}
    _, text = build(tmp_path / "pcn", metrics=lambda m: m | {"internal_external": by_pcn})
    methods = methods_of(text)
    assert "left out one PCN at a time" in methods
    assert "one practice at a time" not in methods and "run by practice" not in methods
    # skipped: said so, with the reason; no claim that it ran
    skipped = {**IECV, "cluster": None, "note": "internal-external validation not run: 1 "
                                                "PCN(s), 1 of them with at least 5 patients"}
    _, text = build(tmp_path / "none", metrics=lambda m: m | {"internal_external": skipped})
    methods = methods_of(text)
    assert "planned but not run" in methods and "left out one" not in methods
    # not in the record at all: not mentioned
    _, text = build(tmp_path / "absent", metrics=lambda m: {
        k: v for k, v in m.items() if k not in ("internal_external", "optimism_corrected")})
    methods = methods_of(text)
    assert "nternal-external" not in methods and "ptimism" not in methods


@needs_pdftotext
def test_methods_name_the_fallback_that_ran_and_the_recorded_versions(tmp_path):
    effects = with_primary(
        method="Poisson rate ratio, robust SEs (dispersion not positive; matched)",
        fallback="negative binomial not used (estimated dispersion is not positive)")
    _, text = build(tmp_path, effects=effects, manifest=lambda m: m | {
        "packages": {**m["packages"], "statsmodels": "0.99.1"}})
    methods = methods_of(text)
    primary = methods[methods.index("The primary analysis"):].split(".")[0]
    assert "Poisson regression with robust standard errors" in primary
    assert "a simpler rate model than planned" in primary and "negative binomial" not in primary
    assert ("The planned method could not be used (the admission counts did not vary enough "
            "for the planned model") in methods
    assert "statsmodels 0.99.1" in methods and "0.14.2" not in methods


@needs_pdftotext
def test_only_a_population_record_no_matched_design(tmp_path):
    itt = copy.deepcopy([r for r in EFFECTS if r.get("estimand") == "ITT population"])
    itt[0]["primary"] = True
    _, text = build(tmp_path, effects=itt)
    methods = methods_of(text)
    _check_claims(methods, itt, {"internal_external": 1, "optimism_corrected": 1})
    assert "propensity score" not in methods and "matched cohort" not in methods
    assert "whole eligible population (intention to treat)" in methods


# --------------------------------------------------------------------------- Discussion = result
REAL_DATA = copy.deepcopy(CONFIG) | {"input": {"source": "folder", "folder": "extract"},
                                     "report": {"title": "Proactive care"}}

SCENARIOS = {
    # a clear, meaningful reduction; the simulation's truth (0.852) inside the interval
    "effect": {"effects": with_primary(estimate=0.80, ci_low=0.72, ci_high=0.88)},
    # the reviewer's case: no evidence, but the interval reaches a 29% reduction; and trends
    # that differed before the programme, and an uncontrolled fall the comparators share
    "null": {"effects": with_primary(estimate=0.91, ci_low=0.71, ci_high=1.16),
             "files": {"evaluate/pretrend.json": json.dumps(
                 {"statistic": 14.2, "df": 4, "p_value": 0.007}),
                 "evaluate/rtm.csv": "comparison,kind,before_per_1000,after_per_1000,"
                 "change_per_1000,ci_low,ci_high\nEnrolled,naive,1210,890,-320,-365,-275\n"
                 "Comparators,comparators,1195,870,-325,-370,-280\n"
                 "Controlled,controlled,,,5,-38,48\n",
                 "evaluate/balance.csv": "covariate,smd_before,smd_after\nAge (years),0.41,0.02\n"
                 "eFI score,0.66,0.17\n"}},
    # a precise null on real data, with no cost per admission configured
    "precise null": {"effects": with_primary(
        estimate=1.00, ci_low=0.96, ci_high=1.04, mde_rate_ratio=0.93,
        mde_sentence="this evaluation could reliably detect a reduction of 7 % or more (a rate "
                     "ratio of 0.93 or lower, with 80 % power)"),
                     "config": REAL_DATA, "drop": ["internal/synthetic"]},
    # an increase, and a poorer risk model
    "increase": {"effects": with_primary(estimate=1.20, ci_low=1.08, ci_high=1.33),
                 "metrics": lambda m: m | {
                     "c_statistic": {"estimate": 0.66, "ci_low": 0.64, "ci_high": 0.68},
                     "calibration_slope": {"estimate": 0.81, "ci_low": 0.76, "ci_high": 0.86},
                     "internal_external": {**IECV, "random_effects_c_statistic": {}}}},
}


def _sentences(text: str) -> set[str]:
    """Sentences, with the numbered subsection headings taken out."""
    text = re.sub(r"\b4\.\d+ [A-Z][a-z]+(?: [a-z]+)*\s", " ", text)
    return {s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 25}


@pytest.fixture(scope="module")
def discussions(tmp_path_factory):
    out = {}
    for name, scenario in SCENARIOS.items():
        root = tmp_path_factory.mktemp(name.replace(" ", "_"))
        _, text = build(root, **scenario)
        out[name] = text
    return out


@needs_pdftotext
def test_discussion_follows_the_result(discussions):
    found = {name: discussion_of(text) for name, text in discussions.items()}
    effect, null, precise, increase = (found[k] for k in SCENARIOS)
    assert "excludes no change" in effect and "meaningful benefit" in effect
    assert "includes no change" in null
    assert "a 29% reduction" in null and "inconclusive, not negative" in null
    assert "not compatible with the data" in precise and "inconclusive" not in precise
    assert "No reduction is compatible with the data" in increase
    # the MDE sentence, and where the interval's lower end falls against it
    assert "this evaluation could reliably detect a reduction of 13% or more" in null
    assert "goes beyond that detectable reduction" in null
    assert "stops short of the detectable reduction" in precise
    assert "remained imbalanced after matching" in null
    # synthetic data: compared with the known truth, not with published evaluations
    assert "realised rate ratio was 0.85, inside the primary interval" in effect
    assert "outside the primary interval" in increase
    assert "failure to detect a real effect" in null
    assert "synthetic" not in precise.lower()  # real data: no truth, published evidence
    assert "likewise found no clear reduction" in precise
    assert "parallel-trends assumption is doubtful" in null
    assert "what regression to the mean predicts" in null
    for text in found.values():
        assert "agrees with most controlled evaluations" not in text
        assert "Published evaluations are not compared with" in text or text is precise
    # the conclusions differ, in the abstract too
    conclusions = {t.split("Conclusions.")[1].split("1 Introduction")[0]
                   for t in discussions.values()}
    assert len(conclusions) == len(SCENARIOS)


@needs_pdftotext
def test_no_discussion_sentence_is_printed_whatever_the_data_say(discussions):
    sentences = [_sentences(discussion_of(text)) for text in discussions.values()]
    common = set.intersection(*sentences)
    assert common == set(), f"printed in every scenario: {sorted(common)}"


def test_real_data_discussion_compares_with_published_evidence(tmp_path):
    results = make_results(tmp_path, effects=SCENARIOS["null"]["effects"])
    shutil.rmtree(results / "internal" / "synthetic")
    config = copy.deepcopy(CONFIG) | {"input": {"source": "folder", "folder": "extract"}}
    data = manuscript_data(results, config)
    words = " ".join(p for s in data["text"]["discussion"] for p in s["paragraphs"])
    assert "synthetic" not in words.lower()
    assert "likewise found no clear reduction" in words
    refs = {r["key"] for r in data["references"]}
    assert "stokes2015" in refs


def test_a_pretrend_test_that_cannot_fail_is_not_offered_as_evidence(tmp_path):
    """The matched design's pre-trend test (comparators matched on prior admissions) must not
    be read as support for parallel trends; the population design's test is used when made."""
    results = make_results(tmp_path, effects=SCENARIOS["null"]["effects"])
    (results / "evaluate" / "pretrend.json").write_text(json.dumps(
        {"statistic": 3.1, "df": 10, "p_value": 0.71, "informative": False}))
    words = " ".join(p for s in manuscript_data(results, CONFIG)["text"]["discussion"]
                     for p in s["paragraphs"])
    assert "not evidence either way" in words
    assert "supports, but cannot prove" not in words
    (results / "evaluate" / "itt_pretrend.json").write_text(json.dumps(
        {"statistic": 1.2, "df": 10, "df_denominator": 14, "p_value": 0.4,
         "informative": True}))
    words = " ".join(p for s in manuscript_data(results, CONFIG)["text"]["discussion"]
                     for p in s["paragraphs"])
    assert "supports, but cannot prove" in words and "p = 0.400" in words


# --------------------------------------------------------------------------- degraded runs
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
        methods = methods_of(text)
        for phrase in ("propensity", "difference-in-differences", "internal-external",
                       "primary analysis"):
            assert phrase not in methods


def test_null_result_and_withheld_table(tmp_path):
    results = make_results(tmp_path, effects=with_primary(estimate=0.98, ci_low=0.88,
                                                          ci_high=1.09))
    reach = "segment/core20plus5_reach.csv"
    (results / reach).write_text("group,n_eligible,n_enrolled\nLearning disability,205,3\n")
    for extra in results.glob("segment/core20plus5*.json"):
        extra.unlink()
    data = manuscript_data(results, CONFIG)
    assert data["headline"]["verdict"] == "no_evidence"
    assert reach in data["withheld"]
    assert reach not in data["available"] and reach not in data["tables"]
    assert reach not in data["supplement_labels"]
    pdf = build_manuscript(results, config=CONFIG, keep_build=tmp_path / "build")
    assert not (tmp_path / "build" / "results" / reach).exists()
    text = pdf_text(pdf)
    if text is not None:
        assert "there is no evidence that the programme reduced emergency admissions" in text
        assert f"withheld: it fails the disclosure check ({reach})" in _clean(text)
        assert "Learning disability,205,3" not in text


def test_checklist_points_only_at_sections_that_exist(tmp_path):
    results = make_results(tmp_path)
    (results / "risk" / "metrics.json").unlink()
    data = manuscript_data(results, CONFIG)
    items = [row["item"] for row in data["checklist"]]
    assert any(i.startswith("STROBE") for i in items)
    assert any("RECORD" in i for i in items)
    assert not any(i.startswith("TRIPOD") for i in items)  # no model, no TRIPOD+AI items
    labels = {s["id"] for s in data["text"]["methods"]} | {
        s["id"] for s in data["text"]["discussion"]}
    fixed = {"sec-intro", "res-participants", "res-population", "res-risk", "res-segment",
             "res-effect", "res-subgroups", "sec-repro"}
    for row in data["checklist"]:
        for where in row["where"]:
            if where.startswith("@"):
                assert where[1:] in labels | fixed
    assert "sec-risk" not in labels


#: segment/grid_3x3.csv as the segment stage writes it: a ``group`` key and machine values.
GRID = """group,age_group,need_group,n_patients,population,percent_of_population,emergency_admissions,rate_per_1000,deaths,deaths_per_1000
children_young_people|generally_well,children_young_people,generally_well,5020,29400,17.1,310,61.8,0,0
adults|long_term_conditions,adults,long_term_conditions,6230,29400,21.2,475,76.2,15,2.4
older_people|complex_needs,older_people,complex_needs,1455,29400,4.9,600,412.4,125,85.9
all,all,all,29400,29400,100,3045,103.6,290,9.9
"""


@needs_pdftotext
def test_no_machine_name_reaches_the_paper_or_its_supplement(tmp_path):
    """Every table the paper shows is the report's (labels, not the CSV's machine names): the
    3x3 grid's keys, one-hot balance rows, condition and DES keys (found reading the default
    run's paper)."""
    from phm_eval.report.reader_text import reader_problems

    results = make_results(tmp_path, figures=True)  # no "not available (file.png)" notes
    _long_outputs(results)
    (results / "segment" / "grid_3x3.csv").write_text(GRID)
    data = manuscript_data(results, CONFIG)
    assert "segment/grid_3x3.csv" in data["tables"]
    text = pdf_text(build_manuscript(results, config=CONFIG))
    assert reader_problems([line for line in text.splitlines() if line.strip()]) == []
    assert "Children and" in text and "Long-term" in text


def test_report_lists_are_joined_to_the_paragraph_they_end():
    from phm_eval.report.manuscript import _texts

    section = {"blocks": [
        {"kind": "p", "text": "The activities counted here are:"},
        {"kind": "list", "items": ["PCSP: a plan.", "SMR: a review"]},
        {"kind": "p", "text": "Below target: PCSP."}]}
    assert _texts(section) == ["The activities counted here are: PCSP: a plan. SMR: a review.",
                               "Below target: PCSP."]
