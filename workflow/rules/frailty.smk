# Frailty: eFI (Clegg 2016), eFI2 (Best 2025) and HFRS (Gilbert 2018) at the index date.

FRAILTY_OUTPUTS = [
    R(f"frailty/{name}")
    for name in (
        "frailty.parquet",
        "frailty_flow.csv",
        "efi_summary.csv",
        "efi_admissions.csv",
        "efi_distribution.png",
    )
]


rule frailty:
    input:
        patients=R("data/patients.parquet"),
        events=R("data/events.parquet"),
        admissions=R("data/admissions.parquet"),
        codelists=CODELIST_FILES,
    output:
        FRAILTY_OUTPUTS,
    params:
        stage="frailty.run",
        frailty=settings("frailty"),
        disclosure=settings("disclosure"),
    log:
        R("logs/frailty.log"),
    benchmark:
        R("benchmarks/frailty.tsv")
    script:
        STAGE_SCRIPT
