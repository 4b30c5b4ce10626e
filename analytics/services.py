"""Writes for the metrics: compute a week and replace its snapshot rows.

A week's rows are replaced in one transaction, so readers see the old week or the new one and
running a week twice gives identical rows. Each attempt leaves a `MetricsRun` row; a lock per
week (Redis or the database, see `analytics.locks`) keeps two runs of one week from overlapping.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Protocol, TypedDict, cast

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from analytics import (
    metrics,
    registration_metrics,
    registration_selectors,
    reports,
    revenue_selectors,
    selectors,
)
from analytics.locks import LockBusy, named_lock
from analytics.models import (
    FeedbackRollup,
    MetricsRun,
    PartnerRollup,
    PartnerSnapshot,
    RegistrationRollup,
    RunStatus,
    SegmentRollup,
    SegmentSnapshot,
)
from analytics.programme_selectors import SourcedRevenue
from analytics.programme_services import (
    ProgrammeWeek,
    programme_compute_weeks,
    programme_day_reads,
    programme_read_ahead,
    programme_week,
)
from analytics.revenue_services import (
    REVENUE_MODELS,
    AccountsIndexed,
    RevenueStep,
    RevenueTables,
    RevenueWeek,
    backfill_read_ahead,
    no_revenue_tables,
    revenue_begin,
    revenue_common,
    revenue_from_database,
    revenue_indexed,
    revenue_read_ahead,
    revenue_ready,
    revenue_write_as_ready,
)
from analytics.routers import primary_reads
from analytics.writes import Cell, Column, Rows, RowsStream, replace_week_tables
from crm.currencies import MissingRate

logger = logging.getLogger(__name__)

__all__ = [
    "LockBusy",
    "MetricsRunInProgress",
    "metrics_as_of",
    "metrics_compute_week",
    "metrics_compute_weeks",
    "metrics_day_counts",
    "metrics_week_figures",
    "metrics_region_part",
    "metrics_rollups_rebuild",
    "metrics_merge_week",
]

WeekFigures = metrics.WeekFigures


class MetricsRunInProgress(LockBusy):
    """Another run of the same week holds its lock."""


def _lock_seconds() -> int:
    # Longer than the task's hard time limit, so a live run never outlasts its lock.
    return int(getattr(settings, "METRICS_LOCK_SECONDS", 30 * 60))


def metrics_as_of(*, week: str, final: bool, today: date | None = None) -> date:
    """The as-of date of a run (docs/metrics.md rule 0): the week's Sunday when final; for a
    provisional run, today when the week has not ended yet (a provisional week never counts
    days that have not happened).

    Raises ValueError on a malformed week.
    """
    sunday = metrics.iso_week_as_of(week)
    if final:
        return sunday
    return min(sunday, today or timezone.localdate())


def _snapshot_rows(frame: pd.DataFrame, fields: list[str], **common: Cell) -> Rows:
    """`frame`'s `fields` as Python values (NaN as None) plus the `common` values on every
    row."""
    columns: dict[str, Column] = {
        field: (
            frame[field].astype(object).where(frame[field].notna(), None).tolist()
            if frame[field].dtype.kind in "fO"
            else frame[field].tolist()
        )
        for field in fields
    }
    count = len(frame)
    columns.update({name: [value] * count for name, value in common.items()})
    return Rows(columns, count)


def _snapshot_arrays(frame: pd.DataFrame, fields: list[str], **common: Cell) -> Rows:
    """`_snapshot_rows` with `frame`'s columns kept as arrays (NaN for null), which a
    backfill's `COPY` packs without a Python object per value."""
    columns: dict[str, Column] = {field: frame[field].to_numpy() for field in fields}
    count = len(frame)
    columns.update({name: [value] * count for name, value in common.items()})
    return Rows(columns, count)


@dataclass(frozen=True)
class WeekInputs:
    """What a week's rows are made of: the week, its as-of day and whether it is final, the
    figures of its pass, its revenue tables, and the registrations a backfill read once for
    many weeks (None: the week reads its own)."""

    week: str
    as_of: date
    final: bool
    figures: WeekFigures
    revenue: RevenueTables
    registrations: RegistrationsRead | None = None


def _week_rows(inputs: WeekInputs) -> dict[type[Model], Rows]:
    """A week's rows by model: its snapshots, rollups and revenue rows."""
    return {
        **_coverage_rows(inputs),
        **_revenue_rows(inputs.week, inputs.as_of, inputs.final, inputs.revenue),
    }


