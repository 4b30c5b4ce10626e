"""Keep what a week's programme run shares once, on the week's regression, not on each
partner's row: the as-of day, whether the week is final, and the regression's inputs (the 90
days' feedback per category, the days to our first reply, the years since the first agreement).

A week is run again every night until it closes, and its partner rows are rewritten in place
where they changed (`analytics.writes.replace_week_rows`). The as-of day moves each night, and
with it every row's tenure and most rows' response time: every row was rewritten. Kept once
per week, a night rewrites only the rows whose figures changed. Each week's rows are carried:
their values become the columns of the week's `SatisfactionFit.inputs`, in partner id order,
and the way back puts them back on the rows.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# The feedback categories of the time (`partners.models.FeedbackCategory`).
CATEGORIES = [
    "product",
    "pricing",
    "support",
    "enablement",
    "sales_process",
    "technical",
    "marketing",
    "other",
]
MOVED = ["as_of", "final", "feedback_categories", "response_days", "tenure_years"]


def keep_once(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    rows_of = apps.get_model("analytics", "PartnerProgramme").objects
    fits = apps.get_model("analytics", "SatisfactionFit").objects
    for week in rows_of.order_by().values_list("week", flat=True).distinct():
        rows = list(
            rows_of.filter(week=week).order_by("partner_id").values_list("partner_id", *MOVED)
        )
        _, as_of, final = rows[0][:3]
        categories = CATEGORIES + sorted({key for row in rows for key in row[3]} - set(CATEGORIES))
        inputs: dict[str, Any] = {
            "partner_id": [row[0] for row in rows],
            "feedback": {
                category: [int(row[3].get(category, 0)) for row in rows] for category in categories
            },
            "response_days": [row[4] for row in rows],
            # The years were the whole days / 365.25.
            "tenure_days": [round(row[5] * 365.25) for row in rows],
        }
        # The week's regression is written with its rows; one missing is kept as too little data.
        fits.update_or_create(
            week=week,
            defaults={"inputs": inputs},
            create_defaults={
                "inputs": inputs,
                "as_of": as_of,
                "final": final,
                "status": "too_little_data",
                "observations": 0,
                "parameters": 0,
            },
        )


def compress_fast(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """On PostgreSQL built with lz4, compress the inputs with it: a week's half a megabyte of
    JSON took 45-60 ms to write compressed with pglz, 15-20 ms with lz4 (1M market, psql)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(
            "ALTER TABLE analytics_satisfactionfit ALTER COLUMN inputs SET COMPRESSION lz4"
        )


def put_back(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    rows_of = apps.get_model("analytics", "PartnerProgramme").objects
    for fit in apps.get_model("analytics", "SatisfactionFit").objects.all():
        inputs = fit.inputs or {}
        feedback = inputs.get("feedback", {})
        position = {partner_id: i for i, partner_id in enumerate(inputs.get("partner_id", []))}
        rows = [row for row in rows_of.filter(week=fit.week) if row.partner_id in position]
        for row in rows:
            index = position[row.partner_id]
            row.as_of, row.final = fit.as_of, fit.final
            row.feedback_categories = {
                category: counts[index] for category, counts in feedback.items() if counts[index]
            }
            row.response_days = inputs["response_days"][index]
            row.tenure_years = inputs["tenure_days"][index] / 365.25
        # A week's rows in a few statements, not one each.
        rows_of.bulk_update(rows, MOVED, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0011_week_rows_fillfactor"),
    ]

    operations = [
        migrations.AddField(
            model_name="satisfactionfit",
            name="inputs",
            field=models.JSONField(default=dict),
        ),
        # Null for the way back, which adds the columns before it fills them.
        migrations.AlterField(
            model_name="partnerprogramme", name="as_of", field=models.DateField(null=True)
        ),
        migrations.AlterField(
            model_name="partnerprogramme", name="final", field=models.BooleanField(null=True)
        ),
        migrations.AlterField(
            model_name="partnerprogramme",
            name="feedback_categories",
            field=models.JSONField(default=dict, null=True),
        ),
        migrations.AlterField(
            model_name="partnerprogramme", name="tenure_years", field=models.FloatField(null=True)
        ),
        migrations.RunPython(compress_fast, migrations.RunPython.noop),
        migrations.RunPython(keep_once, put_back),
        *(migrations.RemoveField(model_name="partnerprogramme", name=name) for name in MOVED),
    ]
