# Risk: emergency-admission risk model developed at one index date, validated at a later one
# (temporal), internally-externally by PCN or practice, and applied at the segmentation date.

RISK_OUTPUTS = [
    R(f"risk/{name}")
    for name in (
        "metrics.json",
        "subgroup_metrics.csv",
        "model_card.md",
        "calibration.png",
        "roc.png",
        "decision_curve.png",
    )
] + [I("risk/predictions.parquet"), I("risk/risk_model_report.json")]

#: The index date of each feature set: only the set whose date changed is rebuilt.
FEATURE_INDEX_DATES = {
    "development": config["risk"]["development_index_date"],
    "validation": config["risk"]["validation_index_date"],
    "current": config["segment"]["index_date"],
}


rule risk_features:
    input:
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
        practices=I("data/practices.parquet"),
        codelists=CODELIST_FILES,
    output:
        I("risk/features_{when}.parquet"),
    wildcard_constraints:
        when="development|validation|current",
    params:
        stage="risk.features",
        index_date=lambda wildcards: FEATURE_INDEX_DATES[wildcards.when],
        codelists=CODELISTS,
    resources:
        mem_mb=MEM_MB["risk_features"],
    log:
        I("logs/risk_features_{when}.log"),
    benchmark:
        R("benchmarks/risk_features_{when}.tsv")
    script:
        STAGE_SCRIPT


rule risk_model:
    input:
        development=I("risk/features_development.parquet"),
        validation=I("risk/features_validation.parquet"),
        current=I("risk/features_current.parquet"),
    output:
        RISK_OUTPUTS,
    params:
        stage="risk.model",
        risk=settings("risk"),
        disclosure=settings("disclosure"),
    threads: 2
    resources:
        mem_mb=MEM_MB["risk_model"],
    log:
        I("logs/risk_model.log"),
    benchmark:
        R("benchmarks/risk_model.tsv")
    script:
        STAGE_SCRIPT