def _coverage_rows(inputs: WeekInputs) -> dict[type[Model], Rows]:
    """A week's rows by model but its revenue rows: its snapshots and rollups."""
    week, as_of, final, figures = inputs.week, inputs.as_of, inputs.final, inputs.figures
    common: dict[str, Cell] = {"week": week, "as_of": as_of, "final": final}
    segment_fields = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS, *metrics.RATIO_COLUMNS]
    rollups = (figures.segment_rollups, figures.partner_rollups, figures.feedback_rollups)
    return {
        SegmentSnapshot: _snapshot_arrays(figures.segments, segment_fields, **common),
        PartnerSnapshot: _snapshot_arrays(figures.partners, metrics.PARTNER_COLUMNS, **common),
        **_rollup_rows(*rollups, **common),
        **registration_rollup_rows(
            week=week, as_of=as_of, final=final, registrations=inputs.registrations
        ),
    }


def _revenue_rows(
    week: str, as_of: date, final: bool, tables: RevenueTables
) -> dict[type[Model], Rows]:
    """A week's revenue rows by model."""
    common: dict[str, Cell] = {"week": week, "as_of": as_of, "final": final}
    return {
        model: _snapshot_arrays(frame, fields, **common, **revenue_common())
        for model, (frame, fields) in tables.items()
    }


def _counted_rows(rows: dict[type[Model], Rows]) -> int:
    """The rows a run reports written: its snapshot and revenue rows (not the rollups)."""
    return sum(len(model_rows) for model, model_rows in rows.items() if model in _COUNTED)


# The models of a week's rows (`_week_rows`), which a backfill replaces.
WEEK_MODELS: tuple[type[Model], ...] = (
    SegmentSnapshot,
    PartnerSnapshot,
    SegmentRollup,
    PartnerRollup,
    FeedbackRollup,
    RegistrationRollup,
    *REVENUE_MODELS,
)

# The models whose rows a run counts as written (`MetricsRun.rows_written`).
_COUNTED: frozenset[type[Model]] = frozenset({SegmentSnapshot, PartnerSnapshot, *REVENUE_MODELS})

_SEGMENT_ROLLUP_FIELDS = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]


def _rollup_rows(
    segment_rollups: pd.DataFrame,
    partner_rollups: pd.DataFrame,
    feedback_rollups: pd.DataFrame,
    /,
    **common: Cell,
) -> dict[type[Model], Rows]:
    """The rows of a week's rollups, by model."""
    return {
        SegmentRollup: _snapshot_arrays(segment_rollups, _SEGMENT_ROLLUP_FIELDS, **common),
        PartnerRollup: _snapshot_arrays(partner_rollups, metrics.PARTNER_ROLLUP_COLUMNS, **common),
        FeedbackRollup: _snapshot_arrays(
            feedback_rollups, metrics.FEEDBACK_ROLLUP_COLUMNS, **common
        ),
    }


@dataclass(frozen=True)
class RegistrationsRead:
    """The registrations submitted, decided or won from `first` to `last`
    (`registration_selectors.registrations_frame`), read once for every week of a backfill
    whose days fall in that range."""

    first: date
    last: date
    frame: pd.DataFrame

    @classmethod
    def of_days(cls, days: Sequence[date]) -> RegistrationsRead:
        """The registrations of the weeks of `days` (as-of days), from the first one's Monday."""
        first = min(days) - timedelta(days=min(days).weekday())
        return cls(first, max(days), registration_selectors.registrations_frame(first, max(days)))

    def frame_of(self, first: date, last: date) -> pd.DataFrame:
        """The registrations of `first` to `last`: rows of this read when it spans those days
        (the rollups pick each week's own), else a read of their own."""
        if self.first <= first and last <= self.last:
            return self.frame
        return registration_selectors.registrations_frame(first, last)


def registration_rollup_rows(
    *, week: str, as_of: date, final: bool, registrations: RegistrationsRead | None = None
) -> dict[type[Model], Rows]:
    """The week's deal registration rollups (docs/metrics.md rule 18), from the registrations
    of its Monday to `as_of` (taken from `registrations` when it spans them, else read), then
    `registration_metrics.registration_rollups`."""
    first = as_of - timedelta(days=as_of.weekday())
    frame = (
        registrations.frame_of(first, as_of)
        if registrations is not None
        else registration_selectors.registrations_frame(first, as_of)
    )
    rollups = registration_metrics.registration_rollups(frame, first, as_of)
    columns = registration_metrics.REGISTRATION_ROLLUP_COLUMNS
    return {
        RegistrationRollup: _snapshot_rows(rollups, columns, week=week, as_of=as_of, final=final)
    }


