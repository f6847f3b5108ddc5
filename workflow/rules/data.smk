# Data: simulate (synthetic default) or read real extracts, then validate and stage as Parquet.

if config["input"]["source"] == "synthetic":

    rule simulate:
        output:
            tables=expand(
                "results/synthetic/{table}.parquet",
                table=["practices", "patients", "events", "admissions", "interventions", "rollout"],
            ),
            truth="results/synthetic/truth/truth.json",
        log:
            "results/logs/simulate.log",
        benchmark:
            "results/benchmarks/simulate.tsv"
        params:
            stage="data.simulate",
        script:
            STAGE_SCRIPT


rule ingest:
    input:
        tables=input_tables(),
    output:
        flow="results/data/flow.csv",
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
        interventions="results/data/interventions.parquet",
        practices="results/data/practices.parquet",
        rollout="results/data/rollout.parquet",
    params:
        stage="data.ingest_inputs",
        source=input_folder(),
    log:
        "results/logs/ingest.log",
    benchmark:
        "results/benchmarks/ingest.tsv"
    script:
        STAGE_SCRIPT

