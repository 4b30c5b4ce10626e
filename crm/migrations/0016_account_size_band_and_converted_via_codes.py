"""The account's size band and winning kind as integer codes the database writes itself.

Both columns are added by one `ALTER TABLE` on PostgreSQL: a stored generated column rewrites
the table and rebuilds its indexes, once for both instead of once each.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState


class AddFieldsTogether(migrations.operations.base.Operation):
    """`AddField` for several fields of one model, added in one statement on PostgreSQL."""

    def __init__(self, model_name: str, fields: list[tuple[str, models.Field[Any, Any]]]) -> None:
        self.model_name = model_name
        self.fields = fields

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__name__, [self.model_name, self.fields], {}

    def _each(self) -> list[migrations.AddField]:
        return [
            migrations.AddField(model_name=self.model_name, name=name, field=field)
            for name, field in self.fields
        ]

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        for operation in self._each():
            operation.state_forwards(app_label, state)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "postgresql":
            for name, _ in self.fields:
                schema_editor.add_field(model, model._meta.get_field(name))
            return
        clauses, params = [], []
        for name, _ in self.fields:
            field = model._meta.get_field(name)
            definition, field_params = schema_editor.column_sql(model, field)
            clauses.append(f"ADD COLUMN {schema_editor.quote_name(field.column)} {definition}")
            params.extend(field_params)
        table = schema_editor.quote_name(model._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} {', '.join(clauses)}", params or None)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        for name, _ in self.fields:
            schema_editor.remove_field(model, model._meta.get_field(name))

    def describe(self) -> str:
        return f"Add fields {', '.join(name for name, _ in self.fields)} to {self.model_name}"


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_account_drop_external_id_pattern_index"),
    ]

    operations = [
        AddFieldsTogether(
            "account",
            [
                (
                    "size_band_code",
                    models.GeneratedField(
                        db_persist=True,
                        expression=models.Case(
                            models.When(size_band="smb", then=models.Value(0)),
                            models.When(size_band="mid_market", then=models.Value(1)),
                            models.When(size_band="enterprise", then=models.Value(2)),
                            models.When(size_band="strategic", then=models.Value(3)),
                            default=models.Value(0),
                            output_field=models.PositiveSmallIntegerField(),
                        ),
                        output_field=models.PositiveSmallIntegerField(),
                    ),
                ),
                (
                    "converted_via_code",
                    models.GeneratedField(
                        db_persist=True,
                        expression=models.Case(
                            models.When(converted_via="direct", then=models.Value(1)),
                            models.When(converted_via="distribution", then=models.Value(2)),
                            models.When(converted_via="partner", then=models.Value(3)),
                            models.When(converted_via="online", then=models.Value(4)),
                            default=models.Value(0),
                            output_field=models.PositiveSmallIntegerField(),
                        ),
                        output_field=models.PositiveSmallIntegerField(),
                    ),
                ),
            ],
        ),
    ]
