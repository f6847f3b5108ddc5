"""Synthetic population generator with known truths, written in the input data contract.

>>> from phm_eval.synth import simulate
>>> result = simulate("smoke", out="synthetic", seed=1)   # doctest: +SKIP

The generator writes ``practices``, ``patients``, ``events``, ``admissions``, ``interventions``
and ``rollout`` tables (Parquet by default) and a ``truth/`` folder that no analysis stage reads.
"""

from .generate import SimulationResult, simulate
from .scenario import Scenario, available_scenarios, load_scenario

__all__ = ["simulate", "SimulationResult", "Scenario", "load_scenario", "available_scenarios"]
