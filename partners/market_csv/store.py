"""Bulk storage of validated market rows: temporary staging tables and set-based upserts.

Rows reach the database in two steps. While the files are validated, each good row goes to a
temporary staging table (PostgreSQL `COPY`, SQLite batched inserts); staging tables are private to
the connection and vanish with the transaction, so a failed validation leaves nothing behind.
Then each target table gets one `INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE` that joins
codes and external ids to ids in SQL and updates a row only when a value really differs, so a
re-import leaves `updated_at` alone. A load large enough to at least double a PostgreSQL table
takes another road, described in `MarketStore._bulk_load`, and a file whose rows can go straight
into their empty table skips the staging table altogether (`DirectLoad`).

Statements are composed with `psycopg.sql`: table and column names as identifiers, the channel
kinds of the partial unique indexes as literals (their conflict targets must repeat the index
condition word for word), every value of a row as a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, ManyToManyField, Model
from django.utils.translation import gettext as _
from psycopg import Copy, sql
from psycopg.copy import QueuedLibpqWriter

from channels.models import PARTNER_KINDS, CoverageAssignment, SalesRep
from crm.models import Account, ChannelKind, Region, Vertical
from crm.sql import COPY_NULL, as_text
from partners.coverage_kinds import NO_COVERAGE
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    FX_RATES,
    OPPORTUNITIES,
    PARTNERS,
    REGIONS,
    REGISTRATIONS,
    REPS,
    VERTICALS,
)
from partners.models import Agreement, Partner

FLUSH_ROWS = 50_000
# Rows per write into a direct load's open `COPY`: small enough that the server starts on them
# while the validator checks the next ones.
DIRECT_CHUNK_ROWS = 5_000
# See `bulk_load_worthwhile`.
BULK_LOAD_ROWS = 100_000


@dataclass(frozen=True)
class StageTable:
    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.name)


# The column types of staging tables, the same words in PostgreSQL and SQLite.
STAGE_TYPES = {"date": "date", "boolean": "boolean", "integer": "integer", "text": "text"}


def _stage(name: str, *columns: str) -> StageTable:
    def typed(column: str) -> tuple[str, str]:
        if column.endswith(("_on", "_date")) or column == "valid_from":
            return column, "date"
        if column in ("exclusive", "recurring"):
            return column, "boolean"
        if column == "line":
            return column, "integer"
        return column, "text"

    return StageTable(f"market_stage_{name}", tuple(typed(column) for column in columns))


STAGE_REGION = _stage("region", "code", "name", "name_zh")
STAGE_VERTICAL = _stage("vertical", "code", "name", "name_zh")
STAGE_ACCOUNT = _stage("account", *ACCOUNTS.columns, "name_key")
STAGE_REP = _stage("rep", "external_id", "name", "email")
STAGE_REP_REGION = _stage("rep_region", "external_id", "code")
STAGE_PARTNER = _stage("partner", "external_id", "name", "channel_kind", "partner_type", "tier")
STAGE_AGREEMENT = _stage(
    "agreement",
    "external_id",
    "partner",
    "agreement_type",
    "status",
    "start_date",
    "end_date",
    "signed_on",
    "terminated_on",
    "exclusive",
)
STAGE_AGREEMENT_REGION = _stage("agreement_region", "external_id", "code")
STAGE_AGREEMENT_VERTICAL = _stage("agreement_vertical", "external_id", "code")
# `line`: where the row is in coverage.csv, to name it when it clashes with stored coverage.
STAGE_COVERAGE = _stage("coverage", "account", "kind", "owner", "start_date", "end_date", "line")
# Deal registrations are few: staged like the rest, stored through the ORM
# (partners.market_csv.registrations).
STAGE_REGISTRATION = _stage("registration", *REGISTRATIONS.columns)
STAGE_FX_RATE = _stage("fx_rate", *FX_RATES.columns)
STAGE_OPPORTUNITY = _stage("opportunity", *OPPORTUNITIES.columns, *OPPORTUNITIES.optional)

STAGE_TABLES = (
    STAGE_REGION,
    STAGE_VERTICAL,
    STAGE_ACCOUNT,
    STAGE_REP,
    STAGE_REP_REGION,
    STAGE_PARTNER,
    STAGE_AGREEMENT,
    STAGE_AGREEMENT_REGION,
    STAGE_AGREEMENT_VERTICAL,
    STAGE_COVERAGE,
    STAGE_REGISTRATION,
    STAGE_FX_RATE,
    STAGE_OPPORTUNITY,
)


class CopyStream:
    """One `COPY ... FROM STDIN` kept open while rows are added as lines of its text format.

    psycopg's queued writer sends them from a thread of its own, so the server stores one
    block of rows while the caller checks the next (on the other core) instead of the two
    taking turns. Nothing else may run on the connection until `end`.
    """

    def __init__(
        self, connection: BaseDatabaseWrapper, table: sql.Identifier, columns: Sequence[str]
    ) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(table, _names(columns))
        with ExitStack() as stack:
            cursor = stack.enter_context(connection.cursor()).cursor
            self._copy: Copy = stack.enter_context(
                cursor.copy(statement, writer=QueuedLibpqWriter(cursor))
            )
            self._copying: ExitStack | None = stack.pop_all()

    def write(self, lines: list[str]) -> None:
        """Send `lines` (`copy_text` for free text, tabs between the values, `\\N` for null,
        no line breaks)."""
        lines.append("")  # the last row's line break
        self._copy.write("\n".join(lines))
        lines.pop()

    def end(self, error: BaseException | None = None) -> None:
        """Wait for the rows to be stored and close the `COPY` (with `error`, abandon it)."""
        copying, self._copying = self._copying, None
        if copying is None:
            return
        if error is None:
            copying.close()
        else:
            copying.__exit__(type(error), error, error.__traceback__)


class Staging:
    """Buffers validated rows and writes them to the staging tables in chunks.

    A disabled staging (a dry run) keeps nothing. After `discard()` (the first bad row) rows are
    dropped: the run will fail, so writing more would only cost time.
    """

    def __init__(self, connection: BaseDatabaseWrapper, *, enabled: bool) -> None:
        self.connection = connection
        self.enabled = enabled
        self.buffers: dict[StageTable, list[Sequence[Any]]] = {}
        self.rows: dict[StageTable, int] = {}
        # Per file name, the optional columns its header had (`MarketFile.optional`).
        self.optional_present: dict[str, set[str]] = {}
        # Per file name, the file loaded straight into its empty table (`DirectLoad`).
        self.direct: dict[str, DirectLoad] = {}
        # Per file name, (created, updated) of a file upserted before the files after it were
        # checked (regions and verticals, whose ids a direct load of accounts needs).
        self.stored_early: dict[str, tuple[int, int]] = {}
        # The staging tables with rows on their way as text (`add_lines`).
        self.streams: dict[StageTable, CopyStream] = {}

    def _execute(self, statement: sql.Composable) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(as_text(statement, self.connection))

    def create(self) -> None:
        if not self.enabled:
            return
        for table in STAGE_TABLES:
            self._execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table.identifier))
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(STAGE_TYPES[kind]))
                for column, kind in table.columns
            )
            self._execute(
                sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(table.identifier, columns)
            )
            self.buffers[table] = []
            self.rows[table] = 0

    def drop(self) -> None:
        if not self.enabled:
            return
        for table in STAGE_TABLES:
            self._execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table.identifier))

    def discard(self) -> None:
        self.enabled = False
        self.buffers.clear()
        for load in self.direct.values():
            load.discard()
        self.end()

    def end(self, error: BaseException | None = None) -> None:
        """Close the `COPY`s of `add_lines` (with `error`, abandon them)."""
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.end(error)

    def add(self, table: StageTable, row: Sequence[Any]) -> None:
        if not self.enabled:
            return
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= FLUSH_ROWS:
            self.flush(table)

    def flush(self, table: StageTable | None = None) -> None:
        if not self.enabled:
            return
        self.end()
        for each in [table] if table else list(self.buffers):
            buffer = self.buffers[each]
            if buffer:
                self._write(each, buffer)
                self.rows[each] += len(buffer)
                buffer.clear()

    def add_lines(self, table: StageTable, lines: list[str]) -> None:
        """Stage rows written as lines of `COPY`'s text format (PostgreSQL), in the order of
        `table`'s columns: a block at once, without adapting each value."""
        if not self.enabled:
            return
        assert self.connection.vendor == "postgresql", "COPY text is PostgreSQL's"
        stream = self.streams.get(table)
        if stream is None:
            stream = self.streams[table] = CopyStream(
                self.connection, table.identifier, table.column_names
            )
        stream.write(lines)
        self.rows[table] += len(lines)

    def analyze(self) -> None:
        """Give the planner statistics for staged coverage and opportunities (temp tables have
        none).

        They are the staging tables joined against a large table (accounts); the others join
        only regions, verticals, reps and partners, which the planner hashes anyway.
        """
        if not self.enabled or self.connection.vendor != "postgresql":
            return
        for table in (STAGE_COVERAGE, STAGE_OPPORTUNITY):
            if self.rows[table]:
                self._execute(sql.SQL("ANALYZE {}").format(table.identifier))

    def _write(self, table: StageTable, rows: list[Sequence[Any]]) -> None:
        columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(table.identifier, columns)
                with cursor.cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = sql.SQL(", ").join(sql.Placeholder() * len(table.columns))
                statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    table.identifier, columns, marks
                )
                cursor.executemany(as_text(statement, self.connection), rows)


