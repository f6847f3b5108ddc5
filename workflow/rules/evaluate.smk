# Evaluate: matched comparison, survival with competing death, rates, DiD and event study,
# regression to the mean, subgroups.

EVALUATE_OUTPUTS = [
    R(f"evaluate/{name}")
    for name in (
        "effects.json",
        "pretrend.json",
        "rtm.csv",
        "balance.csv",
        "flow.csv",
        "love_plot.png",
        "km.png",
        "km.csv",
        "cif.png",
        "cif.csv",
        "forest.png",
        "rtm.png",
        "event_study.png",
    )
]


rule evaluate:
    input:
        patients=R("data/patients.parquet"),
        events=R("data/events.parquet"),
        admissions=R("data/admissions.parquet"),
        practices=R("data/practices.parquet"),
        interventions=R("data/interventions.parquet"),
        rollout=R("data/rollout.parquet"),
        codelists=CODELIST_FILES,
    output:
        EVALUATE_OUTPUTS,
    params:
        stage="evaluate.run",
        evaluate=settings("evaluate"),
        study=settings("study"),
        disclosure=settings("disclosure"),
        codelists=CODELISTS,
    threads: 2
    log:
        R("logs/evaluate.log"),
    benchmark:
        R("benchmarks/evaluate.tsv")
    script:
        STAGE_SCRIPT
