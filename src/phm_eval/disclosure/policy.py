"""The disclosure policy: one configuration object shared by every human-facing table.

Defaults follow NHS Digital's sub-national rules for Hospital Episode Statistics
(HES) and the Emergency Care Data Set, in force since September 2018: 0 stays 0,
counts 1-7 are shown as ``*``, other counts are rounded to the nearest 5,
percentages are computed from the rounded numbers, and means or medians
calculated from 1-7 people are suppressed.  Source: NHS Digital, "Disclosure
control methodology for Hospital Episode Statistics (HES) and Emergency Care Data
Set (ECDS)".

The OpenSAFELY presets follow OpenSAFELY's output-checking guidance
(docs.opensafely.org, "Applying statistical disclosure control"): no statistic
may describe 5 or fewer patients, counts are redacted at 7 or fewer and then
rounded to the nearest 5, and "midpoint 6" rounding (0 -> 0, 1-6 -> 3, 7-12 -> 9,
...) is offered for rates and Kaplan-Meier tables.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from phm_eval.errors import ConfigError

logger = logging.getLogger(__name__)

Rounding = Literal["nearest", "midpoint", "none"]

_PRESETS: dict[str, dict[str, Any]] = {
    "nhs_digital": {},
    "opensafely": {"statistic_threshold": 5, "flag_extreme_percentages": True},
    "opensafely_midpoint6": {
        "threshold": 0,
        "rounding": "midpoint",
        "base": 6,
        "statistic_threshold": 5,
        "flag_extreme_percentages": True,
    },
}


@dataclass(frozen=True, kw_only=True)
class DisclosurePolicy:
    """How counts, rates and statistics are made safe before they leave the analysis.

    Parameters
    ----------
    threshold : int, default 7
        Counts from 1 to ``threshold`` inclusive are suppressed (shown as
        ``marker``); 0 is always shown.  Set 0 to suppress nothing (as with
        midpoint rounding, whose lowest non-zero value already stands for 1-6).
    rounding : {"nearest", "midpoint", "none"}, default "nearest"
        ``"nearest"`` rounds unsuppressed counts to the nearest multiple of
        ``base`` (halves up); ``"midpoint"`` applies OpenSAFELY's midpoint
        rounding with width ``base``; ``"none"`` leaves them unrounded.
    base : int, default 5
        Rounding base (5 for nearest-5, 6 for midpoint 6).
    statistic_threshold : int, default 7
        Means, medians and other statistics describing ``statistic_threshold``
        people or fewer are suppressed (NHS Digital: 1-7; OpenSAFELY: 5 or fewer).
    secondary_suppression : bool, default True
        Suppress further cells where a visible total would let a reader back out a
        suppressed cell (see :func:`~phm_eval.disclosure.apply_disclosure`).
        NHS Digital's 2018 method relies on rounding instead; this stays on
        by default as a second line of defence and because it is required
        when ``rounding="none"``.
    survival_base : int, default 6
        Width of the midpoint rounding applied to cumulative events and
        censorings in Kaplan-Meier and cumulative-incidence step tables (the
        ``min_count`` of OpenSAFELY's ``kaplan-meier-function`` action).
    flag_extreme_percentages : bool, default False
        Suppress percentages of exactly 0 or 100 computed from non-zero
        denominators ("all patients in this group ..."), as OpenSAFELY advises.
    marker : str, default "*"
        The text shown in place of a suppressed value in formatted tables.
    suppressed_markers : tuple of str
        Texts a checker accepts as "suppressed" when reading tables back.
    identifier_columns : tuple of str
        Column names (compared without case, spaces, ``_`` or ``-``) that must
        never appear in an output.
    non_count_columns : tuple of str
        Extra column-name words that mark a column as *not* a count when a
        checker has to infer which columns are counts.
    """

    threshold: int = 7
    rounding: Rounding = "nearest"
    base: int = 5
    statistic_threshold: int = 7
    secondary_suppression: bool = True
    survival_base: int = 6
    flag_extreme_percentages: bool = False
    marker: str = "*"
    suppressed_markers: tuple[str, ...] = ("*", "[REDACTED]", "REDACTED", "c", "x", "..")
    identifier_columns: tuple[str, ...] = (
        "patient_id",
        "nhs_number",
        "nhs_no",
        "person_id",
        "pseudo_id",
    )
    non_count_columns: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.rounding not in ("nearest", "midpoint", "none"):
            raise ConfigError(
                f"disclosure.rounding must be 'nearest', 'midpoint' or 'none', got {self.rounding!r}"
            )
        for name in ("threshold", "statistic_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"disclosure.{name} must be a non-negative integer, got {value!r}")
        for name in ("base", "survival_base"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"disclosure.{name} must be a positive integer, got {value!r}")
        if self.rounding == "midpoint" and self.base < 2:
            raise ConfigError("disclosure.base must be at least 2 for midpoint rounding")

    # ------------------------------------------------------------------ builders
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DisclosurePolicy:
        """A named policy: ``"nhs_digital"`` (default), ``"opensafely"`` or
        ``"opensafely_midpoint6"``, with optional overrides."""
        if name not in _PRESETS:
            raise ConfigError(
                f"disclosure.preset must be one of {sorted(_PRESETS)}, got {name!r}"
            )
        return cls.from_config({**_PRESETS[name], **overrides})

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DisclosurePolicy:
        """Build a policy from the ``disclosure`` section of the configuration.

        Parameters
        ----------
        config : mapping or None
            Keys are the field names of this class, plus an optional ``preset``
            naming the starting point. Lists are accepted where tuples are
            expected. ``None`` or ``{}`` gives the NHS Digital defaults.

        Raises
        ------
        ConfigError
            On an unknown key or an invalid value.
        """
        config = dict(config or {})
        preset = config.pop("preset", None)
        if preset is not None and preset not in _PRESETS:
            raise ConfigError(f"disclosure.preset must be one of {sorted(_PRESETS)}, got {preset!r}")
        base: dict[str, Any] = dict(_PRESETS[preset]) if preset is not None else {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"unknown disclosure setting(s) {unknown}; expected some of {sorted(known)}"
            )
        if preset is not None:
            defaults = cls()
            changed = {
                k: v for k, v in config.items()
                if base.get(k, getattr(defaults, k)) != v
            }
            if changed:
                logger.warning(
                    "disclosure preset %r overridden by %s", preset, sorted(changed)
                )
        base.update(config)
        for key in ("suppressed_markers", "identifier_columns", "non_count_columns"):
            if key in base:
                base[key] = tuple(str(v) for v in base[key])
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain JSON-ready values."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    # ------------------------------------------------------------------ helpers
    @property
    def smallest_shown_count(self) -> int:
        """The smallest non-zero value a disclosed count column may hold."""
        if self.rounding == "midpoint":
            return self.base // 2
        if self.rounding == "nearest":
            # e.g. threshold 7, base 5: the smallest unsuppressed count, 8, rounds to 10.
            smallest = (self.threshold + 1) / self.base
            return max(self.base, int(np.floor(smallest + 0.5)) * self.base)
        return self.threshold + 1

    def describe(self) -> str:
        """One sentence for report footnotes."""
        parts = []
        if self.threshold > 0:
            parts.append(f"counts of 1-{self.threshold} are shown as '{self.marker}'")
        if self.rounding == "nearest":
            parts.append(f"other counts are rounded to the nearest {self.base}")
        elif self.rounding == "midpoint":
            half = self.base // 2
            parts.append(
                f"counts are rounded to 'midpoint {self.base}' (1-{self.base} shown as {half}, "
                f"{self.base + 1}-{2 * self.base} as {self.base + half}, ...)"
            )
        parts.append("percentages and rates are computed from the disclosed counts")
        parts.append(
            # Worded so that the number is not read as a count of people by the text checks.
            "means, medians and other statistics are suppressed when they describe a group of "
            f"{self.statistic_threshold} or fewer"
        )
        if self.secondary_suppression:
            parts.append("further cells are suppressed where totals would reveal a suppressed one")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."
