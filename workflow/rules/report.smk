# Report: the commissioner HTML report (one self-contained file, checked for disclosure and
# identifiers before it is kept) and the manuscript PDF, both built from the results.


rule report:
    input:
        final_outputs(),
        manifest="results/manifest.json",
        patients="results/data/patients.parquet",
        truth=truth_inputs(),
    output:
        html="results/report/index.html",
    params:
        stage="report.html",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    script:
        STAGE_SCRIPT


rule manuscript:
    input:
        final_outputs(),
        manifest="results/manifest.json",
        truth=truth_inputs(),
    output:
        pdf="results/manuscript/manuscript.pdf",
    params:
        stage="report.manuscript",
    log:
        "results/logs/manuscript.log",
    benchmark:
        "results/benchmarks/manuscript.tsv"
    script:
        STAGE_SCRIPT
