"""``seed`` sets the risk model's randomness everywhere (issue 17, one results convention).

``random_state``, the former name (and ``n_boot``, ``bootstrap_metrics``' former name of
``n_bootstrap``), is still accepted with a ``DeprecationWarning`` and means the same; both
names with different values raise :class:`~phm_eval.errors.ParameterError` (a ``ValueError``)
naming both. Saved reports keep their meaning: ``risk_model_report.json`` writes ``seed``
and reports that wrote ``random_state`` read back.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import phm_eval.stages.risk as risk_stage
from phm_eval import DEFAULT_SEED
from phm_eval.errors import ParameterError
from phm_eval.matching import NearestNeighborMatcher
from phm_eval.risk import develop_risk_model
from phm_eval.risk.config import RiskModelConfig
from phm_eval.risk.examples import example_risk_features
from phm_eval.risk.models import feature_importance, make_model
from phm_eval.risk.validation import bootstrap_metrics
from phm_eval.stages.call import StageCall

NUMERIC = ["age", "efi_score", "n_emergency_admissions_1y"]
CATEGORICAL = ["sex"]
Y = "emergency_admission_12m"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return example_risk_features(3000, seed=4, n_practices=6, practices_per_pcn=3)


def _boosted(frame: pd.DataFrame, **seed) -> np.ndarray:
    # early stopping draws its validation split at random: the seed decides the model
    model = make_model("gradient_boosting", NUMERIC, CATEGORICAL, max_iter=30, **seed)
    return model.fit(frame, frame[Y]).predict_proba(frame)[:, 1]


def _both_names_rejected(call, owner: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ParameterError) as caught:
            call()
    assert isinstance(caught.value, ValueError)
    assert caught.value.argument == f"{owner}(seed, random_state)"
    assert "seed" in str(caught.value) and "random_state" in str(caught.value)


def test_seed_is_keyword_only_and_random_state_its_deprecated_former_name():
    for func in (make_model, feature_importance, bootstrap_metrics, example_risk_features):
        params = inspect.signature(func).parameters
        assert params["seed"].kind is inspect.Parameter.KEYWORD_ONLY, func.__name__
        assert params["random_state"].kind is inspect.Parameter.KEYWORD_ONLY, func.__name__
        assert params["random_state"].default is None, func.__name__
    assert inspect.signature(make_model).parameters["spline_features"].kind is (
        inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(RiskModelConfig).parameters
    assert params["seed"].default == DEFAULT_SEED
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_example_features_seed(frame):
    same = example_risk_features(3000, seed=4, n_practices=6, practices_per_pcn=3)
    pd.testing.assert_frame_equal(frame, same)
    other = example_risk_features(3000, seed=5, n_practices=6, practices_per_pcn=3)
    assert not frame[Y].equals(other[Y])
    with pytest.deprecated_call(match="'random_state' is the former name of 'seed'"):
        former = example_risk_features(3000, random_state=4, n_practices=6, practices_per_pcn=3)
    pd.testing.assert_frame_equal(frame, former)
    _both_names_rejected(lambda: example_risk_features(100, seed=4, random_state=5),
                         "example_risk_features")


def test_make_model_seed(frame):
    first = _boosted(frame, seed=3)
    np.testing.assert_array_equal(first, _boosted(frame, seed=3))
    assert not np.array_equal(first, _boosted(frame, seed=4))
    with pytest.deprecated_call(match="make_model: 'random_state'"):
        former = _boosted(frame, random_state=3)
    np.testing.assert_array_equal(first, former)
    with pytest.deprecated_call():
        np.testing.assert_array_equal(first, _boosted(frame, seed=3, random_state=3))
    _both_names_rejected(lambda: make_model("gradient_boosting", NUMERIC, CATEGORICAL, seed=3,
                                            random_state=4), "make_model")
    # the seed reaches scikit-learn under its own name
    for name, step in (("gradient_boosting", "model"), ("penalised_logistic", "model")):
        options = {"C": "cv"} if name == "penalised_logistic" else {}
        model = make_model(name, NUMERIC, CATEGORICAL, seed=11, **options)
        assert model.named_steps[step].random_state == 11


def test_feature_importance_seed(frame):
    model = make_model("penalised_logistic", NUMERIC, CATEGORICAL).fit(frame, frame[Y])

    def importance(**seed) -> pd.DataFrame:
        return feature_importance(model, frame, frame[Y], n_repeats=2, max_rows=1000, **seed)

    first = importance(seed=2)
    pd.testing.assert_frame_equal(first, importance(seed=2))
    with pytest.deprecated_call(match="feature_importance"):
        pd.testing.assert_frame_equal(first, importance(random_state=2))
    _both_names_rejected(lambda: importance(seed=2, random_state=3), "feature_importance")


def test_bootstrap_metrics_seed(frame):
    y = frame[Y].to_numpy()
    p = frame["true_risk"].to_numpy()
    first = bootstrap_metrics(y, p, n_bootstrap=20, seed=8)
    pd.testing.assert_frame_equal(first, bootstrap_metrics(y, p, n_bootstrap=20, seed=8))
    assert not first["lower"].equals(bootstrap_metrics(y, p, n_bootstrap=20, seed=9)["lower"])
    assert (first.loc["c_statistic", "n_boot"]) == 20  # the column keeps its saved name
    with pytest.deprecated_call(match="bootstrap_metrics"):
        former = bootstrap_metrics(y, p, n_boot=20, random_state=8)
    pd.testing.assert_frame_equal(first, former)
    _both_names_rejected(lambda: bootstrap_metrics(y, p, n_bootstrap=2, seed=8, random_state=9),
                         "bootstrap_metrics")
    with pytest.deprecated_call(), pytest.raises(ParameterError, match="n_bootstrap, n_boot"):
        bootstrap_metrics(y, p, n_bootstrap=10, n_boot=20)


def test_config_seed_and_its_former_name():
    assert RiskModelConfig().seed == DEFAULT_SEED == 1
    with pytest.deprecated_call(match="RiskModelConfig: 'random_state'"):
        former = RiskModelConfig(random_state=5, n_bootstrap=0)
    assert former == RiskModelConfig(seed=5, n_bootstrap=0)
    assert former.random_state == 5  # still readable
    # replace() keeps working (an InitVar would pass the old seed back in)
    assert dataclasses.replace(former, seed=6).seed == 6
    assert dataclasses.replace(former, n_bootstrap=3).seed == 5
    with pytest.deprecated_call():
        assert RiskModelConfig(seed=5, random_state=5).seed == 5
    # a seed given equal to the default still conflicts with a different former name
    _both_names_rejected(lambda: RiskModelConfig(seed=DEFAULT_SEED, random_state=7),
                         "RiskModelConfig")
    _both_names_rejected(lambda: RiskModelConfig.from_dict({"seed": 1, "random_state": 7}),
                         "RiskModelConfig")
    # the key written is seed; a config written before the rename reads back the same
    written = RiskModelConfig(seed=5).to_dict()
    assert written["seed"] == 5 and "random_state" not in written
    old = {("random_state" if k == "seed" else k): v for k, v in written.items()}
    with pytest.deprecated_call():
        assert RiskModelConfig.from_dict(old) == RiskModelConfig.from_dict(written)


def test_workflow_risk_seed_reaches_the_model(monkeypatch):
    """The workflow's ``risk.seed`` becomes ``RiskModelConfig.seed``, without a warning."""
    seen = {}

    class Stop(Exception):
        pass

    def develop(features, config, **kwargs):
        seen["config"] = config
        raise Stop

    frame = pd.DataFrame({"patient_id": ["P1"]})
    monkeypatch.setattr(risk_stage.pd, "read_parquet", lambda path: frame)
    monkeypatch.setattr(risk_stage, "output", lambda call, name: SimpleNamespace(parent=name))
    monkeypatch.setattr(risk_stage, "policy", lambda call: None)
    monkeypatch.setattr(risk_stage, "develop_risk_model", develop)
    call = StageCall(inputs={"development": "d", "validation": "v", "current": "c"},
                     params={"risk": {"model": "penalised_logistic", "seed": 31}}, outputs=())
    with pytest.raises(Stop):
        risk_stage.model(call)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert RiskModelConfig.from_dict(seen["config"]).seed == 31


def test_saved_report_and_card_keep_the_seed(frame, tmp_path):
    config = RiskModelConfig(n_bootstrap=0, n_optimism_bootstrap=0, seed=77)
    develop_risk_model(frame.drop(columns=["true_risk"]), config, output_dir=tmp_path,
                       run_iecv=False)
    report = json.loads((tmp_path / "risk_model_report.json").read_text())
    assert report["config"]["seed"] == 77
    assert "Random seed 77." in (tmp_path / "model_card.md").read_text()


def test_matcher_rejects_two_different_seeds():
    _both_names_rejected(lambda: NearestNeighborMatcher(seed=1, random_state=2),
                         "NearestNeighborMatcher")
    with pytest.deprecated_call():
        assert NearestNeighborMatcher(seed=2, random_state=2).seed == 2
