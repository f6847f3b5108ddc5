"""What the report says: every section built from a results folder as JSON-ready blocks.

:func:`build_context` reads the folder once and returns a dictionary that the
HTML templates (:mod:`phm_eval.report.render`) and the manuscript
(:mod:`phm_eval.report.manuscript`) both use, so the two never disagree about
the headline.  Every section is optional: a missing output becomes a visible
"not available in this run" note.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import outputs
from ..disclosure import DisclosurePolicy, apply_disclosure
from ..errors import InputError
from ..labels import des_explanation, humanise_text, label, words
from . import blocks as b
from .effects import (
    SCALE_NAMES,
    Effect,
    change_words,
    describe_headline,
    disclosed_count,
    fmt_number,
    fmt_ratio,
    fmt_signed,
    interval_words,
    not_estimable_text,
    outcome_without_unit,
    pick_headline,
    read_effects,
)
from .results import ResultsFolder

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "Population health management: evaluation report"


def _section(section_id: str, title: str, blocks: list[dict[str, Any]],
             intro: str | None = None, synthetic: bool = False) -> dict[str, Any]:
    available = b.has_content(blocks) or any(
        blk["kind"] in ("p", "callout", "list") for blk in blocks
    )
    return {
        "id": section_id,
        "title": title,
        "intro": intro,
        "blocks": blocks,
        "available": available,
        "synthetic": synthetic,
    }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _metric(value: Any) -> tuple[float, float | None, float | None] | None:
    """(estimate, low, high) of a metric; None when it is not a metric or not estimable."""
    if isinstance(value, Mapping) and "estimate" in value:
        est = value.get("estimate")
        if est is None:
            return None
        low, high = value.get("ci_low"), value.get("ci_high")
        return (float(est), None if low is None else float(low),
                None if high is None else float(high))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None, None
    return None


def _ci(low: float | None, high: float | None, digits: int = 3,
        note: str | None = None) -> str:
    if low is None or high is None:
        return not_estimable_text(note)
    return f"{fmt_signed(low, digits)} to {fmt_signed(high, digits)}"


# --------------------------------------------------------------------------- headline
def _overall(effects: list[Effect] | None) -> list[Effect]:
    return [e for e in (effects or []) if not e.subgroup]


def other_estimand(effects: list[Effect] | None, primary: Effect) -> Effect | None:
    """The leading record of the estimand the primary record does not answer, if any.

    A rate ratio of emergency admissions is preferred, then any estimable record."""
    others = [e for e in _overall(effects) if e.is_population != primary.is_population
              and e.estimand is not None]
    if not others:
        return None
    admissions = [e for e in others if e.scale == "RR" and "admission" in e.outcome.lower()]
    return next(iter(admissions or others))


def _estimate_line(effect: Effect) -> str:
    return f"{_capital(SCALE_NAMES[effect.scale])} {effect.estimate_text()}"


def _admissions_line(head: Any, effect: Effect) -> str | None:
    if head.change_per_1000 is None:
        return None
    est, low, high = head.change_per_1000
    text = (f"{_capital(change_words(est))} per 1,000 patients a year (95% CI "
            f"{interval_words(low, high)})")
    if head.reach:
        text += ". " + head.reach.rstrip(".")
    return text + "."


def _disagreement(primary: Effect, other: Effect, policy: DisclosurePolicy) -> str | None:
    """Why the two estimands can disagree, when their verdicts differ."""
    if primary.verdict == other.verdict or "not_estimable" in (primary.verdict, other.verdict):
        return None
    att, itt = (other, primary) if primary.is_population else (primary, other)
    enrolled = disclosed_count(att.n_treated, policy)
    eligible = disclosed_count(itt.n_treated, policy)
    who_att = f"the {enrolled} patients who were enrolled" if enrolled else "enrolled patients"
    who_itt = (f"all {eligible} eligible patients in the practices that offered it"
               if eligible else "everyone eligible in the practices that offered it")
    return (
        "The two estimates answer different questions about different people, so they can "
        f"disagree without either being wrong. The effect on the patients enrolled compares "
        f"{who_att} with similar patients who were not; the population estimate compares "
        f"{who_itt}, enrolled or not, with practices that had not started. Most eligible "
        "patients are never enrolled, so an effect on the enrolled is diluted across the whole "
        "population and the population estimate is less precise; it also includes any change "
        "in who is enrolled and any effect on patients not enrolled. The matched comparison "
        "rests on the comparators being like the enrolled in ways the data do not record; the "
        "population comparison does not, but assumes the practices would have followed "
        "parallel trends.")


def _design_check_power(targets: list[Mapping[str, Any]], true_rr: Any, mde_rr: Any) -> str:
    """Power and coverage at the effects the design check wrote in: the simulation's known
    truth when the data are synthetic (``true_rate_ratio``), otherwise each assumed effect
    it was checked at (real data have no known truth)."""
    def near(value: float) -> Mapping[str, Any] | None:
        at = min(targets, key=lambda t: abs(float(t["rate_ratio"]) - value))
        return at if abs(float(at["rate_ratio"]) - value) < 1e-6 else None

    def result(at: Mapping[str, Any]) -> str:
        out = (f"the evaluation detected the effect in {100 * float(at['power']):.0f}% of "
               "simulations (its power)")
        if at.get("coverage") is not None:
            out += (f", and {100 * float(at['coverage']):.0f}% of its 95% intervals contained "
                    "the effect written in")
        return out

    if true_rr is not None:
        at = near(float(true_rr))
        if at is None or at.get("power") is None:
            return ""
        return (f" At the rate ratio built into these synthetic data "
                f"({fmt_ratio(float(true_rr))}), {result(at)}.")
    parts = []
    for t in sorted(targets, key=lambda t: -float(t["rate_ratio"])):
        rr = float(t["rate_ratio"])
        if abs(rr - 1.0) < 1e-9 or t.get("power") is None:
            continue
        what = (f"the minimum detectable effect (a rate ratio of {fmt_ratio(rr)})"
                if mde_rr is not None and abs(rr - float(mde_rr)) < 1e-6
                else f"an assumed {round(100 * (1 - rr)):.0f}% reduction (a rate ratio of "
                     f"{fmt_ratio(rr)})")
        parts.append(f" At {what}, {result(t)}.")
    return "".join(parts)


def _design_block(check: Any, effect: Effect) -> Any:
    """The part of evaluate/design_check.json that checked ``effect``'s design: ``itt`` for the
    population-level estimate, the top level for the matched (enrolled) one."""
    if not isinstance(check, Mapping):
        return None
    return check.get("itt") if effect.is_population else check


def _checked_targets(check: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The injected rate ratios of one design's check that have a value."""
    return [t for t in check.get("targets") or [] if isinstance(t, Mapping)
            and t.get("rate_ratio") is not None]


