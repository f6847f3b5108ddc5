"""Options are keyword-only after the data arguments (issue 17, one results convention).

Every public function and method of the estimator and analysis packages (and of the
disclosure and provenance utilities) takes its data by position and its options by name,
so ``match_cohort(rows, matching, 3)`` cannot read a seed as data. What may follow the data
by position is listed here with the reason: more data (an optional table, array or column
of the data), the specification object of the analysis (``config``, ``policy``), or a
signature that mirrors R's. ``seed`` is keyword-only everywhere in the package, and a count
of replicates goes by one name: ``n_bootstrap`` for bootstrap draws, ``n_replicates`` for
simulation replicates.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
import yaml

import phm_eval
from phm_eval import DEFAULT_SEED
from phm_eval.disclosure import DisclosurePolicy
from phm_eval.evaluate.design import Eligibility
from phm_eval.frailty.efi2 import Efi2Settings
from phm_eval.matching import NearestNeighborMatcher
from phm_eval.paths import DEFAULT_CONFIG
from phm_eval.risk.config import RiskModelConfig
from phm_eval.risk.examples import example_risk_features
from phm_eval.risk.models import feature_importance, make_model
from phm_eval.risk.validation import bootstrap_metrics

PACKAGES = ("did", "survival", "matching", "frailty", "evaluate", "risk", "segment",
            "describe", "disclosure", "provenance")

#: The specification of an analysis may follow its data by position, as the risk model's
#: ``develop_risk_model(features, config)`` and ``apply_disclosure(table, policy)``.
SPECIFICATION = {"config", "policy"}

#: Arguments with a default that are data, not options (function -> arguments).
DATA = {
    "did.honest.event_study.event_study_covariance": {"agg"},
    "did.honest.event_study.honest_did_from_event_study": {"agg"},
    # required; None only while the former name biters is accepted by keyword
    "did.bootstrap.multiplier_sums": {"n_bootstrap", "rng"},
    "did.influence.BlockInfluence.set_factor": {"MtM"},       # a precomputed product
    "did.influence.BlockInfluence.gram": {"cells"},
    "did.results.AttGtResult.covariance": {"cells"},
    "disclosure.check.is_count_label": set(),
    "disclosure.release.scan_release": {"patients"},
    "disclosure.release.check_release": {"patients"},
    "disclosure.rounding.round_nearest": {"base"},            # as numpy's round(x, decimals)
    "disclosure.rounding.round_midpoint": {"base"},
    "disclosure.scan.IdentifierIndex.__init__": {"min_length"},
    "disclosure.scan.check_report_folder": {"identifiers", "recursive"},
    "disclosure.survival.survival_step_table": {"group_cols"},
    "evaluate.event_study.monthly_panel": {"admissions", "spells"},
    "evaluate.event_study.event_study": {"admissions", "spells"},
    "evaluate.plasmode.plasmode": {"rate_ratios"},            # the effects to inject
    "evaluate.effects.rate_ratio": {"outcome"},               # the count to compare
    "evaluate.population_plasmode.population_plasmode": {"rate_ratios"},   # the same
    "evaluate.power.nb_log_rate_ratio_variance": {"person_years_control"},
    "evaluate.power.power_rate_ratio": {"person_years_control"},
    "evaluate.power.mde_rate_ratio": {"person_years_control"},
    "frailty.codelists.load_efi_codelist": {"source"},
    "frailty.codelists.load_medications": {"source"},
    "frailty.codelists.load_efi2_weights": {"source"},
    "frailty.codelists.load_efi2_codelist": {"source"},
    "frailty.codelists.load_hfrs_points": {"source"},
    "matching.balance.term_balance": {"weights", "pairs"},
    "matching.balance.balance_table": {"pairs", "distance"},
    "matching.result.MatchResult.balance": {"covariates"},
    "provenance.package_versions": {"packages"},
    "provenance.git_info": {"directory"},
    "risk.examples.example_risk_features": {"n"},
    "segment.config.segmentation_config": {"overrides"},
    "segment.funnel.funnel_data": {"target"},
    "segment.population.build_population": {"frailty"},
    "survival.cumulative_incidence.CumulativeIncidenceFitter.fit": {"groups", "strata"},
    "survival.fine_gray.FineGrayFitter.predict_cumulative_incidence": {"times"},
}

#: Signatures that mirror R's, names and order (their docstrings say so).
R_COMPATIBLE = {
    "did.att_gt.att_gt",                       # did::att_gt
    "did.aggregate.aggregate",                 # did::aggte
    "did.results.AttGtResult.aggregate",
    "survival.cox.RobustCoxPHFitter.check_proportional_hazards",  # cox.zph(fit, transform)
}

#: Places still to fix (none now); each would be a place to fix, not a pattern to copy.
KNOWN_EXCEPTIONS: set[str] = set()
KNOWN_SEED_EXCEPTIONS: set[str] = set()
#: Seeds that are not the package's default: R's (att_gt has none, honest_did R's 0), the
#: synthetic data's (the scenario's seed), and the one a manifest records (required).
OTHER_DEFAULT_SEEDS = {"did.att_gt.att_gt", "did.honest.intervals.honest_did",
                       "synth.generate.simulate", "synth.warehouse.write_warehouse_export",
                       "provenance.build_manifest", "provenance.write_manifest"}

#: Counts of replicates: bootstrap draws or resamples are ``n_bootstrap`` (the risk model's
#: optimism correction, beside its intervals' ``n_bootstrap``, is ``n_optimism_bootstrap``);
#: simulation replicates (plasmode, design check) are ``n_replicates``.
REPLICATE_NAMES = {"n_bootstrap", "n_optimism_bootstrap", "n_replicates"}
OTHER_REPLICATE_NAMES = {"biters", "n_boot", "n_boots", "n_bootstraps", "bootstrap_replicates",
                         "ci_bootstrap_replicates", "replicates", "n_reps", "reps", "n_draws",
                         "n_sims", "n_simulations", "n_resamples", "n_iterations"}

#: Settings objects: built by name only.
SETTINGS = [RiskModelConfig, Eligibility, Efi2Settings, DisclosurePolicy]


def _public_callables(packages: tuple[str, ...] | None) -> Iterator[tuple[str, Callable]]:
    """(name relative to phm_eval, function) for every public function and method."""
    seen: set[object] = set()
    for info in pkgutil.walk_packages(phm_eval.__path__, "phm_eval."):
        module_name = info.name
        relative = module_name.removeprefix("phm_eval.")
        if any(part.startswith("_") for part in relative.split(".")):
            continue
        if packages is not None and relative.split(".")[0] not in packages:
            continue
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj) and obj not in seen:
                seen.add(obj)
                yield f"{relative}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member, owner in _members(obj):
                    generated = attr == "__init__" and dataclasses.is_dataclass(owner)
                    if (attr.startswith("_") and attr != "__init__") or generated:
                        continue
                    if isinstance(member, staticmethod | classmethod):
                        member = member.__func__
                    if inspect.isfunction(member) and member not in seen:
                        seen.add(member)
                        yield f"{relative}.{name}.{attr}", member


def _members(cls: type) -> Iterator[tuple[str, object, type]]:
    """(name, member, class defining it): the class's own members, then those it inherits
    from phm_eval's (often private) bases."""
    own: set[str] = set()
    for owner in cls.__mro__:
        if not owner.__module__.startswith("phm_eval"):
            continue
        for attr, member in vars(owner).items():
            if attr not in own:
                own.add(attr)
                yield attr, member, owner


