"""The ``phm-eval`` command line: simulate, validate, run the workflow, check outputs.

Every problem with a user's inputs or configuration ends in one clear message on standard error
and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from . import DEFAULT_SEED, __version__, outputs
from .errors import PhmEvalError
from .paths import CONFIG_DIR, DEFAULT_CONFIG, WORKFLOW_DIR


def _simulate(args: argparse.Namespace) -> int:
    from .synth import simulate

    result = simulate(args.scenario, out=args.out, n_patients=args.patients, seed=args.seed,
                      file_format=args.format)
    realised = result.truth["realised"]
    print(
        f"Wrote scenario '{args.scenario}' ({result.truth['population']['n_patients']:,} "
        f"patients, {realised['n_enrolled']:,} enrolled) to {result.out}"
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .ingest import StudyPeriod, validate

    folder, study = args.folder, args.study_end
    if args.config:
        from .config import load_config

        config = load_config(_config_file(args.config))
        period = config["study"]
        study = StudyPeriod(period["study_start"], period["study_end"], period.get("programme"))
        if folder is None:
            if config["input"]["source"] != "folder":
                raise PhmEvalError(f"{args.config} reads no extracts (input.source is "
                                   f"{config['input']['source']!r}); name the folder to check")
            folder = config["input"]["folder"]
    if folder is None:
        raise PhmEvalError("name the folder of extracts to check, or pass --config FILE")
    report = validate(folder, study)
    quality = report.data_quality
    print(f"{folder}: all files meet the data contract")
    if len(quality):
        print(f"Normalised on reading ({len(quality)} kinds of export quirk; nothing lost):")
        for row in quality.itertuples(index=False):
            print(f"  {row.file}, column '{row.column}': {row.quirk} ({row.rows_affected:,} "
                  f"rows) -> {row.action}")
    if report.flow is not None:
        dropped = report.flow[report.flow["step"].isin(["exclude", "modify"])
                              & (report.flow["n"] > 0)]
        if len(dropped):
            print("Out of the study's scope (excluded or cut at the study end, counted):")
            for row in dropped.itertuples(index=False):
                print(f"  {row.table}: {row.reason}: {row.n:,}")
    return 0


def _design_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from .config import load_config
    from .evaluate.estimands import design_check_report
    from .jsonio import read_json, write_json

    config_path = _config_file(args.config)
    config = load_config(config_path)
    results = Path(config["results_dir"])
    analysed = results / outputs.ANALYSED
    if not analysed.exists():
        raise PhmEvalError(f"{analysed} not found: run `phm-eval run --config {config_path}` "
                           "first (the check re-analyses the run's matched design)")
    frame = pd.read_parquet(analysed)
    if frame.empty:
        raise PhmEvalError("the run's matched design could not be estimated, so there is no "
                           "power to check")
    truth_file = results / outputs.TRUTH
    truth = read_json(truth_file) if truth_file.exists() else {}
    check = (config["evaluate"].get("design_check") or {})
    replicates = args.replicates or int(check.get("replicates") or 200)
    seed = args.seed if args.seed is not None else int(check.get("seed", DEFAULT_SEED))
    report = design_check_report(frame, n_replicates=replicates, seed=seed,
                                 true_rate_ratio=(truth.get("true_effect") or {})
                                 .get("hazard_ratio"))
    written = results / outputs.DESIGN_CHECK
    written.parent.mkdir(parents=True, exist_ok=True)
    report.summary.to_csv(results / outputs.DESIGN_CHECK_CSV, index=False)
    write_json(written, report.to_dict())
    for row in report.to_dict()["targets"]:
        print(f"injected rate ratio {row['rate_ratio']:.3f}: power {row['power']:.2f}, "
              f"coverage {row['coverage']:.2f} ({replicates} replicates)")
    print(f"Wrote {written}; `phm-eval run --config {config_path}` puts it "
          "in the report.")
    return 0


def _init(args: argparse.Namespace) -> int:
    from .config import starter_config

    folder = Path(args.folder)
    target = folder / "config.yaml"
    if target.exists() and not args.force:
        raise PhmEvalError(f"{target} exists already; pass --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_config(args.extracts), encoding="utf-8")
    print(f"Wrote {target}: set input.folder to your extracts (if not done), check the study "
          f"dates and programme, then run: phm-eval run --config {target}")
    return 0


def _memory_mb(text: str) -> int:
    """``8GB``, ``8G``, ``7500MB`` or a plain number of MB, as megabytes."""
    import re

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(GB|G|GIB|MB|M|MIB)?\s*", text.upper())
    if not match:
        raise PhmEvalError(f"--memory {text!r}: give a size such as 8GB or 7500MB")
    value, unit = float(match.group(1)), match.group(2) or "MB"
    mb = int(value * 1024) if unit.startswith("G") else int(value)
    if mb < 1000:
        raise PhmEvalError(f"--memory {text!r}: at least 1GB is needed to run the workflow")
    return mb


def _caps_memory(args: argparse.Namespace) -> bool:
    """Whether `phm-eval run` should cap the memory of jobs running side by side: unless the
    user passed ``--resources``, or a profile sets its own ceiling or sends jobs to a cluster
    (where the jobs' memory is not this machine's)."""
    if any(a.startswith("--resources") for a in args.snakemake_args or []):
        return False
    if not args.profile:
        return True
    from .config import read_yaml

    profile_file = Path(args.profile) / "config.yaml"
    if not profile_file.is_file():
        return False  # a profile Snakemake finds by name: leave its settings alone
    profile = read_yaml(profile_file)
    return "resources" not in profile and profile.get("executor", "local") == "local"


def _run(args: argparse.Namespace) -> int:
    """Run Snakemake on the configuration; on failure, one line naming the problem.

    Each invocation gets its own run identifier (``PHM_EVAL_RUN_ID`` in Snakemake's
    environment, which its jobs inherit). When Snakemake exits with an error, the message is
    the one the failed job recorded for this run
    (:func:`phm_eval.workflow_support.failed_job`), never a record left by an earlier run;
    without one, the line points at the messages above and the logs.
    """
    import os
    import uuid

    from .config import load_config, read_yaml
    from .run_lock import acquire, release
    from .workflow_support import RUN_ENV, failed_job

    config_path = _config_file(args.config)
    config = load_config(config_path)
    results_dir = config["results_dir"]
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(WORKFLOW_DIR / "Snakefile"),
        "--configfile", str(config_path), "--cores", str(args.cores),
        "--rerun-incomplete", "--printshellcmds",
    ]
    if "results_dir" not in read_yaml(config_path):
        cmd += ["--config", f"results_dir={results_dir}"]
    if args.dry_run:
        cmd.append("--dry-run")
    if args.profile:
        cmd += ["--profile", args.profile]
    if _caps_memory(args):
        # Jobs side by side may not together use more memory than the machine has (or than the
        # user allows with --memory); a tenth is left for Snakemake and the system.
        from .db import machine_memory_mb

        total = _memory_mb(args.memory) if args.memory else machine_memory_mb()
        if total:
            cmd += ["--resources", f"mem_mb={int(total * 0.9)}"]
    if args.forcerun:
        cmd += ["--forcerun", *args.forcerun]
    if args.forceall:
        cmd.append("--forceall")
    extra = list(args.snakemake_args or [])
    if extra[:1] == ["--"]:
        # `phm-eval run -- --forceall`: the separator is ours, not Snakemake's.
        extra = extra[1:]
    cmd += extra
    pid_file = None
    if not args.dry_run:
        pid_file, cleared = acquire(results_dir)
        if cleared:
            print(f"phm-eval: cleared the lock left on {results_dir}/ by an interrupted run; "
                  "resuming", file=sys.stderr)
    run_id = uuid.uuid4().hex
    child = subprocess.Popen(cmd, env={**os.environ, RUN_ENV: run_id})
    try:
        returncode = child.wait()
    except KeyboardInterrupt:
        # Snakemake got the same Ctrl-C: let it stop its jobs and remove their partial outputs.
        returncode = _wait_after_interrupt(child)
        print(f"phm-eval: interrupted; unfinished outputs were removed. Run the same command "
              f"again to resume (finished steps in {results_dir}/ are kept).", file=sys.stderr)
        return 130
    finally:
        if pid_file is not None:
            release(pid_file)
    if returncode != 0:
        failure = failed_job(results_dir, run_id)
        if failure is not None and failure.expected:
            print(f"phm-eval: {failure.message}", file=sys.stderr)
        elif failure is not None:
            print(f"phm-eval: the workflow failed in rule {failure.rule} ({failure.message}); "
                  f"see the messages above and {failure.log}", file=sys.stderr)
        else:
            print(f"phm-eval: the workflow failed; see the messages above and "
                  f"{Path(results_dir) / outputs.LOGS_DIR}/", file=sys.stderr)
    return returncode


def _config_file(name: str | None) -> Path:
    """The configuration file a user named: a path, or the name of a shipped configuration
    (``smoke``, ``ics``) when no such file exists."""
    if name is None:
        return DEFAULT_CONFIG
    path = Path(name)
    shipped = CONFIG_DIR / f"{path.stem}.yaml"
    if not path.exists() and path.parent == Path(".") and shipped.is_file():
        return shipped
    return path


def _wait_after_interrupt(child: subprocess.Popen) -> int:
    try:
        return child.wait(timeout=60)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        child.kill()
        return child.wait()


def _check_outputs(args: argparse.Namespace) -> int:
    from .disclosure.release import scan_release

    folder = Path(args.folder)
    patients = Path(args.patients) if args.patients else None
    if patients is None:
        # The run's own patients table, where the workflow keeps it.
        for candidate in (folder / outputs.STAGED_DIR, folder / "data"):
            if any((candidate / f"patients.{ext}").is_file() for ext in ("parquet", "csv")):
                patients = candidate
                print(f"phm-eval: searching for the patient identifiers of {candidate}/",
                      file=sys.stderr)
                break
    policy = None
    if args.config:
        from .config import load_config

        policy = load_config(_config_file(args.config)).get("disclosure")
    result = scan_release(folder, patients, policy)
    for note in result.notes:
        print(f"phm-eval: {note}", file=sys.stderr)
    if result.not_scanned:
        print(f"Not scanned ({len(result.not_scanned)} file(s) not readable as text; figures "
              "are trusted only because they are drawn from disclosed tables):")
        for name, reason in result.not_scanned:
            print(f"  {name}: {reason}")
    for violation in result.violations:
        if violation.severity == "warning":
            print(violation, file=sys.stderr)
    problems = result.problems()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"phm-eval: {len(problems)} disclosure problem(s) in the releasable files of "
              f"{args.folder} ({result.summary()})", file=sys.stderr)
        return 1
    print(f"{args.folder}: passes disclosure control ({result.summary()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phm-eval",
        description=(
            "Population health management evaluation for NHS primary care: frailty, risk "
            "stratification, segmentation and impact evaluation."
        ),
    )
    parser.add_argument("--version", action="version", version=f"phm-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a synthetic population in the data contract",
                         description="Write a synthetic population with known true effects.")
    sim.add_argument("--scenario", default="pcn",
                     help="pcn, pcn_null, pcn_heterogeneous, ics, ics_null or smoke")
    sim.add_argument("--patients", type=int, default=None, help="number of patients")
    sim.add_argument("--seed", type=int, default=None, help="random seed")
    sim.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    sim.add_argument("--out", required=True, help="output folder")
    sim.set_defaults(func=_simulate)

    val = sub.add_parser("validate", help="check a folder of input files against the contract",
                         description="Check input files against docs/data-contract.md.")
    val.add_argument("folder", nargs="?", default=None,
                     help="folder of extracts (default: input.folder of --config)")
    val.add_argument("--config", default=None,
                     help="check with this configuration's study dates and programme")
    val.add_argument("--study-end", default=None, help="no date may be after this (YYYY-MM-DD)")
    val.set_defaults(func=_validate)

    run = sub.add_parser("run", help="run the whole Snakemake workflow",
                         description="Run the workflow (data to report) with Snakemake.")
    run.add_argument("--config", default=None, help="config file, or the name of a shipped one (smoke, ics); default "
                          "config/config.yaml")
    run.add_argument("--forcerun", nargs="+", metavar="RULE", default=None,
                     help="redo these rules (e.g. evaluate) and everything after them")
    run.add_argument("--forceall", action="store_true", help="redo every rule")
    run.add_argument("--cores", type=int, default=2)
    run.add_argument("--profile", default=None, help="a Snakemake profile folder (clusters)")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help="memory the whole run may use, all jobs together (e.g. 8GB, 16000MB); "
                          "default: the machine's (or the container's limit)")
    run.add_argument("-n", "--dry-run", action="store_true")
    run.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                     help="further arguments passed to snakemake")
    run.set_defaults(func=_run)

    dc = sub.add_parser("design-check",
                        help="power of a finished run's design on its own data (plasmode)",
                        description="Re-analyse the run's matched design with known effects "
                                    "injected into its own data: bias, coverage and power.")
    dc.add_argument("--config", default=None, help="the run's configuration")
    dc.add_argument("--replicates", type=int, default=None,
                    help="re-analyses per injected effect (default: the configuration's)")
    dc.add_argument("--seed", type=int, default=None)
    dc.set_defaults(func=_design_check)

    ini = sub.add_parser("init", help="write a starter configuration for your own extracts",
                         description="Write FOLDER/config.yaml: every key, commented, set to "
                                     "read extracts from a folder.")
    ini.add_argument("folder", help="folder for the configuration (created if needed)")
    ini.add_argument("--extracts", default=None, help="folder holding your extracts")
    ini.add_argument("--force", action="store_true", help="overwrite an existing config.yaml")
    ini.set_defaults(func=_init)

    chk = sub.add_parser("check-outputs",
                         help="check the releasable files of a folder for disclosure problems "
                              "and patient identifiers",
                         description="Check every file of a results folder except those under "
                                     "internal/ (which never leaves): counts in CSV, JSON, "
                                     "Markdown, HTML and SVG, and patient identifiers.")
    chk.add_argument("folder")
    chk.add_argument("--patients", default=None,
                     help="patients table or a folder holding one, whose identifiers must not "
                          "appear (default: the run's internal/data/ or data/ if present)")
    chk.add_argument("--config", default=None,
                     help="take the disclosure rules from this configuration (default: the "
                          "run's manifest.json, else NHS Digital rules)")
    chk.set_defaults(func=_check_outputs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except PhmEvalError as exc:
        print(f"phm-eval: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
