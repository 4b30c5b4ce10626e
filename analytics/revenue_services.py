"""The revenue step of a weekly run: a week's revenue figures (docs/metrics.md rules 10-17) as
the rows of the revenue snapshot tables, for `analytics.services` to write in the week's
transaction, under the week's lock, beside the coverage rows.

A step is called with the as-of day and the day's coverage counts per segment (rule 15 needs
them), and answers the rows of every revenue table; for a week it cannot convert (a missing
rate, rule 10) it raises `MissingRate`, and the run then writes the coverage figures with no
revenue rows and records why (`MetricsRun.revenue_problem`).

- `revenue_from_database`: one week, reading only the deals that can count on its day;
  `revenue_read_ahead` starts its reads before the week's coverage pass, to overlap them,
  `revenue_begin` computes the rows beside the caller while it writes the week's coverage
  rows, and `revenue_write_as_ready` hands the caller each table as soon as it is computed,
  to store it while the next is computed.
- `RevenueBackfill`: many weeks, reading every deal once. Each day is computed from the same
  prepared deals and nothing carries over from one day to the next, so the weeks may be asked
  for in any order, once or twice, or split between workers, with the same rows.

Each also answers the revenue partners and reps sourced since 1 January (rule 22) from the
deals it has read, so that the programme step does not read the won deals again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from queue import SimpleQueue
from typing import cast

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import Model

from analytics import metrics, programme, revenue
from analytics.metrics import WeekFigures
from analytics.models import (
    PartnerRevenueRollup,
    PartnerRevenueSnapshot,
    RevenueForecast,
    RevenueRollup,
    RevenueSnapshot,
)
from analytics.programme_selectors import SourcedRevenue
from analytics.revenue_selectors import RevenueRead, read_revenue
from channels.rules import WON_DAYS
from crm.currencies import MissingRate

# Money columns of the figures (units, then cents) and the model fields that store them.
STORED_AS: dict[str, str] = {
    "pipeline_amount": "pipeline_cents",
    "weighted_pipeline": "weighted_pipeline_cents",
    "won_amount": "won_cents",
    "mrr": "mrr_cents",
    "influenced_amount": "influenced_cents",
    "forecast_amount": "forecast_cents",
    "white_space_value": "white_space_value_cents",
    "sales_revenue": "sales_revenue_cents",
    "target_amount": "target_cents",
}
REVENUE_MODELS: tuple[type[Model], ...] = (
    RevenueSnapshot,
    RevenueRollup,
    PartnerRevenueSnapshot,
    PartnerRevenueRollup,
    RevenueForecast,
)

# Per model: its rows and the fields they set (the week, as-of day, finality and currency
# are added by the writer).
RevenueTables = dict[type[Model], tuple[pd.DataFrame, list[str]]]


@dataclass(frozen=True)
class RevenueWeek:
    """What a step answers for a day: the rows of every revenue table, and the revenue
    partners and reps sourced since 1 January (rule 22) for the programme step, computed from
    the deals the step has read (none when they do not hold every deal won since then: the
    programme step then reads those deals itself)."""

    tables: RevenueTables
    sourced: SourcedRevenue | None = None


# A step takes the as-of day and the week's coverage figures (rule 15 reads its segment
# counts; a single week's pass hands its indexed accounts too).
RevenueStep = Callable[[date, WeekFigures], RevenueWeek]
# Takes a week's accounts as soon as its pass has indexed them (`revenue_indexed`).
AccountsIndexed = Callable[[metrics.Accounts], None]


def _stored(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    cents = revenue.in_cents(frame[columns]).rename(columns=STORED_AS)
    return cents, [STORED_AS.get(column, column) for column in columns]


_ROWS = [*revenue.ROW_KEYS, *revenue.FIGURE_COLUMNS]
# Per `revenue.WeekRevenue` field: the model storing it and its columns.
_TABLES: dict[str, tuple[type[Model], list[str]]] = {
    "segments": (RevenueSnapshot, _ROWS),
    "rollups": (RevenueRollup, _ROWS),
    "partners": (PartnerRevenueSnapshot, revenue.PARTNER_COLUMNS),
    "partner_rollups": (PartnerRevenueRollup, revenue.PARTNER_ROLLUP_COLUMNS),
    "forecast": (RevenueForecast, revenue.FORECAST_COLUMNS),
}


def revenue_tables(figures: revenue.WeekRevenue) -> RevenueTables:
    """A week's revenue figures as rows per revenue model, money in cents."""
    return {
        model: _stored(getattr(figures, name), columns)
        for name, (model, columns) in _TABLES.items()
    }


