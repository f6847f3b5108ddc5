"""Rounding rules for counts, vectorised over numpy arrays.

Missing values (NaN) pass through unchanged in every function.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .policy import DisclosurePolicy


def round_nearest(x: ArrayLike, base: int = 5) -> np.ndarray:
    """Round to the nearest multiple of ``base``, halves away from zero.

    ``round_nearest([12, 13], 5)`` gives ``[10, 15]``.  Python's and numpy's
    ``round`` send halves to the even neighbour, which would make the result
    depend on the parity of ``x / base``; statistical producers round halves up.
    """
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.floor(np.abs(x) / base + 0.5) * base


def round_midpoint(x: ArrayLike, base: int = 6) -> np.ndarray:
    """OpenSAFELY's "midpoint" rounding: 0 stays 0, 1..base -> base//2, ...

    With ``base=6``: 0 -> 0, 1-6 -> 3, 7-12 -> 9, 13-18 -> 15.  Each non-zero
    bin of width ``base`` maps to its (integer) midpoint, which keeps the rounded
    counts unbiased and zeros distinguishable from small counts.  The formula is
    ``ceil(x / base) * base - floor(base / 2) * (x != 0)``, as given in
    OpenSAFELY's documentation ("Midpoint 6 rounding") and its
    ``kaplan-meier-function`` action (``roundmid_any``).
    """
    x = np.asarray(x, dtype=float)
    return np.ceil(x / base) * base - (base // 2) * (x != 0)


def primary_suppression_mask(x: ArrayLike, policy: DisclosurePolicy) -> np.ndarray:
    """True where a count is 1..``policy.threshold`` (or negative, which no count may be)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(x) & (x != 0) & (x <= policy.threshold)


def round_counts(x: ArrayLike, policy: DisclosurePolicy) -> np.ndarray:
    """Round counts by the policy's rule (no suppression applied here)."""
    if policy.rounding == "nearest":
        return round_nearest(x, policy.base)
    if policy.rounding == "midpoint":
        return round_midpoint(x, policy.base)
    return np.asarray(x, dtype=float).copy()


def disclose_counts(x: ArrayLike, policy: DisclosurePolicy) -> tuple[np.ndarray, np.ndarray]:
    """Suppress and round a vector of counts.

    Returns
    -------
    values : ndarray of float
        Disclosed counts, NaN where suppressed.
    suppressed : ndarray of bool
        Where primary suppression applied.
    """
    x = np.asarray(x, dtype=float)
    suppressed = primary_suppression_mask(x, policy)
    values = round_counts(x, policy)
    values[suppressed] = np.nan
    return values, suppressed


def is_disclosed_count(x: ArrayLike, policy: DisclosurePolicy) -> np.ndarray:
    """True where a value could be the output of :func:`disclose_counts` (NaN counts as safe).

    Under nearest-``base`` rounding a safe count is 0 or a multiple of ``base`` of
    at least :attr:`DisclosurePolicy.smallest_shown_count` (10 under NHS Digital
    rules, since 8 rounds to 10).  Under midpoint rounding, sums and differences
    of rounded counts (totals, numbers at risk) are multiples of ``base // 2``, so
    that is what is checked.
    """
    x = np.asarray(x, dtype=float)
    ok = np.isnan(x) | (x == 0)
    finite = ~np.isnan(x)
    if policy.rounding == "nearest":
        ok |= finite & (np.mod(x, policy.base) == 0) & (x >= policy.smallest_shown_count)
    elif policy.rounding == "midpoint":
        half = policy.base // 2
        ok |= finite & (np.mod(x, half) == 0) & (x >= half)
    else:
        ok |= finite & (x > policy.threshold) & (np.mod(x, 1) == 0)
    return ok