def _replace_week(week: str, rows: dict[type[Model], Rows]) -> None:
    """Replace the week's rows of each model with the rows given, in one transaction
    (`writes.replace_week_tables`: rewritten in place where the week has rows already)."""
    with transaction.atomic():
        replace_week_tables(week, rows)


def metrics_rollups_rebuild(weeks: Iterable[str]) -> int:
    """Rewrite the rollup rows of `weeks` from their stored snapshot rows (the feedback and deal
    registration rollups from the feedback and registrations of each week), for snapshots
    written without them. Returns the number of rollup rows written."""
    with primary_reads():  # it reads back the rows it writes
        return _rollups_rebuild(weeks)


def _rollups_rebuild(weeks: Iterable[str]) -> int:
    written = 0
    for week in weeks:
        stored = reports.stored_week(week)
        common: dict[str, Cell] = {"week": week}
        rollups = (
            pd.DataFrame(columns=_SEGMENT_ROLLUP_FIELDS),
            pd.DataFrame(columns=metrics.PARTNER_ROLLUP_COLUMNS),
            pd.DataFrame(columns=metrics.FEEDBACK_ROLLUP_COLUMNS),
        )
        if stored is not None:  # else the week has no snapshot rows to roll up
            as_of = common["as_of"] = stored.as_of
            common["final"] = stored.final
            rollups = metrics.week_rollups(
                pd.DataFrame(reports.segments(week), columns=reports.SegmentFigures._fields),
                pd.DataFrame(reports.partners(week), columns=reports.PartnerFigures._fields),
                selectors.feedback_frame(since=as_of - timedelta(days=as_of.weekday())),
                as_of,
            )
        rows = _rollup_rows(*rollups, **common)
        if stored is not None:
            rows.update(registration_rollup_rows(week=week, as_of=as_of, final=stored.final))
        else:
            rows[RegistrationRollup] = Rows({}, 0)
        _replace_week(week, rows)
        written += sum(len(model_rows) for model_rows in rows.values())
    return written


class WeekCompute(Protocol):
    """How a single week's run computes its coverage figures as of a day: `indexed`, when
    given, is called with the week's accounts as soon as they are indexed, before the figures
    are done (a revenue step reading ahead starts on them, `revenue_indexed`)."""

    def __call__(self, as_of: date, *, indexed: AccountsIndexed | None = None) -> WeekFigures: ...


def _run_week(
    *,
    week: str,
    final: bool,
    compute: WeekCompute,
    revenue: RevenueStep | None = revenue_from_database,
    registrations: RegistrationsRead | None = None,
) -> MetricsRun:
    as_of = metrics_as_of(week=week, final=final)
    try:
        with named_lock(f"metrics:week:{week}", ttl_seconds=_lock_seconds()), primary_reads():
            return _run_locked(
                week=week,
                as_of=as_of,
                final=final,
                compute=compute,
                revenue=revenue,
                registrations=registrations,
            )
    except LockBusy as busy:
        raise MetricsRunInProgress(f"a run of {week} is in progress; try again later") from busy


def _revenue_or_problem(
    revenue: RevenueStep, as_of: date, figures: WeekFigures
) -> tuple[RevenueWeek, str]:
    """The week's revenue rows; none, and why, when a rate is missing (docs/metrics.md rule
    10: a figure is never converted at 0, and the coverage figures are written all the same)."""
    try:
        return revenue(as_of, figures), ""
    except MissingRate as missing:
        logger.warning("metrics as of %s: no revenue figures: %s", as_of, missing)
        return RevenueWeek(no_revenue_tables()), str(missing)


def _revenue_written(
    revenue: RevenueStep | None, week: str, as_of: date, final: bool, figures: WeekFigures
) -> tuple[RevenueWeek, str, dict[type[Model], Rows]]:
    """`_revenue_or_problem` with the week's revenue rows written too (in the caller's
    transaction), each table as soon as the step has computed it
    (`revenue_write_as_ready`); with a missing rate those written are taken back and the
    week has no revenue rows, as without a step. Returns the rows written besides."""
    written: dict[type[Model], Rows] = {}

    def write(tables: RevenueTables) -> None:
        rows = _revenue_rows(week, as_of, final, tables)
        _replace_week(week, rows)
        written.update(rows)

    problem = ""
    if revenue is not None:
        try:
            # A savepoint: a rate found missing after some tables were written takes them back.
            with transaction.atomic():
                return revenue_write_as_ready(revenue, as_of, figures, write), "", written
        except MissingRate as missing:
            logger.warning("metrics as of %s: no revenue figures: %s", as_of, missing)
            problem = str(missing)
    written.clear()
    write(no_revenue_tables())
    return RevenueWeek(no_revenue_tables()), problem, written


