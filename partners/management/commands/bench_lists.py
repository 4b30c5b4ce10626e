"""Operator job: time the workspace lists on a large synthetic market.

Seeds through the fast import path into the configured (empty) database, then requests each
list in-process as a sales manager and prints server-side timings.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.models import Account
from partners.management.commands.bench_import import market_generate
from partners.market_import import market_import

LISTS = [
    ("accounts, region filter", "/workspace/accounts/?region=R03"),
    (
        "accounts, segment filter",
        "/workspace/accounts/?region=R07&vertical=V04&size_band=enterprise",
    ),
    ("accounts, white space in a region", "/workspace/accounts/?region=R11&coverage=none"),
    ("accounts, partner coverage", "/workspace/accounts/?vertical=V02&coverage=partner"),
    ("accounts, sorted by entry date", "/workspace/accounts/?size_band=strategic&sort=-entered_on"),
    ("accounts, search by external id", "/workspace/accounts/?q=ACC-00500000"),
    ("accounts, name search in a region", "/workspace/accounts/?region=R09&q=Account 12"),
    ("accounts, page 20", "/workspace/accounts/?region=R05&page=20"),
    ("partners", "/workspace/partners/"),
    ("agreements", "/workspace/agreements/?status=active"),
    ("feedback", "/workspace/feedback/"),
    ("reps", "/workspace/reps/"),
]


class SqlTimer:
    """A database execute wrapper that adds up the time spent waiting for the database."""

    def __init__(self) -> None:
        self.spent = 0.0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.spent += time.perf_counter() - started


class Command(BaseCommand):
    help = "Time the workspace lists (server side, p50/p95) on a synthetic market of N accounts."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--accounts", type=int, default=1_000_000)
        parser.add_argument(
            "--requests", type=int, default=30, help="Requests per list (default 30)."
        )
        parser.add_argument("--reuse", action="store_true", help="Use the market already loaded.")
        parser.add_argument("--force", action="store_true", help="Load even if accounts exist.")

    def handle(self, *args: Any, **options: Any) -> None:
        existing = Account.objects.count()
        if options["reuse"]:
            if existing == 0:
                raise CommandError("--reuse: the database holds no accounts to benchmark")
        elif existing and not options["force"]:
            raise CommandError(
                f"the database already holds {existing:,} accounts; point DATABASE_URL at an empty "
                "benchmark database, or pass --reuse to benchmark what is there"
            )
        else:
            with tempfile.TemporaryDirectory() as directory:
                self.stdout.write(f"generating {options['accounts']:,} accounts with coverage…")
                market_generate(
                    directory=Path(directory), accounts=options["accounts"], with_coverage=True
                )
                started = time.perf_counter()
                market_import(paths=[directory])
                self.stdout.write(f"loaded in {time.perf_counter() - started:.1f} s")
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("VACUUM ANALYZE")
                else:
                    cursor.execute("ANALYZE")
        accounts = Account.objects.count()
        user, _ = get_user_model().objects.get_or_create(username="bench-manager")
        user.groups.add(Group.objects.get_or_create(name="sales_manager")[0])
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        worst = 0.0
        account_worst = 0.0
        for label, url in LISTS:
            client.get(url)  # warm the connection and caches
            timings, cpu_times, sql_times = [], [], []
            sql = SqlTimer()
            with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(sql):
                for _ in range(options["requests"]):
                    sql.spent = 0.0
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                    cpu_times.append((time.thread_time() - cpu_started) * 1000)
                    sql_times.append(sql.spent * 1000)
                    if response.status_code != 200:
                        raise CommandError(f"{url} answered {response.status_code}")
            p50 = statistics.median(timings)
            p95 = statistics.quantiles(timings, n=20)[-1] if len(timings) >= 2 else timings[0]
            per_request = len(queries) // options["requests"]
            # This process's CPU alone (not the database server's): on a busy machine it
            # shows how much of the wall time is waiting for a core. The SQL time is the wait
            # for the database's answers; the slowest request's split tells whether its extra
            # time was spent in the database or in this process.
            cpu = statistics.median(cpu_times)
            slowest = max(range(len(timings)), key=timings.__getitem__)
            self.stdout.write(
                f"{label:<36} p50={p50:7.1f} ms  p95={p95:7.1f} ms  cpu_p50={cpu:6.1f} ms  "
                f"sql_p50={statistics.median(sql_times):6.1f} ms  queries={per_request}  "
                f"slowest={timings[slowest]:.0f} ms (cpu {cpu_times[slowest]:.0f}, "
                f"sql {sql_times[slowest]:.0f})"
            )
            worst = max(worst, p95)
            if url.startswith("/workspace/accounts/"):
                account_worst = max(account_worst, p95)
        self.stdout.write(
            f"bench_lists: accounts={accounts} account_list_p95_ms={account_worst:.1f} "
            f"worst_list_p95_ms={worst:.1f} database={connection.vendor}"
        )
