"""Scan a folder of outputs for disclosure breaches before anything leaves it.

Every CSV/TSV, JSON, HTML, Markdown and SVG file is read as text and checked:

* **patient identifiers**: the text is split into runs of letters and digits
  and each run is looked up in a set of known identifiers (one hash lookup per
  word, so a million identifiers cost no more per file than ten);
* **identifier columns** (``patient_id``, ``nhs_number``...) in any table or
  JSON object;
* **tables** (CSV/TSV files, lists of records in JSON, ``<table>`` elements in
  HTML, pipe tables in Markdown) through :func:`check_table`, using the column
  roles in a ``<stem>.sdc.json`` file beside a CSV when there is one;
* **counts labelled as counts in JSON**: the value of any key such as ``n``,
  ``events``, ``patients``, ``n_flagged`` or ``true_positives``, at any depth (see
  :func:`~phm_eval.disclosure.check.is_count_label`); statistics (c-statistics, rates,
  proportions, confidence limits) and counts of things other than people
  (``n_bootstrap``, ``n_clusters``) are not counts;
* **counts in prose** such as ``n = 3``, ``257 patients`` or ``12 with the outcome`` in
  HTML, Markdown and SVG text.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .check import (
    STAT_WORDS,
    Violation,
    _count_rule,
    check_table,
    is_count_label,
    is_identifier_column,
    name_words,
)
from .policy import DisclosurePolicy
from .rounding import is_disclosed_count
from .tables import SIDECAR_SUFFIX

logger = logging.getLogger(__name__)

SCANNED_SUFFIXES = (".csv", ".tsv", ".json", ".html", ".htm", ".md", ".svg")
_WORD = re.compile(r"[0-9a-z]+")
_N_EQUALS = re.compile(r"(?<![0-9A-Za-z_])[nN]\s*=\s*(\d[\d,]*)(?![\d.])")
#: A whole number directly followed by a word for people ("257 patients", "12 with the
#: outcome"); not after "in", "per", "of"... ("1 in 5 patients", "per 1,000 people").
_PEOPLE_COUNT = re.compile(
    r"(?<![\w.,/%-])(\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]*\d)(?!\s*%)\s+"
    r"(?:patients|people|persons|individuals|residents|deaths|cases|"
    r"with the outcome|with an event|with the event)\b"
    r"(?!\s+(?:per|or\s+(?:fewer|more|less|over|under))\b)",
    re.IGNORECASE,
)
_NOT_A_COUNT_BEFORE = frozenset(
    "in per of every each than least most to aged over under within top first last next "
    "past with had".split()
)


class IdentifierIndex:
    """A set of patient identifiers prepared for fast lookups in text.

    Identifiers are compared without case.  An identifier made only of letters
    and digits is found as a whole word; one containing separators
    (``AB-123-X``) is found as the same sequence of words with any separators
    between them.  Identifiers shorter than ``min_length`` characters are
    skipped, since short ones (``17``) also occur as ordinary numbers; how many
    were skipped is in :attr:`n_skipped`.

    Parameters
    ----------
    identifiers : iterable
        Patient identifiers (any type; converted with ``str``).
    min_length : int, default 6
    """

    def __init__(self, identifiers: Iterable[Any], min_length: int = 6) -> None:
        values = identifiers.tolist() if isinstance(identifiers, pd.Series) else identifiers
        # Plain Python beats pandas string methods here; NaN is the value unequal to itself.
        texts = [str(v).strip().lower() for v in values if v is not None and v == v]
        kept = [t for t in texts if len(t) >= min_length]
        self.n_skipped = len(texts) - len(kept)
        simple = [t for t in kept if t.isascii() and t.isalnum()]
        self._simple: frozenset[str] = frozenset(simple)
        self._compound: dict[str, list[tuple[str, ...]]] = {}
        if len(simple) < len(kept):
            for value in kept:
                if value.isascii() and value.isalnum():
                    continue
                words = tuple(_WORD.findall(value))
                if words:
                    self._compound.setdefault(words[0], []).append(words)
        if self.n_skipped:
            logger.warning(
                "%d identifiers shorter than %d characters are not searched for",
                self.n_skipped,
                min_length,
            )

    def __len__(self) -> int:
        return len(self._simple) + sum(len(v) for v in self._compound.values())

    def find(self, text: str) -> list[str]:
        """Identifiers (lower case) that occur in ``text``, sorted."""
        words = _WORD.findall(text.lower())
        hits = set(self._simple.intersection(words))
        if self._compound:
            for i, word in enumerate(words):
                for candidate in self._compound.get(word, ()):
                    if tuple(words[i : i + len(candidate)]) == candidate:
                        hits.add("-".join(candidate))
        return sorted(hits)


def _mask(identifier: str) -> str:
    return identifier[:2] + "…" if len(identifier) > 2 else "…"


def _line_of(text_lower: str, identifier: str) -> str | None:
    first = identifier.split("-")[0]
    match = re.search(rf"(?<![0-9a-z]){re.escape(first)}(?![0-9a-z])", text_lower)
    if match is None:
        return None
    return f"line {text_lower.count(chr(10), 0, match.start()) + 1}"


def check_report_folder(
    path: str | Path,
    policy: DisclosurePolicy | None = None,
    identifiers: IdentifierIndex | Iterable[Any] | None = None,
    recursive: bool = True,
) -> list[Violation]:
    """Check every output file in a folder against the disclosure policy.

    Parameters
    ----------
    path : path
        The folder (or a single file).
    policy : DisclosurePolicy, optional
        Defaults to NHS Digital rules.
    identifiers : IdentifierIndex or iterable, optional
        Patient identifiers that must not appear anywhere.  Build an
        :class:`IdentifierIndex` once when checking several folders.
    recursive : bool, default True
        Also check sub-folders.

    Returns
    -------
    list of Violation
        Empty when the folder is safe to release.  ``file`` is relative to
        ``path``.  A run should fail on any violation whose severity is
        ``"error"``.
    """
    policy = policy or DisclosurePolicy()
    root = Path(path)
    if identifiers is not None and not isinstance(identifiers, IdentifierIndex):
        identifiers = IdentifierIndex(identifiers)
    files = [root] if root.is_file() else sorted(
        p for p in (root.rglob("*") if recursive else root.glob("*"))
        if p.is_file() and p.suffix.lower() in SCANNED_SUFFIXES
    )
    violations: list[Violation] = []
    for file in files:
        name = file.name if file == root else file.relative_to(root).as_posix()
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            violations.append(Violation(f"could not be read: {exc}", name))
            continue
        if identifiers is not None:
            lower = text.lower()
            for hit in identifiers.find(text):
                violations.append(
                    Violation(
                        "a patient identifier appears in the file",
                        name,
                        row=_line_of(lower, hit),
                        value=_mask(hit),
                    )
                )
        violations.extend(_check_content(file, name, text, policy))
    logger.info("disclosure check: %d files, %d violations", len(files), len(violations))
    return violations


def _check_content(file: Path, name: str, text: str, policy: DisclosurePolicy) -> list[Violation]:
    return check_text(name, text, policy, sidecar=file.with_name(file.stem + SIDECAR_SUFFIX),
                      suffix=file.suffix)


def check_text(
    name: str,
    text: str,
    policy: DisclosurePolicy | None = None,
    *,
    sidecar: Path | None = None,
    suffix: str | None = None,
) -> list[Violation]:
    """Disclosure problems in the text of one output file (identifiers apart).

    Parameters
    ----------
    name : str
        The file's name in violations (its path relative to the folder checked).
    text : str
        The file's text.
    policy : DisclosurePolicy, optional
        Defaults to NHS Digital rules.
    sidecar : path, optional
        The ``.sdc.json`` file naming a CSV's column roles, used when it exists.
    suffix : str, optional
        The file type (``.csv``, ``.tsv``, ``.json``, ``.md``, ``.html``, ``.svg``; any
        other is read as plain text); defaults to the suffix of ``name``.

    Returns
    -------
    list of Violation
        CSV/TSV: :func:`check_table` on the table.  JSON: identifier fields, counts labelled
        as counts, statistics beside a small count.  HTML, SVG, Markdown: their tables
        (counts in count columns) and counts in prose.  Plain text: counts in prose.
    """
    policy = policy or DisclosurePolicy()
    suffix = (suffix or Path(name).suffix).lower()
    try:
        if suffix in (".csv", ".tsv"):
            return _check_delimited(name, text, policy, suffix, sidecar)
        if suffix == ".json":
            return [] if name.endswith(SIDECAR_SUFFIX) else _check_json(name, text, policy)
        if suffix in (".html", ".htm", ".svg"):
            parser = _TableTextParser()
            parser.feed(text)
            out = []
            for i, table in enumerate(parser.tables):
                frame = _rows_to_frame(table)
                if frame is not None:
                    out += check_table(frame, policy, file=f"{name} (table {i + 1})",
                                       text_table=True)
            out += _check_prose(name, " ".join(parser.text), policy)
            out += _check_people_counts(name, parser.text, policy)
            return out
        if suffix == ".md":
            out = []
            for i, table in enumerate(_markdown_tables(text)):
                frame = _rows_to_frame(table)
                if frame is not None:
                    out += check_table(frame, policy, file=f"{name} (table {i + 1})",
                                       text_table=True)
            prose = _markdown_prose(text)
            out += _check_prose(name, prose, policy)
            out += _check_people_counts(name, prose.splitlines(), policy)
            return out
        return _check_prose(name, text, policy) + _check_people_counts(
            name, text.splitlines(), policy)
    except (ValueError, pd.errors.ParserError, json.JSONDecodeError) as exc:
        return [Violation(f"could not be parsed for checking: {exc}", name)]


#: The first line of a Snakemake benchmark file: run times and memory, no counts of people.
_BENCHMARK_HEADER = ("s", "h:m:s", "max_rss")


def _check_delimited(
    name: str, text: str, policy: DisclosurePolicy, suffix: str, sidecar: Path | None
) -> list[Violation]:
    if not text.strip():
        return []
    sep = "\t" if suffix == ".tsv" else ","
    if tuple(text.split("\n", 1)[0].strip().split(sep)[:3]) == _BENCHMARK_HEADER:
        return []
    frame = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        na_values=list(policy.suppressed_markers),
        keep_default_na=True,
        thousands=",",
        dtype_backend="numpy_nullable",
    )
    if sidecar is not None and sidecar.exists():
        roles = json.loads(sidecar.read_text(encoding="utf-8"))
        out = [
            Violation("identifier column in an output", name, str(c))
            for c in frame.columns
            if is_identifier_column(c, policy)
        ]
        # The roles say which columns are counts; the checks themselves are the run's policy.
        return out + check_table(
            frame,
            policy,
            count_cols=roles.get("count_cols", []),
            stat_cols=roles.get("stat_cols", {}),
            rate_cols=roles.get("rate_cols", {}),
            survival=roles.get("kind") == "survival",
            file=name,
        )
    return check_table(frame, policy, file=name)


def _walk_json(obj: Any, where: str = "$") -> Iterator[tuple[str, Any]]:
    yield where, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk_json(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _walk_json(value, f"{where}[{i}]")


def _check_json(name: str, text: str, policy: DisclosurePolicy) -> list[Violation]:
    data = json.loads(text)
    out: list[Violation] = []
    for where, node in _walk_json(data):
        if isinstance(node, dict):
            for key in node:
                if is_identifier_column(key, policy):
                    out.append(Violation("identifier field in an output", name, str(key), where))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, dict):
                    out += _check_json_object(item, name, f"{where}", str(i + 1), policy)
    if isinstance(data, dict):
        out += _check_json_object(data, name, "$", None, policy)
    for where, node in _walk_json(data):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, dict):
                    out += _check_json_object(value, name, f"{where}.{key}", None, policy)
    return out


def _as_count(value: Any) -> float | None:
    """A JSON value that can be a count: a whole, finite number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if not np.isfinite(number) or not number.is_integer():
        return None  # a fraction is a statistic (expected events, a mean), not a count
    return number


