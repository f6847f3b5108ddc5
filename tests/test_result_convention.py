"""One results convention for every public fitter and result class (issue 17).

The estimators (survival, matching, did), the analyses (evaluate, risk, segment) and
disclosure's DisclosedTable share :mod:`phm_eval.convention`.

As lifelines (issue 17): ``fit`` returns the fitter, fitted attributes end in ``_`` and the
settings given to ``__init__`` are left as they were; ``summary`` is a DataFrame property;
``print_summary()`` prints and returns None; ``repr`` is one short line saying whether the
object is fitted; everything pickles; options are keyword-only; ``alpha`` is one minus the
confidence level; bad arguments raise :class:`~phm_eval.errors.ParameterError` (a
``ValueError``) naming the argument; result objects cannot be changed after construction.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from test_evaluate_plasmode import ESTIMATOR, matched_frame
from test_evaluate_population import sim_panel
from test_segment_des_metrics import _tables as des_tables
from test_segment_grid import GRID_ROWS, RULES, make_population

import phm_eval
import phm_eval.survival as survival
from phm_eval.did import (
    AggteResult,
    AttGtResult,
    HonestDiDResult,
    RegressionResult,
    att_gt,
    honest_did,
    twfe,
)
from phm_eval.disclosure import DisclosedTable, apply_disclosure
from phm_eval.disclosure.release import ReleaseCheck
from phm_eval.errors import ParameterError
from phm_eval.evaluate.estimands import DesignCheck
from phm_eval.evaluate.pipeline import EvaluationResult
from phm_eval.evaluate.plasmode import PlasmodeResult, plasmode
from phm_eval.evaluate.population import PopulationITT, PopulationITTResult
from phm_eval.evaluate.population_plasmode import PopulationDesignCheck, population_design_check
from phm_eval.evaluate.power import MDEResult, mde_rate_ratio
from phm_eval.matching import NearestNeighborMatcher, fit_glm, greedy_nearest
from phm_eval.matching.nearest import GreedyMatch
from phm_eval.matching.result import MatchResult
from phm_eval.matching.scores import GLMFit
from phm_eval.risk import (
    DecisionCurve,
    IECVResult,
    RiskModelConfig,
    RiskModelReport,
    SampleSizeResult,
    TemporalValidationResult,
    ValidationResult,
)
from phm_eval.risk.develop import develop_risk_model
from phm_eval.risk.examples import example_risk_features
from phm_eval.risk.results import RiskModelResults
from phm_eval.risk.sample_size import riley_minimum
from phm_eval.segment import (
    BridgesResult,
    Core20Plus5Result,
    DesMetrics,
    GridResult,
    bridges_to_health,
    core20plus5,
    des_metrics,
    grid_3x3,
)
from phm_eval.survival import (
    CumulativeIncidenceFitter,
    FineGrayFitter,
    NegativeBinomialRateModel,
    PoissonRateModel,
    RobustCoxPHFitter,
)
from phm_eval.survival.simulate import simulate_fine_gray


def _cohort() -> pd.DataFrame:
    """Survival, count and matching columns for 400 people in 8 practices."""
    df = simulate_fine_gray(400, seed=7)
    rng = np.random.default_rng(7)
    df["practice_id"] = [f"P{i % 8}" for i in range(len(df))]
    df["person_years"] = rng.uniform(0.3, 2.0, len(df))
    mu = df["person_years"] * np.exp(-0.5 + 0.4 * df["x"] - 0.2 * df["treated"])
    df["admissions"] = rng.negative_binomial(1.5, 1.5 / (1.5 + mu))
    df.index = pd.Index([f"id{i:03d}" for i in range(len(df))], name="patient_id")
    return df


COHORT = _cohort()
ITT_PANEL = sim_panel(0, n_units=16, n_never=6, T=36, waves=(13, 25))[0]


@dataclass(frozen=True)
class Fitter:
    """A fitter, how to fit it, and which ``fit`` arguments are data (positional)."""

    make: Callable[..., Any]
    fit: Callable[[Any], Any]
    data_args: tuple[str, ...]
    missing_column: Callable[[Any], Any] | None  # a fit naming a column that is not there
    argument: str = ""  # the argument that call gets wrong
    cls: type | None = None  # when ``make`` is not the class itself

    @property
    def fitter_class(self) -> type:
        return self.cls or self.make

    @property
    def name(self) -> str:
        return self.fitter_class.__name__


def _itt(**settings: Any) -> PopulationITT:
    return PopulationITT(**{"honest_m": (), **settings})  # Honest DiD has tests of its own


FITTERS = [
    Fitter(FineGrayFitter,
           lambda f: f.fit(COHORT, "time", "event", event_of_interest=1,
                           covariates=["treated", "x"], cluster_col="practice_id"),
           ("df", "duration_col", "event_col"),
           lambda f: f.fit(COHORT, "years", "event", covariates=["x"]), "duration_col"),
    Fitter(RobustCoxPHFitter,
           lambda f: f.fit(COHORT, "time", "event", event_of_interest=1,
                           covariates=["treated", "x"], cluster_col="practice_id"),
           ("df", "duration_col", "event_col"),
           lambda f: f.fit(COHORT, "time", "event", covariates=["x"], cluster_col="pcn"),
           "cluster_col"),
    Fitter(CumulativeIncidenceFitter,
           lambda f: f.fit(COHORT["time"], COHORT["event"], groups=COHORT["treated"]),
           ("durations", "events", "groups", "strata"),
           lambda f: f.fit(COHORT["time"], COHORT["event"], groups=COHORT["treated"][:9]),
           "groups"),
    Fitter(NegativeBinomialRateModel,
           lambda f: f.fit(COHORT, "admissions", "person_years", covariates=["treated", "x"],
                           cluster_col="practice_id"),
           ("df", "count_col", "person_time_col"),
           lambda f: f.fit(COHORT, "admits", "person_years", covariates=["x"]), "count_col"),
    Fitter(PoissonRateModel,
           lambda f: f.fit(COHORT, "admissions", "person_years", covariates=["treated", "x"]),
           ("df", "count_col", "person_time_col"),
           lambda f: f.fit(COHORT, "admissions", "pt", covariates=["x"]), "person_time_col"),
    Fitter(NearestNeighborMatcher,
           lambda f: f.fit(COHORT, "treated", ["x", "admissions"]),
           ("df", "treatment_col", "covariates"),
           lambda f: f.fit(COHORT, "treated", ["x", "age"]), "covariates"),
    Fitter(_itt, lambda f: f.fit(ITT_PANEL), ("panel",),
           lambda f: f.fit(ITT_PANEL.drop(columns="weight")), "panel", cls=PopulationITT),
]


def _match_result() -> MatchResult:
    return NearestNeighborMatcher(ratio=2).fit(COHORT, "treated", ["x", "admissions"]).result_


def _glm_fit() -> GLMFit:
    X = np.column_stack([np.ones(len(COHORT)), COHORT["x"]])
    return fit_glm(X, COHORT["treated"].to_numpy(), family="binomial",
                   names=["(Intercept)", "x"])


def _greedy_match() -> GreedyMatch:
    return greedy_nearest(COHORT["x"].to_numpy(), COHORT["treated"].to_numpy() == 1, ratio=1)


def _did_panel() -> pd.DataFrame:
    """120 units over 4 periods, cohorts first treated in periods 3 and 4 and never."""
    rng = np.random.default_rng(3)
    n, periods = 120, 4
    g = np.repeat(rng.choice([0, 3, 4], n), periods)
    t = np.tile(np.arange(1, periods + 1), n)
    y = rng.normal(size=n * periods) + 0.5 * ((g > 0) & (t >= g))
    return pd.DataFrame({"id": np.repeat(np.arange(n), periods), "t": t, "g": g, "y": y})


@cache
def _att_gt() -> AttGtResult:
    return att_gt(_did_panel(), yname="y", tname="t", idname="id", gname="g", biters=99, seed=1)


def _honest() -> HonestDiDResult:
    return honest_did(np.array([0.02, -0.01, 0.30, 0.35]), np.diag([0.01, 0.01, 0.012, 0.012]),
                      2, 2, method="smoothness", m=[0.0, 0.05])


@cache
def _risk_report() -> RiskModelReport:
    kw = {"n_practices": 12, "practices_per_pcn": 3}
    development = example_risk_features(4000, seed=5, **kw).drop(columns="true_risk")
    later = example_risk_features(3000, seed=9, **kw).drop(columns="true_risk")
    config = RiskModelConfig(n_bootstrap=0, n_optimism_bootstrap=0)
    return develop_risk_model(development, config, validation_features=later)


@cache
def _plasmode() -> PlasmodeResult:
    return plasmode(matched_frame(n_sets=80), (1.0, 0.8), n_replicates=3, seed=4,
                    estimator=ESTIMATOR)


def _evaluation() -> EvaluationResult:
    """The container the evaluation returns (its own tests build real ones from data)."""
    analysed = matched_frame(n_sets=20)
    record = {"outcome": "emergency admissions", "method": "negative binomial rate ratio",
              "subgroup": None, "estimate": 0.85, "ci_low": 0.7, "ci_high": 1.03,
              "scale": "RR", "n_treated": 20, "n_control": 20, "headline": True}
    return EvaluationResult(records=[record], cohort=None, matching=None, analysed=analysed,
                            rtm=pd.DataFrame(), naive=None, did=None, study_panel=None)


def _population() -> pd.DataFrame:
    return make_population(GRID_ROWS)


RESULTS = {
    MatchResult: _match_result, GLMFit: _glm_fit, GreedyMatch: _greedy_match,
    AttGtResult: _att_gt, AggteResult: lambda: _att_gt().aggregate("dynamic"),
    RegressionResult: lambda: twfe(_did_panel(), "y", "t", "id", "g"),
    HonestDiDResult: _honest,
    RiskModelReport: _risk_report,
    RiskModelResults: lambda: RiskModelResults(**{f.name: getattr(_risk_report(), f.name)
                                                  for f in dataclasses.fields(RiskModelResults)}),
    ValidationResult: lambda: _risk_report().apparent,
    DecisionCurve: lambda: _risk_report().apparent.decision,
    IECVResult: lambda: _risk_report().iecv,
    TemporalValidationResult: lambda: _risk_report().temporal,
    SampleSizeResult: lambda: riley_minimum(20, 0.1, c_statistic=0.75),
    GridResult: lambda: grid_3x3(_population(), RULES),
    BridgesResult: lambda: bridges_to_health(_population()),
    Core20Plus5Result: lambda: core20plus5(_population()),
    DesMetrics: lambda: des_metrics(*des_tables(), "2020-04-01", "2022-03-31"),
    EvaluationResult: _evaluation,
    PlasmodeResult: _plasmode,
    DesignCheck: lambda: DesignCheck(targets=_plasmode().summary(), n_replicates=3,
                                     true_rate_ratio=0.8, mde_rate_ratio=None),
    PopulationDesignCheck: lambda: population_design_check(ITT_PANEL, n_replicates=2,
                                                           true_rate_ratio=0.9),
    MDEResult: lambda: mde_rate_ratio(500, 500, 0.4, 0.9, theta=1.2),
    PopulationITTResult: lambda: _itt().fit(ITT_PANEL).result_,
    DisclosedTable: lambda: apply_disclosure(pd.DataFrame({"n": [3, 120, 48]}),
                                             count_cols=["n"]),
}

#: Public classes that are not results of an analysis, with the reason.
NOT_RESULTS = {
    ReleaseCheck: "the report of a release check, filled in as the scan goes; its summary "
                  "is the text the command line prints",
}
PACKAGES = ("survival", "matching", "did", "frailty", "evaluate", "risk", "segment", "describe",
            "disclosure")


def _fitters_and_results() -> set[type]:
    """Every public class of those packages that fits, summarises, or is named a result."""
    found = set()
    for info in pkgutil.walk_packages(phm_eval.__path__, "phm_eval."):
        relative = info.name.removeprefix("phm_eval.")
        if relative.split(".")[0] not in PACKAGES or any(
                part.startswith("_") for part in relative.split(".")):
            continue
        for name, obj in vars(importlib.import_module(info.name)).items():
            if (name.startswith("_") or not inspect.isclass(obj) or obj.__module__ != info.name
                    or issubclass(obj, BaseException)):
                continue
            if (hasattr(obj, "fit") or hasattr(obj, "summary")
                    or name.endswith(("Result", "Results"))):
                found.add(obj)
    return found


def test_every_public_class_is_checked_here():
    """A new public fitter or result class must join this test."""
    covered = {f.fitter_class for f in FITTERS} | set(RESULTS) | set(NOT_RESULTS)
    public = _fitters_and_results()
    assert survival.FineGrayFitter in public and AttGtResult in public  # the search works
    assert public <= covered, f"not checked: {sorted(c.__name__ for c in public - covered)}"


@pytest.fixture(scope="module", params=FITTERS, ids=lambda f: f.name)
def fitter_case(request) -> tuple[Fitter, Any, Any]:
    """(case, an unfitted fitter, the same fitted)."""
    case = request.param
    return case, case.make(), case.fit(case.make())


def test_fit_returns_self_and_sets_only_trailing_underscore_attributes(fitter_case):
    case, unfitted, _ = fitter_case
    fresh = case.make()
    settings = dict(vars(fresh))
    fitted = case.fit(fresh)
    assert fitted is fresh
    added = set(vars(fresh)) - set(settings)
    public = {a for a in added if not a.startswith("_")}
    assert public, "fit sets no fitted attribute"
    assert all(a.endswith("_") for a in public), sorted(a for a in public if not a.endswith("_"))
    # the settings given to __init__ are kept as they were (scikit-learn's rule)
    assert {k: vars(fresh)[k] for k in settings} == settings


def test_summary_is_a_dataframe_property(fitter_case):
    case, _, fitted = fitter_case
    assert isinstance(inspect.getattr_static(type(fitted), "summary"), property)
    table = fitted.summary
    assert isinstance(table, pd.DataFrame) and len(table) > 0


def test_print_summary_prints_and_returns_none(fitter_case, capsys):
    _, _, fitted = fitter_case
    assert fitted.print_summary() is None
    assert len(capsys.readouterr().out.strip()) > 0


def test_repr_is_short_and_says_whether_fitted(fitter_case):
    case, unfitted, fitted = fitter_case
    for obj, state in ((unfitted, "not fitted"), (fitted, "fitted")):
        text = repr(obj)
        assert text.startswith(f"<{case.name}(") and len(text) < 300 and "\n" not in text
        assert state in text
    assert "not fitted" not in repr(fitted) and "n=" in repr(fitted)


def test_pickling_round_trips(fitter_case):
    _, unfitted, fitted = fitter_case
    again = pickle.loads(pickle.dumps(fitted))
    assert repr(again) == repr(fitted)
    pd.testing.assert_frame_equal(pd.DataFrame(again.summary), pd.DataFrame(fitted.summary))
    assert repr(pickle.loads(pickle.dumps(unfitted))) == repr(unfitted)


def test_options_are_keyword_only(fitter_case):
    case, unfitted, _ = fitter_case
    init = list(inspect.signature(type(unfitted).__init__).parameters.values())[1:]
    assert all(p.kind is p.KEYWORD_ONLY for p in init), [p.name for p in init]
    fit = list(inspect.signature(type(unfitted).fit).parameters.values())[1:]
    positional = tuple(p.name for p in fit if p.kind is p.POSITIONAL_OR_KEYWORD)
    assert positional == case.data_args
    assert all(p.kind is p.KEYWORD_ONLY for p in fit if p.name not in case.data_args)


def test_alpha_is_one_minus_the_confidence_level(fitter_case):
    case, _, fitted = fitter_case
    if "alpha" not in inspect.signature(type(fitted).__init__).parameters:
        pytest.skip(f"{case.name} has no confidence level")
    assert fitted.alpha == 0.05
    with pytest.raises(ParameterError, match="^alpha: ") as err:
        case.fit(case.make(alpha=1.5))
    assert isinstance(err.value, ValueError)
    ninety = case.fit(case.make(alpha=0.1))
    assert _interval_width(ninety) < _interval_width(fitted)


def _interval_width(fitted: Any) -> float:
    """Total width of a fit's confidence intervals (coefficients, or curves)."""
    if hasattr(fitted, "cumulative_incidence_"):
        curves = fitted.cumulative_incidence_
        return float((curves["upper"] - curves["lower"]).sum())
    table = fitted.summary
    if "ci_low" in table.columns:
        return float((table["ci_high"] - table["ci_low"]).sum())
    level = f"{100 * (1 - fitted.alpha):g}%"
    return float((table[f"coef upper {level}"] - table[f"coef lower {level}"]).sum())


