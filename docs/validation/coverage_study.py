"""Coverage study of the two evaluation estimands over repeated small synthetic ICSs.

Usage::

    python docs/validation/coverage_study.py --estimand itt --replications 500 \
        --out docs/validation/coverage_itt.json
    python docs/validation/coverage_study.py --estimand att --replications 500 \
        --out docs/validation/coverage_att.json
    python docs/validation/coverage_study.py --scenario ics_null --estimand itt \
        --replications 250 --out docs/validation/coverage_itt_null.json

Replication ``r`` simulates a synthetic ICS (scenario ``ics``: PCN-level roll-out in waves with
never-adopting PCNs) with seed ``base_seed + r``, small enough to be quick but with 20+ PCNs,
runs the estimator and records the estimate, its 95 % interval, the SE of the log rate ratio,
the truth of that replication and whether the interval covers it.

``--scenario ics_null`` runs the same study on ICSs of the null scenario (the same structure
and sizes, the programme without effect) with other seeds (``NULL_BASE_SEEDS``), so the null
study is independent of the effect study. The truths are read from ``truth.json`` as for the
effect (under ``ics_null`` both are exactly 1), and the summary adds the rejection rate of a
rate ratio of 1 (share of 95 % intervals excluding 1: the type I error) with its Monte Carlo
SE.

* ``itt``: ``population_itt`` (population-level staggered DiD, intention to treat); its
  ``records[0]`` is the rate ratio. Truth: ``truth.json`` ``itt_population.rate_ratio`` of the
  same replication (both potential outcomes of the same eligible population, aggregated as the
  estimator aggregates them), so it varies between replications.
* ``att``: ``evaluate_programme`` (matched enrolled-patient design, ATT on the enrolled); its
  headline is the emergency-admission rate ratio. Truth: ``true_effect.hazard_ratio`` (0.85),
  the rate ratio the generator applies to every enrolled patient's admission intensity, as the
  known-truth tests use it. The realised rate ratio of the enrolled in their 12 months
  (``realised.realised_rate_ratio_12m``, observed over prevented-or-not admissions) is stored
  too, with coverage against it as a secondary summary.

Results are written to ``--out`` (JSON) every ``--checkpoint`` replications and at the end; a
rerun with the same ``--out`` resumes after the last stored replication (the settings must
match). Summary (Morris et al. 2019): coverage with its Monte Carlo SE ``sqrt(p (1 - p) / R)``,
mean bias of the log rate ratio in units of the mean model SE and of the empirical SD of the
errors, with Monte Carlo SEs, and the SE ratio (mean model SE / empirical SD of the errors).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

Z975 = 1.959963984540054
PROGRAMME = "proactive_care"
STUDY_START, STUDY_END = "2019-04-01", "2024-03-31"

SCENARIOS = ("ics", "ics_null")
NULL_SCENARIOS = ("ics_null",)
# Settings of each study: a small ICS of the ``ics`` scenario's structure.
SETTINGS = {
    "itt": {
        "scenario": "ics",
        "n_patients": 44000,
        # 22 PCNs of about 2,000 patients, 3 practices each (as the fast ITT tests' ICSs)
        "overrides": {"pcn_size": [1500, 2500], "practice_size": [500, 1000]},
        "base_seed": 150000,
    },
    "att": {
        "scenario": "ics",
        "n_patients": 16000,
        # 20 PCNs of about 800 patients, 3 practices each (about 170 enrolled); the
        # scenario's programme as is (enrolment within 180 days of adoption, rate ratio 0.85)
        "overrides": {"pcn_size": [650, 950], "practice_size": [200, 330]},
        "base_seed": 250000,
    },
}
# Seeds of the null studies (same sizes as above): apart from the effect studies' seeds.
NULL_BASE_SEEDS = {"itt": 350000, "att": 450000}


def study_settings(estimand: str, scenario: str = "ics") -> dict:
    """The settings of the study of ``estimand`` under ``scenario`` (``ics`` or ``ics_null``)."""
    settings = dict(SETTINGS[estimand])
    if scenario != "ics":
        if scenario not in NULL_SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: one of {SCENARIOS}")
        settings["scenario"] = scenario
        settings["base_seed"] = NULL_BASE_SEEDS[estimand]
    return settings


def _code_commit() -> dict:
    """The commit of the phm_eval package imported, and whether its tree had changes."""
    import phm_eval

    src = Path(phm_eval.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               check=True, capture_output=True, text=True).stdout.strip()
        return {"commit": head, "package_tree_modified": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "package_tree_modified": None}


def _itt_replication(root: Path, settings: dict, seed: int) -> dict:
    from phm_eval.evaluate.population import population_itt
    from phm_eval.synth import simulate

    simulate(settings["scenario"], out=root, seed=seed, n_patients=settings["n_patients"],
             overrides=settings["overrides"])
    tables = {t: root / f"{t}.parquet"
              for t in ("patients", "events", "admissions", "practices", "rollout")}
    res = population_itt(tables, PROGRAMME, STUDY_START, STUDY_END, seed=1, honest_m=())
    rec = res.records[0]
    truth = json.loads((root / "truth" / "truth.json").read_text())["itt_population"]
    return {
        "truth": float(truth["rate_ratio"]),
        "estimate": float(rec["estimate"]), "ci_low": float(rec["ci_low"]),
        "ci_high": float(rec["ci_high"]),
        "se_log": float(res.details["se_log_rr"]),
        "df": None if rec.get("df") is None else float(rec["df"]),
        "n_units_treated": rec.get("n_units_treated"),
        "n_units_control": rec.get("n_units_control"),
        "n_treated": rec.get("n_treated"), "n_control": rec.get("n_control"),
        "pretrend_p": (None if res.pretrend.get("p_value") is None
                       else float(res.pretrend["p_value"])),
        "share_enrolled": truth.get("share_enrolled_of_population_in_adopting_units"),
    }


def _att_replication(root: Path, settings: dict, seed: int) -> dict:
    from phm_eval.evaluate.pipeline import evaluate_programme
    from phm_eval.synth import simulate

    sim = simulate(settings["scenario"], out=root, seed=seed, n_patients=settings["n_patients"],
                   overrides=settings["overrides"])
    tables = {t: root / f"{t}.parquet" for t in
              ("patients", "events", "admissions", "practices", "interventions", "rollout")}
    res = evaluate_programme(tables, PROGRAMME, STUDY_END, seed=seed, subgroups=False,
                             event_study_panel=False)
    head = res.headline
    lo, hi = float(head["ci_low"]), float(head["ci_high"])
    return {
        "truth": float(sim.truth["true_effect"]["hazard_ratio"]),
        "realised_rate_ratio_12m": sim.truth["realised"].get("realised_rate_ratio_12m"),
        "estimate": float(head["estimate"]), "ci_low": lo, "ci_high": hi,
        # the headline interval is exp(log RR +- z SE)
        "se_log": (math.log(hi) - math.log(lo)) / (2 * Z975),
        "n_treated": head.get("n_treated"), "n_control": head.get("n_control"),
        "n_clusters": head.get("n_clusters"),
    }


def replicate(estimand: str, settings: dict, r: int) -> dict:
    seed = settings["base_seed"] + r
    run = _itt_replication if estimand == "itt" else _att_replication
    root = Path(tempfile.mkdtemp(prefix=f"coverage_{estimand}_{r}_"))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        row = {"replication": r, "seed": seed}
        try:
            row.update(run(root / "sim", settings, seed))
        except Exception as exc:  # a failed replication is recorded, not hidden
            row["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    row["wall_seconds"] = round(time.perf_counter() - t0, 2)
    row["cpu_seconds"] = round(time.process_time() - c0, 2)
    if "error" not in row:
        row["covered"] = bool(row["ci_low"] < row["truth"] < row["ci_high"])
        if row.get("realised_rate_ratio_12m") is not None:
            row["covered_realised"] = bool(
                row["ci_low"] < row["realised_rate_ratio_12m"] < row["ci_high"])
    return row


def summarise(rows: list[dict], null: bool = False) -> dict:
    """Coverage, bias and SE ratio with Monte Carlo SEs (Morris et al. 2019).

    ``null`` (a study under a null scenario) adds the rejection rate of a rate ratio of 1: the
    share of 95 % intervals that exclude 1, which is the type I error when every truth is 1.
    """
    ok = [r for r in rows if "error" not in r]
    n = len(ok)
    out: dict = {"replications": n, "failed": len(rows) - n}
    if n < 2:
        return out
    est = np.log([r["estimate"] for r in ok])
    truth = np.log([r["truth"] for r in ok])
    se = np.array([r["se_log"] for r in ok])
    err = est - truth
    cov = float(np.mean([r["covered"] for r in ok]))
    sd_err = float(np.std(err, ddof=1))
    mean_se = float(np.mean(se))
    bias = float(np.mean(err))
    bias_mcse = sd_err / math.sqrt(n)
    # MC SE of an SD: SD / sqrt(2 (n - 1)); of the ratio mean SE / SD, mostly from the SD
    se_ratio = mean_se / sd_err
    out.update({
        "coverage": cov, "coverage_mcse": math.sqrt(cov * (1 - cov) / n),
        "mean_truth_rate_ratio": float(np.exp(np.mean(truth))),
        "mean_estimate_rate_ratio": float(np.exp(np.mean(est))),
        "bias_log": bias, "bias_log_mcse": bias_mcse,
        "bias_over_mean_se": bias / mean_se, "bias_over_mean_se_mcse": bias_mcse / mean_se,
        "bias_over_empirical_sd": bias / sd_err, "bias_over_empirical_sd_mcse": 1 / math.sqrt(n),
        "empirical_sd_log_error": sd_err, "empirical_sd_log_estimate": float(np.std(est, ddof=1)),
        "mean_model_se_log": mean_se,
        "se_ratio": se_ratio, "se_ratio_mcse": se_ratio / math.sqrt(2 * (n - 1)),
        "sd_of_z": float(np.std(err / se, ddof=1)),
        "share_below_truth": float(np.mean(err < 0)),
        "interval_above_truth": float(np.mean([r["ci_low"] >= r["truth"] for r in ok])),
        "interval_below_truth": float(np.mean([r["ci_high"] <= r["truth"] for r in ok])),
        "mean_wall_seconds": float(np.mean([r["wall_seconds"] for r in rows])),
        "mean_cpu_seconds": float(np.mean([r["cpu_seconds"] for r in rows])),
    })
    if any("covered_realised" in r for r in ok):
        cr = float(np.mean([r["covered_realised"] for r in ok if "covered_realised" in r]))
        out["coverage_of_realised_rate_ratio"] = cr
        out["coverage_of_realised_rate_ratio_mcse"] = math.sqrt(cr * (1 - cr) / n)
    if any(r.get("pretrend_p") is not None for r in ok):
        p = np.array([r["pretrend_p"] for r in ok if r.get("pretrend_p") is not None])
        out["pretrend_rejection_rate_5pct"] = float(np.mean(p < 0.05))
    if null:
        below = float(np.mean([r["ci_high"] <= 1 for r in ok]))
        above = float(np.mean([r["ci_low"] >= 1 for r in ok]))
        rej = below + above
        out.update({
            "truths_all_1": bool(all(r["truth"] == 1 for r in ok)),
            "rejection_rate_rr_1": rej,
            "rejection_rate_rr_1_mcse": math.sqrt(rej * (1 - rej) / n),
            # the MC SE a correct 5 % test would have: does not vanish when no interval rejects
            "rejection_rate_rr_1_mcse_at_5pct": math.sqrt(0.05 * 0.95 / n),
            "rejection_rate_interval_below_1": below,
            "rejection_rate_interval_above_1": above,
        })
    return out


def _is_null(doc: dict) -> bool:
    return doc["settings"]["scenario"] in NULL_SCENARIOS


def _write(path: Path, doc: dict) -> None:
    doc["summary"] = summarise(doc["replications"], null=_is_null(doc))
    doc["updated_utc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    os.replace(tmp, path)


ESTIMAND_NAMES = {"itt": "ITT population rate ratio", "att": "ATT enrolled rate ratio"}


def _row_name(doc: dict) -> str:
    """The estimand, and the study's own label when it has one (e.g. which SEs it used)."""
    name = ESTIMAND_NAMES[doc["estimand"]]
    return f"{name}, {doc['label']}" if doc.get("label") else name


