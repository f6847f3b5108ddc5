"""Identified set of ``l' tau_post`` under Delta^SD(M) or Delta^RM(Mbar)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog

from phm_eval.errors import ConfigError

from ._common import _l_vec
from .relative_magnitude import _create_a_rm
from .smoothness import _a_sd


def identified_set(betahat: npt.ArrayLike, num_pre: int, num_post: int, *,
                   method: str = "relative_magnitude", m: float = 1.0,
                   l_vec: npt.ArrayLike | None = None) -> tuple:
    """Bounds of the identified set of ``l' tau_post`` taking ``betahat`` as the truth.

    ``delta_pre = beta_pre`` and ``delta`` in Delta^SD(M) or Delta^RM(Mbar) (R's
    internal ``.compute_IDset_DeltaSD`` / ``.compute_IDset_DeltaRM``; Delta^RM is the
    union over the location and sign of the largest pre-period change).  Returns
    ``(nan, nan)`` when no ``delta`` in Delta matches ``beta_pre`` (R instead returns
    the point ``l' beta_post``).
    """
    b = np.asarray(betahat, dtype=float).ravel()
    n = num_pre + num_post
    if len(b) != n:
        raise ConfigError(f"betahat has {len(b)} entries but num_pre + num_post = {n}")
    lv = _l_vec(l_vec, num_post)
    if not (np.isfinite(m) and m >= 0):
        raise ConfigError(f"m must be a finite number >= 0, got {m}")
    if method == "smoothness":
        comps = [(_a_sd(num_pre, num_post), None)]
        rhs_const = float(m)
    elif method == "relative_magnitude":
        comps = [(_create_a_rm(num_pre, num_post, m, s, pos), None)
                 for s in range(-(num_pre - 1), 1) for pos in (True, False)]
        rhs_const = 0.0
    else:
        raise ConfigError(f"method must be 'relative_magnitude' or 'smoothness', got {method!r}")
    theta = float(lv @ b[num_pre:])
    lows, highs = [], []
    c = np.concatenate([np.zeros(num_pre), lv])
    a_eq = np.hstack([np.eye(num_pre), np.zeros((num_pre, num_post))])
    for A, _ in comps:
        rhs = np.full(A.shape[0], rhs_const)
        kw = dict(A_ub=A, b_ub=rhs, A_eq=a_eq, b_eq=b[:num_pre], bounds=(None, None),
                  method="highs")
        rmin, rmax = linprog(c, **kw), linprog(-c, **kw)
        if rmin.status == 0 and rmax.status == 0:
            lows.append(theta + rmax.fun)   # theta - max l'delta_post
            highs.append(theta - rmin.fun)  # theta - min l'delta_post
    if not lows:
        return np.nan, np.nan
    return float(min(lows)), float(max(highs))
