"""Writing a run's rows: a snapshot's or rollup's rows, column by column, into its table in one
`COPY` on PostgreSQL (`bulk_create` elsewhere). Shared by the weekly run's writer
(`analytics.services`) and the programme step (`analytics.programme_services`).

The rows go in `COPY`'s binary format, built column by column with numpy: hundreds of
thousands of rows (a backfill's, `RowsBuffer`) without a Python string per value; a model with
a column that has no binary form here goes as text."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, ForeignKey, IntegerField, Model, UniqueConstraint
from django.db.models.sql import InsertQuery
from django.utils import timezone
from psycopg import sql

from crm.sql import COPY_NULL, as_text, copy_text, copy_texts

# What a snapshot or rollup column holds: codes and weeks, counts, ratios, flags, dates.
Cell = str | int | float | bool | date | datetime | None


# A column of rows: Python values, or a numpy array (NaN, None and NaT stand for null).
Column = Sequence[Cell] | np.ndarray


@dataclass
class Rows:
    """Rows to insert, column by column: model field name → one value per row."""

    columns: Mapping[str, Column]
    count: int

    def __len__(self) -> int:
        return self.count


def insert_rows(model: type[Model], rows: Rows) -> None:
    """Insert `rows` into `model`'s table: one `COPY` on PostgreSQL, which writes a week's rows
    several times faster than INSERTs, built column by column and sent at once (a call per
    row cost more than the database's work), in the binary format when each column has one
    here (no string per value to build, nor for the database to parse), else as text;
    `bulk_create` elsewhere."""
    if not rows.count:
        return
    if connection.vendor != "postgresql":
        _bulk_create(model, rows)
        return
    columns = _binary_columns(model)
    if columns is None:
        _copy(model, _copy_text(model, rows))
        return
    _copy_binary(model, columns, [_binary_rows(model, rows, columns)])


def insert_objects(model: type[Model], objects: Sequence[Model]) -> None:
    """Insert `objects` of `model` in one `INSERT` (their time stamps set as `bulk_create`
    sets them). On PostgreSQL its values are sent apart from the statement, each in its binary
    form where it has one: through Django's cursor a bytes value goes as the text of its hex,
    twice its size for the database to parse (a week's regression inputs, 0.5 MB: 8 ms
    against 2 ms). `bulk_create` elsewhere."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    query = InsertQuery(model)
    query.insert_values(_fields(model), list(objects))
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        for statement, params in query.get_compiler(connection=connection).as_sql():
            cursor.execute(statement, params)


def replace_week_tables(week: str, tables: Mapping[type[Model], Rows]) -> None:
    """`replace_week_rows` of each model of `tables` (model → the week's rows), in their
    order, inside the caller's transaction. On PostgreSQL each table's rows are turned into
    `COPY`'s binary form on a thread of their own while the database stores the tables before
    it: the encoding is numpy's work on one core, the storing the database's on the other
    (at 1M accounts, with every row changed as each night, 0.157 s instead of 0.188 s)."""
    if connection.vendor != "postgresql" or len(tables) < 2:
        for model, rows in tables.items():
            replace_week_rows(model, week, rows)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        encoded = {
            model: _Encoded(columns, pool.submit(_binary_rows, model, rows, columns))
            for model, rows in tables.items()
            if rows.count and (columns := _binary_columns(model)) is not None
        }
        try:
            for model, rows in tables.items():
                replace_week_rows(model, week, rows, encoded=encoded.get(model))
        finally:
            # A write that failed leaves the encodings not yet begun undone.
            for each in encoded.values():
                each.data.cancel()


@dataclass(frozen=True)
class _Encoded:
    """A table's rows in `COPY`'s binary form, its fields in the order of `columns`, encoded
    on a thread of their own (`replace_week_tables`)."""

    columns: list[_BinaryColumn]
    data: Future[bytes]

    def copy_into(self, model: type[Model], into: sql.Identifier | None = None) -> None:
        """The rows copied into `model`'s table, or into `into`, a table of its columns."""
        _copy_binary(model, self.columns, [self.data.result()], into)


def replace_week_rows(
    model: type[Model],
    week: str,
    rows: Rows,
    *,
    staged_as: Mapping[str, str] | None = None,
    encoded: _Encoded | None = None,
) -> None:
    """Make `model`'s rows of `week` the `rows` given (inside the caller's transaction).

    On PostgreSQL, when the week has rows already (a week is run again every night until it
    closes), they are rewritten in place: `rows` are staged in a temporary table in one
    binary `COPY`, then the week's rows whose values changed are updated, the rows of keys
    new to the week inserted and those of keys no longer in it deleted (the key: the model's
    unique constraint that starts with the week). A row rewritten in place keeps its key, so
    neither its unique index nor its foreign keys have anything to check, and a row whose
    values did not change is not written again (its comparison alone is paid); deleting the
    week and inserting it again made the database check every key against the row just
    deleted, and every foreign key at the commit. A week's first rows, and every week on
    other databases, are inserted after its rows are deleted (`insert_rows`).

    `staged_as`: the fields whose own column has no binary form here (money, JSON), staged as
    text (by field name: "text") and read by the database as it reads text; the rows of such
    a model always go through the staging table on PostgreSQL, a week's first rows too.
    `encoded`: `rows` in `COPY`'s binary form, encoded beside (`replace_week_tables`; not
    with `staged_as`)."""
    key = _week_key(model)
    stored = model._default_manager.filter(week=week)
    if (
        connection.vendor != "postgresql"
        or key is None
        or _binary_columns(model, staged_as) is None
        or not rows.count
        or (not staged_as and not stored.exists())
    ):
        stored.delete()
        if encoded is None or staged_as:
            insert_rows(model, rows)
        else:
            encoded.copy_into(model)
        return
    _rewrite_weeks(model, [week], [rows], key, staged_as, None if staged_as else encoded)


def replace_weeks_rows(
    model: type[Model],
    rows: Mapping[str, Rows],
    *,
    staged_as: Mapping[str, str] | None = None,
) -> None:
    """`replace_week_rows` of each week of `rows` (week → its rows), inside the caller's
    transaction. On PostgreSQL the weeks' rows are staged together in one binary `COPY` and
    rewritten, added and deleted in one statement each for all the weeks (a backfill's 52
    weeks: five statements, not five a week), as `replace_week_rows` does for one week."""
    key = _week_key(model)
    if (
        connection.vendor != "postgresql"
        or key is None
        or _binary_columns(model, staged_as) is None
        or len(rows) < 2
    ):
        for week, week_rows in rows.items():
            replace_week_rows(model, week, week_rows, staged_as=staged_as)
        return
    _rewrite_weeks(model, list(rows), list(rows.values()), key, staged_as)


def _week_key(model: type[Model]) -> list[str] | None:
    """The columns of `model`'s unique constraint on the week and what a week has one row of
    (None when it has none)."""
    columns = {field.name: str(field.column) for field in _fields(model)}
    for constraint in model._meta.constraints:
        if (
            isinstance(constraint, UniqueConstraint)
            and constraint.fields
            and constraint.fields[0] == "week"
            and constraint.condition is None
        ):
            return [columns[name] for name in constraint.fields]
    return None


@dataclass(frozen=True)
class _WeekRewrite:
    """The statements that make a table's rows of one week those staged in a temporary table of
    its columns (`_week_rewrite`), each row matched to its staged row by the week's key."""

    # Rewrites in place every row whose values differ from its staged row's.
    changed: sql.Composed
    # Counts the staged keys the week lacks and the week's keys not staged, in one join.
    unmatched: sql.Composed
    # Inserts the staged rows whose key the week lacks: an anti-join of the staged rows with
    # the table they go into, run as `guarded_anti_join` runs it.
    added: sql.Composed
    # Inserts every staged row (when the weeks have no row yet).
    inserted: sql.Composed
    # Deletes the week's rows whose key is not staged.
    gone: sql.Composed


def _week_rewrite(
    model: type[Model],
    week: str | Sequence[str],
    key: list[str],
    staged: sql.Identifier,
    text_columns: Mapping[str, str] | None = None,
) -> _WeekRewrite:
    """The statements of `_WeekRewrite` for `model`'s rows of `week` (or of each of several
    weeks) and its key `key` (`_week_key`), staged in `staged`. A rewritten row keeps its
    `created_at`; a row whose values are those staged is not written again (its `updated_at`
    kept). `text_columns`: the staged columns held as text, by column, with the type each is
    read as."""
    table = sql.Identifier(model._meta.db_table)
    columns = [str(field.column) for field in _fields(model)]
    rewritten = [column for column in columns if column not in {*key, "created_at"}]
    compared = [column for column in rewritten if column != "updated_at"]
    casts = text_columns or {}

    def value(alias: str, name: str) -> sql.Composable:
        if alias == "s" and name in casts:
            return sql.SQL("{}::{}").format(sql.Identifier(alias, name), sql.SQL(casts[name]))
        return sql.Identifier(alias, name)

    def listed(alias: str, names: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(value(alias, name) for name in names)

    names = {
        "table": table,
        "staged": staged,
        "weeks": sql.SQL(", ").join(map(sql.Literal, [week] if isinstance(week, str) else week)),
        "same": sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("t", name), sql.Identifier("s", name))
            for name in key
        ),
    }
    inserted = sql.SQL("INSERT INTO {table} ({columns}) SELECT {given} FROM {staged} AS s").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        given=listed("s", columns),
        **names,
    )
    return _WeekRewrite(
        changed=sql.SQL(
            "UPDATE {table} AS t SET {set} FROM {staged} AS s WHERE t.week IN ({weeks}) AND {same}"
            " AND ({stored}) IS DISTINCT FROM ({given})"
        ).format(
            set=sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(name), value("s", name))
                for name in rewritten
            ),
            stored=listed("t", compared),
            given=listed("s", compared),
            **names,
        ),
        unmatched=sql.SQL(
            "SELECT count(*) FILTER (WHERE t.week IS NULL),"
            " count(*) FILTER (WHERE s.week IS NULL)"
            " FROM (SELECT * FROM {table} WHERE week IN ({weeks})) AS t"
            " FULL JOIN {staged} AS s ON {same}"
        ).format(**names),
        added=sql.SQL(
            "{inserted} WHERE NOT EXISTS"
            " (SELECT FROM {table} AS t WHERE t.week IN ({weeks}) AND {same})"
        ).format(inserted=inserted, **names),
        inserted=inserted,
        gone=sql.SQL(
            "DELETE FROM {table} AS t WHERE t.week IN ({weeks})"
            " AND NOT EXISTS (SELECT FROM {staged} AS s WHERE {same})"
        ).format(**names),
    )


