"""accounts.csv and opportunities.csv copied straight into their empty tables (PostgreSQL):
the same rows as through the staging table and the upsert, the same `file:line: column:
problem` errors with nothing written, and the tables' indexes and foreign keys as they were."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from channels.models import Opportunity
from crm.models import Account, Region, Vertical
from partners.market_csv import store, validate

GOOD = Path(__file__).parent / "csv" / "good"

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def market(tmp_path: Path) -> Path:
    directory = tmp_path / "market"
    shutil.copytree(GOOD, directory)
    return directory


@pytest.fixture
def direct_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each direct load finished during the test."""
    finished: list[int] = []
    original = store.DirectLoad.finish

    def finish(self: store.DirectLoad, *, analyze: bool = False) -> int:
        rows = original(self, analyze=analyze)
        if self.model is Opportunity:
            finished.append(rows)
        return rows

    monkeypatch.setattr(store.DirectLoad, "finish", finish)
    return finished


def _run(*paths: Path) -> str:
    out = StringIO()
    call_command("import_csv", *map(str, paths), stdout=out, stderr=StringIO())
    return out.getvalue()


def _deals_only(market: Path, tmp_path: Path) -> Path:
    deals = tmp_path / "deals"
    deals.mkdir()
    (market / "opportunities.csv").rename(deals / "opportunities.csv")
    return deals


def _stored() -> list[tuple[Any, ...]]:
    fields = [f.attname for f in Opportunity._meta.concrete_fields if f.name != "id"]
    fields.remove("created_at")
    rows = list(Opportunity.objects.order_by("external_id").values_list(*fields))
    return [
        (*row[: fields.index("updated_at")], *row[fields.index("updated_at") + 1 :]) for row in rows
    ]


def _schema(table: str = Opportunity._meta.db_table) -> tuple[list[str], list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [table]
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated::text "
            "FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY conname",
            [table],
        )
        constraints = [row[0] for row in cursor.fetchall()]
    return indexes, constraints


@pytest.mark.parametrize("bulk_rows", [store.BULK_LOAD_ROWS, 1])
def test_an_empty_table_gets_the_same_rows_as_the_upsert(
    market: Path,
    tmp_path: Path,
    direct_loads: list[int],
    monkeypatch: pytest.MonkeyPatch,
    bulk_rows: int,
) -> None:
    # With bulk_rows 1 the indexes and foreign keys are dropped and rebuilt around the load.
    monkeypatch.setattr(store, "BULK_LOAD_ROWS", bulk_rows)
    schema = _schema()
    _run(market)  # accounts.csv in the same run: through the staging table
    assert direct_loads == []
    upserted = _stored()
    Opportunity.objects.all().delete()

    out = _run(_deals_only(market, tmp_path))

    assert "opportunities.csv: 4 rows, created=4 updated=0 unchanged=0" in out
    assert direct_loads == [4]
    assert _stored() == upserted
    assert _schema() == schema


def test_a_table_holding_rows_is_upserted(
    market: Path, tmp_path: Path, direct_loads: list[int]
) -> None:
    deals = _deals_only(market, tmp_path)
    _run(market)
    assert "created=4" in _run(deals)

    out = _run(deals)

    assert "opportunities.csv: 4 rows, created=0 updated=0 unchanged=4" in out
    assert direct_loads == [4]


def test_bad_rows_of_a_direct_load_are_named_and_nothing_is_written(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "BULK_LOAD_ROWS", 1)
    deals = _deals_only(market, tmp_path)
    _run(market)
    schema = _schema()
    path = deals / "opportunities.csv"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "OPP-0005,ACC-9999,direct,REP-99,open,1.00,USD,false,2026-11-02,,,,,,,\n"
        + "OPP-0006,ACC-0001,partner,P-ALPHA,open,1.00,USD,false,2026-11-02,,,,,nope,,REG-9\n",
        encoding="utf-8",
    )
    err = StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", str(deals), stdout=StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "opportunities.csv:6: account: unknown account external id 'ACC-9999'",
        "opportunities.csv:6: owner: unknown rep external id 'REP-99'",
        "opportunities.csv:7: sub_stage: unknown sub-stage code 'nope'",
        "opportunities.csv:7: registration: unknown registration external id 'REG-9'",
    ]
    assert not Opportunity.objects.exists()
    assert _schema() == schema


def test_an_export_loaded_into_an_empty_table_exports_the_same(
    market: Path, tmp_path: Path, direct_loads: list[int]
) -> None:
    _run(market)
    first = tmp_path / "first"
    call_command("export_csv", str(first), stdout=StringIO())
    Opportunity.objects.all().delete()
    deals = tmp_path / "deals"
    deals.mkdir()
    shutil.copy(first / "opportunities.csv", deals / "opportunities.csv")

    _run(deals)

    second = tmp_path / "second"
    call_command("export_csv", str(second), stdout=StringIO())
    assert direct_loads == [4]
    assert (second / "opportunities.csv").read_text(encoding="utf-8") == (
        first / "opportunities.csv"
    ).read_text(encoding="utf-8")


