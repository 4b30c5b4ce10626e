"""The weekly run's revenue figures against the SQL reference (`analytics.revenue_reference`),
the independent implementation of docs/metrics.md rules 10-17, on random markets: the single
week's read, the backfill's, and the rows the run stores, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import (
    metrics,
    programme,
    programme_selectors,
    reports,
    revenue,
    revenue_selectors,
    revenue_services,
    services,
)
from analytics.models import RevenueSnapshot, SegmentSnapshot
from analytics.revenue_reference import (
    reference_partner_revenue,
    reference_revenue,
    with_values,
)
from analytics.revenue_selectors import revenue_frames
from analytics.sql_reference import reference_segment_counts
from channels.models import Opportunity
from channels.rules import WON_DAYS
from crm.currencies import MissingRate
from crm.models import Account
from crm.selectors import rate_table
from partners.models import Partner
from tests.analytics.market import random_market, random_revenue
from tests.factories import AgreementFactory, OpportunityFactory

COUNTS = revenue.COUNT_COLUMNS
MONEY = [*revenue.AMOUNT_COLUMNS, *revenue.VALUE_COLUMNS]


def _cents(value: Decimal | None) -> int | None:
    """A full-precision amount (currency units) in cents, half up, as the run rounds."""
    if value is None:
        return None
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _segment_counts(day: date) -> pd.DataFrame:
    return reference_segment_counts(day)


def _reference(day: date) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    counts = {
        (row.region, row.vertical, row.size_band): row._asdict()
        for row in _segment_counts(day).itertuples(index=False)
    }
    return with_values(reference_revenue(day), counts)


def _as_cents(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        column: (figures.get(column) if column in COUNTS else _cents(figures.get(column)))
        for column in [*COUNTS, *MONEY]
        if column in figures
    }


def _computed(frame: pd.DataFrame, keys: list[str]) -> dict[tuple[str, ...], dict[str, Any]]:
    cents = revenue.in_cents(frame)
    rows = {}
    for row in cents.to_dict(orient="records"):
        values: dict[str, Any] = {column: row[column] for column in COUNTS}
        values.update({column: row[column] for column in revenue.AMOUNT_COLUMNS})
        for column in revenue.VALUE_COLUMNS:
            values[column] = None if pd.isna(row[column]) else int(row[column])
        rows[tuple(row[key] for key in keys)] = values
    return rows


def _expected_segments(reference: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    expected = {}
    for key, figures in reference.items():
        values = _as_cents(figures)
        if key[3]:
            values.update(dict.fromkeys(revenue.VALUE_COLUMNS))
        expected[key] = values
    return expected


def _expected_rollups(reference: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Rule 17 from the reference: full-precision sums of the segments, rounded once."""
    sums: dict[Any, dict[str, Any]] = defaultdict(dict)
    for (region, vertical, band, channel), figures in reference.items():
        segment = {"region": region, "vertical": vertical, "size_band": band}
        for size in range(len(metrics.SEGMENT_KEYS)):
            for keys in combinations(metrics.SEGMENT_KEYS, size):
                key = (*(segment[k] if k in keys else "" for k in metrics.SEGMENT_KEYS), channel)
                row = sums[key]
                for column, value in figures.items():
                    if value is None:
                        row.setdefault(column, None)
                    elif row.get(column) is None:
                        row[column] = value
                    else:
                        row[column] += value
    expected = {}
    for key, figures in sums.items():
        values = _as_cents(figures)
        if key[3]:
            values.update(dict.fromkeys(revenue.VALUE_COLUMNS))
        expected[key] = values
    return expected


def _expected_partners(day: date) -> dict[int, dict[str, Any]]:
    columns = [c for c in revenue.PARTNER_COLUMNS if c not in ("external_id", "name")]
    expected = {}
    for partner, figures in reference_partner_revenue(day).items():
        values = {"partner_id": partner}
        for column in columns[2:]:
            value = figures[column]
            values[column] = _cents(value) if isinstance(value, Decimal) else value
        if any(values[c] for c in ("pipeline_count", "won_count", "subscribers")) or any(
            values[c] for c in ("influenced_count", "target_amount")
        ):
            expected[partner] = values
    return expected


