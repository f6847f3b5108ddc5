"""Risk tiers: the population-health "pyramid" of the top 0.5%, 0.5-5%, 5-20% and the rest.

Patients are ranked from highest to lowest risk; with ``n`` patients and cut points
``c1 < c2 < ...`` the first ``ceil(c1 * n)`` ranks form the top tier, ranks up to
``ceil(c2 * n)`` the next, and so on, so each tier holds the number of people a practice would
actually list (the same rule as :func:`phm_eval.risk.decision_curve.risk_tier_metrics`).

Ranking is deterministic. Patients are ordered by each score column in turn, highest first
(missing values last), and finally by ``patient_id`` ascending. With a predicted risk the
further columns break its ties; without one, prior utilisation is the score: emergency
admissions in the 12 months before the index date, then emergency bed days in those months,
then age (older first). Patients still tied at a tier boundary are split by ``patient_id``
unless ``keep_ties=True``, which puts every patient tied with the last member of a tier into
that tier (tiers then hold slightly more than their share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from phm_eval.errors import InputError
from phm_eval.segment.config import check_cut_points

#: Columns used, in order, when no predicted risk is available.
UTILISATION_KEYS: tuple[str, ...] = (
    "prior_emergency_admissions",
    "prior_emergency_bed_days",
    "age",
)


def tier_labels(cut_points: Sequence[float]) -> list[str]:
    """Labels for the tiers cut at ``cut_points``: e.g. ``["top 0.5%", "0.5-5%", "5-20%", "rest"]``."""
    cuts = check_cut_points(cut_points)
    pct = [f"{c * 100:g}" for c in cuts]
    labels = [f"top {pct[0]}%"]
    labels += [f"{a}-{b}%" for a, b in zip(pct[:-1], pct[1:], strict=True)]
    return [*labels, "rest"]


def tier_sizes(n: int, cut_points: Sequence[float]) -> list[int]:
    """Cumulative number of patients in the tiers above each cut point: ``ceil(c * n)``."""
    # The small epsilon keeps e.g. 0.05 * 200 = 10.000000000000002 from rounding up to 11.
    return [min(n, math.ceil(c * n - 1e-9)) for c in check_cut_points(cut_points)]


def _as_frame(scores: pd.Series | pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if isinstance(scores, pd.Series):
        name = scores.name if scores.name is not None else "score"
        frame = scores.rename(name).rename_axis("patient_id").reset_index()
        keys = [str(name)]
        frame.columns = ["patient_id", *keys]
    elif isinstance(scores, pd.DataFrame):
        if "patient_id" not in scores.columns:
            raise InputError("scores", "a patient_id column is required", column="patient_id")
        frame = scores.reset_index(drop=True)
        keys = [c for c in scores.columns if c != "patient_id"]
    else:
        raise TypeError("scores must be a pandas Series or DataFrame")
    if not keys:
        raise InputError("scores", "at least one score column is required")
    if frame["patient_id"].duplicated().any():
        dup = frame.loc[frame["patient_id"].duplicated(), "patient_id"].head(5).tolist()
        raise InputError("scores", f"patient_id is not unique (e.g. {dup})", column="patient_id")
    for key in keys:
        if not pd.api.types.is_numeric_dtype(frame[key]) and not pd.api.types.is_bool_dtype(
            frame[key]
        ):
            raise InputError("scores", "score columns must be numeric", column=key)
    return frame, keys


def risk_tiers(
    scores: pd.Series | pd.DataFrame,
    *,
    cut_points: Sequence[float] = (0.005, 0.05, 0.20),
    keep_ties: bool = False,
) -> pd.DataFrame:
    """Assign each patient a risk tier by rank.

    Parameters
    ----------
    scores : Series or DataFrame
        A Series of scores indexed by patient_id, or a DataFrame with ``patient_id`` and one or
        more numeric score columns; columns after the first break ties of the ones before.
        Higher means higher risk; missing scores rank last.
    cut_points : sequence of float
        Increasing fractions in (0, 1): the cumulative share of patients in the tiers above
        each cut. The default gives "top 0.5%", "0.5-5%", "5-20%" and "rest".
    keep_ties : bool, default False
        ``False`` splits patients with identical scores at a boundary by ``patient_id``
        (ascending) so tiers have exactly their share; ``True`` keeps the whole tie group in
        the higher tier.

    Returns
    -------
    pandas.DataFrame
        In the input's patient order: ``patient_id``, ``risk_rank`` (1 = highest risk; unique,
        ties broken by ``patient_id``) and ``risk_tier`` (ordered categorical, highest tier
        first).

    Examples
    --------
    >>> s = pd.Series([0.9, 0.1, 0.5, 0.5], index=["a", "b", "c", "d"])
    >>> risk_tiers(s, cut_points=(0.25, 0.5))["risk_tier"].tolist()
    ['top 25%', 'rest', '25-50%', 'rest']
    """
    labels = tier_labels(cut_points)
    frame, keys = _as_frame(scores)
    n = len(frame)
    sort_cols: list[str] = []
    work = pd.DataFrame({"patient_id": frame["patient_id"].astype(str)})
    for i, key in enumerate(keys):
        values = pd.to_numeric(frame[key], errors="coerce").astype(float)
        # Negate so one ascending sort puts the highest first and missing values last.
        work[f"_k{i}"] = -values
        sort_cols.append(f"_k{i}")
    order = work.sort_values([*sort_cols, "patient_id"], kind="mergesort", na_position="last")
    position = np.empty(n, dtype=np.int64)
    position[order.index.to_numpy()] = np.arange(1, n + 1)
    work["risk_rank"] = position
    if keep_ties and n:
        # Rank of the first member of each group with identical scores.
        grouped = order[sort_cols].fillna(np.inf)
        new_group = grouped.ne(grouped.shift()).any(axis=1).to_numpy()
        first = np.maximum.accumulate(np.where(new_group, np.arange(1, n + 1), 0))
        tier_position = np.empty(n, dtype=np.int64)
        tier_position[order.index.to_numpy()] = first
    else:
        tier_position = position
    bounds = np.asarray(tier_sizes(n, cut_points), dtype=np.int64)
    codes = np.searchsorted(bounds, tier_position, side="left")
    tier = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    out = pd.DataFrame(
        {"patient_id": frame["patient_id"], "risk_rank": position, "risk_tier": tier}
    )
    out.attrs["cut_points"] = list(check_cut_points(cut_points))
    out.attrs["score_columns"] = keys
    return out
