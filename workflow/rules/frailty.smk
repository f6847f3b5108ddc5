# Frailty: eFI (Clegg 2016), eFI2 (Best 2025) and HFRS (Gilbert 2018) at the index date.

FRAILTY_OUTPUTS = [
    I("frailty/frailty.parquet"),
    I("frailty/frailty_flow.csv"),
] + [
    R(f"frailty/{name}")
    for name in (
        "efi_summary.csv",
        "efi_admissions.csv",
        "efi_distribution.png",
    )
]


rule frailty:
    input:
        patients=I("data/patients.parquet"),
        events=I("data/events.parquet"),
        admissions=I("data/admissions.parquet"),
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
        I("logs/frailty.log"),
    benchmark:
        R("benchmarks/frailty.tsv")
    script:
        STAGE_SCRIPT
