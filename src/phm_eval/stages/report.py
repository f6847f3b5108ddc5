"""Report stage: the commissioner HTML report (checked for disclosure) and the manuscript."""

from __future__ import annotations

import logging
from pathlib import Path

from ..disclosure.release import check_release
from ..errors import PhmEvalError
from ..report import build_manuscript, render_report

log = logging.getLogger(__name__)


def html(smk) -> None:
    out = Path(smk.output.html)
    render_report(Path(smk.input.manifest).parent, out, config=dict(smk.params.config))
    results = Path(smk.input.manifest).parent
    problems = check_release(results, smk.input.patients,
                             policy=(smk.params.config or {}).get("disclosure"))
    if problems:
        # Nothing that breaks disclosure control may leave the results folder: without a
        # report the run is not finished, and the message names every file at fault.
        out.unlink(missing_ok=True)
        shown = "; ".join(problems[:8])
        raise PhmEvalError(f"releasable outputs break disclosure control ({len(problems)} "
                           f"problem(s)): {shown}")
    log.info("report written to %s; every releasable file of %s passed disclosure checks",
             out, results)


def manuscript(smk) -> None:
    pdf = build_manuscript(Path(smk.input.manifest).parent, smk.output.pdf,
                           config=dict(smk.params.config))
    log.info("manuscript written to %s", pdf)
