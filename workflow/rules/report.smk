# Report: the commissioner HTML report (one self-contained file, checked for disclosure and
# identifiers before it is kept) and the manuscript PDF, both built from the results. Both
# describe the whole configuration, so any change to it redoes them.


rule report:
    input:
        final_outputs(),
        manifest=R(out.MANIFEST),
        patients=STAGED("patients"),
        truth=truth_inputs(),
    output:
        html=R(out.REPORT_HTML),
    params:
        stage="report.html",
        config=settings(None),
    resources:
        mem_mb=MEM_MB["report"],
    log:
        LOG("report"),
    benchmark:
        BENCHMARK("report")
    script:
        STAGE_SCRIPT


rule manuscript:
    input:
        final_outputs(),
        manifest=R(out.MANIFEST),
        truth=truth_inputs(),
    output:
        pdf=R(out.MANUSCRIPT_PDF),
    params:
        stage="report.manuscript",
        config=settings(None),
    resources:
        mem_mb=MEM_MB["manuscript"],
    log:
        LOG("manuscript"),
    benchmark:
        BENCHMARK("manuscript")
    script:
        STAGE_SCRIPT
