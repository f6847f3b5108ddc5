"""The manuscript's words, built from what ran.

Every sentence of the Methods is built from the run's own record, so none describes an
analysis that did not run:

* ``manifest.json``: the configuration (study period, matching, follow-up, the risk model's
  type), the random seed and the package versions;
* ``evaluate/effects.json``: one record per estimate, each with the ``method`` actually used
  (including fallbacks such as a Poisson model refitted when a negative binomial's dispersion
  is not positive), ``fallback``, ``note`` (why an estimate could not be made), ``se_method``,
  and, where recorded, ``estimand`` (``"ATT enrolled"`` or ``"ITT population"``), ``primary``
  and ``mde_sentence``.  The staggered difference-in-differences design is described only when
  an intention-to-treat population record exists; the matched design only when an enrolled
  record does;
* ``risk/metrics.json``: the validation design, the metrics estimated, and
  ``internal_external`` (``cluster``, the unit actually left out, ``requested_cluster`` and
  ``note``), so the unit of internal-external validation is the one that was used, not the one
  configured.

The Results sentences are built from the numbers, and the Discussion is conditional on them:
the direction and precision of the primary estimate, whether its interval includes no change,
what its two ends mean, whether it is compatible with a reduction that matters
(``report.meaningful_reduction`` in the configuration, a fraction, 0.10 by default), the
minimum detectable effect when the record carries one, and, for synthetic data, how the
estimate compares with the simulation's known truth.  No sentence of the Discussion is printed
whatever the data say.

Citations are written ``{cite:key}`` while the text is built and numbered in order of first
use by :func:`number_citations`; only cited references are listed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import outputs
from ..disclosure import DisclosurePolicy, disclose_counts
from ..labels import fallback_label, humanise_text, label, method_label, model_name
from .effects import Effect, change_words, fmt_number, fmt_ratio, interval_words

#: The smallest relative reduction in emergency admissions taken to matter, unless the
#: configuration sets ``report.meaningful_reduction``.
DEFAULT_MEANINGFUL_REDUCTION = 0.10

ITT = "ITT population"
ATT = "ATT enrolled"

#: Published range of c-statistics of admission-risk models built from routine data.
PUBLISHED_C_RANGE = (0.70, 0.80)

#: References: key -> (authors and title, journal, volume and pages with DOI).
REFERENCES: dict[str, tuple[str, str, str]] = {
    "clegg2016": ("Clegg A, et al. Development and validation of an electronic frailty index "
                  "using routine primary care electronic health record data.", "Age and Ageing",
                  "2016;45(3):353-360. doi:10.1093/ageing/afw039"),
    "roland2012": ("Roland M, Abel G. Reducing emergency admissions: are we on the right track?",
                   "BMJ", "2012;345:e6017. doi:10.1136/bmj.e6017"),
    "stokes2015": ("Stokes J, et al. Effectiveness of case management for 'at risk' patients in "
                   "primary care: a systematic review and meta-analysis.", "PLoS One",
                   "2015;10(7):e0132340. doi:10.1371/journal.pone.0132340"),
    "strobe2007": ("von Elm E, et al. The Strengthening the Reporting of Observational Studies "
                   "in Epidemiology (STROBE) statement: guidelines for reporting observational "
                   "studies.", "Lancet", "2007;370:1453-1457. doi:10.1016/S0140-6736(07)61602-X"),
    "record2015": ("Benchimol EI, et al. The REporting of studies Conducted using Observational "
                   "Routinely-collected health Data (RECORD) statement.", "PLoS Medicine",
                   "2015;12(10):e1001885. doi:10.1371/journal.pmed.1001885"),
    "tripodai2024": ("Collins GS, et al. TRIPOD+AI statement: updated guidance for reporting "
                     "clinical prediction models that use regression or machine learning "
                     "methods.", "BMJ", "2024;385:e078378. doi:10.1136/bmj-2023-078378"),
    "vickers2006": ("Vickers AJ, Elkin EB. Decision curve analysis: a novel method for "
                    "evaluating prediction models.", "Medical Decision Making",
                    "2006;26(6):565-574. doi:10.1177/0272989X06295361"),
    "austin2011": ("Austin PC. Optimal caliper widths for propensity-score matching when "
                   "estimating differences in means and differences in proportions in "
                   "observational studies.", "Pharmaceutical Statistics",
                   "2011;10(2):150-161. doi:10.1002/pst.433"),
    "callaway2021": ("Callaway B, Sant'Anna PHC. Difference-in-differences with multiple time "
                     "periods.", "Journal of Econometrics",
                     "2021;225(2):200-230. doi:10.1016/j.jeconom.2020.12.001"),
    "finegray1999": ("Fine JP, Gray RJ. A proportional hazards model for the subdistribution of "
                     "a competing risk.", "Journal of the American Statistical Association",
                     "1999;94(446):496-509. doi:10.1080/01621459.1999.10474144"),
    "riley2016": ("Riley RD, et al. External validation of clinical prediction models using big "
                  "datasets from e-health records or IPD meta-analysis: opportunities and "
                  "challenges.", "BMJ", "2016;353:i3140. doi:10.1136/bmj.i3140"),
}

UNIT_WORDS = {"pcn_id": "PCN", "practice_id": "practice", "pcn": "PCN", "practice": "practice"}

MODEL_WORDS = {
    "penalised_logistic": "penalised (ridge) logistic regression",
    "logistic": "logistic regression",
    "gradient_boosting": "gradient-boosted trees",
    "lightgbm": "gradient-boosted trees (LightGBM)",
    "xgboost": "gradient-boosted trees (XGBoost)",
}

METRIC_NAMES = {
    "c_statistic": "discrimination (c-statistic)",
    "calibration_intercept": "calibration-in-the-large",
    "calibration_slope": "calibration slope",
    "oe_ratio": "observed/expected ratio",
    "brier": "overall accuracy (Brier score)",
}


# --------------------------------------------------------------------------- the run's record
@dataclass
class RunRecord:
    """What ran, read from one results folder.

    Attributes
    ----------
    config : mapping
        The run's configuration.
    manifest : mapping or None
        ``manifest.json``.
    records : list of dict
        The raw records of ``evaluate/effects.json`` (empty when it is missing).
    effects : list of Effect
        The same records parsed (numbers checked).
    metrics, pretrend, truth : mapping or None
        ``risk/metrics.json``, ``evaluate/pretrend.json`` and the synthetic truth.
    rtm, balance : pandas.DataFrame or None
        ``evaluate/rtm.csv`` and ``evaluate/balance.csv``.
    available : set of str
        Outputs the manuscript may show (present and passing the disclosure check).
    policy : DisclosurePolicy
    synthetic : bool
    headline : mapping or None
        The wording shared with the HTML report (``change_per_1000``, ``money``...).
    supplement : dict
        Labels of the supplement's items ("Table S2"), by path.
    subgroup_metrics : pandas.DataFrame or None
        ``risk/subgroup_metrics.csv`` (which groups the risk model was assessed in).
    """

    config: Mapping[str, Any]
    manifest: Mapping[str, Any] | None
    records: list[dict[str, Any]]
    effects: list[Effect]
    metrics: Mapping[str, Any] | None
    pretrend: Mapping[str, Any] | None
    truth: Mapping[str, Any] | None
    rtm: pd.DataFrame | None
    balance: pd.DataFrame | None
    available: set[str]
    policy: DisclosurePolicy
    synthetic: bool
    headline: Mapping[str, Any] | None = None
    supplement: dict[str, str] = field(default_factory=dict)
    subgroup_metrics: pd.DataFrame | None = None

    # ------------------------------------------------------------------ effect records
    def pairs(self) -> list[tuple[dict[str, Any], Effect]]:
        """(raw record, parsed effect) for every record."""
        return list(zip(self.records, self.effects, strict=True))

    def overall(self) -> list[tuple[dict[str, Any], Effect]]:
        """Records for the whole cohort or population (no subgroup)."""
        return [(r, e) for r, e in self.pairs() if not e.subgroup]

    def subgroups(self) -> list[tuple[dict[str, Any], Effect]]:
        """Records of subgroups."""
        return [(r, e) for r, e in self.pairs() if e.subgroup]

    def primary(self) -> tuple[dict[str, Any], Effect] | None:
        """The primary record: ``primary: true``, else ``headline: true``, else the first
        overall record."""
        pairs = self.pairs()
        for key in ("primary", "headline"):
            for record, effect in pairs:
                if record.get(key) is True:
                    return record, effect
        overall = self.overall()
        return overall[0] if overall else (pairs[0] if pairs else None)

    def by_estimand(self, estimand: str) -> list[tuple[dict[str, Any], Effect]]:
        """Overall records of one estimand, the uncontrolled before/after comparison excluded."""
        return [(r, e) for r, e in self.overall()
                if estimand_of(r) == estimand and not is_uncontrolled(r)]

    def uncontrolled(self) -> list[tuple[dict[str, Any], Effect]]:
        """The uncontrolled before-and-after records."""
        return [(r, e) for r, e in self.overall() if is_uncontrolled(r)]

    def has(self, relative: str) -> bool:
        """Whether an output is available to the manuscript."""
        return relative in self.available

    @property
    def meaningful(self) -> float:
        """The smallest relative reduction taken to matter (a fraction)."""
        value = (self.config.get("report") or {}).get("meaningful_reduction")
        try:
            value = float(value)
        except (TypeError, ValueError):
            return DEFAULT_MEANINGFUL_REDUCTION
        return value if 0 < value < 1 else DEFAULT_MEANINGFUL_REDUCTION

    def count(self, value: Any) -> str | None:
        """A count as it may be quoted: disclosed (rounded), None when missing or suppressed."""
        number = _num(value)
        if number is None:
            return None
        shown, suppressed = disclose_counts(np.array([number]), self.policy)
        if suppressed[0] or np.isnan(shown[0]):
            return None
        return f"{shown[0]:,.0f}"


def estimand_of(record: Mapping[str, Any]) -> str:
    """``"ITT population"`` or ``"ATT enrolled"``: the record's ``estimand``, else read from
    its method (a population or staggered-adoption difference in differences is ITT)."""
    stated = record.get("estimand")
    if isinstance(stated, str) and stated.strip():
        return ITT if "itt" in stated.lower() or "population" in stated.lower() else ATT
    method = str(record.get("method") or "").lower()
    if "population" in method or "staggered" in method:
        return ITT
    return ATT


def is_uncontrolled(record: Mapping[str, Any]) -> bool:
    """True for the uncontrolled (naive) before-and-after comparison."""
    method = str(record.get("method") or "").lower()
    return "naive" in method or "uncontrolled" in method


def _num(value: Any) -> float | None:
    try:
        number = None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence(text: str) -> str:
    text = text.strip()
    return _capital(text) if text.endswith((".", "?", "!")) else _capital(text) + "."


def _tidy(text: str) -> str:
    """An identifier-like word in prose: underscores to spaces."""
    return re.sub(r"(?<=[A-Za-z])_(?=[A-Za-z0-9])", " ", str(text))


def _join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _unit(value: Any) -> str:
    if value is None or str(value) in ("", "unit", "None"):
        return "area"
    return UNIT_WORDS.get(str(value), _tidy(str(value)))


def _plural(unit: str) -> str:
    return unit + ("es" if unit.endswith("s") else "s")


def _method_words(method: str) -> str:
    """A method name inside a sentence (lower-case first letter unless a proper name)."""
    first = method.split(" ")[0].split("-")[0]
    if first[:1].isupper() and first[1:2].islower() and first not in (
            "Poisson", "Cox", "Fine", "Callaway", "Aalen", "Kaplan", "Gray", "Wald"):
        return method[:1].lower() + method[1:]
    return method


def effect_name(record: Mapping[str, Any], effect: Effect) -> str:
    """What a record estimates, for prose (lower-case start): a subgroup's display label, else
    the record's label, else its outcome, with machine names put into words."""
    if effect.subgroup:
        return _method_words(label("subgroup", effect.subgroup))
    text = str(record.get("label") or "").strip()
    # "emergency admissions, rate ratio (intention to treat)": the scale and estimand are
    # named separately in every sentence that uses the name.
    text = re.sub(r",?\s*\b(subdistribution hazard|hazard|rate) ratio\b", "", text)
    text = re.sub(r"\s*\((intention to treat|ITT)\)", "", text).strip(" ,")
    if not text:
        return _method_words(label("outcome", effect.outcome))
    return _method_words(humanise_text(text, "outcome"))