def _run_locked(
    *,
    week: str,
    as_of: date,
    final: bool,
    compute: WeekCompute,
    revenue: RevenueStep | None = revenue_from_database,
    registrations: RegistrationsRead | None = None,
) -> MetricsRun:
    """One run of the week under its lock; `revenue` None: the coverage figures alone, no
    revenue rows and none of the programme's revenue figures (a benchmark's baseline)."""
    # We hold the week's lock, so any run still marked running died before finishing.
    MetricsRun.objects.filter(week=week, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error="abandoned: the process stopped before finishing",
    )
    run = MetricsRun.objects.create(week=week, as_of=as_of, final=final, started_at=timezone.now())
    started = time.monotonic()
    try:
        # The revenue step's reads run while the coverage pass computes; the revenue figures
        # are computed beside it, when they can, while the week's coverage rows are written.
        # The programme step's own reads run while those rows are written: the database
        # writes on one core, and started with the pass they slowed its reads (at 1M
        # accounts the pass waits on the cores, not on the database).
        with revenue_read_ahead(revenue, as_of) as step:
            figures = compute(as_of, indexed=revenue_indexed(step, as_of))
            if step is not None:
                revenue_begin(step, as_of, figures)
            with programme_read_ahead(week, as_of) as programme_reads:
                coverage_rows = _coverage_rows(
                    WeekInputs(week, as_of, final, figures, no_revenue_tables(), registrations)
                )
                with transaction.atomic():
                    _replace_week(week, coverage_rows)
                    revenue_week, run.revenue_problem, revenue_rows = _revenue_written(
                        step, week, as_of, final, figures
                    )
        rows = _counted_rows({**coverage_rows, **revenue_rows})
        # The partner programme's step follows the week just written (docs/metrics.md
        # 20-23). The counts and partner figures the week's pass found on its way, the
        # revenue sourced this year the revenue step found, and the programme's own reads
        # made while the pass computed, are handed over, not read again.
        rows += programme_week(
            week=week,
            as_of=as_of,
            final=final,
            revenue=revenue is not None and not run.revenue_problem,
            counts=figures.programme,
            sourced=revenue_week.sourced,
            partners=figures.partners,
            reads=programme_reads(),
        )
    except BaseException as error:
        run.status = RunStatus.FAILED
        run.error = f"{type(error).__name__}: {error}"[:5000]
        run.finished_at = timezone.now()
        run.seconds = time.monotonic() - started
        run.save(update_fields=["status", "error", "finished_at", "seconds", "updated_at"])
        raise
    run.status = RunStatus.SUCCEEDED
    run.rows_written = rows
    run.finished_at = timezone.now()
    run.seconds = time.monotonic() - started
    run.save(
        update_fields=[
            "status",
            "rows_written",
            "finished_at",
            "seconds",
            "revenue_problem",
            "updated_at",
        ]
    )
    logger.info("metrics %s (%s): %d rows in %.2f s", week, as_of, rows, run.seconds)
    return run


def metrics_day_counts(
    as_of: date, *, region_ids: Sequence[int] | None = None, parallel: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, selectors.WeekContext]:
    """The mask groups and partner coverage counts of `as_of` (`metrics.Accounts.count`) from
    one read of the database (`selectors.week_read`), with the day's small tables; only the
    accounts of `region_ids` when given. Writes nothing."""
    groups, coverage, context, *_ = _day_counts(as_of, region_ids=region_ids, parallel=parallel)
    return groups, coverage, context


