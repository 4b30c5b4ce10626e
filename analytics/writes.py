"""Writing a run's rows: a snapshot's or rollup's rows, column by column, into its table in one
`COPY` on PostgreSQL (`bulk_create` elsewhere). Shared by the weekly run's writer
(`analytics.services`) and the programme step (`analytics.programme_services`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone
from psycopg import sql

from crm.sql import COPY_NULL, copy_texts

# What a snapshot or rollup column holds: codes and weeks, counts, ratios, flags, dates.
Cell = str | int | float | bool | date | datetime | None


@dataclass
class Rows:
    """Rows to insert, column by column: model field name → one value per row."""

    columns: dict[str, list[Cell]]
    count: int

    def __len__(self) -> int:
        return self.count


def insert_rows(model: type[Model], rows: Rows) -> None:
    """Insert `rows` into `model`'s table: one `COPY` on PostgreSQL, which writes a week's rows
    several times faster than INSERTs, its text built column by column and sent at once (a
    call per row cost more than the database's work); `bulk_create` elsewhere."""
    if not rows.count:
        return
    if connection.vendor != "postgresql":
        _bulk_create(model, rows)
        return
    _copy(model, _copy_text(model, rows))


def _with_stamps(model: type[Model], rows: Rows) -> dict[str, list[Cell]]:
    """`rows`' columns, with `created_at` and `updated_at` (now) when the model has them and
    the rows do not say."""
    now = timezone.now()
    return rows.columns | {
        name: [now] * rows.count
        for name in ("created_at", "updated_at")
        if name not in rows.columns and any(field.attname == name for field in _fields(model))
    }


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def _bulk_create(model: type[Model], rows: Rows) -> None:
    columns = _with_stamps(model, rows)
    attnames = list(columns)
    objects = [
        model(**dict(zip(attnames, row, strict=True)))
        for row in zip(*columns.values(), strict=True)
    ]
    model._default_manager.bulk_create(objects, batch_size=2000)


def _copy_text(model: type[Model], rows: Rows) -> str:
    """`rows` as the text of a `COPY` into `model`'s table (`_copy`), one line per row."""
    columns = _with_stamps(model, rows)
    texts = [
        copy_texts(columns[field.attname]) if field.attname in columns else [COPY_NULL] * rows.count
        for field in _fields(model)
    ]
    return "".join("\t".join(row) + "\n" for row in zip(*texts, strict=True))


def _copy(model: type[Model], text: str) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(map(sql.Identifier, [str(field.column) for field in _fields(model)])),
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.write(text)


class RowsBuffer:
    """Rows of many weeks gathered per model and inserted at the end, one `COPY` per model on
    PostgreSQL (a backfill's weeks): each `add` turns its rows into `COPY` text at once, so only
    text is kept; elsewhere each `add`'s rows are kept and `bulk_create`d."""

    def __init__(self) -> None:
        self._texts: dict[type[Model], list[str]] = {}
        self._rows: dict[type[Model], list[Rows]] = {}

    def add(self, model: type[Model], rows: Rows) -> None:
        if not rows.count:
            return
        if connection.vendor == "postgresql":
            self._texts.setdefault(model, []).append(_copy_text(model, rows))
        else:
            self._rows.setdefault(model, []).append(rows)

    def insert(self) -> None:
        """Insert every model's rows gathered so far, and forget them."""
        for model, texts in self._texts.items():
            _copy(model, "".join(texts))
        for model, parts in self._rows.items():
            for rows in parts:
                _bulk_create(model, rows)
        self._texts, self._rows = {}, {}