def guarded_anti_join(statement: sql.Composable) -> list[sql.Composable]:
    """`statement`, an insert of the rows whose key a table lacks (an anti-join with the very
    table it inserts into), as the statements to run in its place: with no nested loop
    allowed for it, so that the table's keys are hashed (or merged) once. With statistics
    that call the table empty (analyzed before its first rows), the database otherwise
    probes it by a scan for every row inserted, each scan longer than the one before (an
    8-week backfill at a million accounts spent 72 s in the insert of its 80,000 programme
    rows; the whole backfill takes 5 s without it). Nested loops are then allowed again as
    configured."""
    return [
        sql.SQL("SET LOCAL enable_nestloop = off"),
        statement,
        sql.SQL("RESET enable_nestloop"),
    ]


def _staging_table(
    model: type[Model], staged: sql.Identifier, text_columns: Iterable[str] = ()
) -> list[sql.Composed]:
    """The statements that create `staged`, a temporary table of `model`'s columns (dropped at
    the commit), those of `text_columns` held as text, with a unique index on the week's key
    (`_week_key`).

    The index keeps the rewrite's joins (`_week_rewrite`) fast whatever the statistics say:
    the database plans them from what it knows of the week's stored rows, and statistics
    gathered before a backfill wrote its weeks (a table the night's run had just filled,
    analyzed before the weeks after were written) count about one row for a week that has
    10,000. It then joins each stored row to the staged rows by reading all of them: on the
    1M market 10^8 comparisons a week, 32 s instead of 0.04 s; with the index each stored
    row finds its staged row in one look-up (0.15 s under the same statistics)."""
    text = set(text_columns)
    key = _week_key(model) or []
    return [
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(
            staged,
            sql.SQL(", ").join(
                sql.SQL("NULL::text AS {}").format(sql.Identifier(str(field.column)))
                if field.column in text
                else sql.Identifier(str(field.column))
                for field in _fields(model)
            ),
            sql.Identifier(model._meta.db_table),
        ),
        *(
            [
                sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(
                    staged, sql.SQL(", ").join(map(sql.Identifier, key))
                )
            ]
            if key
            else []
        ),
    ]


