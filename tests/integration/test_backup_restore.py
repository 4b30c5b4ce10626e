"""backup_restore_check dumps the test database, restores it into a scratch database on the
same server and compares every table's row count."""

from __future__ import annotations

from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from crm.management.commands import backup_restore_check
from crm.models import Account
from tests.analytics.market import random_market

pytestmark = pytest.mark.postgres

SCRATCH = "crm_restore_check_test"


def _databases() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cursor.fetchall()}


def _check(*args: str) -> str:
    out = StringIO()
    call_command("backup_restore_check", "--to-database", SCRATCH, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def market(transactional_db: None) -> None:
    # Committed rows: pg_dump sees only what other sessions can see.
    random_market(71, accounts=120)


@pytest.mark.usefixtures("market")
def test_it_restores_every_table_with_the_same_counts_and_drops_the_scratch_database() -> None:
    output = _check()

    assert "Restore check passed" in output
    account_line = next(line for line in output.splitlines() if line.startswith("crm_account "))
    assert account_line.split()[1:] == [f"{Account.objects.count():,}"] * 2
    assert "analytics_segmentsnapshot" in output and "partners_agreement" in output
    assert "DIFFERENT" not in output
    assert SCRATCH not in _databases()


@pytest.mark.usefixtures("market")
def test_it_keeps_the_scratch_database_when_asked() -> None:
    _check("--keep")
    try:
        settings = connection.settings_dict
        with psycopg.connect(
            dbname=SCRATCH,
            user=settings["USER"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            password=settings["PASSWORD"] or None,
        ) as restored:
            count = restored.execute("SELECT count(*) FROM crm_account").fetchone()[0]
        assert count == Account.objects.count()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


@pytest.mark.usefixtures("market")
def test_it_fails_and_names_the_table_when_a_count_differs(monkeypatch: Any) -> None:
    counted = backup_restore_check._row_counts

    def one_account_lost(database: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
        counts = counted(database, tables)
        if database.info.dbname == SCRATCH and "crm_account" in counts:
            counts["crm_account"] -= 1
        return counts

    monkeypatch.setattr(backup_restore_check, "_row_counts", one_account_lost)
    out = StringIO()
    with pytest.raises(CommandError, match="1 table"):
        call_command("backup_restore_check", "--to-database", SCRATCH, stdout=out)
    assert any(
        line.startswith("crm_account ") and line.endswith("DIFFERENT")
        for line in out.getvalue().splitlines()
    )
    assert SCRATCH not in _databases()


@pytest.mark.django_db
def test_it_refuses_the_configured_database_as_the_scratch_one() -> None:
    with pytest.raises(CommandError, match="--to-database"):
        call_command("backup_restore_check", "--to-database", connection.settings_dict["NAME"])
