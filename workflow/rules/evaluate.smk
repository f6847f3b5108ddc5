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
        "itt_event_study.png",
        "itt_event_study.csv",
        "itt_pretrend.json",
        "itt_honest.csv",
    )
] + [I("evaluate/analysed.parquet")]


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
        evaluate=settings("evaluate", without=("design_check",)),
        study=settings("study"),
        disclosure=settings("disclosure"),
        codelists=CODELISTS,
    threads: 2
    resources:
        mem_mb=MEM_MB["evaluate"],
    log:
        I("logs/evaluate.log"),
    benchmark:
        R("benchmarks/evaluate.tsv")
    script:
        STAGE_SCRIPT


rule design_check:
    """Power on this run's own data: the matched design re-analysed with known effects injected
    (plasmode simulation); matching is reused, only the outcome model is refitted."""
    input:
        analysed=I("evaluate/analysed.parquet"),
        truth=truth_inputs(),
    output:
        json=R("evaluate/design_check.json"),
        csv=R("evaluate/design_check.csv"),
    params:
        stage="evaluate.design_check",
        design_check=settings("evaluate")["design_check"],
    resources:
        mem_mb=MEM_MB["design_check"],
    log:
        I("logs/design_check.log"),
    benchmark:
        R("benchmarks/design_check.tsv")
    script:
        STAGE_SCRIPT