def _design_cells(doc: dict) -> str:
    """The ICS simulated, wall time and code commit cells of a study's row."""
    s, st = doc["summary"], doc["settings"]
    n_pcn = round(st["n_patients"] / (sum(st["overrides"]["pcn_size"]) / 2))
    wall = doc.get("wall_seconds_total", doc.get("wall_seconds_this_session", 0.0))
    return (f"`{st['scenario']}`, {st['n_patients']:,} patients, {n_pcn} PCNs"
            f" ({st['overrides']['pcn_size'][0]:,}-{st['overrides']['pcn_size'][1]:,}),"
            f" seeds {st['base_seed']}+r"
            f" | {wall / 60:.0f} min ({s['mean_cpu_seconds']:.1f} s CPU per replication)"
            f" | {(doc['code']['commit'] or '?')[:7]} |")


def _null_table(docs: list[dict]) -> str:
    """The summary table of studies under a null scenario, led by the rejection rate of 1."""
    lines = [
        "| estimand | R | truth (mean RR) | rejection of RR = 1 (type I error, ± MC SE)"
        " | interval below / above 1 | coverage of 95 % CI (± MC SE) | bias / mean SE (± MC SE)"
        " | bias / empirical SD | SE ratio (model / empirical, ± MC SE) | SD of z"
        " | ICS simulated | wall time | code commit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for doc in docs:
        s = doc["summary"]
        lines.append(
            f"| {_row_name(doc)} | {s['replications']}"
            f" | {s['mean_truth_rate_ratio']:.3f}"
            f" | {s['rejection_rate_rr_1']:.3f} ± {s['rejection_rate_rr_1_mcse']:.3f}"
            f" | {s['rejection_rate_interval_below_1']:.3f} / "
            f"{s['rejection_rate_interval_above_1']:.3f}"
            f" | {s['coverage']:.3f} ± {s['coverage_mcse']:.3f}"
            f" | {s['bias_over_mean_se']:+.3f} ± {s['bias_over_mean_se_mcse']:.3f}"
            f" | {s['bias_over_empirical_sd']:+.3f} ± {s['bias_over_empirical_sd_mcse']:.3f}"
            f" | {s['se_ratio']:.3f} ± {s['se_ratio_mcse']:.3f} | {s['sd_of_z']:.3f}"
            f" | {_design_cells(doc)}"
        )
    return "\n".join(lines)


def _effect_table(docs: list[dict]) -> str:
    """The summary table of studies with an effect."""
    lines = [
        "| estimand | R | truth (mean RR) | coverage of 95 % CI (± MC SE) | bias / mean SE (± MC SE)"
        " | bias / empirical SD | SE ratio (model / empirical, ± MC SE) | SD of z"
        " | ICS simulated | wall time | code commit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for doc in docs:
        s = doc["summary"]
        lines.append(
            f"| {_row_name(doc)} | {s['replications']}"
            f" | {s['mean_truth_rate_ratio']:.3f}"
            f" | {s['coverage']:.3f} ± {s['coverage_mcse']:.3f}"
            f" | {s['bias_over_mean_se']:+.3f} ± {s['bias_over_mean_se_mcse']:.3f}"
            f" | {s['bias_over_empirical_sd']:+.3f} ± {s['bias_over_empirical_sd_mcse']:.3f}"
            f" | {s['se_ratio']:.3f} ± {s['se_ratio_mcse']:.3f} | {s['sd_of_z']:.3f}"
            f" | {_design_cells(doc)}"
        )
    return "\n".join(lines)


def markdown_table(paths: list[Path]) -> str:
    """The summary table(s) of coverage.md from result files.

    Studies with an effect (``ics``) make one table; studies under a null scenario a second one
    (after a blank line), which adds the rejection rate of a rate ratio of 1.
    """
    docs = [json.loads(Path(path).read_text()) for path in paths]
    effect = [d for d in docs if not _is_null(d)]
    null = [d for d in docs if _is_null(d)]
    tables = [_effect_table(effect)] if effect else []
    if null:
        tables.append(_null_table(null))
    return "\n\n".join(tables)


def merge(paths: list[Path], out: Path, same_results: list[int] | None = None) -> None:
    """Merge result files of one study (same estimand, settings and code) run in parts.

    Parts run on different commits merge only with ``same_results``: replications of the
    first part that were rerun on the later code and gave the same rows (checked here, not
    taken on trust: each is rerun and compared, estimate and interval to 1e-12).
    """
    docs = [json.loads(Path(p).read_text()) for p in paths]
    first = docs[0]
    for doc in docs[1:]:
        for key in ("estimand", "settings"):
            if doc[key] != first[key]:
                sys.exit(f"cannot merge: {key} differs")
        if doc["code"] != first["code"]:
            if not same_results:
                sys.exit("cannot merge: the parts ran on different code; rerun some of the "
                         "first part's replications on the later code (--same-results)")
            _check_same_results(first, same_results)
    rows = {r["replication"]: r for doc in docs for r in doc["replications"]}
    merged = {k: v for k, v in first.items() if k not in ("summary", "replications")}
    merged["replications"] = [rows[r] for r in sorted(rows)]
    merged["parts"] = [
        {"replications": [min(r["replication"] for r in d["replications"]),
                          max(r["replication"] for r in d["replications"])],
         "n": len(d["replications"]), "started_utc": d.get("started_utc"),
         "wall_seconds": d.get("wall_seconds_total"), "code": d["code"]}
        for d in docs
    ]
    if same_results:
        merged["same_results_checked"] = {
            "replications": sorted(same_results),
            "note": "rerun on the later parts' code and identical to the first part's rows"}
    # the parts overlap in time: the study's wall time is from the first start to the last save
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    start = min(datetime.strptime(d["started_utc"], stamp) for d in docs)
    end = max(datetime.strptime(d["updated_utc"], stamp) for d in docs)
    merged["wall_seconds_total"] = (end - start).total_seconds()
    merged.pop("wall_seconds_this_session", None)
    merged.pop("wall_seconds_previous_sessions", None)
    _write(out, merged)


def _check_same_results(doc: dict, replications: list[int]) -> None:
    """Rerun ``replications`` of ``doc`` on the code imported now; stop unless identical."""
    stored = {r["replication"]: r for r in doc["replications"]}
    for r in replications:
        again = replicate(doc["estimand"], doc["settings"], r)
        for key in ("estimate", "ci_low", "ci_high", "truth"):
            if not math.isclose(again[key], stored[r][key], rel_tol=1e-12, abs_tol=0):
                sys.exit(f"cannot merge: replication {r} differs on the later code ({key}: "
                         f"{stored[r][key]!r} then, {again[key]!r} now)")
        print(f"replication {r}: same result on the later code", flush=True)


def _elapsed(doc: dict, t0: float) -> None:
    """Wall time of this session, and over all sessions of the study."""
    doc.setdefault("wall_seconds_previous_sessions", 0.0)
    doc["wall_seconds_this_session"] = round(time.perf_counter() - t0, 1)
    doc["wall_seconds_total"] = round(doc["wall_seconds_previous_sessions"]
                                      + doc["wall_seconds_this_session"], 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--estimand", choices=("itt", "att"))
    ap.add_argument("--scenario", choices=SCENARIOS, default="ics",
                    help="ics (the programme's effect, default) or ics_null (no effect)")
    ap.add_argument("--table", type=Path, nargs="+",
                    help="print the Markdown summary table of these result files and stop")
    ap.add_argument("--replications", type=int, default=500)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--checkpoint", type=int, default=10)
    ap.add_argument("--first", type=int, default=0,
                    help="first replication to run (to split a study over processes)")
    ap.add_argument("--merge", type=Path, nargs="+",
                    help="merge these result files of one study into --out and stop")
    ap.add_argument("--same-results", type=int, nargs="+", default=None,
                    help="with --merge of parts run on different commits: replications of "
                         "the first part to rerun on the code imported now (must be identical)")
    ap.add_argument("--n-patients", type=int, default=None,
                    help="override the population size (default: the study's setting)")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_table(args.table))
        return 0
    if args.merge:
        if not args.out:
            ap.error("--merge needs --out")
        merge(args.merge, args.out, args.same_results)
        return 0
    if not args.estimand or not args.out:
        ap.error("--estimand and --out are required")

    settings = study_settings(args.estimand, args.scenario)
    if args.n_patients:
        settings["n_patients"] = args.n_patients
    if args.out.exists():
        doc = json.loads(args.out.read_text())
        if doc["settings"] != settings:
            sys.exit(f"{args.out} holds a study with other settings: {doc['settings']}")
        doc["wall_seconds_previous_sessions"] = doc.get("wall_seconds_total", 0.0)
        print(f"resuming after {len(doc['replications'])} replications", flush=True)
    else:
        doc = {"estimand": args.estimand,
               "estimator": ("phm_eval.evaluate.population.population_itt, records[0]"
                             if args.estimand == "itt" else
                             "phm_eval.evaluate.pipeline.evaluate_programme, headline"),
               "truth": ("truth.json itt_population.rate_ratio of each replication"
                         if args.estimand == "itt" else
                         "truth.json true_effect.hazard_ratio (rate ratio applied to the "
                         "enrolled); realised_rate_ratio_12m stored as secondary")
               + (f" ({settings['scenario']}: 1, no effect)"
                  if settings["scenario"] in NULL_SCENARIOS else ""),
               "settings": settings, "code": _code_commit(),
               "python": platform.python_version(),
               "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "replications": []}
    done = {r["replication"] for r in doc["replications"]}
    t0 = time.perf_counter()
    for r in range(args.first, args.replications):
        if r in done:
            continue
        row = replicate(args.estimand, settings, r)
        doc["replications"].append(row)
        print(json.dumps(row, default=float), flush=True)
        if len(doc["replications"]) % args.checkpoint == 0:
            _elapsed(doc, t0)
            _write(args.out, doc)
    _elapsed(doc, t0)
    _write(args.out, doc)
    print(json.dumps(doc["summary"], indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
