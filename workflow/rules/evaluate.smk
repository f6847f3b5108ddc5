# Evaluate: matched comparison, survival with competing death, rates, DiD and event study,
# regression to the mean, subgroups.

EVALUATE_OUTPUTS = [
    "results/evaluate/effects.json",
    "results/evaluate/pretrend.json",
    "results/evaluate/rtm.csv",
    "results/evaluate/balance.csv",
    "results/evaluate/flow.csv",
    "results/evaluate/love_plot.png",
    "results/evaluate/km.png",
    "results/evaluate/cif.png",
    "results/evaluate/forest.png",
    "results/evaluate/rtm.png",
    "results/evaluate/event_study.png",
]


rule evaluate:
    input:
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
        practices="results/data/practices.parquet",
        interventions="results/data/interventions.parquet",
        rollout="results/data/rollout.parquet",
    output:
        EVALUATE_OUTPUTS,
    params:
        stage="evaluate.run",
    threads: 2
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    script:
        STAGE_SCRIPT
