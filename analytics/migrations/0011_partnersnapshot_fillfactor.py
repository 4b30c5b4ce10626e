"""Leave half of each page of the partner snapshot free, on PostgreSQL.

A backfill rewrites in place the partner rows each of its weeks already has
(`analytics.services.metrics_compute_weeks`, `writes.RowsStream.rewrite`). A new version of a
row that fits on the row's own page needs no new entry in any of the table's three indexes
(a heap-only update) and no check of its partner, which is unchanged; deleting the weeks'
rows and inserting them again made the database check every row's partner and each new key
against the rows just deleted. Measured on the 1M market (520,000 rows, psql, load 4-6):
2.5-3.0 s of the server's time for rewriting every row in place against 5.5-6.6 s for
deleting and inserting them. The table holds a row per partner and week: about 6 MB more per
week at 10,000 partners. Pages already written keep their fill until their rows are rewritten.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

TABLE = "analytics_partnersnapshot"


def leave_room(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")


def fill(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0010_partnerprogramme_fillfactor"),
    ]

    operations = [migrations.RunPython(leave_room, fill)]
