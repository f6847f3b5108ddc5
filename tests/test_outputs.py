"""Every output path is declared once (``phm_eval.outputs``), and both sides agree with it.

The workflow must write every declared file (checked on the Snakemake DAG of the default
configuration, without running it), and the report, the manuscript and the stages may ask for
no file that is not declared. A path renamed in one place and not the other fails here.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phm_eval import outputs as out
from phm_eval.report import render_report
from phm_eval.report.manuscript import EFFECTS_SUBGROUPS, manuscript_data
from phm_eval.report.results import ResultsFolder

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "phm_eval"
FIXTURE = Path(__file__).parent / "fixtures" / "report"

#: A string that looks like a path under a results folder.
RESULT_PATH = re.compile(
    r"^(internal/)?(synthetic|data|describe|frailty|risk|segment|evaluate|report|manuscript)"
    r"/[\w./{}-]+\.(csv|json|png|parquet|md|html|pdf)(#\w+)?$")


#: A file name a stage asks for.
FILE_NAME = re.compile(r"^\w+\.(csv|json|png|parquet|md)$")


def _declared_files() -> set[str]:
    return set(out.all_files())


# --------------------------------------------------------------------------- the declarations
def test_declarations_are_consistent():
    declared = out.declared()
    assert out.EFFECTS == "evaluate/effects.json"
    assert declared[out.ANALYSED].internal and not declared[out.EFFECTS].internal
    assert declared[out.RISK_FEATURES].files() == [
        f"internal/risk/features_{when}.parquet" for when in out.FEATURE_SETS]
    for path, record in declared.items():
        assert record.internal == path.startswith("internal/"), path
        assert RESULT_PATH.match(path) or path == out.MANIFEST, path
    assert out.failure_record(out.log("evaluate")) == "internal/logs/evaluate.failure.json"
    with pytest.raises(KeyError):
        out.of_rule("no_such_rule")


# --------------------------------------------------------------------------- the workflow side
def _planned_outputs(tmp_path: Path, config: dict | None = None) -> dict[str, str]:
    """Every output file of the workflow's DAG (path relative to the results folder -> rule),
    from Snakemake's own summary of a plan that runs nothing."""
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow" / "Snakefile"),
           "--cores", "1", "--summary", "--config", f"results_dir={results}"]
    if config is not None:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd[-2:-2] = ["--configfile", str(path)]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert rows and rows[0][:3] == ["output_file", "date", "rule"], done.stdout[:500]
    planned = {}
    for row in rows[1:]:
        path = Path(row[0])
        assert path.is_relative_to(results), f"{path} is outside the results folder"
        planned[path.relative_to(results).as_posix()] = row[2]
    return planned


def test_the_default_workflow_writes_every_declared_file_with_its_rule(tmp_path):
    planned = _planned_outputs(tmp_path)
    declared = out.declared()
    missing, wrong_rule = [], []
    for record in declared.values():
        for path in record.files():
            if path not in planned:
                missing.append(path)
            elif planned[path] != record.rule:
                wrong_rule.append(f"{path}: declared for {record.rule}, written by "
                                  f"{planned[path]}")
    assert not missing, f"declared in phm_eval/outputs.py, not written by the workflow: {missing}"
    assert not wrong_rule, wrong_rule
    undeclared = sorted(set(planned) - _declared_files())
    assert not undeclared, f"written by the workflow, not declared in phm_eval/outputs.py: " \
                           f"{undeclared}"


def test_conditional_outputs_follow_their_condition(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["evaluate"]["design_check"]["replicates"] = 0
    planned = _planned_outputs(tmp_path, cfg)
    for record in out.declared().values():
        expected = record.when != out.WHEN_DESIGN_CHECK
        for path in record.files():
            assert (path in planned) == expected, path


# --------------------------------------------------------------------------- the reading side
def _fixture_results(root: Path) -> Path:
    spec = importlib.util.spec_from_file_location("report_fixture", FIXTURE / "build_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_results(root, figures=True)


@pytest.fixture
def asked(monkeypatch) -> set[str]:
    """Every path the report asks a results folder for, while the test runs."""
    seen: set[str] = set()
    path, has = ResultsFolder.path, ResultsFolder.has

    def recording_path(self, relative):
        seen.add(str(relative))
        return path(self, relative)

    def recording_has(self, relative):
        seen.add(str(relative))
        return has(self, relative)

    monkeypatch.setattr(ResultsFolder, "path", recording_path)
    monkeypatch.setattr(ResultsFolder, "has", recording_has)
    return seen


@pytest.mark.parametrize("contents", ["fixture", "empty"])
def test_every_file_the_report_and_manuscript_read_is_declared(tmp_path, asked, contents):
    if contents == "fixture":
        results = _fixture_results(tmp_path / "run")
    else:
        results = tmp_path / "run"
        results.mkdir()
    config = {"disclosure": {}, "input": {"source": "synthetic"}}
    render_report(results, tmp_path / "index.html", config=config)
    manuscript_data(results, config)
    assert len(asked) > 20 if contents == "fixture" else asked
    undeclared = sorted(asked - _declared_files())
    assert not undeclared, f"read by the report, not declared in phm_eval/outputs.py: " \
                           f"{undeclared}"


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_result_path_is_spelled_outside_the_declarations():
    """The package names result files only through phm_eval.outputs (``synth`` aside: it
    writes a simulated extract's own folder, not a run's results)."""
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "outputs.py" or path.relative_to(PACKAGE).parts[0] == "synth":
            continue
        for line, text in _string_constants(path):
            if RESULT_PATH.match(text):
                spelled.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not spelled, spelled


def test_the_manuscript_source_reads_only_declared_files():
    text = (ROOT / "manuscript" / "manuscript.typ").read_text(encoding="utf-8")
    named = {m for m in re.findall(r'"([^"\s]+)"', text) if RESULT_PATH.match(m)}
    assert out.EFFECTS in named and out.RISK_METRICS in named
    # "file#part" names a part of a declared file (e.g. the subgroup rows of effects.json)
    assert EFFECTS_SUBGROUPS in named
    undeclared = sorted({m for m in named if m.split("#", 1)[0] not in _declared_files()})
    assert not undeclared, f"read by manuscript.typ, not declared: {undeclared}"


def test_every_file_a_stage_asks_for_is_a_declared_output():
    """Stages pick their outputs by file name from the rule's declared outputs
    (``stages.common.output``); each name they ask for must be one of those files."""
    names = {Path(p).name for p in out.all_files()}
    asked = set()
    for path in sorted((PACKAGE / "stages").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in
                    ("output", "_save", "_placeholder")):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                            and FILE_NAME.match(arg.value):
                        asked.add(arg.value)
    assert len(asked) > 30
    assert not sorted(asked - names), sorted(asked - names)
