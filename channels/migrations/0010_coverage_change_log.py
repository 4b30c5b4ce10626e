"""Log which coverage assignments each transaction changed, on PostgreSQL, for the metrics'
readers that keep the assignments between runs and read again only those changed since
(`channels.change_logs.COVERAGE`, `analytics.kept_rows`). SQLite keeps no log."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from channels.change_logs import COVERAGE
from crm.change_logs import create_sql, drop_sql


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(create_sql(COVERAGE))


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(drop_sql(COVERAGE))


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0009_opportunity_change_log"),
        ("crm", "0016_account_change_log"),
    ]

    operations = [migrations.RunPython(create, drop)]
