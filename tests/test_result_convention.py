"""One results convention for every public fitter and result class of survival/ and matching/.

As lifelines (issue 17): ``fit`` returns the fitter, fitted attributes end in ``_`` and the
settings given to ``__init__`` are left as they were; ``summary`` is a DataFrame property;
``print_summary()`` prints and returns None; ``repr`` is one short line saying whether the
object is fitted; everything pickles; options are keyword-only; ``alpha`` is one minus the
confidence level; bad arguments raise :class:`~phm_eval.errors.ParameterError` (a
``ValueError``) naming the argument; result objects cannot be changed after construction.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import phm_eval.matching as matching
import phm_eval.survival as survival
from phm_eval.errors import ParameterError
from phm_eval.matching import NearestNeighborMatcher, fit_glm, greedy_nearest
from phm_eval.matching.nearest import GreedyMatch
from phm_eval.matching.result import MatchResult
from phm_eval.matching.scores import GLMFit
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


@dataclass(frozen=True)
class Fitter:
    """A fitter, how to fit it, and which ``fit`` arguments are data (positional)."""

    make: Callable[..., Any]
    fit: Callable[[Any], Any]
    data_args: tuple[str, ...]
    missing_column: Callable[[Any], Any] | None  # a fit naming a column that is not there
    argument: str = ""  # the argument that call gets wrong

    @property
    def name(self) -> str:
        return self.make.__name__


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
]


def _match_result() -> MatchResult:
    return NearestNeighborMatcher(ratio=2).fit(COHORT, "treated", ["x", "admissions"]).result_


def _glm_fit() -> GLMFit:
    X = np.column_stack([np.ones(len(COHORT)), COHORT["x"]])
    return fit_glm(X, COHORT["treated"].to_numpy(), family="binomial",
                   names=["(Intercept)", "x"])


def _greedy_match() -> GreedyMatch:
    return greedy_nearest(COHORT["x"].to_numpy(), COHORT["treated"].to_numpy() == 1, ratio=1)


RESULTS = {MatchResult: _match_result, GLMFit: _glm_fit, GreedyMatch: _greedy_match}


def _public_classes(module) -> set[type]:
    objects = (getattr(module, name) for name in module.__all__)
    return {o for o in objects if inspect.isclass(o) and not issubclass(o, BaseException)}


def test_every_public_class_is_checked_here():
    """A new public fitter or result class of survival/ or matching/ must join this test."""
    covered = {f.make for f in FITTERS} | set(RESULTS)
    public = _public_classes(survival) | _public_classes(matching)
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
