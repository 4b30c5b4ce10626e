"""Raw SQL, composed safely: statements are built with `psycopg.sql` (identifiers quoted,
values passed as parameters), then rendered here for Django's cursor on either database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql


def as_text(statement: sql.Composable, connection: BaseDatabaseWrapper | None = None) -> str:
    """`statement` as the text Django's cursor takes, placeholders left for the driver.

    Quoted identifiers read the same in PostgreSQL and SQLite; on PostgreSQL the open
    connection quotes them (and any literal) exactly as the server expects.
    """
    connection = connection or default_connection
    context = connection.connection if connection.vendor == "postgresql" else None
    return statement.as_string(context)


@contextmanager
def without_jit(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block's queries in one transaction without PostgreSQL's JIT compilation.

    A page's query over a million accounts can carry a planner cost (a correlated subquery it
    rarely runs counts in full) far above `jit_above_cost`, and compiling it then takes longer
    than running it (1.3 s of 3.5 s for the white-space counts). Nothing changes on SQLite."""
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield
