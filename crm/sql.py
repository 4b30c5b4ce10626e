"""Raw SQL, composed safely: statements are built with `psycopg.sql` (identifiers quoted,
values passed as parameters), then rendered here for Django's cursor on either database."""

from __future__ import annotations

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