#: Scales in words, for the manuscript (the ``ATT`` scale is a difference, whatever the
#: estimand; the estimand is named separately).
SCALE_WORDS = {"HR": "hazard ratio", "SHR": "subdistribution hazard ratio", "RR": "rate ratio",
               "ATT": "difference per 1,000 person-years",
               "difference": "difference per 1,000 person-years"}


def estimand_short(record: Mapping[str, Any]) -> str:
    """The estimand in a few words, for lists and tables."""
    if is_uncontrolled(record):
        return "enrolled patients only, uncontrolled"
    return ("eligible population, intention to treat" if estimand_of(record) == ITT
            else "enrolled patients against matched comparators")


def estimand_words(estimand: str) -> str:
    """The estimand in words."""
    if estimand == ITT:
        return "the effect on the whole eligible population (intention to treat)"
    return "the average effect on the enrolled patients (against matched comparators)"


# --------------------------------------------------------------------------- intervals
def _pct(ratio: float) -> str:
    return f"{fmt_number(abs(1 - ratio) * 100)}%"


def ratio_end(ratio: float) -> str:
    """``0.71`` -> ``"a 29% reduction"``; ``1.09`` -> ``"a 9% increase"``."""
    if fmt_number(abs(1 - ratio) * 100) in ("0", "0.0"):
        return "no change"
    return f"a {_pct(ratio)} {'reduction' if ratio < 1 else 'increase'}"


def _difference_end(value: float) -> str:
    return change_words(value)


@dataclass
class Reading:
    """What the primary estimate says, as sentences and a short verdict."""

    verdict: str
    sentences: list[str]
    conclusion: str