def no_revenue_tables() -> RevenueTables:
    """Empty rows for every revenue model: a week written without revenue figures."""
    return {model: (pd.DataFrame(), []) for model in REVENUE_MODELS}


def revenue_common() -> dict[str, str]:
    """The values every revenue row of a run carries besides the week's."""
    return {"currency": settings.REPORTING_CURRENCY}


def _sourced_this_year(prepared: revenue.PreparedRevenue, as_of: date) -> SourcedRevenue | None:
    """Rule 22's revenue on `as_of` from the `prepared` deals (which must hold every deal won
    since 1 January), as the programme step takes it; none when a deal's rate is missing (the
    programme step then reads the deals and says so itself)."""
    try:
        sourced = prepared.sourced(programme.year_start(as_of), as_of)
    except MissingRate:
        return None
    return SourcedRevenue(
        {pk: Decimal(cents).scaleb(-2) for pk, cents in sourced.partners.items()},
        {pk: Decimal(cents).scaleb(-2) for pk, cents in sourced.reps.items()},
    )


def revenue_from_database(as_of: date, week: WeekFigures) -> RevenueWeek:
    """One week's revenue rows, reading only the deals that can count on `as_of` (their
    segments from the accounts the week's pass indexed, and rule 16's coverage from the
    assignments it read, when it hands them), and the programme's revenue since 1 January
    from the same deals: they hold every deal won in the 52 weeks ending on `as_of`, so every
    deal won this year but on 30 and 31 December. Raises MissingRate."""
    influencing = week.influencing if connection.vendor == "postgresql" else None
    read = read_revenue(as_of, joined=week.accounts is None, with_coverage=influencing is None)
    return _week_revenue(read, as_of, week.accounts, week.segments, influencing=influencing)


def _week_revenue(
    read: RevenueRead,
    as_of: date,
    accounts: metrics.Accounts | None,
    segments: pd.DataFrame | Callable[[], pd.DataFrame],
    ready: Callable[[RevenueTables], None] | None = None,
    *,
    influencing: dict[str, np.ndarray] | None = None,
) -> RevenueWeek:
    """`revenue_from_database` from what it has read, the week's `accounts` as its pass
    indexed them and its `segments` counts (rule 15), or what answers them once the pass is
    done: they are asked for last. `ready`, when given, is called with each table as soon as
    it is computed. `influencing`: the assignments the week's pass read for rule 16, for a
    read made without coverage (`RevenueRead.covered_in_window`)."""
    if influencing is None:
        frames = read.frames(accounts)
    else:
        # The coverage of the won deals' accounts picked out on a thread of its own while
        # the deals are indexed: neither needs the other.
        with ThreadPoolExecutor(max_workers=1) as pool:
            covered = pool.submit(read.covered_in_window, influencing, as_of)
            frames = read.frames(accounts)
            frames["coverage"] = covered.result().coverage
    prepared = revenue.PreparedRevenue(**frames)
    tables: RevenueTables = {}
    for name, frame in prepared.figures_as_ready(as_of, segments):
        model, columns = _TABLES[name]
        tables[model] = _stored(frame, columns)
        if ready is not None:
            ready({model: tables[model]})
    first_won = as_of - timedelta(days=WON_DAYS - 1)
    if programme.year_start(as_of) < first_won:
        return RevenueWeek(tables)
    return RevenueWeek(tables, _sourced_this_year(prepared, as_of))


