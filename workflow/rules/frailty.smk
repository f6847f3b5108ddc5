# Frailty: eFI (Clegg 2016), eFI2 (Best 2025) and HFRS (Gilbert 2018) at the index date.

FRAILTY_OUTPUTS = rule_outputs("frailty")


rule frailty:
    input:
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
        codelists=CODELIST_FILES,
    output:
        FRAILTY_OUTPUTS,
    params:
        stage="frailty.run",
        frailty=settings("frailty"),
        disclosure=settings("disclosure"),
    resources:
        mem_mb=MEM_MB["frailty"],
    log:
        LOG("frailty"),
    benchmark:
        BENCHMARK("frailty")
    script:
        STAGE_SCRIPT