def _design_check(check: Any, primary: Effect) -> list[dict[str, Any]]:
    """Plasmode power and coverage of one design, from its part of design_check.json."""
    if not isinstance(check, Mapping):
        return []
    targets = _checked_targets(check)
    if not targets:
        return []
    n_rep = check.get("n_replicates")
    reps = f"{int(n_rep):,} " if isinstance(n_rep, (int, float)) else ""
    true_rr = check.get("true_rate_ratio")
    blocks: list[dict[str, Any]] = []
    how = ("which units adopted when was re-drawn at random and a known effect was written "
           "into the eligible people's admissions after adoption" if primary.is_population else
           "which member of each matched set was enrolled was re-drawn at random and a known "
           "effect was written into the enrolled patients' admissions")
    text = (f"The design was checked by simulation (plasmode): in {reps}copies of these data, "
            f"{how}, and each copy was analysed exactly as the real data were.")
    text += _design_check_power(targets, true_rr, check.get("mde_rate_ratio"))
    null = next((t for t in targets if abs(float(t["rate_ratio"]) - 1.0) < 1e-9), None)
    if null is not None and null.get("power") is not None:
        # Power counts intervals wholly below 1: by chance that happens 2.5% of the time.
        text += (f" With no effect at all, it wrongly found a reduction in "
                 f"{100 * float(null['power']):.1f}% of simulations (2.5% is the aim).")
    blocks.append(b.paragraph(text))
    rows = []
    for t in targets:
        def pct(key: str, t: Mapping[str, Any] = t) -> str:
            value = t.get(key)
            if value is None:
                return ""
            # Below 1%, one decimal: the false-positive rate (0.5%) must not read as 0.
            return f"{100 * float(value):.1f}" if 0 < float(value) < 0.01 else \
                f"{100 * float(value):.0f}"
        se = t.get("mc_se_power")
        rows.append([fmt_ratio(float(t["rate_ratio"])), pct("power"),
                     "" if se is None else f"{100 * float(se):.1f}", pct("coverage"),
                     "" if t.get("bias_log") is None else f"{float(t['bias_log']):.3f}"])
    blocks.append(b.details("The design check in numbers", [b.table(
        "Power and interval coverage of the evaluation in plasmode simulations.",
        ["True rate ratio", "Power (per cent)", "Simulation error of power (per cent)",
         "Coverage of 95% intervals (per cent)", "Bias (log rate ratio)"], rows,
        source=outputs.DESIGN_CHECK,
        notes=["Power at a rate ratio of 1 is the false-positive rate."])]))
    return blocks


