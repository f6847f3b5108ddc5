"""Effect estimates in plain words: per 1,000 patients a year, and in pounds.

Conventions
-----------
* Ratio scales (``HR``, ``SHR``, ``RR``): below 1 means fewer events with the
  programme.  A ratio is turned into a change per 1,000 patients a year with the
  comparison group's rate, ``baseline_rate_per_1000 x (ratio - 1)``, applied to
  the estimate and to both ends of its interval (the baseline rate is treated as
  known).  For hazard ratios this treats the hazard ratio as a ratio of rates,
  which is close when events are spread evenly over the year.
* Difference scales (``ATT``, ``difference``): the estimate is a difference in
  events per ``per`` person-years (default 1,000), negative meaning fewer.
* An interval that includes no change (1 for ratios, 0 for differences) is
  reported as "no evidence" of an effect, whatever the point estimate.
* An estimate that could not be made is ``null`` in ``effects.json`` with its reason in
  ``note``; it is shown as "not estimable: <reason>", never as NaN or an empty cell. The method
  actually used is shown beside every estimate, with ``fallback`` (why the planned method was
  replaced) when there is one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .. import outputs
from ..disclosure import DisclosurePolicy, disclose_counts
from ..errors import InputError
from ..labels import fallback_label, label, method_label

RATIO_SCALES = ("HR", "SHR", "RR")
DIFFERENCE_SCALES = ("ATT", "difference")
SCALE_NAMES = {
    "HR": "hazard ratio",
    "SHR": "subdistribution hazard ratio",
    "RR": "rate ratio",
    "ATT": "average effect on the enrolled (difference per 1,000 person-years)",
    "difference": "difference per 1,000 person-years",
}

Verdict = Literal["reduction", "increase", "no_evidence", "not_estimable"]


MINUS = "\u2212"
#: First words of method names that keep their capital inside a sentence.
PROPER_NAMES = ("Poisson", "Cox", "Fine", "Callaway", "Aalen", "Kaplan", "Gray", "PCN")


def fmt_number(value: float, decimals: int | None = None) -> str:
    """A number for prose: thousands separators, a true minus sign; whole numbers from 1 up.

    Effects per 1,000 patients a year are shown to the nearest whole admission:
    more digits would claim a precision the intervals do not have.
    """
    if decimals is None:
        decimals = 0 if abs(value) >= 1 else 1
    text = f"{abs(value):,.{decimals}f}"
    return text if value >= 0 or float(text.replace(",", "")) == 0 else MINUS + text


NO_REASON = "no reason was recorded"


def outcome_without_unit(outcome: str) -> str:
    """``"emergency admissions per 1,000 person-months"`` -> ``"emergency admissions"``: the
    unit is the scale's (differences are shown per 1,000 person-years whatever the record's)."""
    return re.sub(r"\s+per 1,000 person-(?:years|months)$", "", str(outcome).strip())


def not_estimable_text(reason: str | None) -> str:
    """``"not estimable: <reason>"`` (the reason's own "not estimable:" prefix not repeated)."""
    reason = (reason or "").strip()
    if reason.lower().startswith("not estimable"):
        reason = reason[len("not estimable"):].lstrip(" :")
    return f"not estimable: {reason or NO_REASON}"


def fmt_ratio(value: float) -> str:
    """Ratios to two decimals (three below 0.1, where two would hide the estimate)."""
    return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"


def fmt_signed(value: float, decimals: int = 0) -> str:
    """A signed number with a true minus sign, e.g. for differences in tables."""
    return fmt_number(value, decimals)


def fmt_gbp(value: float) -> str:
    """Pounds, rounded to the nearest 1,000 from 10,000 up (100 from 1,000, else 10)."""
    size = abs(value)
    step = 1000 if size >= 10_000 else 100 if size >= 1000 else 10
    # round() first so that 97,499.99999 from floating-point arithmetic counts as 97,500.
    rounded = step * math.floor(round(size / step, 9) + 0.5)
    return f"£{rounded:,.0f}"


def change_words(value: float, unit: str = "") -> str:
    """``-67`` -> ``"67 fewer"``; ``30`` -> ``"30 more"``; rounding to zero -> ``"no change"``."""
    shown = fmt_number(abs(value))
    if float(shown.replace(",", "")) == 0:
        return "no change"
    suffix = f" {unit}" if unit else ""
    return f"{shown}{suffix} {'fewer' if value < 0 else 'more'}"


def interval_words(low: float, high: float) -> str:
    """An interval of changes in words: ``"24 to 106 fewer"``, ``"40 fewer to 20 more"``."""
    if high <= 0 and low <= 0 and change_words(high) != "no change":
        return f"{fmt_number(abs(high))} to {fmt_number(abs(low))} fewer"
    if low >= 0 and high >= 0 and change_words(low) != "no change":
        return f"{fmt_number(low)} to {fmt_number(high)} more"
    return f"{change_words(low)} to {change_words(high)}"


def _number(record: Mapping[str, Any], key: str, where: str, required: bool = True) -> float | None:
    value = record.get(key)
    if value is None:
        if required:
            raise InputError(where, f"'{key}' is missing")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(where, f"'{key}' must be a number, got {value!r}") from None
    if math.isnan(number):
        if required:
            raise InputError(where, f"'{key}' is not a number (NaN)")
        return None
    return number


def _optional(record: Mapping[str, Any], key: str, where: str) -> float | None:
    """A number that may be null (or NaN, from files written before outputs were strict):
    None when not estimable; the key itself must be present."""
    if key not in record:
        raise InputError(where, f"'{key}' is missing")
    return _number(record, key, where, required=False)


@dataclass(frozen=True)
class Effect:
    """One effect estimate from ``evaluate/effects.json``.

    Attributes
    ----------
    outcome, method : str
        What was measured and how (the method actually used), in words.
    estimate, ci_low, ci_high : float or None
        The estimate and its 95% confidence interval on ``scale``; None when not estimable
        (``note`` says why).
    scale : {"HR", "SHR", "RR", "ATT", "difference"}
    n_treated, n_control : float, optional
        Patients in each group (disclosed before they are shown).
    label, subgroup : str, optional
    headline : bool
        The record the report leads with.
    baseline_rate_per_1000 : float, optional
        The comparison group's event rate per 1,000 patients a year, for ratios.
    per : float
        Person-years the difference scales refer to (default 1,000).
    fallback : str, optional
        Why the planned method was replaced by ``method``.
    note : str, optional
        Why the estimate (or its interval) could not be made.
    estimand : str, optional
        ``"ATT enrolled"`` (the effect on the patients enrolled) or ``"ITT population"``
        (the effect of offering the programme on everyone eligible).
    primary : bool
        The one record the evaluation was designed around (``primary: true``).
    mde_rate_ratio : float, optional
        The minimum detectable rate ratio of the design (80% power), on rate-ratio records.
    mde_sentence : str, optional
        The same in words ("this evaluation could reliably detect a reduction of ...").
    """

    outcome: str
    method: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    scale: str
    n_treated: float | None = None
    n_control: float | None = None
    label: str | None = None
    subgroup: str | None = None
    headline: bool = False
    baseline_rate_per_1000: float | None = None
    per: float = 1000.0
    fallback: str | None = None
    note: str | None = None
    estimand: str | None = None
    primary: bool = False
    mde_rate_ratio: float | None = None
    mde_sentence: str | None = None
    unit: str | None = None
    se_method: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], where: str = "effects.json") -> Effect:
        """Build from one JSON record, naming the file and record in any error."""
        if not isinstance(record, Mapping):
            raise InputError(where, "each effect must be a JSON object")
        scale = str(record.get("scale", ""))
        if scale not in RATIO_SCALES + DIFFERENCE_SCALES:
            raise InputError(
                where, f"'scale' must be one of {list(RATIO_SCALES + DIFFERENCE_SCALES)}, "
                f"got {record.get('scale')!r}"
            )
        estimate = _optional(record, "estimate", where)
        low = _optional(record, "ci_low", where)
        high = _optional(record, "ci_high", where)
        if estimate is None or low is None or high is None:
            low = high = None  # half an interval is no interval
        if low is not None and not low <= estimate <= high:
            raise InputError(where, "the estimate must lie within [ci_low, ci_high]")
        if scale in RATIO_SCALES and min(v for v in (estimate, low, 1.0) if v is not None) <= 0:
            raise InputError(where, "ratios and their confidence limits must be positive")
        per = _number(record, "per", where, required=False)
        if per is None:
            # Differences per 1,000 person-months (the population design) are per 1,000/12
            # person-years; everything else is per 1,000 person-years.
            outcome_text = str(record.get("outcome") or "")
            per = 1000.0 / 12 if "person-month" in outcome_text else 1000.0
        baseline = _number(record, "baseline_rate_per_1000", where, required=False)
        if baseline is None:
            monthly = _number(record, "rate_counterfactual_per_1000_person_months", where,
                              required=False)
            baseline = None if monthly is None else 12.0 * monthly
        mde = _number(record, "mde_rate_ratio", where, required=False)
        return cls(
            outcome=str(record.get("outcome") or "emergency admissions"),
            method=str(record.get("method") or "not stated"),
            estimate=estimate,
            ci_low=low,
            ci_high=high,
            scale=scale,
            n_treated=_number(record, "n_treated", where, required=False),
            n_control=_number(record, "n_control", where, required=False),
            label=record.get("label"),
            subgroup=record.get("subgroup"),
            headline=bool(record.get("headline", False)),
            baseline_rate_per_1000=baseline,
            per=per,
            fallback=_text(record.get("fallback")),
            note=_text(record.get("note")),
            estimand=_text(record.get("estimand")),
            primary=bool(record.get("primary", False)),
            mde_rate_ratio=mde if mde is not None and 0 < mde < 1 else None,
            mde_sentence=_percent(_text(record.get("mde_sentence"))),
            unit=_text(record.get("unit")),
            se_method=_text(record.get("se_method")),
        )

    @property
    def estimable(self) -> bool:
        """True when the estimate and its interval were made."""
        return None not in (self.estimate, self.ci_low, self.ci_high)

    @property
    def reason(self) -> str:
        """Why the estimate (or its interval) is missing, as "not estimable: <reason>"."""
        return not_estimable_text(self.note)

    def method_text(self) -> str:
        """The method as the run recorded it, with the fallback's reason when there was one
        (technical: for the methods table reviewers read)."""
        return f"{self.method} (fallback: {self.fallback})" if self.fallback else self.method

    def method_words(self, outcome: bool = False) -> str:
        """The method in plain words for readers (:func:`phm_eval.labels.method_label`,
        derived from the record), with why the planned method was not used, when it was not
        (:func:`phm_eval.labels.fallback_label`).  ``outcome=True`` names the outcome ("rate
        of emergency admissions compared with ...") where the sentence does not."""
        what = outcome_without_unit(self.outcome) if outcome else None
        words = method_label(self.method, what, self.unit)
        why = fallback_label(self.fallback, self.unit)
        return f"{words} (not the planned method: {why})" if why else words

    @property
    def is_ratio(self) -> bool:
        return self.scale in RATIO_SCALES

    @property
    def null_value(self) -> float:
        """The value meaning "no change": 1 for ratios, 0 for differences."""
        return 1.0 if self.is_ratio else 0.0

    @property
    def verdict(self) -> Verdict:
        """``"reduction"`` or ``"increase"`` when the interval excludes no change;
        ``"not_estimable"`` without an estimate and interval."""
        if not self.estimable:
            return "not_estimable"
        if self.ci_high < self.null_value:
            return "reduction"
        if self.ci_low > self.null_value:
            return "increase"
        return "no_evidence"

    def change_per_1000(self) -> tuple[float, float, float] | None:
        """(estimate, low, high) change in events per 1,000 patients a year; None if unknown."""
        if not self.estimable:
            return None
        values = np.array([self.estimate, self.ci_low, self.ci_high])
        if self.is_ratio:
            if self.baseline_rate_per_1000 is None:
                return None
            values = self.baseline_rate_per_1000 * (values - 1.0)
        else:
            values = values * 1000.0 / self.per
        est, low, high = (float(v) for v in values)
        return est, low, high

    def estimate_text(self, with_reason: bool = True) -> str:
        """The estimate on its own scale: ``"0.86 (95% CI 0.78 to 0.95)"``; ``"not estimable:
        <reason>"`` without an estimate, ``"0.86 (95% CI not estimable: <reason>)"`` without
        an interval (``with_reason=False``: ``"0.86 (95% CI not estimable)"``, for a table whose
        next column gives the reason)."""
        if self.estimate is None:
            return self.reason if with_reason else "Not estimable"
        if not self.estimable:
            one = fmt_ratio(self.estimate) if self.is_ratio else fmt_number(
                self.estimate * 1000.0 / self.per)
            return f"{one} (95% CI {self.reason if with_reason else 'not estimable'})"
        if self.is_ratio:
            parts = [fmt_ratio(v) for v in (self.estimate, self.ci_low, self.ci_high)]
        else:
            factor = 1000.0 / self.per
            parts = [fmt_number(v * factor) for v in (self.estimate, self.ci_low, self.ci_high)]
        return f"{parts[0]} (95% CI {parts[1]} to {parts[2]})"

    def short_words(self, power: bool = True) -> str:
        """One phrase for tables: the verdict and, when known, the change per 1,000.

        ``power=False`` leaves out the power statement of a "no evidence" verdict: only for a
        table that says it once for its rows (in a note beside them)."""
        if not self.estimable:
            return _capital(self.reason)
        change = self.change_per_1000()
        verdict = {
            "reduction": "Reduction",
            "increase": "Increase",
            "no_evidence": "No clear evidence of a change",
        }[self.verdict]
        power = f"; {self.power_words()}" if power and self.verdict == "no_evidence" else ""
        if change is None:
            return verdict + power
        return (f"{verdict}: {change_words(change[0])} per 1,000 a year "
                f"(95% CI {interval_words(change[1], change[2])}){power}")

    def power_words(self) -> str:
        """What the design could detect: the MDE sentence, or that power was not assessed.

        "No evidence" is never printed without it: a design too small to see an effect
        and a design that would have seen one are different findings.
        """
        if self.mde_sentence:
            return self.mde_sentence.rstrip(".")
        if self.mde_rate_ratio is not None:
            reduction = math.ceil(round(100 * (1 - self.mde_rate_ratio), 9))
            return (f"this evaluation could reliably detect a reduction of {reduction}% or "
                    f"more (a rate ratio of {1 - reduction / 100:.2f} or lower)")
        return ("the design's power to detect an effect was not assessed, so a real effect "
                "may have been missed")

    @property
    def estimand_label(self) -> str:
        """The question this estimate answers, in words (enrolled patients by default)."""
        return label("estimand", self.estimand or "ATT enrolled")

    @property
    def is_population(self) -> bool:
        """True for the population (intention-to-treat) estimand."""
        return (self.estimand or "").upper().startswith("ITT")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        out["change_per_1000"] = self.change_per_1000()
        return out


