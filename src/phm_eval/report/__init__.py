"""Reports for people: the commissioner HTML page, the manuscript, and the release check.

* :func:`render_report` writes one self-contained, accessible ``index.html``
  from a workflow's ``results/`` folder;
* :func:`build_manuscript` compiles a STROBE/TRIPOD-shaped manuscript with
  Typst from the same folder;
* :func:`check_report_outputs` checks a folder of outputs for disclosure
  problems and patient identifiers before release.

Every output a section reads is optional: while stages are being added, the
report says "not available in this run" instead of failing.  ``docs/report.md``
lists the files each section reads.
"""

from .checks import check_report_outputs, patient_identifiers
from .context import build_context
from .effects import Effect, Headline, describe_headline, pick_headline, read_effects
from .manuscript import build_manuscript
from .render import render_report

__all__ = [
    "Effect",
    "Headline",
    "build_context",
    "build_manuscript",
    "check_report_outputs",
    "describe_headline",
    "patient_identifiers",
    "pick_headline",
    "read_effects",
    "render_report",
]
