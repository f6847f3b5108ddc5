# Data: simulate (synthetic default) or read real extracts, then validate and stage as Parquet.

if config["input"]["source"] == "synthetic":

    rule simulate:
        output:
            tables=expand(I("synthetic/{table}.parquet"), table=INPUT_TABLES),
            truth=I("synthetic/truth/truth.json"),
        params:
            stage="data.simulate",
            synthetic=settings("synthetic"),
        resources:
            mem_mb=MEM_MB["simulate"],
        log:
            I("logs/simulate.log"),
        benchmark:
            R("benchmarks/simulate.tsv")
        script:
            STAGE_SCRIPT


rule ingest:
    input:
        tables=input_tables(),
    output:
        flow=I("data/flow.csv"),
        data_quality=I("data/data_quality.csv"),
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
        interventions=I("data/interventions.parquet"),
        practices=I("data/practices.parquet"),
        rollout=I("data/rollout.parquet"),
    params:
        stage="data.ingest_inputs",
        source=input_folder(),
        study=settings("study"),
    resources:
        mem_mb=MEM_MB["ingest"],
    log:
        I("logs/ingest.log"),
    benchmark:
        R("benchmarks/ingest.tsv")
    script:
        STAGE_SCRIPT
