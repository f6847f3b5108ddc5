# Runs one workflow stage: the function named in params.stage ("module.function") of the
# phm_eval.stages package, called with this job's named inputs, params and outputs as plain
# values (phm_eval.stages.call.StageCall). Only run_stage reads the Snakemake object.
from phm_eval.workflow_support import run_stage

run_stage(snakemake)  # noqa: F821 (injected by Snakemake)