def _day_counts(
    as_of: date,
    *,
    region_ids: Sequence[int] | None,
    parallel: bool,
    influence: bool = False,
    indexed: AccountsIndexed | None = None,
) -> tuple[
    pd.DataFrame,
    pd.DataFrame,
    selectors.WeekContext,
    metrics.ProgrammeCounts | None,
    metrics.Accounts,
    dict[str, np.ndarray] | None,
]:
    """`metrics_day_counts`, and for the whole market (no `region_ids`) the partner
    programme's counts found on the way (`metrics.Accounts.programme_counts`); and the
    accounts as indexed, with `influence` the assignments the revenue step's rule 16 reads
    (`selectors.week_read`). `indexed` is called with the accounts once indexed."""
    with selectors.week_read(
        as_of, region_ids=region_ids, parallel=parallel, influence=influence
    ) as read:
        rows = read.accounts
        # Indexed while the assignments may still be on their way (kept accounts come indexed).
        accounts = rows.indexed or metrics.Accounts(
            account_id=rows.account_id,
            region=rows.region,
            vertical=rows.vertical,
            size_band=rows.size_band,
        )
        if indexed is not None:
            indexed(accounts)
        running = read.assignments()
        # Joined while the small tables may still be on their way (kept ones come joined).
        assignments = running.indexed or accounts.assignments(
            account_id=running.account_id, kind=running.kind, partner_id=running.partner_id
        )
        # Counted while the partners and the feedback may still be on their way.
        counted = read.counted()
        day = metrics.DayStates.from_codes(rows.state)
        granted = metrics.grant_table(
            in_force=metrics.agreements_in_force(counted.agreements, as_of),
            agreement_regions=counted.agreement_regions,
            agreement_verticals=counted.agreement_verticals,
            partners=assignments.partners,
            regions=accounts.regions,
            verticals=accounts.verticals,
        )
        # The covering rows found once, for the counts and the programme's counts alike.
        covered = accounts.covering(day, assignments, granted, running=running.running)
        groups, coverage = accounts.count(day, assignments, granted, covered=covered)
        groups["region"] = groups["region"].map(counted.region_codes)
        groups["vertical"] = groups["vertical"].map(counted.vertical_codes)
        context = read.context()
    programme_counts = None
    if region_ids is None:
        programme_counts = accounts.programme_counts(
            day,
            assignments,
            granted,
            rep_id=running.rep_id,
            in_window=rows.converted_in_window,
            in_year=rows.converted_in_year,
            covered=covered,
        )
        programme_counts = replace(programme_counts, feedback=context.feedback)
    return groups, coverage, context, programme_counts, accounts, running.influencing


def _figures(
    groups: pd.DataFrame, coverage: pd.DataFrame, context: selectors.WeekContext, as_of: date
) -> WeekFigures:
    return metrics.week_figures(
        groups=groups,
        partner_coverage=coverage,
        agreements=context.agreements,
        partners=context.partners,
        feedback=context.feedback,
        d=as_of,
    )


def metrics_week_figures(
    as_of: date, *, influence: bool = False, indexed: AccountsIndexed | None = None
) -> WeekFigures:
    """Everything the snapshot of the week as of `as_of` stores, read from the database, with
    the partner programme's counts found on the way (`WeekFigures.programme`); with
    `influence`, for a week with revenue, the assignments its rule 16 reads, in the same scan
    (`WeekFigures.influencing`); `indexed` is called with the accounts as soon as they are
    indexed (`WeekCompute`). Writes nothing."""
    groups, coverage, context, programme_counts, accounts, influencing = _day_counts(
        as_of,
        region_ids=None,
        parallel=settings.METRICS_PARALLEL_READ,
        influence=influence,
        indexed=indexed,
    )
    figures = _figures(groups, coverage, context, as_of)
    return replace(figures, programme=programme_counts, accounts=accounts, influencing=influencing)


def _week_figures_with_revenue(
    as_of: date, *, indexed: AccountsIndexed | None = None
) -> WeekFigures:
    """`metrics_week_figures` for a week whose revenue step follows: with deals, unless the
    step has them at once from those it keeps (`settings.METRICS_KEEP_DEALS`) and reads the
    coverage of the won ones' accounts itself beside the pass, the pass also reads the
    assignments of rule 16's window, which the step takes instead of scanning the coverage
    again; in a market without any, the pass reads only the running ones."""
    influence = not settings.METRICS_KEEP_DEALS and revenue_selectors.has_deals()
    return metrics_week_figures(as_of, influence=influence, indexed=indexed)


def metrics_compute_week(*, week: str, final: bool, revenue: bool = True) -> MetricsRun:
    """Compute `week` ("2026-W46") and replace its snapshot rows in one transaction.

    Final runs are as of the week's Sunday; provisional runs as of `metrics_as_of`. The database
    evaluates the date tests and sends integers; numpy and pandas join and count
    (`selectors.week_read`), and `analytics.metrics` computes everything in one pass.
    Returns the succeeded `MetricsRun`. Raises ValueError on a malformed week,
    MetricsRunInProgress when another run of the week holds its lock, and re-raises any error
    of the computation after recording the run as failed (the previous rows stay in place).
    With `revenue=False` the week is written with no revenue rows and the programme's figures
    without revenue (the coverage alone: a benchmark's baseline).
    """
    if not revenue:
        return _run_week(week=week, final=final, compute=metrics_week_figures, revenue=None)
    return _run_week(week=week, final=final, compute=_week_figures_with_revenue)


