"""Orchestrates the generator: population, health, care, programme, then the tables."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import __version__
from ..codelists import load_codelist
from ..progress import progress
from .conditions import NEVER, generate_conditions
from .events import PERSONALISED_CARE_RATES, build_codebook, chunk_events
from .medications import generate_medicines
from .population import DAYS_PER_YEAR, build_people, build_structure, to_days
from .programme import (
    combine_itt_truth,
    combine_realised_truth,
    decide_rollout,
    efi_category,
    itt_population_truth,
    run_programme,
    truth_summary,
)
from .scenario import Scenario, load_scenario
from .utilisation import draw_deaths, draw_emergency, draw_planned, exit_day, segments

log = logging.getLogger(__name__)
EPOCH = np.datetime64("1970-01-01", "D")
CHUNK_PATIENTS = 100_000
#: The largest population generated in one piece. A bigger ICS is generated a group of whole
#: PCNs at a time, so that the generator's memory stays that of about this many patients
#: (about 4 GB) whatever the ICS's size; up to this size the population is made in one piece.
PIECE_MAX_PATIENTS = 1_200_000
TABLES = ("practices", "patients", "events", "admissions", "interventions", "rollout")


@dataclass
class SimulationResult:
    """Where the tables went and the scenario that made them."""

    out: Path
    scenario: Scenario
    files: dict[str, Path]
    truth: dict[str, Any]


def simulate(
    scenario: str | Scenario = "pcn",
    out: str | Path = "synthetic",
    n_patients: int | None = None,
    *,
    seed: int | None = None,
    file_format: str = "parquet",
    overrides: dict | None = None,
    codelist_dir: str | Path | None = None,
) -> SimulationResult:
    """Generate a synthetic population and write it in the input data contract.

    Parameters
    ----------
    scenario : str or Scenario
        A named scenario (``pcn``, ``pcn_null``, ``pcn_heterogeneous``, ``ics``, ``ics_null``,
        ``smoke``) or a resolved :class:`Scenario`.
    out : path
        Output folder; tables are written as ``<table>.parquet`` (or ``.csv``) and the truth to
        ``out/truth/``. Files are written to a temporary folder and moved into place at the end,
        so a failed run leaves nothing half-written.
    n_patients, seed : int, optional
        Override the scenario's population size and seed.
    file_format : {"parquet", "csv"}
    overrides : dict, optional
        Further scenario overrides (nested keys merge).
    codelist_dir : path, optional
        Folder with the code lists to draw codes from (default ``config/codelists``).

    Returns
    -------
    SimulationResult
    """
    if not isinstance(scenario, Scenario):
        extra = dict(overrides or {})
        if n_patients is not None:
            extra["n_patients"] = int(n_patients)
        if seed is not None:
            extra["seed"] = int(seed)
        scenario = load_scenario(scenario, extra)
    if file_format not in ("parquet", "csv"):
        raise ValueError("file_format must be 'parquet' or 'csv'")
    params = scenario.params
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out.parent))
    try:
        truth = _generate(params, tmp, file_format, codelist_dir)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {t: out / f"{t}.{file_format}" for t in TABLES}
    return SimulationResult(out=out, scenario=scenario, files=files, truth=truth)


def _generate(params: dict, out: Path, fmt: str, codelist_dir) -> dict:
    seeds = np.random.SeedSequence(int(params["seed"])).spawn(10)
    structure = build_structure(params, np.random.default_rng(seeds[0]))
    groups = _pcn_groups(structure, PIECE_MAX_PATIENTS)
    if len(groups) == 1:
        piece = _generate_piece(params, structure, seeds, out, fmt, codelist_dir)
        return _write_truth(out, params, structure, [piece], piece.realised, piece.itt_truth,
                            piece.rollout)
    return _generate_in_pieces(params, structure, seeds, groups, out, fmt, codelist_dir)


def _pcn_groups(structure, max_patients: int) -> list[np.ndarray]:
    """Practices in consecutive groups of whole PCNs: as few groups as keep each within
    ``max_patients`` (a PCN is never split), of about equal size."""
    total = int(structure.list_size.sum())
    target = total / max(1, -(-total // max_patients))
    groups, current, size = [], [], 0
    for pcn in dict.fromkeys(structure.pcn_id.tolist()):
        practices = np.flatnonzero(structure.pcn_id == pcn)
        n = int(structure.list_size[practices].sum())
        # close the group when this PCN would take it further from the target than it is
        if current and (size + n > max_patients or abs(size + n - target) > abs(size - target)):
            groups.append(np.concatenate(current))
            current, size = [], 0
        current.append(practices)
        size += n
    groups.append(np.concatenate(current))
    return groups


def _generate_in_pieces(params: dict, structure, seeds, groups: list[np.ndarray], out: Path,
                        fmt: str, codelist_dir) -> dict:
    """A population too big for one piece: whole PCNs a group at a time, then the tables joined.

    The roll-out is decided once for all units (with the stream the one-piece generator uses for
    it), each piece has its own random stream (derived from the seed and the piece's number),
    patient and spell numbers run on across pieces, and the truth is combined from the pieces'
    counts and unit-month tables. Memory is that of the largest piece.

    Each piece's tables are appended to the whole's in a background thread while the next
    piece is generated (the generator uses one core; the join, mostly Parquet decoding and
    encoding outside the GIL, the other), in piece order, so the files are those of joining
    them all at the end.
    """
    adoption = decide_rollout(structure, params, np.random.default_rng(seeds[7]))
    started = [day for day in adoption.values() if day >= 0]
    first_adoption_day = min(started) if started else None
    pieces, first_id, first_spell = [], 0, 0
    joined = ("patients", "admissions", "interventions", "rollout", "events")
    joiner = _TableJoiner({table: out / f"{table}.{fmt}" for table in joined}, fmt)
    appends = []
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulate-join") as appending:
            for number, practices in enumerate(groups, start=1):
                log.info("simulate: piece %d of %d (%s patients)", number, len(groups),
                         f"{int(structure.list_size[practices].sum()):,}")
                piece_seeds = np.random.SeedSequence([int(params["seed"]), number]).spawn(10)
                folder = out / f".piece-{number}"
                folder.mkdir()
                piece = _generate_piece(params, structure.subset(practices), piece_seeds, folder,
                                        fmt, codelist_dir, number=number, first_id=first_id,
                                        first_spell=first_spell, adoption=adoption,
                                        first_adoption_day=first_adoption_day)
                pieces.append(piece)
                appends.append(appending.submit(joiner.append, folder))
                first_id += piece.n_patients
                first_spell += piece.n_spells
        for done in appends:
            done.result()  # a failed append raises here
    finally:
        joiner.close()
    _write(structure.table(), out / "practices", fmt)
    rollout = pd.concat([p.rollout for p in pieces], ignore_index=True)
    truth_dir = out / "truth"
    truth_dir.mkdir()
    for name in ("enrolment", "itt_population"):
        tables = [pd.read_parquet(out / f".piece-{p.number}" / "truth" / f"{name}.parquet")
                  for p in pieces]
        pd.concat(tables, ignore_index=True).to_parquet(truth_dir / f"{name}.parquet",
                                                        index=False)
    itt_table = pd.read_parquet(truth_dir / "itt_population.parquet")
    itt_truth = combine_itt_truth([p.itt_truth for p in pieces], itt_table)
    realised = combine_realised_truth([p.realised for p in pieces])
    for piece in pieces:
        shutil.rmtree(out / f".piece-{piece.number}")
    return _write_truth(out, params, structure, pieces, realised, itt_truth, rollout,
                        n_pieces=len(pieces))


class _TableJoiner:
    """The pieces' files of each table appended, piece by piece, to one file per table (streamed:
    never a whole table in memory)."""

    def __init__(self, targets: dict[str, Path], fmt: str) -> None:
        self.targets, self.fmt = targets, fmt
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.schemas: dict[str, pa.Schema] = {}
        if fmt == "csv":
            for target in targets.values():
                target.write_bytes(b"")

    def append(self, folder: Path) -> None:
        """Append the tables in ``folder`` (one piece's) to the whole's files."""
        for table, target in self.targets.items():
            part = folder / target.name
            if self.fmt == "csv":
                with open(target, "ab") as sink, open(part, "rb") as source:
                    if sink.tell():  # not the first piece
                        source.readline()  # the header, written once
                    shutil.copyfileobj(source, sink, 16 * 2**20)
                continue
            if table not in self.writers:
                self.schemas[table] = pq.read_schema(part)
                self.writers[table] = pq.ParquetWriter(target, self.schemas[table],
                                                       compression="zstd")
            schema = self.schemas[table]
            for batch in pq.ParquetFile(part).iter_batches(batch_size=1_000_000):
                self.writers[table].write_table(pa.Table.from_batches([batch], schema=schema),
                                                row_group_size=1_000_000)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


@dataclass
class _Piece:
    """What one piece of the population leaves for the whole: its truth and its counts."""

    number: int
    n_patients: int
    n_spells: int
    n_deaths: int
    realised: dict
    itt_truth: dict
    rollout: pd.DataFrame
    efi_counts: dict


def _generate_piece(params: dict, structure, seeds, out: Path, fmt: str, codelist_dir, *,
                    number: int = 1, first_id: int = 0, first_spell: int = 0,
                    adoption: dict | None = None, first_adoption_day: int | None = None) -> _Piece:
    """Generate the people of ``structure``'s practices and write their tables to ``out``."""
    (_, rng_people, _, _, _, rng_adm, rng_planned, rng_prog, rng_events,
     rng_extra) = [np.random.default_rng(s) for s in seeds]
    steps = progress(total=7, desc="simulate", unit="step")
    people = build_people(params, structure, rng_people, first_id=first_id)
    shape = float(params["admission_frailty_shape"])
    log_frailty = np.log(rng_extra.gamma(shape, 1 / shape, size=people.n))
    steps.update()

    meds_list = load_codelist("medications", codelist_dir)
    study_end = to_days(params["study_end"])
    edges = segments(params)

    def health_and_deaths(calibrate_on):
        # The same seeds each pass: the second pass differs only in its calibration population.
        conditions = generate_conditions(people, params, np.random.default_rng(seeds[2]),
                                         calibrate_on=calibrate_on)
        _, onset = conditions.efi_deficit_onsets()
        medicines = generate_medicines(people, (onset <= study_end).sum(axis=1), params,
                                       len(meds_list), np.random.default_rng(seeds[3]))

        def deficits_at(day: np.ndarray) -> np.ndarray:
            day = np.broadcast_to(np.asarray(day), (people.n,))
            coded = (onset <= day[:, None]).sum(axis=1)
            d_pat = day[medicines.patient]
            active = (medicines.start <= d_pat) & (medicines.stop > d_pat - 365)
            poly = np.bincount(medicines.patient[active], minlength=people.n) >= 5
            return coded + poly

        by_segment = np.column_stack([deficits_at(np.int64(d)) for d in edges[:-1]])
        death = draw_deaths(people, by_segment[:, -1], log_frailty, params,
                            np.random.default_rng(seeds[4]))
        return conditions, medicines, deficits_at, by_segment, death

    # Prevalence targets describe people registered at the study end (as QOF counts them); the
    # frail and old die first, so calibrate a second pass on the survivors of the first.
    *_, death = health_and_deaths(None)
    exit_ = exit_day(people, death, params)
    survivors = (exit_ > study_end) & (people.dob <= study_end)
    conditions, medicines, deficits_at, deficits_by_segment, death = health_and_deaths(survivors)
    exit_ = exit_day(people, death, params)
    steps.update()
    steps.update()

    emergency = draw_emergency(people, deficits_by_segment, log_frailty, exit_, death, params,
                               rng_adm)
    planned = draw_planned(people, exit_, death, params, rng_planned)
    steps.update()

    programme = run_programme(people, structure, emergency, deficits_at, exit_, params, rng_prog,
                              adoption=adoption)
    steps.update()

    # Tables.
    if adoption is None:
        _write(structure.table(), out / "practices", fmt)
    _write(_patients_table(people, structure, death, exit_, params, rng_extra), out / "patients",
           fmt)
    observed = emergency.subset(~programme.prevented)
    hfrs = load_codelist("hfrs", codelist_dir)
    _write(
        _admissions_table(people, observed, planned, deficits_by_segment[:, -1], hfrs, rng_extra,
                          first_spell),
        out / "admissions", fmt,
    )
    _write(_interventions_table(people, programme, params), out / "interventions", fmt)
    _write(pa.Table.from_pandas(programme.rollout, preserve_index=False).cast(pa.schema([
        ("pcn_id", pa.string()), ("practice_id", pa.string()), ("programme", pa.string()),
        ("start_date", pa.date32())])), out / "rollout", fmt)
    steps.update()

    codebook = build_codebook(
        conditions, load_codelist("ltc", codelist_dir), load_codelist("efi", codelist_dir),
        meds_list, load_codelist("personalised_care", codelist_dir),
    )
    practice_activity = np.exp(
        rng_extra.normal(0, 0.35, size=(len(structure.practice_id), len(PERSONALISED_CARE_RATES)))
    )
    maternity = planned.method.astype(str)
    mat = np.char.startswith(maternity, "3")
    enrol_day = programme.enrolment_day
    writer = None
    try:
        for lo in range(0, people.n, CHUNK_PATIENTS):
            hi = min(lo + CHUNK_PATIENTS, people.n)
            table = chunk_events(
                lo, hi, people, conditions, medicines, codebook, exit_, death, enrol_day,
                (planned.patient[mat], planned.admission[mat]), practice_activity, params,
                rng_events,
            )
            if fmt == "parquet":
                if writer is None:
                    writer = pq.ParquetWriter(out / "events.parquet", table.schema,
                                              compression="zstd")
                writer.write_table(table, row_group_size=1_000_000)
            else:
                _append_csv(table, out / "events.csv", header=(lo == 0))
    finally:
        if writer is not None:
            writer.close()
    steps.update()
    steps.close()

    def coded_deficits_on(day: pd.Timestamp) -> np.ndarray:
        # the eFI of the written record, as an analyst computes it (0 for anyone not scored)
        from ..frailty import efi

        lists = ({} if codelist_dir is None else
                 {"codelist": load_codelist("efi", codelist_dir), "medications": meds_list})
        scored = efi(out / f"events.{fmt}", out / f"patients.{fmt}", day.date(),
                     min_age=float(params["programme"]["eligibility"]["min_age"]), **lists)
        by_id = pd.Series(scored["efi_deficits"].to_numpy(), index=scored["patient_id"])
        return by_id.reindex(people.patient_id).fillna(0).to_numpy()

    itt_truth, itt_by_unit_month = itt_population_truth(
        people, structure, emergency, programme, exit_, coded_deficits_on, params,
        first_adoption_day=first_adoption_day)
    truth_dir = out / "truth"
    truth_dir.mkdir()
    enrol = _truth_enrolment(people, programme, structure)
    enrol.to_parquet(truth_dir / "enrolment.parquet", index=False)
    itt_by_unit_month.to_parquet(truth_dir / "itt_population.parquet", index=False)
    return _Piece(
        number=number,
        n_patients=int(people.n), n_spells=int(observed.n + planned.n),
        n_deaths=int((death >= 0).sum()),
        realised=truth_summary(people, emergency, programme, exit_, params),
        itt_truth=itt_truth, rollout=programme.rollout,
        efi_counts=_efi_counts(people, deficits_at, study_end, exit_),
    )


def _write_truth(out: Path, params: dict, structure, pieces: list[_Piece], realised: dict,
                 itt_truth: dict, rollout: pd.DataFrame, n_pieces: int = 1) -> dict:
    """Write ``truth/truth.json`` (the tables beside it are written already)."""
    efi_total = sum(p.efi_counts["total"] for p in pieces)
    efi_split = {c: (sum(p.efi_counts[c] for p in pieces) / efi_total if efi_total
                     else float("nan")) for c in ("fit", "mild", "moderate", "severe")}
    truth_doc = {
        "generator": f"phm-eval {__version__}",
        "scenario": params,
        "true_effect": {
            "outcome": "emergency admissions (spells with admission method 2x)",
            "scale": "rate ratio (= hazard ratio of the admission intensity) after enrolment",
            "hazard_ratio": params["programme"]["hazard_ratio"],
            "hazard_ratio_by_efi_category": params["programme"].get(
                "hazard_ratio_by_efi_category"),
            "note": (
                "The programme multiplies each enrolled patient's emergency-admission intensity by "
                "the hazard ratio from enrolment on. A Cox model of time to first admission "
                "estimates a marginal hazard ratio that is attenuated towards 1 by unobserved "
                "frailty; rate ratios of admission counts estimate the rate ratio itself."
            ),
        },
        "realised": realised,
        # The population-level effect (intention to treat) the generator implies; its unit-month
        # pieces are in itt_population.parquet.
        "itt_population": itt_truth,
        "rollout": [
            {k: (str(v) if k == "start_date" else v) for k, v in row.items()}
            for row in rollout.to_dict("records")
        ],
        "population": {
            "n_patients": int(sum(p.n_patients for p in pieces)),
            "n_practices": int(len(structure.practice_id)),
            "n_pcns": int(len(np.unique(structure.pcn_id))),
            "n_deaths": int(sum(p.n_deaths for p in pieces)),
            "efi_categories_at_study_end_65plus": efi_split,
            # generated a group of whole PCNs at a time when the ICS is large (memory)
            "generated_in_pieces": int(n_pieces),
        },
    }
    (out / "truth" / "truth.json").write_text(json.dumps(truth_doc, indent=2, default=str)
                                              + "\n")
    return truth_doc


def _efi_counts(people, deficits_at, day, exit_) -> dict:
    alive = (people.reg_start <= day) & (exit_ > day) & (people.age_at(day) >= 65)
    cats = efi_category(deficits_at(np.int64(day))[alive])
    counts = {c: int(np.sum(cats == c)) for c in ("fit", "mild", "moderate", "severe")}
    return {**counts, "total": int(alive.sum())}


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    arr = np.asarray(days).astype(np.int32)
    mask = None if missing is None else np.asarray(missing)
    return pa.array(arr, type=pa.date32(), mask=mask)


def _patients_table(people, structure, death, exit_, params, rng) -> pa.Table:
    study_end = to_days(params["study_end"])
    dead = death >= 0
    left = (~dead) & (people.reg_end_candidate <= study_end)
    reg_end = np.where(dead, death, people.reg_end_candidate)
    imd_missing = rng.random(people.n) < 0.005
    return pa.table(
        {
            "patient_id": pa.array(people.patient_id, type=pa.string()),
            "practice_id": pa.array(structure.practice_id[people.practice_index], type=pa.string()),
            "sex": pa.array(people.sex, type=pa.string()),
            "date_of_birth": _dates(people.dob),
            "ethnicity": pa.array(people.ethnicity.astype(str), type=pa.string()),
            "imd_decile": pa.array(people.imd_decile, type=pa.int64(), mask=imd_missing),
            "registration_start": _dates(people.reg_start),
            "registration_end": _dates(reg_end, ~(dead | left)),
            "date_of_death": _dates(np.where(dead, death, 0), ~dead),
        }
    )


def _admissions_table(people, emergency, planned, deficits_end, hfrs, rng,
                      first_spell: int = 0) -> pa.Table:
    patient = np.concatenate([emergency.patient, planned.patient])
    admission = np.concatenate([emergency.admission, planned.admission])
    discharge = np.concatenate([emergency.discharge, planned.discharge])
    method = np.concatenate([emergency.method, planned.method]).astype(str)
    primary = np.concatenate([emergency.primary, planned.primary]).astype(str)
    order = np.lexsort((method, admission, patient))
    patient, admission, discharge = patient[order], admission[order], discharge[order]
    method, primary = method[order], primary[order]
    n = len(patient)
    # Secondary diagnoses: frailty-related codes (those the Hospital Frailty Risk Score uses)
    # become more frequent with frailty.
    codes = hfrs["icd10_code"].to_numpy(dtype=str)
    n_sec = np.minimum(rng.poisson(0.15 + 0.12 * deficits_end[patient]), 8)
    draws = rng.integers(0, len(codes), size=int(n_sec.sum()))
    pieces = np.split(codes[draws], np.cumsum(n_sec)[:-1]) if n else []
    secondary = [";".join(sorted(set(p))) if len(p) else None for p in pieces]
    spell_id = np.char.add("SP", np.char.zfill(np.arange(first_spell + 1, first_spell + n + 1)
                                               .astype(str), 9))
    return pa.table(
        {
            "patient_id": pa.array(people.patient_id[patient], type=pa.string()),
            "spell_id": pa.array(spell_id, type=pa.string()),
            "admission_date": _dates(admission),
            "discharge_date": _dates(discharge),
            "admission_method": pa.array(method, type=pa.string()),
            "primary_diagnosis": pa.array(primary, type=pa.string()),
            "secondary_diagnoses": pa.array(secondary, type=pa.string()),
        }
    )


def _interventions_table(people, programme, params) -> pa.Table:
    idx = np.flatnonzero(programme.enrolled)
    idx = idx[np.lexsort((idx, programme.enrolment_day[idx]))]
    return pa.table(
        {
            "patient_id": pa.array(people.patient_id[idx], type=pa.string()),
            "programme": pa.array([params["programme"]["name"]] * len(idx), type=pa.string()),
            "enrolment_date": _dates(programme.enrolment_day[idx]),
            "end_date": pa.nulls(len(idx), type=pa.date32()),
        }
    )


def _truth_enrolment(people, programme, structure) -> pd.DataFrame:
    idx = np.flatnonzero(programme.eligible)
    day = programme.enrolment_day[idx]
    return pd.DataFrame(
        {
            "patient_id": people.patient_id[idx],
            "practice_id": structure.practice_id[people.practice_index[idx]],
            "unit_start_date": EPOCH + programme.unit_start[idx].astype("timedelta64[D]"),
            "eligible_reason": programme.eligible_reason[idx],
            "efi_deficits_at_case_finding": programme.deficits_at_start[idx],
            "emergency_admissions_12m_before_case_finding": programme.recent_admissions[idx],
            "enrolled": programme.enrolled[idx],
            "enrolment_date": np.where(
                day >= 0, EPOCH + np.maximum(day, 0).astype("timedelta64[D]"),
                np.datetime64("NaT"),
            ),
            "true_rate_ratio": programme.hazard_ratio[idx],
        }
    )


def _write(table, stem: Path, fmt: str) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, stem.with_suffix(".parquet"), compression="zstd")
    else:
        _append_csv(table, stem.with_suffix(".csv"), header=True)


def _append_csv(table: pa.Table, path: Path, header: bool) -> None:
    options = pacsv.WriteOptions(include_header=header)
    with open(path, "ab") as fh:
        pacsv.write_csv(table, fh, write_options=options)


__all__ = ["simulate", "SimulationResult", "DAYS_PER_YEAR", "NEVER"]
