"""What may leave a run's results folder, and the check that it passes disclosure control.

A run's results folder is split in two:

* ``<results>/internal/`` holds what stays inside the secure environment: patient-level
  tables (``data/``, ``synthetic/``, every ``*.parquet``), unrounded JSON (such as the full
  risk-model report) and logs.  Nothing under it is checked, and nothing under it may be
  released.
* every other file is **releasable**, and :func:`check_release` reads every one of them.

:func:`check_release` reads CSV/TSV, JSON, Markdown, HTML and SVG (and any other file that is
plain text) with :func:`~phm_eval.disclosure.scan.check_text`, and searches each for patient
identifiers when a patients table is given.  Images (PNG, JPEG, PDF) cannot be read: they are
listed as *not scanned*, trusted only because the workflow draws every figure from a disclosed
table.  Data files (Parquet, pickles, databases) outside ``internal/`` are errors.

:func:`disclose_json` makes a JSON-ready object safe to write into the releasable part of the
folder: every value labelled as a count is disclosed by the policy.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import INTERNAL, MANIFEST
from .check import STAT_WORDS, Violation, is_count_label, name_words
from .identifiers import patient_identifiers
from .policy import DisclosurePolicy
from .rounding import disclose_counts
from .scan import IdentifierIndex, _line_of, _mask, check_text
from .tables import SIDECAR_SUFFIX

logger = logging.getLogger(__name__)

__all__ = [
    "INTERNAL_DIR",
    "ReleaseCheck",
    "check_release",
    "disclose_json",
    "is_internal",
    "release_files",
    "scan_release",
]

#: The sub-folder of a results folder that never leaves the secure environment.
INTERNAL_DIR = INTERNAL

#: Figures and documents that cannot be read as text: listed as not scanned.
IMAGE_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .webp .bmp .tif .tiff .pdf .svgz .ico .eps .ps".split()
)
#: Data and model files that may hold patient-level records: never releasable.
DATA_SUFFIXES = frozenset(
    """.parquet .pq .feather .arrow .ipc .pkl .pickle .joblib .npy .npz .h5 .hdf5 .rds
    .rdata .rda .dta .sav .sas7bdat .xpt .db .duckdb .sqlite .sqlite3 .xlsx .xls .zip .gz
    .bz2 .xz .zst .tar .7z""".split()
)
_SNIFF_BYTES = 8192


@dataclass
class ReleaseCheck:
    """The outcome of :func:`scan_release`.

    Attributes
    ----------
    folder : Path
        The results folder checked.
    scanned : list of str
        Releasable files read and checked (paths relative to ``folder``).
    not_scanned : list of tuple of str
        ``(file, reason)`` for releasable files that cannot be read as text (figures,
        the manuscript PDF): trusted only because they are drawn from disclosed tables.
    internal : int
        Files under ``internal/``, not checked because they are not released.
    violations : list of Violation
        Every problem found, errors and warnings.
    notes : list of str
        What the check could not do (e.g. no patients table: identifiers not searched).
    """

    folder: Path
    scanned: list[str] = field(default_factory=list)
    not_scanned: list[tuple[str, str]] = field(default_factory=list)
    internal: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Violation]:
        """Violations that stop a release."""
        return [v for v in self.violations if v.severity == "error"]

    @property
    def passed(self) -> bool:
        """True when nothing stops the release."""
        return not self.errors

    def problems(self, *, include_warnings: bool = False) -> list[str]:
        """One line per problem (errors, and warnings if asked), as ``check_release`` returns."""
        return [str(v) for v in self.violations
                if v.severity == "error" or include_warnings]

    def summary(self) -> str:
        """What was checked, in one sentence."""
        return (f"{len(self.scanned)} releasable files checked, {len(self.not_scanned)} not "
                f"readable as text (listed), {self.internal} under {INTERNAL_DIR}/ not checked; "
                f"{len(self.errors)} problem(s)")


def is_internal(relative: str | os.PathLike[str]) -> bool:
    """True if a path relative to the results folder lies under ``internal/``."""
    parts = Path(relative).parts
    return bool(parts) and parts[0] == INTERNAL_DIR


def release_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every file of a results folder that would be released: all but ``internal/**``."""
    root = Path(folder)
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not is_internal(p.relative_to(root))
    )


