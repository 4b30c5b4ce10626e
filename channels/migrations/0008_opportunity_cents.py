"""Store each opportunity's amount in whole cents beside it, kept by the database.

The revenue figures read the amounts of up to two million deals as whole cents on every weekly
run; a generated column spares converting each decimal on every read, and no write path (the
model, the import's `COPY`, an `UPDATE`) can leave it out of step with the amount.
"""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Cast, Round


class Migration(migrations.Migration):
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
    ]