def _read_on_own_connection(as_of: date, with_coverage: bool) -> RevenueRead:
    """`read_revenue(as_of)` without the deals' segments, for the figures of `as_of` alone, on
    this thread's own connection, closed afterwards; without `with_coverage`, without the
    coverage either (the week's pass reads rule 16's assignments with its own)."""
    try:
        return read_revenue(as_of, joined=False, with_coverage=with_coverage, for_the_day=True)
    finally:
        connection.close()


# What `_ReadAhead`'s thread hands over when it has computed every table (or failed).
_COMPUTED = object()


class _ReadAhead:
    """`revenue_from_database` with the reads of `as_of` started on a thread of its own
    (`pool`'s one worker), on connections of their own. Called with the week's figures, it
    computes the rows from those reads; `begin` starts that computation on the same thread,
    after the reads, so that the caller can write the week's coverage rows meanwhile, and
    `written` hands the caller each table as soon as it is computed.

    With the coverage read here (`with_coverage`), the computation starts earlier still:
    `indexed` takes the week's accounts as soon as the pass has indexed them, and everything
    but the segments' rows is computed while the pass goes on; those wait for the pass's
    counts, which `begin` hands over (`leave` gives up on them if it never comes)."""

    def __init__(self, pool: ThreadPoolExecutor, as_of: date) -> None:
        self.pool = pool
        self.as_of = as_of
        # With the deals kept (`settings.METRICS_KEEP_DEALS`) the won ones are known at once:
        # their accounts' coverage is read here, beside the pass, which then reads only the
        # running assignments (`services._week_figures_with_revenue`).
        self.with_coverage = settings.METRICS_KEEP_DEALS
        self.read = pool.submit(_read_on_own_connection, as_of, self.with_coverage)
        self.begun: tuple[date, WeekFigures, Future[RevenueWeek]] | None = None
        self.tables: SimpleQueue[RevenueTables | object] = SimpleQueue()
        self.early: tuple[metrics.Accounts, Future[RevenueWeek]] | None = None
        self.week: Future[WeekFigures] = Future()

    def indexed(self, accounts: metrics.Accounts) -> None:
        """Start computing the week's rows from the pass's `accounts` (see the class;
        `revenue_indexed` hands this over only when the coverage is read here)."""
        if self.early is None:
            self.early = (accounts, self.pool.submit(self._early_on_own_connection, accounts))

    def _early_on_own_connection(self, accounts: metrics.Accounts) -> RevenueWeek:
        try:
            read = self.read.result()
            return _week_revenue(read, self.as_of, accounts, self._segments, self.tables.put)
        finally:
            self.tables.put(_COMPUTED)
            connection.close()

    def _segments(self) -> pd.DataFrame:
        return self.week.result().segments

    def leave(self) -> None:
        """Give up on a week's figures `begin` never handed over (the pass failed), so that
        a computation started early stops."""
        if not self.week.done():
            self.week.set_exception(RuntimeError(f"the week's pass as of {self.as_of} failed"))

    def begin(self, day: date, week: WeekFigures) -> None:
        if self.early is not None:
            accounts, early = self.early
            if day == self.as_of and week.accounts is accounts and not self.week.done():
                self.week.set_result(week)
                self.begun = (day, week, early)
                return
            # Not the figures it started on: given up, and computed afresh after it.
            self.leave()
            self.early = None
            self.tables = SimpleQueue()
        self.begun = (day, week, self.pool.submit(self._on_own_connection, day, week))

    def _on_own_connection(self, day: date, week: WeekFigures) -> RevenueWeek:
        try:
            return self._computed(day, week, self.tables.put)
        finally:
            self.tables.put(_COMPUTED)
            connection.close()

    def _computed(
        self,
        day: date,
        week: WeekFigures,
        ready: Callable[[RevenueTables], None] | None = None,
    ) -> RevenueWeek:
        read = self.read.result()
        influencing = None if self.with_coverage else week.influencing
        if (
            day != self.as_of
            or week.accounts is None
            or (influencing is None and not self.with_coverage)
        ):
            # Not the day read, or no accounts to name the deals' segments or assignments for
            # rule 16: read afresh.
            return self._afresh(day, week, ready)
        try:
            return _week_revenue(
                read, day, week.accounts, week.segments, ready, influencing=influencing
            )
        except MissingRate:
            # Raised before any table was handed over. The deals were read without their ids
            # (`read_revenue(for_the_day=True)`): read afresh, to name the deal.
            return self._afresh(day, week, ready)

    @staticmethod
    def _afresh(
        day: date, week: WeekFigures, ready: Callable[[RevenueTables], None] | None
    ) -> RevenueWeek:
        computed = revenue_from_database(day, week)
        if ready is not None:
            ready(computed.tables)
        return computed

    def _started(self, day: date, week: WeekFigures) -> Future[RevenueWeek] | None:
        if self.begun is not None and self.begun[0] == day and self.begun[1] is week:
            return self.begun[2]
        return None

    def __call__(self, day: date, week: WeekFigures) -> RevenueWeek:
        started = self._started(day, week)
        if started is not None:
            return started.result()
        return self._computed(day, week)

    def written(
        self, day: date, week: WeekFigures, write: Callable[[RevenueTables], None]
    ) -> RevenueWeek:
        """`revenue_write_as_ready` of this step."""
        started = self._started(day, week)
        if started is None:
            return self._computed(day, week, write)
        while (tables := self.tables.get()) is not _COMPUTED:
            write(cast(RevenueTables, tables))
        return started.result()


