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
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
        practices=I("data/practices.parquet"),
        interventions=I("data/interventions.parquet"),
        rollout=I("data/rollout.parquet"),
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
        I("logs/evaluate.log"),
    benchmark:
        R("benchmarks/evaluate.tsv")
    script:
        STAGE_SCRIPT
