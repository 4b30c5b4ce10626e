"""The agreement rule of docs/metrics.md, written once (see `crm.rules` for how it is read)."""

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
