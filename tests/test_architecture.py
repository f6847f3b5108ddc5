"""The import directions docs/architecture.md states, checked on the source.

Every ``import`` and ``from ... import`` of every module under ``src/phm_eval`` is read with
:mod:`ast` (nothing is imported): those at module level, those deferred inside a function and
those under ``if TYPE_CHECKING:`` all count, since each is a dependency of one module on
another. Known exceptions are listed here and in the document; a new one fails a test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "phm_eval"
DOC = ROOT / "docs" / "architecture.md"

#: Layers from top to bottom; a package may import packages of lower layers, and of its own
#: layer only as the rules below allow. ``phm_eval`` itself (``__version__``) is a utility.
LAYERS: dict[str, set[str]] = {
    "entry points": {"cli", "workflow_support", "stages", "job_memory"},
    "analyses": {"evaluate", "risk", "segment", "report", "describe", "synth"},
    "estimators": {"did", "survival", "matching", "frailty"},
    "data contract": {"contract", "ingest", "definitions", "codelists"},
    "utilities": {"phm_eval", "disclosure", "jsonio", "db", "paths", "config", "errors",
                  "labels", "outputs", "plotting", "progress", "provenance", "run_lock",
                  "convention"},
}
RANK = {name: rank for rank, members in enumerate(reversed(LAYERS.values())) for name in members}

#: Imports between analysis packages, each for a stated reason (docs/architecture.md).
ANALYSIS_PEERS = {
    ("evaluate", "risk"),  # the matched design's covariates are the risk model's features
    ("report", "risk"),  # the commissioner report embeds the model card
    ("risk", "segment"),  # the long-term conditions counted in n_ltc (segment.config)
}

#: Imports that break a rule, documented as known exceptions (module -> module).
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[set[str]] = []
KNOWN_PRIVATE = {
    ("phm_eval.risk.features", "phm_eval.frailty._tables"),
    ("phm_eval.risk.features_at_dates", "phm_eval.frailty._tables"),
    ("phm_eval.stages.segment", "phm_eval.segment._summary"),
}
KNOWN_ESTIMATOR_PEERS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. phm_eval.risk.develop
    target: str  # imported module of the package, e.g. phm_eval.risk.config
    line: int
    type_only: bool

    def __str__(self) -> str:
        kind = " (annotations only)" if self.type_only else ""
        return f"{self.source} -> {self.target}, line {self.line}{kind}"


@cache
def modules() -> dict[str, Path]:
    """Dotted module name to file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                inside.update(id(n) for n in ast.walk(statement))
    return inside


def _owning_module(name: str) -> str | None:
    known = modules()
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in known else None


def _imports_of(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    type_only = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            # ``from pkg import mod`` depends on the submodule, ``from mod import x`` on mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "phm_eval":
                continue
            owner = _owning_module(target)
            if owner is not None and owner != name:
                yield Import(name, owner, node.lineno, id(node) in type_only)


@cache
def imports() -> tuple[Import, ...]:
    return tuple(i for name, path in modules().items() for i in _imports_of(name, path))


def top(module: str) -> str:
    """Top-level package (or module) of a dotted name: phm_eval.risk.develop -> risk."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


# ---------------------------------------------------------------------------------------------


def test_the_reader_sees_the_imports():
    found = {(i.source, i.target) for i in imports()}
    assert ("phm_eval.risk.develop", "phm_eval.risk.designs") in found
    assert ("phm_eval.did.att_gt", "phm_eval.did._kernels") in found  # from . import _kernels
    assert any(i.type_only for i in imports())
    assert not any(i.target == "phm_eval.did" for i in imports() if i.source == "phm_eval.did.att_gt")


def test_every_package_has_a_layer_and_the_document_names_it():
    placed = [name for members in LAYERS.values() for name in members]
    assert len(placed) == len(set(placed)), "a package is in two layers"
    unplaced = sorted({top(m) for m in modules()} - set(placed))
    assert not unplaced, (f"place {unplaced} in a layer of docs/architecture.md and of LAYERS "
                          "in this test")
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(name for name in placed if f"`{name}`" not in text)
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_no_import_cycles_between_modules():
    edges: dict[str, set[str]] = {}
    for i in imports():
        edges.setdefault(i.source, set()).add(i.target)
    found = cycles(edges)
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"cycles fixed: remove {gone} from KNOWN_CYCLES and docs/architecture.md"


def test_packages_import_only_downwards():
    wrong = []
    for i in imports():
        a, b = top(i.source), top(i.target)
        if a == b or (i.source, i.target) in KNOWN_UPWARD:
            continue
        if RANK[b] > RANK[a]:
            wrong.append(f"{i}: {a} may not import {b}, which is in a higher layer")
        elif RANK[b] == RANK[a]:
            layer = next(n for n, members in LAYERS.items() if a in members)
            if layer == "analyses" and (a, b) not in ANALYSIS_PEERS:
                wrong.append(f"{i}: analyses import each other only as ANALYSIS_PEERS lists")
            if layer == "estimators" and (a, b) not in KNOWN_ESTIMATOR_PEERS:
                wrong.append(f"{i}: estimators do not import each other")
            if layer == "entry points" and b == "stages" and not _builds_stage_calls(i):
                wrong.append(f"{i}: only workflow_support runs stages")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("importer", "forbidden"), [
    ("did", {"stages", "report", "evaluate", "risk", "segment"}),
    ("survival", {"stages", "report", "evaluate", "risk", "segment"}),
    ("matching", {"stages", "report", "evaluate", "risk", "segment"}),
    ("frailty", {"stages", "report", "evaluate", "risk", "segment"}),
    ("report", {"stages", "workflow_support", "cli"}),
    ("evaluate", {"stages", "report", "cli"}),
    ("risk", {"stages", "report", "evaluate", "cli"}),
    ("segment", {"stages", "report", "evaluate", "risk", "cli"}),
])
def test_named_directions(importer, forbidden):
    wrong = [str(i) for i in imports() if top(i.source) == importer and top(i.target) in forbidden]
    assert not wrong, "\n".join(wrong)


def _builds_stage_calls(i) -> bool:
    """workflow_support imports the stages' call type (``stages.call``, standard library
    only) to build the call it hands a stage; the stages themselves it imports by name."""
    return i.source == "phm_eval.workflow_support" and i.target == "phm_eval.stages.call"


def test_only_workflow_support_runs_stages():
    outside = [str(i) for i in imports()
               if top(i.target) == "stages" and top(i.source) != "stages"
               and not _builds_stage_calls(i)]
    assert not outside, "\n".join(outside)
    # ... and that module stays light: the command line imports workflow_support
    light = [str(i) for i in imports() if i.source in ("phm_eval.stages.call", "phm_eval.stages")]
    assert not light, "\n".join(light)
    # workflow_support finds the stage by name (importlib), which the reader cannot see
    assert "phm_eval.stages." in (PACKAGE / "workflow_support.py").read_text(encoding="utf-8")


def test_private_modules_stay_in_their_package():
    wrong = []
    for i in imports():
        private = any(p.startswith("_") and p != "__init__" for p in i.target.split(".")[1:])
        if private and top(i.source) != top(i.target) and (i.source, i.target) not in KNOWN_PRIVATE:
            wrong.append(f"{i}: {i.target} is private to {top(i.target)}")
    assert not wrong, "\n".join(wrong)
