"""Time the partner portal's scorecard (/portal/scorecard/) on a market with weekly figures.

Run it on a database `bench_metrics` filled (its own, with --partners for a programme of many
partners): it computes the final weeks up to 2026-W46 that have no programme snapshot yet
(`--weeks`, 12 by default: the scorecard's trend), gives `--users` partners a portal user each,
then times `--requests` requests of the scorecard in-process, spread over those partners,
each signed in as its own partner. The last line reads `bench_scorecard: partners=P weeks=W
requests=N p50_ms=.. p95_ms=.. cpu_p95_ms=.. queries=..`: server time (Django's test client, no
network), the CPU the web process spent, and the queries of one request.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics import reports
from analytics.dashboard import trailing_weeks
from analytics.services import metrics_compute_weeks
from crm.roles import Role
from partners.models import Partner, PartnerUser

LAST_WEEK = "2026-W46"
USER_PREFIX = "bench-portal-"


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = __doc__ or ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--weeks", type=int, default=12)
        parser.add_argument("--users", type=int, default=50, help="Partners signed in.")
        parser.add_argument("--requests", type=int, default=200)
        parser.add_argument("--seed", type=int, default=19)

    def handle(self, *args: Any, **options: Any) -> None:
        if not Partner.objects.exists():
            raise CommandError("no partners: fill this database with bench_metrics first")
        weeks = trailing_weeks(LAST_WEEK, max(1, options["weeks"]))
        missing = [week for week in weeks if week not in set(reports.programme_weeks())]
        if missing:
            started = time.monotonic()
            metrics_compute_weeks(weeks=missing, final_weeks=missing)
            self.stdout.write(
                f"computed {len(missing)} weeks in {time.monotonic() - started:.1f} s"
            )
        rng = random.Random(options["seed"])
        partner_ids = list(
            Partner.objects.filter(is_active=True, programme_snapshots__week=LAST_WEEK)
            .order_by("id")
            .values_list("id", flat=True)
        )
        chosen = rng.sample(partner_ids, min(options["users"], len(partner_ids)))
        host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h), "localhost")
        clients = [self._client(pk, host.lstrip(".")) for pk in chosen]
        for client in clients:  # warm-up: sessions, templates, the database's caches
            client.get("/portal/scorecard/")
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(max(1, options["requests"])):
            client = rng.choice(clients)
            started, process = time.perf_counter(), time.process_time()
            response = client.get("/portal/scorecard/")
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - process) * 1000)
            if response.status_code != 200:
                raise CommandError(f"the scorecard answered {response.status_code}")
        with CaptureQueriesContext(connection) as queries:
            clients[0].get("/portal/scorecard/")
        self.stdout.write(f"runs: median {statistics.median(wall):.1f} ms, max {max(wall):.1f} ms")
        self.stdout.write(
            f"bench_scorecard: partners={len(partner_ids)} weeks={len(weeks)} "
            f"requests={len(wall)} p50_ms={_pct(wall, 50):.1f} p95_ms={_pct(wall, 95):.1f} "
            f"cpu_p95_ms={_pct(cpu, 95):.1f} queries={len(queries)}"
        )

    @staticmethod
    def _client(partner_id: int, host: str) -> Client:
        user, _ = get_user_model().objects.get_or_create(
            username=f"{USER_PREFIX}{partner_id}",
            defaults={"email": f"portal{partner_id}@bench.example"},
        )
        user.groups.add(Group.objects.get_or_create(name=Role.PARTNER_USER.value)[0])
        PartnerUser.objects.get_or_create(user=user, defaults={"partner_id": partner_id})
        client = Client(HTTP_HOST=host)
        client.force_login(user)
        return client
