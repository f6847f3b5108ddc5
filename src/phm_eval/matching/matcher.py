"""Nearest-neighbour matching of enrolled patients to comparators."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from phm_eval import DEFAULT_SEED
from phm_eval.convention import AnswersForResult, require_fitted, short_repr
from phm_eval.errors import EstimationError, InputError, ParameterError, renamed_argument
from phm_eval.matching.nearest import greedy_nearest
from phm_eval.matching.result import MatchResult
from phm_eval.matching.scores import Family, GLMFit, prognostic_score, propensity_score

logger = logging.getLogger(__name__)

_M_ORDERS = ("largest", "smallest", "data", "random")
_LINKS = {"logit": "linear", "linear.logit": "linear", "probability": "probability"}
# What a fitted matcher answers for its MatchResult (``fit`` used to return the result).
_RESULT_API = frozenset({
    "data", "treatment_col", "covariates", "distance", "match_matrix", "weights", "subclass",
    "reason", "match_rows", "treated_rows", "settings", "exact", "treat", "pairs",
    "matched_data", "sample_sizes", "flow", "balance", "plot", "to_dict",
})


class NearestNeighborMatcher(AnswersForResult):
    """Greedy k:1 nearest-neighbour matching on a score, choosing the same pairs as R MatchIt.

    The matching is MatchIt's ``matchit(method = "nearest")`` (version 4.5.4 or
    later) with a propensity score, a prognostic score or a score you supply:
    same processing order, caliper rule, tie-breaking and weights, so on the same
    data and score the same pairs come out. Only the ATT estimand is offered
    (controls are matched to treated units).

    ``fit`` returns the matcher (as lifelines' and scikit-learn's ``fit`` do); the matching
    is its ``result_``, a read-only :class:`MatchResult`, whose attributes and methods
    (``matched_data()``, ``balance()``, ``pairs``, ``weights``, ``flow()``, ``plot()``,
    ``to_dict()``...) the fitted matcher also answers for, so code that used the return
    value of ``fit`` as the result keeps working. Two names stay the matcher's settings:
    ``distance`` (``"logit"``...; the score matched on is ``distance_``, or
    ``result_.distance``) and ``exact`` (``result_.exact`` is always a list).

    Every parameter is keyword-only. The matching settings keep MatchIt's names
    (``distance``, ``link``, ``ratio``, ``caliper``, ``std.caliper`` as ``std_caliper``,
    ``replace``, ``exact``, ``m.order`` as ``m_order``) so an R user finds them; randomness
    is ``seed``, as everywhere in phm-eval (MatchIt relies on R's ``set.seed``).

    Parameters
    ----------
    distance : str, default "logit"
        ``"logit"``: propensity score from a main-effects logistic regression of
        treatment on ``covariates`` (MatchIt ``distance = "glm"``).
        ``"prognostic"``: predicted outcome from a model of ``prognostic_outcome``
        on ``covariates`` fitted on the comparators only (Hansen 2008).
        Any other string: the name of a numeric column holding a score you made.
    link : {"logit", "probability"}, default "logit"
        Scale of a fitted score: ``"logit"`` (alias ``"linear.logit"``) matches on
        the linear predictor, as MatchIt's ``link = "linear.logit"``;
        ``"probability"`` on the fitted probability (or mean), as MatchIt's
        default ``link = "logit"``. Note the naming differs from MatchIt's.
    ratio : int, default 1
        Comparators per treated unit (k:1).
    caliper : float or None, default 0.2
        Largest allowed score difference for a pair; ``None`` for no caliper.
        MatchIt has no caliper unless asked; 0.2 SD of the logit of the
        propensity score is Austin's (2011) recommendation.
    std_caliper : bool, default True
        Caliper in standard deviations of the score (over all units), as MatchIt.
    replace : bool, default False
        Whether a comparator may serve more than one treated unit.
    exact : list of str, optional
        Columns on which pairs must agree exactly (e.g. ``["sex", "pcn_wave"]``).
    m_order : {"largest", "smallest", "data", "random"}, default "largest"
        Order in which treated units choose: by descending or ascending score, in
        data order, or at random (``seed``; R's random order cannot be
        reproduced). Irrelevant with replacement.
    seed : int or numpy.random.Generator, optional
        Seed of the random matching order (``m_order="random"``); ``None`` (not given) is
        ``phm_eval.DEFAULT_SEED``, so a random order is the same from run to run.
    prognostic_outcome : str, optional
        Outcome column for ``distance="prognostic"``; use a pre-period outcome.
    prognostic_family : {"gaussian", "binomial", "poisson"}, default "gaussian"
    random_state : int or numpy.random.Generator, optional
        Former name of ``seed``, still accepted with a ``DeprecationWarning`` (and readable
        as ``random_state``).

    Attributes
    ----------
    result_ : MatchResult
        The matching: pairs, weights, matched sets, flow and balance.
    score_model_ : GLMFit or None
        The fitted propensity or prognostic model (``None`` for a score you supplied).
    distance_ : pandas.Series
        Property: the score matched on, per unit (``result_.distance``).
    caliper_score_units_ : float or None
        The caliper in units of the score.
    n_treated_, n_matched_ : int
        Treated units, and those matched to at least one comparator.
    summary : pandas.DataFrame
        Property: the balance table before and after matching.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"age": rng.integers(65, 95, 400),
    ...                    "prior_emergency_admissions": rng.poisson(0.6, 400)})
    >>> df["treated"] = rng.binomial(1, 1 / (1 + np.exp(3 - 0.02 * df["age"]
    ...                                              - 0.8 * df["prior_emergency_admissions"])))
    >>> matcher = NearestNeighborMatcher(caliper=0.2).fit(
    ...     df, "treated", ["age", "prior_emergency_admissions"])
    >>> bool((matcher.summary["smd_after"].abs() < 0.1).all())
    True
    """

    _result_api = _RESULT_API

    def __init__(
        self,
        *,
        distance: str = "logit",
        link: Literal["logit", "linear.logit", "probability"] = "logit",
        ratio: int = 1,
        caliper: float | None = 0.2,
        std_caliper: bool = True,
        replace: bool = False,
        exact: Sequence[str] | None = None,
        m_order: Literal["largest", "smallest", "data", "random"] = "largest",
        seed: int | np.random.Generator | None = None,
        prognostic_outcome: str | None = None,
        prognostic_family: Family = "gaussian",
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        seed = renamed_argument("NearestNeighborMatcher", "seed", seed, "random_state",
                                random_state)
        self.distance = distance
        self.link = link
        self.ratio = ratio
        self.caliper = caliper
        self.std_caliper = std_caliper
        self.replace = replace
        self.exact = exact
        self.m_order = m_order
        self.seed = seed
        self.prognostic_outcome = prognostic_outcome
        self.prognostic_family = prognostic_family

    @property
    def random_state(self) -> int | np.random.Generator | None:
        """Former name of ``seed``."""
        return self.seed

    def __repr__(self) -> str:
        fitted = None
        if "result_" in vars(self):
            def fitted() -> str:
                return (f"{self.n_matched_} of {self.n_treated_} treated matched, "
                        f"n={len(self.result_.data)}")
        settings = {"distance": self.distance, "ratio": self.ratio, "caliper": self.caliper,
                    "replace": self.replace}
        if self.exact:
            settings["exact"] = list(self.exact)
        return short_repr(self, settings, fitted)

    @property
    def distance_(self) -> pd.Series:
        """The score matched on, per unit (``distance`` is the setting that chose it)."""
        require_fitted(self, "result_")
        return self.result_.distance

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the settings, the sample sizes and the balance table."""
        require_fitted(self, "result_")
        self.result_.print_summary(decimals=decimals)

    def _check_params(self) -> None:
        if self.link not in _LINKS:
            raise ParameterError("link", f"must be one of {sorted(_LINKS)}", self.link)
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, np.integer)) or self.ratio < 1:
            raise ParameterError("ratio", "must be a whole number >= 1", self.ratio)
        if self.caliper is not None and (not np.isfinite(self.caliper) or self.caliper <= 0):
            raise ParameterError("caliper", "must be a positive number or None", self.caliper)
        if self.m_order not in _M_ORDERS:
            raise ParameterError("m_order", f"must be one of {list(_M_ORDERS)}", self.m_order)
        if self.distance == "prognostic" and not self.prognostic_outcome:
            raise ParameterError("prognostic_outcome",
                                 "distance='prognostic' needs an outcome column",
                                 self.prognostic_outcome)
        if self.prognostic_family not in ("gaussian", "binomial", "poisson"):
            raise ParameterError("prognostic_family", "must be 'gaussian', 'binomial' or "
                                 "'poisson'", self.prognostic_family)

    def fit(
        self, df: pd.DataFrame, treatment_col: str, covariates: Sequence[str]
    ) -> NearestNeighborMatcher:
        """Score the units and match.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per patient; the index labels identify units in the pairs.
        treatment_col : str
            1 = enrolled (treated), 0 = potential comparator.
        covariates : sequence of str
            Baseline covariates for the score model (and the balance table).

        Returns
        -------
        self
            With the matching in ``result_`` (see the class notes).
        """
        self._check_params()
        covariates = list(covariates)
        exact = list(self.exact or [])
        _validate(df, treatment_col, covariates, exact, self.distance)

        treat = df[treatment_col].to_numpy() == 1
        if treat.all() or not treat.any():
            raise EstimationError("matching needs both treated units and potential comparators")

        model: GLMFit | None = None
        scale = _LINKS[self.link]
        if self.distance == "logit":
            score, model = propensity_score(df, treatment_col, covariates, scale=scale)
        elif self.distance == "prognostic":
            score, model = prognostic_score(
                df, treatment_col, covariates, self.prognostic_outcome,
                family=self.prognostic_family, scale=scale,
            )
        else:
            score = df[self.distance].to_numpy(dtype=float)

        caliper_abs = None
        if self.caliper is not None:
            caliper_abs = float(self.caliper)
            if self.std_caliper:
                caliper_abs *= float(np.std(score, ddof=1))

        strata = None
        if exact:
            strata = pd.MultiIndex.from_frame(df[exact]).factorize()[0] if len(exact) > 1 \
                else pd.factorize(df[exact[0]])[0]
            _warn_thin_strata(strata, treat, self.ratio, self.replace)

        order = self._order(score[treat])
        raw = greedy_nearest(
            score, treat, ratio=int(self.ratio), replace=self.replace,
            caliper=caliper_abs, strata=strata, order=order,
        )
        if not (raw.match_matrix[:, 0] >= 0).any():
            raise EstimationError(
                "no treated unit found a comparator; widen the caliper or relax exact matching"
            )

        weights, subclass = _matching_weights(raw.match_matrix, raw.treated_rows, len(df), self.replace)
        labels = df.index
        treated_labels = labels[raw.treated_rows]
        mm = pd.DataFrame(
            {
                f"control_{j + 1}": pd.Series(
                    [labels[r] if r >= 0 else None for r in raw.match_matrix[:, j]],
                    index=treated_labels, dtype=object,
                )
                for j in range(raw.match_matrix.shape[1])
            },
            index=treated_labels,
        )
        settings = {
            "distance": self.distance,
            "link": self.link,
            "ratio": int(self.ratio),
            "caliper": self.caliper,
            "std_caliper": self.std_caliper,
            "caliper_score_units": caliper_abs,
            "replace": self.replace,
            "exact": exact,
            "m_order": "data" if self.replace else self.m_order,
            "estimand": "ATT",
        }
        if model is not None:
            settings["score_model"] = {
                "family": model.family,
                "converged": model.converged,
                "coefficients": dict(zip(model.names, map(float, model.coef), strict=True)),
            }
        n_matched = int((raw.match_matrix[:, 0] >= 0).sum())
        logger.info("matched %d of %d treated units", n_matched, int(treat.sum()))
        self.score_model_ = model
        self.caliper_score_units_ = caliper_abs
        self.n_treated_ = int(treat.sum())
        self.n_matched_ = n_matched
        self.result_ = MatchResult(
            data=df,
            treatment_col=treatment_col,
            covariates=covariates,
            distance=pd.Series(score, index=labels, name="distance"),
            match_matrix=mm,
            weights=pd.Series(weights, index=labels, name="weights"),
            subclass=(
                None if subclass is None
                else pd.Series(subclass, index=labels, name="subclass", dtype="Int64").mask(
                    subclass == 0
                )
            ),
            reason=pd.Series(raw.reason, index=treated_labels, name="reason"),
            match_rows=raw.match_matrix,
            treated_rows=raw.treated_rows,
            settings=settings,
            exact=exact,
        )
        return self

    def _order(self, treated_score: np.ndarray) -> np.ndarray:
        # Stable sorts: ties keep data order, as R's order() does.
        if self.m_order == "largest":
            return np.argsort(-treated_score, kind="stable")
        if self.m_order == "smallest":
            return np.argsort(treated_score, kind="stable")
        if self.m_order == "random":
            seed = DEFAULT_SEED if self.seed is None else self.seed
            return np.random.default_rng(seed).permutation(len(treated_score))
        return np.arange(len(treated_score))


