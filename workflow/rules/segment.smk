# Segment: risk tiers, 3x3 grid, Bridges to Health, Core20PLUS5, DES personalised-care metrics.

SEGMENT_OUTPUTS = rule_outputs("segment")


rule segment:
    input:
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
        practices=STAGED("practices"),
        predictions=R(out.PREDICTIONS),
        interventions=STAGED("interventions"),
        codelists=CODELIST_FILES,
        settings=SEGMENTATION_SETTINGS,
    output:
        SEGMENT_OUTPUTS,
    params:
        stage="segment.run",
        segment=settings("segment"),
        eligibility=settings("evaluate")["eligibility"],
        study=settings("study"),
        disclosure=settings("disclosure"),
        codelists=CODELISTS,
    resources:
        mem_mb=MEM_MB["segment"],
    log:
        LOG("segment"),
    benchmark:
        BENCHMARK("segment")
    script:
        STAGE_SCRIPT