def test_text_with_tabs_line_breaks_and_backslashes_is_stored_as_written(
    market: Path, tmp_path: Path, direct_loads: list[int]
) -> None:
    deals = _deals_only(market, tmp_path)
    _run(market)
    (deals / "opportunities.csv").write_text(
        "external_id,account,channel,owner,stage,amount,currency,recurring,opened_on,"
        "expected_close_on,closed_on,ends_on,name,lost_reason\n"
        'O\\1,ACC-0001,online,"web\tshop\\\\",lost,5.00,USD,false,2026-01-01,,2026-01-02,,'
        '"Two\nlines\r\n\\N",reason\\N\n',
        encoding="utf-8",
    )

    _run(deals)

    deal = Opportunity.objects.get()
    assert direct_loads == [1]
    assert (deal.external_id, deal.online_source, deal.name, deal.lost_reason) == (
        "O\\1",
        "web\tshop\\\\",
        "Two\nlines\r\n\\N",
        "reason\\N",
    )


@pytest.mark.parametrize("bulk_rows", [store.BULK_LOAD_ROWS, 1])
def test_a_first_load_of_accounts_is_what_the_upsert_finds_unchanged(
    market: Path, monkeypatch: pytest.MonkeyPatch, bulk_rows: int
) -> None:
    monkeypatch.setattr(store, "BULK_LOAD_ROWS", bulk_rows)
    schema = _schema(Account._meta.db_table)
    loads: list[type[Any]] = []
    original = store.DirectLoad.finish

    def finish(self: store.DirectLoad, *, analyze: bool = False) -> int:
        loads.append(self.model)
        return original(self, analyze=analyze)

    monkeypatch.setattr(store.DirectLoad, "finish", finish)
    rows = len((market / "accounts.csv").read_text(encoding="utf-8").splitlines()) - 1

    first = _run(market)

    assert loads == [Account]
    assert f"accounts.csv: {rows} rows, created={rows} updated=0 unchanged=0" in first
    assert "regions.csv: 3 rows, created=3" in first
    assert _schema(Account._meta.db_table) == schema
    # The upsert compares every column it writes: it finds the copied rows as it would write them.
    again = _run(market)
    assert loads == [Account]
    assert f"accounts.csv: {rows} rows, created=0 updated=0 unchanged={rows}" in again
    assert "regions.csv: 3 rows, created=0 updated=0 unchanged=3" in again


def test_bad_accounts_of_a_first_load_are_named_and_no_region_is_left(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "BULK_LOAD_ROWS", 1)
    schema = _schema(Account._meta.db_table)
    path = market / "accounts.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "ACC-X,Bad Co,MARS,FIN,smb,2025-01-01,2024-01-01,,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", str(market), stdout=StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "accounts.csv:3: region: unknown region code 'MARS'",
        "accounts.csv:3: archived_on: 2024-01-01 is before entered_on 2025-01-01",
    ]
    assert not Account.objects.exists()
    assert not Region.objects.exists() and not Vertical.objects.exists()
    assert _schema(Account._meta.db_table) == schema


def test_a_bad_account_after_rows_already_sent_leaves_nothing_and_later_files_are_checked(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every good row goes out at once, so the COPY is open when the bad row is read; the files
    # after it (which read the database) are still checked. The blocks of one row each are
    # written before the bad one is found, then taken back, and the rows checked one by one.
    monkeypatch.setattr(store, "BULK_LOAD_ROWS", 1)
    monkeypatch.setattr(store, "DIRECT_CHUNK_ROWS", 1)
    monkeypatch.setattr(validate, "ACCOUNT_BLOCK_ROWS", 1)
    schema = _schema(Account._meta.db_table)
    with open(market / "accounts.csv", "a", encoding="utf-8") as handle:
        handle.write("ACC-X,Bad Co,MARS,FIN,smb,2025-01-01,,,\n")
    with open(market / "coverage.csv", "a", encoding="utf-8") as handle:
        handle.write("ACC-0999,direct,REP-01,2026-01-01,\n")
    err = StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", str(market), stdout=StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "accounts.csv:6: region: unknown region code 'MARS'",
        "coverage.csv:8: account: unknown account external id 'ACC-0999'",
    ]
    assert not Account.objects.exists()
    assert not Region.objects.exists() and not Vertical.objects.exists()
    assert _schema(Account._meta.db_table) == schema
