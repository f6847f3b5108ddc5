# Data: simulate (synthetic default) or read real extracts, then validate and stage as Parquet.

if config["input"]["source"] == "synthetic":

    rule simulate:
        output:
            tables=[R(SYNTHETIC_TABLES[table]) for table in INPUT_TABLES],
            truth=R(TRUTH),
        params:
            stage="data.simulate",
            synthetic=settings("synthetic"),
        resources:
            mem_mb=MEM_MB["simulate"],
        log:
            LOG("simulate"),
        benchmark:
            BENCHMARK("simulate")
        script:
            STAGE_SCRIPT


rule ingest:
    input:
        tables=input_tables(),
    output:
        flow=R(out.FLOW),
        data_quality=R(out.DATA_QUALITY),
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
        interventions=STAGED("interventions"),
        practices=STAGED("practices"),
        rollout=STAGED("rollout"),
    params:
        stage="data.ingest_inputs",
        source=input_folder(),
        study=settings("study"),
    resources:
        mem_mb=MEM_MB["ingest"],
    log:
        LOG("ingest"),
    benchmark:
        BENCHMARK("ingest")
    script:
        STAGE_SCRIPT