def metrics_compute_weeks(
    *,
    weeks: Sequence[str],
    final_weeks: Iterable[str],
    progress: Callable[[str], object] | None = None,
    revenue: bool = True,
) -> list[MetricsRun]:
    """Compute several weeks, loading the market once and sweeping their as-of dates in one
    pass over its dated rows (`metrics.MarketSweep`), and write them all in one transaction.

    Weeks in `final_weeks` are final, the rest provisional. Every week gets the rows and the
    `MetricsRun` that `metrics_compute_week` would give it, under its own lock (all of them held
    while the backfill runs); the weeks' old rows are deleted, their new rows written in one
    transaction (on PostgreSQL each week's rows of a table in one binary `COPY`, sent with
    their foreign keys checked while the next weeks are computed: `writes.RowsStream`), then
    each week's programme step runs in week order, as it reads the weeks before it.
    `progress` is called with each week once its programme step is done.
    Raises like `metrics_compute_week`; a failing week fails the whole backfill, which then
    writes nothing (every week keeps the rows it had; each run is recorded as failed). With
    `revenue=False` the weeks are written with no revenue rows and the programme's figures
    without revenue (a benchmark's baseline).
    """
    for week in weeks:
        metrics.iso_week_as_of(week)
    final_set = set(final_weeks)
    # Every deal is read while the market is (each deal's segment then from the market).
    with backfill_read_ahead(revenue, len(set(weeks))) as revenue_backfill:
        frames = selectors.market_frames()
        market = metrics.PreparedMarket(**frames)
        step = revenue_backfill(market.accounts, frames["coverage"]) if revenue else None
        del frames
    # The weeks' coverage in one pass over the dated rows; a day the sweep did not foresee
    # (the date turned during a provisional run) is computed alone.
    days = [metrics_as_of(week=week, final=week in final_set) for week in weeks]
    sweep = metrics.MarketSweep(market, days)
    # The deal registrations of every week in one read; each week's rollups pick its own.
    registrations = RegistrationsRead.of_days(days) if days else None
    try:
        with ExitStack() as held:
            for week in sorted(set(weeks)):
                held.enter_context(named_lock(f"metrics:week:{week}", ttl_seconds=_lock_seconds()))
            held.enter_context(primary_reads())
            return _run_weeks_locked(
                weeks=list(dict.fromkeys(weeks)),
                final_set=final_set,
                compute=sweep.week_figures,
                revenue=step,
                registrations=registrations,
                progress=progress,
            )
    except LockBusy as busy:
        raise MetricsRunInProgress(f"{busy}; try again later") from busy


# How many weeks' coverage a backfill computes ahead while its revenue step is not ready (each
# week's figures are kept until it is handed over).
_WEEKS_AHEAD = 12