def _positional_options(name: str, func: Callable) -> list[str]:
    allowed = SPECIFICATION | DATA.get(name, set())
    return [p.name for p in inspect.signature(func).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
            and p.name not in allowed]


def test_options_follow_the_data_by_name():
    wrong = {}
    for name, func in _public_callables(PACKAGES):
        if name in R_COMPATIBLE or name in KNOWN_EXCEPTIONS:
            continue
        options = _positional_options(name, func)
        if options:
            wrong[name] = options
    assert not wrong, f"options taken by position (add '*' before them): {wrong}"


def test_the_lists_of_exceptions_are_still_needed():
    """An entry that no longer applies (renamed, fixed) is removed, so the lists stay true."""
    functions = dict(_public_callables(PACKAGES))
    for name in R_COMPATIBLE | KNOWN_EXCEPTIONS:
        assert name in functions, f"{name} is listed but does not exist"
    for name in KNOWN_EXCEPTIONS:
        params = inspect.signature(functions[name]).parameters.values()
        assert any(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
                   for p in params), f"{name} is fixed: remove it from KNOWN_EXCEPTIONS"
    for name, arguments in DATA.items():
        assert name in functions, f"{name} is listed but does not exist"
        params = inspect.signature(functions[name]).parameters
        for argument in arguments:
            assert params[argument].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
                f"{name}({argument}) is keyword-only now: remove it from DATA")