def _rewrite_weeks(
    model: type[Model],
    weeks: list[str],
    parts: list[Rows],
    key: list[str],
    staged_as: Mapping[str, str] | None = None,
    encoded: _Encoded | None = None,
) -> None:
    """`replace_week_rows` of weeks that have rows (or whose model has `staged_as` fields), on
    PostgreSQL: the rows of `weeks`, `parts`, staged together (`encoded`: the one part's, in
    `COPY`'s binary form)."""
    staged = sql.Identifier("week_rows")
    # The columns staged as text, with the type each is read as.
    text_columns = {
        str(field.column): str(field.db_type(connection))
        for field in _fields(model)
        if (staged_as or {}).get(field.attname) == "text"
    }
    statements = _week_rewrite(model, weeks, key, staged, text_columns)
    with connection.cursor() as cursor:
        for statement in _staging_table(model, staged, text_columns):
            cursor.execute(as_text(statement))
        if encoded is None:
            copy_binary_into(staged, model, parts, staged_as=staged_as)
        else:
            encoded.copy_into(model, staged)
        cursor.execute(as_text(statements.changed))
        # Most runs find no key added or gone, and pay for no insert or delete.
        cursor.execute(as_text(statements.unmatched))
        new_keys, gone_keys = cursor.fetchone()
        if new_keys and new_keys == sum(part.count for part in parts):
            # No staged key is stored (the weeks' first rows): every staged row goes in.
            cursor.execute(as_text(statements.inserted))
        elif new_keys:
            for step in guarded_anti_join(statements.added):
                cursor.execute(as_text(step))
        if gone_keys:
            cursor.execute(as_text(statements.gone))
        # Dropped now, not at the commit: the transaction goes on with the next table.
        cursor.execute(as_text(sql.SQL("DROP TABLE {}").format(staged)))


