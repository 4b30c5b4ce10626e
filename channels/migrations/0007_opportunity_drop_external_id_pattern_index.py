"""Drop the pattern index PostgreSQL gets beside the unique index of opportunities' external id.

Django adds a `varchar_pattern_ops` index to every unique text column for `LIKE 'prefix%'`
queries; no page, API or job of the product searches external ids by prefix (the searches use
`icontains`, which no btree serves, or equality, which the unique index serves). A large import
rebuilds every non-unique index of the table, so this one cost time on each load for nothing.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "channels_opportunity_external_id_af93b752_like"
TABLE = "channels_opportunity"


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (external_id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0006_opportunity_owner_indexes_in_composites"),
    ]

    operations = [migrations.RunPython(drop, create)]
