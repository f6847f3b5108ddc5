"""Statistical disclosure control for every table and figure that leaves an analysis.

Configure once with :class:`DisclosurePolicy` (NHS Digital rules by default),
pass each human-facing table through :func:`apply_disclosure` (or
:func:`disclose_survival_table` for Kaplan-Meier and cumulative-incidence step
tables), and check a folder of outputs with :func:`check_report_folder` before
release.  ``docs/disclosure.md`` explains the rules and their sources.
"""

from .check import Violation, check_table, infer_count_columns
from .policy import DisclosurePolicy
from .rounding import disclose_counts, round_midpoint, round_nearest
from .scan import IdentifierIndex, check_report_folder
from .survival import disclose_survival_table, survival_step_table
from .tables import DisclosedTable, apply_disclosure, secondary_suppression

__all__ = [
    "DisclosedTable",
    "DisclosurePolicy",
    "IdentifierIndex",
    "Violation",
    "apply_disclosure",
    "check_report_folder",
    "check_table",
    "disclose_counts",
    "disclose_survival_table",
    "infer_count_columns",
    "round_midpoint",
    "round_nearest",
    "secondary_suppression",
    "survival_step_table",
]
