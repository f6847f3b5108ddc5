# Risk: emergency-admission risk model developed at one index date, validated at a later one
# (temporal), internally-externally by PCN or practice, and applied at the segmentation date.

RISK_OUTPUTS = rule_outputs("risk_model")

#: The index date of each feature set: only the set whose date changed is rebuilt.
FEATURE_INDEX_DATES = {
    "development": config["risk"]["development_index_date"],
    "validation": config["risk"]["validation_index_date"],
    "current": config["segment"]["index_date"],
}
assert set(FEATURE_INDEX_DATES) == set(out.FEATURE_SETS)


rule risk_features:
    input:
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
        practices=STAGED("practices"),
        codelists=CODELIST_FILES,
    output:
        R(out.RISK_FEATURES),
    wildcard_constraints:
        when="|".join(out.FEATURE_SETS),
    params:
        stage="risk.features",
        index_date=lambda wildcards: FEATURE_INDEX_DATES[wildcards.when],
        codelists=CODELISTS,
    resources:
        mem_mb=MEM_MB["risk_features"],
    log:
        LOG("risk_features_{when}"),
    benchmark:
        BENCHMARK("risk_features_{when}")
    script:
        STAGE_SCRIPT


rule risk_model:
    input:
        **{when: R(out.RISK_FEATURES.format(when=when)) for when in out.FEATURE_SETS},
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
        LOG("risk_model"),
    benchmark:
        BENCHMARK("risk_model")
    script:
        STAGE_SCRIPT
