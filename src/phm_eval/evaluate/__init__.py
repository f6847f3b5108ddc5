"""Impact evaluation of a proactive-care programme on emergency admissions.

:func:`~phm_eval.evaluate.design.build_cohort` assembles enrolled patients and eligible
comparators from not-yet- and never-adopting practices at the same calendar month;
:func:`~phm_eval.evaluate.outcomes.follow_up` measures outcomes after the (matched) index date;
:mod:`~phm_eval.evaluate.effects` turns them into effect estimates with the package's verified
estimators, and :mod:`~phm_eval.evaluate.rtm` sets the naive before/after beside the controlled
estimate so regression to the mean is visible.
"""