def _percent(text: str | None) -> str | None:
    """``"30 %"`` as the rest of the report writes it, ``"30%"``."""
    return None if text is None else re.sub(r"(\d) %", r"\1%", text)


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def read_effects(records: Any, where: str = outputs.EFFECTS) -> list[Effect]:
    """Parse the list of effect records (see :class:`Effect`)."""
    if not isinstance(records, list):
        raise InputError(where, "must hold a JSON list of effect records")
    return [Effect.from_record(r, f"{where} record {i + 1}") for i, r in enumerate(records)]


def pick_headline(effects: Sequence[Effect]) -> Effect | None:
    """The record marked ``primary``; else ``headline``; else the first without a subgroup;
    else the first."""
    if not effects:
        return None
    for flag in ("primary", "headline"):
        for effect in effects:
            if getattr(effect, flag):
                return effect
    overall = [e for e in effects if not e.subgroup]
    return overall[0] if overall else effects[0]


def disclosed_count(value: float | None, policy: DisclosurePolicy) -> str | None:
    """A count for display under the policy (``None`` if missing or suppressed)."""
    if value is None:
        return None
    shown, suppressed = disclose_counts(np.array([value]), policy)
    if suppressed[0] or np.isnan(shown[0]):
        return None
    return f"{shown[0]:,.0f}"


