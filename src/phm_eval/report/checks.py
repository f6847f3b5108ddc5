"""The last check before outputs leave the analysis: disclosure rules and patient identifiers.

``phm-eval check-outputs FOLDER [--patients FILE]`` calls
:func:`~phm_eval.disclosure.release.check_release`: every file of a run's results folder
except those under ``internal/`` is releasable, and every one is read (CSV, JSON, Markdown,
HTML, SVG and other text; images are listed as not scanned) for small or unrounded counts
and for every ``patient_id`` of the patients table.  :func:`check_report_outputs` applies
the same check to one folder (the report's) with the patients table required.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..disclosure import DisclosurePolicy, IdentifierIndex
from ..disclosure.identifiers import patient_identifiers
from ..disclosure.release import ReleaseCheck, check_release, scan_release
from ..errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["ReleaseCheck", "check_release", "check_report_outputs", "patient_identifiers",
           "scan_release"]


def check_report_outputs(
    report_dir: str | os.PathLike[str],
    patients_path: str | os.PathLike[str],
    policy: DisclosurePolicy | Mapping[str, Any] | None = None,
    include_warnings: bool = False,
) -> list[str]:
    """Problems that stop a folder of outputs from being released, in words.

    Parameters
    ----------
    report_dir : path
        The folder to check (or one file).  Every file in it and its sub-folders
        except those under ``internal/`` is read as
        :func:`~phm_eval.disclosure.release.check_release` does.  PNG and PDF files
        are not read: figures and the manuscript are checked through the tables and
        JSON they are drawn from.
    patients_path : path
        The patients table (Parquet or CSV with a ``patient_id`` column, or a
        folder holding ``patients.parquet``/``patients.csv``); none of its
        identifiers may appear in any output.
    policy : DisclosurePolicy or mapping, optional
        The disclosure rules (a ``disclosure`` configuration section is
        accepted); NHS Digital rules by default.
    include_warnings : bool, default False
        Also return warnings (e.g. 0% or 100% cells), which call for judgement
        rather than fail a release.

    Returns
    -------
    list of str
        One line per problem, naming the file, column and row; empty when the
        folder passes.
    """
    folder = Path(report_dir)
    if not folder.exists():
        raise InputError(str(folder), "folder to check not found")
    if not isinstance(policy, DisclosurePolicy):
        policy = DisclosurePolicy.from_config(policy)
    identifiers = IdentifierIndex(patient_identifiers(patients_path))
    problems: list[str] = []
    if identifiers.n_skipped:
        short = (f"[warning] {identifiers.n_skipped} patient identifiers are shorter than 6 "
                 "characters and were not searched for; check the outputs for them by hand")
        if include_warnings:
            problems.append(short)
        logger.warning(short)
    result = scan_release(folder, identifiers, policy)
    for name, reason in result.not_scanned:
        logger.info("not scanned: %s (%s)", name, reason)
    for violation in result.violations:
        if violation.severity == "error" or include_warnings:
            problems.append(str(violation))
        else:
            logger.warning("%s", violation)
    return problems
