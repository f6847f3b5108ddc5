"""Benchmark eFI (and optionally eFI2) on a generated Parquet population.

Generates ``patients.parquet`` and ``events.parquet`` in the data-contract shape with DuckDB
(deterministic; codes drawn from the shipped eFI list, the medication list and unrelated
codes), then times :func:`phm_eval.frailty.efi` reading the files directly.

Usage::

    python benchmarks/bench_efi.py --patients 1000000 --events 100000000 --threads 2

The target is under 60 s for 100M events and 1M patients on 2 cores. Timings are printed as
JSON; nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from phm_eval.frailty import efi, efi2
from phm_eval.frailty.codelists import load_efi2_codelist, load_efi_codelist, load_medications


def generate(workdir: Path, n_patients: int, n_events: int, threads: int) -> dict[str, float]:
    """Write patients.parquet and events.parquet into ``workdir``; return timings."""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    codes = pd.concat(
        [
            load_efi_codelist()["snomed_code"],
            load_efi2_codelist()["snomed_code"],
            load_medications()["snomed_code"],
        ]
    ).drop_duplicates()
    # Half of all events carry a frailty or medication code, half an unrelated code.
    other = pd.Series([str(100000000 + 7919 * i) for i in range(len(codes))])
    pool = pd.DataFrame({"snomed_code": pd.concat([codes, other], ignore_index=True)})
    pool["k"] = range(len(pool))
    con.register("pool", pool)
    n_pool = len(pool)

    t0 = time.perf_counter()
    con.execute(
        f"""
        COPY (
          SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0') AS patient_id,
                 'PR' || CAST(i % 120 AS VARCHAR) AS practice_id,
                 CASE WHEN hash(i, 1) % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
                 DATE '1925-01-01' + CAST(hash(i, 2) % 34000 AS INTEGER) AS date_of_birth,
                 'White' AS ethnicity,
                 CAST(1 + hash(i, 3) % 10 AS INTEGER) AS imd_decile,
                 DATE '1995-01-01' + CAST(hash(i, 4) % 9000 AS INTEGER) AS registration_start,
                 CASE WHEN hash(i, 5) % 20 = 0
                      THEN DATE '2020-01-01' + CAST(hash(i, 6) % 1800 AS INTEGER) END
                   AS registration_end,
                 CASE WHEN hash(i, 7) % 25 = 0
                      THEN DATE '2018-01-01' + CAST(hash(i, 8) % 2500 AS INTEGER) END
                   AS date_of_death
          FROM range({n_patients}) t(i)
        ) TO '{workdir / "patients.parquet"}' (FORMAT parquet)
        """
    )
    t1 = time.perf_counter()
    con.execute(
        f"""
        COPY (
          SELECT 'P' || lpad(CAST(hash(i, 11) % {n_patients} AS VARCHAR), 8, '0') AS patient_id,
                 DATE '2000-01-01' + CAST(hash(i, 12) % 9000 AS INTEGER) AS date,
                 pool.snomed_code,
                 CASE WHEN hash(i, 13) % 10 = 0 THEN CAST(hash(i, 14) % 400 AS DOUBLE) / 10 END
                   AS value
          FROM range({n_events}) t(i)
          JOIN pool ON pool.k = hash(i, 15) % {n_pool}
        ) TO '{workdir / "events.parquet"}' (FORMAT parquet)
        """
    )
    t2 = time.perf_counter()
    con.close()
    return {"generate_patients_s": t1 - t0, "generate_events_s": t2 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--index-date", default="2024-04-01")
    parser.add_argument("--workdir", type=Path, default=None, help="reuse/keep files here")
    parser.add_argument("--efi2", action="store_true", help="also time eFI2")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_efi_"))
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {
        "patients": args.patients,
        "events": args.events,
        "threads": args.threads,
    }
    events_path, patients_path = workdir / "events.parquet", workdir / "patients.parquet"
    if not (events_path.exists() and patients_path.exists()):
        result.update(generate(workdir, args.patients, args.events, args.threads))
    result["events_parquet_mb"] = round(events_path.stat().st_size / 1e6, 1)

    t0 = time.perf_counter()
    scores = efi(events_path, patients_path, args.index_date, threads=args.threads)
    result["efi_s"] = round(time.perf_counter() - t0, 2)
    result["efi_scored"] = len(scores)
    result["efi_category_share"] = (
        scores["efi_category"].value_counts(normalize=True).round(3).to_dict()
    )
    if args.efi2:
        t0 = time.perf_counter()
        scores2 = efi2(events_path, patients_path, args.index_date, threads=args.threads)
        result["efi2_s"] = round(time.perf_counter() - t0, 2)
        result["efi2_scored"] = len(scores2)
    print(json.dumps(result, indent=2, default=str))
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
