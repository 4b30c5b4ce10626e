"""The coverage rule of docs/metrics.md, written once (see `crm.rules` for how it is read)."""

from __future__ import annotations

from crm.rules import AnyOf, DateRule, OnOrAfter, OnOrBefore, Unset

# Rule 3a: a coverage assignment is running on d from its start date through its end date, or
# for good when it has none. Rule 3b adds, for the partner kinds, an agreement in force that
# grants the account's region and vertical.
COVERAGE_RUNNING = DateRule(
    "rule 3a", (OnOrBefore("start_date"), AnyOf((Unset("end_date"), OnOrAfter("end_date"))))
)