def _partners(frame: pd.DataFrame) -> dict[int, dict[str, Any]]:
    cents = revenue.in_cents(frame)
    columns = [c for c in revenue.PARTNER_COLUMNS if c not in ("external_id", "name")]
    return {
        int(row["partner_id"]): {
            "partner_id": int(row["partner_id"]),
            **{column: row[column] for column in columns[2:]},
        }
        for row in cents.to_dict(orient="records")
    }


def _check(day: date, figures: revenue.WeekRevenue, where: str) -> None:
    reference = _reference(day)
    assert _computed(figures.segments, revenue.ROW_KEYS) == _expected_segments(reference), (
        f"{where} segments {day}"
    )
    assert _computed(figures.rollups, revenue.ROW_KEYS) == _expected_rollups(reference), (
        f"{where} rollups {day}"
    )
    assert _partners(figures.partners) == _expected_partners(day), f"{where} partners {day}"


def _check_sourced(day: date, prepared: revenue.PreparedRevenue, where: str) -> None:
    """The revenue sourced since 1 January (rule 22) from the prepared deals, as the revenue
    step hands it to the programme step, against the programme's own read of the won deals
    (the database's sums per owner, currency and day, converted with Decimals)."""
    start = programme.year_start(day)
    try:
        expected = programme_selectors.sourced_revenue_since(start, day, rate_table())
    except MissingRate:
        with pytest.raises(MissingRate):
            prepared.sourced(start, day)
        return
    sourced = prepared.sourced(start, day)
    assert {pk: Decimal(cents).scaleb(-2) for pk, cents in sourced.partners.items()} == (
        expected.partners
    ), f"{where} partners' sourced revenue {day}"
    assert {pk: Decimal(cents).scaleb(-2) for pk, cents in sourced.reps.items()} == (
        expected.reps
    ), f"{where} reps' sourced revenue {day}"


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_it_agrees_with_the_sql_reference_in_a_single_week_and_a_backfill(seed: int) -> None:
    random_market(seed)
    days = random_revenue(seed)
    backfill = revenue.PreparedRevenue(**revenue_frames(), many_days=True)
    for day in days:
        counts = _segment_counts(day)
        week = revenue.PreparedRevenue(**revenue_frames(day))
        _check(day, week.figures(day, counts), "week")
        _check(day, _with_coverage_handed(day).figures(day, counts), "week, coverage handed")
        _check(day, backfill.figures(day, counts), "backfill")
        _check_sourced(day, backfill, "backfill")
        # A week's read holds the deals won in its 52 weeks: this year's unless on 30-31 Dec.
        if programme.year_start(day).toordinal() > day.toordinal() - WON_DAYS:
            _check_sourced(day, week, "week")


def _with_coverage_handed(day: date) -> revenue.PreparedRevenue:
    """The deals of `day` prepared as a weekly run prepares them: their segments from the
    accounts its coverage pass indexed and, on PostgreSQL, rule 16's coverage from the
    assignments it read in the same scan (`WeekFigures.influencing`)."""
    figures = services.metrics_week_figures(day, influence=True)
    if connection.vendor != "postgresql":
        assert figures.influencing is None
        return revenue.PreparedRevenue(**revenue_frames(day))
    assert figures.influencing is not None
    read = revenue_selectors.read_revenue(day, joined=False, with_coverage=False, for_the_day=True)
    assert read.coverage.empty
    read = read.covered_in_window(figures.influencing, day)
    return revenue.PreparedRevenue(**read.frames(figures.accounts))