def read_primary(record: Mapping[str, Any], effect: Effect, meaningful: float) -> Reading:
    """Direction, precision, the interval's two ends, and whether a meaningful reduction is
    compatible with the data.

    Parameters
    ----------
    record : mapping
        The raw primary record (for ``mde_sentence`` and ``mde_rate_ratio``).
    effect : Effect
    meaningful : float
        The smallest relative reduction taken to matter (0.10 = 10%).

    Returns
    -------
    Reading
    """
    name = effect_name(record, effect)
    estimand = estimand_of(record)
    if not effect.estimable:
        reason = effect.reason
        return Reading(
            "not_estimable",
            [f"The primary analysis, {estimand_words(estimand)} on {name} ("
             f"{_plain_method(effect)}), could not be made ({reason}), so this "
             "evaluation draws no conclusion about the programme's effect from it."],
            f"The primary estimate could not be made ({reason}); no conclusion about the "
            "programme's effect can be drawn from it.")
    est, lo, hi = effect.estimate, effect.ci_low, effect.ci_high
    scale = SCALE_WORDS[effect.scale]
    who = ("among the eligible population" if estimand == ITT
           else "among enrolled patients compared with matched comparators")
    threshold = f"{fmt_number(meaningful * 100)}%"
    sentences: list[str] = []
    if effect.is_ratio:
        shown = effect.estimate_text()
        direction = ratio_end(est)
        sentences.append(
            f"The primary estimate, a {scale} of {shown}, points to {direction} in {name} "
            f"{who}.")
        spread = hi / lo
        precision = ("narrow" if spread <= 1.25 else "moderately wide" if spread <= 1.6
                     else "wide")
        includes = lo <= 1 <= hi
        sentences.append(
            f"The interval is {precision} (its upper limit is {spread:.2f} times its lower) "
            f"and {'includes' if includes else 'excludes'} no change (a ratio of 1).")
        if hi < 1:
            ends = (f"Its lower end, {ratio_end(lo)}, is the largest reduction compatible with "
                    f"the data; its upper end, {ratio_end(hi)}, the smallest.")
        elif lo > 1:
            ends = (f"Its lower end, {ratio_end(lo)}, is the smallest increase compatible with "
                    f"the data; its upper end, {ratio_end(hi)}, the largest.")
        else:
            ends = (f"Its lower end, {ratio_end(lo)}, is the largest reduction compatible with "
                    f"the data; its upper end, {ratio_end(hi)}, the largest increase.")
        sentences.append(ends)
        cut = 1 - meaningful
        if hi <= cut:
            verdict = "meaningful_reduction"
            sentences.append(
                f"Even the smallest reduction compatible with the data is at least {threshold}, "
                "the smallest reduction taken here to matter to commissioners: the data point "
                "to a meaningful benefit.")
            conclusion = (f"Emergency admissions fell {who} ({scale} {shown}), and even the "
                          f"smallest reduction compatible with the data ({ratio_end(hi)}) "
                          "would matter.")
        elif hi < 1 and lo <= cut:
            verdict = "reduction_size_uncertain"
            sentences.append(
                f"The data show a reduction, but are compatible both with one that matters "
                f"({threshold} or more, up to {ratio_end(lo)}) and with one too small to matter "
                f"({ratio_end(hi)}).")
            conclusion = (f"Emergency admissions fell {who} ({scale} {shown}); whether the fall "
                          f"is large enough to matter is uncertain, from {ratio_end(hi)} to "
                          f"{ratio_end(lo)}.")
        elif hi < 1:
            verdict = "small_reduction"
            sentences.append(
                f"Even the largest reduction compatible with the data ({ratio_end(lo)}) is "
                f"smaller than {threshold}: the benefit is probably too small to matter.")
            conclusion = (f"Emergency admissions fell slightly {who} ({scale} {shown}), by less "
                          f"than the {threshold} taken to matter.")
        elif includes and lo <= cut:
            verdict = "inconclusive"
            harm = "no change" if hi <= 1 else ratio_end(hi)
            sentences.append(
                f"A meaningful reduction cannot be ruled out (the data allow up to "
                f"{ratio_end(lo)}, beyond the {threshold} taken to matter), nor can "
                f"{'no effect' if harm == 'no change' else harm}: the evaluation is "
                "inconclusive, not negative.")
            conclusion = (f"There is no evidence that the programme reduced {name} ({scale} "
                          f"{shown}), but the interval reaches {ratio_end(lo)}: a meaningful "
                          "reduction is not ruled out, so the result is inconclusive rather "
                          "than negative.")
        elif includes:
            verdict = "no_meaningful_reduction"
            sentences.append(
                f"A reduction of {threshold} or more is not compatible with the data (the "
                f"largest compatible is {ratio_end(lo)}): the evaluation argues against a "
                "benefit of the size that would matter.")
            conclusion = (f"There is no evidence that the programme reduced {name} ({scale} "
                          f"{shown}), and a reduction of {threshold} or more is not compatible "
                          "with the data.")
        else:
            verdict = "increase"
            sentences.append(
                "No reduction is compatible with the data: the programme was followed by more "
                f"{name}, at least {ratio_end(lo)}.")
            conclusion = (f"The programme was followed by more {name} ({scale} {shown}); no "
                          "reduction is compatible with the data.")
    else:
        factor = 1000.0 / effect.per
        est, lo, hi = est * factor, lo * factor, hi * factor
        base = _num(record.get("baseline_rate_per_1000"))
        unit = "per 1,000 person-years"
        sentences.append(
            f"The primary estimate, a {scale} of {effect.estimate_text()}, is "
            f"{change_words(est)} {name} {unit} {who}.")
        includes = lo <= 0 <= hi
        sentences.append(
            f"Its interval ({interval_words(lo, hi)}) {'includes' if includes else 'excludes'} "
            f"no change; its lower end ({_difference_end(lo)}) is the "
            f"{'largest reduction' if lo < 0 else 'smallest increase'} compatible with the "
            f"data and its upper end ({_difference_end(hi)}) the "
            f"{'smallest reduction' if hi < 0 else 'largest increase'}.")
        if base:
            cut = -meaningful * base
            if hi <= cut:
                verdict = "meaningful_reduction"
                sentences.append(f"Even the smallest reduction compatible with the data is at "
                                 f"least {threshold} of the comparison rate ({fmt_number(base)} "
                                 f"{unit}).")
            elif lo <= cut:
                verdict = "inconclusive" if includes else "reduction_size_uncertain"
                sentences.append(f"A reduction of {threshold} or more of the comparison rate "
                                 f"({fmt_number(base)} {unit}) is compatible with the data"
                                 + (", so the result is inconclusive, not negative."
                                    if includes else ", as is a smaller one."))
            else:
                verdict = "no_meaningful_reduction" if lo <= 0 else "increase"
                sentences.append(f"A reduction of {threshold} or more of the comparison rate "
                                 f"({fmt_number(base)} {unit}) is not compatible with the data.")
        else:
            verdict = ("inconclusive" if includes else "reduction" if hi < 0 else "increase")
            sentences.append("Without the comparison group's rate in the record, whether these "
                             "ends would matter cannot be judged from it.")
        conclusion = (f"The programme was followed by {change_words(est)} {name} {unit} "
                      f"(95% CI {interval_words(lo, hi)}).")
    mde = record.get("mde_sentence")
    if isinstance(mde, str) and mde.strip():
        mde_text = mde.strip().rstrip(".")
        mde_text = re.sub(r"(\d) %", r"\1%", mde_text)
        sentences.append(f"As designed, "
                         f"{mde_text[:1].lower() + mde_text[1:]}.")
        mde_rr = _num(record.get("mde_rate_ratio"))
        if effect.is_ratio and mde_rr is not None and lo <= 1 <= hi:
            if lo < mde_rr:
                sentences.append(
                    f"The interval's lower end ({ratio_end(lo)}) goes beyond that detectable "
                    f"reduction ({ratio_end(mde_rr)}): a reduction the design could detect is "
                    "still compatible with these data.")
            else:
                sentences.append(
                    f"The interval's lower end ({ratio_end(lo)}) stops short of the detectable "
                    f"reduction ({ratio_end(mde_rr)}): a reduction of that size is not "
                    "compatible with these data.")
    return Reading(verdict, sentences, conclusion)


# --------------------------------------------------------------------------- methods
def _matching_sentence(run: RunRecord) -> str:
    ev = run.config.get("evaluate") or {}
    match = ev.get("matching") or {}
    ratio = match.get("ratio", 1)
    caliper = match.get("caliper", 0.2)
    exact = [_tidy(x) for x in (match.get("exact") or [])]
    exact_text = _join(["the month of enrolment", *exact])
    lookback = ev.get("lookback_days", 365)
    follow = ev.get("follow_up_days", 365)
    whom = "one patient" if ratio == 1 else f"{ratio} patients"
    return (f"Each enrolled patient was matched to {whom} not (yet) enrolled, on a "
            f"propensity score estimated from characteristics in the {lookback} days before "
            f"enrolment, within a caliper of {caliper} standard deviations of its logit "
            f"{{cite:austin2011}} and exactly on {exact_text}; both were followed for {follow} "
            "days from the enrolled patient's index date.")


