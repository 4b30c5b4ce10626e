"""Benchmark one final week of metrics on a synthetic market, against the single-SQL reference.

Run it on a database of its own: it refuses a database that already holds accounts unless
--force, which deletes the whole market (accounts, coverage, partners, agreements, feedback,
reps, regions, verticals and snapshots) first. The last line reads
`bench_metrics: accounts=N seconds=S peak_rss_mb=M sql_reference_seconds=R ratio=S/R`.

It also times the partner programme's step (tiers, targets, the satisfaction regression;
`analytics.programme_services.programme_week`, part of every weekly run) inside the same timed
weekly runs, as the run calls it, and prints `bench_metrics: partners=P opportunities=O
programme_seconds=T week_seconds=W rest_seconds=W-T programme_share=T/(W-T)`: T is the
median of the step's own time in each run, W the median of the whole run (the step
included), W-T the rest of the run, and the share what the step adds to it. The step run
alone is timed too, with the counts the week's pass hands over and reading them itself
(`programme runs alone`). Before each timed run, untimed, the step of the nightly run of the
day before (provisional, as of the Saturday) leaves the week's programme rows as that night
wrote them, and the week's other rows stamped as that night's (provisional, as of the
Saturday, their figures kept): each timed run is then the week's close finding every row
changed, as every run of a week does in production (the as-of day moves each night, then the
week turns final), and pays for rewriting all of them, not only for comparing them with the
rows it wrote itself a moment before. Each timed backfill likewise finds its weeks' rows
stamped as of the day before, so it rewrites every row it finds. --partners sets how many
partners the market has (400 by default); every partner and rep has a yearly target.

With --opportunities N it times revenue instead: it adds N opportunities of every channel in
three currencies (with --reuse it keeps the deals this command seeded earlier when there are
exactly N, so a market of millions of deals is seeded once), then times the final week with
and without its revenue step, alternately (--repeat pairs; each timed run after an untimed
run of its own kind, so that the night before wrote the week's revenue rows for a run with
revenue and none for a run without, as it does in production), and a --backfill-weeks backfill
without then with revenue, on the same market and deals, and ends with `bench_metrics:
accounts=N opportunities=M week_seconds=A week_revenue_seconds=B week_ratio=B/A
backfill_weeks=W backfill_seconds=C backfill_revenue_seconds=D backfill_ratio=D/C` (A and B
medians), then the programme step's share of the week with revenue. With reused deals the
coverage-only figures above are not timed first. --seed-only with --opportunities stops once
the deals are seeded.

With --backfill it ends by timing a --backfill-weeks backfill (`compute_metrics --from
--to`: the weeks up to 2026-W46, all final) and prints `bench_metrics: accounts=N
backfill_weeks=W backfill_seconds=S peak_rss_mb=M`.

The market is generated and copied a million accounts (and their coverage) at a time, with the
two big tables' indexes and constraints built once at the end, so the seeding's memory is bounded
by the block, not the market (1.6 GB peak RSS seeding 8M). --seed-only stops after seeding: a
market too big for one process is then computed by workers (`compute_metrics --week 2026-W46
--split N`, README "How it scales").
"""

from __future__ import annotations

import io
import multiprocessing
import resource
import statistics
import time as clock
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections, transaction
from django.db.models import F, Model
from django.utils import timezone
from psycopg import sql

from analytics import services
from analytics.dashboard import trailing_weeks
from analytics.models import (
    MetricsLock,
    MetricsRun,
    PartnerRevenueRollup,
    PartnerRevenueSnapshot,
    PartnerSnapshot,
    RevenueForecast,
    RevenueRollup,
    RevenueSnapshot,
    SegmentSnapshot,
)
from analytics.programme_models import RepProgramme, SatisfactionFit
from analytics.programme_services import programme_week
from analytics.services import metrics_compute_week, metrics_compute_weeks, metrics_week_figures
from analytics.sql_reference import reference_segment_counts
from channels.models import (
    CoverageAssignment,
    Opportunity,
    OpportunityEvent,
    OpportunitySubStage,
    SalesRep,
)
from crm.models import Account, CurrencyRate, Region, SizeBand, Vertical
from crm.sql import as_text
from partners.models import Agreement, Feedback, FeedbackCategory, Partner
from partners.programme_models import Certification, Target

