"""Prove a backup restores: dump the configured PostgreSQL database, restore it into a scratch
database, and compare the row count of every table between the two."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import sql
from psycopg.rows import TupleRow

SCRATCH_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Command(BaseCommand):
    help = (
        "Take a pg_dump -Fc of the database, pg_restore it into a scratch database, compare "
        "the row counts of every table, and drop the scratch database (unless --keep). "
        "Exits non-zero on any difference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--to-database",
            default="",
            help="Scratch database to restore into; must not exist (default <name>_restore_check).",
        )
        parser.add_argument(
            "--dump-file",
            default="",
            help="Keep the dump at this path (default: a temporary file, deleted afterwards).",
        )
        parser.add_argument(
            "--keep", action="store_true", help="Leave the scratch database in place."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("backup_restore_check needs PostgreSQL (DATABASE_URL=postgres://)")
        source = connection.settings_dict["NAME"]
        scratch = options["to_database"] or f"{source}_restore_check"
        if not SCRATCH_NAME.match(scratch) or scratch == source:
            raise CommandError(
                f"--to-database must be a new lower-case name other than {source!r}, "
                f"not {scratch!r}"
            )
        for tool in ("pg_dump", "pg_restore"):
            if shutil.which(tool) is None:
                raise CommandError(f"{tool} is not on PATH (PostgreSQL client tools)")

        with tempfile.TemporaryDirectory(prefix="crm-backup-") as work_dir:
            dump = Path(options["dump_file"] or Path(work_dir) / f"{source}.dump")
            source_counts = self._dump(dump, database=source)
            self.stdout.write(f"Dumped {source} to {dump} ({dump.stat().st_size:,} bytes).")
            self._create(scratch)
            try:
                self._run(["pg_restore", "--no-owner", "--exit-on-error", "-d", scratch, dump])
                restored_counts = self._counts(scratch, list(source_counts))
                differences = self._report(source, scratch, source_counts, restored_counts)
            finally:
                if options["keep"]:
                    self.stdout.write(f"Kept the scratch database {scratch}.")
                else:
                    self._drop(scratch)
        if differences:
            raise CommandError(f"{differences} table(s) differ between {source} and {scratch}")
        self.stdout.write(self.style.SUCCESS(f"Restore check passed: {len(source_counts)} tables."))

    def _dump(self, dump: Path, *, database: str) -> dict[str, int]:
        """pg_dump inside a snapshot whose row counts are taken too, so writes that happen
        meanwhile cannot make the comparison differ."""
        with self._connect(database) as source:
            source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            exported = source.execute("SELECT pg_export_snapshot()").fetchone()
            assert exported is not None
            snapshot = exported[0]
            self._run(["pg_dump", "-Fc", f"--snapshot={snapshot}", "-f", dump, database])
            counts = _row_counts(source, self._tables())
            source.execute("COMMIT")
        return counts

    def _tables(self) -> list[str]:
        # Every installed model's table that exists: the project's apps and Django's own.
        return sorted(connection.introspection.django_table_names(only_existing=True))

    def _counts(self, database: str, tables: list[str]) -> dict[str, int | None]:
        with self._connect(database) as restored:
            present = {
                row[0]
                for row in restored.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
            counts: dict[str, int | None] = {table: None for table in tables}
            counts.update(_row_counts(restored, [t for t in tables if t in present]))
        return counts

    def _report(
        self,
        source: str,
        scratch: str,
        source_counts: dict[str, int],
        restored_counts: dict[str, int | None],
    ) -> int:
        width = max(len(table) for table in source_counts)
        self.stdout.write(f"{'table':<{width}}  {source:>14}  {scratch:>14}")
        differences = 0
        for table, count in source_counts.items():
            restored = restored_counts.get(table)
            same = restored == count
            differences += not same
            shown = "missing" if restored is None else f"{restored:,}"
            mark = "" if same else "  DIFFERENT"
            self.stdout.write(f"{table:<{width}}  {count:>14,}  {shown:>14}{mark}")
        return differences

    def _connect(self, database: str) -> psycopg.Connection[TupleRow]:
        settings = connection.settings_dict
        return psycopg.connect(
            dbname=database,
            user=settings.get("USER") or None,
            password=settings.get("PASSWORD") or None,
            host=settings.get("HOST") or None,
            port=settings.get("PORT") or None,
            autocommit=True,
        )

    def _create(self, database: str) -> None:
        with self._connect(connection.settings_dict["NAME"]) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [database]
            ).fetchone()
            if exists:
                raise CommandError(f"the scratch database {database} already exists; drop it first")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def _drop(self, database: str) -> None:
        with self._connect(connection.settings_dict["NAME"]) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        self.stdout.write(f"Dropped the scratch database {database}.")

    def _run(self, command: list[str | Path]) -> None:
        settings = connection.settings_dict
        env = {**os.environ}
        for variable, key in (
            ("PGHOST", "HOST"),
            ("PGPORT", "PORT"),
            ("PGUSER", "USER"),
            ("PGPASSWORD", "PASSWORD"),
        ):
            if settings.get(key):
                env[variable] = str(settings[key])
        finished = subprocess.run(
            [str(part) for part in command], env=env, capture_output=True, text=True
        )
        if finished.returncode != 0:
            raise CommandError(f"{command[0]} failed: {finished.stderr.strip()[-2000:]}")


def _row_counts(database: psycopg.Connection[TupleRow], tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        row = database.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        counts[table] = row[0]
    return counts
