"""The accounts and coverage assignments a process keeps between runs (`analytics.kept_rows`,
`selectors.week_read`), on PostgreSQL: each day's read answers exactly what the database's
own read of the day does, reading again only the rows changed since the kept snapshot, and
every row when the logs of changes cannot vouch for the kept ones."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from analytics import kept_rows, metrics, selectors, services
from analytics.sql_reference import reference_partner_counts, reference_segment_counts
from channels.change_logs import COVERAGE
from channels.models import CoverageAssignment
from channels.services import change_logs_prune
from crm import change_logs
from crm.models import Account, Region
from tests.analytics.market import another_connection, random_market
from tests.analytics.test_sql_reference import _partner_counts, _sorted

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("nothing_kept"),
]

Day = tuple[dict[int, tuple[int, ...]], list[tuple[int, ...]]]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """How many rows each read of the kept market brought, per table (one entry per read)."""
    counted: dict[str, list[int]] = {"accounts": [], "coverage": []}
    for table, name in (
        ("accounts", "_market_account_columns"),
        ("coverage", "_market_coverage_columns"),
    ):
        columns = getattr(selectors, name)

        def recorded(*args: Any, _read: Any = columns, _table: str = table, **kwargs: Any) -> Any:
            fields = _read(*args, **kwargs)
            counted[_table].append(len(fields["account_id"]))
            return fields

        monkeypatch.setattr(selectors, name, recorded)
    return counted


def _day(day: date, *, keep: bool = True) -> Day:
    """The day's accounts by id (region, vertical, size band, state, converted in the
    programme's window and year) and its running assignments (sorted), as a week reads them
    outside any transaction: from the kept rows, or with `keep` off from the database's own
    read of the day."""
    assert not connection.in_atomic_block
    with override_settings(METRICS_KEEP_MARKET=keep), selectors.week_read(day) as read:
        accounts = read.accounts
        assignments, _ = read.rest()
    columns = [
        accounts.region,
        accounts.vertical,
        accounts.size_band.codes,
        accounts.state,
        accounts.converted_in_window,
        accounts.converted_in_year,
    ]
    by_id = {
        int(account): tuple(int(column[row]) for column in columns)
        for row, account in enumerate(accounts.account_id)
    }
    rows = slice(None) if assignments.running is None else assignments.running
    running = sorted(
        zip(
            assignments.account_id[rows].tolist(),
            assignments.kind.codes[rows].tolist(),
            assignments.partner_id[rows].tolist(),
            assignments.rep_id[rows].tolist(),
            strict=True,
        )
    )
    return by_id, running


def _assert_as_the_database_reads(day: date) -> Day:
    kept = _day(day)
    assert kept == _day(day, keep=False), day
    return kept


def test_it_reads_again_only_the_rows_changed_since(reads: dict[str, list[int]]) -> None:
    days = random_market(31)
    day = days[len(days) // 2]
    first = _assert_as_the_database_reads(day)
    assert reads == {
        "accounts": [Account.objects.count()],
        "coverage": [CoverageAssignment.objects.count()],
    }
    reads["accounts"].clear()
    reads["coverage"].clear()
    assert _day(day) == first
    assert reads == {"accounts": [], "coverage": []}  # nothing changed: nothing read

    # Bookkeeping that no read field depends on logs nothing.
    Account.objects.update(name="Renamed", coverage_kinds=3)
    CoverageAssignment.objects.update(updated_at=timezone.now())
    assert _day(day) == first
    assert reads == {"accounts": [], "coverage": []}

    accounts = list(Account.objects.order_by("pk")[:4])
    Account.objects.filter(pk=accounts[0].pk).update(archived_on=day, entered_on=day)
    Account.objects.filter(pk=accounts[1].pk).update(
        converted_on=day - timedelta(days=1), converted_via="partner"
    )
    Account.objects.filter(pk=accounts[2].pk).update(region=Region.objects.order_by("-pk").first())
    gone = accounts[3].pk
    accounts[3].delete()  # its assignments go with it
    added = Account.objects.create(
        external_id="A-new",
        name="New",
        region=accounts[0].region,
        vertical=accounts[0].vertical,
        size_band="smb",
        entered_on=day - timedelta(days=5),
    )
    moved = CoverageAssignment.objects.exclude(account_id=gone).order_by("pk").first()
    assert moved is not None
    CoverageAssignment.objects.filter(pk=moved.pk).update(
        start_date=day - timedelta(days=1), end_date=day
    )
    CoverageAssignment.objects.create(
        account=added, kind="online", online_source="web", start_date=day - timedelta(days=2)
    )
    reads["accounts"].clear()
    reads["coverage"].clear()
    after = _assert_as_the_database_reads(day)
    # The changed accounts and the added one; the deleted one and its assignments dropped.
    assert reads == {"accounts": [4], "coverage": [2]}
    assert gone not in after[0] and added.pk in after[0]
    assert after != first


def test_each_day_has_the_rows_the_database_reads_for_it() -> None:
    """The kept accounts' states and the running assignments on a day come from the spans of
    rules 1, 3a and 4: the same rows as the database's read, on every day worth checking (the
    market's starts and ends, and the days just around them)."""
    days = random_market(32, accounts=120)
    edges = sorted({day + timedelta(days=shift) for day in days for shift in (-1, 0, 1)})
    for day in edges:
        _assert_as_the_database_reads(day)