def _run_weeks_locked(
    *,
    weeks: list[str],
    final_set: set[str],
    compute: Callable[[date], WeekFigures],
    revenue: RevenueStep | None,
    registrations: RegistrationsRead | None,
    progress: Callable[[str], object] | None,
) -> list[MetricsRun]:
    """The runs of `weeks` under their locks: `_run_locked` for many weeks, whose rows are
    written together and whose programme steps follow in week order, in one transaction."""
    # We hold the weeks' locks, so any run of them still marked running died before finishing.
    MetricsRun.objects.filter(week__in=weeks, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error="abandoned: the process stopped before finishing",
    )
    started_at = timezone.now()
    runs = MetricsRun.objects.bulk_create(
        MetricsRun(
            week=week,
            as_of=metrics_as_of(week=week, final=week in final_set),
            final=week in final_set,
            started_at=started_at,
        )
        for week in weeks
    )
    seconds = dict.fromkeys(weeks, 0.0)
    current = weeks[0] if weeks else ""
    try:
        with transaction.atomic():
            started = time.monotonic()
            # On PostgreSQL the partner snapshots the weeks have already are rewritten in place
            # (`RowsStream.rewrite`); every other row of the weeks is deleted and written again.
            in_place = _partners_by_week(weeks) if connection.vendor == "postgresql" else {}
            for model in WEEK_MODELS:
                if model is not PartnerSnapshot or connection.vendor != "postgresql":
                    model._default_manager.filter(week__in=weeks).delete()
            shared = time.monotonic() - started
            # Each week's rows go to the database, their foreign keys checked, while the next
            # weeks are computed.
            with RowsStream(models=WEEK_MODELS) as buffer:
                handed: dict[str, metrics.ProgrammeCounts | None] = {}
                sourced: dict[str, SourcedRevenue | None] = {}
                partner_figures: dict[str, pd.DataFrame] = {}
                # While the revenue step's deals are still being prepared (on the read-ahead
                # thread), the next weeks' coverage is computed; each week is handed over, its
                # revenue computed, in week order once they are.
                waiting: deque[tuple[MetricsRun, WeekFigures, float]] = deque()

                def hand_over(run: MetricsRun, figures: WeekFigures, computed: float) -> None:
                    nonlocal current
                    current = run.week
                    started = time.monotonic()
                    revenue_week, run.revenue_problem = (
                        (RevenueWeek(no_revenue_tables()), "")
                        if revenue is None
                        else _revenue_or_problem(revenue, run.as_of, figures)
                    )
                    rows = _week_rows(
                        WeekInputs(
                            run.week,
                            run.as_of,
                            run.final,
                            figures,
                            revenue_week.tables,
                            registrations,
                        )
                    )
                    had = in_place.get(run.week)
                    for model, model_rows in rows.items():
                        if model is PartnerSnapshot and had is not None:
                            buffer.rewrite(model, model_rows, week=run.week, had=had)
                        else:
                            buffer.add(model, model_rows)
                    run.rows_written = _counted_rows(rows)
                    handed[run.week] = figures.programme
                    sourced[run.week] = revenue_week.sourced
                    partner_figures[run.week] = figures.partners
                    seconds[run.week] += computed + time.monotonic() - started

                for run in runs:
                    current = run.week
                    started = time.monotonic()
                    waiting.append((run, compute(run.as_of), time.monotonic() - started))
                    while waiting and (
                        revenue is None or revenue_ready(revenue) or len(waiting) > _WEEKS_AHEAD
                    ):
                        hand_over(*waiting.popleft())
                while waiting:
                    hand_over(*waiting.popleft())
                current = ""
                started = time.monotonic()
                buffer.insert()
            shared = (shared + time.monotonic() - started) / max(len(runs), 1)

            def evaluating(week: str) -> None:
                nonlocal current
                current = week

            started = time.monotonic()
            # The partner programme's steps read the weeks just written (docs/metrics.md
            # 20-23), each week the tiers of the weeks before, and write the weeks' rows
            # after; the counts and partner figures the sweep found on its way, and the
            # revenue sourced this year the revenue step found, are handed over, not read
            # again; the partners' own figures and the replies of every week are read at once.
            day_reads = programme_day_reads([run.as_of for run in runs])
            programme_rows = programme_compute_weeks(
                weeks=[
                    ProgrammeWeek(
                        week=run.week,
                        as_of=run.as_of,
                        final=run.final,
                        revenue=revenue is not None and not run.revenue_problem,
                        counts=handed.pop(run.week),
                        sourced=sourced.pop(run.week),
                        partners=partner_figures.pop(run.week),
                        day_reads=day_reads.pop(run.as_of),
                    )
                    for run in runs
                ],
                evaluating=evaluating,
            )
            shared += (time.monotonic() - started) / max(len(runs), 1)
            for run in runs:
                run.rows_written += programme_rows[run.week]
                seconds[run.week] += shared
                if progress is not None:
                    progress(run.week)
    except BaseException as error:
        finished = timezone.now()
        failure = f"{type(error).__name__}: {error}"
        for run in runs:
            run.status = RunStatus.FAILED
            run.error = (
                failure
                if run.week == current or not current
                else f"not written: {current} failed: {failure}"
            )[:5000]
            run.finished_at = finished
            run.seconds = seconds[run.week]
            run.rows_written = 0
            run.updated_at = finished
        MetricsRun.objects.bulk_update(
            runs, ["status", "error", "finished_at", "seconds", "rows_written", "updated_at"]
        )
        raise
    finished = timezone.now()
    for run in runs:
        run.status = RunStatus.SUCCEEDED
        run.finished_at = finished
        run.seconds = seconds[run.week]
        run.updated_at = finished
        logger.info(
            "metrics %s (%s): %d rows in %.2f s", run.week, run.as_of, run.rows_written, run.seconds
        )
    MetricsRun.objects.bulk_update(
        runs,
        ["status", "rows_written", "finished_at", "seconds", "revenue_problem", "updated_at"],
    )
    return runs


