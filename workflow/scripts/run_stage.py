# Runs one workflow stage: the function named in params.stage ("module.function") of the
# phm_eval.stages package, with this job's inputs, outputs, params and config.
from phm_eval.workflow_support import run_stage

run_stage(snakemake)  # noqa: F821 (injected by Snakemake)