def rewrite_week_rows(
    model: type[Model],
    week: str,
    rows: Rows,
    *,
    gone: Sequence[int],
    staged_as: Mapping[str, str] | None = None,
) -> None:
    """PostgreSQL: make `model`'s rows of `week` (a week that has rows) what
    `replace_week_rows` would make them, when the caller knows which of them may change:
    `rows` holds the week's rows that may differ from those stored (any others are as
    stored) and the rows of keys new to the week; `gone`, the keys the week no longer has
    (the key: the column of the model's unique constraint after the week). In one statement,
    the rows passed as arrays: each row whose values differ from its stored row's is
    rewritten in place (as `replace_week_rows` rewrites it: a row whose values are those
    stored is left as it is), the rows of new keys inserted and those of `gone` deleted.
    `staged_as`: the fields passed as text ("text", by field name) and read by the database
    as it reads text, as `replace_week_rows` stages them."""
    key = _week_key(model)
    if key is None or len(key) != 2:
        raise ValueError(f"{model.__name__}: no unique key of a week and one column")
    key_column = key[1]
    fields = [
        field for field in _fields(model) if field.attname not in {"created_at", "updated_at"}
    ]
    given = [field for field in fields if field.attname != "week"]
    as_text_fields = {name for name, kind in (staged_as or {}).items() if kind == "text"}

    def array_type(field: Field[Any, Any]) -> str:
        db_type = str(field.db_type(connection))
        # Text as text: written into its column, a value too long is refused, where a cast to
        # the column's type would cut it.
        if field.attname in as_text_fields or db_type.startswith(("varchar", "text")):
            return "text"
        return db_type

    def value(field: Field[Any, Any]) -> sql.Composable:
        column = sql.Identifier("s", str(field.column))
        if field.attname in as_text_fields:
            return sql.SQL("{}::{}").format(column, sql.SQL(str(field.db_type(connection))))
        return column

    table = sql.Identifier(model._meta.db_table)
    compared = [field for field in given if str(field.column) != key_column]
    same_key = sql.SQL("t.{key} = s.{key}").format(key=sql.Identifier(key_column))
    statement = sql.SQL(
        "WITH s ({names}) AS (SELECT * FROM unnest({arrays})),"
        " changed AS (UPDATE {table} AS t SET {set}, updated_at = %s FROM s"
        " WHERE t.week = %s AND {same} AND ({stored}) IS DISTINCT FROM ({values})),"
        " gone AS (DELETE FROM {table} AS t WHERE t.week = %s AND t.{key} = ANY(%s))"
        " INSERT INTO {table} (created_at, updated_at, week, {names})"
        " SELECT %s, %s, %s, {all_values} FROM s"
        " WHERE NOT EXISTS (SELECT FROM {table} AS t WHERE t.week = %s AND {same})"
    ).format(
        names=sql.SQL(", ").join(sql.Identifier(str(field.column)) for field in given),
        arrays=sql.SQL(", ").join(
            sql.SQL("%s::{}[]").format(sql.SQL(array_type(field))) for field in given
        ),
        table=table,
        set=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(str(field.column)), value(field))
            for field in compared
        ),
        same=same_key,
        stored=sql.SQL(", ").join(sql.Identifier("t", str(field.column)) for field in compared),
        values=sql.SQL(", ").join(value(field) for field in compared),
        key=sql.Identifier(key_column),
        all_values=sql.SQL(", ").join(value(field) for field in given),
    )
    now = timezone.now()
    arrays = [_array_cells(rows.columns[field.attname], field, as_text_fields) for field in given]
    params: list[Any] = [*arrays, now, week, week, list(gone), now, now, week, week]
    # No nested loop is ruled out here (`guarded_anti_join`): the week has rows, and the few
    # rows sent are matched to them by the week's unique index.
    with connection.cursor() as cursor:
        cursor.execute(as_text(statement), params)


def _array_cells(values: Column, field: Field[Any, Any], as_text_fields: set[str]) -> list[Cell]:
    """A column as the Python values of an array parameter (`rewrite_week_rows`): null as
    None, an integer column's whole floats (a count that met a blank in a merge) as integers,
    a field passed as text by the text a binary `COPY` stages it as (`_text_cells`)."""
    cells = _cells(values)
    if field.attname in as_text_fields:
        return [
            cell if cell is None or isinstance(cell, str) else copy_text(cell) for cell in cells
        ]
    if not isinstance(field, IntegerField | ForeignKey):
        return cells
    whole: list[Cell] = []
    for cell in cells:
        if isinstance(cell, float):
            if not cell.is_integer():
                raise ValueError(f"a value that is not whole for a {field.attname} column")
            cell = int(cell)
        whole.append(cell)
    return whole