def outcome_noun(outcome: str) -> str:
    """What is counted, as a plural noun for "fewer ..." sentences.

    Every admission outcome (``"time to first emergency admission"``,
    ``"emergency admissions per 1,000 person-years"``) is counted, and converted,
    as emergency admissions.
    """
    text = outcome.strip()
    if "emergency admission" in text.lower():
        return "emergency admissions"
    return text or "events"


@dataclass
class Headline:
    """The report's lead message, in words and numbers.

    Attributes
    ----------
    title : str
        A short answer: "Fewer emergency admissions", "No evidence of a reduction ...".
    verdict : {"reduction", "increase", "no_evidence", "not_estimable"}
    sentence : str
        The effect per 1,000 patients a year (or as a percentage) with its interval.
    estimate : str
        The estimate on its own scale, with the method and group sizes.
    conversion : str or None
        How a ratio was turned into admissions per 1,000 patients a year.
    money : str or None
        The effect in pounds, or why it cannot be given.
    reach : str or None
        What the effect means for the patients enrolled.
    change_per_1000 : tuple or None
        (estimate, low, high), negative = fewer.
    saving_per_1000_gbp : tuple or None
        (estimate, low, high) hospital costs avoided per 1,000 patients a year;
        positive = saving.
    power : str
        What the design could detect (the minimum detectable effect), or that its power was
        not assessed, as a sentence.
    """

    title: str
    verdict: Verdict
    sentence: str
    estimate: str
    conversion: str | None
    money: str | None
    reach: str | None
    change_per_1000: tuple[float, float, float] | None
    saving_per_1000_gbp: tuple[float, float, float] | None
    effect: Effect
    power: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["effect"] = self.effect.to_dict()
        return out


