"""Workflow stages: one module per rule file, each stage a function taking a
:class:`~phm_eval.stages.call.StageCall` (the job's named inputs, params and outputs as plain
dicts and paths).

Stage functions only read the call's inputs and params, call the package's tested functions
and write the call's outputs; they hold no analysis logic of their own, and they never see
the workflow's job object or its configuration. A rule names its stage in ``params.stage``
(``"module.function"``); :func:`phm_eval.workflow_support.run_stage` builds the call and runs
it.
"""
