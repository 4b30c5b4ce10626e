"""Keep the week's regression inputs (`SatisfactionFit.inputs`) as numpy's archive of arrays
(`.npz`) in a binary column, not as JSON.

A week's run writes its regression row every night: at 10,000 partners the JSON of the inputs
(0.45 MB of text, parsed by the database) took 25-30 ms to write, about a fifth of the
programme step; the same values as arrays take about 2 ms (1M market, 10,000 partners). Each
week's values are carried over exactly, in the same partner order: the counts and days as
integers, a missing response time as NaN (null in the JSON), each category's counts under
"feedback_<category>"; the way back writes the JSON again from the arrays.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _packed(inputs: dict[str, Any]) -> bytes:
    """The JSON inputs of a week as the archive of arrays the week's run now writes (none
    when the week kept none)."""
    if not inputs:
        return b""
    arrays = {"partner_id": np.asarray(inputs.get("partner_id", []), dtype="int64")}
    for category, counts in inputs.get("feedback", {}).items():
        arrays[f"feedback_{category}"] = np.asarray(counts, dtype="int32")
    arrays["response_days"] = np.asarray(
        [math.nan if days is None else days for days in inputs.get("response_days", [])],
        dtype="float64",
    )
    arrays["tenure_days"] = np.asarray(inputs.get("tenure_days", []), dtype="int32")
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _unpacked(packed: bytes) -> dict[str, Any]:
    """An archive of arrays as the JSON inputs the week's run wrote before."""
    if not packed:
        return {}
    with np.load(io.BytesIO(bytes(packed)), allow_pickle=False) as arrays:
        return {
            "partner_id": arrays["partner_id"].tolist(),
            "feedback": {
                name.removeprefix("feedback_"): arrays[name].tolist()
                for name in arrays.files
                if name.startswith("feedback_")
            },
            "response_days": [
                None if math.isnan(days) else days for days in arrays["response_days"].tolist()
            ],
            "tenure_days": arrays["tenure_days"].tolist(),
        }


def pack(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    fits = apps.get_model("analytics", "SatisfactionFit").objects
    for pk, inputs in fits.values_list("pk", "inputs_json"):
        fits.filter(pk=pk).update(inputs=_packed(inputs or {}))


def unpack(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    fits = apps.get_model("analytics", "SatisfactionFit").objects
    for pk, packed in fits.values_list("pk", "inputs"):
        fits.filter(pk=pk).update(inputs_json=_unpacked(packed))


def _lz4(schema_editor: BaseDatabaseSchemaEditor, column: str) -> None:
    """On PostgreSQL built with lz4, compress `column` of the regression rows with it: the
    archive's 0.5 MB took 23 ms to write compressed with pglz, 8 ms with lz4 (1M market)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(
            f"ALTER TABLE analytics_satisfactionfit ALTER COLUMN {column} SET COMPRESSION lz4"
        )


def compress_arrays(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _lz4(schema_editor, "inputs")


def compress_json(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _lz4(schema_editor, "inputs_json")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0012_programme_week_kept_once"),
    ]

    operations = [
        migrations.RenameField(
            model_name="satisfactionfit", old_name="inputs", new_name="inputs_json"
        ),
        migrations.AddField(
            model_name="satisfactionfit",
            name="inputs",
            field=models.BinaryField(default=bytes),
        ),
        migrations.RunPython(compress_arrays, migrations.RunPython.noop),
        migrations.RunPython(pack, unpack),
        # On the way back the JSON column comes back (below), then is compressed, then filled.
        migrations.RunPython(migrations.RunPython.noop, compress_json),
        migrations.RemoveField(model_name="satisfactionfit", name="inputs_json"),
    ]
