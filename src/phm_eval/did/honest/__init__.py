"""Sensitivity of an event study to violations of parallel trends ("Honest DiD").

Rambachan & Roth (2023), *A More Credible Approach to Parallel Trends*, Review of
Economic Studies 90(5).  Given event-study coefficients ``betahat`` (pre-periods
first, the reference period left out) and their covariance ``sigma``, the
confidence intervals for ``theta = l' tau_post`` stay valid when the post-period
violation of parallel trends ``delta_post`` is only restricted to a set Delta:

* ``method="smoothness"``: Delta^SD(M), the slope of ``delta`` changes by at most
  ``M`` between consecutive periods (``M = 0``: linear trends).  Fixed-length
  confidence interval (FLCI), R's ``createSensitivityResults`` default.
* ``method="relative_magnitude"``: Delta^RM(Mbar), every post-period change of
  ``delta`` is at most ``Mbar`` times the largest pre-period change.  Conditional
  least-favourable hybrid test of Andrews, Roth & Pakes (ARP) inverted over a
  grid, R's ``createSensitivityResults_relativeMagnitudes`` default.

The algorithms follow R's HonestDiD package (0.2.9) step by step, including its
simulated quantities: the folded-normal quantile of the FLCI (10^6 draws) and the
least-favourable critical value (1,000 draws) are computed from R's own
Mersenne-Twister/inversion normal stream with R's seed (0), so results equal R's
to solver precision (tests/fixtures/did/honest/).  The relative-magnitude grid is
the one R used for the results published in its README (see :func:`honest_did`).  docs/did.md reports the agreement.

>>> res = honest_did(betahat, sigma, num_pre=5, num_post=2, method="smoothness",
...                  m=[0, 0.01, 0.02])
>>> res.summary()        # M, lb, ub, method, delta
>>> res.plot()
"""

# The private names are internals, importable from here as when this package was one
# module (the tests use them).
from ._arp import (  # noqa: F401
    _MAX_BASES,
    _arp_accept_no_nuisance,
    _arp_accept_nuisance,
    _conditional_test,
    _construct_gamma,
    _Dual,
    _lf_cv,
    _roundeps,
    _test_no_nuisance,
    _vertices,
    _vlo_vup_dual,
)
from ._common import _EPS, _check_inputs, _l_vec, _m_grid, _original  # noqa: F401
from ._critical import (  # noqa: F401
    _FoldedNormal,
    _quantile7,
    _r_rmvnorm,
    _r_rnorm,
    _trunc_norm_quantile,
)
from .event_study import event_study_covariance, honest_did_from_event_study
from .identified import identified_set
from .intervals import honest_did, original_ci
from .relative_magnitude import _create_a_rm, _rm_accept, _rm_grid_bounds  # noqa: F401
from .result import HonestDiDResult
from .smoothness import (  # noqa: F401
    _a_sd,
    _default_m_smoothness,
    _derivative_bisection,
    _FLCIProblem,
    _lasso_path,
)

__all__ = ["honest_did", "honest_did_from_event_study", "original_ci", "identified_set",
           "event_study_covariance", "HonestDiDResult"]
