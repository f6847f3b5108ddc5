# Report: the commissioner HTML report (one self-contained file, checked for disclosure and
# identifiers before it is kept) and the manuscript PDF, both built from the results. Both
# describe the whole configuration, so any change to it redoes them.


rule report:
    input:
        final_outputs(),
        manifest=R("manifest.json"),
        patients=I("data/patients.parquet"),
        truth=truth_inputs(),
    output:
        html=R("report/index.html"),
    params:
        stage="report.html",
        config=settings(None),
    resources:
        mem_mb=MEM_MB["report"],
    log:
        I("logs/report.log"),
    benchmark:
        R("benchmarks/report.tsv")
    script:
        STAGE_SCRIPT


rule manuscript:
    input:
        final_outputs(),
        manifest=R("manifest.json"),
        truth=truth_inputs(),
    output:
        pdf=R("manuscript/manuscript.pdf"),
    params:
        stage="report.manuscript",
        config=settings(None),
    resources:
        mem_mb=MEM_MB["manuscript"],
    log:
        I("logs/manuscript.log"),
    benchmark:
        R("benchmarks/manuscript.tsv")
    script:
        STAGE_SCRIPT
