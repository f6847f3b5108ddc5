"""Competing-risks data with a known subdistribution hazard ratio.

Used to check the Fine-Gray estimator's bias and interval coverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phm_eval import DEFAULT_SEED


def simulate_fine_gray(
    n: int,
    *,
    beta: tuple[float, float] = (float(np.log(0.8)), 0.5),
    beta_competing: tuple[float, float] = (0.3, 0.2),
    p: float = 0.4,
    censor_max: float = 4.0,
    seed: int | np.random.Generator = DEFAULT_SEED,
) -> pd.DataFrame:
    """Simulate from a Fine-Gray model (design of Fine & Gray 1999, section 5).

    The event of interest (code 1) has cumulative incidence
    ``F1(t | x) = 1 - (1 - p (1 - exp(-t)))^exp(x beta)``, so its subdistribution
    hazard ratios are exactly ``exp(beta)``. Otherwise a competing event (code 2)
    occurs at an exponential time with rate ``exp(x beta_competing)``. Censoring
    (code 0) is uniform on ``(0, censor_max)``.

    Parameters
    ----------
    n : int
        Number of people.
    beta : (float, float)
        Log SHRs of ``treated`` (binary, probability 0.5) and ``x`` (standard normal).
    beta_competing : (float, float)
        Log hazard ratios of the competing event's time, given that it occurs.
    p : float
        Cumulative incidence of the event of interest as t -> infinity at x = 0.
    censor_max : float
        Upper limit of the uniform censoring time.
    seed : int or Generator, default ``phm_eval.DEFAULT_SEED`` (1)

    Returns
    -------
    DataFrame
        Columns ``time``, ``event`` (0, 1, 2), ``treated``, ``x``.
    """
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, n).astype(float)
    x = rng.standard_normal(n)
    eta1 = beta[0] * treated + beta[1] * x
    eta2 = beta_competing[0] * treated + beta_competing[1] * x
    p1 = 1 - (1 - p) ** np.exp(eta1)
    u = rng.uniform(size=n)
    cause1 = u < p1
    t = np.empty(n)
    # invert F1(t | x) = u for those whose event of interest occurs
    t[cause1] = -np.log(1 - (1 - (1 - u[cause1]) ** np.exp(-eta1[cause1])) / p)
    t[~cause1] = rng.exponential(1.0 / np.exp(eta2[~cause1]))
    c = rng.uniform(0, censor_max, n)
    event = np.where(t <= c, np.where(cause1, 1, 2), 0)
    return pd.DataFrame({"time": np.minimum(t, c), "event": event, "treated": treated, "x": x})
