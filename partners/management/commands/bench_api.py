"""Operator job: time the API's list endpoints and the metrics endpoints on the current data.

Requests go through the Django test client in-process with a real token (authentication,
permissions, throttling, filters, pagination and rendering all run), so the figures are server
time without the network. Run it against a seeded market (`seed_demo --accounts 1000000`) with
a computed week (`compute_metrics --last 2`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client

from crm.models import Account, Region
from crm.services import api_token_issue

TARGET_MS = 30.0


def _endpoints(
    *, region: str, week: str, first_week: str, external_id: str
) -> list[tuple[str, str]]:
    return [
        ("accounts", "/api/v1/accounts/"),
        ("accounts, region filter", f"/api/v1/accounts/?region={region}"),
        ("accounts, segment filter", f"/api/v1/accounts/?region={region}&size_band=enterprise"),
        ("accounts, by external id", f"/api/v1/accounts/?external_id={external_id}"),
        ("accounts, page 2", "next:/api/v1/accounts/"),
        ("coverage", "/api/v1/coverage/"),
        ("coverage, active partner kind", "/api/v1/coverage/?kind=partner&active_on=2026-11-01"),
        ("partners", "/api/v1/partners/?channel_kind=partner"),
        ("agreements", "/api/v1/agreements/?status=active"),
        ("feedback", "/api/v1/feedback/"),
        ("reps", "/api/v1/reps/"),
        ("metrics segments, one region", f"/api/v1/metrics/segments/?week={week}&region={region}"),
        ("metrics segments, whole week", f"/api/v1/metrics/segments/?week={week}&page_size=5000"),
        ("metrics rollup by region", f"/api/v1/metrics/rollup/?week={week}&by=region"),
        ("metrics rollup by channel", f"/api/v1/metrics/rollup/?week={week}&by=channel"),
        ("metrics per partner", f"/api/v1/metrics/partners/?week={week}"),
        ("metrics trend", f"/api/v1/metrics/trend/?first={first_week}&last={week}&by=total"),
    ]


class Command(BaseCommand):
    help = "Print p50/p95 server time of the API list and metrics endpoints (in-process)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="manager", help="Whose token to use.")
        parser.add_argument("--repeat", type=int, default=40, help="Timed requests each.")
        parser.add_argument("--partner-username", default="partner-a")

    def handle(self, *args: Any, **options: Any) -> None:
        self._keys: dict[int, str] = {}
        users = get_user_model().objects
        user = users.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}; run seed_demo first")
        region = Region.objects.order_by("code").values_list("code", flat=True).first() or ""
        weeks = self._weeks(user)
        if not weeks:
            raise CommandError("no metric snapshot; run compute_metrics --last 2 first")
        # An account half way through the table, so that the lookup finds one.
        accounts = Account.objects.order_by("id")
        middle = accounts[accounts.count() // 2 :].values_list("external_id", flat=True).first()
        endpoints = _endpoints(
            region=region, week=weeks[-1], first_week=weeks[0], external_id=middle or "none"
        )
        runs = [(user, endpoints)]
        partner_user = users.filter(username=options["partner_username"]).first()
        if partner_user is not None:
            runs.append((partner_user, [("partner user: accounts", "/api/v1/accounts/")]))

        self.stdout.write(f"{connection.vendor}, {options['repeat']} requests each, warm cache")
        self.stdout.write(
            f"{'endpoint':<36} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8}  rows"
            "   (cpu: this process only, without the database server; on a busy machine"
            " it shows what the wall time owes to waiting for a core)"
        )
        worst = ("", 0.0)
        for caller, targets in runs:
            client = self._client(caller)
            for label, path in targets:
                p50, p95, cpu, rows = self._time(client, path, repeat=options["repeat"])
                self.stdout.write(f"{label:<36} {p50:>8.1f} {p95:>8.1f} {cpu:>8.1f}  {rows}")
                if p95 > worst[1]:
                    worst = (label, p95)
        # The metrics endpoints keep their encoded rows under the snapshot version, so only the
        # first request of a query after a run reads and encodes them: timed here apart, with
        # the cache emptied before each request, and not counted in the verdict below.
        client = self._client(user)
        path = dict(endpoints)["metrics segments, whole week"]
        p50, p95, cpu, rows = self._time(client, path, repeat=options["repeat"], cold=True)
        label = "(first request after a run)"
        self.stdout.write(f"{label:<36} {p50:>8.1f} {p95:>8.1f} {cpu:>8.1f}  {rows}")
        verdict = "within" if worst[1] <= TARGET_MS else "over"
        self.stdout.write(
            f"bench_api: {connection.vendor}, worst p95 {worst[1]:.1f} ms ({worst[0]}), "
            f"{verdict} the {TARGET_MS:.0f} ms target"
        )

    def _client(self, user: User) -> Client:
        if user.pk not in self._keys:
            self._keys[user.pk] = api_token_issue(user=user)[1]
        # As behind the production proxy, which terminates HTTPS and says so
        # (SECURE_PROXY_SSL_HEADER); plain HTTP would get SECURE_SSL_REDIRECT's 301.
        return Client(
            HTTP_HOST="localhost",
            HTTP_AUTHORIZATION=f"Token {self._keys[user.pk]}",
            HTTP_X_FORWARDED_PROTO="https",
        )

    def _weeks(self, user: User) -> list[str]:
        response = self._client(user).get("/api/v1/metrics/weeks/?page_size=500")
        if response.status_code != 200:
            raise CommandError(f"{user} cannot read metrics (HTTP {response.status_code})")
        weeks = [row["week"] for row in response.json()["results"]]
        return weeks[-4:]

    def _time(
        self, client: Client, path: str, *, repeat: int, cold: bool = False
    ) -> tuple[float, float, float, int]:
        if path.startswith("next:"):
            path = path.removeprefix("next:")
            following = client.get(path).json()["next"]
            if following:  # a market of one page has no second page: time the first
                path = following.split("localhost", 1)[-1]
        timings, cpu_times = [], []
        rows = 0
        for attempt in range(repeat + 3):
            if cold:
                cache.clear()
            started, cpu_started = time.perf_counter(), time.thread_time()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.thread_time() - cpu_started) * 1000
            if response.status_code != 200:
                raise CommandError(
                    f"{path}: HTTP {response.status_code} {response.content[:200]!r}"
                )
            if attempt >= 3:  # the first requests warm caches and connections
                timings.append(elapsed)
                cpu_times.append(cpu)
                rows = len(response.json()["results"])
        timings.sort()
        p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
        return statistics.median(timings), p95, statistics.median(cpu_times), rows
