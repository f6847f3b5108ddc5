"""Matched comparison groups with balance diagnostics.

:class:`NearestNeighborMatcher` matches enrolled patients (treated) to
comparators on a propensity or prognostic score, choosing the same pairs as R
MatchIt's nearest-neighbour matching. Its ``fit`` returns the matcher (as every
fitter in phm-eval does); the matching, a read-only :class:`MatchResult` in
``result_``, gives the pairs, MatchIt's matching weights, the matched data, a flow
table and the balance table (``summary``) and love plot, and the fitted matcher
answers for it.
"""

from phm_eval.matching.balance import balance_table, balance_terms, term_balance
from phm_eval.matching.matcher import NearestNeighborMatcher
from phm_eval.matching.nearest import greedy_nearest
from phm_eval.matching.plots import love_plot
from phm_eval.matching.result import MatchResult
from phm_eval.matching.scores import fit_glm, prognostic_score, propensity_score

__all__ = [
    "MatchResult",
    "NearestNeighborMatcher",
    "balance_table",
    "balance_terms",
    "fit_glm",
    "greedy_nearest",
    "love_plot",
    "prognostic_score",
    "propensity_score",
    "term_balance",
]
