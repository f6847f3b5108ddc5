# Data: simulate (synthetic default) or read real extracts, then validate and stage as Parquet.

if config["input"]["source"] == "synthetic":

    rule simulate:
        output:
            tables=expand(R("synthetic/{table}.parquet"), table=INPUT_TABLES),
            truth=R("synthetic/truth/truth.json"),
        params:
            stage="data.simulate",
            synthetic=settings("synthetic"),
        log:
            R("logs/simulate.log"),
        benchmark:
            R("benchmarks/simulate.tsv")
        script:
            STAGE_SCRIPT


rule ingest:
    input:
        tables=input_tables(),
    output:
        flow=R("data/flow.csv"),
        data_quality=R("data/data_quality.csv"),
        patients=R("data/patients.parquet"),
        events=R("data/events.parquet"),
        admissions=R("data/admissions.parquet"),
        interventions=R("data/interventions.parquet"),
        practices=R("data/practices.parquet"),
        rollout=R("data/rollout.parquet"),
    params:
        stage="data.ingest_inputs",
        source=input_folder(),
        study=settings("study"),
    log:
        R("logs/ingest.log"),
    benchmark:
        R("benchmarks/ingest.tsv")
    script:
        STAGE_SCRIPT