@contextmanager
def revenue_read_ahead(step: RevenueStep | None, as_of: date) -> Iterator[RevenueStep | None]:
    """`step`, with its reads started now on connections of their own when it is
    `revenue_from_database` and they can be (PostgreSQL, no transaction open, parallel reads
    on): the week's coverage pass then computes while the database reads the deals, on the
    other core. The reads are in a snapshot of their own, as `revenue_from_database`'s are;
    the step called with the week's figures computes from them the same rows. Leaving waits
    for the reads (and for the computation `revenue_begin` started)."""
    if (
        step is not revenue_from_database
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not settings.METRICS_PARALLEL_READ
    ):
        yield step
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = _ReadAhead(pool, as_of)
        try:
            yield ahead
        finally:
            ahead.leave()


def revenue_write_as_ready(
    step: RevenueStep, as_of: date, week: WeekFigures, write: Callable[[RevenueTables], None]
) -> RevenueWeek:
    """`step(as_of, week)`, calling `write` (on the caller's thread) with its tables: each as
    soon as it is computed when `step` computes beside the caller (`revenue_begin`), so that
    the caller stores one while the next is computed; otherwise all of them once computed.
    Raises what the step raises (MissingRate), maybe after some tables were written."""
    if isinstance(step, _ReadAhead):
        return step.written(as_of, week, write)
    computed = step(as_of, week)
    write(computed.tables)
    return computed


def revenue_indexed(step: RevenueStep | None, as_of: date) -> AccountsIndexed | None:
    """What takes the week's accounts as soon as its pass as of `as_of` has indexed them, for
    `step` to start computing on (`revenue_read_ahead` with the deals kept); None when `step`
    would not."""
    if isinstance(step, _ReadAhead) and step.with_coverage and step.as_of == as_of:
        return step.indexed
    return None


def revenue_begin(step: RevenueStep, as_of: date, week: WeekFigures) -> None:
    """Start computing `step(as_of, week)` now, beside the caller, when `step` reads ahead
    (`revenue_read_ahead`): the caller's next call of `step` with the same day and figures
    then answers those rows (or raises what the computation raised). Other steps compute
    when called, as before."""
    if isinstance(step, _ReadAhead):
        step.begin(as_of, week)