def _with_stamps(model: type[Model], rows: Rows) -> dict[str, Column]:
    """`rows`' columns, with `created_at` and `updated_at` (now) when the model has them and
    the rows do not say."""
    now = timezone.now()
    return {
        **rows.columns,
        **{
            name: [now] * rows.count
            for name in ("created_at", "updated_at")
            if name not in rows.columns and any(field.attname == name for field in _fields(model))
        },
    }


def _cells(values: Column) -> list[Cell]:
    """A column as Python values, null as None."""
    if not isinstance(values, np.ndarray):
        return list(values)
    if values.dtype.kind in "fOmM":
        return pd.Series(values, dtype=object).where(pd.notna(values), None).tolist()
    cells: list[Cell] = values.tolist()
    return cells


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def _bulk_create(model: type[Model], rows: Rows) -> None:
    columns = {name: _cells(values) for name, values in _with_stamps(model, rows).items()}
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
        copy_texts(_cells(columns[field.attname]))
        if field.attname in columns
        else [COPY_NULL] * rows.count
        for field in _fields(model)
    ]
    return "".join("\t".join(row) + "\n" for row in zip(*texts, strict=True))


def _copy(model: type[Model], text: str) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(_text_statement(model)) as copy:
        copy.write(text)


# `COPY`'s binary format: a signature, flags and header extension (both 0), the rows, and a
# field count of -1 to end (https://www.postgresql.org/docs/15/sql-copy.html).
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
_NULL_CELL = b"\xff\xff\xff\xff"
# The binary form of each column type a snapshot or rollup uses: numbers big-endian, booleans
# one byte, dates as days and moments as microseconds from 2000-01-01, text as UTF-8.
_FIXED_TYPES: dict[str, str] = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "double precision": ">f8",
    "boolean": "u1",
    "date": ">i4",
    "timestamp with time zone": ">i8",
}
_DAY_ZERO = np.datetime64("2000-01-01", "D")
_MOMENT_ZERO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _BinaryColumn:
    field: Field[Any, Any]
    db_type: str  # a key of `_FIXED_TYPES`, or "text"


def _binary_columns(
    model: type[Model], staged_as: Mapping[str, str] | None = None
) -> list[_BinaryColumn] | None:
    """`model`'s columns in the order its binary `COPY` lists them: first those of one width
    on every row (not null, not text), then the rest; None when one has no binary form here
    (its rows then go as text). `staged_as` gives, by field name, the type a field is sent as
    instead of its own ("text", or a key of `_FIXED_TYPES`)."""
    types = staged_as or {}
    columns = []
    for field in _fields(model):
        db_type = types.get(field.attname) or str(field.db_type(connection))
        if db_type.startswith(("varchar", "text")):
            columns.append(_BinaryColumn(field, "text"))
        elif db_type in _FIXED_TYPES:
            columns.append(_BinaryColumn(field, db_type))
        else:
            return None
    return sorted(columns, key=lambda column: column.field.null or column.db_type == "text")


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Where each of consecutive pieces of `sizes` bytes starts."""
    starts: np.ndarray = np.cumsum(sizes) - sizes
    return starts


def _constant(values: Column, count: int) -> bool:
    return isinstance(values, list) and count > 0 and values.count(values[0]) == count


def _binary_value(db_type: str, value: Cell) -> np.ndarray:
    """One value's bytes (length and data) in the binary format."""
    cells = _binary_cells(db_type, np.array([value], dtype=object))
    return cells[1]