WEEK = "2026-W46"
AS_OF = date(2026, 11, 15)
# The nightly run before the week's close, whose programme rows each timed run finds.
NIGHT_BEFORE = AS_OF - timedelta(days=1)
REGIONS, VERTICALS = 48, 10  # x 4 size bands = 1,920 segments
PARTNERS, REPS = 400, 200
KINDS = np.array(["direct", "distribution", "partner", "online"])
# 0-3 kinds per account, mean 1.6 coverage rows per account.
KINDS_PER_ACCOUNT = [0.10, 0.35, 0.40, 0.15]
EPOCH = date(2024, 1, 1)
# Accounts generated and copied at a time (with their coverage): bounds the seeding's memory.
SEED_CHUNK = 1_000_000


class Command(BaseCommand):
    help = __doc__ or ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--repeat", type=int, default=3, help="Timed runs of each (median).")
        parser.add_argument(
            "--force", action="store_true", help="Delete the market already in this database."
        )
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Keep a market this command seeded earlier instead of seeding again.",
        )
        parser.add_argument(
            "--opportunities",
            type=int,
            default=0,
            help="Then time the week and a backfill without and with this many opportunities.",
        )
        parser.add_argument("--backfill-weeks", type=int, default=52)
        parser.add_argument(
            "--partners", type=int, default=PARTNERS, help="Partners of a newly seeded market."
        )
        parser.add_argument(
            "--backfill",
            action="store_true",
            help="Then time a --backfill-weeks backfill of the market and print it last.",
        )
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="Seed the market and stop (a market too big for one process to time whole, "
            "for a week split between workers: compute_metrics --split).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = options["accounts"]
        if accounts < 1:
            raise CommandError("--accounts must be at least 1")
        existing = Account.objects.count()
        reuse = options["reuse"] and existing == accounts and _is_bench_market()
        if existing and not reuse and not options["force"]:
            raise CommandError(
                f"this database holds {existing} accounts; point DATABASE_URL at a scratch "
                "database, or pass --force to delete its market"
            )
        if not reuse:
            started = clock.monotonic()
            # Seed in a child process so its memory does not count in the measured peak RSS.
            connections.close_all()
            child = multiprocessing.get_context("fork").Process(
                target=_seed_in_child,
                args=(accounts, options["seed"], bool(existing), max(3, options["partners"])),
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                raise CommandError(f"seeding failed (exit code {child.exitcode})")
            self.stdout.write(f"seeded {accounts} accounts in {clock.monotonic() - started:.1f} s")
        count = options["opportunities"]
        if count > 0 and options["reuse"] and _has_bench_deals(count):
            # The market's coverage-only week was timed when the deals were seeded.
            self.stdout.write(f"reusing the {count} opportunities seeded earlier")
            if not options["seed_only"]:
                self._programme(*self._with_revenue(accounts, options), options)
            return
        if options["seed_only"]:
            if count > 0:
                self._seed_opportunities(count, options)
            return

        # One untimed run each warms the caches: the README's figures are of a warm cache.
        metrics_compute_week(week=WEEK, final=True)
        reference_segment_counts(AS_OF)
        pipeline, reference, steps = [], [], []
        for _ in range(max(1, options["repeat"])):
            week_runs, step_runs = _week_runs(1)
            pipeline += week_runs
            steps += step_runs
            started = clock.perf_counter()
            reference_segment_counts(AS_OF)
            reference.append(clock.perf_counter() - started)
        seconds, sql_seconds = statistics.median(pipeline), statistics.median(reference)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(
            f"pipeline runs: {', '.join(f'{s:.3f}' for s in pipeline)} s; "
            f"reference runs: {', '.join(f'{s:.3f}' for s in reference)} s"
        )
        self.stdout.write(
            f"bench_metrics: accounts={accounts} seconds={seconds:.3f} peak_rss_mb={peak_mb:.0f} "
            f"sql_reference_seconds={sql_seconds:.3f} ratio={seconds / sql_seconds:.2f}"
        )
        self._programme(pipeline, steps, options)
        if count > 0:
            self._seed_opportunities(count, options)
            self._programme(*self._with_revenue(accounts, options), options)
        if options["backfill"]:
            self._backfill(accounts, max(1, options["backfill_weeks"]))

    def _backfill(self, accounts: int, count: int) -> None:
        """Time one backfill of the `count` weeks up to `WEEK`, as `compute_metrics --from
        --to` runs it (one pass over the market's dated rows, every week final)."""
        weeks = trailing_weeks(WEEK, count)
        _stamped_the_night_before(weeks)
        started = clock.perf_counter()
        metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
        seconds = clock.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(
            f"bench_metrics: accounts={accounts} backfill_weeks={len(weeks)} "
            f"backfill_seconds={seconds:.1f} peak_rss_mb={peak_mb:.0f}"
        )

    def _programme(
        self,
        week_runs: list[float],
        step_runs: list[float],
        options: dict[str, Any],
    ) -> None:
        """Print the programme step's time inside the weekly runs (`step_runs`, one per run of
        `week_runs`, which include it) and its share of the rest of the run; then time the step
        alone."""
        step, week_seconds = statistics.median(step_runs), statistics.median(week_runs)
        rest = week_seconds - step
        handed = metrics_week_figures(AS_OF).programme
        runs, reading = [], []
        for _ in range(max(1, options["repeat"])):
            _night_before()
            started = clock.perf_counter()
            programme_week(week=WEEK, as_of=AS_OF, final=True, counts=handed)
            runs.append(clock.perf_counter() - started)
            _night_before()
            started = clock.perf_counter()
            programme_week(week=WEEK, as_of=AS_OF, final=True)
            reading.append(clock.perf_counter() - started)
        self.stdout.write(
            f"programme step in the weekly runs: {', '.join(f'{s:.3f}' for s in step_runs)} s "
            f"of {', '.join(f'{s:.3f}' for s in week_runs)} s; "
            f"programme runs alone: {', '.join(f'{s:.3f}' for s in runs)} s, "
            f"reading its counts: {', '.join(f'{s:.3f}' for s in reading)} s"
        )
        self.stdout.write(
            f"bench_metrics: partners={Partner.objects.count()} "
            f"opportunities={Opportunity.objects.count()} "
            f"programme_seconds={step:.3f} week_seconds={week_seconds:.3f} "
            f"rest_seconds={rest:.3f} programme_share={step / max(rest, 1e-9):.3f}"
        )

    def _seed_opportunities(self, count: int, options: dict[str, Any]) -> None:
        _wipe_revenue()
        started = clock.monotonic()
        _seed_opportunities(count, options["seed"])
        self.stdout.write(f"seeded {count} opportunities in {clock.monotonic() - started:.1f} s")

    def _with_revenue(
        self, accounts: int, options: dict[str, Any]
    ) -> tuple[list[float], list[float]]:
        """Print the revenue line (see the module's text); return the weeks with revenue and
        their programme steps, as `_week_runs` does."""
        repeat = max(1, options["repeat"])
        weeks = trailing_weeks(WEEK, max(1, options["backfill_weeks"]))
        count = Opportunity.objects.count()
        # One untimed run of each warms the caches; then the two alternate, so that both see
        # the same machine.
        metrics_compute_week(week=WEEK, final=True, revenue=False)
        metrics_compute_week(week=WEEK, final=True)
        alone: list[float] = []
        with_revenue: list[float] = []
        steps: list[float] = []
        for _ in range(repeat):
            for revenue, times in ((False, alone), (True, with_revenue)):
                # The night before ran the week as the timed run does, with its revenue rows or
                # without: the timed run finds (and rewrites) the rows of its own kind.
                metrics_compute_week(week=WEEK, final=True, revenue=revenue)
                runs, step_runs = _week_runs(1, revenue=revenue)
                times += runs
                if revenue:
                    steps += step_runs
        self.stdout.write(
            f"weeks without revenue: {', '.join(f'{s:.3f}' for s in alone)} s; "
            f"with revenue: {', '.join(f'{s:.3f}' for s in with_revenue)} s"
        )
        backfills = []
        for revenue in (False, True):
            _stamped_the_night_before(weeks)
            started = clock.perf_counter()
            metrics_compute_weeks(weeks=weeks, final_weeks=weeks, revenue=revenue)
            backfills.append(clock.perf_counter() - started)
        week_alone: float = statistics.median(alone)
        week_revenue: float = statistics.median(with_revenue)
        backfill_alone, backfill_revenue = backfills
        self.stdout.write(
            f"bench_metrics: accounts={accounts} opportunities={count} "
            f"week_seconds={week_alone:.3f} week_revenue_seconds={week_revenue:.3f} "
            f"week_ratio={week_revenue / week_alone:.2f} backfill_weeks={len(weeks)} "
            f"backfill_seconds={backfill_alone:.1f} "
            f"backfill_revenue_seconds={backfill_revenue:.1f} "
            f"backfill_ratio={backfill_revenue / backfill_alone:.2f}"
        )
        return with_revenue, steps


def _is_bench_market() -> bool:
    return not Account.objects.exclude(external_id__startswith="B").exists()


def _has_bench_deals(count: int) -> bool:
    """Whether the database holds exactly `count` deals, all seeded by this command."""
    deals = Opportunity.objects.all()
    return deals.count() == count and not deals.exclude(external_id__startswith="BO").exists()


def _week_runs(repeat: int, revenue: bool = True) -> tuple[list[float], list[float]]:
    """`repeat` timed weekly runs (`revenue`: with the revenue step): the seconds of each
    whole run, and of the programme step inside each (timed where the run calls it). Each
    run finds the week's programme rows as the night before left them (`_night_before`)."""
    runs: list[float] = []
    steps: list[float] = []

    def timed_step(**kwargs: Any) -> int:
        started = clock.perf_counter()
        try:
            return programme_week(**kwargs)
        finally:
            steps.append(clock.perf_counter() - started)

    with _replaced(services, "programme_week", timed_step):
        for _ in range(repeat):
            _night_before()
            started = clock.perf_counter()
            metrics_compute_week(week=WEEK, final=True, revenue=revenue)
            runs.append(clock.perf_counter() - started)
    if len(steps) != len(runs):
        raise CommandError("the weekly run did not run its programme step once")
    return runs, steps


def _night_before() -> None:
    """Leave the week's rows as the nightly run of the day before its close wrote them
    (`NIGHT_BEFORE`, provisional): its programme rows as that night's step wrote them, its
    other rows stamped as that night's (`_stamped_the_night_before`). The run timed next
    rewrites every row, as a run of the week does each night in production."""
    _stamped_the_night_before([WEEK], programme=False)
    programme_week(week=WEEK, as_of=NIGHT_BEFORE, final=False)


def _stamped_the_night_before(weeks: Sequence[str], *, programme: bool = True) -> None:
    """Stamp the rows `weeks` hold (snapshots, rollups, revenue, and with `programme` the
    programme's rep rows and its week's regression, which holds the as-of day of its partner
    rows) provisional as of the day before their as-of day, their
    figures kept. A run rewrites in place only the rows that differ from those it computes
    (`writes.replace_week_rows`): the run timed next then pays for rewriting every row, as a
    run does each night in production (the as-of day moves each night, then the week turns
    final), not only for comparing them with the rows a run wrote a moment before."""
    models = (*services.WEEK_MODELS, *((RepProgramme, SatisfactionFit) if programme else ()))
    for model in models:
        model._default_manager.filter(week__in=weeks).update(
            as_of=F("as_of") - timedelta(days=1), final=False
        )


@contextmanager
def _replaced(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def _seed_in_child(accounts: int, seed: int, wipe: bool, partner_count: int) -> None:
    connections.close_all()
    if wipe:
        _wipe()
    _seed(accounts, seed, partner_count)
    connections.close_all()


def _wipe_revenue() -> None:
    with transaction.atomic():
        for model in (
            RevenueSnapshot,
            RevenueRollup,
            PartnerRevenueSnapshot,
            PartnerRevenueRollup,
            RevenueForecast,
            OpportunityEvent,
            Opportunity,
            CurrencyRate,
        ):
            model.objects.all().delete()


def _wipe() -> None:
    _wipe_revenue()
    with transaction.atomic():
        for model in (SegmentSnapshot, PartnerSnapshot, MetricsRun, MetricsLock, Feedback):
            model.objects.all().delete()
        CoverageAssignment.objects.all().delete()
        Account.objects.all().delete()
        Agreement.history.model.objects.all().delete()
        Agreement.regions.through.objects.all().delete()
        Agreement.verticals.through.objects.all().delete()
        Agreement.objects.update(renews=None)
        Agreement.objects.all().delete()
        Partner.objects.all().delete()
        SalesRep.objects.all().delete()
        Region.objects.update(parent=None)
        Region.objects.all().delete()
        Vertical.objects.all().delete()


def _days(rng: np.random.Generator, size: int, span: int) -> np.ndarray:
    return np.datetime64(EPOCH) + rng.integers(0, span, size).astype("timedelta64[D]")


def _copy(table: str, frame: pd.DataFrame) -> None:
    """Load `frame` into `table`: COPY on PostgreSQL, executemany elsewhere."""
    columns = list(frame.columns)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
        buffer.seek(0)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL {})").format(
            sql.Identifier(table), names, sql.Literal("\\N")
        )
        with connection.cursor() as cursor:
            with cursor.cursor.copy(statement) as copy:
                while chunk := buffer.read(1 << 20):
                    copy.write(chunk)
        return
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), names, sql.SQL(", ").join(sql.Placeholder() * len(columns))
    )

    def plain(value: Any) -> Any:
        # SQLite binds str, numbers and None; pandas hands out Timestamps and numpy scalars.
        if pd.isna(value):
            return None
        if isinstance(value, pd.Timestamp):
            # Aware: a created/updated time; naive: a date column.
            return value.isoformat(sep=" ") if value.tzinfo else value.date().isoformat()
        return value.item() if isinstance(value, np.generic) else value

    rows = [tuple(map(plain, row)) for row in frame.itertuples(index=False, name=None)]
    with connection.cursor() as cursor:
        cursor.executemany(as_text(insert), rows)