class RevenueBackfill:
    """Every deal read and prepared once (the influence on each won deal included); each
    call gives one day's revenue rows and the programme's revenue since 1 January. Raises
    MissingRate from a call.

    `read`: what `read_revenue()` read (read now when not given); `accounts`: the backfill's
    market, which names each deal's segment when the read did not (`joined=False`);
    `coverage`: the market's every assignment, for a read made without coverage
    (`with_coverage=False`); `days`: how many days will be asked
    (`PreparedRevenue.sweep_ready`)."""

    def __init__(
        self,
        read: RevenueRead | None = None,
        accounts: metrics.Accounts | None = None,
        coverage: pd.DataFrame | None = None,
        *,
        days: int,
    ) -> None:
        if read is None:
            read = read_revenue(joined=accounts is None)
        elif coverage is not None:
            read = read.covered_by(coverage)
        self.prepared = revenue.PreparedRevenue(**read.frames(accounts), many_days=True)
        # The sums kept from day to day, set up here: on the read-ahead thread when there is one.
        self.prepared.sweep_ready(days)

    def __call__(self, as_of: date, week: WeekFigures) -> RevenueWeek:
        if not self.prepared.size:
            # No deal at all: no revenue row on any day, and nothing sourced.
            return RevenueWeek(no_revenue_tables(), SourcedRevenue({}, {}))
        tables = revenue_tables(self.prepared.figures(as_of, week.segments))
        return RevenueWeek(tables, _sourced_this_year(self.prepared, as_of))


def _read_all_on_own_connection() -> RevenueRead:
    """`read_revenue()` without the deals' segments or the coverage (the backfill reads every
    assignment with its market), on this thread's own connection, closed afterwards."""
    try:
        return read_revenue(joined=False, with_coverage=False)
    finally:
        connection.close()


# Makes a backfill's revenue step from its market's accounts and every assignment.
BackfillStep = Callable[[metrics.Accounts, pd.DataFrame], RevenueStep]


def _prepared_on_own_connection(
    read: Future[RevenueRead], accounts: metrics.Accounts, coverage: pd.DataFrame, days: int
) -> RevenueBackfill:
    """`RevenueBackfill` of the `read` deals (naming a deal's segment may look its account
    up), on this thread's own connection, closed afterwards."""
    try:
        return RevenueBackfill(read.result(), accounts, coverage, days=days)
    finally:
        connection.close()


class _PreparedAhead:
    """A backfill's revenue step whose deals are prepared on the read-ahead thread
    (`backfill_read_ahead`): a call waits for them."""

    def __init__(self, prepared: Future[RevenueBackfill]) -> None:
        self.prepared = prepared

    def __call__(self, as_of: date, week: WeekFigures) -> RevenueWeek:
        return self.prepared.result()(as_of, week)


def revenue_ready(step: RevenueStep) -> bool:
    """Whether a call of the revenue `step` starts computing at once: not while a backfill's
    deals are still being prepared on the read-ahead thread (`backfill_read_ahead`)."""
    return not isinstance(step, _PreparedAhead) or step.prepared.done()


@contextmanager
def backfill_read_ahead(revenue: bool, days: int) -> Iterator[BackfillStep]:
    """A maker of the revenue step of a backfill of `days` days from its market's accounts
    and coverage, with
    every deal's read started now on a connection of its own when it can be (as
    `revenue_read_ahead`): the database reads the deals while the backfill reads and prepares
    its market, whose coverage the step then takes rather than reading it again; the deals are
    then prepared on the same thread while the backfill sweeps its market, and the step's
    first call waits for them. Without `revenue` nothing is read. Leaving waits for the read
    (and, on an error, for the preparation)."""
    if (
        not revenue
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not settings.METRICS_PARALLEL_READ
    ):
        yield lambda accounts, coverage: RevenueBackfill(accounts=accounts, days=days)
        return
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pending = pool.submit(_read_all_on_own_connection)
        yield lambda accounts, coverage: _PreparedAhead(
            pool.submit(_prepared_on_own_connection, pending, accounts, coverage, days)
        )
        pending.result()
    except BaseException:
        pool.shutdown(wait=True)
        raise
    # The preparation goes on beside the caller; the step's call waits for it.
    pool.shutdown(wait=False)
