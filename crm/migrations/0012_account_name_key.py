"""Accounts gain `name_key`, the folded name a deal registration is matched by; existing
accounts get theirs before the index is built (faster than maintaining it row by row)."""

from __future__ import annotations

from django.db import migrations, models

BATCH = 50_000


def fill_name_keys(apps, schema_editor):
    from crm.names import company_name_key

    connection = schema_editor.connection
    table = connection.ops.quote_name(apps.get_model("crm", "Account")._meta.db_table)
    last_id = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT id, name FROM {table} WHERE id > %s ORDER BY id LIMIT %s", [last_id, BATCH]
            )
            rows = cursor.fetchall()
            if not rows:
                return
            last_id = rows[-1][0]
            keys = [(row_id, company_name_key(name)) for row_id, name in rows]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} a SET name_key = v.name_key FROM "
                    "(SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS name_key) v "
                    "WHERE a.id = v.id",
                    [[row_id for row_id, _ in keys], [key for _, key in keys]],
                )
            else:
                cursor.executemany(
                    f"UPDATE {table} SET name_key = %s WHERE id = %s",
                    [(key, row_id) for row_id, key in keys],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_submission_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="name_key",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(
                condition=models.Q(("name_key", ""), _negated=True),
                fields=["name_key"],
                name="account_name_key_idx",
            ),
        ),
    ]