def _matching_weights(
    mm: np.ndarray, treated_rows: np.ndarray, n: int, replace: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """MatchIt's weights (and subclasses when without replacement) from the match matrix."""
    k_i = (mm >= 0).sum(axis=1)
    matched = k_i > 0
    weights = np.zeros(n)
    weights[treated_rows[matched]] = 1.0
    ctrl = mm[matched]
    share = np.repeat(1.0 / k_i[matched], mm.shape[1])
    flat = ctrl.reshape(-1)
    ok = flat >= 0
    np.add.at(weights, flat[ok], share[ok])
    is_ctrl = np.ones(n, dtype=bool)
    is_ctrl[treated_rows] = False
    used = is_ctrl & (weights > 0)
    # MatchIt rescales the non-zero control weights to average 1.
    weights[used] *= used.sum() / weights[used].sum()

    subclass = None
    if not replace:
        subclass = np.zeros(n, dtype=np.int64)  # 0 = in no matched set
        sets = np.cumsum(matched)  # numbered in data order of the treated units
        subclass[treated_rows[matched]] = sets[matched]
        for j in range(mm.shape[1]):
            col = mm[:, j]
            has = col >= 0
            subclass[col[has]] = sets[has]
    return weights, subclass


def _warn_thin_strata(strata: np.ndarray, treat: np.ndarray, ratio: int, replace: bool) -> None:
    n_t = np.bincount(strata[treat], minlength=strata.max() + 1)
    n_c = np.bincount(strata[~treat], minlength=strata.max() + 1)
    if ((n_t > 0) & (n_c == 0)).any():
        logger.warning("some exact-matching strata have treated units but no comparators")
    if not replace and ((n_t > 0) & (n_c > 0) & (n_c < n_t * ratio)).any():
        logger.warning("fewer comparators than needed in some exact strata; not all treated "
                       "units will get %d comparator(s)", ratio)


def _validate(
    df: pd.DataFrame, treatment_col: str, covariates: list[str], exact: list[str], distance: str
) -> None:
    name = "df passed to NearestNeighborMatcher.fit"
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", "must be a pandas DataFrame", type(df).__name__)
    if not df.index.is_unique:
        dup = df.index[df.index.duplicated()]
        raise InputError(name, "index labels identify patients and must be unique",
                         keys=list(dup[:5]), n_failing=len(dup))
    named = {"treatment_col": [treatment_col], "covariates": covariates, "exact": exact,
             "distance": [] if distance in ("logit", "prognostic") else [distance]}
    for argument, columns in named.items():
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ParameterError(argument, "names missing column(s) of df", missing)
    t = df[treatment_col]
    bad = ~t.isin([0, 1, True, False]) | t.isna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise InputError(name, "treatment must be 0 or 1", column=treatment_col,
                         rows=[int(r) + 1 for r in rows[:5]], n_failing=len(rows))
    numeric_score = [] if distance in ("logit", "prognostic") else [distance]
    for col in [*covariates, *exact, *numeric_score]:
        x = df[col]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            fail = ~np.isfinite(x.to_numpy(dtype=float))
        else:
            fail = x.isna().to_numpy()
        if col in numeric_score and not pd.api.types.is_numeric_dtype(x):
            raise InputError(name, "a score column must be numeric", column=col)
        if fail.any():
            rows = np.flatnonzero(fail)
            raise InputError(name, "missing or non-finite values are not allowed", column=col,
                             rows=[int(r) + 1 for r in rows[:5]], n_failing=len(rows))
