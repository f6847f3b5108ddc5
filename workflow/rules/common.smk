# Helpers shared by the rule files: config validation with a readable error, stage dispatch.
import os
import sys

from phm_eval.workflow_support import check_config


def validate_config(cfg, schema_path):
    try:
        check_config(cfg, schema_path)
    except Exception as exc:
        sys.exit(f"phm-eval: invalid configuration: {exc}")


def input_folder():
    if config["input"]["source"] == "synthetic":
        return "results/synthetic"
    return config["input"]["folder"]


STAGE_SCRIPT = os.path.join(workflow.basedir, "scripts", "run_stage.py")
