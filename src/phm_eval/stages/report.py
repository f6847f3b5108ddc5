"""Report stage: the commissioner HTML report (checked for disclosure) and the manuscript."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import PhmEvalError
from ..report import build_manuscript, check_report_outputs, render_report

log = logging.getLogger(__name__)


def html(smk) -> None:
    out = Path(smk.output.html)
    render_report(Path(smk.input.manifest).parent, out, config=dict(smk.params.config))
    problems = check_report_outputs(out.parent, smk.input.patients)
    if problems:
        # Nothing that breaks disclosure control may leave results/report/.
        out.unlink(missing_ok=True)
        shown = "; ".join(problems[:5])
        raise PhmEvalError(f"the report breaks disclosure control ({len(problems)} "
                           f"problem(s)): {shown}")
    log.info("report written to %s and passed disclosure checks", out)


def manuscript(smk) -> None:
    pdf = build_manuscript(Path(smk.input.manifest).parent, smk.output.pdf,
                           config=dict(smk.params.config))
    log.info("manuscript written to %s", pdf)