def methods_sections(run: RunRecord) -> list[dict[str, Any]]:
    """The Methods, as subsections ``{id, title, paragraphs, items}`` built from the record.

    A subsection is present only when the analysis it describes left a record.
    """
    out: list[dict[str, Any]] = []
    config = run.config
    study = config.get("study") or {}
    manifest = run.manifest or {}

    # -- design, setting and data
    paragraphs = []
    period = (f"from {study['study_start']} to {study['study_end']}"
              if study.get("study_start") and study.get("study_end") else None)
    if run.synthetic:
        syn = config.get("synthetic") or {}
        scenario = f" (scenario '{syn['scenario']}')" if syn.get("scenario") else ""
        where = ("a synthetic population generated by phm-eval" + scenario + " in the shape of "
                 "primary-care records (registrations, coded events, practices) and hospital "
                 "admitted-patient spells, with a programme effect set by the simulation")
    else:
        where = ("routinely collected primary-care records (registrations, coded events, "
                 "practices) linked by pseudonymised patient identifier to hospital "
                 "admitted-patient spells")
    paragraphs.append(f"A cohort study of {where}{', ' + period if period else ''}.")
    inputs = manifest.get("inputs") or []
    if inputs:
        paragraphs[-1] += (f" The {len(inputs)} input files were fingerprinted (SHA-256) in "
                           "the run's manifest.")
    if run.has(outputs.FLOW):
        paragraphs.append("Every input file was validated against the project's data "
                          "contract before analysis; records that were valid but outside the "
                          "study were excluded with a counted reason, reported below.")
    out.append({"id": "sec-data", "title": "Study design, setting and data",
                "paragraphs": paragraphs})

    att = run.by_estimand(ATT)
    itt = run.by_estimand(ITT)
    primary = run.primary()

    # -- participants
    paragraphs = []
    elig = (config.get("evaluate") or {}).get("eligibility")
    if att:
        text = ("Enrolled patients were patients with a recorded enrolment in "
                f"{_tidy(study.get('programme') or 'the programme')} during the study period")
        if isinstance(elig, Mapping) and elig:
            text += " who met the eligibility criteria (" + eligibility_words(elig) + ")"
        paragraphs.append(text + ". " + _matching_sentence(run))
    if itt:
        rec = itt[0][0]
        unit = _unit(rec.get("unit"))
        units_t, units_c = _num(rec.get("n_units_treated")), _num(rec.get("n_units_control"))
        counts = (f" ({units_t:.0f} {_plural(unit) if units_t != 1 else unit} reached by the "
                  f"programme and {units_c:.0f} not)" if units_t is not None
                  and units_c is not None else "")
        paragraphs.append(
            f"For the population analysis, every eligible registered patient in each {unit} "
            f"was counted, whether enrolled or not{counts}.")
    if paragraphs:
        out.append({"id": "sec-participants", "title": "Participants",
                    "paragraphs": paragraphs})

    # -- outcomes
    if primary is not None:
        rec, eff = primary
        outcome = _method_words(label("outcome", eff.outcome))
        text = f"The primary outcome was {outcome}"
        if "emergency admission" in outcome.lower():
            text += (": hospital spells with an emergency admission method (ADMIMETH beginning "
                     "with 2), counted as spells rather than episodes")
        text += "."
        others = []
        for r, e in run.overall():
            name = _method_words(label("outcome", re.sub(r" per 1,000 .*$", "",
                                                          e.outcome.strip())))
            if r is rec or is_uncontrolled(r) or name == outcome or name in others:
                continue
            others.append(name)
        if others:
            text += " Secondary outcomes were " + _join(others) + "."
        if any(e.scale == "SHR" or "competing" in e.method.lower() for _, e in run.overall()):
            text += " Death was treated as a competing risk of first emergency admission."
        out.append({"id": "sec-outcomes", "title": "Outcomes", "paragraphs": [text]})

    # -- frailty
    frailty = config.get("frailty") or {}
    if run.has(outputs.EFI_SUMMARY):
        out.append({"id": "sec-frailty", "title": "Frailty", "paragraphs": [
            "Frailty was measured with the electronic Frailty Index (eFI) {cite:clegg2016}, the "
            "proportion of 36 deficits recorded in primary-care records, for people aged "
            f"{frailty.get('min_age', 65)} and over on "
            f"{frailty.get('index_date', 'the index date')}, in four categories: fit (up to "
            "0.12), mild (over 0.12 to 0.24), moderate (over 0.24 to 0.36) and severe (over "
            "0.36)."]})

    # -- risk model
    if isinstance(run.metrics, Mapping) and run.metrics:
        out.append({"id": "sec-risk", "title": "Risk prediction model",
                    "paragraphs": _risk_methods(run)})

    # -- segmentation
    seg = config.get("segment") or {}
    if run.has(outputs.GRID_3X3):
        tiers = seg.get("risk_tiers")
        tier_text = (" and risk tiers (the top " + ", ".join(f"{100 * t:g}%" for t in tiers)
                     + " of predicted risk)" if tiers else "")
        des = (" Personalised-care activity of the Network Contract DES (personalised care "
               "and support plans, social prescribing referrals and other activities) was "
               "counted per 1,000 registered patients and compared with the specification's "
               "targets." if run.has(outputs.DES_METRICS) else "")
        out.append({"id": "sec-segment", "title": "Segmentation", "paragraphs": [
            "Registered patients were placed in the 3x3 segmentation grid (stage of life by "
            f"need){tier_text} on {seg.get('index_date', 'the index date')}.{des}"]})

    # -- evaluation design
    paragraphs = []
    if att:
        text = ("The effect on enrolled patients was estimated in the matched cohort described "
                "above.")
        if run.has(outputs.BALANCE):
            text += (" Balance of characteristics was checked with standardised mean "
                     "differences before and after matching.")
        paragraphs.append(text)
    if itt:
        rec, eff = itt[0]
        unit = _unit(rec.get("unit"))
        method = str(rec.get("method") or "")
        lowered = method.lower()
        never, not_yet = "never" in lowered, "not-yet" in lowered or "not yet" in lowered
        units = _plural(unit)
        controls = (f"{units} never reached or not yet reached" if never and not_yet
                    else f"{units} not yet reached" if not_yet
                    else f"{units} never reached" if never else f"other {units}")
        paragraphs.append(
            f"Because the programme reached {_plural(unit)} at different dates, its effect on "
            "the whole eligible population was estimated with the staggered "
            "difference-in-differences estimator of Callaway and Sant'Anna {cite:callaway2021}, "
            f"with {controls} as comparisons: the {_plain_method(eff, outcome=True)}"
            + (f"; the method as the run recorded it is in {run.supplement[METHODS_RECORD]}"
               if METHODS_RECORD in run.supplement else "") + ".")
    pre = run.pretrend if isinstance(run.pretrend, Mapping) else None
    if pre is not None and pre.get("informative") is False and att:
        paragraphs.append("Trends before enrolment were not used as evidence for the matched "
                          "comparison: comparators were matched on their admissions in the year "
                          "before, so those trends agree by construction.")
    elif pre is not None and _num(pre.get("p_value")) is not None and (att or itt):
        test = str(pre.get("test") or "a joint test of the pre-period event-study coefficients")
        study_words = (" with an event study," if run.has(outputs.EVENT_STUDY_PNG) else ",")
        paragraphs.append(f"Trends before the programme were examined{study_words} and the "
                          f"assumption of parallel trends tested ({_method_words(_tidy(test))}).")
    if run.uncontrolled() or _rtm_row(run.rtm, "naive") is not None:
        paragraphs.append("Uncontrolled before-and-after changes among enrolled patients are "
                          "reported alongside the controlled estimates, to show the size of "
                          "regression to the mean {cite:roland2012}.")
    if paragraphs:
        out.append({"id": "sec-design", "title": "Evaluation design", "paragraphs": paragraphs})

    # -- statistical analysis
    stats = _stats_methods(run)
    if stats["paragraphs"] or stats["items"]:
        out.append({"id": "sec-stats", "title": "Statistical analysis", **stats})

    # -- disclosure and reporting
    out.append({"id": "sec-sdc", "title": "Statistical disclosure control", "paragraphs": [
        "Every count leaving the secure environment was disclosure-controlled: "
        + run.policy.describe()[:1].lower() + run.policy.describe()[1:]
        + " Tables were checked again before they were placed in this manuscript, and any "
        "that failed would have been withheld."]})
    guides = ["STROBE {cite:strobe2007} with its RECORD extension for routinely collected "
              "data {cite:record2015}"]
    if isinstance(run.metrics, Mapping) and run.metrics:
        guides.append("TRIPOD+AI {cite:tripodai2024} for the prediction model")
    checklist_label = run.supplement.get("checklist")
    out.append({"id": "sec-reporting", "title": "Reporting", "paragraphs": [
        "This report follows " + _join(guides)
        + (f"; the checklist is {checklist_label}." if checklist_label else ".")]})
    return out


def _risk_methods(run: RunRecord) -> list[str]:
    metrics = run.metrics or {}
    risk = run.config.get("risk") or {}
    model = MODEL_WORDS.get(str(risk.get("model")), _tidy(str(risk.get("model") or "a model")))
    outcome = metrics.get("outcome") or "an emergency admission within 12 months"
    dev = metrics.get("development_index_date") or risk.get("development_index_date")
    val = metrics.get("validation_index_date") or risk.get("validation_index_date")
    design = str(metrics.get("design") or "")
    text = f"A {model} model predicting {_tidy(str(outcome))} was developed"
    text += f" at {dev}" if dev else ""
    if design.startswith("temporal"):
        when = f" ({val})" if val else ""
        text += (f" and validated in the same population at a later index date{when} "
                 "(temporal validation).")
    elif design.startswith("apparent"):
        text += "; its performance is apparent, measured in the data it was developed on."
    elif design:
        text += f"; it was validated by {_tidy(design)}."
    else:
        text += "."
    paragraphs = [text]
    if metrics.get("optimism_corrected") is not None:
        reps = risk.get("bootstrap_replicates")
        paragraphs[-1] += (" Optimism in the development data was corrected by bootstrap"
                           + (f" ({reps} replicates)." if reps else "."))
    iecv = metrics.get("internal_external")
    if isinstance(iecv, Mapping):
        used, requested = iecv.get("cluster"), iecv.get("requested_cluster")
        note = str(iecv.get("note") or "").strip().rstrip(".")
        if used:
            sentence = (f"Internal-external cross-validation left out one {_unit(used)} at a "
                        "time, refitting the model on the rest and validating it on the "
                        "held-out " + _unit(used) + ", with a random-effects summary of the "
                        "c-statistic and its 95% prediction interval {cite:riley2016}.")
            if requested and requested != used:
                sentence += (f" It was planned by {_unit(requested)} and run by {_unit(used)}"
                             + (f" ({note})." if note else "."))
        else:
            sentence = (f"Internal-external cross-validation by {_unit(requested or 'cluster')} "
                        "was planned but not run" + (f" ({note})." if note else "."))
        paragraphs[-1] += " " + sentence
    reported = [name for key, name in METRIC_NAMES.items() if key in metrics]
    if reported:
        extra = ""
        if run.has(outputs.DECISION_CURVE_PNG):
            extra = " and clinical utility (decision curve analysis {cite:vickers2006})"
        groups = None
        if run.has(outputs.RISK_SUBGROUP_METRICS):
            from .context import risk_subgroup_caption
            frame = run.subgroup_metrics
            groups = risk_subgroup_caption(frame).removeprefix(
                "Risk model performance ").rstrip(".")
        sub = f", overall and {groups}" if groups and groups.startswith("by ") else (
            ", overall and by group of patients" if groups else "")
        paragraphs.append("Performance was reported as " + _join(reported) + extra + sub
                          + ", with bootstrap 95% confidence intervals.")
    return paragraphs


