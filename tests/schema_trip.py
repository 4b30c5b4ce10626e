"""A trip back to the schema a data migration found, for the tests of that migration.

A test takes the database back to the migrations before the one it proves, stores rows as
they were then (through the models of that time), runs the migration and looks at what it made
of the rows. The trip runs in one transaction that is rolled back at the end: PostgreSQL and
SQLite both undo schema changes with the transaction, so the database is back at the latest
migrations, as the rest of the suite expects, without applying again every migration the trip
took back. One executor (one migration graph, one project state carried from step to step)
serves the whole trip. The way back is the costly part (each migration unapplied re-renders the
models related to the ones it changes): tests whose migrations lie on one way back can share
it, each in its own leg (SchemaTrip.leg).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps.registry import Apps
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState

Nodes = list[tuple[str, str]]


class SchemaTrip:
    def __init__(self) -> None:
        self.executor = MigrationExecutor(connection)
        self.state: ProjectState | None = None

    def migrate(self, targets: Nodes) -> None:
        """Apply or unapply migrations up to the targets (and only what they need)."""
        self.state = self.executor.migrate(targets, state=self._forwards_state(targets))
        self.executor.loader.build_graph()  # what is applied now, for the next step's plan

    @property
    def apps(self) -> Apps:
        """The models as the database has them now (every app at its applied migrations)."""
        assert self.state is not None, "migrate first"
        return self.state.apps

    @contextmanager
    def leg(self) -> Iterator[None]:
        """A part of the trip that is undone when it ends (rows, schema and state), so that tests
        sharing one long way back each take their own way forward from where it leads."""
        state = self.state.clone() if self.state is not None else None
        savepoint = transaction.savepoint()
        _check_each_statement()  # a test's end may have put the checks back to commit
        try:
            yield
        finally:
            transaction.savepoint_rollback(savepoint)
            self.state = state
            self.executor.loader.build_graph()

    def _forwards_state(self, targets: Nodes) -> ProjectState | None:
        # A forward step starts from the state the previous step left (already built, its
        # models already rendered); a backward step builds the states it needs itself.
        plan = self.executor.migration_plan(targets)
        if self.state is not None and plan and not any(backwards for _, backwards in plan):
            return self.state
        return None


@contextmanager
def schema_trip() -> Iterator[SchemaTrip]:
    """A trip through the migrations, undone when the block ends (passed or failed)."""
    # SQLite cannot switch foreign key checks off inside a transaction, and its schema editor
    # needs them off: switch them off before the transaction begins (a no-op elsewhere).
    connection.disable_constraint_checking()
    try:
        with transaction.atomic():
            _check_each_statement()
            yield SchemaTrip()
            transaction.set_rollback(True)
    finally:
        connection.enable_constraint_checking()


def _check_each_statement() -> None:
    """Rows stored in the trip's transaction leave foreign key checks pending until commit, and
    PostgreSQL alters no table with checks pending: check each statement's rows at its end
    instead (as strict as at commit, only sooner)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