def headline_section(results: ResultsFolder, effects: list[Effect] | None,
                     config: Mapping[str, Any], policy: DisclosurePolicy
                     ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The lead message and its wording (also returned on its own for the manuscript).

    The first screen holds the primary estimate with its interval, what the design could
    detect (the minimum detectable effect) and what the result means in admissions and
    pounds; then the other estimand, and why the two may differ.
    """
    effect = pick_headline(effects or [])
    if effect is None:
        blocks = [b.missing("The estimated effect of the programme", [outputs.EFFECTS])]
        return _section("headline", "What the programme changed", blocks), None
    unit_cost = (config.get("report") or {}).get("unit_cost_emergency_admission")
    head = describe_headline(effect, unit_cost=unit_cost, policy=policy)
    tone = {"reduction": "good", "increase": "warning", "no_evidence": "neutral",
            "not_estimable": "warning"}[head.verdict]
    primary_label = ("Primary estimate: " + effect.estimand_label.lower()
                     if effect.estimand else humanise_text(effect.label or "") or None)
    blocks = [
        {"kind": "headline", "title": head.title, "text": head.sentence, "tone": tone,
         "label": primary_label},
    ]
    key = [("Primary estimate", _estimate_line(effect)),
           ("Minimum detectable effect", head.power)]
    admissions = _admissions_line(head, effect)
    if admissions:
        key.append(("In emergency admissions", admissions))
    if head.money:
        key.append(("In pounds", head.money))
    check = results.json(outputs.DESIGN_CHECK) if results.has(
        outputs.DESIGN_CHECK) else None
    blocks.append(b.facts(key))
    blocks.append(b.paragraph(f"How this was estimated: {head.estimate}"))
    if head.conversion:
        blocks.append(b.paragraph(head.conversion))
    if head.verdict == "no_evidence":
        span = ""
        if head.change_per_1000 is not None:
            span = (" Anything from " + interval_words(*head.change_per_1000[1:])
                    + " per 1,000 patients a year is consistent with the data.")
        blocks.append(b.paragraph(
            "A result like this does not prove the programme has no effect: this evaluation "
            f"cannot tell any effect apart from chance.{span} Other benefits the programme may "
            "bring (patient experience, care planning) are not measured here."))
    blocks.extend(_design_check(_design_block(check, effect), effect))
    other = other_estimand(effects, effect)
    if other is not None:
        other_head = describe_headline(other, unit_cost=unit_cost, policy=policy)
        text = other_head.sentence
        if other_head.verdict not in ("no_evidence", "not_estimable"):
            text += " " + other_head.power
        if other.estimable:
            text += f" ({_estimate_line(other)}.)"
        other_check = _design_block(check, other)
        if isinstance(other_check, Mapping):
            text += _design_check_power(_checked_targets(other_check),
                                        other_check.get("true_rate_ratio"),
                                        other_check.get("mde_rate_ratio"))
        blocks.append(b.callout(
            text, tone="note",
            title=f"The other question: {other.estimand_label.lower()}"))
        why = _disagreement(effect, other, policy)
        if why:
            blocks.append(b.paragraph(why))
    elif effect.estimand:
        missing = "ITT population" if not effect.is_population else "ATT enrolled"
        blocks.append(b.paragraph(
            f"{label('estimand', missing)}: not estimated in this run."))
    wording = head.to_dict()
    wording["other_estimand"] = other.to_dict() if other is not None else None
    return _section("headline", "What the programme changed", blocks), wording


# --------------------------------------------------------------------------- robustness
def _rtm_changes(rtm: pd.DataFrame | None, effects: list[Effect] | None
                 ) -> tuple[tuple[float, float | None, float | None] | None, ...]:
    """(uncontrolled, comparators, controlled) changes per 1,000 a year, each (estimate, low,
    high) or None.

    ``evaluate/rtm.csv`` has one row per arm (``arm``: enrolled, matched comparators) with its
    rates before and after the index date; the controlled change is then the matched
    difference-in-differences record of ``effects.json``.  Older tables have a ``kind`` column
    (naive, comparators, controlled) with the three changes as rows.
    """
    none: tuple[None, None, None] = (None, None, None)
    if rtm is None or "change_per_1000" not in rtm.columns:
        return none

    def row_change(rows: pd.DataFrame) -> tuple[float, float | None, float | None] | None:
        if rows.empty:
            return None
        row = rows.iloc[0]
        values = [pd.to_numeric(pd.Series([row.get(k)]), errors="coerce").iloc[0]
                  for k in ("change_per_1000", "ci_low", "ci_high")]
        if pd.isna(values[0]):
            return None
        return (float(values[0]), *(None if pd.isna(v) else float(v) for v in values[1:]))

    if "kind" in rtm.columns:
        kinds = rtm["kind"].astype(str).str.lower()
        return (row_change(rtm[kinds == "naive"]), row_change(rtm[kinds == "comparators"]),
                row_change(rtm[kinds == "controlled"]))
    if "arm" not in rtm.columns:
        return none
    arms = rtm["arm"].astype(str).str.lower()
    naive = row_change(rtm[arms == "enrolled"])
    comp = row_change(rtm[arms.str.contains("comparator")])
    ctrl = None
    for e in _overall(effects):
        if (not e.is_population and e.scale in ("difference", "ATT") and e.estimable
                and "naive" not in e.method.lower()):
            ctrl = e.change_per_1000()
            break
    return naive, comp, ctrl


def _rtm_paragraphs(rtm: pd.DataFrame | None,
                    effects: list[Effect] | None = None) -> list[dict[str, Any]]:
    naive, comp, ctrl = _rtm_changes(rtm, effects)
    text = []
    if naive is not None:
        text.append(
            "Comparing enrolled patients' admissions before and after enrolment, with no "
            f"comparison group, shows {change_words(naive[0])} emergency admissions per 1,000 "
            "patients a year.")
    if comp is not None:
        text.append(
            f"Matched patients who were not enrolled had {change_words(comp[0])} per 1,000 a "
            "year over the same months. Patients picked because they were recently unwell tend "
            "to be admitted less later anyway (regression to the mean), so an uncontrolled "
            "before-and-after comparison overstates what a programme achieves.")
    if ctrl is not None:
        ci = (f" (95% CI {interval_words(ctrl[1], ctrl[2])})"
              if ctrl[1] is not None and ctrl[2] is not None else "")
        text.append(f"The controlled estimate, which removes this, is {change_words(ctrl[0])} "
                    f"per 1,000 a year{ci}.")
        if naive is not None and naive[0] < 0 and ctrl[0] < 0 and naive[0] / ctrl[0] >= 1.5:
            text.append(f"The uncontrolled comparison would have overstated the effect about "
                        f"{naive[0] / ctrl[0]:.0f}-fold.")
        elif naive is not None and naive[0] < 0 <= ctrl[0]:
            text.append("The apparent fall disappears once patients are compared with similar "
                        "patients who were not enrolled.")
    return [b.paragraph(" ".join(text))] if text else []


#: Caption of ``evaluate/rtm.csv`` in the report and the manuscript.
RTM_CAPTION = ("Emergency admissions per 1,000 patients a year before and after the index date: "
               "enrolled patients and matched comparators.")


def pretrend_note_words(note: Any, n_clusters: Any = None) -> str:
    """Why the pre-trend test could not be made, in words a commissioner can follow (the
    statistical reason kept in brackets)."""
    text = str(note).removeprefix("not estimable: ").strip().rstrip(".")
    if "singular covariance" in text:
        units = (f"only {int(n_clusters)} units to compare"
                 if isinstance(n_clusters, (int, float)) and not isinstance(n_clusters, bool)
                 else "too few units to compare")
        return (f"with {units}, the months before adoption cannot all be tested together "
                f"(statistically: {text})")
    if "no pre-adoption months" in text:
        return "no months before adoption were observed, so there is nothing to compare"
    return text


def _pretrend_block(pretrend: Any) -> dict[str, Any] | None:
    """The test of parallel pre-trends, worded by what it can show: the population-level
    design's test is evidence (nothing there is matched on the outcome); the matched design's
    is not, since comparators were matched on prior admissions (``informative: false``)."""
    if not isinstance(pretrend, Mapping):
        return None
    if pretrend.get("informative") is False:
        return b.callout(
            "For the comparison of enrolled patients with matched comparators, the test of "
            "trends before enrolment is not evidence either way: comparators were matched on "
            "their emergency admissions in the year before enrolment, so their trends before "
            "it agree by construction. The population-level analysis, where nothing is "
            "matched on admissions, is where this check can fail.",
            tone="note", title="Trends before enrolment (matched comparison)")
    if pretrend.get("p_value") is None:
        note = pretrend.get("note")
        if not note:
            return None
        return b.callout(f"The test of parallel pre-trends could not be made: "
                         f"{pretrend_note_words(note, pretrend.get('n_clusters'))}.",
                         tone="note", title="Parallel trends check")
    p = float(pretrend["p_value"])
    stat = pretrend.get("statistic")
    df = pretrend.get("df")
    detail = f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"
    if stat is not None and df is not None:
        if pretrend.get("df_denominator") is not None:
            detail = (f"F = {float(stat):.2f} on {int(df)} and "
                      f"{int(pretrend['df_denominator'])} degrees of freedom, {detail}")
        else:
            detail = f"chi-squared {float(stat):.2f} on {int(df)} degrees of freedom, {detail}"
    if p >= 0.05:
        return b.callout(
            "Before the programme started, admissions among the patients and areas it later "
            f"reached followed the same trend as among the comparisons (test of parallel "
            f"pre-trends: {detail}). This supports, but cannot prove, the assumption the "
            "controlled estimate rests on.", tone="note", title="Parallel trends check")
    return b.callout(
        "Admissions among the patients and areas the programme later reached were already "
        f"moving differently from the comparisons before it started (test of parallel "
        f"pre-trends: {detail}). The controlled estimate may be biased: read it with caution.",
        tone="warning", title="Parallel trends check failed")


def robustness_section(results: ResultsFolder, effects: list[Effect] | None,
                       policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    rtm = results.csv(outputs.RTM)
    blocks += _rtm_paragraphs(rtm, effects)
    for source in (outputs.ITT_PRETREND, outputs.PRETREND):
        pre = _pretrend_block(results.json(source))
        if pre is not None:
            blocks.append(pre)
    if results.has(outputs.ITT_EVENT_STUDY_PNG):
        blocks.append(b.figure(results, outputs.ITT_EVENT_STUDY_PNG,
                               "Population-level event study: emergency admissions in the "
                               "eligible population by month since the unit adopted the "
                               "programme, against comparison units."))
    blocks.append(b.figure(results, outputs.RTM_PNG))
    blocks.append(b.table_from_csv(
        results, outputs.RTM,
        RTM_CAPTION, policy, drop=("kind",)))
    overall = _overall(effects)
    if overall:
        shared = _shared_power(overall)
        rows = [[label("outcome", outcome_without_unit(e.outcome)), e.estimand_label,
                 _capital(e.method_words()),
                 _capital(SCALE_NAMES[e.scale]), e.estimate_text(with_reason=False),
                 e.short_words(power=e.power_words() != shared)]
                for e in overall]
        blocks.append(b.table(
            "The same questions answered by different methods.",
            ["Outcome", "Question", "Method", "Scale", "Estimate (95% CI)", "In words"], rows,
            source=outputs.EFFECTS,
            notes=["Ratios below 1 and negative differences mean fewer admissions. Hazard "
                   "ratios from time-to-first-admission models are usually closer to 1 than "
                   "rate ratios of all admissions.", *_power_note(shared),
                   *_method_notes(overall)],
        ))
        blocks.append(b.details("The methods as the run recorded them (for reviewers)", [
            b.table("Each estimate's method, standard errors and any change from the plan, "
                    "exactly as recorded by the run.",
                    ["Outcome", "Question", "Method as recorded", "Standard errors",
                     "Why the planned method was not used"],
                    methods_record_rows(effects or []), source=outputs.EFFECTS)]))
    else:
        blocks.append(b.missing("Estimates from other methods", [outputs.EFFECTS]))
    blocks.append(b.figure(results, outputs.EVENT_STUDY_PNG))
    blocks.append(b.figure(results, outputs.KM_PNG))
    blocks.append(b.figure(results, outputs.CIF_PNG))
    balance_notes = ["Standardised mean differences (SMD) below 0.1 are usually taken to show "
                     "good balance."]
    blocks.append(b.details("How alike were the enrolled patients and their comparators?", [
        b.figure(results, outputs.LOVE_PLOT_PNG),
        b.table_from_csv(results, outputs.BALANCE,
                         "Balance of characteristics before and after matching.", policy,
                         notes=balance_notes, frame=_balance_frame(results)),
    ]))
    return _section(
        "robustness", "How sure can we be?", blocks,
        intro="Whether the headline survives other ways of asking the question, and whether "
        "the comparison is fair.")


def _balance_frame(results: ResultsFolder) -> pd.DataFrame | None:
    """The balance table as readers need it: each characteristic, its means and SMDs."""
    balance = results.csv(outputs.BALANCE)
    if balance is None:
        return None
    wanted = ["term", "covariate", "mean_treated_before", "mean_control_before", "smd_before",
              "mean_treated_after", "mean_control_after", "smd_after"]
    keep = [c for c in wanted if c in balance.columns]
    frame = (balance[keep] if keep else balance).copy()
    for column in frame.columns[1:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.notna().any():
            frame[column] = [("" if pd.isna(v) else f"{0.0 if abs(v) < 5e-4 else v:.3f}")
                             for v in values]
    return frame


# --------------------------------------------------------------------------- subgroups
def subgroup_section(results: ResultsFolder, effects: list[Effect] | None,
                     policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [b.figure(results, outputs.FOREST_PNG)]
    groups = [e for e in (effects or []) if e.subgroup]
    if groups:
        rows = []
        shared = _shared_power(groups)
        for e in groups:
            rows.append([label("subgroup", e.subgroup),
                         f"{SCALE_NAMES[e.scale]} {e.estimate_text()}",
                         _capital(e.method_words()),
                         e.short_words(power=e.power_words() != shared),
                         disclosed_count(e.n_treated, policy) or "*"])
        blocks.append(b.table(
            "Effect on emergency admissions by subgroup.",
            ["Subgroup", "Estimate (95% CI)", "Method", "In words", "Enrolled patients"], rows,
            source=outputs.EFFECTS,
            notes=["Subgroups are smaller than the whole, so their intervals are wider; a "
                   "difference between subgroups needs its own test before it is acted on.",
                   *_power_note(shared), *_method_notes(groups)],
        ))
    else:
        blocks.append(b.missing("Effects by subgroup", [outputs.EFFECTS]))
    blocks.extend(reach_blocks(results, policy))
    return _section("who-benefits", "Who benefits?", blocks,
                    intro="Whether the effect differs between groups of patients, and whether "
                    "the programme reaches the groups that NHS England's Core20PLUS5 approach "
                    "prioritises.")


CORE20_NOTE = ("Core20: people living in the most deprived 20% of neighbourhoods in England "
               "(IMD deciles 1-2). PLUS groups are chosen locally; groups overlap, so shares do "
               "not add up to 100%.")

#: The reach table written by the segment stage (see
#: :func:`phm_eval.segment.core20plus5.reach_table`).
REACH = outputs.CORE20PLUS5_REACH


def reach_blocks(results: ResultsFolder, policy: DisclosurePolicy) -> list[dict[str, Any]]:
    """Core20PLUS5: who the programme reached, against who was eligible.

    From ``segment/core20plus5_reach.csv`` (each group's share of the eligible and of the
    enrolled, and its enrolment rate, all from disclosed counts) when the run wrote it;
    otherwise the registered population's Core20PLUS5 breakdown, with a note that the
    enrolment column is missing.
    """
    caption = "Core20PLUS5: reach of the programme in groups facing health inequalities."
    if results.has(REACH):
        reach = results.csv(REACH)
        blocks = []
        words_ = _reach_words(reach)
        if words_:
            blocks.append(b.paragraph(words_))
        shown, none_eligible = _reach_applicable(reach)
        notes = [CORE20_NOTE, "Shares and the enrolment rate are computed from the "
                 "disclosure-controlled counts shown. A group whose share of the enrolled is "
                 "larger than its share of the eligible is reached more than average."]
        if none_eligible:
            notes.append("Not applicable, because nobody eligible for the programme was in "
                         "the group, so it cannot reach them (not shown): "
                         + "; ".join(none_eligible) + ".")
        blocks.append(b.table_from_csv(
            results, REACH, caption, policy,
            drop=("kind", "group", "total_eligible", "total_enrolled"),
            notes=notes, frame=shown))
        return blocks
    results.path(REACH)  # recorded as missing
    frame = results.csv(outputs.CORE20PLUS5)
    if frame is not None:
        keep = [c for c in ("row", "group", "denominator", "n_patients", "percent_of_population",
                            "n_registered", "n_enrolled", "enrolled_per_1000",
                            "rate_per_1000") if c in frame.columns]
        if "row" in keep and "group" in keep:
            keep.remove("group")
        frame = frame[keep]
    enrolled = frame is not None and "n_enrolled" in frame.columns
    notes = [CORE20_NOTE]
    if not enrolled:
        notes.append("Enrolment by group was not available in this run, so this table shows "
                     "the registered population only; how far the programme reached each group "
                     f"needs {REACH}.")
    return [b.table_from_csv(
        results, outputs.CORE20PLUS5,
        caption if enrolled else "Core20PLUS5 groups in the registered population.", policy,
        notes=notes, frame=frame)]


def _reach_applicable(reach: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list[str]]:
    """The reach table without the groups nobody eligible was in (a true 0 eligible, not a
    suppressed small count), and those groups' names: a programme cannot reach a group it is
    not for (children's clinical areas under an adults-only eligibility)."""
    if reach is None or not {"row", "n_eligible"} <= set(reach.columns):
        return reach, []
    none = reach["n_eligible"].astype(str).str.strip().isin(["0", "0.0"])
    return reach[~none].reset_index(drop=True), [label("core20", r) for r in reach.loc[none, "row"]]


def _reach_words(reach: pd.DataFrame | None) -> str | None:
    """One sentence on the Core20 row: its share of the eligible and of the enrolled."""
    if reach is None or "row" not in reach.columns:
        return None
    rows = reach[reach["row"] == "core20:core20"]
    if rows.empty or not {"share_of_eligible_percent", "share_of_enrolled_percent"} <= set(
            reach.columns):
        return None
    row = rows.iloc[0]
    elig = pd.to_numeric(pd.Series([row["share_of_eligible_percent"]]), errors="coerce").iloc[0]
    enr = pd.to_numeric(pd.Series([row["share_of_enrolled_percent"]]), errors="coerce").iloc[0]
    if pd.isna(elig) or pd.isna(enr):
        return None
    how = ("more than their share" if enr > elig + 1 else "less than their share"
           if enr < elig - 1 else "about their share")
    return (f"People in the most deprived 20% of neighbourhoods (Core20) were {elig:.0f}% of "
            f"those eligible and {enr:.0f}% of those enrolled: the programme reached {how}.")


# --------------------------------------------------------------------------- population
def population_section(results: ResultsFolder, policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for figure, table, caption in (
        (outputs.POPULATION_PYRAMID_PNG, outputs.POPULATION_PYRAMID,
         "Registered patients by age band and sex."),
        (outputs.LTC_PREVALENCE_PNG, outputs.LTC_PREVALENCE,
         "Recorded prevalence of long-term conditions."),
        (outputs.EMERGENCY_ADMISSION_RATES_PNG, outputs.EMERGENCY_ADMISSION_RATES,
         "Emergency admissions per 1,000 person-years."),
    ):
        blocks.append(b.figure(results, figure))
        tbl = b.table_from_csv(results, table, caption, policy)
        blocks.append(b.details(f"Table: {caption.rstrip('.').lower()}", [tbl]))
    blocks.append(b.figure(results, outputs.EFI_DISTRIBUTION_PNG))
    blocks.append(b.table_from_csv(
        results, outputs.EFI_SUMMARY,
        "Electronic Frailty Index categories, people aged 65 and over.", policy,
        notes=["eFI categories (Clegg et al. 2016): fit up to 0.12, mild over 0.12 to 0.24, "
               "moderate over 0.24 to 0.36, severe over 0.36."]))
    return _section("population", "The population", blocks,
                    intro="Who is registered, which long-term conditions are recorded, how "
                    "frail the older population is, and how often people are admitted as an "
                    "emergency.")


# --------------------------------------------------------------------------- risk model
METRIC_LABELS = {
    "c_statistic": "c-statistic (discrimination)",
    "c_statistic_delong": "c-statistic, DeLong interval",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept (slope estimated)",
    "calibration_in_the_large": "Calibration-in-the-large (slope fixed at 1)",
    "oe_ratio": "Observed/expected ratio",
    "brier": "Brier score",
    "r2_nagelkerke": "Nagelkerke R\u00b2",
}


METRIC_DIGITS = {"c_statistic": 3, "c_statistic_delong": 3, "brier": 4}


def _is_count(key: str) -> bool:
    """Sample sizes in risk/metrics.json (``n``, ``events``, ``n_development``...): quoted as
    disclosed counts in words, never as metrics in the table."""
    return key in ("n", "events") or key.startswith(("n_", "events_"))


def risk_section(results: ResultsFolder, policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    metrics = results.json(outputs.RISK_METRICS)
    if isinstance(metrics, Mapping) and metrics:
        found = {k: m for k, v in metrics.items() if (m := _metric(v)) is not None
                 and not _is_count(k)}
        words = []
        if isinstance(metrics.get("outcome"), str):
            words.append(f"The model predicts {metrics['outcome']}.")
        if isinstance(metrics.get("design"), str):
            dev, val = metrics.get("development_index_date"), metrics.get(
                "validation_index_date")
            dates = (f" (developed on patients registered on {dev} and tested on those "
                     f"registered on {val})" if dev and val else "")
            words.append(f"The model was checked by {metrics['design']}{dates}.")
        n = disclosed_count(_num(metrics.get("n")), policy)
        events = disclosed_count(_num(metrics.get("events")), policy)
        if n and events:
            words.append(f"The check used {n} patients, {events} of whom had the outcome.")
        c = found.get("c_statistic")
        if c is not None:
            words.append(
                "Given one patient who was admitted and one who was not, the model gives the "
                f"admitted patient the higher risk {c[0] * 100:.0f}% of the time (c-statistic "
                f"{c[0]:.3f}, 95% CI {_ci(c[1], c[2])}; 0.5 is chance, 1 is perfect; published "
                "admission-risk models reach about 0.70 to 0.80).")
        slope = found.get("calibration_slope")
        if slope is not None:
            words.append(_slope_words(*slope))
        oe = found.get("oe_ratio")
        if oe is not None:
            words.append(_oe_words(*oe))
        if words:
            blocks.append(b.paragraph(" ".join(words)))
        iecv = metrics.get("internal_external")
        if isinstance(iecv, Mapping):
            blocks.append(b.paragraph(_iecv_words(iecv)))
        rows = []
        for key, value in metrics.items():
            if _is_count(key):
                continue
            label = METRIC_LABELS.get(key, b.column_label(key))
            if key in found:
                est, low, high = found[key]
                digits = METRIC_DIGITS.get(key, 2)
                note = value.get("note") if isinstance(value, Mapping) else None
                rows.append([label, fmt_signed(est, digits), _ci(low, high, digits, note)])
            elif isinstance(value, Mapping) and "estimate" in value:  # null: not estimable
                rows.append([label, not_estimable_text(value.get("note")), ""])
        if rows:
            blocks.append(b.table("Performance of the admission risk model.",
                                  ["Measure", "Estimate", "95% CI"], rows,
                                  source=outputs.RISK_METRICS))
    else:
        blocks.append(b.missing("Risk model performance", [outputs.RISK_METRICS]))
    blocks.append(b.figure(results, outputs.ROC_PNG))
    blocks.append(b.figure(results, outputs.CALIBRATION_PNG))
    blocks.append(b.figure(results, outputs.DECISION_CURVE_PNG))
    blocks.append(b.table_from_csv(
        results, outputs.RISK_SUBGROUP_METRICS,
        risk_subgroup_caption(results.csv(outputs.RISK_SUBGROUP_METRICS)), policy,
        notes=["Lower c-statistics within age bands are expected: age itself separates "
               "patients less well inside a narrow band."]))
    card = results.text(outputs.MODEL_CARD)
    if card is not None:
        blocks.append(b.details("The model card", [_model_card_block(results, card)]))
    return _section("risk-model", "Finding the patients at risk", blocks,
                    intro="How well the risk model used to find patients for proactive care "
                    "picks out those who go on to have an emergency admission.")


def risk_subgroup_caption(frame: pd.DataFrame | None) -> str:
    """"Risk model performance by sex, age band, ethnic group and deprivation.": the groups the
    table holds, in words."""
    column = next((c for c in ("variable", "subgroup") if frame is not None
                   and c in frame.columns), None)
    if column is None:
        return "Risk model performance by group of patients."
    names = [label("subgroup_variable", v).lower() for v in dict.fromkeys(
        frame[column].astype(str))]
    names = [n.replace(" (imd)", "") for n in names]
    names = list(dict.fromkeys(names))
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Risk model performance by {joined}."


def _model_card_block(results: ResultsFolder, card: str) -> dict[str, Any]:
    """The model card as HTML, its figures embedded, predictor names in words."""
    from ..risk.model_card import model_card_html

    fragment = model_card_html(card, image_dir=results.root / "risk", embed=True, heading_offset=2)
    # Text between tags only: attributes (data URIs, alt text) are left as written.
    fragment = re.sub(r">([^<]+)<", lambda m: ">" + humanise_text(m.group(1)) + "<", fragment)
    # Every table gets a caption (the heading it sits under), as the report's own tables do.
    parts = re.split(r"(<table>)", fragment)
    heading = "Model card"
    out = []
    for part in parts:
        if part == "<table>":
            out.append(f"<table><caption>Model card: {heading}</caption>")
            continue
        found = re.findall(r"<h\d>(.*?)</h\d>", part)
        if found:
            heading = re.sub(r"<[^>]+>", "", found[-1])
        out.append(part)
    return b.html_fragment("".join(out), "Model card")


def _iecv_words(iecv: Mapping[str, Any]) -> str:
    """Internal-external cross-validation in words: unit used, summary, and any fallback."""
    unit = {"pcn_id": "PCN", "practice_id": "practice"}
    cluster = iecv.get("cluster")
    text = []
    meta = iecv.get("random_effects_c_statistic")
    if cluster and isinstance(meta, Mapping) and meta.get("c_statistic") is not None:
        k = meta.get("k")
        prediction = _ci(_num(meta.get("prediction_lower")), _num(meta.get("prediction_upper")),
                         3, meta.get("prediction_note"))
        text.append(
            f"Leaving out one {unit.get(cluster, cluster)} at a time (internal-external "
            f"validation{f', {k} clusters' if k else ''}), the summary c-statistic was "
            f"{float(meta['c_statistic']):.3f} (95% CI "
            f"{_ci(_num(meta.get('lower')), _num(meta.get('upper')))}; 95% prediction interval "
            f"{prediction}).")
    elif not cluster:
        text.append("Internal-external validation was not run.")
    note = iecv.get("note")
    if note:
        text.append(_capital(humanise_text(str(note)).rstrip(".")) + ".")
    return " ".join(text)


def _shared_power(effects: list[Effect]) -> str | None:
    """The power statement said once for a table: the one shared by its rows without clear
    evidence of a change, when more than one row has it (each row's own is shown in the row
    otherwise)."""
    counts: dict[str, int] = {}
    for e in effects:
        if e.verdict == "no_evidence":
            counts[e.power_words()] = counts.get(e.power_words(), 0) + 1
    shared = max(counts, key=lambda k: counts[k], default=None)
    return shared if shared is not None and counts[shared] > 1 else None


def _power_note(shared: str | None) -> list[str]:
    """The table note that carries the power statement of the rows without it."""
    return [f"No clear evidence of a change: {shared}."] if shared else []


def methods_record_rows(effects: list[Effect]) -> list[list[str]]:
    """One row per estimate with its method exactly as recorded, for reviewers."""
    rows = []
    for e in effects:
        what = label("outcome", outcome_without_unit(e.outcome))
        if e.subgroup:
            what += f" ({label('subgroup', e.subgroup)})"
        rows.append([what, e.estimand_label, _capital(e.method),
                     _capital(e.se_method) if e.se_method else "Not recorded",
                     _capital(e.fallback) if e.fallback else "Not applicable: as planned"])
    return rows


def _method_notes(effects: list[Effect]) -> list[str]:
    """Table notes for estimates made by a fallback method or not made at all."""
    notes = []
    if any(e.fallback for e in effects):
        notes.append("Not the planned method: where the planned method could not be used, "
                     "the method actually used is described, with the reason; the methods as "
                     "the run recorded them are in the table for reviewers.")
    if any(not e.estimable for e in effects):
        notes.append("Not estimable: the data could not support this estimate; the reason is "
                     "given instead of a number.")
    return notes


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _slope_words(est: float, low: float | None, high: float | None) -> str:
    ci = f", 95% CI {_ci(low, high, 2)}" if low is not None and high is not None else ""
    text = f"The calibration slope is {est:.2f}{ci} (1 is ideal"
    if low is not None and high is not None and low <= 1 <= high:
        return text + "): predicted risks are about as spread out as observed risks."
    if est < 1:
        return text + "): predictions are too extreme, high risks too high and low too low."
    return text + "): predictions are too cautious, bunched towards the average."


def _oe_words(est: float, low: float | None, high: float | None) -> str:
    ci = f", 95% CI {_ci(low, high, 2)}" if low is not None and high is not None else ""
    text = f"Observed admissions were {est:.2f} times those expected{ci}"
    if low is not None and high is not None and low <= 1 <= high:
        return text + ": the model predicts the overall number of admissions well."
    if est > 1:
        return text + ": the model under-predicts the number of admissions."
    return text + ": the model over-predicts the number of admissions."


# --------------------------------------------------------------------------- segmentation, DES
def segmentation_section(results: ResultsFolder, policy: DisclosurePolicy) -> dict[str, Any]:
    blocks = [
        b.paragraph("The 3x3 grid groups patients by stage of life (rows) and by need "
                    "(columns): generally well, living with long-term conditions, or with "
                    "complex needs such as frailty. Each cell calls for a different kind of "
                    "care; the complex-needs column is the small group proactive care is "
                    "meant for."),
        b.figure(results, outputs.GRID_3X3_PNG),
        b.table_from_csv(results, outputs.GRID_3X3,
                         "Registered patients in each cell of the 3x3 segmentation grid.",
                         policy, drop=("group",)),
    ]
    section = _section("segmentation", "Segmenting the population", blocks)
    section["available"] = b.has_content(blocks)
    return section


def _rate_column(frame: pd.DataFrame) -> str | None:
    return next((c for c in ("per_1000", "rate_per_1000") if c in frame.columns), None)


def _target_status(row: pd.Series, rate: str = "per_1000") -> str:
    value = pd.to_numeric(pd.Series([row.get(rate)]), errors="coerce").iloc[0]
    low = pd.to_numeric(pd.Series([row.get("target_low")]), errors="coerce").iloc[0]
    high = pd.to_numeric(pd.Series([row.get("target_high")]), errors="coerce").iloc[0]
    if pd.isna(value) or (pd.isna(low) and pd.isna(high)):
        return "No target"
    if not pd.isna(low) and value < low:
        return "Below target"
    if not pd.isna(high) and value > high:
        return "Above target range"
    return "Meets target" if pd.isna(high) else "Within target range"


def _activity_column(frame: pd.DataFrame) -> str:
    return next((c for c in ("activity", "metric") if c in frame.columns), frame.columns[0])


def des_section(results: ResultsFolder, policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [b.figure(results, outputs.DES_FUNNEL_PNG)]
    des = results.csv(outputs.DES_METRICS)
    frame = None
    rate = None if des is None else _rate_column(des)
    if des is not None and rate is not None and (
        "target_low" in des.columns or "target_high" in des.columns
    ):
        frame = des.drop(columns=[c for c in ("target_status", "period_start", "period_end")
                                  if c in des.columns])
        if "complete_year" in frame.columns:
            frame["complete_year"] = frame["complete_year"].map(
                lambda v: "Yes" if str(v).lower() == "true" else "No, part year"
                if str(v).lower() == "false" else v)
        frame["against target"] = [_target_status(r, rate) for _, r in des.iterrows()]
        activity = _activity_column(frame)
        below = frame[frame["against target"] == "Below target"]
        if not below.empty:
            names = sorted({label("des_activity", a) for a in below[activity]})
            blocks.insert(0, b.paragraph(
                "Below the Network Contract DES target in at least one year: "
                + "; ".join(names) + "."))
        else:
            blocks.insert(0, b.paragraph("Every measured DES activity meets its target."))
    if des is not None:
        activity = _activity_column(des)
        explained = [text for a in dict.fromkeys(des[activity])
                     if (text := des_explanation(a)) is not None]
        if explained:
            blocks.insert(0, b.bullet_list(explained))
            blocks.insert(0, b.paragraph(
                "The Network Contract Directed Enhanced Service (DES) pays Primary Care "
                "Networks for personalised care. The activities counted here are:"))
    blocks.append(b.table_from_csv(
        results, outputs.DES_METRICS,
        "Network Contract DES personalised-care activity against targets.", policy,
        notes=["Targets per 1,000 registered patients from the Network Contract DES "
               "personalised care specification."], frame=frame))
    return _section("des", "Personalised care against DES targets", blocks)


# --------------------------------------------------------------------------- data quality
def data_quality_section(results: ResultsFolder, policy: DisclosurePolicy) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    flow = results.csv(outputs.FLOW)
    if flow is not None:
        if "n" not in flow.columns:
            raise InputError(str(results.root / outputs.FLOW), "needs a column 'n'")
        true = flow.copy()
        true["n"] = pd.to_numeric(true["n"], errors="coerce")
        if true["n"].isna().any():
            raise InputError(str(results.root / outputs.FLOW), "column 'n' must be numbers",
                             column="n")
        disclosed = apply_disclosure(true, policy, count_cols=["n"]).formatted()
        rows = []
        for _, row in disclosed.iterrows():
            n = row["n"]
            rows.append([row.get("table", ""), row.get("step", ""),
                         flow_reason_words(row.get("reason", "")),
                         n if n == policy.marker else f"{int(float(n)):,}"])
        blocks.append(b.paragraph(
            "Every input file was checked against the data contract before analysis. Records "
            "that were valid but outside the study (for example, registered only after it "
            "ended) were set aside and counted here, never dropped silently."))
        blocks.append(b.table(
            "Records read, excluded and kept, by input file.",
            ["Input", "Step", "Reason", "Records"], rows, source=outputs.FLOW,
            notes=[f"Disclosure control: {policy.describe()}"]))
    else:
        blocks.append(b.missing("Flow of records through the analysis", [outputs.FLOW]))
    blocks.extend(_normalised_quirks(results, policy))
    return _section("data-quality", "Data quality", blocks)


def flow_reason_words(reason: object) -> str:
    """A reason of the ingest flow table as a reader sees it: column names in words and, as
    every reason in the table, a capital first letter (the ingest writes some reasons
    starting with a column name, which words would capitalise, and others in lower case)."""
    return _capital(humanise_text(str(reason or "")).strip())


def _normalised_quirks(results: ResultsFolder, policy: DisclosurePolicy) -> list[dict[str, Any]]:
    """The export quirks normalised on reading (data/data_quality.csv), counts disclosed and
    without the example values (they are patients' data)."""
    quality = results.csv(outputs.DATA_QUALITY)
    if quality is None:
        return []
    if quality.empty:
        return [b.paragraph("The extracts needed no normalisation: every value was written "
                            "as the data contract asks.")]
    counts = quality[["file", "column", "quirk", "rows_affected", "action"]].copy()
    counts["rows_affected"] = pd.to_numeric(counts["rows_affected"], errors="coerce")
    shown = apply_disclosure(counts, policy, count_cols=["rows_affected"]).formatted()
    rows = []
    for _, row in shown.iterrows():
        n = row["rows_affected"]
        column = "" if str(row["column"]).startswith("(") else label("covariate", row["column"])
        rows.append([row["file"], column, humanise_text(str(row["quirk"])),
                     n if n == policy.marker else f"{int(float(n)):,}", row["action"]])
    return [
        b.paragraph("Values written the way warehouse exports write them, but unambiguous, "
                    "were normalised on reading and counted here (nothing was dropped); "
                    "ambiguous values would have stopped the run with a message."),
        b.table("Export quirks normalised on reading, by file and column.",
                ["File", "Column", "What was found", "Rows", "What was done"], rows,
                source=outputs.DATA_QUALITY,
                notes=[f"Disclosure control: {policy.describe()}"]),
    ]


def completeness_block(results: ResultsFolder) -> dict[str, Any]:
    gaps = [m for m in results.missing if not m.startswith(f"{outputs.SYNTHETIC_DIR}/")]
    if not gaps:
        return b.paragraph("Every output this report looks for was available in this run.")
    return b.details(
        f"{len(gaps)} output(s) were not available in this run",
        [b.bullet_list(gaps, code=True)],
    )


# --------------------------------------------------------------------------- methods
#: Model types and adopting units in words.
MODEL_WORDS = {"penalised_logistic": "Penalised (ridge) logistic regression",
               "logistic": "Logistic regression",
               "gradient_boosting": "Gradient-boosted trees"}
UNIT_WORDS = {"pcn_id": "PCN", "practice_id": "practice", "pcn": "PCN", "practice": "practice"}


def _number_words(n: Any) -> str:
    names = {2: "two", 3: "three", 4: "four", 5: "five"}
    try:
        return names.get(int(n), str(n))
    except (TypeError, ValueError):
        return str(n)


def methods_section(config: Mapping[str, Any], policy: DisclosurePolicy,
                    metrics: Any = None, effects: list[Effect] | None = None,
                    itt_pretrend: Any = None, records: Any = None) -> dict[str, Any]:
    """Methods in brief, from the configuration and, where the run recorded them, what actually
    ran: the unit internal-external validation left out (``risk/metrics.json``), whether each
    evaluation design left a record, its adopting unit, and whether the pre-trend check was
    made."""
    study = config.get("study") or {}
    items = []
    source = (config.get("input") or {}).get("source")
    if study.get("study_start") and study.get("study_end"):
        where = ("a synthetic population with a known programme effect"
                 if source == "synthetic" else "the practices' own records")
        items.append(
            f"Data: primary-care records and hospital spells from {where}, "
            f"{study['study_start']} to {study['study_end']}. Emergency admissions are hospital "
            "spells with an emergency admission method (ADMIMETH 2x).")
    frailty = config.get("frailty") or {}
    if frailty:
        items.append(
            "Frailty: the electronic Frailty Index (eFI; Clegg et al. 2016), counting 36 "
            f"deficits in coded records, for people aged {frailty.get('min_age', 65)} and over "
            f"on {frailty.get('index_date', 'the index date')}.")
    risk = config.get("risk") or {}
    if risk:
        model = MODEL_WORDS.get(str(risk.get("model")), words(risk.get("model") or "")
                                ).lower() or "a prediction model"
        iecv = (metrics or {}).get("internal_external") if isinstance(metrics, Mapping) else None
        cluster = iecv.get("cluster") if isinstance(iecv, Mapping) else None
        if cluster:
            iecv_text = (", and internal-external cross-validation leaving out one "
                         f"{UNIT_WORDS.get(str(cluster), words(cluster).lower())} at a time")
        elif isinstance(iecv, Mapping):
            iecv_text = " (internal-external cross-validation could not be run)"
        else:
            iecv_text = ""
        items.append(
            f"Risk model: {model} predicting an emergency admission within 12 months, "
            f"developed on patients registered on {risk.get('development_index_date', '?')} "
            f"and checked on later data ({risk.get('validation_index_date', '?')}), with "
            f"bootstrap correction for optimism{iecv_text}.")
    seg = config.get("segment") or {}
    if seg:
        tiers = seg.get("risk_tiers")
        tier_text = (" and risk tiers (top " + ", ".join(f"{100 * t:g}%" for t in tiers) + ")"
                     if tiers else "")
        items.append(f"Segmentation: the 3x3 grid{tier_text} on {seg.get('index_date', '?')}.")
    ev = config.get("evaluate") or {}
    overall = _overall(effects)
    matched = [e for e in overall if not e.is_population and "naive" not in e.method.lower()]
    population = [e for e in overall if e.is_population]
    if ev and (matched or effects is None):
        match = ev.get("matching") or {}
        exact = ", ".join(label("covariate", x).lower() for x in match.get("exact") or [])
        exact = f"the month of enrolment and {exact}" if exact else "the month of enrolment"
        ratio = match.get("ratio", 1)
        whom = ("one similar patient" if ratio == 1 else
                f"{_number_words(ratio)} similar patients")
        items.append(
            f"Evaluation of the enrolled: each enrolled patient was matched to {whom} not (yet) "
            f"enrolled, on a propensity score (the estimated chance of being enrolled, from "
            f"the {ev.get('lookback_days', 365)} days before enrolment; caliper "
            f"{match.get('caliper', '?')} standard deviations) and exactly on {exact}. "
            f"Emergency admissions were followed for {ev.get('follow_up_days', 365)} days, "
            "with death as a competing risk.")
    if population:
        raw = next((r for r in records or [] if isinstance(r, Mapping) and r.get("unit")
                    and str(r.get("estimand", "")).upper().startswith("ITT")), {})
        unit = UNIT_WORDS.get(str(raw.get("unit")), words(raw.get("unit") or "").lower()
                              ) or "unit"
        check = ""
        if isinstance(itt_pretrend, Mapping):
            check = (", checking trends before roll-out" if itt_pretrend.get("p_value")
                     is not None else "; the check of trends before roll-out could not be made")
        items.append(
            f"Evaluation of the whole eligible population: the staggered roll-out across "
            f"{unit}s was analysed with difference-in-differences (Callaway and Sant'Anna), "
            f"comparing {unit}s that had started with those that had not{check}.")
    items.append(f"Disclosure control: {policy.describe()}")
    return _section("methods", "Methods in brief", [b.bullet_list(items)])


# --------------------------------------------------------------------------- truth
def _itt_truth_rows(itt_truth: Mapping[str, Any], effects: list[Effect] | None) -> list[list]:
    """The population-level (ITT) truth of the simulation against its estimate."""
    value = itt_truth.get("rate_ratio")
    if value is None:
        return []
    quantity = "Rate ratio in the eligible population (intention to treat)"
    effect = next((e for e in _overall(effects) if e.is_population and e.scale == "RR"), None)
    if effect is None:
        return [[quantity, fmt_ratio(float(value)), "not estimated", "", ""]]
    if not effect.estimable or effect.ci_low is None or effect.ci_high is None:
        return [[quantity, fmt_ratio(float(value)), effect.estimate_text(with_reason=False),
                 _capital(effect.method_words()), "No interval"]]
    covers = "Yes" if effect.ci_low <= float(value) <= effect.ci_high else "No"
    return [[quantity, fmt_ratio(float(value)), effect.estimate_text(with_reason=False), _capital(effect.method_words()),
             covers]]


def truth_section(results: ResultsFolder, effects: list[Effect] | None,
                  config: Mapping[str, Any]) -> dict[str, Any] | None:
    synthetic = (config.get("input") or {}).get("source") == "synthetic"
    truth = results.json(outputs.TRUTH)
    if truth is None:
        if not synthetic:
            return None
        return _section("truth", "Synthetic data: truth against estimate",
                        [b.missing("The known truth", [outputs.TRUTH])],
                        synthetic=True)
    true_effect = truth.get("true_effect") or {}
    realised = truth.get("realised") or {}
    overall = [e for e in _overall(effects) if not e.is_population]

    def first(scales: tuple[str, ...]) -> Effect | None:
        return next((e for e in overall if e.scale in scales), None)

    rows = []
    for quantity, value, scales, fmt in (
        ("Hazard ratio set in the simulation", true_effect.get("hazard_ratio"), ("HR",),
         fmt_ratio),
        ("Realised rate ratio of admissions, 12 months", realised.get("realised_rate_ratio_12m"),
         ("RR",), fmt_ratio),
        ("Realised change in admissions per 1,000 person-years, 12 months",
         realised.get("att_admissions_per_1000_person_years_12m"), ("ATT", "difference"),
         fmt_number),
    ):
        if value is None:
            continue
        effect = first(scales)
        if effect is None:
            rows.append([quantity, fmt(float(value)), "not estimated", "", ""])
            continue
        if not effect.estimable:
            rows.append([quantity, fmt(float(value)), effect.estimate_text(with_reason=False),
                         _capital(effect.method_words()), "Not estimable"])
            continue
        factor = 1.0 if effect.is_ratio else 1000.0 / effect.per
        low, high = effect.ci_low * factor, effect.ci_high * factor
        covers = "Yes" if low <= float(value) <= high else "No"
        rows.append([quantity, fmt(float(value)), effect.estimate_text(with_reason=False), _capital(effect.method_words()),
                     covers])
    rows += _itt_truth_rows(truth.get("itt_population") or {}, effects)
    blocks = [b.callout(
        "These results come from a synthetic population generated by phm-eval, not from real "
        "patients. Because the true effect of the programme is known, this section checks "
        "that the analysis recovers it.", tone="warning", title="Synthetic data")]
    if rows:
        blocks.append(b.table(
            "Known truth of the simulation against the estimates.",
            ["Quantity", "Truth", "Estimate (95% CI)", "Estimated by", "Interval contains the truth?"],
            rows,
            source=outputs.TRUTH,
            notes=["A Cox model of time to first admission estimates a marginal hazard ratio, "
                   "which unobserved frailty pulls towards 1; rate ratios of all admissions "
                   "estimate the simulated ratio itself."]))
    else:
        blocks.append(b.paragraph("The truth file holds no effect to compare with."))
    return _section("truth", "Synthetic data: truth against estimate", blocks, synthetic=True)


# --------------------------------------------------------------------------- provenance
def readable_time(moment: Any) -> str | None:
    """``2024-05-01T09:31:47Z`` -> ``1 May 2024, 09:31 UTC`` (other text unchanged)."""
    if not moment:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return str(moment)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC)
    zone = " UTC" if parsed.tzinfo is not None else ""
    return f"{parsed.day} {parsed:%B %Y, %H:%M}{zone}"


def _size(n: Any) -> str:
    try:
        size = float(n)
    except (TypeError, ValueError):
        return "missing"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def provenance_section(results: ResultsFolder) -> dict[str, Any]:
    manifest = results.json(outputs.MANIFEST)
    if not isinstance(manifest, Mapping):
        return _section("provenance", "Provenance",
                        [b.missing("The run manifest", [outputs.MANIFEST])])
    git = manifest.get("git") or {}
    commit = git.get("commit")
    facts = [
        ("Run started", readable_time(manifest.get("started_at")) or "not recorded"),
        ("Run finished", readable_time(manifest.get("finished_at")) or "not recorded"),
        ("Code version (git commit)",
         f"{commit[:12]}{' with uncommitted changes' if git.get('dirty') else ''}"
         if commit else "not recorded"),
        ("Random seed", str(manifest.get("seed")) if manifest.get("seed") is not None
         else "none (real data)"),
    ]
    blocks: list[dict[str, Any]] = [
        {"kind": "facts", "items": [{"term": t, "value": v} for t, v in facts]},
    ]
    packages = manifest.get("packages") or {}
    if packages:
        blocks.append(b.table("Software versions.", ["Package", "Version"],
                              [[k, v or "not installed"] for k, v in packages.items()],
                              source=outputs.MANIFEST))
    inputs = manifest.get("inputs") or []
    if inputs:
        rows = [[str(i.get("path", "")).split("/")[-1], _size(i.get("bytes")),
                 (i.get("sha256") or "missing")[:16]] for i in inputs]
        blocks.append(b.table("Input files and their SHA-256 fingerprints (first 16 "
                              "characters).", ["File", "Size", "SHA-256"], rows,
                              source=outputs.MANIFEST, numeric=[False, True, False]))
    config = manifest.get("config")
    if config:
        blocks.append(b.details("The configuration this run used", [
            b.preformatted(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                           "Configuration")]))
    return _section("provenance", "Provenance", blocks,
                    intro="What ran, on which inputs, with which software: enough to run it "
                    "again and get the same report.")


# --------------------------------------------------------------------------- all
def build_context(results_dir: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a results folder and build every section of the report.

    Parameters
    ----------
    results_dir : path
        The workflow's ``results/`` folder.
    config : mapping, optional
        The run's configuration (uses ``report``, ``disclosure``, ``study``,
        ``input`` and the stage sections).  Defaults to the configuration stored
        in ``manifest.json``, if any.

    Returns
    -------
    dict
        ``title``, ``subtitle``, ``synthetic``, ``headline`` (the wording, or None),
        ``sections`` (list of sections, each with ``id``, ``title``, ``blocks``,
        ``available``) and ``missing`` (outputs not found).
    """
    results = ResultsFolder(results_dir)
    if config is None:
        manifest = results.json(outputs.MANIFEST) if results.has(outputs.MANIFEST) else None
        config = (manifest or {}).get("config") or {}
    config = dict(config)
    policy = DisclosurePolicy.from_config(config.get("disclosure"))
    raw_effects = results.json(outputs.EFFECTS)
    effects = read_effects(raw_effects) if raw_effects is not None else None

    headline, wording = headline_section(results, effects, config, policy)
    sections = [
        headline,
        robustness_section(results, effects, policy),
        subgroup_section(results, effects, policy),
        population_section(results, policy),
        risk_section(results, policy),
        segmentation_section(results, policy),
        des_section(results, policy),
        data_quality_section(results, policy),
        methods_section(config, policy, results.json(outputs.RISK_METRICS), effects,
                        results.json(outputs.ITT_PRETREND), raw_effects),
    ]
    truth = truth_section(results, effects, config)
    if truth is not None:
        sections.append(truth)
    sections.append(provenance_section(results))
    # Listed last so it names every output any section looked for.
    next(s for s in sections if s["id"] == "data-quality")["blocks"].append(
        completeness_block(results))

    report_cfg = config.get("report") or {}
    study = config.get("study") or {}
    synthetic = (config.get("input") or {}).get("source") == "synthetic" or results.has(
        outputs.TRUTH)
    period = (f"{study['study_start']} to {study['study_end']}"
              if study.get("study_start") and study.get("study_end") else None)
    return {
        "title": report_cfg.get("title") or DEFAULT_TITLE,
        "programme": str(study.get("programme") or "the programme").replace("_", " "),
        "period": period,
        "synthetic": bool(synthetic),
        "headline": wording,
        "sections": sections,
        "missing": list(results.missing),
        "disclosure": policy.describe(),
        "disclosure_policy": policy.to_dict(),
        "generated": readable_time((results.json(outputs.MANIFEST) or {}).get("finished_at")
                                   if results.has(outputs.MANIFEST) else None),
        "finished_at": ((results.json(outputs.MANIFEST) or {}).get("finished_at")
                        if results.has(outputs.MANIFEST) else None),
        "unit_cost": report_cfg.get("unit_cost_emergency_admission"),
        "n_figures": int(np.sum([_count_figures(s["blocks"]) for s in sections])),
    }


def _count_figures(blocks: list[dict[str, Any]]) -> int:
    total = 0
    for block in blocks:
        if block["kind"] == "figure":
            total += 1
        elif block["kind"] == "details":
            total += _count_figures(block["blocks"])
    return total