def _se_again(se: str, said: str) -> str:
    """A secondary analysis's standard errors without what the primary analysis's already said
    (the same explanation in brackets, the same clause), and with "standard errors" once."""
    for aside in re.findall(r" \([^()]*\)", said):
        if len(aside) > 30:
            se = se.replace(aside, "")
    clauses = [c for c in se.split("; ") if c not in said.split("; ")[1:]]
    se = "; ".join(clauses)
    return se if "standard errors" in se else "standard errors " + se


def eligibility_words(elig: Mapping[str, Any]) -> str:
    """The evaluation's eligibility rule in words (as
    :class:`phm_eval.evaluate.design.Eligibility` applies it: the age, and either criterion)."""
    age = elig.get("min_age")
    either = []
    if elig.get("min_efi_deficits") is not None:
        either.append(f"frail ({elig['min_efi_deficits']} or more eFI deficits)")
    if elig.get("min_recent_emergency_admissions") is not None:
        k = elig["min_recent_emergency_admissions"]
        either.append(f"admitted as an emergency at least {'once' if k == 1 else f'{k} times'} "
                      "in the previous 12 months")
    parts = [f"aged {age} or over"] if age is not None else []
    if len(either) == 2:
        parts.append("either " + " or ".join(either))
    elif either:
        parts.append(either[0])
    return " and ".join(parts) or "as configured"


def _stats_methods(run: RunRecord) -> dict[str, Any]:
    paragraphs: list[str] = []
    items: list[str] = []
    primary = run.primary()
    if primary is not None:
        rec, eff = primary
        estimand = estimand_of(rec)
        text = (f"The primary analysis estimated {estimand_words(estimand)} on "
                f"{effect_name(rec, eff)}, as a {SCALE_WORDS[eff.scale]}: the "
                f"{_reviewer_method(eff)}.")
        if eff.fallback:
            text += (" The planned method could not be used ("
                     f"{fallback_label(eff.fallback, eff.unit)}); the method named is the one "
                     "that ran.")
        se = rec.get("se_method")
        if se:
            text += f" Standard errors: {se}."
        if not eff.estimable:
            text += f" It could not be estimated in this run ({eff.reason})."
        if eff.is_ratio and eff.baseline_rate_per_1000 and eff.estimable:
            text += (" The ratio and its interval were converted to admissions per 1,000 "
                     "patients a year with the comparison group's rate "
                     f"({fmt_number(eff.baseline_rate_per_1000)} per 1,000 a year), treated as "
                     "known.")
        cost = (run.config.get("report") or {}).get("unit_cost_emergency_admission")
        if cost and run.headline and run.headline.get("saving_per_1000_gbp") and eff.estimable:
            text += (f" Admissions were costed at £{float(cost):,.0f} each (hospital costs "
                     "only, not the cost of the programme).")
        paragraphs.append(text)
    primary_se = str((primary[0].get("se_method") if primary is not None else "") or "")
    for rec, eff in run.overall():
        if primary is not None and rec is primary[0]:
            continue
        line = (f"{_capital(effect_name(rec, eff))} ({estimand_short(rec)}): "
                f"{SCALE_WORDS[eff.scale]}, {_reviewer_method(eff)}")
        if eff.fallback:
            line += f" (not the planned method: {fallback_label(eff.fallback, eff.unit)})"
        if rec.get("se_method"):
            line += "; " + _se_again(str(rec["se_method"]), primary_se)
        if not eff.estimable:
            line += f"; {eff.reason}"
        if eff.scale == "SHR":
            line += " {cite:finegray1999}"
        items.append(line + ".")
    if items:
        paragraphs.append("The other analyses, each with the method actually used:")
    groups = run.subgroups()
    if groups:
        methods = sorted({_reviewer_method(e) for _, e in groups})
        names = []
        for _, e in groups:
            text = str(e.subgroup)
            name = (label("subgroup_variable", text.split("=")[0]) if "=" in text
                    else label("subgroup", text)).lower()
            if name not in names:
                names.append(name)
        tail = ("" if len(names) > 8 else " (" + _join(names) + ")")
        items_note = (f"Effects were estimated within {len(groups)} subgroups{tail} by "
                      + _join(methods) + ".")
        paragraphs_after = [items_note]
    else:
        paragraphs_after = []
    if primary is not None or items:
        paragraphs_after.append("All intervals are 95% confidence intervals.")
    manifest = run.manifest or {}
    packages = {k: v for k, v in (manifest.get("packages") or {}).items() if v}
    if packages:
        own = packages.pop("phm-eval", None)
        python = packages.pop("python", None)
        commit = ((manifest.get("git") or {}).get("commit") or "")[:12]
        text = "The analysis ran in phm-eval"
        text += f" {own}" if own else ""
        text += f" (commit {commit})" if commit else ""
        text += f" on Python {python}" if python else ""
        if packages:
            text += ", with " + _join([f"{k} {v}" for k, v in packages.items()])
        seed = manifest.get("seed")
        text += f"; random seed {seed}." if seed is not None else "."
        paragraphs_after.append(text)
    return {"paragraphs": paragraphs, "items": items, "after": paragraphs_after}


# --------------------------------------------------------------------------- results
def _rtm_row(rtm: pd.DataFrame | None, kind: str
             ) -> tuple[float, float | None, float | None] | None:
    if rtm is None or "kind" not in rtm.columns or "change_per_1000" not in rtm.columns:
        return None
    rows = rtm[rtm["kind"].astype(str).str.lower() == kind]
    if rows.empty:
        return None
    row = rows.iloc[0]
    est = _num(pd.to_numeric(pd.Series([row["change_per_1000"]]), errors="coerce").iloc[0])
    if est is None:
        return None
    low = _num(pd.to_numeric(pd.Series([row.get("ci_low")]), errors="coerce").iloc[0])
    high = _num(pd.to_numeric(pd.Series([row.get("ci_high")]), errors="coerce").iloc[0])
    return est, low, high


def participants_text(run: RunRecord) -> list[str]:
    """How many patients each analysis used (counts disclosed)."""
    out = []
    att = run.by_estimand(ATT)
    if att:
        rec, eff = (run.primary() if run.primary() and estimand_of(run.primary()[0]) == ATT
                    else att[0])
        t, c = run.count(eff.n_treated), run.count(eff.n_control)
        if t and c:
            out.append(f"The matched analysis compared {t} enrolled patients with {c} "
                       "comparators.")
    itt = run.by_estimand(ITT)
    if itt:
        rec, eff = itt[0]
        t, c = run.count(eff.n_treated), run.count(eff.n_control)
        unit = _unit(rec.get("unit"))
        ut, uc = _num(rec.get("n_units_treated")), _num(rec.get("n_units_control"))
        if t and c:
            if ut is not None and uc is not None:
                out.append(
                    f"The population analysis counted {t} eligible patients in the {ut:.0f} "
                    f"{unit if ut == 1 else _plural(unit)} reached by the programme and {c} in "
                    f"the {uc:.0f} {unit if uc == 1 else _plural(unit)} not reached.")
            else:
                out.append(f"The population analysis counted {t} eligible patients in the "
                           f"{_plural(unit)} reached by the programme and {c} in those not "
                           "reached.")
    return out


def effects_rows(run: RunRecord) -> list[list[str]]:
    """One row per overall estimate: what, estimand, method actually used, estimate."""
    rows = []
    for rec, eff in run.overall():
        estimand = ("Uncontrolled" if is_uncontrolled(rec)
                    else "Population (ITT)" if estimand_of(rec) == ITT else "Enrolled (ATT)")
        rows.append([_capital(effect_name(rec, eff)), estimand, _capital(eff.method_words()),
                     _capital(SCALE_WORDS[eff.scale].split(" (")[0]) + " "
                     + eff.estimate_text()])
    return rows