def _binary_cells(db_type: str, values: Column) -> tuple[np.ndarray, np.ndarray]:
    """A column's cells in the binary format: the size of each (4 for its length, then its
    data; a null has length -1 and no data) and all their bytes in row order."""
    count = len(values)
    if _constant(values, count):
        cell = _binary_value(db_type, values[0])
        return np.full(count, len(cell), dtype="int64"), np.tile(cell, count)
    if db_type == "text":
        return _text_cells(values)
    array = np.asarray(values)
    if db_type == "date":
        array = np.asarray(values, dtype="datetime64[D]")
        null = np.isnat(array)
        numbers = (array - _DAY_ZERO).astype("int64")
    elif db_type == "timestamp with time zone":
        null = np.asarray(pd.isna(array), dtype=bool)
        numbers = np.array(
            [
                0 if missing else (moment - _MOMENT_ZERO) // timedelta(microseconds=1)
                for moment, missing in zip(array.tolist(), null.tolist(), strict=True)
            ],
            dtype="int64",
        )
    else:
        null = np.asarray(pd.isna(array), dtype=bool)
        numbers = np.where(null, 0, array) if null.any() else array
    data_type = np.dtype(_FIXED_TYPES[db_type])
    if data_type.kind == "i":
        whole = np.asarray(numbers, dtype="int64")
        if (whole != np.asarray(numbers)).any():
            raise ValueError(f"a value that is not whole for a {db_type} column")
        numbers = whole
        limit = 1 << (8 * data_type.itemsize - 1)
        if len(numbers) and (numbers.min() < -limit or numbers.max() >= limit):
            raise ValueError(f"a value out of the range of a {db_type} column")
    data = np.asarray(numbers).astype(data_type)
    width = data_type.itemsize
    cells = np.empty((count, 4 + width), dtype=np.uint8)
    cells[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    cells[:, 4:] = data.view(np.uint8).reshape(count, width)
    if not null.any():
        return np.full(count, 4 + width, dtype="int64"), cells.reshape(-1)
    cells[null, :4] = 0xFF
    kept = np.ones(cells.shape, dtype=bool)
    kept[null, 4:] = False
    return np.where(null, 4, 4 + width).astype("int64"), cells[kept]


def _text_cells(values: Column) -> tuple[np.ndarray, np.ndarray]:
    """`_binary_cells` of a text column: the distinct values encoded together, then each
    row's length and bytes gathered."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    texts = (
        list(uniques)
        if pd.api.types.infer_dtype(uniques, skipna=False) == "string"
        else [unique if isinstance(unique, str) else copy_text(unique) for unique in uniques]
    )
    joined = "".join(texts)
    data = np.frombuffer(joined.encode(), dtype=np.uint8)
    if len(data) == len(joined):  # ASCII: a character is a byte
        lengths = np.fromiter(map(len, texts), dtype="int64", count=len(texts))
    else:
        lengths = np.array([len(text.encode()) for text in texts], dtype="int64")
    present = codes >= 0
    length = np.where(present, lengths[np.maximum(codes, 0)] if len(texts) else 0, 0)
    sizes = 4 + length
    starts = _starts(sizes)
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    header = np.where(present, length, -1).astype(">i4").view(np.uint8).reshape(-1, 4)
    out[starts[:, None] + np.arange(4)] = header
    within = np.arange(int(length.sum())) - np.repeat(_starts(length), length)
    source = np.repeat(_starts(lengths)[codes[present]], length[present])
    out[np.repeat(starts + 4, length) + within] = data[source + within]
    return sizes, out


# The text cells of a column (`_binary_cells`) by field name, with the values they encode.
TextCells = dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]


def _binary_rows(
    model: type[Model],
    rows: Rows,
    columns: list[_BinaryColumn],
    texts: TextCells | None = None,
) -> bytes:
    """`rows` in `COPY`'s binary format (without its header and trailer), its fields in the
    order of `columns`. `texts`: text cells encoded before for the model's rows (a backfill's
    weeks name the same partners and segments), taken again for an array of the same values
    and kept for the next rows."""
    values = _with_stamps(model, rows)
    count = rows.count
    null = (np.full(count, 4, dtype="int64"), np.tile(np.frombuffer(_NULL_CELL, np.uint8), count))
    cells = [
        (
            _text_cells_kept(values[name], name, texts)
            if texts is not None and column.db_type == "text"
            else _binary_cells(column.db_type, values[name])
        )
        if (name := column.field.attname) in values
        else null
        for column in columns
    ]
    # The leading cells of one width on every row make a block, row by row; the others are
    # put together row by row after it.
    fixed = 0
    while fixed < len(cells) and (cells[fixed][0] == cells[fixed][0][:1]).all():
        fixed += 1
    widths = [int(sizes[0]) if count else 0 for sizes, _ in cells[:fixed]]
    block = np.empty((count, 2 + sum(widths)), dtype=np.uint8)
    block[:, :2] = np.frombuffer(len(cells).to_bytes(2, "big"), dtype=np.uint8)
    at = 2
    for width, (_, data) in zip(widths, cells[:fixed], strict=True):
        block[:, at : at + width] = data.reshape(count, width)
        at += width
    if fixed == len(cells):
        return block.tobytes()
    rest_sizes = np.sum([sizes for sizes, _ in cells[fixed:]], axis=0)
    rest = np.empty(int(rest_sizes.sum()), dtype=np.uint8)
    at_row = _starts(rest_sizes)
    for sizes, data in cells[fixed:]:
        rest[np.repeat(at_row - _starts(sizes), sizes) + np.arange(len(data))] = data
        at_row = at_row + sizes
    # Each row: its block, then its rest.
    in_block = np.repeat(
        np.tile(np.array([True, False]), count),
        np.column_stack([np.full(count, block.shape[1]), rest_sizes]).reshape(-1),
    )
    out = np.empty(block.size + rest.size, dtype=np.uint8)
    out[in_block] = block.reshape(-1)
    out[~in_block] = rest
    return out.tobytes()


def _text_cells_kept(values: Column, name: str, texts: TextCells) -> tuple[np.ndarray, np.ndarray]:
    """`_binary_cells` of a text column, taken from `texts` when they encode the same array
    of strings (else encoded, and kept there when an array of strings)."""
    if not isinstance(values, np.ndarray):
        return _binary_cells("text", values)
    kept = texts.get(name)
    if kept is not None and len(kept[0]) == len(values) and (kept[0] == values).all():
        return kept[1]
    cells = _binary_cells("text", values)
    # Kept only for strings (a string equals nothing else; 1 == 1.0 though their texts differ).
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        texts[name] = (values, cells)
    return cells


def _binary_statement(
    model: type[Model], columns: list[_BinaryColumn], into: sql.Identifier | None = None
) -> sql.Composed:
    """A binary `COPY` of `columns` into `model`'s table, or into `into`, a table of its columns."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        into or sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(str(column.field.column)) for column in columns),
    )