# Room for the staging tables in the session's memory (PostgreSQL's `temp_buffers`, 8 MB by
# default): a million staged deals take ~150 MB, and with the default every page of them is
# written out while staging and read back by the upsert.
STAGING_BUFFERS = "256MB"


def staging_buffers_raise(connection: BaseDatabaseWrapper) -> None:
    """Give this session `STAGING_BUFFERS` for temporary tables, before the first staging table
    is made. PostgreSQL fixes the size at a session's first use of a temporary table and
    refuses a change after it; such a session keeps the size it has (a savepoint undoes the
    refused change), so this never fails an import."""
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"SET temp_buffers = '{STAGING_BUFFERS}'")
    except DatabaseError:
        pass


def _table(model: type[Model]) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


class StoredConflict(Exception):
    """Staged rows clash with stored ones; `problems` names each as `file:line: column: ...`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} row(s) clash with stored data")
        self.problems = problems


# PostgreSQL's SQLSTATE for a row refused by an exclusion constraint.
EXCLUSION_VIOLATION = "23P01"


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _column(model: type[Model], field_name: str) -> str:
    field = model._meta.get_field(field_name)
    assert isinstance(field, Field) and field.column, f"{field_name} has no column"
    return field.column


def _staged(column: str) -> sql.Identifier:
    """A column of the staging row being stored (alias `s`)."""
    return sql.Identifier("s", column)


def _names(columns: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def bulk_load_worthwhile(*, existing_rows: int, staged_rows: int) -> bool:
    """Rebuilding a table's indexes pays off when the load at least doubles the table."""
    return staged_rows >= BULK_LOAD_ROWS and existing_rows * 2 <= staged_rows


