"""CPU per request of the load test's pages, one request at a time, in this process.

The load test (`scripts/loadtest.sh`) saturates two cores, so what decides its p95 is the CPU
each request costs. This script replays the scenario's requests (loadtest/locustfile.py) one
after the other through Django's request handler (the test client: every middleware, the
session, the sign-in, the templates) against the load test's market, and prints per page the
median CPU of this process (`cpu_p50`), the PostgreSQL backend's CPU per request (`pg_mean`,
read from /proc: the database server on the same machine), the wall time and the number of
queries. On a shared machine the CPU figures stay comparable where wall times do not.

Run it against a copy of a load test market (`LOADTEST_DIR=... scripts/loadtest.sh` leaves one
in `$LOADTEST_DIR/pgdata`; start it on a free port) with the settings of production:

    DATABASE_URL=postgres://postgres@127.0.0.1:PORT/crm REDIS_URL=redis://127.0.0.1:RPORT/0 \\
      DEBUG=false SECRET_KEY=... SECURE_SSL_REDIRECT=false ALLOWED_HOSTS='*' \\
      PYTHONPATH=. .venv/bin/python loadtest/page_cpu.py [--requests 15] [--only "dashboard,..."]

It signs in as the load test's users (lt-manager-1, lt-exec-1, lt-api-1 and lt-partner-1..4)
without their password, and adds contacts and feedback as the scenario does.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from crm.services import api_token_issue  # noqa: E402

Request = tuple[str, str, dict[str, Any] | None]


@dataclass(frozen=True)
class Page:
    name: str
    clients: list[Client]
    request: Callable[[], Request]


def backend_cpu_seconds() -> float:
    """CPU seconds the PostgreSQL backend of this process's connection has used so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    with open(f"/proc/{row[0]}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signed_in(username: str) -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(username=username))
    return client


def pages() -> list[Page]:
    manager, executive = signed_in("lt-manager-1"), signed_in("lt-exec-1")
    # Partners of different sizes: the portal's cost grows with the partner's accounts.
    portal = [signed_in(f"lt-partner-{n}") for n in range(1, 5)]
    token = api_token_issue(user=User.objects.get(username="lt-api-1"))[1]
    api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    listed = manager.get("/workspace/partners/").content.decode()
    partner_ids = [int(pk) for pk in re.findall(r"/workspace/partners/(\d+)/", listed)]
    weeks_page = api.get("/api/v1/metrics/weeks/").json()
    weeks = [
        item["week"] if isinstance(item, dict) else item
        for item in (weeks_page.get("results", []) if isinstance(weeks_page, dict) else weeks_page)
    ] or [""]
    pick = random.Random(1)

    def get(path: str) -> Callable[[], Request]:
        return lambda: ("get", path, None)

    def contact() -> Request:
        return (
            "post",
            f"/workspace/partners/{pick.choice(partner_ids)}/contacts/",
            {
                "name": f"Load Contact {pick.randint(1, 10**6)}",
                "title": "Alliance manager",
                "email": f"contact{pick.randint(1, 10**6)}@example.com",
            },
        )

    def feedback() -> Request:
        return (
            "post",
            "/workspace/feedback/log/",
            {
                "partner": pick.choice(partner_ids),
                "category": "pricing",
                "satisfaction": 3,
                "nps": 7,
                "subject": "Quarterly review notes",
                "body": "Logged during the partner call: pipeline and enablement needs.",
            },
        )

    return [
        Page(
            "partner page",
            [manager],
            lambda: ("get", f"/workspace/partners/{pick.choice(partner_ids)}/", None),
        ),
        Page("contact POST", [manager], contact),
        Page("portal accounts", portal, get("/portal/accounts/")),
        Page("ws accounts", [manager], get("/workspace/accounts/")),
        Page("dashboard", [executive], get("/dashboard/")),
        Page("ws partners", [manager], get("/workspace/partners/")),
        Page("ws feedback", [manager], get("/workspace/feedback/")),
        Page("ws agreements", [manager], get("/workspace/agreements/")),
        Page("feedback log POST", [manager], feedback),
        Page("api accounts", [api], get("/api/v1/accounts/")),
        Page("api partners", [api], get("/api/v1/partners/")),
        Page(
            "api segments",
            [api],
            lambda: ("get", f"/api/v1/metrics/segments/?week={pick.choice(weeks)}", None),
        ),
        Page("portal home", portal, get("/portal/")),
        Page("portal agreements", portal, get("/portal/agreements/")),
        Page("portal feedback", portal, get("/portal/feedback/")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=15, help="timed requests per page")
    parser.add_argument("--only", default="", help="page names, comma-separated")
    options = parser.parse_args()
    only = {name.strip() for name in options.only.split(",") if name.strip()}
    load = os.getloadavg()
    print(
        f"{'page':<20} {'cpu_p50':>8} {'cpu_min':>8} {'pg_mean':>8} {'wall_p50':>9} {'queries':>8}"
        f"   (ms; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    for page in pages():
        if only and page.name not in only:
            continue
        turn = iter(range(10**9))

        def run(page: Page = page, turn: Any = turn) -> None:
            client = page.clients[next(turn) % len(page.clients)]
            method, path, data = page.request()
            if method == "post":
                response = client.post(path, data, follow=True)
            else:
                response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{page.name}: {path} answered {response.status_code}")

        for _ in range(2 * len(page.clients)):  # each process's first views compile and cache
            run()
        queries: list[str] = []

        def counted(execute: Any, sql: str, *args: Any, queries: list[str] = queries) -> Any:
            queries.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(counted):
            run()
        cpu: list[float] = []
        wall: list[float] = []
        database = 0.0
        for _ in range(options.requests):
            before_db = backend_cpu_seconds()
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            run()
            cpu.append((time.process_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started_wall) * 1000)
            database += backend_cpu_seconds() - before_db
        print(
            f"{page.name:<20} {statistics.median(cpu):8.1f} {min(cpu):8.1f} "
            f"{database * 1000 / options.requests:8.1f} {statistics.median(wall):9.1f} "
            f"{len(queries):8d}"
        )


if __name__ == "__main__":
    main()
