"""The coverage and opportunity rules of docs/metrics.md, written once (see `crm.rules` for how
they are read)."""

from __future__ import annotations

from crm.rules import After, AnyOf, DateRule, Is, OnOrAfter, OnOrBefore, Unset

# Rule 3a: a coverage assignment is running on d from its start date through its end date, or
# for good when it has none. Rule 3b adds, for the partner kinds, an agreement in force that
# grants the account's region and vertical.
COVERAGE_RUNNING = DateRule(
    "rule 3a", (OnOrBefore("start_date"), AnyOf((Unset("end_date"), OnOrAfter("end_date"))))
)

# Rule 12: in the pipeline on d: opened on or before d and not closed on or before d (a deal won
# or lost after d was still in the pipeline on d).
IN_PIPELINE = DateRule(
    "rule 12", (OnOrBefore("opened_on"), AnyOf((Unset("closed_on"), After("closed_on"))))
)

# Rule 12: the forecast on d: in the pipeline, expected to close within the 13 weeks after d
# (or already overdue).
FORECAST_DAYS = 91
IN_FORECAST = DateRule(
    "rule 12", (*IN_PIPELINE.conditions, OnOrBefore("expected_close_on", FORECAST_DAYS))
)

# Rule 13: won in the 52 weeks ending on d, i.e. d - 363 <= closed_on <= d.
WON_DAYS = 364
WON_IN_52_WEEKS = DateRule(
    "rule 13",
    (Is("stage", "won"), OnOrAfter("closed_on", 1 - WON_DAYS), OnOrBefore("closed_on")),
)

# Rule 14: a subscription running on d: a won recurring deal closed on or before d that has not
# ended by d (`ends_on` is the first day it no longer runs).
SUBSCRIBED = DateRule(
    "rule 14",
    (
        Is("stage", "won"),
        Is("recurring", True),
        OnOrBefore("closed_on"),
        AnyOf((Unset("ends_on"), After("ends_on"))),
    ),
)