def test_a_change_committed_after_a_read_began_is_read_at_the_next(
    reads: dict[str, list[int]],
) -> None:
    """A transaction still open when a read takes its snapshot is not seen by it; once it
    commits, the next read reads its rows again, though it began before that snapshot."""
    days = random_market(33)
    day = days[len(days) // 2]
    _day(day)
    account = Account.objects.filter(archived_on__isnull=True, entered_on__lte=day).first()
    assert account is not None
    with another_connection() as other:
        other.execute("UPDATE crm_account SET archived_on = entered_on WHERE id = %s", [account.pk])
        # Open: the read does not see it, and keeps the account as it was.
        reads["accounts"].clear()
        during = _assert_as_the_database_reads(day)
        assert reads["accounts"] == []
        other.commit()
    after = _assert_as_the_database_reads(day)
    assert reads["accounts"] == [1]
    assert after[0][account.pk] != during[0][account.pk]


def _copies(pk: int, count: int) -> None:
    """`count` copies of the account `pk`, inserted by one statement."""
    columns = [
        field.column
        for field in Account._meta.concrete_fields
        if not field.primary_key and field.column != "external_id"
    ]
    listed = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO crm_account (external_id, {listed})"
            f" SELECT 'copy-' || n, {listed} FROM crm_account,"
            " generate_series(1, %s) AS n WHERE id = %s",
            [count, pk],
        )


