"""Read a workflow's ``results/`` folder, tolerating stages that have not run yet.

Every reader returns ``None`` for a missing file, so the report and the
manuscript can say "not available in this run" instead of failing while stages
are being added.  A file that exists but cannot be parsed is an
:class:`~phm_eval.errors.InputError` naming the file: a broken output should
stop the report, not vanish from it.  ``NaN`` in a JSON file (not valid JSON;
written by older runs) is read as ``null``, i.e. not estimable, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import outputs
from ..errors import InputError
from ..jsonio import read_json

logger = logging.getLogger(__name__)

#: Figures the report knows, in the order the sections use them, with their captions.
#: A caption says what the figure shows; the alt text stored in the PNG by
#: :func:`phm_eval.plotting.save_figure`, when there is one, is used before it.
FIGURES: dict[str, str] = {
    outputs.POPULATION_PYRAMID_PNG: "Registered patients by age band and sex.",
    outputs.LTC_PREVALENCE_PNG: "Recorded prevalence of long-term conditions.",
    outputs.EMERGENCY_ADMISSION_RATES_PNG: "Emergency admissions per 1,000 person-years "
    "by financial year and age band.",
    outputs.EFI_DISTRIBUTION_PNG: "Electronic Frailty Index scores of people aged 65 and over.",
    outputs.ROC_PNG: "Receiver operating characteristic curve of the admission risk model.",
    outputs.CALIBRATION_PNG: "Calibration of the admission risk model: predicted against "
    "observed risk.",
    outputs.DECISION_CURVE_PNG: "Decision curve: net benefit of offering proactive care by "
    "predicted risk, against offering it to everyone or no one.",
    outputs.GRID_3X3_PNG: "The population in the 3x3 segmentation grid (age group by need).",
    outputs.DES_FUNNEL_PNG: "Network Contract DES personalised-care activity per 1,000 "
    "patients against the specification's targets.",
    outputs.RTM_PNG: "Emergency admissions before and after enrolment: enrolled patients, "
    "matched comparators and the controlled estimate (regression to the mean).",
    outputs.LOVE_PLOT_PNG: "Covariate balance before and after matching (standardised mean "
    "differences).",
    outputs.KM_PNG: "Time to first emergency admission: enrolled patients and matched "
    "comparators (Kaplan-Meier).",
    outputs.CIF_PNG: "Cumulative incidence of emergency admission with death as a competing "
    "risk.",
    outputs.EVENT_STUDY_PNG: "Event study: effect on emergency admissions by time since "
    "roll-out, with pre-roll-out periods as a check on parallel trends.",
    outputs.FOREST_PNG: "Effect on emergency admissions in subgroups (forest plot).",
}


@dataclass
class ResultsFolder:
    """A results folder, read lazily and leniently.

    Parameters
    ----------
    root : path
        The folder holding ``manifest.json`` and one sub-folder per stage.

    Attributes
    ----------
    missing : list of str
        Relative paths asked for but absent, in the order they were asked for.
    """

    root: Path
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise InputError(str(self.root), "results folder not found")

    def path(self, relative: str) -> Path | None:
        """The file's path if it exists, else ``None`` (and remember it as missing)."""
        path = self.root / relative
        if path.is_file():
            return path
        if relative not in self.missing:
            self.missing.append(relative)
        return None

    def has(self, relative: str) -> bool:
        """True when the file exists (without recording it as missing)."""
        return (self.root / relative).is_file()

    def json(self, relative: str) -> Any | None:
        """Parsed JSON (``NaN`` read as ``None``), or ``None`` when the file is missing.

        Raises
        ------
        InputError
            Naming the file, when it is not valid JSON.
        """
        path = self.path(relative)
        if path is None:
            return None
        return read_json(path, non_finite="warn")

    def csv(self, relative: str) -> pd.DataFrame | None:
        """The CSV as text cells (suppression markers and blanks kept), or ``None``."""
        path = self.path(relative)
        if path is None:
            return None
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"not a readable CSV file: {exc}") from exc

    def text(self, relative: str) -> str | None:
        """File contents as text, or ``None``."""
        path = self.path(relative)
        return None if path is None else path.read_text(encoding="utf-8")


def png_description(path: Path) -> str | None:
    """The alt text stored in a PNG's ``Description`` text chunk, if any."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        return None
    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}) or image.info
            value = text.get("Description")
    except OSError:
        logger.warning("could not read %s as a PNG", path)
        return None
    return str(value).strip() or None if value else None
