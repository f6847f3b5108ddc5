"""What a reader of the HTML report sees, checked for words that are not for people.

Internal identifiers (snake_case names, ``var=value`` subgroup labels, Core20PLUS5 row keys,
one-hot covariate names), Markdown that was never rendered, and ``NaN`` must never reach a
commissioner. Text inside ``<code>`` and ``<pre>`` (file names, the configuration) is exempt:
it is shown as code, on purpose. The browser test applies the same rules to the rendered page.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: What must never reach a reader, with why.
READER_PROBLEMS: dict[str, re.Pattern[str]] = {
    "snake_case identifier": re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b"),
    "subgroup label with '='": re.compile(r"\b[A-Za-z_]+=[^\s=]"),
    "Core20PLUS5 row name": re.compile(
        r"\b(?:core20|plus|adult_clinical_area|children_clinical_area):[a-z]"),
    "one-hot name": re.compile(
        r"\b(?:[Ss]ex[FMIU]|[Ee]fi[_ ]?group\w|index_month_code\d|recent_admissions_band\d)"),
    "Markdown bold": re.compile(r"\*\*"),
    "Markdown link or image": re.compile(r"\]\("),
    "Markdown heading": re.compile(r"^#+\s"),
    "not-a-number": re.compile(r"\b(?:NaN|nan|None|undefined)\b"),
}

_EXEMPT = {"code", "pre", "style", "script"}


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _EXEMPT:
            self.depth += 1
        if tag == "img":
            self.chunks += [v for k, v in attrs if k == "alt" and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in _EXEMPT and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth and data.strip():
            self.chunks.append(data.strip())


def visible_text(html: str) -> list[str]:
    """The text a reader sees (outside code), one chunk per text node, plus image alt texts."""
    parser = _VisibleText()
    parser.feed(html)
    return parser.chunks


def reader_problems(chunks: list[str]) -> list[str]:
    """Each text chunk that breaks a rule of :data:`READER_PROBLEMS`, with the rule."""
    found = []
    for chunk in chunks:
        for why, pattern in READER_PROBLEMS.items():
            match = pattern.search(chunk)
            if match:
                found.append(f"{why}: {match.group(0)!r} in {chunk[:120]!r}")
    return found
