"""Log which accounts each transaction changed, on PostgreSQL, for the metrics' readers that
keep the accounts between runs and read again only those changed since
(`crm.change_logs.ACCOUNTS`, `analytics.kept_rows`). SQLite keeps no log."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from crm.change_logs import ACCOUNTS, create_sql, drop_sql


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(create_sql(ACCOUNTS))


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(drop_sql(ACCOUNTS))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_account_drop_external_id_pattern_index"),
    ]

    operations = [migrations.RunPython(create, drop)]