@pytest.mark.django_db
def test_a_week_without_a_won_deal_reads_no_coverage(monkeypatch: pytest.MonkeyPatch) -> None:
    random_market(5)
    random_revenue(5)
    closes = Opportunity.objects.filter(stage="won").order_by("closed_on")
    first_close = closes.values_list("closed_on", flat=True).first()
    assert first_close is not None
    day = first_close - timedelta(days=1)  # the deals opened by then are all in the pipeline
    assert Opportunity.objects.filter(opened_on__lte=day).exists()
    read: list[int] = []
    coverage_read = revenue_selectors._coverage_read

    def counted(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        fields = coverage_read(*args, **kwargs)
        read.append(len(fields["account_id"]))
        return fields

    monkeypatch.setattr(revenue_selectors, "_coverage_read", counted)
    with CaptureQueriesContext(connection) as queries:
        frames = revenue_frames(day)
    assert not [query for query in queries if "coverageassignment" in query["sql"]]
    assert sum(read) == 0  # PostgreSQL reads the coverage on a cursor of its own
    assert frames["coverage"].empty
    _check(day, revenue.PreparedRevenue(**frames).figures(day, _segment_counts(day)), "week")


@pytest.mark.django_db
def test_the_stored_rows_are_the_reference_rounded_once() -> None:
    random_market(7)
    random_revenue(7)
    week = metrics.iso_week_of(date(2026, 3, 1))
    services.metrics_compute_week(week=week, final=True)
    _check_stored(week)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runs_reading_ahead_store_the_reference_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside a transaction a week's revenue reads start before its coverage pass, and a
    backfill's before its market's, on connections of their own, and the week's revenue rows
    are computed beside the writing of its coverage rows; the rows stored are the
    reference's all the same."""
    random_market(7)
    random_revenue(7)
    week = metrics.iso_week_of(date(2026, 3, 1))
    read_ahead: list[date] = []
    read_on_own_connection = revenue_services._read_on_own_connection
    computed_on_main_thread: list[bool] = []
    week_revenue = revenue_services._week_revenue

    def recorded(as_of: date, with_coverage: bool) -> revenue_selectors.RevenueRead:
        read_ahead.append(as_of)
        return read_on_own_connection(as_of, with_coverage)

    def computed(
        read: revenue_selectors.RevenueRead,
        as_of: date,
        accounts: metrics.Accounts | None,
        segments: Any,
        ready: Callable[[revenue_services.RevenueTables], None] | None = None,
        **handed: Any,
    ) -> revenue_services.RevenueWeek:
        computed_on_main_thread.append(threading.current_thread() is threading.main_thread())
        return week_revenue(read, as_of, accounts, segments, ready, **handed)

    monkeypatch.setattr(revenue_services, "_read_on_own_connection", recorded)
    monkeypatch.setattr(revenue_services, "_week_revenue", computed)
    services.metrics_compute_week(week=week, final=True)
    assert read_ahead == [metrics.iso_week_as_of(week)]
    assert computed_on_main_thread == [False]
    _check_stored(week)
    # A backfill reads every deal while it reads the market, and names their segments from it.
    read_all = revenue_services._read_all_on_own_connection
    read_whole: list[bool] = []

    def recorded_whole() -> revenue_selectors.RevenueRead:
        read_whole.append(True)
        return read_all()

    monkeypatch.setattr(revenue_services, "_read_all_on_own_connection", recorded_whole)
    services.metrics_compute_weeks(weeks=[week], final_weeks=[week])
    assert read_whole == [True]
    _check_stored(week)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_reading_ahead_without_a_rate_stores_no_revenue_rows_on_postgresql() -> None:
    """A run reading ahead stores each revenue table as soon as it is computed; when an
    agreement's target has no rate (rule 10) the week keeps none of its revenue rows of the
    night before, its coverage rows, and the reason."""
    random_market(7)
    random_revenue(7)
    week = metrics.iso_week_of(date(2026, 3, 1))
    day = metrics.iso_week_as_of(week)
    services.metrics_compute_week(week=week, final=True)
    assert RevenueSnapshot.objects.filter(week=week).exists()
    AgreementFactory(
        partner=Partner.objects.order_by("pk").first(),
        start_date=day - timedelta(days=30),
        annual_target=Decimal("1000.00"),
        currency="GBP",
    )
    run = services.metrics_compute_week(week=week, final=True)
    assert "no GBP rate" in run.revenue_problem
    for model in revenue_services.REVENUE_MODELS:
        assert not model._default_manager.filter(week=week).exists(), model
    assert SegmentSnapshot.objects.filter(week=week).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_reading_ahead_names_the_deal_without_a_rate_on_postgresql() -> None:
    """A week's deals are read for its day alone, without their ids
    (`read_revenue(for_the_day=True)`); a deal in a currency without a rate is named all the
    same (rule 10): the step then reads the deals again, with their ids."""
    random_market(7)
    random_revenue(7)
    week = metrics.iso_week_of(date(2026, 3, 1))
    day = metrics.iso_week_as_of(week)
    closed = day - timedelta(days=10)
    deal = OpportunityFactory(
        account=Account.objects.order_by("pk").first(),
        stage="won",
        currency="GBP",
        opened_on=day - timedelta(days=60),
        closed_on=closed,
    )
    run = services.metrics_compute_week(week=week, final=True)
    assert run.revenue_problem.startswith(
        f"no GBP rate valid on {closed.isoformat()} (opportunity {deal.pk})"
    )
    assert not RevenueSnapshot.objects.filter(week=week).exists()
    assert SegmentSnapshot.objects.filter(week=week).exists()


def _check_stored(week: str) -> None:
    """The revenue rows stored for `week` are the reference's, rounded once."""
    day = metrics.iso_week_as_of(week)
    expected = _expected_segments(_reference(day))
    stored = {
        (row.region, row.vertical, row.size_band, row.channel): row
        for row in reports.revenue_segments(week, channel="")
        + reports.revenue_rollup([week], by=metrics.SEGMENT_KEYS, by_channel=True)
    }
    assert set(stored) == set(expected)
    for key, row in stored.items():
        for column in revenue.AMOUNT_COLUMNS:
            assert getattr(row, column) == Decimal(expected[key][column]).scaleb(-2), (key, column)
        assert row.won_accounts == expected[key]["won_accounts"]
        assert row.subscribers == expected[key]["subscribers"]
        # P = MRR / U, so U x P gives MRR back to the cent.
        if row.subscribers:
            assert row.arpa is not None
            assert (row.arpa * row.subscribers).quantize(Decimal("0.01")) == row.mrr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [11, 12])
