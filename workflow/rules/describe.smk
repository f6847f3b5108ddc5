# Describe: who is in the population and how they use hospital care.


def describe_outputs():
    return rule_outputs("describe")


rule describe:
    input:
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
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
        LOG("describe"),
    benchmark:
        BENCHMARK("describe")
    script:
        STAGE_SCRIPT
