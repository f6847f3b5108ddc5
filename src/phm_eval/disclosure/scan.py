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
* **counts in prose** such as ``n = 3`` in HTML, Markdown and SVG text.
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

from .check import Violation, check_table, is_identifier_column
from .policy import DisclosurePolicy
from .rounding import is_disclosed_count
from .tables import SIDECAR_SUFFIX

logger = logging.getLogger(__name__)

SCANNED_SUFFIXES = (".csv", ".tsv", ".json", ".html", ".htm", ".md", ".svg")
_WORD = re.compile(r"[0-9a-z]+")
_N_EQUALS = re.compile(r"(?<![0-9A-Za-z_])[nN]\s*=\s*(\d[\d,]*)(?![\d.])")


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
    suffix = file.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return _check_delimited(file, name, text, policy)
        if suffix == ".json":
            return [] if name.endswith(SIDECAR_SUFFIX) else _check_json(name, text, policy)
        if suffix in (".html", ".htm", ".svg"):
            parser = _TableTextParser()
            parser.feed(text)
            out = []
            for i, table in enumerate(parser.tables):
                frame = _rows_to_frame(table)
                if frame is not None:
                    out += check_table(frame, policy, file=f"{name} (table {i + 1})")
            out += _check_prose(name, " ".join(parser.text), policy)
            return out
        if suffix == ".md":
            out = []
            for i, table in enumerate(_markdown_tables(text)):
                frame = _rows_to_frame(table)
                if frame is not None:
                    out += check_table(frame, policy, file=f"{name} (table {i + 1})")
            out += _check_prose(name, text, policy)
            return out
    except (ValueError, pd.errors.ParserError, json.JSONDecodeError) as exc:
        return [Violation(f"could not be parsed for checking: {exc}", name)]
    return []


def _check_delimited(file: Path, name: str, text: str, policy: DisclosurePolicy) -> list[Violation]:
    if not text.strip():
        return []
    sep = "\t" if file.suffix.lower() == ".tsv" else ","
    frame = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        na_values=list(policy.suppressed_markers),
        keep_default_na=True,
        thousands=",",
        dtype_backend="numpy_nullable",
    )
    sidecar = file.with_name(file.stem + SIDECAR_SUFFIX)
    if sidecar.exists():
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
        if (
            isinstance(node, list)
            and node
            and all(isinstance(item, dict) for item in node)
            and all(not isinstance(v, (dict, list)) for item in node for v in item.values())
        ):
            frame = pd.DataFrame.from_records(node)
            out += [
                v
                for v in check_table(frame, policy, file=f"{name} {where}")
                if v.rule != "identifier column in an output"
            ]
    return out


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