#: The supplement's table of methods as the run recorded them (manuscript.py names it too).
METHODS_RECORD = f"{outputs.EFFECTS}#methods"


def _plain_method(effect: Effect, outcome: bool = False) -> str:
    """The method in plain words, derived from the record (no fallback: said separately)."""
    what = re.sub(r"\s+per 1,000 person-(?:years|months)$", "", effect.outcome) if outcome \
        else None
    return method_label(effect.method, what, effect.unit)


def _reviewer_method(effect: Effect) -> str:
    """The method for the statistical analysis: plain words and the model by its name."""
    model = model_name(effect.method)
    return _plain_method(effect) + (f" ({model})" if model else "")


def methods_record_rows(run: RunRecord) -> list[list[str]]:
    """Every estimate's method exactly as the run recorded it, for the supplement."""
    rows = []
    for rec, eff in run.pairs():
        name = _capital(effect_name(rec, eff))
        rows.append([name, _capital(eff.method),
                     _capital(eff.se_method) if eff.se_method else "Not recorded",
                     _capital(eff.fallback) if eff.fallback else "As planned"])
    return rows


def not_estimable_text(run: RunRecord) -> str | None:
    """The analyses that ran but could not be estimated, with their reasons."""
    failed = [f"{effect_name(r, e)} ({_plain_method(e)}; {e.reason})"
              for r, e in run.pairs() if not e.estimable]
    if not failed:
        return None
    return ("Not every analysis could be estimated: " + "; ".join(failed) + ".")


def subgroup_text(run: RunRecord) -> str | None:
    """Subgroup results in words, from the numbers."""
    groups = [(r, e) for r, e in run.subgroups() if e.estimable]
    if not groups:
        return None
    down = [e for _, e in groups if e.verdict == "reduction"]
    up = [e for _, e in groups if e.verdict == "increase"]
    text = (f"Of {len(groups)} subgroup estimates, {len(down)} showed a reduction whose "
            f"interval excluded no change")
    text += f" and {len(up)} an increase" if up else ""
    if down:
        best = min(down, key=lambda e: e.estimate)
        text += (f"; the largest reduction was in {label('subgroup', best.subgroup)} "
                 f"({SCALE_WORDS[best.scale]} {best.estimate_text()})")
    text += ". Subgroups are smaller than the whole, so their intervals are wider."
    return text


# --------------------------------------------------------------------------- discussion
def discussion_sections(run: RunRecord) -> list[dict[str, Any]]:
    """The Discussion: every sentence conditional on the results."""
    out: list[dict[str, Any]] = []
    primary = run.primary()
    reading = (read_primary(primary[0], primary[1], run.meaningful)
               if primary is not None else None)
    if reading is not None:
        out.append({"id": "disc-findings", "title": "Principal findings",
                    "paragraphs": [" ".join(reading.sentences)]})
    paragraphs = [p for p in (_consistency(run), _rtm_discussion(run), _pretrend_discussion(run),
                              _evidence(run, reading)) if p]
    if paragraphs:
        out.append({"id": "disc-interpretation", "title": "Interpretation",
                    "paragraphs": paragraphs})
    risk = _risk_discussion(run)
    if risk:
        out.append({"id": "disc-risk", "title": "The risk model", "paragraphs": [risk]})
    limits = _limitations(run)
    if limits:
        out.append({"id": "disc-limitations", "title": "Strengths and limitations",
                    "paragraphs": limits})
    if reading is not None:
        conclusion = reading.conclusion
        if run.synthetic:
            conclusion += (" Because the data are synthetic, this shows what the analysis "
                           "recovers, not what the programme achieved in practice.")
        out.append({"id": "disc-conclusion", "title": "Conclusion", "paragraphs": [conclusion]})
    return out


def _same_question(run: RunRecord) -> list[tuple[dict[str, Any], Effect]]:
    primary = run.primary()
    return [(r, e) for r, e in run.overall()
            if e.estimable and not is_uncontrolled(r) and (primary is None or r is not primary[0])
            and "admission" in e.outcome.lower()]


def _consistency(run: RunRecord) -> str | None:
    primary = run.primary()
    others = _same_question(run)
    if primary is None or not primary[1].estimable or not others:
        return None
    eff = primary[1]
    fewer = eff.estimate < eff.null_value
    same = [(r, e) for r, e in others if (e.estimate < e.null_value) == fewer]
    clear = [(r, e) for r, e in same if e.verdict in ("reduction", "increase")]
    text = (f"Of the {len(others)} other controlled estimates of the effect on emergency "
            f"admissions, {len(same)} point the same way as the primary estimate "
            f"({'fewer' if fewer else 'more'} admissions)")
    if same:
        text += (", none of them with an interval that excludes no change" if not clear
                 else f", {len(clear)} of them with an interval that excludes no change")
    opposite = [(r, e) for r, e in others if (e.estimate < e.null_value) != fewer]
    if opposite:
        text += "; " + _join([f"{effect_name(r, e)} ({e.estimate_text()})"
                              for r, e in opposite]) + " point the other way"
    text += "."
    att = [(r, e) for r, e in run.by_estimand(ATT) if e.estimable and e.is_ratio]
    itt = [(r, e) for r, e in run.by_estimand(ITT) if e.estimable and e.is_ratio]
    if att and itt:
        a, i = att[0][1], itt[0][1]
        text += (f" The population estimate ({SCALE_WORDS[i.scale]} {i.estimate_text()}) "
                 + ("is closer to no change than the estimate among the enrolled "
                    f"({a.estimate_text()}), as expected when eligible patients who were never "
                    "enrolled dilute the effect." if abs(math.log(i.estimate)) < abs(
                        math.log(a.estimate)) else
                    "is further from no change than the estimate among the enrolled "
                    f"({a.estimate_text()}), which dilution by never-enrolled patients does not "
                    "explain; differences between the areas reached early and late may."))
    return text


def _rtm_discussion(run: RunRecord) -> str | None:
    naive = _rtm_row(run.rtm, "naive")
    ctrl = _rtm_row(run.rtm, "controlled")
    if naive is None:
        return None
    unit = "emergency admissions per 1,000 patients a year"
    if naive[0] < 0 and ctrl is not None and ctrl[0] < 0 and naive[0] / ctrl[0] >= 1.5:
        return (f"Before and after enrolment, without a comparison group, enrolled patients had "
                f"{change_words(naive[0])} {unit}, about {naive[0] / ctrl[0]:.0f} times the "
                f"controlled estimate ({change_words(ctrl[0])}): most of the uncontrolled fall "
                "is regression to the mean {cite:roland2012}, and a report resting on it would "
                "have overstated the benefit.")
    if naive[0] < 0 and ctrl is not None and ctrl[0] >= 0:
        return (f"Enrolled patients had {change_words(naive[0])} {unit} after enrolment than "
                f"before, but the controlled estimate is {change_words(ctrl[0])}: the fall is "
                "what regression to the mean predicts for patients selected because they were "
                "unwell {cite:roland2012}.")
    if naive[0] < 0 and ctrl is not None:
        return (f"The uncontrolled before-and-after change ({change_words(naive[0])} {unit}) "
                f"and the controlled estimate ({change_words(ctrl[0])}) are of similar size: "
                "regression to the mean explains little of the change here.")
    if naive[0] >= 0:
        return (f"Admissions did not fall among enrolled patients after enrolment "
                f"({change_words(naive[0])} {unit}), so regression to the mean does not explain "
                "this result.")
    return None


def _pretrend_discussion(run: RunRecord) -> str | None:
    pre = run.pretrend if isinstance(run.pretrend, Mapping) else None
    if pre is not None and pre.get("informative") is False:
        return ("The matched comparison's test of trends before enrolment is not evidence "
                "either way: comparators were matched on their emergency admissions in the "
                "year before, so those trends agree by construction.")
    p = _num((pre or {}).get("p_value"))
    if p is None:
        return None
    shown = f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"
    if p >= 0.05:
        return (f"Trends before the programme did not differ detectably ({shown}); this "
                "supports, but cannot prove, the parallel-trends assumption the controlled "
                "estimates rest on, and a test with few pre-periods has little power.")
    return (f"Trends before the programme differed ({shown}): the parallel-trends assumption "
            "is doubtful and the controlled estimates may be biased in either direction.")


