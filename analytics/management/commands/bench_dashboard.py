"""Time the leadership dashboard over two years of synthetic weekly snapshots.

Fills its own database with 104 weeks x ~1,920 segments of SegmentSnapshot rows whose counts sum
to ~1,000,000 accounts a week, plus partner rows, agreements and feedback, then times requests
of /dashboard/ through Django's test Client as a signed-in executive.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from psycopg import sql

from analytics import metrics
from analytics.models import (
    FeedbackRollup,
    MetricsRun,
    PartnerRollup,
    PartnerSnapshot,
    RunStatus,
    SegmentRollup,
    SegmentSnapshot,
)
from analytics.services import metrics_rollups_rebuild
from crm.models import Region, SizeBand, Vertical
from crm.roles import Role
from crm.sql import as_text
from partners.models import Agreement, AgreementStatus, AgreementType, Feedback, Partner

BENCH_USER = "bench-executive"


class Command(BaseCommand):
    help = (
        "Generate synthetic snapshots (refuses a database that already has snapshots unless "
        "--force, which deletes every snapshot and run first) and time N dashboard requests. "
        "Last line: bench_dashboard: p50_ms=.. p95_ms=.. queries=.."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--weeks", type=int, default=104)
        parser.add_argument("--regions", type=int, default=16)
        parser.add_argument("--verticals", type=int, default=30)
        parser.add_argument("--accounts", type=int, default=1_000_000, help="per week, about")
        parser.add_argument("--partners", type=int, default=200)
        parser.add_argument("--feedback", type=int, default=5000)
        parser.add_argument("--requests", type=int, default=60)
        parser.add_argument("--seed", type=int, default=46)
        parser.add_argument("--force", action="store_true")
        parser.add_argument(
            "--skip-generate", action="store_true", help="Time the data already generated."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["skip_generate"]:
            if SegmentSnapshot.objects.exists() and not options["force"]:
                raise CommandError(
                    "this database already has snapshots; use a database of its own for the "
                    "benchmark, or --force to delete every snapshot and run first"
                )
            started = time.monotonic()
            rows = self._generate(options)
            self.stdout.write(f"generated {rows:,} rows in {time.monotonic() - started:.1f} s")
        elif not SegmentSnapshot.objects.exists():
            raise CommandError("no snapshots to time; run without --skip-generate first")
        self._time(options)

    # Data ------------------------------------------------------------------------------------

    def _generate(self, options: dict[str, Any]) -> int:
        rng = random.Random(options["seed"])
        today = timezone.localdate()
        last = metrics.iso_week_of(today - timedelta(days=7))
        first_sunday = metrics.iso_week_as_of(last) - timedelta(days=7 * (options["weeks"] - 1))
        weeks = metrics.iso_weeks_between(metrics.iso_week_of(first_sunday), last)
        with transaction.atomic():
            SegmentSnapshot.objects.all().delete()
            SegmentRollup.objects.all().delete()
            PartnerSnapshot.objects.all().delete()
            PartnerRollup.objects.all().delete()
            FeedbackRollup.objects.all().delete()
            MetricsRun.objects.all().delete()
            regions = self._codes(Region, "BR", options["regions"])
            verticals = self._codes(Vertical, "BV", options["verticals"])
            partners = self._partners(options["partners"], rng)
            self._agreements(partners, today, rng)
            self._feedback(partners, options["feedback"], today, rng)
            self._executive()
        segments = [(r, v, b) for r in regions for v in verticals for b in SizeBand.values]
        mean = options["accounts"] / len(segments)
        base = {s: max(1, int(rng.gauss(mean, mean * 0.4))) for s in segments}
        shares = {
            s: [
                rng.uniform(0.1, 0.5),
                rng.uniform(0.0, 0.2),
                rng.uniform(0.0, 0.3),
                rng.random() / 4,
            ]
            for s in segments
        }
        written = 0
        for index, week in enumerate(weeks):
            as_of = metrics.iso_week_as_of(week)
            growth = 0.6 + 0.4 * index / max(1, len(weeks) - 1)
            rows = [
                self._segment_row(week, as_of, s, base[s], shares[s], growth, rng) for s in segments
            ]
            partner_rows = [
                self._partner_row(week, as_of, partner, growth, rng) for partner in partners
            ]
            with transaction.atomic():
                SegmentSnapshot.objects.bulk_create(rows, batch_size=2000)
                PartnerSnapshot.objects.bulk_create(partner_rows, batch_size=2000)
                now = timezone.now()
                MetricsRun.objects.create(
                    week=week,
                    as_of=as_of,
                    final=True,
                    status=RunStatus.SUCCEEDED,
                    started_at=now,
                    finished_at=now,
                    rows_written=len(rows) + len(partner_rows),
                    seconds=0,
                )
            written += len(rows) + len(partner_rows)
        # As a run writes them: the sums of each week's segments for every filter.
        written += metrics_rollups_rebuild(weeks)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (
                    SegmentSnapshot,
                    SegmentRollup,
                    PartnerSnapshot,
                    PartnerRollup,
                    FeedbackRollup,
                    MetricsRun,
                    Feedback,
                    Agreement,
                ):
                    statement = sql.SQL("ANALYZE {}").format(sql.Identifier(model._meta.db_table))
                    cursor.execute(as_text(statement))
        return written

    @staticmethod
    def _codes(model: type[Region] | type[Vertical], prefix: str, count: int) -> list[str]:
        codes = [f"{prefix}{number:02d}" for number in range(count)]
        for code in codes:
            model.objects.get_or_create(code=code, defaults={"name": f"Bench {code}"})
        return codes

    @staticmethod
    def _partners(count: int, rng: random.Random) -> list[Partner]:
        Partner.objects.bulk_create(
            [
                Partner(
                    external_id=f"BENCH-P{number:04d}",
                    name=f"Bench partner {number}",
                    channel_kind=rng.choice(["partner", "distribution"]),
                    partner_type="reseller",
                )
                for number in range(count)
            ],
            ignore_conflicts=True,
        )
        return list(Partner.objects.filter(external_id__startswith="BENCH-P").order_by("pk"))

    @staticmethod
    def _agreements(partners: list[Partner], today: date, rng: random.Random) -> None:
        existing = set(
            Agreement.objects.filter(partner__in=partners).values_list("partner_id", flat=True)
        )
        Agreement.objects.bulk_create(
            [
                Agreement(
                    external_id=f"BENCH-AG{partner.pk}",
                    partner=partner,
                    agreement_type=AgreementType.RESELLER,
                    status=AgreementStatus.ACTIVE,
                    start_date=today - timedelta(days=700),
                    end_date=today + timedelta(days=rng.randrange(1, 400)),
                    signed_on=today - timedelta(days=700),
                )
                for partner in partners
                if partner.pk not in existing
            ]
        )

    @staticmethod
    def _feedback(partners: list[Partner], count: int, today: date, rng: random.Random) -> None:
        if Feedback.objects.filter(partner__in=partners).exists():
            return
        created = Feedback.objects.bulk_create(
            [
                Feedback(
                    partner=rng.choice(partners),
                    category=rng.choice(["product", "pricing", "support", "technical"]),
                    satisfaction=rng.randint(1, 5),
                    nps=rng.choice([None, *range(11)]),
                    subject="Bench feedback",
                    body="Synthetic feedback for the dashboard benchmark.",
                )
                for _ in range(count)
            ],
            batch_size=2000,
        )
        now = timezone.now()
        for entry in created:
            entry.created_at = now - timedelta(days=rng.randrange(0, 760), hours=rng.randrange(24))
        Feedback.objects.bulk_update(created, ["created_at"], batch_size=2000)

    @staticmethod
    def _executive() -> None:
        user, _ = get_user_model().objects.get_or_create(
            username=BENCH_USER, defaults={"email": "bench@example.com"}
        )
        group, _ = Group.objects.get_or_create(name=Role.EXECUTIVE.value)
        user.groups.add(group)

    @staticmethod
    def _segment_row(
        week: str,
        as_of: date,
        segment: tuple[str, str, str],
        base: int,
        shares: list[float],
        growth: float,
        rng: random.Random,
    ) -> SegmentSnapshot:
        accounts = max(0, int(base * (0.9 + 0.1 * growth) + rng.randint(-3, 3)))
        covered = [min(accounts, int(accounts * share * growth)) for share in shares]
        covered_any = min(accounts, max(covered, default=0) + sum(covered) // 3)
        overlap = min(covered_any, sum(covered) - max(covered, default=0)) // 2
        converted_by = [int(c * 0.35 * growth) for c in covered]
        converted = min(accounts, sum(converted_by))
        counts = {
            "accounts": accounts,
            **{f"covered_{k}": c for k, c in zip(metrics.KINDS, covered, strict=True)},
            "covered_any": covered_any,
            "overlap": max(0, overlap),
            "converted": converted,
            **{f"converted_{k}": c for k, c in zip(metrics.KINDS, converted_by, strict=True)},
            "white_space": accounts - covered_any,
        }
        share = (lambda n: n / accounts) if accounts else (lambda n: None)
        return SegmentSnapshot(
            week=week,
            as_of=as_of,
            final=True,
            region=segment[0],
            vertical=segment[1],
            size_band=segment[2],
            **counts,
            coverage=share(covered_any),
            **{f"coverage_{k}": share(c) for k, c in zip(metrics.KINDS, covered, strict=True)},
            penetration=share(converted),
        )

    @staticmethod
    def _partner_row(
        week: str, as_of: date, partner: Partner, growth: float, rng: random.Random
    ) -> PartnerSnapshot:
        covered = int(rng.randint(50, 3000) * growth)
        feedback = rng.randint(0, 12)
        responses = rng.randint(0, feedback)
        promoters = rng.randint(0, responses)
        detractors = rng.randint(0, responses - promoters)
        return PartnerSnapshot(
            week=week,
            as_of=as_of,
            final=True,
            partner=partner,
            external_id=partner.external_id,
            name=partner.name,
            channel_kind=partner.channel_kind,
            covered_accounts=covered,
            converted_accounts=int(covered * rng.uniform(0.1, 0.4)),
            agreements_in_force=1,
            feedback_count=feedback,
            satisfaction_mean=rng.uniform(2, 5) if feedback else None,
            nps=metrics.nps_from_counts(responses, promoters, detractors),
            nps_responses=responses,
            nps_promoters=promoters,
            nps_detractors=detractors,
        )

    # Timing ----------------------------------------------------------------------------------

    def _time(self, options: dict[str, Any]) -> None:
        user = get_user_model().objects.filter(username=BENCH_USER).first()
        if user is None:
            self._executive()
            user = get_user_model().objects.get(username=BENCH_USER)
        host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h), "localhost")
        client = Client(HTTP_HOST=host.lstrip("."))
        client.force_login(user)
        region = Region.objects.filter(code__startswith="BR").values_list("code", flat=True)
        urls = [
            "/dashboard/",
            f"/dashboard/?region={region.first() or ''}&channel=partner",
            "/dashboard/?span=52&heat=penetration&size_band=enterprise",
        ]
        for url in urls:  # warm-up: connections, templates, the database's caches
            self._get(client, url)
        self.stdout.write(
            f"database={connection.vendor} segment_rows={SegmentSnapshot.objects.count():,} "
            f"requests={options['requests']} per run"
        )
        # Warm: the snapshot figures come from the cache, as for every request after the
        # first one of a week and filter set. Cold: the cache is emptied before each request.
        self.cpu_ms: list[float] = []
        warm, _ = self._run(client, urls, options["requests"], cold=False)
        warm_cpu, self.cpu_ms = self.cpu_ms, []
        cold, queries = self._run(client, urls, options["requests"], cold=True)
        # This process's CPU time alone: the web side of a request without the waits for a
        # busy machine's cores (the database's own time is not in it).
        self.stdout.write(
            f"web process cpu: warm p50_ms={_pct(warm_cpu, 50):.1f} p95_ms={_pct(warm_cpu, 95):.1f}"
            f", cold p50_ms={_pct(self.cpu_ms, 50):.1f} p95_ms={_pct(self.cpu_ms, 95):.1f}"
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        self.stdout.write(
            f"load average (1 min) while timing: {load:.2f} on {os.cpu_count()} cores"
        )
        for label, samples in (("warm", warm), ("cold", cold)):
            for url, values in samples.items():
                self.stdout.write(
                    f"{label} {url}: p50_ms={_pct(values, 50):.1f} p95_ms={_pct(values, 95):.1f}"
                )
        every_warm = [value for values in warm.values() for value in values]
        self.stdout.write(
            f"warm (cached snapshot figures): p50_ms={_pct(every_warm, 50):.1f} "
            f"p95_ms={_pct(every_warm, 95):.1f}"
        )
        every = [value for values in cold.values() for value in values]
        self.stdout.write(
            f"bench_dashboard: p50_ms={_pct(every, 50):.1f} p95_ms={_pct(every, 95):.1f} "
            f"queries={queries}"
        )

    def _run(
        self, client: Client, urls: list[str], requests: int, *, cold: bool
    ) -> tuple[dict[str, list[float]], int]:
        """Time `requests` requests cycling through `urls`; the most queries one request made."""
        timings: dict[str, list[float]] = {url: [] for url in urls}
        counted = [0]

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            counted[0] += 1
            return execute(sql, params, many, context)

        most = 0
        for number in range(requests):
            url = urls[number % len(urls)]
            if cold:
                cache.clear()
            counted[0] = 0
            with connection.execute_wrapper(count):
                started, cpu = time.perf_counter(), time.process_time()
                self._get(client, url)
                timings[url].append((time.perf_counter() - started) * 1000)
                self.cpu_ms.append((time.process_time() - cpu) * 1000)
            most = max(most, counted[0])
        return timings, most

    @staticmethod
    def _get(client: Client, url: str) -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")


def _pct(samples: list[float], percent: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]
