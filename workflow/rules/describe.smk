# Describe: who is in the population and how they use hospital care.

DESCRIBE_TABLES = ["population_pyramid", "ltc_prevalence", "emergency_admission_rates"]


def describe_outputs():
    return expand(R("describe/{name}.csv"), name=DESCRIBE_TABLES) + expand(
        R("describe/{name}.png"), name=DESCRIBE_TABLES
    )


rule describe:
    input:
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
        codelists=CODELIST_FILES,
    output:
        describe_outputs(),
    params:
        stage="describe.run",
        study=settings("study"),
        disclosure=settings("disclosure"),
        codelists=CODELISTS,
    resources:
        mem_mb=MEM_MB["describe"],
    log:
        I("logs/describe.log"),
    benchmark:
        R("benchmarks/describe.tsv")
    script:
        STAGE_SCRIPT
