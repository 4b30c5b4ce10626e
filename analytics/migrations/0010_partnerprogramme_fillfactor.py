"""Leave half of each page of the partner programme snapshot free, on PostgreSQL.

The weekly programme step rewrites the current week's 10,000 partner rows in place every
night until the week closes (`analytics.programme_services`). A new version of a row that
fits on the row's own page needs no new entry in any of the table's three indexes (a
heap-only update), and the page's old versions are cleared as it is next read; on full pages
every rewritten row moved to another page with three new index entries. Measured on the 1M
market at load 7.5, psql rewriting the week's rows eight times each: 220-930 ms with the
free half against 860-1,790 ms without (a long transaction elsewhere on the server kept the
old versions from being cleared, so every other rewrite still moved its rows). The table
holds a row per partner and week: about 3 MB more per week at 10,000 partners. Pages
already written keep their fill until their rows are rewritten.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

TABLE = "analytics_partnerprogramme"


def leave_room(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")


def fill(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0009_partnerprogramme_partner_index"),
    ]

    operations = [migrations.RunPython(leave_room, fill)]
