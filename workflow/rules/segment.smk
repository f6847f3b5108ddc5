# Segment: risk tiers, 3x3 grid, Bridges to Health, Core20PLUS5, DES personalised-care metrics.

SEGMENT_OUTPUTS = [
    R(f"segment/{name}")
    for name in (
        "grid_3x3.csv",
        "grid_3x3.png",
        "risk_tiers.csv",
        "bridges.csv",
        "core20plus5.csv",
        "core20_admissions.csv",
        "des_metrics.csv",
        "des_funnel.png",
        "core20plus5_reach.csv",
    )
] + [I("segment/segments.parquet")]


rule segment:
    input:
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
        practices=I("data/practices.parquet"),
        predictions=I("risk/predictions.parquet"),
        interventions=I("data/interventions.parquet"),
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
        I("logs/segment.log"),
    benchmark:
        R("benchmarks/segment.tsv")
    script:
        STAGE_SCRIPT