def _seed(accounts: int, seed: int, partner_count: int = PARTNERS) -> None:
    rng = np.random.default_rng(seed)
    now = timezone.now()
    with transaction.atomic():
        regions = Region.objects.bulk_create(
            Region(code=f"BR{i:02d}", name=f"Bench region {i}") for i in range(REGIONS)
        )
        verticals = Vertical.objects.bulk_create(
            Vertical(code=f"BV{i:02d}", name=f"Bench vertical {i}") for i in range(VERTICALS)
        )
        reps = SalesRep.objects.bulk_create(
            SalesRep(external_id=f"BREP{i:04d}", name=f"Rep {i}", email=f"rep{i}@bench.example")
            for i in range(REPS)
        )
        partners = Partner.objects.bulk_create(
            Partner(
                external_id=f"BP{i:04d}",
                name=f"Bench partner {i}",
                channel_kind="distribution" if i % 3 == 0 else "partner",
                partner_type="distributor" if i % 3 == 0 else "reseller",
            )
            for i in range(partner_count)
        )
        region_ids = np.array([r.id for r in regions])
        vertical_ids = np.array([v.id for v in verticals])
        partner_ids = np.array([p.id for p in partners])
        distributor_ids = partner_ids[0::3]
        reseller_ids = np.setdiff1d(partner_ids, distributor_ids)
        rep_ids = np.array([r.id for r in reps])

        agreements = []
        for index, partner in enumerate(partners):
            for number in range(1 + index % 2):
                start = EPOCH + timedelta(days=int(rng.integers(0, 700)))
                end = start + timedelta(days=int(rng.integers(180, 900)))
                terminated = None
                status = "active"
                if number and rng.random() < 0.3:
                    terminated = start + timedelta(days=int(rng.integers(0, (end - start).days)))
                    status = "terminated"
                agreements.append(
                    Agreement(
                        external_id=f"BAG{index:04d}-{number}",
                        partner=partner,
                        agreement_type="reseller",
                        status=status,
                        start_date=start,
                        end_date=end,
                        signed_on=start,
                        terminated_on=terminated,
                    )
                )
        agreements = Agreement.objects.bulk_create(agreements)
        region_links, vertical_links = [], []
        for agreement in agreements:
            # Half grant every region, the rest a handful; a third are limited to verticals.
            if rng.random() < 0.5:
                for region_id in rng.choice(region_ids, int(rng.integers(1, 8)), replace=False):
                    region_links.append((agreement.id, int(region_id)))
            if rng.random() < 0.33:
                for vertical_id in rng.choice(vertical_ids, int(rng.integers(1, 5)), replace=False):
                    vertical_links.append((agreement.id, int(vertical_id)))
        Agreement.regions.through.objects.bulk_create(
            Agreement.regions.through(agreement_id=a, region_id=r) for a, r in region_links
        )
        Agreement.verticals.through.objects.bulk_create(
            Agreement.verticals.through(agreement_id=a, vertical_id=v) for a, v in vertical_links
        )
        feedback = [
            Feedback(
                partner=partners[int(rng.integers(0, partner_count))],
                category=str(rng.choice(FeedbackCategory.values)),
                satisfaction=int(rng.integers(1, 6)),
                nps=int(rng.integers(0, 11)),
                subject="Bench",
                body="Bench feedback.",
            )
            for _ in range(max(2000, 5 * partner_count))
        ]
        Feedback.objects.bulk_create(feedback)
        # Spread over the 90 days before the week's day, so the programme's satisfaction
        # figures and regression have something to work on.
        for day in range(90):
            Feedback.objects.filter(pk__in=[f.pk for f in feedback[day::90]]).update(
                created_at=timezone.make_aware(datetime.combine(AS_OF, time(12)))
                - timedelta(days=day)
            )
        # The programme: every partner and rep has a yearly target, a partner in five a
        # certification.
        Target.objects.bulk_create(
            [
                Target(year=AS_OF.year, partner=partner, accounts_covered=100, conversions=10)
                for partner in partners
            ]
            + [
                Target(year=AS_OF.year, rep=rep, accounts_covered=1000, revenue=1_000_000)
                for rep in reps
            ]
        )
        Certification.objects.bulk_create(
            Certification(partner=partner, name="Bench", earned_on=EPOCH)
            for partner in partners[::5]
        )

        with _indexes_built_after(Account, CoverageAssignment):
            for first in range(0, accounts, SEED_CHUNK):
                _seed_chunk(
                    rng,
                    range(first, min(accounts, first + SEED_CHUNK)),
                    now=now,
                    region_ids=region_ids,
                    vertical_ids=vertical_ids,
                    rep_ids=rep_ids,
                    distributor_ids=distributor_ids,
                    reseller_ids=reseller_ids,
                )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Fresh statistics and a visibility map, so the planner can use index-only scans.
            cursor.execute("VACUUM ANALYZE")


