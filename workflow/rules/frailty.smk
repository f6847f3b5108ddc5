# Frailty: eFI (Clegg 2016), eFI2 (Best 2025) and HFRS (Gilbert 2018) at the index date.

FRAILTY_OUTPUTS = [
    "results/frailty/frailty.parquet",
    "results/frailty/frailty_flow.csv",
    "results/frailty/efi_summary.csv",
    "results/frailty/efi_admissions.csv",
    "results/frailty/efi_distribution.png",
]


rule frailty:
    input:
        patients="results/data/patients.parquet",
        events="results/data/events.parquet",
        admissions="results/data/admissions.parquet",
    output:
        FRAILTY_OUTPUTS,
    params:
        stage="frailty.run",
    log:
        "results/logs/frailty.log",
    benchmark:
        "results/benchmarks/frailty.tsv"
    script:
        STAGE_SCRIPT
