"""Store each opportunity's amount in whole cents beside it, kept by the database.

The revenue figures read the amounts of up to two million deals as whole cents on every weekly
run; a generated column spares converting each decimal on every read, and no write path (the
model, the import's `COPY`, an `UPDATE`) can leave it out of step with the amount.

Adding the column rewrites the table; on PostgreSQL it is then vacuumed (outside a
transaction: the migration is not atomic), or until autovacuum came by every index-only scan
would visit the rows again and the planner would not know the new table.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import F
from django.db.models.functions import Cast, Round


def vacuum(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) channels_opportunity")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("channels", "0007_opportunity_drop_external_id_pattern_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="opportunity",
            name="cents",
            field=models.GeneratedField(
                db_persist=True,
                expression=Cast(Round(F("amount") * 100), models.BigIntegerField()),
                output_field=models.BigIntegerField(),
            ),
        ),
        migrations.RunPython(vacuum, migrations.RunPython.noop, elidable=True),
    ]
