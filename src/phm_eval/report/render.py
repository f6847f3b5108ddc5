"""The commissioner report: one self-contained, accessible HTML page.

Figures are embedded as base64 PNG, styles are inline and the page runs no
scripts, so ``index.html`` can be e-mailed, opened offline, or published as it
is.  A content security policy in the page forbids any request leaving it.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..disclosure import DisclosurePolicy, check_report_folder
from .context import build_context

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def environment() -> Environment:
    """The Jinja2 environment for the report templates (HTML autoescaped)."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"),
                                     default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except (ImportError, OSError):
        return None


def _walk(blocks: list[dict[str, Any]]):
    for block in blocks:
        yield block
        if block["kind"] == "details":
            yield from _walk(block["blocks"])


def prepare_blocks(context: dict[str, Any], results_dir: Path) -> None:
    """Number tables and figures in reading order, give tables ids, embed figures as data URIs."""
    n_table = n_figure = 0
    for section in context["sections"]:
        for block in _walk(section["blocks"]):
            if block["kind"] == "table":
                n_table += 1
                block["number"] = n_table
                block["id"] = f"table-{n_table}"
            elif block["kind"] == "figure":
                n_figure += 1
                block["number"] = n_figure
                path = results_dir / block["path"]
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                block["src"] = f"data:image/png;base64,{data}"
                size = _png_size(path)
                if size is not None:
                    block["width"], block["height"] = size


def render_html(context: dict[str, Any]) -> str:
    """The report page for a prepared context (see :func:`prepare_blocks`)."""
    template = environment().get_template("report.html.j2")
    return template.render(**context, version=__version__)


def render_report(
    results_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write the commissioner report for a results folder.

    Parameters
    ----------
    results_dir : path
        The workflow's ``results/`` folder (layout in ``docs/report.md``).
        Every output is optional; what is missing is shown as "not available
        in this run".
    out_path : path
        The HTML file to write, e.g. ``results/report/index.html``.
    config : mapping, optional
        The run's configuration.  Uses ``report.title``,
        ``report.unit_cost_emergency_admission`` (pounds per emergency
        admission), ``disclosure`` (the policy for every count shown),
        ``input.source`` and the stage sections for the methods summary.
        Defaults to the configuration stored in ``manifest.json``.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        If an output that exists cannot be read (broken JSON or CSV, an
        effect record without its estimate...).
    """
    results_dir = Path(results_dir)
    out = Path(out_path)
    context = build_context(results_dir, config)
    prepare_blocks(context, results_dir)
    html = render_html(context)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    policy = DisclosurePolicy.from_config(context["disclosure_policy"])
    for violation in check_report_folder(out, policy):
        logger.warning("report disclosure check: %s", violation)
    logger.info("wrote %s (%d sections, %d outputs not available)", out,
                len(context["sections"]), len(context["missing"]))
    return out
