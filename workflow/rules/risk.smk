# Risk: emergency-admission risk model developed at one index date, validated at a later one
# (temporal), internally-externally by PCN or practice, and applied at the segmentation date.

RISK_OUTPUTS = [
    "results/risk/metrics.json",
    "results/risk/subgroup_metrics.csv",
    "results/risk/model_card.md",
    "results/risk/calibration.png",
    "results/risk/roc.png",
    "results/risk/decision_curve.png",
    "results/risk/predictions.parquet",
]


rule risk_features:
    input:
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
        practices="results/data/practices.parquet",
    output:
        "results/risk/features_{when}.parquet",
    wildcard_constraints:
        when="development|validation|current",
    params:
        stage="risk.features",
    log:
        "results/logs/risk_features_{when}.log",
    benchmark:
        "results/benchmarks/risk_features_{when}.tsv"
    script:
        STAGE_SCRIPT


rule risk_model:
    input:
        development="results/risk/features_development.parquet",
        validation="results/risk/features_validation.parquet",
        current="results/risk/features_current.parquet",
    output:
        RISK_OUTPUTS,
    params:
        stage="risk.model",
    threads: 2
    log:
        "results/logs/risk_model.log",
    benchmark:
        "results/benchmarks/risk_model.tsv"
    script:
        STAGE_SCRIPT