def _truth_value(run: RunRecord, scale: str) -> tuple[str, float] | None:
    truth = run.truth if isinstance(run.truth, Mapping) else {}
    realised = truth.get("realised") or {}
    true_effect = truth.get("true_effect") or {}
    if scale == "RR" and _num(realised.get("realised_rate_ratio_12m")) is not None:
        return "realised rate ratio", float(realised["realised_rate_ratio_12m"])
    if scale in ("HR", "SHR") and _num(true_effect.get("hazard_ratio")) is not None:
        return "hazard ratio set in the simulation", float(true_effect["hazard_ratio"])
    if scale in ("ATT", "difference") and _num(
            realised.get("att_admissions_per_1000_person_years_12m")) is not None:
        return ("realised change per 1,000 person-years",
                float(realised["att_admissions_per_1000_person_years_12m"]))
    return None


def _evidence(run: RunRecord, reading: Reading | None) -> str | None:
    """Synthetic data: comparison with the known truth; real data: with published evidence."""
    primary = run.primary()
    if run.synthetic:
        if primary is None or not primary[1].estimable:
            return None
        eff = primary[1]
        truth = _truth_value(run, eff.scale)
        if truth is None:
            return ("The data are synthetic, but the simulation's truth was not available to "
                    "this report, so whether the primary estimate recovers the effect that was "
                    "set cannot be checked here.")
        name, value = truth
        if eff.is_ratio:
            low, high, shown = eff.ci_low, eff.ci_high, fmt_ratio(value)
        else:
            factor = 1000.0 / eff.per
            low, high, shown = eff.ci_low * factor, eff.ci_high * factor, fmt_number(value)
        inside = low <= value <= high
        text = (f"The data are synthetic, so the truth is known: the {name} was {shown}, "
                f"{'inside' if inside else 'outside'} the primary interval "
                f"({eff.estimate_text().split('(95% CI ')[-1].rstrip(')')})")
        if inside:
            text += ", so the analysis recovered the effect the simulation set."
        else:
            text += (", so the analysis did not recover the effect the simulation set: either "
                     "one interval in twenty that misses, or a bias to investigate before the "
                     "method is used on real data.")
        truth_null = (value >= 1) if eff.is_ratio else (value >= 0)
        if reading is not None and reading.verdict in ("inconclusive",
                                                       "no_meaningful_reduction") \
                and not truth_null:
            text += (" The simulation did set a reduction, so this null result is a failure "
                     "to detect a real effect, not evidence of its absence.")
        return text + (" Published evaluations are not compared with, since the effect here "
                       "was chosen by the simulation.")
    if reading is None or primary is None or not primary[1].estimable:
        return None
    if reading.verdict in ("meaningful_reduction", "reduction_size_uncertain",
                           "small_reduction"):
        return ("Controlled evaluations of case management in primary care have mostly found "
                "no reduction in emergency admissions {cite:stokes2015}; this result differs, "
                "and the difference (in the patients selected, the intervention or the "
                "comparison) deserves scrutiny before it is generalised.")
    if reading.verdict in ("inconclusive", "no_meaningful_reduction"):
        return ("Most controlled evaluations of case management in primary care have likewise "
                "found no clear reduction in emergency admissions {cite:stokes2015}.")
    return ("An increase in admissions after proactive review may reflect unmet need the "
            "review uncovered; the programme's pathways deserve review before it is extended.")


def _risk_discussion(run: RunRecord) -> str | None:
    metrics = run.metrics if isinstance(run.metrics, Mapping) else None
    if not metrics:
        return None

    def metric(key: str) -> tuple[float, float | None, float | None] | None:
        value = metrics.get(key)
        if isinstance(value, Mapping) and _num(value.get("estimate")) is not None:
            return (float(value["estimate"]), _num(value.get("ci_low")),
                    _num(value.get("ci_high")))
        return None

    parts = []
    c = metric("c_statistic")
    if c is not None:
        low, high = PUBLISHED_C_RANGE
        where = ("below" if c[0] < low else "above" if c[0] > high else "within")
        parts.append(f"The risk model's c-statistic ({c[0]:.3f}) is {where} the range of about "
                     f"{low:.2f} to {high:.2f} reported for admission-risk models built from "
                     "routine data.")
    slope = metric("calibration_slope")
    if slope is not None and slope[1] is not None and slope[2] is not None:
        if slope[1] <= 1 <= slope[2]:
            parts.append(f"Its calibration slope ({slope[0]:.2f}, 95% CI {slope[1]:.2f} to "
                         f"{slope[2]:.2f}) is compatible with 1: predicted risks are about as "
                         "spread out as observed ones in later data.")
        else:
            parts.append(f"Its calibration slope ({slope[0]:.2f}, 95% CI {slope[1]:.2f} to "
                         f"{slope[2]:.2f}) excludes 1: predictions are "
                         + ("too extreme" if slope[0] < 1 else "too cautious")
                         + " in later data, and the model needs recalibration before its risks "
                         "are read as probabilities.")
    elif metrics.get("calibration_slope") is not None:
        parts.append("Its calibration slope could not be estimated, so whether its predicted "
                     "risks can be read as probabilities is unknown.")
    iecv = metrics.get("internal_external")
    if isinstance(iecv, Mapping):
        used = iecv.get("cluster")
        meta = iecv.get("random_effects_c_statistic") or {}
        pl, pu = _num(meta.get("prediction_lower")), _num(meta.get("prediction_upper"))
        if used and pl is not None and pu is not None:
            parts.append(f"Across {_plural(_unit(used))}, the c-statistic in a new "
                         f"{_unit(used)} is expected to lie between {pl:.2f} and {pu:.2f} (95% "
                         "prediction interval).")
        elif used:
            parts.append(f"Internal-external validation by {_unit(used)} gave no prediction "
                         "interval, so how performance varies between "
                         f"{_plural(_unit(used))} is not known.")
        else:
            parts.append("Internal-external validation was not run, so how performance varies "
                         "between areas is untested.")
    return " ".join(parts) if parts else None


def _max_smd(balance: pd.DataFrame | None) -> tuple[float, list[str]] | None:
    if balance is None or "smd_after" not in balance.columns:
        return None
    values = pd.to_numeric(balance["smd_after"], errors="coerce").abs()
    if values.notna().sum() == 0:
        return None
    names = balance.iloc[:, 0].astype(str)
    over = [label("covariate", names.iloc[i]) for i in range(len(values))
            if values.iloc[i] > 0.1]
    return float(values.max()), over


def _limitations(run: RunRecord) -> list[str]:
    out = []
    smd = _max_smd(run.balance)
    if smd is not None:
        largest, over = smd
        if not over:
            out.append(f"Matching balanced the recorded characteristics (the largest "
                       f"standardised difference after matching was {largest:.3f}), but cannot "
                       "balance unrecorded ones, such as motivation or support at home, that "
                       "may influence both enrolment and admission.")
        else:
            out.append(f"{len(over)} recorded characteristic(s) remained imbalanced after "
                       f"matching (standardised difference above 0.1: {', '.join(over[:6])}), "
                       "and unrecorded ones may be too: the matched estimates may be biased.")
    fell_back = [f"{effect_name(r, e)} ({e.fallback})" for r, e in run.pairs() if e.fallback]
    if fell_back:
        out.append("Some analyses could not use the planned method and ran with a fallback: "
                   + "; ".join(fell_back[:4]) + (" and others" if len(fell_back) > 4 else "")
                   + ".")
    failed = [effect_name(r, e) for r, e in run.pairs() if not e.estimable]
    if failed:
        out.append(f"{len(failed)} planned estimate(s) could not be made in these data ("
                   + "; ".join(failed[:4]) + (" and others" if len(failed) > 4 else "")
                   + "), which narrows the evidence available.")
    primary = run.primary()
    hazards = [e for _, e in run.overall() if e.scale == "HR" and e.estimable
               and "admission" in e.outcome.lower()]
    if primary is not None and primary[1].scale == "RR" and primary[1].estimable and hazards:
        hr = hazards[0]
        if abs(math.log(hr.estimate)) < abs(math.log(primary[1].estimate)):
            out.append(f"The hazard ratio of first admission ({hr.estimate_text()}) is closer "
                       "to 1 than the rate ratio of all admissions, as unobserved frailty "
                       "predicts; this is why the rate ratio is the primary estimate.")
    if run.headline and run.headline.get("saving_per_1000_gbp") is not None:
        out.append("The costs counted are hospital admissions avoided or added, not the cost "
                   "of running the programme, so they are not a return on investment.")
    if run.synthetic:
        out.append("The population is synthetic: it lacks the variation in coding between "
                   "practices of real records, which affects the eFI, the risk model and the "
                   "choice of comparators, so performance on a real extract may be worse.")
    return out


