# Describe: who is in the population and how they use hospital care.

DESCRIBE_TABLES = ["population_pyramid", "ltc_prevalence", "emergency_admission_rates"]


def describe_outputs():
    return expand("results/describe/{name}.csv", name=DESCRIBE_TABLES) + expand(
        "results/describe/{name}.png", name=DESCRIBE_TABLES
    )


rule describe:
    input:
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
    output:
        describe_outputs(),
    params:
        stage="describe.run",
    log:
        "results/logs/describe.log",
    benchmark:
        "results/benchmarks/describe.tsv"
    script:
        STAGE_SCRIPT