def test_r_compatible_signatures_say_so():
    functions = dict(_public_callables(PACKAGES))
    for name in R_COMPATIBLE:
        doc = inspect.getdoc(functions[name]) or ""
        assert "mirrors r's" in doc.lower(), f"{name}: the docstring should say which R " \
            "signature it mirrors"


def test_seed_is_keyword_only_everywhere():
    """In every public function of the package, not only the packages above."""
    wrong = []
    for name, func in _public_callables(None):
        if name in R_COMPATIBLE or name in KNOWN_SEED_EXCEPTIONS:
            continue
        for param in inspect.signature(func).parameters.values():
            if param.name in ("seed", "random_state") and param.kind is not param.KEYWORD_ONLY:
                wrong.append(f"{name}({param.name})")
    assert not wrong, f"seed taken by position: {wrong}"


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_settings_are_built_by_name(cls):
    assert all(f.kw_only for f in dataclasses.fields(cls) if f.init)
    with pytest.raises(TypeError):
        cls(1)


def _former_name(func: Callable, param: inspect.Parameter) -> bool:
    """A former name still accepted with a warning: keyword-only, default None, passed to
    :func:`~phm_eval.errors.renamed_argument`."""
    source = inspect.getsource(func)
    return (param.kind is param.KEYWORD_ONLY and param.default is None
            and "renamed_argument(" in source and f'"{param.name}"' in source)


def test_one_name_for_replicate_counts():
    wrong = []
    for name, func in _public_callables(None):
        if name in R_COMPATIBLE:
            continue
        for param in inspect.signature(func).parameters.values():
            if param.name in OTHER_REPLICATE_NAMES and not _former_name(func, param):
                wrong.append(f"{name}({param.name})")
    for cls in SETTINGS:
        wrong += [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls)
                  if f.name in OTHER_REPLICATE_NAMES]
    assert not wrong, f"use {sorted(REPLICATE_NAMES)}: {wrong}"


def test_one_default_seed():
    """Every seed defaults to ``phm_eval.DEFAULT_SEED``; ``None`` is allowed only where a
    former name is still taken (so that giving both can be told apart), and means it too."""
    wrong = []
    for name, func in _public_callables(None):
        params = inspect.signature(func).parameters
        if "seed" not in params or name in OTHER_DEFAULT_SEEDS:
            continue
        default = params["seed"].default
        if default is None and "random_state" in params:
            continue  # checked by behaviour below
        if default is not DEFAULT_SEED:
            wrong.append(f"{name}(seed={default!r})")
    assert not wrong, f"default seeds other than phm_eval.DEFAULT_SEED: {wrong}"
    assert RiskModelConfig().seed == DEFAULT_SEED


def test_seed_not_given_is_the_default_seed():
    frame = example_risk_features(2000, n_practices=6, practices_per_pcn=3)
    pd.testing.assert_frame_equal(
        frame, example_risk_features(2000, seed=DEFAULT_SEED, n_practices=6, practices_per_pcn=3))
    y = frame["emergency_admission_12m"].to_numpy()
    p = frame["true_risk"].to_numpy()
    pd.testing.assert_frame_equal(bootstrap_metrics(y, p, n_bootstrap=20),
                                  bootstrap_metrics(y, p, n_bootstrap=20, seed=DEFAULT_SEED))
    numeric, categorical = ["age", "efi_score"], ["sex"]
    model = make_model("gradient_boosting", numeric, categorical, max_iter=20)
    assert model.named_steps["model"].random_state == DEFAULT_SEED
    model.fit(frame, y)
    pd.testing.assert_frame_equal(
        feature_importance(model, frame, y, n_repeats=2),
        feature_importance(model, frame, y, n_repeats=2, seed=DEFAULT_SEED))
    # the matcher's random order: the same without a seed as with the default seed
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"treated": rng.integers(0, 2, 300), "x": rng.normal(size=300)})
    pairs = [NearestNeighborMatcher(m_order="random", caliper=None, **seed).fit(
        df, "treated", ["x"]).result_.match_matrix for seed in ({}, {"seed": DEFAULT_SEED})]
    pd.testing.assert_frame_equal(*pairs)


def test_the_workflow_seeds_default_to_the_package_seed():
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert config["risk"]["seed"] == DEFAULT_SEED
    assert config["evaluate"]["seed"] == DEFAULT_SEED
    assert config["evaluate"]["design_check"]["seed"] == DEFAULT_SEED
