"""Segmentation settings: the YAML copy matches the code defaults; bad settings fail clearly."""

from __future__ import annotations

import pytest
import yaml

from phm_eval.errors import ConfigError
from phm_eval.paths import CONFIG_DIR
from phm_eval.segment import DEFAULTS, segmentation_config


def test_yaml_matches_defaults():
    loaded = yaml.safe_load((CONFIG_DIR / "segmentation.yaml").read_text(encoding="utf-8"))
    assert loaded == DEFAULTS


def test_file_and_overrides_merge(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text("grid:\n  complex:\n    min_chronic_ltc: 4\n", encoding="utf-8")
    config = segmentation_config({"risk_tiers": {"cut_points": [0.01, 0.1]}}, path=path)
    assert config["grid"]["complex"]["min_chronic_ltc"] == 4
    assert config["grid"]["complex"]["top_risk_fraction"] == 0.02  # untouched sibling
    assert config["risk_tiers"]["cut_points"] == [0.01, 0.1]
    # Free-form mappings are replaced, not merged.
    config = segmentation_config({"des": {"targets": {"pcsp": {"2024/25": [1, 2]}}}})
    assert list(config["des"]["targets"]) == ["pcsp"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"grid": {"complex": {"min_ltc": 3}}},
        {"risk_tiers": {"cut_points": [0.2, 0.05]}},
        {"grid": {"children_max_age": 70}},
        {"des": {"list_size": "end_of_year"}},
        {"funnel": {"method": "wald"}},
        {"bridges": {"priority": ["healthy"]}},
    ],
)
def test_invalid_settings(overrides):
    with pytest.raises(ConfigError):
        segmentation_config(overrides)


def test_defaults_not_mutated():
    config = segmentation_config()
    config["grid"]["complex"]["conditions"].append("asthma")
    assert "asthma" not in segmentation_config()["grid"]["complex"]["conditions"]
