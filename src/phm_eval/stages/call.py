"""What a workflow job hands its stage, as plain values: :class:`StageCall`.

Every stage is a function ``stage(call: StageCall) -> None``. It reads the files
``call.inputs`` names and the settings in ``call.params``, calls the package's tested
functions and writes the files ``call.outputs`` lists (found by file name with
:func:`phm_eval.stages.common.output`). Nothing else reaches a stage: not the configuration,
not the workflow's job object, so a stage can be run from Python or a test with dicts and
paths, and a rule reruns exactly when what its stage reads changes.

:func:`phm_eval.workflow_support.run_stage` is the one place that builds a call from a
workflow job. Anywhere else, build it directly::

    from phm_eval import outputs as out
    from phm_eval.stages import describe
    from phm_eval.stages.call import StageCall

    describe.run(StageCall(
        inputs={"patients": "staged/patients.parquet", "events": "staged/events.parquet",
                "admissions": "staged/admissions.parquet"},
        params={"study": {"study_start": "2019-04-01", "study_end": "2024-03-31",
                          "programme": "proactive_care"},
                "disclosure": {}, "codelists": None},
        outputs=[results / path for path in out.of_rule("describe")],
    ))

This module imports nothing but the standard library: the workflow glue imports it on
every job, and the command line imports that glue.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A named input: one file, or the list of files the rule names under that name (code lists,
#: the input tables).
InputValue = str | os.PathLike[str] | list[str | os.PathLike[str]]


@dataclass(frozen=True)
class StageCall:
    """One run of a stage: its inputs, settings and outputs.

    Parameters
    ----------
    inputs : mapping of str to path or list of paths
        The rule's named inputs (``patients``, ``codelists``...): a path, or a list of paths
        where the rule names a list (possibly empty). Unnamed inputs only order the jobs and
        are not passed.
    params : mapping of str to any
        The rule's params (configuration sections as plain dicts, dates, folders), without
        ``stage``, which only names the function to run.
    outputs : iterable of path
        Every file the stage must write, in the rule's order; a stage finds each by its file
        name (:func:`phm_eval.stages.common.output`). Kept as a tuple of :class:`~pathlib.Path`.
    wildcards : mapping of str to str, default {}
        The job's wildcards (``when`` for the risk features).
    threads : int, default 1
        The threads the job was given (the workflow hands them to DuckDB itself).
    """

    inputs: Mapping[str, InputValue]
    params: Mapping[str, Any]
    outputs: tuple[Path, ...]
    wildcards: Mapping[str, str] = field(default_factory=dict)
    threads: int = 1

    def __post_init__(self) -> None:
        outputs = self.outputs
        if isinstance(outputs, (str, os.PathLike)):
            outputs = (outputs,)
        elif not isinstance(outputs, Iterable):
            raise TypeError(f"StageCall(outputs): expected paths, got {type(outputs).__name__}")
        object.__setattr__(self, "outputs", tuple(Path(p) for p in outputs))
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "wildcards", dict(self.wildcards))