def describe_headline(
    effect: Effect,
    unit_cost: float | None = None,
    policy: DisclosurePolicy | None = None,
) -> Headline:
    """Turn the headline effect into plain words for commissioners.

    Parameters
    ----------
    effect : Effect
    unit_cost : float, optional
        Cost of one emergency admission in pounds (``report.unit_cost_emergency_admission``).
    policy : DisclosurePolicy, optional
        Rules for the group sizes quoted (NHS Digital by default).

    Returns
    -------
    Headline
    """
    policy = policy or DisclosurePolicy()
    outcome = outcome_noun(effect.outcome)
    verdict = effect.verdict
    change = effect.change_per_1000()
    title = {
        "reduction": f"Fewer {outcome}",
        "increase": f"More {outcome}",
        "no_evidence": f"No evidence of a reduction in {outcome}",
        "not_estimable": f"The effect on {outcome} could not be estimated",
    }[verdict]

    if verdict == "not_estimable":
        shown = effect.estimate_text()
        sentence = (f"The effect on {outcome} is {shown}"
                    if effect.estimate is None else
                    f"The {SCALE_NAMES[effect.scale]} was {shown}")
        sentence += (". No conclusion about the programme's effect can be drawn from it; see "
                     "the other methods below.")
    elif change is not None:
        est, low, high = change
        per = "per 1,000 patients a year"
        if verdict == "no_evidence":
            sentence = (
                f"The best estimate is {change_words(est)} {outcome} {per}, but the 95% "
                f"confidence interval runs from {interval_words(low, high)}, which includes no "
                f"change: there is no evidence that the programme reduced {outcome}."
            )
        elif effect.is_population:
            sentence = (
                f"Across everyone eligible in the practices that offered the programme, there "
                f"were about {change_words(est)} {outcome} {per} than expected without it (95% "
                f"confidence interval {interval_words(low, high)})."
            )
        else:
            sentence = (
                f"Patients in the programme had about {change_words(est)} {outcome} {per} than "
                f"comparable patients without it (95% confidence interval "
                f"{interval_words(low, high)})."
            )
    else:
        # Only ratios lack a conversion: differences are already per 1,000 person-years.
        lower = (1 - effect.estimate) * 100
        size = f"{fmt_number(abs(lower))}% {'lower' if lower > 0 else 'higher'}"
        native = f"{SCALE_NAMES[effect.scale]} {effect.estimate_text()}"
        who = ("across everyone eligible in the practices that offered the programme"
               if effect.is_population else "among patients in the programme")
        if verdict == "no_evidence":
            sentence = (
                f"The best estimate is that the rate of {outcome} was {size} {who} ({native}), "
                f"but the interval includes no change: there is no evidence that the programme "
                f"reduced {outcome}."
            )
        else:
            sentence = f"The rate of {outcome} was {size} {who} ({native})."
    power = _capital(effect.power_words()) + "."
    if verdict == "no_evidence":
        sentence += " " + power

    groups = []
    names = (("eligible patients in practices offering the programme",
              "in comparison practices") if effect.is_population
             else ("enrolled patients", "comparators"))
    for n, who in zip((effect.n_treated, effect.n_control), names, strict=True):
        shown = disclosed_count(n, policy)
        if shown is not None:
            groups.append(f"{shown} {who}")
    method = effect.method_words(outcome=True)
    if effect.estimate is None:
        estimate = (f"{SCALE_NAMES[effect.scale].capitalize()} (the {method}): "
                    f"{effect.estimate_text()}")
    else:
        estimate = f"{SCALE_NAMES[effect.scale].capitalize()} {effect.estimate_text()}"
        estimate += f": the {method}"
    estimate += f" ({' and '.join(groups)})." if groups else "."

    conversion = None
    if effect.is_ratio and change is not None:
        base = effect.baseline_rate_per_1000
        ratio = fmt_ratio(effect.estimate)
        arithmetic = (f"{fmt_number(base)} × (1 − {ratio})" if effect.estimate < 1
                      else f"{fmt_number(base)} × ({ratio} − 1)")
        conversion = (
            f"The {SCALE_NAMES[effect.scale]} was turned into {outcome} per 1,000 patients a "
            f"year with the comparison group's rate of {fmt_number(base)} per 1,000 a year: "
            f"{arithmetic} ≈ {change_words(change[0])}. The interval was converted the same "
            "way, treating the comparison group's rate as known"
        )
        if effect.scale in ("HR", "SHR"):
            conversion += ", and the hazard ratio as a ratio of admission rates"
        conversion += "."
    elif effect.is_ratio and effect.estimable:
        conversion = (
            "The effect cannot be given per 1,000 patients a year because the comparison "
            "group's admission rate was not recorded with it."
        )

    money = None
    saving = None
    if change is not None and unit_cost and "admission" in outcome.lower():
        saving = tuple(-v * float(unit_cost) for v in change)
        s_est, s_low, s_high = saving
        cost = f"At {fmt_gbp(unit_cost)} per emergency admission"
        if verdict == "reduction":
            money = (f"{cost}, that is about {fmt_gbp(s_est)} a year of hospital costs avoided "
                     f"per 1,000 patients (95% CI {fmt_gbp(s_high)} to {fmt_gbp(s_low)}).")
        elif verdict == "increase":
            money = (f"{cost}, that is about {fmt_gbp(-s_est)} a year of extra hospital costs "
                     f"per 1,000 patients (95% CI {fmt_gbp(-s_low)} to {fmt_gbp(-s_high)}).")
        else:
            ends = [f"{fmt_gbp(v)} {'saved' if v >= 0 else 'extra cost'}" for v in (s_low, s_high)]
            money = (f"{cost}, the interval runs from {ends[0]} to {ends[1]} a year per 1,000 "
                     "patients, so no saving is shown.")
        money += " This counts hospital costs only, not the cost of running the programme."
        saving = (float(s_est), float(s_low), float(s_high))
    elif change is not None and "admission" in outcome.lower():
        money = ("No cost per emergency admission was set in the run's configuration, so the "
                 "effect is not given in pounds.")

    reach = None
    enrolled = disclosed_count(effect.n_treated, policy)
    if change is not None and enrolled is not None and verdict != "no_evidence":
        per_year = abs(change[0]) * float(enrolled.replace(",", "")) / 1000
        whom = (f"the {enrolled} eligible patients in practices offering the programme"
                if effect.is_population else f"the {enrolled} patients enrolled")
        reach = (f"For {whom}, that is about {fmt_number(per_year)} "
                 f"{'fewer' if change[0] < 0 else 'more'} {outcome} a year.")

    return Headline(
        title=title[0].upper() + title[1:],
        verdict=verdict,
        sentence=sentence,
        estimate=estimate,
        conversion=conversion,
        money=money,
        reach=reach,
        change_per_1000=change,
        saving_per_1000_gbp=saving,
        effect=effect,
        power=power,
    )