def _partners_by_week(weeks: Sequence[str]) -> dict[str, np.ndarray]:
    """PostgreSQL: the partners whose snapshot rows each of `weeks` has, by week (a week
    without any is left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT week, array_agg(partner_id) FROM analytics_partnersnapshot"
            " WHERE week = ANY(%s) GROUP BY week",
            [list(weeks)],
        )
        return {week: np.asarray(ids, dtype="int64") for week, ids in cursor.fetchall()}


class RegionPart(TypedDict):
    """One worker's share of a split week, as JSON crosses the broker: the as-of date (ISO) and
    the records of `metrics.MASK_GROUP_COLUMNS` and `metrics.PARTNER_COVERAGE_COLUMNS`, all
    integers."""

    as_of: str
    mask_groups: list[dict[str, int]]
    partner_coverage: list[dict[str, int]]


def metrics_region_part(*, week: str, final: bool, region_ids: Sequence[int]) -> RegionPart:
    """One worker's share of a week split by region: the mask groups and partner coverage of
    accounts in `region_ids`, as JSON-ready records for `metrics_merge_week`.

    Writes nothing. Raises ValueError on a malformed week.
    """
    as_of = metrics_as_of(week=week, final=final)
    groups, coverage, _ = metrics_day_counts(as_of, region_ids=region_ids)
    groups = groups.astype({"in_market": "int64", "mask": "int64", "n": "int64"})
    return {
        "as_of": as_of.isoformat(),
        "mask_groups": cast("list[dict[str, int]]", groups.to_dict(orient="records")),
        "partner_coverage": cast(
            "list[dict[str, int]]", coverage.astype("int64").to_dict(orient="records")
        ),
    }


def metrics_merge_week(*, week: str, final: bool, parts: Sequence[RegionPart]) -> MetricsRun:
    """Merge the region parts of a week and replace its snapshot rows, as one run.

    The parts must cover disjoint region sets whose union is every region; the result is then
    identical to `metrics_compute_week`. Raises ValueError when the parts disagree on the as-of
    date (the day turned between them: re-run the week), MetricsRunInProgress like
    `metrics_compute_week`.
    """
    dates = {part["as_of"] for part in parts}
    if len(dates) > 1:
        raise ValueError(f"the parts of {week} were computed as of different dates: {dates}")

    def compute(as_of: date, *, indexed: AccountsIndexed | None = None) -> WeekFigures:
        # The parts' accounts are not held here: nothing to hand `indexed`.
        if dates and dates != {as_of.isoformat()}:
            raise ValueError(f"the parts of {week} were computed as of {dates}, not {as_of}")
        groups = pd.DataFrame(
            [row for part in parts for row in part["mask_groups"]],
            columns=metrics.MASK_GROUP_COLUMNS,
        )
        groups["in_market"] = groups["in_market"].astype(bool)
        coverage = metrics.summed_partner_coverage(
            [
                pd.DataFrame(
                    part["partner_coverage"],
                    columns=metrics.PARTNER_COVERAGE_COLUMNS,
                )
                for part in parts
            ]
        )
        return _figures(groups, coverage, selectors.week_context(as_of), as_of)

    return _run_week(week=week, final=final, compute=compute)


def metrics_close_week(*, week: str) -> MetricsRun:
    """Close `week` as final once: the Monday job, safe when two beats or a redelivery send it.

    Under the week's lock, returns the week's succeeded final run if there already is one (and
    writes nothing); otherwise computes it exactly as `metrics_compute_week(final=True)`. Raises
    MetricsRunInProgress while another run of the week holds the lock (the task retries, then
    finds the run the other one finished). A deliberate recompute goes through
    `metrics_compute_week`.
    """
    as_of = metrics_as_of(week=week, final=True)
    try:
        with named_lock(f"metrics:week:{week}", ttl_seconds=_lock_seconds()), primary_reads():
            closed = (
                MetricsRun.objects.filter(
                    week=week, final=True, as_of=as_of, status=RunStatus.SUCCEEDED
                )
                .order_by("-finished_at")
                .first()
            )
            if closed is not None:
                return closed
            return _run_locked(
                week=week, as_of=as_of, final=True, compute=_week_figures_with_revenue
            )
    except LockBusy as busy:
        raise MetricsRunInProgress(f"a run of {week} is in progress; try again later") from busy
