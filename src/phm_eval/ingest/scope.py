"""Scope: cut the validated tables to the study and count every record set aside or changed.

Extracts are cut at the day they were taken, not at the study end, so records after the study
end are expected: they are excluded (events, spells, enrolments, roll-out dates) or, when only a
closing date lies beyond, the date is cut (a spell straddling the study end is discharged on it;
a death or de-registration after it leaves the person alive and registered at the study end; an
enrolment ending after it is open). People who left before the study start, or joined after it
ended, are excluded with their records. Every step is a row of the flow table
(``table, step, reason, n``): for every table, ``read - exclude = kept``; ``modify`` rows count
kept records whose dates were cut.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from difflib import get_close_matches
from pathlib import Path

import pyarrow as arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contract import is_text_type
from ..errors import InputError
from . import _common
from ._common import COMPRESSION, Problems, StudyPeriod

FLOW_COLUMNS = ["table", "step", "reason", "n"]
POPULATION = "patient not in the study population"
# Tables that a filter must not empty (the analysis cannot run without them).
MUST_KEEP_ROWS = ("patients", "events", "admissions", "interventions")

Mask = Callable[[arrow.Table], arrow.Array]


@dataclass
class _Exclude:
    reason: str
    mask: Mask  # True = excluded
    columns: tuple[str, ...]  # the columns ``mask`` reads


@dataclass
class _Modify:
    reason: str
    column: str
    mask: Mask  # True = value replaced
    value: arrow.Scalar

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)


def _d(value: str | date) -> arrow.Scalar:
    return arrow.scalar(date.fromisoformat(str(value)), type=arrow.date32())


def _after(column: str, when: arrow.Scalar) -> Mask:
    return lambda t: pc.fill_null(pc.greater(t.column(column), when), False)


def _is_in(column: arrow.ChunkedArray | arrow.Array, values: arrow.Array) -> arrow.Array:
    if isinstance(column, arrow.ChunkedArray):
        if not column.num_chunks:
            return arrow.chunked_array([], type=arrow.bool_())
        return arrow.chunked_array([_is_in(c, values) for c in column.chunks])
    if arrow.types.is_dictionary(column.type):
        return pc.take(pc.is_in(column.dictionary, value_set=values), column.indices)
    return pc.is_in(column, value_set=values)


def _read_handle(source: Path) -> pq.ParquetFile:
    names = pq.read_schema(source).names
    return pq.ParquetFile(source, read_dictionary=[
        n for n in ("patient_id", "snomed_code", "programme") if n in names])


def _rewrite(source: Path, target: Path, excludes: list[_Exclude], modifies: list[_Modify]
             ) -> tuple[int, list[int], list[int], int]:
    """Write ``source`` to ``target`` without the excluded rows and with the modified values.

    Returns rows read, rows excluded per exclusion (each row counted once, by the first
    reason that applies), values modified per modification, and rows kept.
    """
    handle = _read_handle(source)
    n_read = handle.metadata.num_rows
    n_excluded = [0] * len(excludes)
    n_modified = [0] * len(modifies)
    n_kept = 0
    # Reading repeated text as dictionaries makes filtering and writing cheap; the written file
    # must not record the dictionaries, so that readers see plain text.
    # Statistics on text cost a fifth of the write and help no later query; dates keep theirs.
    stats = [f.name for f in handle.schema_arrow if not is_text_type(f.type)]
    writer = pq.ParquetWriter(target, handle.schema_arrow, compression=COMPRESSION,
                              store_schema=False, write_statistics=stats)
    try:
        for batch in handle.iter_batches(batch_size=_common.CHUNK_ROWS):
            table = arrow.Table.from_batches([batch])
            out = None
            for i, rule in enumerate(excludes):
                hit = rule.mask(table)
                if out is not None:
                    hit = pc.and_(pc.invert(out), hit)
                n_excluded[i] += pc.sum(hit.cast(arrow.int64())).as_py() or 0
                out = hit if out is None else pc.or_(out, hit)
            if out is not None:
                table = table.filter(pc.invert(out))
            for i, rule in enumerate(modifies):
                hit = rule.mask(table)
                n_modified[i] += pc.sum(hit.cast(arrow.int64())).as_py() or 0
                j = table.column_names.index(rule.column)
                table = table.set_column(j, rule.column,
                                         pc.if_else(hit, rule.value, table.column(j)))
            writer.write_table(table)
            n_kept += table.num_rows
    finally:
        writer.close()
        handle.close()
    return n_read, n_excluded, n_modified, n_kept


def _nothing_to_do(source: Path, excludes: list[_Exclude], modifies: list[_Modify]) -> bool:
    """Whether no rule applies to any row (checked on the columns the rules read)."""
    if not excludes and not modifies:
        return True
    rules = [*excludes, *modifies]
    columns = sorted({c for rule in rules for c in rule.columns})
    # A batch at a time: the events table of a large ICS does not fit in memory as columns.
    handle = pq.ParquetFile(source, read_dictionary=[
        c for c in ("patient_id", "programme") if c in columns])
    try:
        for batch in handle.iter_batches(batch_size=_common.CHUNK_ROWS, columns=columns):
            table = arrow.Table.from_batches([batch])
            if any(pc.any(rule.mask(table)).as_py() for rule in rules):
                return False
    finally:
        handle.close()
    return True


class _Flow:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, table: str, step: str, reason: str, n: int) -> None:
        self.rows.append({"table": table, "step": step, "reason": reason, "n": int(n)})


def _scope_table(table: str, source: Path, target: Path, copy: bool, excludes: list[_Exclude],
                 modifies: list[_Modify], kept_reason: str, flow: _Flow) -> tuple[int, int]:
    if copy and _nothing_to_do(source, excludes, modifies):
        n = pq.read_metadata(source).num_rows
        shutil.copyfile(source, target)
        n_excluded, n_modified, n_read, n_kept = [0] * len(excludes), [0] * len(modifies), n, n
    else:
        n_read, n_excluded, n_modified, n_kept = _rewrite(source, target, excludes, modifies)
    flow.add(table, "read", "rows in file", n_read)
    for rule, n in zip(excludes, n_excluded, strict=True):
        flow.add(table, "exclude", rule.reason, n)
    for rule, n in zip(modifies, n_modified, strict=True):
        flow.add(table, "modify", rule.reason, n)
    flow.add(table, "kept", kept_reason, n_kept)
    return n_read, n_kept


def write_outputs(files: dict[str, Path], is_input: set[str], names: dict[str, str],
                  period: StudyPeriod, out: Path) -> list[dict]:
    """Write the in-scope rows of every table to ``out`` and return the flow table's rows.

    ``is_input`` names the tables whose file in ``files`` is the user's own (already in the
    contract's form), which is copied unchanged when nothing is excluded or cut.

    Raises
    ------
    InputError
        When the study's filters leave no rows in a table the analysis needs, with the counts
        of what was excluded and why.
    """
    flow = _Flow()
    start, end = _d(period.study_start), _d(period.study_end)
    after = f"after the study end ({period.study_end})"
    far = arrow.scalar(date.max, type=arrow.date32())
    no_date = arrow.scalar(None, type=arrow.date32())

    def left_before_start(t: arrow.Table) -> arrow.Array:
        left = pc.fill_null(t.column("registration_end"), far)
        died = pc.fill_null(t.column("date_of_death"), far)
        return pc.or_(pc.less(left, start), pc.less(died, start))

    emptied = Problems()
    scoped: dict[str, tuple[int, int]] = {}
    scoped["patients"] = _scope_table(
        "patients", files["patients"], out / "patients.parquet", "patients" in is_input,
        [_Exclude("registration ended or died before the study start", left_before_start,
                  ("registration_end", "date_of_death")),
         _Exclude(f"registered only {after}", _after("registration_start", end),
                  ("registration_start",))],
        [_Modify(f"date_of_death {after}: set to missing (alive at the study end)",
                 "date_of_death", _after("date_of_death", end), no_date),
         _Modify(f"registration_end {after}: set to missing (registered at the study end)",
                 "registration_end", _after("registration_end", end), no_date)],
        "study population", flow)
    # Foreign keys are checked, so a row is in scope unless its patient is one of the (few)
    # excluded: a small lookup set is far cheaper than the population.
    ids = pq.read_table(files["patients"], columns=["patient_id"])["patient_id"]
    kept_ids = pq.read_table(out / "patients.parquet", columns=["patient_id"])["patient_id"]
    excluded = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=kept_ids))).combine_chunks()
    population = _Exclude(POPULATION, lambda t: _is_in(t.column("patient_id"), excluded),
                          ("patient_id",))

    programme = arrow.array([period.programme], type=arrow.string())
    other_programme = _Exclude(f"programme other than '{period.programme}'",
                               lambda t: pc.invert(_is_in(t.column("programme"), programme)),
                               ("programme",))
    specs = {
        "events": ([population, _Exclude(f"dated {after}", _after("date", end), ("date",))], []),
        "admissions": (
            [population, _Exclude(f"admitted {after}", _after("admission_date", end),
                               ("admission_date",))],
            [_Modify(f"discharged {after}: discharge_date set to the study end",
                     "discharge_date", _after("discharge_date", end), end)]),
        "interventions": (
            ([other_programme] if period.programme else [])
            + [population, _Exclude(f"enrolled {after}", _after("enrolment_date", end),
                                          ("enrolment_date",))],
            [_Modify(f"end_date {after}: set to missing (still enrolled at the study end)",
                     "end_date", _after("end_date", end), no_date)]),
    }
    for table, (excludes, modifies) in specs.items():
        scoped[table] = _scope_table(table, files[table], out / f"{table}.parquet",
                                     table in is_input, excludes, modifies, "in scope", flow)
    _scope_table("practices", files["practices"], out / "practices.parquet",
                 "practices" in is_input, [], [], "rows in file", flow)
    if "rollout" in files:
        _scope_table("rollout", files["rollout"], out / "rollout.parquet", "rollout" in is_input,
                     [_Exclude(f"starts {after}", _after("start_date", end), ("start_date",))], [], "in scope",
                     flow)
    for table in MUST_KEEP_ROWS:
        n_read, n_kept = scoped[table]
        if n_read and not n_kept:
            emptied.add(_emptied(table, names[table], flow, files[table], period))
    emptied.raise_if_any()
    return flow.rows


def _emptied(table: str, file_name: str, flow: _Flow, source: Path,
             period: StudyPeriod) -> InputError:
    """The error for a table that the study's filters left empty, with the counts."""
    rows = [r for r in flow.rows if r["table"] == table]
    n_read = next(r["n"] for r in rows if r["step"] == "read")
    reasons = "; ".join(f"{r['reason']}: {r['n']:,}" for r in rows
                        if r["step"] == "exclude" and r["n"])
    rule = (f"no rows are left after the study's filters: {n_read:,} read, all excluded "
            f"({reasons})")
    column = None
    if table == "interventions" and period.programme and any(
            r["reason"].startswith("programme other than") and r["n"] for r in rows):
        column = "programme"
        listed = pq.read_table(source, columns=["programme"])["programme"]
        counts = sorted(((c["values"], c["counts"]) for c in
                         pc.value_counts(listed.combine_chunks()).to_pylist()),
                        key=lambda vc: -vc[1])
        shown = ", ".join(f"'{value}' ({n:,} rows)" for value, n in counts[:10])
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        rule += f". Programmes found: {shown}{more}"
        names = [value for value, _ in counts]
        close = [v for v in names if v.casefold().strip() == period.programme.casefold().strip()]
        close = close or get_close_matches(period.programme, names, n=1)
        if close:
            rule += f"; did you mean '{close[0]}'?"
    return InputError(file_name, rule, column=column)