def _copy_binary(
    model: type[Model],
    columns: list[_BinaryColumn],
    parts: Iterable[bytes],
    into: sql.Identifier | None = None,
) -> None:
    statement = _binary_statement(model, columns, into)
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.write(_BINARY_HEADER)
        for part in parts:
            copy.write(part)
        copy.write(_BINARY_TRAILER)


class RowsBuffer:
    """Rows of many weeks gathered per model and inserted at the end, one `COPY` per model on
    PostgreSQL: each `add` turns its rows into `COPY`'s binary format at once (its text format
    for a model with a column that has no binary form here), so only bytes are kept;
    elsewhere each `add`'s rows are kept and `bulk_create`d. `RowsStream` sends them as they
    come."""

    def __init__(self) -> None:
        self._binary: dict[type[Model], list[bytes]] = {}
        self._texts: dict[type[Model], list[str]] = {}
        self._rows: dict[type[Model], list[Rows]] = {}

    def add(self, model: type[Model], rows: Rows) -> None:
        if not rows.count:
            return
        if connection.vendor != "postgresql":
            self._rows.setdefault(model, []).append(rows)
            return
        columns = _binary_columns(model)
        if columns is None:
            self._texts.setdefault(model, []).append(_copy_text(model, rows))
        else:
            self._binary.setdefault(model, []).append(_binary_rows(model, rows, columns))

    def insert(self) -> None:
        """Insert every model's rows gathered so far, and forget them."""
        for model, binary in self._binary.items():
            columns = _binary_columns(model)
            assert columns is not None
            _copy_binary(model, columns, binary)
        for model, texts in self._texts.items():
            _copy(model, "".join(texts))
        for model, parts in self._rows.items():
            for rows in parts:
                _bulk_create(model, rows)
        self._binary, self._texts, self._rows = {}, {}, {}


def copy_binary_into(
    table: sql.Identifier,
    model: type[Model],
    parts: Sequence[Rows],
    *,
    staged_as: Mapping[str, str] | None = None,
) -> None:
    """PostgreSQL: insert the rows of `parts` (of `model`'s fields) into `table`, a table of
    `model`'s columns (a temporary table to stage them), in one binary `COPY`, each part
    turned into bytes as it is sent (a text column equal to the part before's encoded once).
    `staged_as` names the type `table` holds a field as where its own has no binary form here
    (by field name: "text", or a key of `_FIXED_TYPES`), e.g. a money or JSON column staged as
    text. Raises ValueError for any other such field."""
    columns = _binary_columns(model, staged_as)
    if columns is None:
        raise ValueError(f"{model.__name__}: a field has no binary form here and is not staged")
    texts: TextCells = {}
    _copy_binary(
        model,
        columns,
        (_binary_rows(model, rows, columns, texts) for rows in parts if rows.count),
        table,
    )


# How many `COPY`s of a `RowsStream` may wait for its thread: enough for the weeks computed
# while the database stores one, few enough to keep a backfill's memory flat.
_STREAM_QUEUE = 32


