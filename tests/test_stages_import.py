"""Every workflow stage imports (a broken import would otherwise surface only mid-run)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import phm_eval.stages

STAGES = [m.name for m in pkgutil.iter_modules(phm_eval.stages.__path__)]


@pytest.mark.parametrize("name", STAGES)
def test_stage_module_imports(name):
    importlib.import_module(f"phm_eval.stages.{name}")