def _check_json_object(
    obj: dict[str, Any], name: str, where: str, row: str | None, policy: DisclosurePolicy
) -> list[Violation]:
    """Counts labelled as counts among one object's own values, and statistics beside a
    small count (``row`` is the 1-based position of the object in a list)."""
    out: list[Violation] = []
    small = []
    file = f"{name} {where}"
    for key, value in obj.items():
        if not is_count_label(key, policy):
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, dict):  # {"patients": {"fit": 120, "mild": 35}}
            values = [v for k, v in value.items() if not is_identifier_column(k, policy)]
        for item in values:
            if item is None:
                small.append(str(key))  # suppressed
                continue
            number = _as_count(item)
            if number is None:
                continue
            if not is_disclosed_count(np.array([number]), policy)[0]:
                out.append(Violation(_count_rule(number, policy), file, str(key), row,
                                     _fmt_number(number)))
            if 0 < number <= policy.statistic_threshold:
                small.append(str(key))
    if small:
        for key, value in obj.items():
            number = value if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else None
            if (number is not None and name_words(key) & STAT_WORDS
                    and not is_count_label(key, policy)):
                out.append(Violation(
                    f"statistic shown for {policy.statistic_threshold} or fewer people (or a "
                    f"suppressed count in '{small[0]}')", file, str(key), row, f"{number:g}"))
    return out


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_prose(name: str, text: str, policy: DisclosurePolicy) -> list[Violation]:
    out = []
    for match in _N_EQUALS.finditer(text):
        value = float(match.group(1).replace(",", ""))
        if not is_disclosed_count(np.array([value]), policy)[0]:
            out.append(
                Violation("count in text breaks the disclosure rules", name,
                          value=match.group(0).strip())
            )
    return out