class RowsStream(RowsBuffer):
    """A `RowsBuffer` whose rows go to the database as they are added, each `add`'s in a `COPY`
    of its own, sent from a thread of the stream's (PostgreSQL; elsewhere it is a
    `RowsBuffer`): the database stores the rows, builds their index entries and checks their
    foreign keys while the next weeks are computed, rather than all at the end.

    The deferred foreign keys of `models` are checked at the end of each `COPY` while the
    stream is open (`SET CONSTRAINTS ... IMMEDIATE`), so that a transaction's commit does not
    check every row at once; the same constraints hold, only earlier. `insert` waits for every
    `COPY` and raises the first error; nothing else may use the connection until then."""

    def __init__(self, *, models: Sequence[type[Model]]) -> None:
        super().__init__()
        self._models = list(models)
        self._constraints: list[str] = []
        # A `COPY` and its rows, or a statement alone (no rows).
        self._queue: queue.Queue[tuple[sql.Composable, bytes | str | None] | None] = queue.Queue(
            _STREAM_QUEUE
        )
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._staged: set[type[Model]] = set()
        self._text_cells: dict[type[Model], TextCells] = {}

    def __enter__(self) -> RowsStream:
        if connection.vendor != "postgresql":
            return self
        self._constraints = _deferred_foreign_keys(self._models)
        self._set_constraints("IMMEDIATE")
        # This thread's wrapper of the connection (Django's are per thread), for the other.
        wrapper = connections[DEFAULT_DB_ALIAS]
        self._thread = threading.Thread(target=self._send, args=(wrapper,), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()  # on an error the transaction rolls back: the rows sent go with it

    def add(self, model: type[Model], rows: Rows) -> None:
        if self._thread is None:
            super().add(model, rows)
            return
        if self._failure is not None:
            raise self._failure
        if not rows.count:
            return
        columns = _binary_columns(model)
        if columns is None:
            self._queue.put((_text_statement(model), _copy_text(model, rows)))
        else:
            texts = self._text_cells.setdefault(model, {})
            data = _BINARY_HEADER + _binary_rows(model, rows, columns, texts) + _BINARY_TRAILER
            self._queue.put((_binary_statement(model, columns), data))

    def rewrite(self, model: type[Model], rows: Rows, *, week: str, had: np.ndarray) -> None:
        """PostgreSQL, while the stream is open: make `model`'s rows of `week` those of `rows`
        (all of `week`, one per partner), as `replace_week_rows` does, the statements queued
        behind the rows: the row of each partner the week has already (`had`, their ids) is
        rewritten in place when its values changed, the rows of partners new to the week are
        inserted and those of partners no longer in it deleted. The rows go first to a
        temporary table of the model's columns, in a binary `COPY`.

        In place, a row keeps its partner and week: nothing checks the partner again, and a
        new version that fits on the row's page (the table leaves room: migration
        `0011_week_rows_fillfactor`) needs no index entry; deleting and inserting the rows
        made the database check both for every row. Measured on the 1M market (520,000 rows,
        psql, load 4-6): 2.5-3.0 s of the server's CPU to rewrite every row in place against
        5.5-6.6 s to delete and insert them."""
        if self._failure is not None:
            raise self._failure
        staged = sql.Identifier(f"{model._meta.db_table}_rewritten")
        columns, key = _binary_columns(model), _week_key(model)
        assert self._thread is not None and columns is not None and key is not None
        if model not in self._staged:
            self._staged.add(model)
            for statement in _staging_table(model, staged):
                self._execute(statement)
        if rows.count:
            texts = self._text_cells.setdefault(model, {})
            data = _BINARY_HEADER + _binary_rows(model, rows, columns, texts) + _BINARY_TRAILER
            self._queue.put((_binary_statement(model, columns, staged), data))
        statements = _week_rewrite(model, week, key, staged)
        self._execute(statements.changed)
        ids = np.asarray(rows.columns["partner_id"] if rows.count else [], dtype="int64")
        if not np.isin(ids, had).all():
            for step in guarded_anti_join(statements.added):
                self._execute(step)
        if len(np.setdiff1d(had, ids)):
            self._execute(statements.gone)
        self._execute(sql.SQL("TRUNCATE {}").format(staged))

    def _execute(self, statement: sql.Composable) -> None:
        self._queue.put((statement, None))

    def insert(self) -> None:
        """Wait for every row added so far to be stored and checked; raise the first error."""
        if self._thread is None:
            super().insert()
            return
        self._stop()
        if self._failure is not None:
            raise self._failure
        self._set_constraints("DEFERRED")

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _send(self, wrapper: BaseDatabaseWrapper) -> None:
        """The thread's work: each `COPY` queued, in order, until the end; after an error the
        rest is only taken off the queue."""
        while (item := self._queue.get()) is not None:
            if self._failure is not None:
                continue
            statement, data = item
            try:
                with wrapper.wrap_database_errors, wrapper.connection.cursor() as cursor:
                    if data is None:
                        cursor.execute(statement)
                        continue
                    with cursor.copy(statement) as copy:
                        copy.write(data)
            except Exception as error:  # raised by the next `add`, or by `insert`
                self._failure = error

    def _set_constraints(self, mode: str) -> None:
        if not self._constraints:
            return
        statement = sql.SQL("SET CONSTRAINTS {} {}").format(
            sql.SQL(", ").join(map(sql.Identifier, self._constraints)), sql.SQL(mode)
        )
        with connection.cursor() as cursor:
            cursor.execute(as_text(statement))


def _text_statement(model: type[Model]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(map(sql.Identifier, [str(field.column) for field in _fields(model)])),
    )


def _deferred_foreign_keys(models: Sequence[type[Model]]) -> list[str]:
    """The names of the foreign keys of `models`' tables that are checked at commit (Django
    declares them DEFERRABLE INITIALLY DEFERRED)."""
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferred"
            " AND conrelid = ANY (SELECT oid FROM pg_class WHERE relname = ANY (%s)"
            " AND relnamespace = to_regnamespace(current_schema())) ORDER BY conname",
            [tables],
        )
        return [name for (name,) in cursor.fetchall()]