def _kind_condition(kinds: Sequence[str], *, alias: str | None = None) -> sql.Composed:
    """The coverage kind test of a partial unique index, as the migration wrote it."""
    column = sql.Identifier(alias, "kind") if alias else sql.Identifier("kind")
    if len(kinds) == 1:
        return sql.SQL("{} = {}").format(column, sql.Literal(kinds[0]))
    return sql.SQL("{} IN ({})").format(column, sql.SQL(", ").join(map(sql.Literal, kinds)))


def _defaults(
    model: type[Model], imported: Iterable[str], given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Database values for the fields a file does not carry, used only when a row is created:
    the field's default, or the value `given` for its column."""
    skip = {"id", "created_at", "updated_at", *imported}
    given = given or {}
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        # A generated column (`Opportunity.cents`) is the database's own to fill.
        if field.name in skip or not field.column or field.generated:
            continue
        values[field.column] = given.get(field.column, field.get_default())
    return values


# Room to sort an index's keys in memory while it is rebuilt after a large load (PostgreSQL's
# default is 64 MB; a million keys of an opportunity index take ~60 MB, of an account's name
# index with its included columns ~200 MB).
REBUILD_MEMORY = "512MB"


def _take_apart(
    connection: BaseDatabaseWrapper, model: type[Model]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Lock `model`'s table against other writers and drop its non-unique indexes, foreign
    keys and exclusion constraints; returns their definitions for `_put_back`."""
    table = _table(model)
    with connection.cursor() as cursor:
        cursor.execute(
            as_text(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table), connection)
        )
        # Definitions as the server writes them, run back unchanged to rebuild each one.
        cursor.execute(
            "SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary "
            "AND NOT i.indisexclusion",
            [model._meta.db_table],
        )
        indexes: list[tuple[str, str, str]] = cursor.fetchall()
        # Foreign keys, and exclusion constraints (their index is built once on re-adding,
        # which also checks every row).
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('f', 'x')",
            [model._meta.db_table],
        )
        foreign_keys: list[tuple[str, str]] = cursor.fetchall()
        # Deferred checks still pending on a referenced table would block the ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, _ in foreign_keys:
            cursor.execute(
                as_text(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        table, sql.Identifier(name)
                    ),
                    connection,
                )
            )
        for schema, name, _ in indexes:
            cursor.execute(
                as_text(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)), connection)
            )
    return indexes, foreign_keys


def _put_back(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    indexes: list[tuple[str, str, str]],
    foreign_keys: list[tuple[str, str]],
    *,
    analyze: bool = False,
) -> None:
    """Rebuild what `_take_apart` dropped, with its exact definitions."""
    table = _table(model)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{REBUILD_MEMORY}'")
        for _, _, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(
                as_text(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        table, sql.Identifier(name), sql.SQL(definition)
                    ),
                    connection,
                )
            )
        # Back to each constraint's own timing; the project's foreign keys are all
        # initially deferred.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        if analyze:
            # Without fresh statistics a following load (coverage after accounts) would probe a
            # million rows one index lookup at a time. Otherwise autovacuum analyses after the
            # commit.
            cursor.execute(as_text(sql.SQL("ANALYZE {}").format(table), connection))


def copy_ids(pairs: Iterable[tuple[str, int]]) -> dict[str, str]:
    """Each key's id as text, for a line of `COPY`'s text format."""
    return {key: str(id_) for key, id_ in pairs}


def copy_defaults(
    model: type[Model], imported: Iterable[str], given: Mapping[str, Any] | None = None
) -> tuple[list[str], str]:
    """The columns a file does not carry and their defaults (or the values `given` for some),
    as the end of a `COPY` line."""
    values = _defaults(model, imported, given)
    texts = [
        COPY_NULL if v is None else ("t" if v else "f") if isinstance(v, bool) else str(v)
        for v in values.values()
    ]
    return list(values), "\t".join(texts)


def file_lines(path: Path) -> int:
    """About how many rows `path` holds (its line breaks), to size a direct load."""
    count = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
    except OSError:
        return 0
    return count


class DirectLoad:
    """Rows copied straight into an empty table while its file is validated (PostgreSQL).

    Used when the table is empty and every reference of the file resolves to a stored row, so
    the validator can write each good row with its ids: no staging table and no `INSERT` pass.
    The table is held against other writers from `begin` to the commit; a large load drops the
    table's non-unique indexes and foreign keys first and `finish` rebuilds them. After the
    first problem the rows are no longer written (the import will roll back).

    One `COPY` stays open while the file is read (`end` closes it, before the connection runs
    anything else): the server stores each chunk of rows while the next one is checked, on the
    other core, instead of the two taking turns.
    """

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        model: type[Model],
        columns: Sequence[str],
        *,
        indexes: list[tuple[str, str, str]],
        foreign_keys: list[tuple[str, str]],
    ) -> None:
        self.connection = connection
        self.model = model
        self.columns = tuple(columns)
        self.indexes = indexes
        self.foreign_keys = foreign_keys
        self.buffer: list[str] = []
        self.rows = 0
        self.enabled = True
        self._stream: CopyStream | None = None

    @classmethod
    def begin(
        cls,
        connection: BaseDatabaseWrapper,
        model: type[Model],
        columns: Sequence[str],
        *,
        expected_rows: int,
    ) -> DirectLoad | None:
        """Take `model`'s table for a direct load, or None when it holds rows (then the file
        goes through the staging table and the upsert)."""
        if connection.vendor != "postgresql":
            return None
        table = _table(model)
        holds_rows = as_text(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table), connection)
        with connection.cursor() as cursor:
            # Look before taking the lock, so that importing into a table that holds rows
            # leaves it open to other writers; look again once it is held.
            cursor.execute(holds_rows)
            if cursor.fetchone()[0]:
                return None
            cursor.execute(
                as_text(
                    sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table), connection
                )
            )
            cursor.execute(holds_rows)
            if cursor.fetchone()[0]:
                return None
        indexes: list[tuple[str, str, str]] = []
        foreign_keys: list[tuple[str, str]] = []
        if bulk_load_worthwhile(existing_rows=0, staged_rows=expected_rows):
            indexes, foreign_keys = _take_apart(connection, model)
        return cls(connection, model, columns, indexes=indexes, foreign_keys=foreign_keys)

    def add(self, line: str) -> None:
        """Add one row as a line of `COPY`'s text format (`copy_text` for its free text, tabs
        between the values, `\\N` for null, no line break): a million rows are written several
        times faster than through per-value adaptation."""
        if not self.enabled:
            return
        self.buffer.append(line)
        if len(self.buffer) >= DIRECT_CHUNK_ROWS:
            self.flush()

    def discard(self) -> None:
        self.enabled = False
        self.buffer.clear()
        self.end()

    def add_lines(self, lines: list[str]) -> None:
        """Add rows written as `add` takes them, a block at once."""
        if not self.enabled:
            return
        self.flush()
        self.buffer = lines
        self.flush()

    def flush(self) -> None:
        if not self.enabled or not self.buffer:
            return
        if self._stream is None:
            self._stream = CopyStream(self.connection, _table(self.model), self.columns)
        self._stream.write(self.buffer)
        self.rows += len(self.buffer)
        self.buffer = []

    def end(self, error: BaseException | None = None) -> None:
        """Write what is left and close the `COPY` (with `error`, abandon it: the import is
        failing)."""
        if error is None:
            self.flush()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.end(error)

    def finish(self, *, analyze: bool = False) -> int:
        """Rebuild what `begin` dropped (and with `analyze` give the planner the table's
        statistics); returns the rows written."""
        self.end()
        _put_back(self.connection, self.model, self.indexes, self.foreign_keys, analyze=analyze)
        return self.rows


class MarketStore:
    """Upserts the staged rows into the real tables. Runs inside the caller's transaction."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        *,
        now: datetime,
        staged: dict[StageTable, int],
        optional_present: dict[str, set[str]] | None = None,
        direct: dict[str, DirectLoad] | None = None,
        accounts_uncovered: bool = False,
    ) -> None:
        self.connection = connection
        # The run writes no coverage: an account it creates is stored with `NO_COVERAGE`.
        self.accounts_uncovered = accounts_uncovered
        self.now = connection.ops.adapt_datetimefield_value(now)
        self.staged = staged
        self.optional_present = optional_present or {}
        # Files the validator already wrote into their empty tables (`DirectLoad`).
        self.direct = direct or {}
        # Tables this transaction holds against other writers (see `_bulk_load`), and whether
        # each was empty when taken.
        self.exclusive: dict[type[Model], bool] = {}

    @contextmanager
    def _bulk_load(
        self, model: type[Model], staged_rows: int, *, analyze: bool = False
    ) -> Iterator[None]:
        """Drop the table's non-unique indexes and foreign keys around a large load, then
        recreate them with their exact definitions (PostgreSQL's advice for populating a table).

        Maintaining six indexes and checking two foreign keys row by row costs several times
        more than building them once. It all happens in the import's transaction, so a failure
        restores them; the price is an exclusive lock on the table until the import commits.
        Unique indexes stay: they keep the keys unique. Holding the table also lets the upsert
        run as a plain UPDATE and INSERT.
        """
        connection = self.connection
        table = _table(model)
        existing_rows = self._count(table) if connection.vendor == "postgresql" else 0
        if connection.vendor != "postgresql" or not bulk_load_worthwhile(
            existing_rows=existing_rows, staged_rows=staged_rows
        ):
            yield
            return

        indexes, foreign_keys = _take_apart(connection, model)
        # The lock came after the count, so check again whether the table is empty.
        self.exclusive[model] = existing_rows == 0 and self._count(table) == 0
        try:
            yield
        finally:
            del self.exclusive[model]
        _put_back(connection, model, indexes, foreign_keys, analyze=analyze)

    def _count(self, table: sql.Identifier) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(
                as_text(sql.SQL("SELECT count(*) FROM {}").format(table), self.connection)
            )
            counted: int = cursor.fetchone()[0]  # count(*) has one row
            return counted

    def _upsert(
        self,
        *,
        model: type[Model],
        select: dict[str, sql.Composable],
        source: sql.Composable,
        key: Sequence[str],
        compare: Sequence[str],
        kinds: Sequence[str] = (),
        params: Sequence[Any] = (),
        skip_unchanged: bool = False,
    ) -> tuple[int, int]:
        """Insert the new rows of `source`, update the existing ones whose `compare` columns
        differ; returns (created, updated).

        `select` maps target columns to expressions over the joined staging rows; `key` names
        the columns of the unique index that matches rows, `kinds` that index's condition on
        the coverage kind (partial indexes). With `skip_unchanged` (for a `source` whose key
        and compare expressions take no parameters) the rows equal to their stored twin are
        left out first, in one anti-join: a re-import of a million unchanged rows then costs a
        hash join instead of a million attempted inserts that each find their conflict.
        """
        if skip_unchanged and model not in self.exclusive:
            twin = sql.SQL(" AND ").join(
                [sql.SQL("{} = {}").format(sql.Identifier("t", c), select[c]) for c in key]
                + [
                    sql.SQL("{} IS NOT DISTINCT FROM {}").format(sql.Identifier("t", c), select[c])
                    for c in compare
                ]
            )
            source = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
                source, _table(model), twin
            )
        if model in self.exclusive:
            return self._update_then_insert(
                model=model,
                select=select,
                source=source,
                key=key,
                compare=compare,
                kinds=kinds,
                params=params,
                was_empty=self.exclusive[model],
            )
        connection = self.connection
        table = _table(model)
        updated_at = sql.Identifier("updated_at")
        conflict = sql.SQL("({})").format(_names(key))
        if kinds:
            # Word for word the partial unique index's condition, so that both PostgreSQL and
            # SQLite accept the index as the conflict arbiter.
            conflict = sql.SQL("{} WHERE {}").format(conflict, _kind_condition(kinds))
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {expressions} FROM {source} "
            "ON CONFLICT {conflict} DO UPDATE SET {updates}, {updated_at} = excluded.{updated_at} "
            "WHERE {differs}"
        ).format(
            table=table,
            columns=_names([*select, "created_at", "updated_at"]),
            expressions=sql.SQL(", ").join(
                [*select.values(), sql.Placeholder(), sql.Placeholder()]
            ),
            source=source,
            conflict=conflict,
            updates=sql.SQL(", ").join(
                sql.SQL("{column} = excluded.{column}").format(column=sql.Identifier(c))
                for c in compare
            ),
            updated_at=updated_at,
            differs=sql.SQL(" OR ").join(
                sql.SQL("{} IS DISTINCT FROM excluded.{}").format(
                    sql.Identifier(model._meta.db_table, c), sql.Identifier(c)
                )
                for c in compare
            ),
        )
        all_params = [*params, self.now, self.now]
        count = sql.SQL("SELECT count(*) FROM {}").format(table)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # xmax is 0 only on a freshly inserted row version: it tells inserts from updates.
                counted = sql.SQL(
                    "WITH upserted AS ({} RETURNING (xmax = 0) AS inserted) "
                    "SELECT count(*) FILTER (WHERE inserted), count(*) FROM upserted"
                ).format(statement)
                cursor.execute(as_text(counted, connection), all_params)
                created, changed = cursor.fetchone()
            else:
                # SQLite runs one writer at a time, so the row count difference is ours alone.
                cursor.execute(as_text(count, connection))
                before = cursor.fetchone()[0]
                cursor.execute(as_text(statement, connection), all_params)
                changed = cursor.rowcount
                cursor.execute(as_text(count, connection))
                created = cursor.fetchone()[0] - before
        return created, changed - created

    def _update_then_insert(
        self,
        *,
        model: type[Model],
        select: dict[str, sql.Composable],
        source: sql.Composable,
        key: Sequence[str],
        compare: Sequence[str],
        kinds: Sequence[str],
        params: Sequence[Any],
        was_empty: bool,
    ) -> tuple[int, int]:
        """The upsert as two plain statements: cheaper than ON CONFLICT's speculative inserts,
        and safe only while this transaction holds the table against other writers.

        Into a table that was empty when taken, it is a plain INSERT: the staged keys are
        unique (validation saw to that) and each coverage plan inserts other kinds than the
        plans before it, so nothing can match.
        """
        connection = self.connection
        table = _table(model)
        staged = sql.SQL("(SELECT {} FROM {}) x").format(
            sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(expression, sql.Identifier(column))
                for column, expression in select.items()
            ),
            source,
        )
        conditions = [
            sql.SQL("{} = {}").format(sql.Identifier("t", c), sql.Identifier("x", c)) for c in key
        ]
        if kinds:
            conditions.append(_kind_condition(kinds, alias="t"))
        matches = sql.SQL(" AND ").join(conditions)
        differs = sql.SQL(" OR ").join(
            sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier("t", c), sql.Identifier("x", c))
            for c in compare
        )
        updates = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("x", c)) for c in compare
        )
        new_only: sql.Composable = sql.SQL("WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
            table, matches
        )
        if was_empty:
            new_only = sql.SQL("")
        updated = 0
        with connection.cursor() as cursor:
            if not was_empty:
                update = sql.SQL(
                    "UPDATE {} t SET {}, updated_at = %s FROM {} WHERE {} AND ({})"
                ).format(table, updates, staged, matches, differs)
                cursor.execute(as_text(update, connection), [self.now, *params])
                updated = cursor.rowcount
            insert = sql.SQL(
                "INSERT INTO {} ({}, created_at, updated_at) SELECT x.*, %s, %s FROM {} {}"
            ).format(table, _names(select), staged, new_only)
            cursor.execute(as_text(insert, connection), [self.now, self.now, *params])
            created = cursor.rowcount
        return created, updated

    def _with_defaults(
        self, model: type[Model], select: dict[str, sql.Composable], imported: Iterable[str]
    ) -> tuple[dict[str, sql.Composable], list[Any]]:
        defaults = _defaults(model, imported)
        return {**select, **dict.fromkeys(defaults, sql.Placeholder())}, list(defaults.values())

    def _replace_links(
        self,
        *,
        model: type[Model],
        field_name: str,
        owners: StageTable,
        links: StageTable,
        target: type[Model],
        target_key: str,
    ) -> int:
        """Make each staged owner's many-to-many set equal its staged links.

        Returns how many owners changed only through their links (their `updated_at` moves too).
        """
        connection = self.connection
        field = model._meta.get_field(field_name)
        assert isinstance(field, ManyToManyField), f"{field_name} is not many-to-many"
        through = field.remote_field.through
        assert through is not None
        names = {
            "through": _table(through),
            "owner": sql.Identifier(field.m2m_column_name()),
            "target": sql.Identifier(field.m2m_reverse_name()),
            "owners": owners.identifier,
            "links": links.identifier,
            "owner_table": _table(model),
            "target_table": _table(target),
            "key": sql.Identifier(target_key),
        }

        def composed(template: str, **parts: sql.Composable) -> sql.Composed:
            return sql.SQL(template).format(**names, **parts)

        staged_links = composed(
            "{links} l JOIN {owner_table} o ON o.external_id = l.external_id "
            "JOIN {target_table} t ON t.{key} = l.code"
        )
        in_file = composed(
            "SELECT o.id FROM {owners} s JOIN {owner_table} o ON o.external_id = s.external_id"
        )
        removed = composed(
            "SELECT x.{owner} FROM {through} x WHERE x.{owner} IN ({in_file}) "
            "AND NOT EXISTS (SELECT 1 FROM {staged_links} "
            "WHERE o.id = x.{owner} AND t.id = x.{target})",
            in_file=in_file,
            staged_links=staged_links,
        )
        added = composed(
            "SELECT o.id FROM {staged_links} WHERE NOT EXISTS (SELECT 1 FROM {through} x "
            "WHERE x.{owner} = o.id AND x.{target} = t.id)",
            staged_links=staged_links,
        )
        touch = composed(
            "UPDATE {owner_table} SET updated_at = %s "
            "WHERE updated_at <> %s AND id IN ({removed} UNION {added})",
            removed=removed,
            added=added,
        )
        delete = composed(
            "DELETE FROM {through} WHERE {owner} IN ({in_file}) "
            "AND NOT EXISTS (SELECT 1 FROM {staged_links} "
            "WHERE o.id = {through}.{owner} AND t.id = {through}.{target})",
            in_file=in_file,
            staged_links=staged_links,
        )
        insert = composed(
            "INSERT INTO {through} ({owner}, {target}) "
            "SELECT o.id, t.id FROM {staged_links} WHERE true "
            "ON CONFLICT ({owner}, {target}) DO NOTHING",
            staged_links=staged_links,
        )
        with connection.cursor() as cursor:
            cursor.execute(as_text(touch, connection), [self.now, self.now])
            touched: int = cursor.rowcount
            cursor.execute(as_text(delete, connection))
            cursor.execute(as_text(insert, connection))
        return touched

    def upsert(self, file_name: str) -> tuple[int, int]:
        """Upsert the staged rows of one of the core market files (regions through coverage);
        returns (created, updated). The registration and revenue files are stored by their own
        modules, which build on this one (`market_import` calls them)."""
        return {
            REGIONS.name: self.regions,
            VERTICALS.name: self.verticals,
            ACCOUNTS.name: self.accounts,
            REPS.name: self.reps,
            PARTNERS.name: self.partners,
            AGREEMENTS.name: self.agreements,
            COVERAGE.name: self.coverage,
        }[file_name]()

    def regions(self) -> tuple[int, int]:
        return self._upsert(
            model=Region,
            **self._coded(Region, STAGE_REGION, REGIONS.name),
        )

    def verticals(self) -> tuple[int, int]:
        return self._upsert(
            model=Vertical,
            **self._coded(Vertical, STAGE_VERTICAL, VERTICALS.name),
        )

    def _coded(self, model: type[Model], stage: StageTable, file_name: str) -> dict[str, Any]:
        # The Chinese name is written only when the file has its column: a file without it
        # leaves the names set in the admin or by an earlier file as they are.
        columns = ["code", "name"]
        if "name_zh" in self.optional_present.get(file_name, set()):
            columns.append("name_zh")
        select, params = self._with_defaults(
            model, {column: _staged(column) for column in columns}, tuple(columns)
        )
        return {
            "select": select,
            "source": sql.SQL("{} s WHERE true").format(stage.identifier),
            "key": ("code",),
            "compare": tuple(columns[1:]),
            "params": params,
        }

    def accounts(self) -> tuple[int, int]:
        # Every column of the file as staged, but region and vertical: their ids, joined below.
        joined = {"region": sql.Identifier("r", "id"), "vertical": sql.Identifier("v", "id")}
        select: dict[str, sql.Composable] = {
            (_column(Account, name) if name in joined else name): joined.get(name, _staged(name))
            for name in (*ACCOUNTS.columns, "name_key")
        }
        compare = [c for c in select if c != "external_id"]
        params: list[Any] = []
        if self.accounts_uncovered:
            # Set on the accounts created only (the other columns' defaults are NO_COVERAGE's).
            select["coverage_kinds_from"] = sql.Placeholder()
            params.append(NO_COVERAGE["coverage_kinds_from"])
        coverage_follows = self.staged[STAGE_COVERAGE] > 0
        direct = self.direct.get(ACCOUNTS.name)
        if direct is not None:
            # Written while the file was checked; an empty table gained every row.
            return direct.finish(analyze=coverage_follows), 0
        with self._bulk_load(Account, self.staged[STAGE_ACCOUNT], analyze=coverage_follows):
            return self._upsert(
                model=Account,
                select=select,
                source=sql.SQL(
                    "{} s JOIN {} r ON r.code = s.region JOIN {} v ON v.code = s.vertical "
                    "WHERE true"
                ).format(STAGE_ACCOUNT.identifier, _table(Region), _table(Vertical)),
                key=("external_id",),
                compare=compare,
                params=params,
                skip_unchanged=True,
            )

    def reps(self) -> tuple[int, int]:
        fields = ("external_id", "name", "email")
        select, params = self._with_defaults(
            SalesRep, {f: _staged(f) for f in fields}, (*fields, "regions")
        )
        created, updated = self._upsert(
            model=SalesRep,
            select=select,
            source=sql.SQL("{} s WHERE true").format(STAGE_REP.identifier),
            key=("external_id",),
            compare=("name", "email"),
            params=params,
        )
        updated += self._replace_links(
            model=SalesRep,
            field_name="regions",
            owners=STAGE_REP,
            links=STAGE_REP_REGION,
            target=Region,
            target_key="code",
        )
        return created, updated

    def partners(self) -> tuple[int, int]:
        fields = ("external_id", "name", "channel_kind", "partner_type", "tier")
        select, params = self._with_defaults(Partner, {f: _staged(f) for f in fields}, fields)
        return self._upsert(
            model=Partner,
            select=select,
            source=sql.SQL("{} s WHERE true").format(STAGE_PARTNER.identifier),
            key=("external_id",),
            compare=fields[1:],
            params=params,
        )

    def agreement_statuses(self) -> dict[int, str]:
        """The stored status of each agreement the staged agreements.csv names, by id (the
        import compares them before and after storing the file, to announce the changes)."""
        query = sql.SQL(
            "SELECT a.id, a.status FROM {} a JOIN {} s ON s.external_id = a.external_id"
        ).format(_table(Agreement), STAGE_AGREEMENT.identifier)
        with self.connection.cursor() as cursor:
            cursor.execute(as_text(query, self.connection))
            return dict(cursor.fetchall())

    def agreements(self) -> tuple[int, int]:
        fields = (
            "agreement_type",
            "status",
            "start_date",
            "end_date",
            "signed_on",
            "terminated_on",
            "exclusive",
        )
        scalar: dict[str, sql.Composable] = {
            "external_id": _staged("external_id"),
            _column(Agreement, "partner"): sql.Identifier("p", "id"),
            **{f: _staged(f) for f in fields},
        }
        select, params = self._with_defaults(
            Agreement, scalar, ("external_id", "partner", *fields, "regions", "verticals")
        )
        created, updated = self._upsert(
            model=Agreement,
            select=select,
            source=sql.SQL("{} s JOIN {} p ON p.external_id = s.partner WHERE true").format(
                STAGE_AGREEMENT.identifier, _table(Partner)
            ),
            key=("external_id",),
            compare=[c for c in scalar if c != "external_id"],
            params=params,
        )
        touched = self._replace_links(
            model=Agreement,
            field_name="regions",
            owners=STAGE_AGREEMENT,
            links=STAGE_AGREEMENT_REGION,
            target=Region,
            target_key="code",
        )
        touched += self._replace_links(
            model=Agreement,
            field_name="verticals",
            owners=STAGE_AGREEMENT,
            links=STAGE_AGREEMENT_VERTICAL,
            target=Vertical,
            target_key="code",
        )
        return created, updated + touched

    def coverage(self) -> tuple[int, int]:
        """Three upserts, one per partial unique constraint on coverage assignments."""
        base: dict[str, sql.Composable] = {
            "account_id": sql.Identifier("a", "id"),
            "kind": _staged("kind"),
            "start_date": _staged("start_date"),
            "end_date": _staged("end_date"),
        }
        joined = sql.SQL("{} s JOIN {} a ON a.external_id = s.account").format(
            STAGE_COVERAGE.identifier, _table(Account)
        )
        no_id = sql.SQL("CAST(NULL AS bigint)")  # typed, so a subquery's column keeps its type
        no_source = sql.Literal("")
        direct, online = [str(ChannelKind.DIRECT)], [str(ChannelKind.ONLINE)]
        partner_kinds = [str(kind) for kind in PARTNER_KINDS]
        plans = [
            (
                {**base, "rep_id": sql.Identifier("r", "id"), "partner_id": no_id},
                sql.SQL("{} JOIN {} r ON r.external_id = s.owner WHERE {}").format(
                    joined, _table(SalesRep), _kind_condition(direct, alias="s")
                ),
                ("account_id", "rep_id", "start_date"),
                direct,
            ),
            (
                {**base, "rep_id": no_id, "partner_id": sql.Identifier("p", "id")},
                sql.SQL("{} JOIN {} p ON p.external_id = s.owner WHERE {}").format(
                    joined, _table(Partner), _kind_condition(partner_kinds, alias="s")
                ),
                ("account_id", "kind", "partner_id", "start_date"),
                partner_kinds,
            ),
            (
                {**base, "rep_id": no_id, "partner_id": no_id, "online_source": _staged("owner")},
                sql.SQL("{} WHERE {}").format(joined, _kind_condition(online, alias="s")),
                ("account_id", "online_source", "start_date"),
                online,
            ),
        ]
        if self.connection.vendor != "postgresql":
            # SQLite has no exclusion constraint: check first (it serialises writers).
            self._refuse_stored_overlaps()
        created = updated = 0
        try:
            with transaction.atomic(using=self.connection.alias):
                with self._bulk_load(CoverageAssignment, self.staged[STAGE_COVERAGE]):
                    for select, source, key, kinds in plans:
                        plan_created, plan_updated = self._upsert(
                            model=CoverageAssignment,
                            select={"online_source": no_source, **select},
                            source=source,
                            key=key,
                            kinds=kinds,
                            compare=("end_date",),
                        )
                        created += plan_created
                        updated += plan_updated
        except IntegrityError as error:
            # PostgreSQL's exclusion constraint refused a row; name every such row and line.
            if getattr(error.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
                raise
            self._refuse_stored_overlaps()
            raise
        return created, updated

    def _refuse_stored_overlaps(self) -> None:
        """Raise StoredConflict naming each staged coverage row that overlaps a stored
        assignment of the same owner which the files leave in place (a different start date;
        a stored row with a staged row's key is replaced by it)."""
        connection = self.connection
        statement = sql.SQL(
            "SELECT s.line, s.account, s.kind, s.owner, s.start_date, t.start_date, t.end_date "
            "FROM {stage} s "
            "JOIN {account} a ON a.external_id = s.account "
            "JOIN {coverage} t ON t.account_id = a.id AND t.kind = s.kind "
            "LEFT JOIN {rep} r ON r.id = t.rep_id "
            "LEFT JOIN {partner} p ON p.id = t.partner_id "
            "WHERE s.owner = CASE t.kind WHEN 'direct' THEN r.external_id "
            "WHEN 'online' THEN t.online_source ELSE p.external_id END "
            "AND t.start_date <> s.start_date "
            "AND t.start_date <= COALESCE(s.end_date, %s) "
            "AND s.start_date <= COALESCE(t.end_date, %s) "
            "AND NOT EXISTS (SELECT 1 FROM {stage} o WHERE o.account = s.account "
            "AND o.kind = s.kind AND o.owner = s.owner AND o.start_date = t.start_date) "
            "ORDER BY s.line LIMIT 1000"
        ).format(
            stage=STAGE_COVERAGE.identifier,
            account=_table(Account),
            coverage=_table(CoverageAssignment),
            rep=_table(SalesRep),
            partner=_table(Partner),
        )
        with connection.cursor() as cursor:
            cursor.execute(as_text(statement, connection), [date.max, date.max])
            clashes = cursor.fetchall()
        if clashes:
            raise StoredConflict(
                [
                    f"{COVERAGE.name}:{line}: start_date: "
                    + _(
                        "coverage of %(account)r by %(kind)s %(owner)r from %(start)s overlaps "
                        "its stored coverage from %(stored_start)s to %(stored_end)s"
                    )
                    % {
                        "account": account_id,
                        "kind": kind,
                        "owner": owner,
                        "start": _iso(start),
                        "stored_start": _iso(stored_start),
                        "stored_end": _iso(stored_end) if stored_end else _("open"),
                    }
                    for line, account_id, kind, owner, start, stored_start, stored_end in clashes
                ]
            )