def _check_people_counts(name: str, chunks: Iterable[str], policy: DisclosurePolicy
                         ) -> list[Violation]:
    """Numbers written as counts of people ("257 patients") in pieces of text.

    Each piece (a Markdown line, the text of one HTML or SVG element) is searched on its
    own, so that axis ticks and labels of a figure are never read as one phrase.
    """
    out = []
    for chunk in chunks:
        for match in _PEOPLE_COUNT.finditer(chunk):
            before = chunk[: match.start()].split()
            if before and before[-1].lower().strip("(,;:") in _NOT_A_COUNT_BEFORE:
                continue
            value = float(match.group(1).replace(",", ""))
            if not is_disclosed_count(np.array([value]), policy)[0]:
                out.append(Violation("count in text breaks the disclosure rules", name,
                                     value=" ".join(match.group(0).split())))
    return out


def _markdown_prose(text: str) -> str:
    """Markdown without its pipe tables, code blocks and image or link targets."""
    lines, fenced = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            continue
        if fenced or (stripped.startswith("|") and stripped.count("|") >= 2):
            continue
        lines.append(re.sub(r"\]\([^)]*\)", "]", line))
    return "\n".join(lines)


class _TableTextParser(HTMLParser):
    """Collects table cells and visible text from HTML or SVG."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            if not self._stack[-1]:
                self._stack[-1].append([])
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None and self._stack:
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.count("|") >= 2:
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                continue
            current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _rows_to_frame(rows: list[list[str]]) -> pd.DataFrame | None:
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return None
    width = max(len(r) for r in rows)
    header = rows[0] + [""] * (width - len(rows[0]))
    header = [h or f"column {j + 1}" for j, h in enumerate(header)]
    seen: dict[str, int] = {}
    unique = []
    for h in header:
        seen[h] = seen.get(h, 0) + 1
        unique.append(h if seen[h] == 1 else f"{h}.{seen[h] - 1}")
    body = [r + [""] * (width - len(r)) for r in rows[1:]]
    return pd.DataFrame(body, columns=unique, dtype=object)
