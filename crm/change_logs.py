"""Logs of the rows each transaction changed, kept by the database itself (PostgreSQL), for
readers that keep a table's rows between runs and read again only those changed since
(`analytics.kept_rows`).

A logged table `T` has, made by a migration from `create_sql`:

- `T_change`: one row per row an `INSERT`, `UPDATE` or `DELETE` touched, with the writing
  transaction's id; a statement touching more than `MOST_ROWS` rows logs one row with no id
  instead (read everything again), which keeps a load of a million rows from writing a million
  log rows. An `UPDATE` is logged only for the rows whose `ChangeLog.fields` changed (a reader
  reads no other column), so bookkeeping updates log nothing.
- `T_change_horizon`: one row, the newest transaction id of any log row pruned, or of a
  `TRUNCATE` of `T` or of the log. A reader whose rows were read in a snapshot that might not
  see that transaction reads them all again; without the row (its table truncated) every
  reader does.

Statement-level triggers with transition tables log a whole statement at once, in the changing
transaction itself, so a change is in the log exactly when it is visible. SQLite has no log:
its readers always read every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, migrations, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from psycopg import sql

from crm.sql import as_text

# A statement changing more rows than this logs one row meaning "read them all again".
MOST_ROWS = 10_000

# Long enough for a reader that keeps rows to come by at least weekly (the weekly close).
CHANGES_KEPT = timedelta(days=8)


@dataclass(frozen=True)
class ChangeLog:
    """The log of `table`'s changed rows (by their `id`), whose log rows name them in
    `id_column`; with `fields`, an update is logged only where one of them changed."""

    table: str
    id_column: str
    fields: tuple[str, ...] | None = None

    @property
    def log(self) -> str:
        return f"{self.table}_change"

    @property
    def horizon(self) -> str:
        return f"{self.table}_change_horizon"


# The accounts as a week's metrics read them (segment, the dates of rules 1 and 4, the winning
# kind): `analytics.selectors`.
ACCOUNTS = ChangeLog(
    table="crm_account",
    id_column="account_id",
    fields=(
        "region_id",
        "vertical_id",
        "size_band",
        "entered_on",
        "archived_on",
        "converted_on",
        "converted_via",
    ),
)


def create_sql(log: ChangeLog) -> str:
    """The statements that create `log`'s tables and triggers (see the module's text)."""
    table, name, horizon, column = log.table, log.log, log.horizon, log.id_column
    if log.fields is None:
        moved = "SELECT id FROM new_rows"
    else:
        new = ", ".join(f"n.{field}" for field in log.fields)
        old = ", ".join(f"o.{field}" for field in log.fields)
        moved = (
            "SELECT coalesce(n.id, o.id) AS id FROM new_rows AS n"
            " FULL JOIN old_rows AS o ON n.id = o.id"
            f" WHERE n.id IS NULL OR o.id IS NULL OR ({new}) IS DISTINCT FROM ({old})"
        )
    return f"""
CREATE TABLE {name} (
    {column} bigint,
    xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    logged_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
COMMENT ON TABLE {name} IS
    'The rows of {table} each transaction changed (no row: read all again).';
CREATE INDEX {name}_xid ON {name} (xid);

CREATE TABLE {horizon} (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    xid bigint NOT NULL
);
INSERT INTO {horizon} (xid) VALUES (pg_current_xact_id()::text::bigint);

CREATE FUNCTION {table}_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM (SELECT FROM changed LIMIT {MOST_ROWS + 1}) AS first_rows)
            > {MOST_ROWS} THEN
        INSERT INTO {name} ({column}) VALUES (NULL);
    ELSE
        INSERT INTO {name} ({column}) SELECT id FROM changed;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION {table}_updates_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS MATERIALIZED ({moved}),
    counted AS (SELECT count(*) AS rows FROM (SELECT FROM moved LIMIT {MOST_ROWS + 1}) AS m)
    INSERT INTO {name} ({column})
        SELECT id FROM moved WHERE (SELECT rows FROM counted) <= {MOST_ROWS}
        UNION ALL
        SELECT NULL WHERE (SELECT rows FROM counted) > {MOST_ROWS};
    RETURN NULL;
END
$$;

CREATE FUNCTION {table}_horizon_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {horizon} (xid) VALUES (pg_current_xact_id()::text::bigint)
        ON CONFLICT (id) DO UPDATE SET xid = EXCLUDED.xid;
    RETURN NULL;
END
$$;

CREATE TRIGGER {table}_inserted AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_logged();
CREATE TRIGGER {table}_updated AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_updates_logged();
CREATE TRIGGER {table}_deleted AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_logged();
CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_horizon_moved();
CREATE TRIGGER {name}_truncated AFTER TRUNCATE ON {name}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_horizon_moved();
"""


def operation(log: ChangeLog) -> migrations.RunPython:
    """The migration operation that creates `log` on PostgreSQL (SQLite keeps no log), and
    drops it when reversed."""

    def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(create_sql(log))

    def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(drop_sql(log))

    return migrations.RunPython(create, drop)


def drop_sql(log: ChangeLog) -> str:
    """The statements that drop what `create_sql(log)` created."""
    table = log.table
    return f"""
DROP TRIGGER {table}_inserted ON {table};
DROP TRIGGER {table}_updated ON {table};
DROP TRIGGER {table}_deleted ON {table};
DROP TRIGGER {table}_truncated ON {table};
DROP TABLE {log.log};
DROP TABLE {log.horizon};
DROP FUNCTION {table}_logged();
DROP FUNCTION {table}_updates_logged();
DROP FUNCTION {table}_horizon_moved();
"""


def prune(log: ChangeLog, *, older_than: timedelta = CHANGES_KEPT) -> int:
    """Delete `log`'s rows logged more than `older_than` ago and move its horizon past them,
    so that a process whose rows were read before those changes reads them all again.
    Returns the rows deleted; 0 on a database that keeps no log (SQLite)."""
    if connection.vendor != "postgresql":
        return 0
    log_table, horizon = sql.Identifier(log.log), sql.Identifier(log.horizon)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            as_text(
                sql.SQL(
                    "WITH pruned AS (DELETE FROM {log} WHERE logged_at"
                    " < statement_timestamp() - make_interval(secs => %s) RETURNING xid)"
                    " SELECT count(*), max(xid) FROM pruned"
                ).format(log=log_table)
            ),
            [older_than.total_seconds()],
        )
        pruned, newest = cursor.fetchone()
        if pruned:
            cursor.execute(
                as_text(
                    sql.SQL(
                        "INSERT INTO {horizon} (xid) VALUES (%s) ON CONFLICT (id)"
                        " DO UPDATE SET xid = GREATEST({horizon}.xid, EXCLUDED.xid)"
                    ).format(horizon=horizon)
                ),
                [newest],
            )
    return int(pruned)