def _policy(policy: DisclosurePolicy | Mapping[str, Any] | None, root: Path
            ) -> DisclosurePolicy:
    if isinstance(policy, DisclosurePolicy):
        return policy
    if policy is not None:
        return DisclosurePolicy.from_config(policy)
    # The run's own rules, recorded in its manifest; NHS Digital rules otherwise.
    manifest = root / MANIFEST
    if root.is_dir() and manifest.is_file():
        try:
            section = json.loads(manifest.read_text(encoding="utf-8")).get("config", {})
            section = section.get("disclosure") if isinstance(section, Mapping) else None
        except (OSError, ValueError):
            section = None
        if isinstance(section, Mapping):
            return DisclosurePolicy.from_config(section)
    return DisclosurePolicy()


def _identifiers(patients: Any) -> IdentifierIndex | None:
    if patients is None or isinstance(patients, IdentifierIndex):
        return patients
    if isinstance(patients, (str, os.PathLike)):
        return IdentifierIndex(patient_identifiers(patients))
    return IdentifierIndex(patients)


def _read_text(path: Path) -> str | None:
    """The file's text, or None if it looks binary."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniff boundary
            return None
    return path.read_text(encoding="utf-8", errors="replace")


def scan_release(
    folder: str | os.PathLike[str],
    patients: str | os.PathLike[str] | IdentifierIndex | Iterable[Any] | None = None,
    policy: DisclosurePolicy | Mapping[str, Any] | None = None,
) -> ReleaseCheck:
    """Check every releasable file of a results folder; the full account.

    Parameters are those of :func:`check_release`.

    Returns
    -------
    ReleaseCheck
        Files scanned, files not readable as text, violations and notes.
    """
    root = Path(folder)
    if not root.exists():
        from phm_eval.errors import InputError

        raise InputError(str(root), "folder to check not found")
    rules = _policy(policy, root)
    identifiers = _identifiers(patients)
    result = ReleaseCheck(folder=root)
    if identifiers is None:
        result.notes.append("no patients table given: patient identifiers were not searched for")
    elif identifiers.n_skipped:
        result.notes.append(f"{identifiers.n_skipped} patient identifiers are shorter than 6 "
                            "characters and were not searched for")
    if root.is_dir():
        result.internal = sum(1 for p in (root / INTERNAL_DIR).rglob("*") if p.is_file())
    for path in release_files(root):
        name = path.name if path == root else path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix in DATA_SUFFIXES:
            result.violations.append(Violation(
                f"a data file in the releasable part of the folder (patient-level and "
                f"unrounded files belong under {INTERNAL_DIR}/)", name))
            continue
        if suffix in IMAGE_SUFFIXES:
            result.not_scanned.append((name, "image or document: not readable as text; "
                                             "trusted only if drawn from disclosed tables"))
            continue
        try:
            text = _read_text(path)
        except OSError as exc:
            result.violations.append(Violation(f"could not be read: {exc}", name))
            continue
        if text is None:
            result.not_scanned.append((name, "binary file: not readable as text"))
            continue
        result.scanned.append(name)
        if identifiers is not None:
            lower = text.lower()
            for hit in identifiers.find(text):
                result.violations.append(Violation(
                    "a patient identifier appears in the file", name,
                    row=_line_of(lower, hit), value=_mask(hit)))
        result.violations.extend(check_text(
            name, text, rules, sidecar=path.with_name(path.stem + SIDECAR_SUFFIX),
            suffix=suffix))
    logger.info("release check of %s: %s", root, result.summary())
    return result


def check_release(
    folder: str | os.PathLike[str],
    patients: str | os.PathLike[str] | IdentifierIndex | Iterable[Any] | None = None,
    policy: DisclosurePolicy | Mapping[str, Any] | None = None,
) -> list[str]:
    """Problems that stop the releasable part of a results folder from leaving, in words.

    Every file of ``folder`` except those under ``internal/`` is releasable and is checked:

    * **CSV/TSV**: counts (the columns named in a ``<stem>.sdc.json`` sidecar when there is
      one, else inferred), statistics shown for few people, identifier and min/max columns;
    * **JSON**: values of keys labelled as counts (``n``, ``events``, ``patients``,
      ``n_flagged``, ``true_positives``...) at any depth, statistics (mean, median...) beside
      a small or suppressed count, identifier fields.  c-statistics, rates, proportions,
      confidence limits and counts of other things (``n_bootstrap``, ``n_clusters``) are not
      counts;
    * **Markdown, HTML, SVG**: numbers in the count columns of their tables, and counts in
      prose (``n = 3``, ``257 patients``, ``12 with the outcome``);
    * any other text file: counts in prose;
    * every text file: patient identifiers, when ``patients`` is given.

    Rounded counts (0, and multiples of the rounding base above the threshold) pass.
    Figures and documents that cannot be read as text (PNG, PDF) are not scanned; they are
    listed by :func:`scan_release` and logged.  Data files (Parquet...) outside ``internal/``
    are errors.

    Parameters
    ----------
    folder : path
        A run's results folder (or one file).
    patients : path, IdentifierIndex or iterable, optional
        The patients table (Parquet or CSV with ``patient_id``, or a folder holding one), or
        the identifiers themselves; none may appear in a releasable file.  Without it,
        identifiers are not searched for.
    policy : DisclosurePolicy or mapping, optional
        The rules (a ``disclosure`` configuration section is accepted).  Defaults to the
        ``disclosure`` section of ``folder/manifest.json``, else NHS Digital rules.

    Returns
    -------
    list of str
        One line per error, naming the file (and column and row, or JSON path); empty when
        the releasable files pass.
    """
    result = scan_release(folder, patients, policy)
    for name, reason in result.not_scanned:
        logger.info("not scanned: %s (%s)", name, reason)
    for note in result.notes:
        logger.warning("%s", note)
    return result.problems()


# ----------------------------------------------------------------------------- disclose


def disclose_json(obj: Any, policy: DisclosurePolicy | None = None) -> Any:
    """A copy of a JSON-ready object in which every value labelled as a count is disclosed.

    Values of keys that :func:`~phm_eval.disclosure.check.is_count_label` takes for counts
    (``n``, ``events``, ``n_development``, ``true_positives``...) are suppressed (``None``)
    or rounded by the policy, as whole numbers.  In an object where such a count is
    suppressed or describes ``policy.statistic_threshold`` people or fewer, the other
    numbers (statistics of those people: c-statistics, means, proportions) become ``None``
    as well.  Fractions under a count label (expected events) are statistics and are kept.

    Parameters
    ----------
    obj : dict, list or scalar
        JSON-ready data (as from ``to_dict()`` methods).
    policy : DisclosurePolicy, optional
        Defaults to NHS Digital rules.

    Returns
    -------
    Any
        The disclosed copy; it passes :func:`check_release`.
    """
    policy = policy or DisclosurePolicy()
    if isinstance(obj, list):
        return [disclose_json(item, policy) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    few = False
    for key, value in obj.items():
        if is_count_label(key, policy):
            disclosed, small = _disclose_count_value(value, policy)
            out[key] = disclosed
            few |= small
        else:
            out[key] = disclose_json(value, policy)
    if few:
        for key, value in out.items():
            words = name_words(key)
            setting = bool(words & _SETTING_WORDS) and "risk" not in words
            if (not is_count_label(key, policy) and not setting
                    and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and (isinstance(value, float) or words & STAT_WORDS)):
                out[key] = None
    return out


#: Numbers beside a count that are settings of the analysis, not statistics of its people
#: (kept when the count is small); a risk threshold is a patient's predicted risk, not kept.
_SETTING_WORDS = frozenset("threshold cutoff horizon alpha level year time period per".split())


def _disclose_count_value(value: Any, policy: DisclosurePolicy) -> tuple[Any, bool]:
    """(disclosed value, whether it describes few people) for a value under a count label."""
    if isinstance(value, dict):
        pairs = [_disclose_count_value(v, policy) for v in value.values()]
        return dict(zip(value, (p[0] for p in pairs), strict=True)), any(p[1] for p in pairs)
    if isinstance(value, list):
        pairs = [_disclose_count_value(v, policy) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if value is None:
        return None, True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, False
    number = float(value)
    if not np.isfinite(number) or not number.is_integer():
        return value, False
    disclosed, _ = disclose_counts(np.array([number]), policy)
    small = 0 < number <= max(policy.statistic_threshold, policy.threshold)
    shown = disclosed[0]
    return (None if np.isnan(shown) else int(shown)), small