@pytest.mark.parametrize(
    "lapse",
    [
        "log truncated",
        "log pruned",
        "many accounts changed at once",
        "coverage truncated",
    ],
)
def test_what_the_logs_cannot_vouch_for_reads_every_row(
    reads: dict[str, list[int]], lapse: str
) -> None:
    days = random_market(34)
    day = days[len(days) // 2]
    _day(day)
    account = Account.objects.order_by("pk").first()
    assert account is not None
    with connection.cursor() as cursor:
        if lapse == "log truncated":
            Account.objects.filter(pk=account.pk).update(archived_on=account.entered_on)
            cursor.execute("TRUNCATE crm_account_change")
        elif lapse == "log pruned":
            Account.objects.filter(pk=account.pk).update(archived_on=account.entered_on)
            assert change_logs_prune(older_than=timedelta(0)) > 0
        elif lapse == "many accounts changed at once":
            _copies(account.pk, change_logs.MOST_ROWS + 1)
            cursor.execute(
                "SELECT count(*), count(account_id) FROM crm_account_change"
                " WHERE xid = (SELECT max(xid) FROM crm_account_change)"
            )
            assert cursor.fetchone() == (1, 0)  # one row, for every account
        else:
            cursor.execute("TRUNCATE channels_coverageassignment CASCADE")
    reads["accounts"].clear()
    reads["coverage"].clear()
    _assert_as_the_database_reads(day)
    # Pruning prunes every log, but the coverage's pruned rows were all seen by the kept read.
    accounts_again = lapse != "coverage truncated"
    coverage_again = lapse == "coverage truncated"
    assert reads["accounts"] == ([Account.objects.count()] if accounts_again else [])
    assert reads["coverage"] == ([CoverageAssignment.objects.count()] if coverage_again else [])


def test_an_update_of_many_rows_that_changes_no_read_field_logs_nothing() -> None:
    random_market(35)
    _copies(Account.objects.order_by("pk").values_list("pk", flat=True)[0], 50)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_account_change")
        Account.objects.update(name="Same fields", coverage_kinds=1)
        cursor.execute("SELECT count(*) FROM crm_account_change")
        assert cursor.fetchone() == (0,)
        Account.objects.filter(archived_on__isnull=True).update(archived_on=date(2030, 1, 1))
        cursor.execute("SELECT count(*) FROM crm_account_change")
        assert cursor.fetchone()[0] == Account.objects.filter(archived_on=date(2030, 1, 1)).count()


def test_weekly_runs_after_changes_agree_with_the_sql_reference(
    reads: dict[str, list[int]],
) -> None:
    """Weekly runs read the rows kept by the one before, and count exactly what the SQL
    reference counts."""
    days = random_market(36, accounts=120)
    for step, day in enumerate(sorted(days)):
        if step:
            account = Account.objects.order_by("pk")[step]
            Account.objects.filter(pk=account.pk).update(
                converted_on=day, converted_via="distribution"
            )
            CoverageAssignment.objects.filter(account=account).update(end_date=F("start_date"))
        groups, _, _ = services.metrics_day_counts(day)
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(groups)),
            _sorted(reference_segment_counts(day)),
            obj=str(day),
        )
        figures = services.metrics_week_figures(day)
        pd.testing.assert_frame_equal(
            _partner_counts(figures.partners), reference_partner_counts(day), obj=str(day)
        )
    # Every account once, then only the changed ones.
    assert reads["accounts"][0] == Account.objects.count()
    assert all(count <= 1 for count in reads["accounts"][1:])
    assert np.all(np.asarray(reads["coverage"][1:]) <= 4)


def test_with_the_setting_off_the_database_reads_the_day(reads: dict[str, list[int]]) -> None:
    days = random_market(37)
    _day(days[0], keep=False)
    _day(days[1], keep=False)
    assert reads == {"accounts": [], "coverage": []}
    _day(days[0])
    assert reads["accounts"] == [Account.objects.count()]


def test_pruning_keeps_the_changes_of_the_last_days() -> None:
    random_market(38)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {COVERAGE.log}")
        logged = cursor.fetchone()[0]
        assert logged > 0
        assert change_logs.prune(COVERAGE) == 0
        cursor.execute(
            f"UPDATE {COVERAGE.log} SET logged_at = logged_at - interval '9 days'"
            f" WHERE xid = (SELECT min(xid) FROM {COVERAGE.log}) RETURNING xid"
        )
        aged = [row[0] for row in cursor.fetchall()]
        assert change_logs.prune(COVERAGE) == len(aged) > 0
        cursor.execute(f"SELECT count(*) FROM {COVERAGE.log}")
        assert cursor.fetchone()[0] == logged - len(aged)
        cursor.execute(f"SELECT xid FROM {COVERAGE.horizon}")
        assert cursor.fetchone()[0] >= max(aged)


def test_a_first_read_in_many_id_ranges_keeps_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "_KEPT_RANGE_IDS", 7)
    for day in random_market(39):
        kept_rows.forget_kept_rows()
        _assert_as_the_database_reads(day)