def _seed_chunk(
    rng: np.random.Generator,
    numbers: range,
    *,
    now: datetime,
    region_ids: np.ndarray,
    vertical_ids: np.ndarray,
    rep_ids: np.ndarray,
    distributor_ids: np.ndarray,
    reseller_ids: np.ndarray,
) -> None:
    """Copy the accounts numbered `numbers` and their coverage (0-3 kinds each)."""
    accounts = len(numbers)
    entered = _days(rng, accounts, 1000)
    archived = entered + rng.integers(30, 900, accounts).astype("timedelta64[D]")
    converted = entered + rng.integers(0, 900, accounts).astype("timedelta64[D]")
    is_converted = rng.random(accounts) < 0.25
    account_frame = pd.DataFrame(
        {
            "external_id": [f"B{i:08d}" for i in numbers],
            "name": [f"Bench account {i}" for i in numbers],
            # crm.names.company_name_key of the name, as every writer of a name keeps it.
            "name_key": [f"bench account {i}" for i in numbers],
            "region_id": rng.choice(region_ids, accounts),
            "vertical_id": rng.choice(vertical_ids, accounts),
            "size_band": rng.choice(np.array(SizeBand.values), accounts),
            "entered_on": entered,
            "archived_on": pd.Series(archived).where(rng.random(accounts) < 0.1),
            "converted_on": pd.Series(converted).where(is_converted),
            "converted_via": np.where(is_converted, rng.choice(KINDS, accounts), ""),
            "created_at": now,
            "updated_at": now,
        }
    )
    _copy(Account._meta.db_table, account_frame)
    del account_frame
    # Ids are handed out in copy order.
    first_id = Account.objects.get(external_id=f"B{numbers[0]:08d}").id
    account_ids = np.arange(first_id, first_id + accounts)

    # Each account gets 0-3 distinct kinds, one assignment per kind.
    per_account = rng.choice(4, accounts, p=KINDS_PER_ACCOUNT)
    order = np.argsort(rng.random((accounts, 4)), axis=1)
    rows = np.repeat(np.arange(accounts), per_account)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(per_account) - per_account, per_account)
    kinds = KINDS[order[rows, slot]]
    count = len(rows)
    starts = _days(rng, count, 1000)
    ends = starts + rng.integers(0, 600, count).astype("timedelta64[D]")
    coverage_frame = pd.DataFrame(
        {
            "account_id": account_ids[rows],
            "kind": kinds,
            "rep_id": pd.Series(rng.choice(rep_ids, count)).where(kinds == "direct"),
            "partner_id": pd.Series(
                np.where(
                    kinds == "distribution",
                    rng.choice(distributor_ids, count),
                    rng.choice(reseller_ids, count),
                )
            ).where((kinds == "distribution") | (kinds == "partner")),
            "online_source": np.where(kinds == "online", "web", ""),
            "start_date": starts,
            "end_date": pd.Series(ends).where(rng.random(count) < 0.3),
            "created_at": now,
            "updated_at": now,
        }
    )
    for column in ("rep_id", "partner_id"):
        coverage_frame[column] = coverage_frame[column].astype("Int64")
    _copy(CoverageAssignment._meta.db_table, coverage_frame)