def test_a_bad_argument_is_a_value_error_naming_the_argument(fitter_case):
    case, _, _ = fitter_case
    with pytest.raises(ParameterError) as err:
        case.missing_column(case.make())
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith(f"{case.argument}: ") or case.argument in str(err.value)


def test_results_before_fit_say_so(fitter_case):
    case, unfitted, _ = fitter_case
    from phm_eval.errors import EstimationError

    with pytest.raises(EstimationError, match="fit"):
        unfitted.summary  # noqa: B018


@pytest.mark.parametrize("cls", list(RESULTS), ids=lambda c: c.__name__)
def test_result_classes(cls):
    result = RESULTS[cls]()
    assert isinstance(result, cls)
    # summary: a DataFrame property
    assert isinstance(inspect.getattr_static(cls, "summary"), property)
    assert isinstance(result.summary, pd.DataFrame) and len(result.summary) > 0
    # repr: one short line
    text = repr(result)
    assert text.startswith(f"<{cls.__name__}(") and len(text) < 300 and "\n" not in text
    # pickling round-trips
    again = pickle.loads(pickle.dumps(result))
    assert repr(again) == text
    pd.testing.assert_frame_equal(pd.DataFrame(again.summary), pd.DataFrame(result.summary))
    # immutable after construction
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, field, None)


