"""Raw SQL, composed safely: statements are built with `psycopg.sql` (identifiers quoted,
values passed as parameters), then rendered here for Django's cursor on either database."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from psycopg import sql


def driver_rows(queryset: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows of a `values_list()` queryset as the database driver returns them, without the
    ORM's per-row work (none for a filter that can match nothing, such as `__in` an empty list).
    They are read on the database the queryset reads: the replica for the figures
    (analytics/routers.py)."""
    try:
        select, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:
        return []
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(select, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()  # the driver's values, column by column
        return rows


def as_text(statement: sql.Composable, connection: BaseDatabaseWrapper | None = None) -> str:
    """`statement` as the text Django's cursor takes, placeholders left for the driver.

    Quoted identifiers read the same in PostgreSQL and SQLite; on PostgreSQL the open
    connection quotes them (and any literal) exactly as the server expects.
    """
    connection = connection or default_connection
    context = connection.connection if connection.vendor == "postgresql" else None
    return statement.as_string(context)


# The server connections (psycopg's, not Django's wrapper, which outlives them) that already
# run without JIT.
_JIT_OFF: weakref.WeakSet[object] = weakref.WeakSet()


@contextmanager
def without_jit(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block's queries without PostgreSQL's JIT compilation.

    A page's query over a million accounts can carry a planner cost (a correlated subquery it
    rarely runs counts in full) far above `jit_above_cost`, and compiling it then takes longer
    than running it (1.3 s of 3.5 s for the white-space counts). The setting is made once per
    server connection, for the session, rather than in a transaction around each page (three
    more round trips a request, each a wait for a core on a busy machine): the queries a web
    process sends are all short, and none gains from compiling. Nothing changes on SQLite."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        server = connection.connection
        if server not in _JIT_OFF:
            with connection.cursor() as cursor:
                # Inside an open transaction, a rollback would undo a plain SET; LOCAL then.
                cursor.execute(
                    "SET LOCAL jit = off" if connection.in_atomic_block else "SET jit = off"
                )
            if not connection.in_atomic_block:
                _JIT_OFF.add(server)
    yield


@contextmanager
def by_index_lookups(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block's queries in one transaction in which PostgreSQL joins by index lookups
    (nested loops) rather than by hashing or merging, and without JIT compilation.

    For a count over one partner's assignments (a few percent of a million accounts) joined to
    the accounts: with its default costs (`random_page_cost` 4) the planner prices the tens of
    thousands of primary-key lookups above reading every account, hashes the whole accounts
    table instead, and on a market held in memory takes three times as long, a CPU cost that
    every view of a partner's page paid twice. One statement sets it, for this transaction only.
    Nothing changes on SQLite."""
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_hashjoin', 'off', true),"
                    " set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)"
                )
        yield


# PostgreSQL's `COPY` text format: NULL as \N, and a backslash, tab, newline or carriage return
# in a value escaped.
COPY_NULL = "\\N"
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: object) -> str:
    """`value` as a field of `COPY`'s text format."""
    if value is None:
        return COPY_NULL
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES)
    if isinstance(value, bool | np.bool_):
        return "t" if value else "f"
    if isinstance(value, float):
        return COPY_NULL if value != value else repr(float(value))
    return str(value)  # int, Decimal, date, aware datetime: PostgreSQL reads them as written


def copy_texts(values: Sequence[object]) -> list[str]:
    """A column's values as `copy_text` writes them, one string each, converted by the types
    the column holds rather than value by value where it can (most of a snapshot is ints,
    floats and plain names)."""
    if not values:
        return []
    if len(set(map(id, values))) == 1:  # one value common to every row
        return [copy_text(values[0])] * len(values)
    types = set(map(type, values))
    if types == {int}:
        return list(map(str, values))
    if types <= {int, type(None)}:
        return [COPY_NULL if value is None else str(value) for value in values]
    if types <= {float, type(None)}:
        return [COPY_NULL if value is None or value != value else repr(value) for value in values]
    if types == {str}:
        texts = cast(list[str], values)
        joined = "\x00".join(texts)
        plain = not any(special in joined for special in "\\\t\n\r")
        return list(texts) if plain else [text.translate(COPY_ESCAPES) for text in texts]
    return list(map(copy_text, values))


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def export_snapshot() -> str:
    """The id of this connection's snapshot (PostgreSQL, inside a REPEATABLE READ transaction),
    for another connection to read the same rows in (`in_exported_snapshot`)."""
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
    return str(snapshot)


@contextmanager
def in_exported_snapshot(snapshot: str) -> Iterator[None]:
    """On this thread's own connection (PostgreSQL), a REPEATABLE READ transaction that reads
    the `snapshot` another connection exported (`export_snapshot`), so two
    connections read the same rows at once; the connection is closed afterwards."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    try:
        with transaction.atomic(), default_connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(
                as_text(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            )
            yield
    finally:
        default_connection.close()


def int8_gathered(value: sql.Composable) -> sql.Composed:
    """An aggregate of the bigint `value` (never null) over the rows, as one `bytea` of the
    8-byte big-endian values in the rows' order (`int8_values` reads it).

    Cheaper for the database than the same values as an array (`array_send(array_agg(...))`),
    which it builds and then sends value by value through the element type's send function,
    each with its length: at a million rows about a tenth of a read's time."""
    return sql.SQL("string_agg(int8send({}), ''::bytea)").format(value)


def int8_values(data: bytes | memoryview | None, count: int) -> np.ndarray:
    """The `count` values an `int8_gathered` aggregate sent (None: it had no row). Raises
    ValueError when it holds another number of values (a null was skipped)."""
    if data is None:
        values = np.zeros(0, dtype="int64")
    else:
        values = np.frombuffer(data, dtype=">i8").astype("int64")
    if len(values) != count:
        raise ValueError(f"expected {count} bigint values, not {len(values)}: one was null")
    return values
