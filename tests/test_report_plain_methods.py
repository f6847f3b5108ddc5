"""Reader-facing words derived from the run's record (issue 16, second reading): methods in
plain words with the record kept for reviewers, each balance characteristic once, Core20PLUS5
groups the programme is not for, the design check without a synthetic truth, the flow
table's reasons, and the power statement said once per table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from phm_eval.disclosure import DisclosurePolicy
from phm_eval.labels import fallback_label, method_label
from phm_eval.matching import NearestNeighborMatcher
from phm_eval.matching.balance import distinct_covariates
from phm_eval.report.context import (
    _design_check,
    data_quality_section,
    reach_blocks,
    robustness_section,
)
from phm_eval.report.effects import read_effects
from phm_eval.report.results import ResultsFolder

POLICY = DisclosurePolicy.from_config({"preset": "nhs_digital"})
NB = "negative binomial rate ratio (matched, adjusted)"
ITT_METHOD = ("population difference in differences (Callaway & Sant'Anna, staggered adoption, "
              "never- and not-yet-treated comparison units, person-time weighted, clustered on "
              "practice); rate ratio = treated rate / (treated rate - ATT), delta method on the "
              "log")
ITT_FALLBACK = ("comparison units: units not yet adopting as well as those never adopting, "
                "since too few units never adopted the programme; clustered on the adopting "
                "practice: all practices are in one PCN, too few PCNs to cluster on")
JARGON = ("negative binomial", "Callaway", "engine", "treated rate", "delta method", "ATT",
          "never-", "Cox", "Fine-Gray", "SEs")


def _folder(tmp_path: Path, files: dict[str, str]) -> ResultsFolder:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return ResultsFolder(tmp_path)


def test_methods_read_in_words_derived_from_the_record():
    words = method_label(NB, "emergency admissions")
    assert words == ("rate of emergency admissions compared with matched similar patients, "
                     "adjusted for differences at baseline")
    # only what ran: an unadjusted model is not called adjusted
    assert "adjusted" not in method_label("negative binomial rate ratio (matched)")
    assert "simpler" in method_label("Poisson rate ratio, robust SEs (dispersion not positive; "
                                     "matched, adjusted)")
    itt = method_label(ITT_METHOD, "emergency admissions per 1,000 person-months", "practice")
    assert "practices that had not yet started or never started" in itt
    assert method_label(ITT_METHOD.replace("never- and not-yet-treated", "never-treated")
                        ).endswith("practices that never started")
    for method in (NB, ITT_METHOD, "Cox proportional hazards (cause-specific, matched)",
                   "Fine-Gray subdistribution hazards (matched)",
                   "difference in differences, 12 months before vs after (Callaway & "
                   "Sant'Anna engine, matched)"):
        assert not any(j in method_label(method) for j in JARGON), method
    why = fallback_label(ITT_FALLBACK)
    assert "too few practices never started" in why and "one PCN" in why
    assert not any(j in why for j in ("units not yet adopting", "cluster on"))


def _effects() -> list:
    records = [
        {"outcome": "emergency admissions", "method": NB, "scale": "RR", "estimate": 0.74,
         "ci_low": 0.59, "ci_high": 0.94, "n_treated": 550, "n_control": 550,
         "estimand": "ATT enrolled", "primary": True, "mde_rate_ratio": 0.7,
         "se_method": "cluster-robust (sandwich) standard errors clustered on matched sets"},
        {"outcome": "emergency bed days", "method": NB, "scale": "RR", "estimate": 0.96,
         "ci_low": 0.61, "ci_high": 1.5, "estimand": "ATT enrolled"},
        {"outcome": "readmissions_30d", "method": NB, "scale": "RR", "estimate": 0.57,
         "ci_low": 0.31, "ci_high": 1.07, "estimand": "ATT enrolled"},
        {"outcome": "emergency admissions", "method": ITT_METHOD, "scale": "RR",
         "estimate": 0.86, "ci_low": None, "ci_high": None, "estimand": "ITT population",
         "unit": "practice", "fallback": ITT_FALLBACK,
         "note": "only 4 practices to cluster on"},
    ]
    return read_effects(records)


def test_tables_show_words_and_the_record_stays_for_reviewers(tmp_path):
    section = robustness_section(ResultsFolder(tmp_path), _effects(), POLICY)
    table = next(blk for blk in section["blocks"] if blk["kind"] == "table"
                 and blk.get("caption", "").startswith("The same questions"))
    methods = [row[2] for row in table["rows"]]
    assert methods[0] == ("Rate compared with matched similar patients, adjusted for "
                          "differences at baseline")
    assert not any(j in " ".join(methods) for j in JARGON)
    assert "not the planned method: too few practices never started" in methods[3]
    # the technical method, exactly as recorded, in the reviewers' table
    record = next(blk for d in section["blocks"] if d["kind"] == "details"
                  and "reviewers" in d["summary"] for blk in d["blocks"])
    cells = [" ".join(row) for row in record["rows"]]
    assert any(NB in cell.lower() for cell in cells)
    assert any(ITT_METHOD[1:] in cell and ITT_FALLBACK[1:] in cell for cell in cells)


def test_power_is_said_once_per_table_and_beside_it(tmp_path):
    from phm_eval.report.context import _power_note, _shared_power

    effects = _effects()
    section = robustness_section(ResultsFolder(tmp_path), effects, POLICY)
    table = next(blk for blk in section["blocks"] if blk["kind"] == "table"
                 and blk.get("caption", "").startswith("The same questions"))
    words = [row[5] for row in table["rows"]]
    assert sum("power" in w for w in words) == 0
    assert [w.startswith("No clear evidence") for w in words] == [False, True, True, False]
    notes = " ".join(table["notes"])
    assert notes.count("power to detect an effect was not assessed") == 1
    assert _power_note(_shared_power(effects[:2])) == []  # one such row: said in the row


def _matched() -> NearestNeighborMatcher:
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"treated": (rng.random(n) < 0.3).astype(int),
                       "age": rng.normal(75, 6, n),
                       "sex": rng.choice(["F", "M"], n)})
    df["female"] = (df["sex"] == "F").astype(int)
    return NearestNeighborMatcher(exact=["sex"], seed=1).fit(df, "treated", ["age", "female"])


def test_each_balance_characteristic_appears_once():
    result = _matched()
    covariates = distinct_covariates(result.data, result.covariates, result.exact)
    assert covariates == ["age", "sex"]
    terms = list(result.balance(covariates).index)
    assert "female" not in terms and {"sexF", "sexM"} <= set(terms)


REACH = """row,kind,group,n_eligible,total_eligible,share_of_eligible_percent,n_enrolled,total_enrolled,share_of_enrolled_percent,enrolment_per_1000
core20:core20,core20,core20,370,1735,21.3,125,565,22.1,337.8
plus:autism,plus,autism,*,1735,*,0,565,0,*
adult_clinical_area:maternity,adult_clinical_area,maternity,0,1735,0,0,565,0,
children_clinical_area:asthma,children_clinical_area,asthma,0,1735,0,0,565,0,
"""


def test_core20plus5_groups_nobody_eligible_is_in_are_said_not_applicable(tmp_path):
    folder = _folder(tmp_path, {"segment/core20plus5_reach.csv": REACH})
    table = next(blk for blk in reach_blocks(folder, POLICY) if blk["kind"] == "table")
    shown = " ".join(" ".join(map(str, row)) for row in table["rows"])
    assert "Asthma" not in shown and "Maternity" not in shown
    assert "autistic" in shown  # a suppressed small count is not a zero
    note = next(n for n in table["notes"] if n.startswith("Not applicable"))
    assert "Maternity (adults)" in note and "Asthma (children and young people)" in note


CHECK = ('{{"n_replicates": 200, "true_rate_ratio": {truth}, "mde_rate_ratio": 0.71, '
         '"targets": [{{"rate_ratio": 1.0, "power": 0.005, "coverage": 0.95}}, '
         '{{"rate_ratio": 0.85, "power": 0.28, "coverage": 0.95}}, '
         '{{"rate_ratio": 0.71, "power": 0.8, "coverage": 0.96}}]}}')


def test_design_check_names_a_truth_only_where_there_is_one():
    import json

    primary = _effects()[0]
    synthetic = _design_check(json.loads(CHECK.format(truth="0.85")), primary)[0]["text"]
    real = _design_check(json.loads(CHECK.format(truth="null")), primary)[0]["text"]
    assert "built into these synthetic data (0.85)" in synthetic
    assert "scenario" not in synthetic and "scenario" not in real
    assert "synthetic" not in real and "truth" not in real
    assert "an assumed 15% reduction (a rate ratio of 0.85), the evaluation detected the " \
           "effect in 28%" in real
    assert "the minimum detectable effect (a rate ratio of 0.71), the evaluation detected " \
           "the effect in 80%" in real


FLOW = """table,step,reason,n
patients,read,rows in file,40000
patients,exclude,registration ended or died before the study start,2840
patients,modify,date_of_death after the study end (2024-03-31): set to missing (alive at the study end),0
interventions,modify,end_date after the study end (2024-03-31): set to missing (still enrolled at the study end),0
"""


def test_flow_reasons_start_alike(tmp_path):
    section = data_quality_section(_folder(tmp_path, {"internal/data/flow.csv": FLOW}), POLICY)
    table = next(blk for blk in section["blocks"] if blk["kind"] == "table")
    reasons = [row[2] for row in table["rows"]]
    assert reasons[0] == "Rows in file"
    assert reasons[2].startswith("Date of death after the study end")
    assert all(r[0].isupper() for r in reasons), reasons
