"""The deals a process keeps between runs (`analytics.kept_rows`), on PostgreSQL: each read
answers exactly what reading every deal would, reading again only the deals changed since the
kept snapshot, and every deal when the log of changes cannot vouch for the kept ones."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from analytics import metrics, revenue_selectors, services
from analytics.revenue_selectors import RevenueRead, read_revenue
from channels.change_logs import OPPORTUNITIES
from channels.models import Opportunity
from channels.services import change_logs_prune
from crm import change_logs
from crm.models import Account, CurrencyRate
from tests.analytics.market import another_connection, random_market, random_revenue
from tests.analytics.test_revenue_reference import _check_stored
from tests.factories import OpportunityFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("nothing_kept"),
]

DealRows = dict[int, tuple[int, ...]]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many deals each read of the database brought (one entry per read)."""
    counted: list[int] = []
    deal_fields = revenue_selectors._deal_fields

    def recorded(*args: Any, **kwargs: Any) -> Any:
        fields = deal_fields(*args, **kwargs)
        counted.append(len(fields["account_id"]))
        return fields

    monkeypatch.setattr(revenue_selectors, "_deal_fields", recorded)
    return counted


def _kept(day: date) -> RevenueRead:
    """A week's read of its deals, as its read-ahead makes it (outside any transaction)."""
    assert not connection.in_atomic_block
    return read_revenue(day, joined=False, with_coverage=False, for_the_day=True)


def _rows(read: RevenueRead) -> DealRows:
    """Every deal read, by id: its fields in name order."""
    assert read.deals is not None
    fields = read.deals.fields
    names = sorted(fields)
    ids = fields["opportunity_id"]
    return {
        int(ids[row]): tuple(int(fields[name][row]) for name in names) for row in range(len(ids))
    }


def _every_deal_read(day: date) -> DealRows:
    """The same deals read whole from the database, with their ids and dates as they are."""
    with override_settings(METRICS_KEEP_DEALS=False):
        return _rows(read_revenue(day, joined=False, with_coverage=False))


def _market(seed: int) -> date:
    random_market(seed)
    days = random_revenue(seed)
    return days[len(days) // 2]


def test_it_reads_again_only_the_deals_changed_since(reads: list[int]) -> None:
    day = _market(21)
    first = _kept(day)
    assert reads == [Opportunity.objects.count()]  # every deal, the first time
    assert _rows(first) == _every_deal_read(day)
    reads.clear()

    assert _rows(_kept(day)) == _rows(first)
    assert reads == []  # nothing changed: nothing read

    changed = (
        Opportunity.objects.filter(closed_on__isnull=True, opened_on__lte=day - timedelta(days=10))
        .order_by("pk")
        .first()
    )
    gone = Opportunity.objects.filter(stage="won").order_by("-pk").first()
    assert changed is not None and gone is not None
    Opportunity.objects.filter(pk=changed.pk).update(
        stage="won", closed_on=day - timedelta(days=3), amount=Decimal("123.45")
    )
    gone.delete()
    added = OpportunityFactory(
        account=Account.objects.order_by("pk").first(),
        opened_on=day - timedelta(days=20),
        stage="won",
        closed_on=day - timedelta(days=1),
        recurring=True,
        amount=Decimal("99.99"),
    )
    reads.clear()
    after = _rows(_kept(day))
    assert reads == [2]  # the changed deal and the added one; the deleted one is dropped
    assert after == _every_deal_read(day)
    assert changed.pk in after and added.pk in after and gone.pk not in after
    assert after != _rows(first)


def test_each_day_has_the_deals_the_database_filters_for_it(reads: list[int]) -> None:
    """The kept deals that can count on a day are picked by the spans of rules 12-14: the
    same deals as the database's filter, on every day worth checking (closes, ends, the
    edges of the 52-week window)."""
    random_market(26)
    days = random_revenue(26)
    for day in days:
        assert _rows(_kept(day)) == _every_deal_read(day), day
    assert reads.count(Opportunity.objects.count()) >= 1


def test_a_change_committed_after_a_read_began_is_read_at_the_next(reads: list[int]) -> None:
    """A transaction still open when a read takes its snapshot is not seen by it; once it
    commits, the next read reads its deals again, though it began before that snapshot."""
    day = _market(22)
    _kept(day)
    deal = Opportunity.objects.filter(opened_on__lte=day, closed_on__isnull=True).first()
    assert deal is not None
    with another_connection() as other:
        other.execute(
            "UPDATE channels_opportunity SET amount = amount + 1000 WHERE id = %s", [deal.pk]
        )
        # Open: the read does not see it, and keeps the deal as it was.
        before = _every_deal_read(day)
        reads.clear()
        during = _rows(_kept(day))
        assert reads == []
        assert during == before
        other.commit()
    after = _rows(_kept(day))
    assert reads == [1]
    assert after == _every_deal_read(day)
    assert after[deal.pk] != during[deal.pk]


@pytest.mark.parametrize(
    "lapse",
    [
        "log truncated",
        "log pruned",
        "many deals changed at once",
        "deals truncated",
        "another currency",
    ],
)
def test_what_the_log_cannot_vouch_for_reads_every_deal(reads: list[int], lapse: str) -> None:
    day = _market(23)
    _kept(day)
    deal = Opportunity.objects.order_by("pk").first()
    assert deal is not None
    with connection.cursor() as cursor:
        if lapse == "log truncated":
            Opportunity.objects.filter(pk=deal.pk).update(amount=Decimal("1.00"))
            cursor.execute("TRUNCATE channels_opportunity_change")
        elif lapse == "log pruned":
            Opportunity.objects.filter(pk=deal.pk).update(amount=Decimal("1.00"))
            assert change_logs_prune(older_than=timedelta(0)) > 0
        elif lapse == "many deals changed at once":
            _copies(deal.pk, 10_001)
            cursor.execute(
                "SELECT count(*), count(opportunity_id) FROM channels_opportunity_change"
                " WHERE xid = (SELECT max(xid) FROM channels_opportunity_change)"
            )
            assert cursor.fetchone() == (1, 0)  # one row, for every deal
        elif lapse == "deals truncated":
            cursor.execute("TRUNCATE channels_opportunity CASCADE")
        else:
            CurrencyRate.objects.create(
                currency="GBP", valid_from=day, rate_to_reporting=Decimal("1.25")
            )
    reads.clear()
    kept = _rows(_kept(day))
    assert reads == [Opportunity.objects.count()]
    assert kept == _every_deal_read(day)


def _copies(pk: int, count: int) -> None:
    """`count` copies of the deal `pk`, inserted by one statement."""
    columns = [
        field.column
        for field in Opportunity._meta.concrete_fields
        if not field.primary_key and field.column not in ("external_id", "registration_id", "cents")
    ]
    listed = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO channels_opportunity (external_id, {listed})"
            f" SELECT 'copy-' || n, {listed} FROM channels_opportunity,"
            " generate_series(1, %s) AS n WHERE id = %s",
            [count, pk],
        )