@contextmanager
def _indexes_built_after(*models: type[Model]) -> Iterator[None]:
    """On PostgreSQL, drop the tables' non-unique indexes, foreign keys and exclusion
    constraints, and build them once after the load with their exact definitions: at tens of
    millions of rows, maintaining them row by row costs many times the build and most of the
    seeding. Inside the caller's transaction, so a failed seed leaves them as they were."""
    if connection.vendor != "postgresql":
        yield
        return
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid), format('%%I.%%I', n.nspname, c.relname) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique "
            "AND NOT i.indisprimary AND NOT i.indisexclusion",
            [tables],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', conrelid::regclass, "
            "conname, pg_get_constraintdef(oid)), "
            "format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname) "
            "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'x')",
            [tables],
        )
        constraints = cursor.fetchall()
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for _, drop in constraints:
            cursor.execute(drop)
        for _, name in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for definition, _ in indexes:
            cursor.execute(definition)
        for add, _ in constraints:
            cursor.execute(add)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


CURRENCIES = np.array(["USD", "USD", "EUR", "CNY"])
STAGES = np.array(["open", "won", "won", "lost"])


def _seed_opportunities(count: int, seed: int) -> None:
    """`count` deals on the bench market: every channel with an owner of its kind, open in
    every step, won and lost, a third recurring (some ended), in USD, EUR and CNY, opened
    from EPOCH on; EUR and CNY rates a quarter from a year before EPOCH."""
    rng = np.random.default_rng(seed + 18)
    now = timezone.now()
    with transaction.atomic():
        CurrencyRate.objects.bulk_create(
            CurrencyRate(
                currency=currency,
                valid_from=date(EPOCH.year - 1 + quarter // 4, 1 + 3 * (quarter % 4), 1),
                rate_to_reporting=f"{base * (1 + rng.uniform(-0.05, 0.05)):.6f}",
            )
            for currency, base in (("EUR", 1.08), ("CNY", 0.14))
            for quarter in range(16)
        )
        first = Account.objects.order_by("id").values_list("id", flat=True).first()
        last = Account.objects.order_by("-id").values_list("id", flat=True).first()
        assert first is not None and last is not None
        reps = np.array(SalesRep.objects.values_list("id", flat=True))
        partners = dict(Partner.objects.values_list("id", "channel_kind"))
        distributors = np.array([p for p, kind in partners.items() if kind == "distribution"])
        resellers = np.array([p for p, kind in partners.items() if kind == "partner"])
        steps = np.array(OpportunitySubStage.objects.values_list("id", flat=True))
        channel = rng.choice(KINDS, count)
        stage = rng.choice(STAGES, count)
        opened = _days(rng, count, (AS_OF - EPOCH).days)
        closed = opened + rng.integers(0, 180, count).astype("timedelta64[D]")
        recurring = rng.random(count) < 0.33
        won_recurring = recurring & (stage == "won")
        ends = closed + rng.integers(30, 700, count).astype("timedelta64[D]")
        frame = pd.DataFrame(
            {
                "external_id": [f"BO{i:09d}" for i in range(count)],
                "name": "",
                "account_id": rng.integers(first, last + 1, count),
                "channel": channel,
                "rep_id": pd.Series(rng.choice(reps, count)).where(channel == "direct"),
                "partner_id": pd.Series(
                    np.where(
                        channel == "distribution",
                        rng.choice(distributors, count),
                        rng.choice(resellers, count),
                    )
                ).where((channel == "distribution") | (channel == "partner")),
                "online_source": np.where(channel == "online", "web", ""),
                "stage": stage,
                "sub_stage_id": rng.choice(steps, count),
                "amount": (rng.integers(100, 50_000_000, count) / 100).round(2),
                "currency": rng.choice(CURRENCIES, count),
                "recurring": recurring,
                "opened_on": opened,
                "expected_close_on": closed,
                "closed_on": pd.Series(closed).where(stage != "open"),
                "ends_on": pd.Series(ends).where(won_recurring & (rng.random(count) < 0.25)),
                "lost_reason": "",
                "registration_id": pd.Series([None] * count, dtype="Int64"),
                "created_at": now,
                "updated_at": now,
            }
        )
        for column in ("rep_id", "partner_id"):
            frame[column] = frame[column].astype("Int64")
        _copy(Opportunity._meta.db_table, frame)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
