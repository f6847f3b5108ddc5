"""The result of a matching: pairs, weights, flow counts and balance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from phm_eval.convention import SummaryFrame
from phm_eval.errors import ParameterError
from phm_eval.matching.balance import balance_table, balance_terms
from phm_eval.matching.nearest import (
    CONTROLS_EXHAUSTED,
    NO_CONTROL_IN_STRATUM,
    OUTSIDE_CALIPER,
)
from phm_eval.matching.plots import love_plot

_REASON_LABELS = {
    NO_CONTROL_IN_STRATUM: "no comparator in the same exact-matching stratum",
    OUTSIDE_CALIPER: "no unused comparator within the caliper",
    CONTROLS_EXHAUSTED: "comparators used up",
}


def _ess(w: np.ndarray) -> float:
    s2 = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


@dataclass(frozen=True, eq=False, repr=False)
class MatchResult:
    """Matched comparison groups from :class:`NearestNeighborMatcher` (read-only).

    The matcher keeps it as ``result_`` and answers for it, so
    ``NearestNeighborMatcher().fit(...).balance()`` is ``result_.balance()``. Its fields
    cannot be reassigned after construction.

    Attributes
    ----------
    data : pandas.DataFrame
        The data passed to ``fit`` (unchanged).
    treatment_col : str
    covariates : list of str
    distance : pandas.Series
        The score matched on, per unit.
    match_matrix : pandas.DataFrame
        One row per treated unit (index = its label), columns ``control_1`` ...
        ``control_<ratio>`` holding matched control labels, nearest first
        (MatchIt's ``match.matrix``); missing where no control was found.
    weights : pandas.Series
        MatchIt's matching weights for every unit (0 = unmatched): treated 1;
        a control gets 1/k from each treated unit it is matched to (k = that unit's
        number of controls), then control weights are scaled to average 1.
    subclass : pandas.Series or None
        Matched-set number per unit (nullable integer), numbered in data order of
        the treated units; ``None`` when matching with replacement (sets overlap).
    reason : pandas.Series
        Per treated unit: why it has fewer controls than asked for, or ``""``.
    match_rows : numpy.ndarray
        ``match_matrix`` as 0-based row positions in ``data`` (-1 = empty).
    treated_rows : numpy.ndarray
        Row positions of the treated units, in data order.
    settings : dict
        Matcher settings, the caliper in score units and the score model's
        coefficients.
    exact : list of str
        Exact-matching columns.
    summary : pandas.DataFrame
        Property: the balance table (:meth:`balance` with default covariates).
    """

    data: pd.DataFrame
    treatment_col: str
    covariates: list[str]
    distance: pd.Series
    match_matrix: pd.DataFrame
    weights: pd.Series
    subclass: pd.Series | None
    reason: pd.Series
    match_rows: np.ndarray
    treated_rows: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    exact: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        s = self.settings
        shown = ", ".join(f"{k}={s[k]!r}" for k in ("distance", "ratio", "caliper", "replace")
                          if k in s)
        n_treated = int(self.treated_rows.size)
        matched = int((self.match_rows[:, 0] >= 0).sum()) if self.match_rows.size else 0
        comparators = int(((~self.treat) & (self.weights.to_numpy() > 0)).sum())
        return (f"<MatchResult({shown}): {matched} of {n_treated} treated matched, "
                f"{comparators} comparators, n={len(self.data)}>")

    @property
    def treat(self) -> np.ndarray:
        """Boolean treatment indicator in data order."""
        return self.data[self.treatment_col].to_numpy() == 1

    @property
    def pairs(self) -> pd.DataFrame:
        """One row per matched (treated, control) pair, treated units in data order.

        Columns: ``treated`` and ``control`` (index labels), ``subclass``
        (matched set; missing with replacement), ``slot`` (1 = nearest control),
        ``weight`` (1/k for a treated unit with k controls: the pair's share of
        that unit's comparator mean), ``score_difference`` (|treated - control|
        on the matching score).
        """
        mm = self.match_rows
        n1, ratio = mm.shape
        t_rows = np.repeat(self.treated_rows, ratio)
        c_rows = mm.reshape(-1)
        slot = np.tile(np.arange(1, ratio + 1), n1)
        k_i = np.repeat((mm >= 0).sum(axis=1), ratio)
        keep = c_rows >= 0
        t_rows, c_rows, slot, k_i = t_rows[keep], c_rows[keep], slot[keep], k_i[keep]
        labels = self.data.index
        dist = self.distance.to_numpy()
        subclass = (
            self.subclass.to_numpy()[t_rows]
            if self.subclass is not None
            else np.full(len(t_rows), pd.NA)
        )
        return pd.DataFrame(
            {
                "treated": labels[t_rows],
                "control": labels[c_rows],
                "subclass": pd.array(subclass, dtype="Int64"),
                "slot": slot,
                "weight": 1.0 / k_i,
                "score_difference": np.abs(dist[t_rows] - dist[c_rows]),
            }
        )

    def _pair_rows(self) -> tuple[np.ndarray, np.ndarray]:
        mm = self.match_rows
        t_rows = np.repeat(self.treated_rows, mm.shape[1])
        c_rows = mm.reshape(-1)
        keep = c_rows >= 0
        return t_rows[keep], c_rows[keep]

    def matched_data(
        self,
        *,
        drop_unmatched: bool = True,
        distance: str = "distance",
        weights: str = "weights",
        subclass: str = "subclass",
    ) -> pd.DataFrame:
        """The data with score, weight and matched-set columns (``MatchIt::match.data``).

        Parameters
        ----------
        drop_unmatched : bool, default True
            Keep only units with a positive weight.
        distance, weights, subclass : str
            Names for the added columns; they must not already be in the data.

        Returns
        -------
        pandas.DataFrame
            Rows in data order. Analyse with the weights column (and cluster
            standard errors on the matched set, or on pair membership when
            matching with replacement, which has no subclass column).
        """
        added = [distance, weights] + ([subclass] if self.subclass is not None else [])
        clash = [c for c in added if c in self.data.columns]
        if clash:
            raise ParameterError(
                "distance, weights, subclass",
                f"column(s) {', '.join(clash)} already exist in the data; choose other names "
                "for the distance, weights or subclass columns",
            )
        out = self.data.copy()
        out[distance] = self.distance
        out[weights] = self.weights
        if self.subclass is not None:
            out[subclass] = self.subclass
        if drop_unmatched:
            out = out.loc[self.weights.to_numpy() > 0]
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """Counts by group, as MatchIt's ``summary()$nn``.

        Returns
        -------
        pandas.DataFrame
            Rows ``All (ESS)``, ``All``, ``Matched (ESS)``, ``Matched``,
            ``Unmatched``, ``Discarded``; columns ``Control``, ``Treated``.
        """
        treat = self.treat
        w = self.weights.to_numpy()
        rows = {}
        rows["All (ESS)"] = [float((~treat).sum()), float(treat.sum())]
        rows["All"] = [float((~treat).sum()), float(treat.sum())]
        rows["Matched (ESS)"] = [_ess(w[~treat]), _ess(w[treat])]
        rows["Matched"] = [float(((~treat) & (w > 0)).sum()), float((treat & (w > 0)).sum())]
        rows["Unmatched"] = [float(((~treat) & (w == 0)).sum()), float((treat & (w == 0)).sum())]
        rows["Discarded"] = [0.0, 0.0]
        return pd.DataFrame.from_dict(rows, orient="index", columns=["Control", "Treated"])

    def flow(self) -> pd.DataFrame:
        """Counts for a flow (CONSORT-style) diagram: who was matched, who was not and why.

        Returns
        -------
        pandas.DataFrame
            Columns ``group``, ``step``, ``n``.
        """
        ratio = self.match_matrix.shape[1]
        k_i = self.match_matrix.notna().sum(axis=1)
        treat = self.treat
        w = self.weights.to_numpy()
        rows = [
            ("treated", "eligible", int(treat.sum())),
            ("treated", f"matched to {ratio} comparator{'s' if ratio > 1 else ''}",
             int((k_i == ratio).sum())),
        ]
        if ratio > 1:
            rows.append(("treated", "matched to fewer comparators", int(((k_i > 0) & (k_i < ratio)).sum())))
        unmatched = self.reason[k_i == 0]
        rows.append(("treated", "unmatched", int(len(unmatched))))
        for code, label in _REASON_LABELS.items():
            rows.append(("treated", f"unmatched: {label}", int((unmatched == code).sum())))
        if ratio > 1:
            short = self.reason[(k_i > 0) & (k_i < ratio)]
            for code, label in _REASON_LABELS.items():
                rows.append(("treated", f"fewer comparators: {label}", int((short == code).sum())))
        rows += [
            ("comparator", "eligible", int((~treat).sum())),
            ("comparator", "matched (distinct)", int(((~treat) & (w > 0)).sum())),
            ("comparator", "not matched", int(((~treat) & (w == 0)).sum())),
        ]
        return pd.DataFrame(rows, columns=["group", "step", "n"])

    def balance(self, covariates: Sequence[str] | None = None) -> pd.DataFrame:
        """Standardised mean differences and other balance statistics, before and after.

        Parameters
        ----------
        covariates : sequence of str, optional
            Columns to assess; defaults to the matching covariates plus any
            exact-matching columns not among them (as MatchIt's ``summary()``).
            Add other baseline variables (e.g. the outcome in a pre-period) here.

        Returns
        -------
        pandas.DataFrame
            See :func:`~phm_eval.matching.balance.balance_table`; the first row,
            ``distance``, is the matching score.
        """
        if covariates is None:
            covariates = list(self.covariates) + [c for c in self.exact if c not in self.covariates]
        terms = balance_terms(self.data, covariates)
        return balance_table(
            terms, self.treat, self.weights.to_numpy(), self._pair_rows(), self.distance.to_numpy()
        )

    @property
    def summary(self) -> pd.DataFrame:
        """Balance table (:meth:`balance` with default covariates).

        A property; ``summary()``, its former spelling, returns the same table.
        """
        return SummaryFrame(self.balance())

    def print_summary(self, *, decimals: int = 3) -> None:
        """Print the settings, the sample sizes and the balance table."""
        with pd.option_context("display.max_columns", None, "display.width", 200):
            fmt = {"float_format": lambda v: f"{v:.{decimals}f}"}
            print("\n".join([
                repr(self), "", "sample sizes:", self.sample_sizes().to_string(**fmt), "",
                "balance:", self.balance().to_string(**fmt),
            ]))

    def plot(self, *, ax: Axes | None = None, threshold: float = 0.1) -> Axes:
        """Love plot of absolute standardised mean differences before and after matching.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        threshold : float, default 0.1

        Returns
        -------
        matplotlib.axes.Axes
        """
        return love_plot(self.balance(), threshold=threshold, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """Settings, sample sizes, flow and balance as plain JSON-ready objects.

        The pair list is left out (it can be large and is person-level);
        take it from :attr:`pairs`.
        """
        bal = self.balance()
        balance_records = [
            {"term": str(term), **{k: (None if pd.isna(v) else float(v)) for k, v in row.items()}}
            for term, row in bal.iterrows()
        ]
        nn = self.sample_sizes()
        return {
            "settings": self.settings,
            "sample_sizes": {
                str(r): {c: float(nn.loc[r, c]) for c in nn.columns} for r in nn.index
            },
            "flow": self.flow().to_dict(orient="records"),
            "balance": balance_records,
        }
