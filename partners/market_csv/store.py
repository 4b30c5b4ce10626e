"""Bulk storage of validated market rows: temporary staging tables and set-based upserts.

Rows reach the database in two steps. While the files are validated, each good row goes to a
temporary staging table (PostgreSQL `COPY`, SQLite batched inserts); staging tables are private to
the connection and vanish with the transaction, so a failed validation leaves nothing behind.
Then each target table gets one `INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE` that joins
codes and external ids to ids in SQL and updates a row only when a value really differs, so a
re-import leaves `updated_at` alone. A load large enough to at least double a PostgreSQL table
takes another road, described in `MarketStore._bulk_load`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from channels.models import PARTNER_KINDS, CoverageAssignment, SalesRep
from crm.models import Account, ChannelKind, Region, Vertical
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    PARTNERS,
    REGIONS,
    REGISTRATIONS,
    REPS,
    VERTICALS,
)
from partners.models import Agreement, Partner

FLUSH_ROWS = 50_000
# See `bulk_load_worthwhile`.
BULK_LOAD_ROWS = 100_000


@dataclass(frozen=True)
class StageTable:
    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)


def _stage(name: str, *columns: str) -> StageTable:
    def typed(column: str) -> tuple[str, str]:
        if column.endswith(("_on", "_date")):
            return column, "date"
        if column == "exclusive":
            return column, "boolean"
        return column, "text"

    return StageTable(f"market_stage_{name}", tuple(typed(column) for column in columns))


STAGE_REGION = _stage("region", "code", "name")
STAGE_VERTICAL = _stage("vertical", "code", "name")
STAGE_ACCOUNT = _stage(
    "account",
    "external_id",
    "name",
    "region",
    "vertical",
    "size_band",
    "entered_on",
    "archived_on",
    "converted_on",
    "converted_via",
    "name_key",
)
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
STAGE_COVERAGE = _stage("coverage", "account", "kind", "owner", "start_date", "end_date")
# Deal registrations are few: staged like the rest, stored through the ORM
# (partners.market_csv.registrations).
STAGE_REGISTRATION = _stage("registration", *REGISTRATIONS.columns)

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
)


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

    def create(self) -> None:
        if not self.enabled:
            return
        with self.connection.cursor() as cursor:
            for table in STAGE_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
                columns = ", ".join(f"{column} {kind}" for column, kind in table.columns)
                cursor.execute(f"CREATE TEMPORARY TABLE {table.name} ({columns})")
                self.buffers[table] = []
                self.rows[table] = 0

    def drop(self) -> None:
        if not self.enabled:
            return
        with self.connection.cursor() as cursor:
            for table in STAGE_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table.name}")

    def discard(self) -> None:
        self.enabled = False
        self.buffers.clear()

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
        for each in [table] if table else list(self.buffers):
            buffer = self.buffers[each]
            if buffer:
                self._write(each, buffer)
                self.rows[each] += len(buffer)
                buffer.clear()

    def analyze(self) -> None:
        """Give the planner statistics for staged coverage (temp tables have none).

        Coverage is the one staging table joined against a large table (accounts); the others
        join only regions, verticals, reps and partners, which the planner hashes anyway.
        """
        if self.enabled and self.connection.vendor == "postgresql" and self.rows[STAGE_COVERAGE]:
            with self.connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {STAGE_COVERAGE.name}")

    def _write(self, table: StageTable, rows: list[Sequence[Any]]) -> None:
        columns = ", ".join(table.column_names)
        with self.connection.cursor() as cursor:
            raw = cursor.cursor
            if self.connection.vendor == "postgresql":
                with raw.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in table.columns)
                raw.executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)


def _q(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[Model], field_name: str) -> str:
    return model._meta.get_field(field_name).column


def bulk_load_worthwhile(*, existing_rows: int, staged_rows: int) -> bool:
    """Rebuilding a table's indexes pays off when the load at least doubles the table."""
    return staged_rows >= BULK_LOAD_ROWS and existing_rows * 2 <= staged_rows


def _kind_condition(connection: BaseDatabaseWrapper, kinds: Sequence[str]) -> str:
    column = _q(connection, "kind")
    if len(kinds) == 1:
        return f"{column} = '{kinds[0]}'"
    quoted = ", ".join(f"'{kind}'" for kind in kinds)
    return f"{column} IN ({quoted})"


def _defaults(model: type[Model], imported: Iterable[str]) -> dict[str, Any]:
    """Database values for the fields a file does not carry, used only when a row is created."""
    skip = {"id", "created_at", "updated_at", *imported}
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.name in skip:
            continue
        values[field.column] = field.get_default()
    return values