def test_a_week_run_after_changes_stores_the_reference(reads: list[int]) -> None:
    """Weekly runs read the deals kept by the one before, and store the same rows as reading
    every deal would (the SQL reference's)."""
    random_market(7)
    random_revenue(7)
    week = metrics.iso_week_of(date(2026, 3, 1))
    day = metrics.iso_week_as_of(week)
    services.metrics_compute_week(week=week, final=True)
    _check_stored(week)
    assert reads == [Opportunity.objects.count()]
    won = Opportunity.objects.filter(
        closed_on__isnull=True, opened_on__lte=day - timedelta(days=10)
    ).first()
    assert won is not None
    Opportunity.objects.filter(pk=won.pk).update(stage="won", closed_on=day - timedelta(days=2))
    Opportunity.objects.filter(stage="lost").order_by("pk").first().delete()  # type: ignore[union-attr]
    reads.clear()
    services.metrics_compute_week(week=week, final=True)
    assert reads == [1]
    _check_stored(week)


def test_with_the_setting_off_every_deal_is_read_each_time(reads: list[int]) -> None:
    day = _market(24)
    with override_settings(METRICS_KEEP_DEALS=False):
        _kept(day)
        _kept(day)
    counting = Opportunity.objects.filter(opened_on__lte=day)
    assert len(reads) == 2 and reads[0] == reads[1] <= counting.count()


def test_pruning_keeps_the_changes_of_the_last_days() -> None:
    random_market(25)
    random_revenue(25, opportunities=5)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM channels_opportunity_change")
        logged = cursor.fetchone()[0]
        cursor.execute("SELECT xid FROM channels_opportunity_change_horizon")
        horizon = cursor.fetchone()[0]
        assert logged >= 5
        assert change_logs.prune(OPPORTUNITIES) == 0
        cursor.execute(
            "UPDATE channels_opportunity_change SET logged_at = logged_at - interval '9 days'"
            " WHERE xid = (SELECT min(xid) FROM channels_opportunity_change)"
            " RETURNING xid"
        )
        aged = [row[0] for row in cursor.fetchall()]
        assert change_logs.prune(OPPORTUNITIES) == len(aged) > 0
        cursor.execute("SELECT count(*) FROM channels_opportunity_change")
        assert cursor.fetchone()[0] == logged - len(aged)
        cursor.execute("SELECT xid FROM channels_opportunity_change_horizon")
        assert cursor.fetchone()[0] == max(max(aged), horizon)
