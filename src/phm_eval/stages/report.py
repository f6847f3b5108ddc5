"""Report stage: the commissioner HTML report (checked for disclosure) and the manuscript."""

from __future__ import annotations

import logging
from pathlib import Path

from ..disclosure.release import check_release
from ..errors import PhmEvalError
from ..report import build_manuscript, render_report
from .call import StageCall
from .common import output

log = logging.getLogger(__name__)


def html(call: StageCall) -> None:
    """The commissioner report (params ``config``; inputs ``manifest``, in the results folder,
    and ``patients``), kept only if every releasable file passes disclosure checks."""
    out = output(call, "index.html")
    render_report(Path(call.inputs["manifest"]).parent, out, config=dict(call.params["config"]))
    results = Path(call.inputs["manifest"]).parent
    problems = check_release(results, call.inputs["patients"],
                             policy=(call.params["config"] or {}).get("disclosure"))
    if problems:
        # Nothing that breaks disclosure control may leave the results folder: without a
        # report the run is not finished, and the message names every file at fault.
        out.unlink(missing_ok=True)
        shown = "; ".join(problems[:8])
        raise PhmEvalError(f"releasable outputs break disclosure control ({len(problems)} "
                           f"problem(s)): {shown}")
    log.info("report written to %s; every releasable file of %s passed disclosure checks",
             out, results)


def manuscript(call: StageCall) -> None:
    """The manuscript PDF (params ``config``; input ``manifest``, in the results folder)."""
    pdf = build_manuscript(Path(call.inputs["manifest"]).parent,
                           output(call, "manuscript.pdf"), config=dict(call.params["config"]))
    log.info("manuscript written to %s", pdf)
