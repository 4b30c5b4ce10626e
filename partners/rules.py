"""The agreement rules of docs/metrics.md, written once (see `crm.rules` for how it is read)."""

from __future__ import annotations

from crm.rules import AnyOf, DateRule, OnOrAfter, OnOrBefore, Other, Unset

# Rule 2: in force on d when it is not a draft, was signed on or before d, its term includes d,
# and it was not terminated before d. The status values are `AgreementStatus`'s; this module
# stays free of models so that the pure metric functions can read it.
AGREEMENT_IN_FORCE = DateRule(
    "rule 2",
    (
        Other("status", "draft"),
        OnOrBefore("signed_on"),
        OnOrBefore("start_date"),
        OnOrAfter("end_date"),
        AnyOf((Unset("terminated_on"), OnOrAfter("terminated_on"))),
    ),
)

# Rule 9: ending soon on d when in force on d (rule 2) and its effective end, the end date or
# an earlier termination date, falls within the next `ENDING_WITHIN_DAYS` days.
ENDING_WITHIN_DAYS = 90
AGREEMENT_ENDING_SOON = DateRule(
    "rule 9",
    (
        *AGREEMENT_IN_FORCE.conditions,
        AnyOf(
            (
                OnOrBefore("end_date", ENDING_WITHIN_DAYS),
                OnOrBefore("terminated_on", ENDING_WITHIN_DAYS),
            )
        ),
    ),
)
