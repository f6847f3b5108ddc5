"""Random-effects meta-analysis of c-statistics over clusters (internal-external
cross-validation's summary)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from phm_eval.errors import EstimationError

__all__ = [
    "random_effects_c_statistic",
]


def random_effects_c_statistic(
    c: Sequence[float], se: Sequence[float], *, alpha: float = 0.05
) -> dict[str, Any]:
    """DerSimonian-Laird random-effects summary of c-statistics on the logit scale.

    Follows Debray et al. (BMJ 2017;356:i6460): ``logit(c)`` with standard error
    ``se / (c (1 - c))``; the 95% prediction interval uses a t distribution with ``k - 2``
    degrees of freedom (Riley et al., BMJ 2011;342:d549).

    Returns
    -------
    dict
        ``c_statistic``, ``lower``, ``upper``, ``prediction_lower``, ``prediction_upper``,
        ``tau2`` (logit scale), ``i2``, ``q``, ``k``; with fewer than three clusters the
        prediction limits are NaN and ``prediction_note`` says why.
    """
    c_arr = np.asarray(c, dtype=float)
    se_arr = np.asarray(se, dtype=float)
    ok = np.isfinite(c_arr) & np.isfinite(se_arr) & (se_arr > 0) & (c_arr > 0) & (c_arr < 1)
    c_arr, se_arr = c_arr[ok], se_arr[ok]
    k = c_arr.size
    if k == 0:
        raise EstimationError("no cluster has a usable c-statistic for the meta-analysis")
    yi = logit(c_arr)
    vi = (se_arr / (c_arr * (1 - c_arr))) ** 2
    w = 1.0 / vi
    fixed = np.sum(w * yi) / np.sum(w)
    q = float(np.sum(w * (yi - fixed) ** 2))
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (q - (k - 1)) / denom) if k > 1 else 0.0
    ws = 1.0 / (vi + tau2)
    mu = np.sum(ws * yi) / np.sum(ws)
    se_mu = np.sqrt(1.0 / np.sum(ws))
    z = stats.norm.ppf(1 - alpha / 2)
    if k > 2:
        half = stats.t.ppf(1 - alpha / 2, k - 2) * np.sqrt(tau2 + se_mu**2)
        pred = (float(expit(mu - half)), float(expit(mu + half)))
    else:
        pred = (float("nan"), float("nan"))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    out: dict[str, Any] = {
        "c_statistic": float(expit(mu)),
        "lower": float(expit(mu - z * se_mu)),
        "upper": float(expit(mu + z * se_mu)),
        "prediction_lower": pred[0],
        "prediction_upper": pred[1],
        "tau2": float(tau2),
        "i2": float(i2),
        "q": q,
        "k": int(k),
    }
    if k <= 2:
        out["prediction_note"] = (f"not estimable: a prediction interval needs at least 3 "
                                  f"clusters with a usable c-statistic (t on k - 2 degrees of "
                                  f"freedom); {k} available")
    return out
