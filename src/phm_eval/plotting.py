"""One look for every figure: palette, theme, titles, alt text and reproducible files.

Colours are the Okabe-Ito palette (Okabe M, Ito K. *Color Universal Design
(CUD): how to make figures and presentations that are friendly to colorblind
people*, 2008), distinguishable under the common forms of colour-vision
deficiency.  Figures are saved as PNG (150 dpi) and SVG with dates and software
versions stripped from the metadata, so the same data give byte-identical
files; SVG text is kept as text so that readers, screen readers and the
disclosure checker can read it.

Examples
--------
>>> import matplotlib.pyplot as plt
>>> with phm_style():
...     fig, ax = plt.subplots()
...     _ = ax.plot([0, 1], [0, 1], label="eFI")
...     _ = set_titles(ax, "Frailty over time", subtitle="Synthetic PCN")
>>> alt = describe_figure(fig, summary="Frailty rises steadily.")
>>> alt.startswith("Line chart: Frailty over time.")
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Okabe-Ito colours by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Order in which series take colours: strong contrasts first, pale yellow late.
PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
)

#: Colours with a fixed meaning across the report.
ROLE_COLOURS: dict[str, str] = {
    "intervention": OKABE_ITO["blue"],
    "comparison": OKABE_ITO["vermillion"],
    "observed": OKABE_ITO["black"],
    "reference": "#7F7F7F",
}

#: Frailty categories (fit, mild, moderate, severe) in order of severity.
FRAILTY_COLOURS: dict[str, str] = {
    "fit": OKABE_ITO["bluish_green"],
    "mild": OKABE_ITO["sky_blue"],
    "moderate": OKABE_ITO["orange"],
    "severe": OKABE_ITO["vermillion"],
}

DPI = 150

THEME: dict[str, Any] = {
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "font.family": "DejaVu Sans",
    "figure.figsize": (7.0, 4.5),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "lines.linewidth": 1.8,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    # Text stays text in SVG (readable and checkable); fixed ids make files reproducible.
    "svg.fonttype": "none",
    "svg.hashsalt": "phm-eval",
    "pdf.fonttype": 42,
}


def apply_theme() -> None:
    """Set the phm-eval theme for the rest of the session (changes ``matplotlib.rcParams``)."""
    mpl.rcParams.update(THEME)


@contextlib.contextmanager
def phm_style() -> Iterator[None]:
    """Use the phm-eval theme inside a ``with`` block, restoring settings afterwards."""
    with mpl.rc_context(THEME):
        yield


def set_titles(
    ax: Axes, title: str, subtitle: str | None = None, source: str | None = None
) -> Axes:
    """Give an axes the house title layout: bold title, optional subtitle and source note.

    Parameters
    ----------
    ax : Axes
    title : str
        What the figure shows, in words (not a variable name).
    subtitle : str, optional
        Population, period or units, shown under the title.
    source : str, optional
        Data source or disclosure note, shown small under the axes.
    """
    if subtitle:
        ax.set_title(f"{title}\n", loc="left")
        ax.text(0, 1.02, subtitle, transform=ax.transAxes, fontsize=9, color="#444444",
                va="bottom", ha="left")
    else:
        ax.set_title(title, loc="left")
    ax._phm_title = title  # type: ignore[attr-defined]  # describe_figure reads it back
    if source:
        ax.annotate(source, xy=(0, 0), xycoords="axes fraction", xytext=(0, -28),
                    textcoords="offset points", fontsize=7, color="#666666", va="top")
    return ax


def _chart_kind(ax: Axes) -> str:
    if ax.patches and not ax.lines:
        return "Bar chart"
    if ax.collections and not ax.lines:
        return "Scatter plot"
    if ax.lines:
        return "Line chart"
    if ax.images:
        return "Heat map"
    return "Chart"


def describe_figure(fig: Figure, summary: str | None = None, kind: str | None = None) -> str:
    """Alt text for a figure: type, title, axes and a one-sentence summary.

    Parameters
    ----------
    fig : Figure
    summary : str, optional
        The message of the figure in one or two sentences (what a sighted reader
        would take away).  Strongly recommended.
    kind : str, optional
        Overrides the guessed chart type ("Line chart", "Bar chart"...).

    Returns
    -------
    str
        Plain text for an HTML ``alt`` attribute or a caption.
    """
    parts = []
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
    for i, ax in enumerate(axes):
        title = getattr(ax, "_phm_title", None) or ax.get_title(loc="left") or ax.get_title()
        chart = kind or _chart_kind(ax)
        text = f"{chart}: {title.strip()}." if title else f"{chart}."
        if len(axes) > 1:
            text = f"Panel {i + 1}. {text}"
        labels = [
            f"{name} axis: {label}"
            for name, label in (("X", ax.get_xlabel()), ("Y", ax.get_ylabel()))
            if label
        ]
        if labels:
            text += " " + "; ".join(labels) + "."
        legend = ax.get_legend()
        if legend is not None:
            entries = [t.get_text() for t in legend.get_texts() if t.get_text()]
            if entries:
                text += " Series: " + ", ".join(entries) + "."
        parts.append(text)
    if summary:
        parts.append(summary.strip())
    return " ".join(parts).strip()


def save_figure(
    fig: Figure,
    path_without_suffix: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    alt_text: str | None = None,
    dpi: int = DPI,
) -> list[Path]:
    """Save a figure reproducibly in several formats.

    Parameters
    ----------
    fig : Figure
    path_without_suffix : path
        e.g. ``results/report/figures/km_admission``; folders are created.
    formats : sequence of str, default ("png", "svg")
        Any of ``png``, ``svg``, ``pdf``.
    alt_text : str, optional
        Stored as the file's description (PNG ``Description``, SVG
        ``dc:description``, PDF ``Subject``).
    dpi : int, default 150
        Resolution of raster formats.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        metadata: dict[str, Any]
        if fmt == "png":
            metadata = {"Software": None}
            if alt_text:
                metadata["Description"] = alt_text
        elif fmt == "svg":
            metadata = {"Date": None, "Creator": None}
            if alt_text:
                metadata["Description"] = alt_text
        elif fmt == "pdf":
            metadata = {"CreationDate": None, "ModDate": None, "Producer": None,
                        "Creator": None}
            if alt_text:
                metadata["Subject"] = alt_text
        else:
            raise ValueError(f"unsupported figure format {fmt!r}; use png, svg or pdf")
        path = base.with_name(base.name + f".{fmt}")
        with mpl.rc_context({"svg.hashsalt": THEME["svg.hashsalt"],
                             "svg.fonttype": THEME["svg.fonttype"]}):
            fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata)
        written.append(path)
    return written
