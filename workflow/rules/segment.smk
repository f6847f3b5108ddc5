# Segment: risk tiers, 3x3 grid, Bridges to Health, Core20PLUS5, DES personalised-care metrics.

SEGMENT_OUTPUTS = [
    "results/segment/grid_3x3.csv",
    "results/segment/grid_3x3.png",
    "results/segment/risk_tiers.csv",
    "results/segment/bridges.csv",
    "results/segment/core20plus5.csv",
    "results/segment/core20_admissions.csv",
    "results/segment/des_metrics.csv",
    "results/segment/des_funnel.png",
    "results/segment/segments.parquet",
]


rule segment:
    input:
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
        practices="results/data/practices.parquet",
        predictions="results/risk/predictions.parquet",
    output:
        SEGMENT_OUTPUTS,
    params:
        stage="segment.run",
    log:
        "results/logs/segment.log",
    benchmark:
        "results/benchmarks/segment.tsv"
    script:
        STAGE_SCRIPT