def test_summary_called_as_before_still_works():
    """``summary()`` was a method of the rate models, the cumulative incidence fitter and
    the match result; calling it still returns the table."""
    nb = FITTERS[3].fit(NegativeBinomialRateModel())
    ci = FITTERS[2].fit(CumulativeIncidenceFitter())
    for obj in (nb, ci, _match_result()):
        called = obj.summary()
        assert type(called) is pd.DataFrame
        pd.testing.assert_frame_equal(called, pd.DataFrame(obj.summary))


def test_former_names_still_read_the_fitted_values():
    nb = FITTERS[3].fit(NegativeBinomialRateModel())
    assert nb.params is nb.params_ and nb.bse is nb.standard_errors_
    assert nb.theta == nb.theta_ == 1 / nb.dispersion_
    assert nb.n_clusters == nb.n_clusters_ == 8
    assert survival.NegativeBinomialRateResults is NegativeBinomialRateModel
    with pytest.deprecated_call(match="random_state"):
        matcher = FITTERS[5].fit(NearestNeighborMatcher(random_state=1))
    assert matcher.seed == 1 and matcher.random_state == 1
    # the fitted matcher answers for its result, as the result fit used to return
    pd.testing.assert_frame_equal(matcher.matched_data(), matcher.result_.matched_data())
    assert matcher.weights is matcher.result_.weights
    fg = FITTERS[0].fit(FineGrayFitter())
    assert fg.cluster_col == fg.cluster_col_ == "practice_id"
