# Evaluate: matched comparison, survival with competing death, rates, DiD and event study,
# regression to the mean, subgroups.

EVALUATE_OUTPUTS = rule_outputs("evaluate")


rule evaluate:
    input:
        patients=STAGED("patients"),
        events=STAGED("events"),
        admissions=STAGED("admissions"),
        practices=STAGED("practices"),
        interventions=STAGED("interventions"),
        rollout=STAGED("rollout"),
        codelists=CODELIST_FILES,
    output:
        EVALUATE_OUTPUTS,
    params:
        stage="evaluate.run",
        evaluate=settings("evaluate", without=("design_check",)),
        study=settings("study"),
        disclosure=settings("disclosure"),
        codelists=CODELISTS,
    threads: 2
    resources:
        mem_mb=MEM_MB["evaluate"],
    log:
        LOG("evaluate"),
    benchmark:
        BENCHMARK("evaluate")
    script:
        STAGE_SCRIPT


rule design_check:
    """Power on this run's own data: both designs re-analysed with known effects injected
    (plasmode simulation). Matched design: arms re-drawn within matched sets, matching reused,
    only the outcome model refitted; population design: adoption permuted over units, the
    staggered difference in differences refitted on the unit-month panel."""
    input:
        analysed=R(out.ANALYSED),
        itt_panel=R(out.ITT_PANEL),
        itt_design=R(out.ITT_DESIGN),
        truth=truth_inputs(),
    output:
        json=R(out.DESIGN_CHECK),
        csv=R(out.DESIGN_CHECK_CSV),
    params:
        stage="evaluate.design_check",
        design_check=settings("evaluate")["design_check"],
    resources:
        mem_mb=MEM_MB["design_check"],
    log:
        LOG("design_check"),
    benchmark:
        BENCHMARK("design_check")
    script:
        STAGE_SCRIPT
