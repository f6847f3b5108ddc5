# Helpers shared by the rule files: config validation with a readable error, stage dispatch.
import os
import sys

from phm_eval.workflow_support import check_config


def validate_config(cfg, schema_path):
    try:
        check_config(cfg, schema_path)
    except Exception as exc:
        sys.exit(f"phm-eval: invalid configuration: {exc}")


INPUT_TABLES = ["practices", "patients", "events", "admissions", "interventions", "rollout"]


def input_tables():
    """The input tables as files, so that executors without a shared file system (Kubernetes
    pods with a storage provider) stage them for the jobs that read them."""
    if config["input"]["source"] == "synthetic":
        return [f"results/synthetic/{table}.parquet" for table in INPUT_TABLES]
    folder = config["input"]["folder"]
    return [
        os.path.join(folder, f"{table}.{ext}")
        for table in INPUT_TABLES
        for ext in ("parquet", "csv")
        if os.path.exists(os.path.join(folder, f"{table}.{ext}"))
    ]


def truth_inputs():
    """The synthetic truth the report sets against the estimates (nothing for real data)."""
    if config["input"]["source"] == "synthetic":
        return ["results/synthetic/truth/truth.json"]
    return []


def input_folder():
    if config["input"]["source"] == "synthetic":
        return "results/synthetic"
    return config["input"]["folder"]


STAGE_SCRIPT = os.path.join(workflow.basedir, "scripts", "run_stage.py")