def test_it_agrees_with_the_sql_reference_on_postgresql_outside_a_transaction(seed: int) -> None:
    random_market(seed)
    days = random_revenue(seed)
    for day in days[:5]:
        counts = _segment_counts(day)
        _check(day, revenue.PreparedRevenue(**revenue_frames(day)).figures(day, counts), "week")
        # As a weekly run reads: each deal's segment from the accounts the coverage pass
        # indexed, and from the database for the accounts it does not hold.
        handed = services.metrics_week_figures(day).accounts
        assert handed is not None
        for accounts in (handed, _every_other(handed)):
            prepared = revenue.PreparedRevenue(**revenue_frames(day, accounts=accounts))
            _check(day, prepared.figures(day, counts), "week, accounts handed over")
            if programme.year_start(day).toordinal() > day.toordinal() - WON_DAYS:
                _check_sourced(day, prepared, "week, accounts handed over")


def _every_other(accounts: metrics.Accounts) -> metrics.Accounts:
    """Every other account of `accounts`, indexed alike."""
    assert accounts.lookup is not None  # a small market's ids are dense
    present = np.flatnonzero(accounts.lookup >= 0)
    ids = np.empty(accounts.size, dtype="int64")
    ids[accounts.lookup[present]] = accounts.first_id + present
    rows = np.arange(0, accounts.size, 2)
    return metrics.Accounts(
        account_id=ids[rows],
        region=accounts.regions.to_numpy()[accounts.region[rows]],
        vertical=accounts.verticals.to_numpy()[accounts.vertical[rows]],
        size_band=accounts.size_bands.to_numpy()[accounts.size_band[rows]],
    )
