"""phm-eval: population health management evaluation for NHS primary care."""

__version__ = "0.1.0"

#: The one default seed of phm-eval: every function and setting that draws random numbers
#: uses it when no seed is given (``seed=None`` where a former argument name is still
#: accepted), and the workflow's ``risk.seed``, ``evaluate.seed`` and
#: ``evaluate.design_check.seed`` default to it. Exceptions mirror R (``did.att_gt``: no
#: seed, as R's; ``did.honest_did``: R's ``seed = 0``) or make data (``synth.simulate``:
#: the scenario's seed).
DEFAULT_SEED = 1
