"""The logs of changed coverage assignments and opportunities (`crm.change_logs`), read by the
metrics' kept rows (`analytics.kept_rows`)."""

from __future__ import annotations

from crm.change_logs import ChangeLog

# The assignments as a week's metrics read them (account, kind, owner, the days of rule 3a).
COVERAGE = ChangeLog(
    table="channels_coverageassignment",
    id_column="assignment_id",
    fields=("account_id", "kind", "partner_id", "rep_id", "start_date", "end_date"),
)

# Every update of a deal is logged (migration 0009, made before logs named their fields).
OPPORTUNITIES = ChangeLog(table="channels_opportunity", id_column="opportunity_id")
