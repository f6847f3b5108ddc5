"""The configuration: defaults merged with a user's file and checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phm_eval.config import check_config, default_results_dir, load_config, merge, starter_config
from phm_eval.errors import ConfigError
from phm_eval.paths import DEFAULT_CONFIG, SCHEMA_FILE

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict, name: str = "user.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "ics.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(ROOT / "config" / name)
    assert config["results_dir"] == {"config.yaml": "results", "smoke.yaml": "results-smoke",
                                     "ics.yaml": "results-ics"}[name]


def test_every_key_of_the_default_config_is_in_the_schema():
    # Strictness would be useless if the schema allowed everything: a key the schema does not
    # name must fail at every level.
    schema = yaml.safe_load(SCHEMA_FILE.read_text())

    def walk(node, where):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
            for key, sub in node["properties"].items():
                walk(sub, f"{where}.{key}")

    walk(schema, "(top)")


@pytest.mark.parametrize(("user", "message"), [
    ({"evaluate": {"matching": {"calliper": 0.1}}},
     "`evaluate.matching.calliper`: unknown key; did you mean `caliper`?"),
    ({"inputs": {"source": "folder"}}, "`inputs`: unknown key; did you mean `input`?"),
    ({"risk": {"bootstrap_replicate": 5}},
     "`risk.bootstrap_replicate`: unknown key; did you mean `bootstrap_replicates`?"),
    ({"input": {"source": "folder"}}, "`input.folder`: required when `input.source` is"),
    ({"study": {"study_end": "31/03/2024"}}, "`study.study_end`: must be a date written"),
    ({"study": {"study_end": "2018-01-01"}}, "must be after `study.study_start`"),
])
def test_problems_name_the_key_and_how_to_fix_it(tmp_path, user, message):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, user))
    assert message in str(info.value)


def test_every_problem_is_reported_in_one_pass(tmp_path):
    user = {"inputs": {}, "risk": {"model": "xgboost"}, "evaluate": {"folow_up_days": 10}}
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, user))
    text = str(info.value)
    assert "3 problems" in text
    assert "`inputs`" in text and "`risk.model`" in text and "`evaluate.folow_up_days`" in text


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, {"input": {"source": "folder",
                                                "folder": str(tmp_path / "nowhere")}}))
    assert str(info.value).count("\n") == 0
    assert "is not a folder" in str(info.value)


def test_merge_is_key_by_key():
    merged = merge({"a": {"x": 1, "y": 2}, "b": 3}, {"a": {"y": 5}})
    assert merged == {"a": {"x": 1, "y": 5}, "b": 3}


def test_each_config_file_gets_its_own_results_folder(tmp_path):
    assert default_results_dir(None) == "results"
    assert default_results_dir(DEFAULT_CONFIG) == "results"
    assert default_results_dir(tmp_path / "north.yaml") == "results-north"
    config = load_config(_write(tmp_path, {"synthetic": {"seed": 3}}, "north.yaml"))
    assert config["results_dir"] == "results-north"


def test_starter_config_reads_a_folder_and_is_valid(tmp_path):
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    text = starter_config(extracts)
    assert "source: folder" in text and f"folder: {extracts}" in text
    config = load_config(_write(tmp_path, yaml.safe_load(text), "mine.yaml"))
    assert config["input"]["folder"] == str(extracts)
    # Every setting of the starter file (a key with a value) carries a comment, on its line or
    # the line above.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key.strip() and not key.strip().startswith("#") and value.split("#")[0].strip():
            assert "#" in value or lines[i - 1].strip().startswith("#"), line


def test_check_config_accepts_the_defaults():
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    check_config(config)
