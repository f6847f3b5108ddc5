"""Shared pieces of Honest DiD: machine epsilon, input checks and the usual interval."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from phm_eval.errors import ConfigError

_EPS = np.finfo(float).eps


def _check_inputs(betahat, sigma, num_pre, num_post, l_vec):
    b = np.asarray(betahat, dtype=float)
    if b.ndim == 2 and 1 in b.shape:
        b = b.ravel()
    if b.ndim != 1:
        raise ConfigError(f"betahat must be a vector, got shape {np.shape(betahat)}")
    for name, v in (("num_pre", num_pre), ("num_post", num_post)):
        if int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {v}")
    n = len(b)
    if num_pre + num_post != n:
        raise ConfigError(f"betahat has {n} coefficients but num_pre + num_post = "
                          f"{num_pre} + {num_post} = {num_pre + num_post}")
    S = np.asarray(sigma, dtype=float)
    if S.shape != (n, n):
        raise ConfigError(f"sigma must be a {n} x {n} matrix to match betahat, got shape "
                          f"{S.shape}")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(S))):
        raise ConfigError("betahat and sigma must be finite")
    scale = max(float(np.max(np.abs(S))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(S - S.T)))
    if asym > 1e-8 * scale:
        raise ConfigError(f"sigma is not symmetric (largest asymmetry {asym:.3g})")
    S = (S + S.T) / 2
    ev = np.linalg.eigvalsh(S)
    if ev[0] < -1e-10 * max(ev[-1], 0.0) or ev[-1] <= 0:
        raise ConfigError("sigma is not positive semi-definite (smallest eigenvalue "
                          f"{ev[0]:.3g}); it must be the covariance matrix of betahat")
    if np.any(np.diag(S) <= 0):
        raise ConfigError("sigma has a zero variance on its diagonal")
    return b, S, _l_vec(l_vec, num_post)


def _l_vec(l_vec, num_post):
    if l_vec is None:
        lv = np.zeros(num_post)
        lv[0] = 1.0
        return lv
    lv = np.asarray(l_vec, dtype=float).ravel()
    if len(lv) != num_post:
        raise ConfigError(f"l_vec has length {len(lv)} but there are {num_post} post-periods")
    if not np.all(np.isfinite(lv)) or not np.any(lv != 0):
        raise ConfigError("l_vec must be finite and not all zero")
    return lv


def _m_grid(m, default):
    ms = np.atleast_1d(np.asarray(default() if m is None else m, dtype=float))
    if ms.ndim != 1 or len(ms) == 0 or not np.all(np.isfinite(ms)) or np.any(ms < 0):
        raise ConfigError(f"M/Mbar values must be finite numbers >= 0, got {m}")
    return ms


def _original(b, S, num_pre, lv, alpha):
    est = float(lv @ b[num_pre:])
    se = math.sqrt(float(lv @ S[num_pre:, num_pre:] @ lv))
    z = norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se, est, se