# --------------------------------------------------------------------------- abstract
def abstract_methods(run: RunRecord) -> str:
    """The abstract's Methods: only the designs that left a record."""
    study = run.config.get("study") or {}
    where = "synthetic" if run.synthetic else "routinely collected"
    text = f"Cohort study in {where} primary-care and hospital records"
    if study.get("study_start") and study.get("study_end"):
        text += f" ({study['study_start']} to {study['study_end']})"
    text += "."
    found = []
    if run.has(outputs.EFI_SUMMARY):
        found.append("the electronic Frailty Index")
    if isinstance(run.metrics, Mapping) and run.metrics:
        design = str(run.metrics.get("design") or "")
        found.append("an emergency-admission risk model"
                     + (" (validated temporally)" if design.startswith("temporal") else ""))
    if found:
        text += " Patients at risk were described with " + _join(found) + "."
    designs = []
    if run.by_estimand(ATT):
        designs.append("enrolled patients were compared with matched patients not yet enrolled")
    itt = run.by_estimand(ITT)
    if itt:
        unit = _unit(itt[0][0].get("unit"))
        designs.append(f"the staggered roll-out across {_plural(unit)} was analysed with "
                       "difference-in-differences (intention to treat)")
    if designs:
        text += " " + _capital("; ".join(designs)) + "."
    primary = run.primary()
    if primary is not None:
        rec, eff = primary
        text += (f" The primary estimate was the {SCALE_WORDS[eff.scale].split(' (')[0]} of "
                 f"{effect_name(rec, eff)}: the {_plain_method(eff)}.")
    return text + " Outputs passed statistical disclosure control."


def abstract_conclusion(run: RunRecord) -> str:
    """The abstract's conclusion, the same as the Discussion's."""
    primary = run.primary()
    if primary is None:
        return "No conclusion about the programme's effect can be drawn from this run."
    return read_primary(primary[0], primary[1], run.meaningful).conclusion


# --------------------------------------------------------------------------- checklist
def checklist(run: RunRecord, methods_ids: Iterable[str],
              discussion_ids: Iterable[str]) -> list[dict[str, Any]]:
    """STROBE/RECORD and TRIPOD+AI items with where each is reported.

    ``where`` is a list of strings; one beginning with ``@`` is a section label.  Items whose
    section is absent from this run say so rather than point nowhere.
    """
    have = set(methods_ids) | set(discussion_ids) | {
        "sec-intro", "res-participants", "res-population", "res-risk", "res-segment",
        "res-effect", "res-subgroups", "sec-repro"}
    supp = run.supplement

    def where(*targets: str) -> list[str]:
        found = [t for t in targets if not t.startswith("@") or t[1:] in have]
        return found or ["not reported in this run"]

    rows = [
        ("STROBE 1 / RECORD 1.1-1.3", "Title and abstract: design, data type, setting, period",
         ["Title", "Abstract"]),
        ("STROBE 2-3", "Background and objectives", where("@sec-intro")),
        ("STROBE 4-5", "Study design and setting, dates", where("@sec-data")),
        ("STROBE 6 / RECORD 6.1-6.3", "Participants, selection codes and algorithms, linkage",
         where("@sec-participants", "@sec-frailty")),
        ("STROBE 7 / RECORD 7.1", "Outcomes, exposures, confounders; codes used",
         where("@sec-outcomes", "@sec-design")),
        ("STROBE 8", "Data sources and measurement", where("@sec-data")),
        ("STROBE 9", "Bias (confounding, regression to the mean)", where("@sec-design")),
        ("STROBE 10", "Study size", where("@res-participants")),
        ("STROBE 12 / RECORD 12.1-12.2", "Statistical methods; data cleaning and linkage",
         where("@sec-stats", "@sec-data")),
        ("STROBE 13", "Participants at each stage (flow)", where("@res-participants")),
        ("STROBE 14", "Descriptive data", where("@res-population",
                                                *[v for k, v in supp.items()
                                                  if k in outputs.of_rule("describe")][:2])),
        ("STROBE 15-16", "Outcome data and main results, with precision",
         where("@res-effect")),
        ("STROBE 17", "Other analyses (subgroups, sensitivity)",
         where("@res-subgroups", "@res-effect")),
        ("STROBE 18", "Key results", where("@disc-findings")),
        ("STROBE 19", "Limitations", where("@disc-limitations")),
        ("STROBE 20-21", "Interpretation and generalisability",
         where("@disc-interpretation", "@disc-conclusion")),
        ("STROBE 22", "Funding", ["not part of the run record; to be added by the authors"]),
        ("RECORD 12.3 / 22.1", "Disclosure control; access to data, code and protocol",
         where("@sec-sdc", "@sec-repro")),
    ]
    if isinstance(run.metrics, Mapping) and run.metrics:
        rows += [
            ("TRIPOD+AI 6-8", "Data source, participants, outcome and its timing",
             where("@sec-risk")),
            ("TRIPOD+AI 9-11", "Predictors, sample size, missing data",
             where("@res-risk", "model card released with the results")),
            ("TRIPOD+AI 12", "Model type, fitting and internal validation", where("@sec-risk")),
            ("TRIPOD+AI 12e / 14", "Performance measures; fairness across groups",
             where("@sec-risk", "@res-risk", supp.get(outputs.RISK_SUBGROUP_METRICS, "@res-risk"))),
            ("TRIPOD+AI 23-24", "Performance with confidence intervals; calibration plot",
             where("@res-risk")),
            ("TRIPOD+AI 27", "Interpretation of the model", where("@disc-risk")),
            ("TRIPOD+AI 18", "Open science: code and software versions",
             where("@sec-stats", "@sec-repro")),
        ]
    return [{"item": item, "topic": topic, "where": places} for item, topic, places in rows]


# --------------------------------------------------------------------------- citations
CITE = re.compile(r"\s?\{cite:([a-z0-9_,]+)\}")


def number_citations(texts: Iterable[str]) -> dict[str, int]:
    """Reference numbers in order of first citation across ``texts`` (in document order)."""
    order: dict[str, int] = {}
    for text in texts:
        for match in CITE.finditer(text):
            for key in match.group(1).split(","):
                if key not in REFERENCES:
                    raise KeyError(f"unknown reference {key!r}")
                order.setdefault(key, len(order) + 1)
    return order


def apply_citations(value: Any, numbers: Mapping[str, int]) -> Any:
    """Replace every ``{cite:key}`` in strings nested in ``value`` by ``[n]``."""
    if isinstance(value, str):
        return CITE.sub(lambda m: " [" + ", ".join(str(numbers[k]) for k in
                                                   m.group(1).split(",")) + "]", value)
    if isinstance(value, list):
        return [apply_citations(v, numbers) for v in value]
    if isinstance(value, dict):
        return {k: apply_citations(v, numbers) for k, v in value.items()}
    return value


def strings(value: Any) -> list[str]:
    """Every string nested in ``value``, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    return []


INTRODUCTION = [
    "The Network Contract Directed Enhanced Service asks each primary care network (PCN) to "
    "use a population health management approach: to risk-stratify its registered population "
    "with local data and tools such as the electronic Frailty Index (eFI) {cite:clegg2016}, to "
    "reduce health inequalities in line with Core20PLUS5, and to offer proactive, "
    "multidisciplinary care to people with complex needs at greatest risk of emergency "
    "admission. Programmes that select patients because they were recently unwell will see "
    "their admissions fall whether or not the programme works, because of regression to the "
    "mean {cite:roland2012}.",
]


def introduction(run: RunRecord) -> list[str]:
    """Background (fixed) and the objectives of this run (from what it estimated)."""
    aims = []
    if run.has(outputs.POPULATION_PYRAMID) or run.has(outputs.LTC_PREVALENCE):
        aims.append("describe the registered population")
    if isinstance(run.metrics, Mapping) and run.metrics:
        aims.append("assess the risk model used to find patients")
    programme = _tidy(str((run.config.get("study") or {}).get("programme") or "the programme"))
    estimands = []
    if run.by_estimand(ATT):
        estimands.append("among the patients it enrolled")
    if run.by_estimand(ITT):
        estimands.append("across the eligible population")
    if estimands:
        aims.append(f"estimate the effect of {programme} on emergency admissions "
                    + " and ".join(estimands))
    if not aims:
        return list(INTRODUCTION)
    return [*INTRODUCTION, "We aimed to " + _join(aims) + "."]