class MarketStore:
    """Upserts the staged rows into the real tables. Runs inside the caller's transaction."""

    def __init__(
        self, connection: BaseDatabaseWrapper, *, now: datetime, staged: dict[StageTable, int]
    ) -> None:
        self.connection = connection
        self.now = connection.ops.adapt_datetimefield_value(now)
        self.staged = staged
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
        table = _q(connection, model._meta.db_table)
        existing_rows = self._count(table) if connection.vendor == "postgresql" else 0
        if connection.vendor != "postgresql" or not bulk_load_worthwhile(
            existing_rows=existing_rows, staged_rows=staged_rows
        ):
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = %s::regclass AND NOT indisunique AND NOT indisprimary",
                [table],
            )
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            foreign_keys = cursor.fetchall()
            # Deferred checks still pending on a referenced table would block the ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, _ in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        # The lock came after the count, so check again whether the table is empty.
        self.exclusive[model] = existing_rows == 0 and self._count(table) == 0
        try:
            yield
        finally:
            del self.exclusive[model]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            for name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            # Back to each constraint's own timing; the project's foreign keys are all
            # initially deferred.
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            if analyze:
                # Without fresh statistics the coverage load would probe a million accounts
                # one index lookup at a time. Otherwise autovacuum analyses after the commit.
                cursor.execute(f"ANALYZE {table}")

    def _count(self, table: str) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            return cursor.fetchone()[0]

    def _upsert(
        self,
        *,
        model: type[Model],
        select: dict[str, str],
        source: str,
        key: Sequence[str],
        compare: Sequence[str],
        kinds: Sequence[str] = (),
        params: Sequence[Any] = (),
    ) -> tuple[int, int]:
        """Insert the new rows of `source`, update the existing ones whose `compare` columns
        differ; returns (created, updated).

        `select` maps target columns to expressions over the joined staging rows; `key` names
        the columns of the unique index that matches rows, `kinds` that index's condition on
        the coverage kind (partial indexes).
        """
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
        table = _q(connection, model._meta.db_table)
        columns = [*select, "created_at", "updated_at"]
        expressions = [*select.values(), "%s", "%s"]
        updates = ", ".join(f"{_q(connection, c)} = excluded.{_q(connection, c)}" for c in compare)
        differs = " OR ".join(
            f"{table}.{_q(connection, c)} IS DISTINCT FROM excluded.{_q(connection, c)}"
            for c in compare
        )
        conflict = f"({', '.join(_q(connection, c) for c in key)})"
        if kinds:
            # Word for word the partial unique index's condition, so that both PostgreSQL and
            # SQLite accept the index as the conflict arbiter.
            conflict += f" WHERE {_kind_condition(connection, kinds)}"
        statement = (
            f"INSERT INTO {table} ({', '.join(_q(connection, c) for c in columns)}) "
            f"SELECT {', '.join(expressions)} FROM {source} "
            f"ON CONFLICT {conflict} DO UPDATE SET {updates}, "
            f"{_q(connection, 'updated_at')} = excluded.{_q(connection, 'updated_at')} "
            f"WHERE {differs}"
        )
        all_params = [*params, self.now, self.now]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # xmax is 0 only on a freshly inserted row version: it tells inserts from updates.
                cursor.execute(
                    f"WITH upserted AS ({statement} RETURNING (xmax = 0) AS inserted) "
                    "SELECT count(*) FILTER (WHERE inserted), count(*) FROM upserted",
                    all_params,
                )
                created, changed = cursor.fetchone()
            else:
                # SQLite runs one writer at a time, so the row count difference is ours alone.
                cursor.execute(f"SELECT count(*) FROM {table}")
                before = cursor.fetchone()[0]
                cursor.execute(statement, all_params)
                changed = cursor.rowcount
                cursor.execute(f"SELECT count(*) FROM {table}")
                created = cursor.fetchone()[0] - before
        return created, changed - created

    def _update_then_insert(
        self,
        *,
        model: type[Model],
        select: dict[str, str],
        source: str,
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
        table = _q(connection, model._meta.db_table)
        staged = (
            f"(SELECT {', '.join(f'{e} AS {_q(connection, c)}' for c, e in select.items())} "
            f"FROM {source}) x"
        )
        matches = " AND ".join(f"t.{_q(connection, c)} = x.{_q(connection, c)}" for c in key)
        if kinds:
            matches += f" AND t.{_kind_condition(connection, kinds)}"
        differs = " OR ".join(
            f"t.{_q(connection, c)} IS DISTINCT FROM x.{_q(connection, c)}" for c in compare
        )
        updates = ", ".join(f"{_q(connection, c)} = x.{_q(connection, c)}" for c in compare)
        columns = ", ".join(_q(connection, c) for c in select)
        new_only = f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {matches})"
        if was_empty:
            new_only = ""
        updated = 0
        with connection.cursor() as cursor:
            if not was_empty:
                cursor.execute(
                    f"UPDATE {table} t SET {updates}, updated_at = %s FROM {staged} "
                    f"WHERE {matches} AND ({differs})",
                    [self.now, *params],
                )
                updated = cursor.rowcount
            cursor.execute(
                f"INSERT INTO {table} ({columns}, created_at, updated_at) "
                f"SELECT x.*, %s, %s FROM {staged} {new_only}",
                [self.now, self.now, *params],
            )
            created = cursor.rowcount
        return created, updated

    def _with_defaults(
        self, model: type[Model], select: dict[str, str], imported: Iterable[str]
    ) -> tuple[dict[str, str], list[Any]]:
        defaults = _defaults(model, imported)
        return {**select, **{column: "%s" for column in defaults}}, list(defaults.values())

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
        through = field.remote_field.through
        through_table = _q(connection, through._meta.db_table)
        owner_column = _q(connection, field.m2m_column_name())
        target_column = _q(connection, field.m2m_reverse_name())
        owner_table = _q(connection, model._meta.db_table)
        target_table = _q(connection, target._meta.db_table)
        key = _q(connection, target_key)
        staged_links = (
            f"{links.name} l JOIN {owner_table} o ON o.external_id = l.external_id "
            f"JOIN {target_table} t ON t.{key} = l.code"
        )
        in_file = (
            f"SELECT o.id FROM {owners.name} s "
            f"JOIN {owner_table} o ON o.external_id = s.external_id"
        )
        removed = (
            f"SELECT x.{owner_column} FROM {through_table} x WHERE x.{owner_column} IN ({in_file}) "
            f"AND NOT EXISTS (SELECT 1 FROM {staged_links} "
            f"WHERE o.id = x.{owner_column} AND t.id = x.{target_column})"
        )
        added = (
            f"SELECT o.id FROM {staged_links} WHERE NOT EXISTS (SELECT 1 FROM {through_table} x "
            f"WHERE x.{owner_column} = o.id AND x.{target_column} = t.id)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {owner_table} SET updated_at = %s "
                f"WHERE updated_at <> %s AND id IN ({removed} UNION {added})",
                [self.now, self.now],
            )
            touched = cursor.rowcount
            cursor.execute(
                f"DELETE FROM {through_table} WHERE {owner_column} IN ({in_file}) "
                f"AND NOT EXISTS (SELECT 1 FROM {staged_links} "
                f"WHERE o.id = {through_table}.{owner_column} "
                f"AND t.id = {through_table}.{target_column})"
            )
            cursor.execute(
                f"INSERT INTO {through_table} ({owner_column}, {target_column}) "
                f"SELECT o.id, t.id FROM {staged_links} WHERE true "
                f"ON CONFLICT ({owner_column}, {target_column}) DO NOTHING"
            )
        return touched

    def upsert(self, file_name: str) -> tuple[int, int]:
        """Upsert the staged rows of one market file; returns (created, updated)."""
        return {
            REGIONS.name: self.regions,
            VERTICALS.name: self.verticals,
            ACCOUNTS.name: self.accounts,
            REPS.name: self.reps,
            PARTNERS.name: self.partners,
            AGREEMENTS.name: self.agreements,
            COVERAGE.name: self.coverage,
            REGISTRATIONS.name: self.registrations,
        }[file_name]()

    def regions(self) -> tuple[int, int]:
        return self._upsert(
            model=Region,
            **self._coded(Region, STAGE_REGION),
        )

    def verticals(self) -> tuple[int, int]:
        return self._upsert(
            model=Vertical,
            **self._coded(Vertical, STAGE_VERTICAL),
        )

    def _coded(self, model: type[Model], stage: StageTable) -> dict[str, Any]:
        select, params = self._with_defaults(
            model, {"code": "s.code", "name": "s.name"}, ("code", "name")
        )
        return {
            "select": select,
            "source": f"{stage.name} s WHERE true",
            "key": ("code",),
            "compare": ("name",),
            "params": params,
        }

    def accounts(self) -> tuple[int, int]:
        region = _q(self.connection, Region._meta.db_table)
        vertical = _q(self.connection, Vertical._meta.db_table)
        select = {
            "external_id": "s.external_id",
            "name": "s.name",
            _column(Account, "region"): "r.id",
            _column(Account, "vertical"): "v.id",
            "size_band": "s.size_band",
            "entered_on": "s.entered_on",
            "archived_on": "s.archived_on",
            "converted_on": "s.converted_on",
            "converted_via": "s.converted_via",
            "name_key": "s.name_key",
        }
        coverage_follows = self.staged[STAGE_COVERAGE] > 0
        with self._bulk_load(Account, self.staged[STAGE_ACCOUNT], analyze=coverage_follows):
            return self._upsert(
                model=Account,
                select=select,
                source=(
                    f"{STAGE_ACCOUNT.name} s JOIN {region} r ON r.code = s.region "
                    f"JOIN {vertical} v ON v.code = s.vertical WHERE true"
                ),
                key=("external_id",),
                compare=[c for c in select if c != "external_id"],
            )

    def reps(self) -> tuple[int, int]:
        fields = ("external_id", "name", "email")
        select, params = self._with_defaults(
            SalesRep, {f: f"s.{f}" for f in fields}, (*fields, "regions")
        )
        created, updated = self._upsert(
            model=SalesRep,
            select=select,
            source=f"{STAGE_REP.name} s WHERE true",
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
        select, params = self._with_defaults(Partner, {f: f"s.{f}" for f in fields}, fields)
        return self._upsert(
            model=Partner,
            select=select,
            source=f"{STAGE_PARTNER.name} s WHERE true",
            key=("external_id",),
            compare=fields[1:],
            params=params,
        )

    def agreements(self) -> tuple[int, int]:
        partner = _q(self.connection, Partner._meta.db_table)
        fields = (
            "agreement_type",
            "status",
            "start_date",
            "end_date",
            "signed_on",
            "terminated_on",
            "exclusive",
        )
        scalar = {
            "external_id": "s.external_id",
            _column(Agreement, "partner"): "p.id",
            **{f: f"s.{f}" for f in fields},
        }
        select, params = self._with_defaults(
            Agreement, scalar, ("external_id", "partner", *fields, "regions", "verticals")
        )
        created, updated = self._upsert(
            model=Agreement,
            select=select,
            source=(
                f"{STAGE_AGREEMENT.name} s JOIN {partner} p ON p.external_id = s.partner WHERE true"
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
        connection = self.connection
        account = _q(connection, Account._meta.db_table)
        rep = _q(connection, SalesRep._meta.db_table)
        partner = _q(connection, Partner._meta.db_table)
        base = {
            "account_id": "a.id",
            "kind": "s.kind",
            "start_date": "s.start_date",
            "end_date": "s.end_date",
        }
        joined = f"{STAGE_COVERAGE.name} s JOIN {account} a ON a.external_id = s.account"
        no_id = "CAST(NULL AS bigint)"  # typed, so a subquery's column keeps the id's type
        plans = [
            (
                {**base, "rep_id": "r.id", "partner_id": no_id, "online_source": "''"},
                f"{joined} JOIN {rep} r ON r.external_id = s.owner WHERE s.kind = 'direct'",
                ("account_id", "rep_id", "start_date"),
                (ChannelKind.DIRECT,),
            ),
            (
                {**base, "rep_id": no_id, "partner_id": "p.id", "online_source": "''"},
                f"{joined} JOIN {partner} p ON p.external_id = s.owner "
                "WHERE s.kind IN ('distribution', 'partner')",
                ("account_id", "kind", "partner_id", "start_date"),
                PARTNER_KINDS,
            ),
            (
                {**base, "rep_id": no_id, "partner_id": no_id, "online_source": "s.owner"},
                f"{joined} WHERE s.kind = 'online'",
                ("account_id", "online_source", "start_date"),
                (ChannelKind.ONLINE,),
            ),
        ]
        created = updated = 0
        with self._bulk_load(CoverageAssignment, self.staged[STAGE_COVERAGE]):
            for select, source, key, kinds in plans:
                plan_created, plan_updated = self._upsert(
                    model=CoverageAssignment,
                    select=select,
                    source=source,
                    key=key,
                    kinds=[str(kind) for kind in kinds],
                    compare=("end_date",),
                )
                created += plan_created
                updated += plan_updated
        return created, updated

    def registrations(self) -> tuple[int, int]:
        from partners.market_csv.registrations import registrations_store

        return registrations_store(self.connection, now=self.now)
