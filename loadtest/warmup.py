"""Warm every gunicorn worker before the load test's traffic, so its figures are the steady state.

A worker's first requests are cold: the first imports the URL configuration and the analytics
stack behind it, the first of each page compiles its templates and opens the worker's database
connection. Left in the figures, they put seconds into the p95 of a short run, more the busier
the machine, and measure the start of a process rather than the app under load.

Run by `scripts/loadtest.sh` between gunicorn answering /health/ and locust's start (its
requests are not in locust's statistics). Every request type of loadtest/locustfile.py that
reads (the pages, the API lists, the sign-in form, a sign-in and an API token) is sent on a new
connection each time, several at once, in rounds, until gunicorn's access log shows that every
worker process has served each type at least `--per-worker` times. Nothing is written but the
sign-ins' sessions and tokens: no feedback or contact, which the portal's hourly limits count.

Usage: python loadtest/warmup.py --base URL --access-log FILE --master PID --password PASSWORD
       [--per-worker 2] [--concurrency 8] [--seconds 300]
Exit status 0 when every worker is warm, 1 when the time ran out first (the load test stops:
a cold worker would be measured).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

# gunicorn's default access log line, ending with the worker's process id as `<1234>`.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(p)s'
ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d+) .* <(?P<pid>\d+)>$'
)


def request_type(method: str, target: str) -> str:
    """`GET /workspace/partners/[id]/`: the request type a path belongs to, as locust names it."""
    path = re.sub(r"/\d+(?=/)", "/[id]", urlsplit(target).path)
    return f"{method} {path}"


def worker_pids(master: int) -> set[int]:
    """The gunicorn master's child processes: its workers."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.add(int(entry))
    return pids


def served(access_log: Path) -> Counter[tuple[int, str]]:
    """How many answered requests (below 500) of each type each worker served."""
    counts: Counter[tuple[int, str]] = Counter()
    for line in access_log.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match and int(match["status"]) < 500:
            key = request_type(match["method"], match["target"])
            counts[(int(match["pid"]), key)] += 1
    return counts


@dataclass
class Visit:
    """One request of the warm-up: a fresh connection, the signed-in user's cookies or token."""

    method: str
    path: str
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    sign_in_as: str = ""

    @property
    def type(self) -> str:
        return request_type(self.method, self.path)


class Warmer:
    def __init__(self, base: str, password: str) -> None:
        self.base = base.rstrip("/")
        self.password = password

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def sign_in(self, username: str) -> requests.Session:
        session = requests.Session()
        session.headers["Connection"] = "close"
        session.get(self.url("/accounts/login/"), timeout=600)
        answer = session.post(
            self.url("/accounts/login/"),
            data={
                "username": username,
                "password": self.password,
                "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
            },
            timeout=600,
        )
        if urlsplit(answer.url).path.startswith("/accounts/login/"):
            raise SystemExit(f"warm-up: sign-in refused for {username}")
        return session

    def token(self, username: str) -> str:
        answer = requests.post(
            self.url("/api/v1/auth/token/"),
            data={"username": username, "password": self.password},
            headers={"Connection": "close"},
            timeout=600,
        )
        answer.raise_for_status()
        return str(answer.json()["token"])

    def visits(self) -> list[Visit]:
        manager = self.sign_in("lt-manager-1")
        partner = self.sign_in("lt-partner-1")
        executive = self.sign_in("lt-exec-1")
        api = {"Authorization": f"Token {self.token('lt-api-1')}", "Connection": "close"}
        partners = manager.get(self.url("/workspace/partners/"), timeout=600).text
        partner_id = next(iter(re.findall(r"/workspace/partners/(\d+)/", partners)), None)
        weeks = requests.get(self.url("/api/v1/metrics/weeks/"), headers=api, timeout=600).json()
        listed = weeks.get("results", weeks) if isinstance(weeks, dict) else weeks
        week = next((item["week"] if isinstance(item, dict) else item for item in listed), "")

        def pages(session: requests.Session, paths: list[str]) -> list[Visit]:
            return [
                Visit("GET", path, cookies={c.name: c.value or "" for c in session.cookies})
                for path in paths
            ]

        manager_pages = [
            "/workspace/accounts/",
            "/workspace/partners/",
            "/workspace/feedback/",
            "/workspace/agreements/",
            "/workspace/feedback/log/",
        ]
        if partner_id:
            manager_pages.append(f"/workspace/partners/{partner_id}/")
        return [
            Visit("GET", "/accounts/login/"),
            Visit("POST", "/accounts/login/", sign_in_as="lt-manager-1"),
            Visit("POST", "/api/v1/auth/token/", sign_in_as="lt-api-1"),
            *pages(manager, manager_pages),
            *pages(
                partner,
                [
                    "/portal/",
                    "/portal/accounts/",
                    "/portal/agreements/",
                    "/portal/feedback/",
                    "/portal/feedback/new/",
                ],
            ),
            *pages(executive, ["/dashboard/"]),
            *[
                Visit("GET", path, headers=api)
                for path in (
                    "/api/v1/metrics/weeks/",
                    "/api/v1/accounts/",
                    "/api/v1/partners/",
                    f"/api/v1/metrics/segments/?week={week}",
                )
            ],
        ]

    def send(self, visit: Visit) -> None:
        try:
            if visit.sign_in_as and visit.path == "/accounts/login/":
                self.sign_in(visit.sign_in_as)
            elif visit.sign_in_as:
                self.token(visit.sign_in_as)
            else:
                requests.request(
                    visit.method,
                    self.url(visit.path),
                    cookies=visit.cookies,
                    headers={"Connection": "close", **visit.headers},
                    timeout=600,
                )
        except requests.RequestException as error:
            print(f"warm-up: {visit.type}: {error}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--access-log", type=Path, required=True)
    parser.add_argument("--master", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--per-worker", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=300)
    options = parser.parse_args()

    started = time.monotonic()
    warmer = Warmer(options.base, options.password)
    visits = warmer.visits()
    types = {visit.type for visit in visits}
    workers = worker_pids(options.master)
    rounds = sent = 0
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        while True:
            counts = served(options.access_log)
            cold = {
                (pid, kind)
                for pid in workers
                for kind in types
                if counts[(pid, kind)] < options.per_worker
            }
            elapsed = time.monotonic() - started
            if not cold or elapsed > options.seconds:
                break
            # Each round sends every type still cold somewhere, as many times at once as there
            # are connections; the kernel hands each new connection to whichever worker accepts.
            batch = [v for v in visits if any(kind == v.type for _, kind in cold)]
            rounds += 1
            sent += len(batch) * options.concurrency
            list(pool.map(warmer.send, [v for v in batch for _ in range(options.concurrency)]))
            workers = worker_pids(options.master)
    summary = (
        f"warm-up: {rounds} rounds, {sent} requests in {elapsed:.0f} s; "
        f"{len(workers)} workers x {len(types)} request types"
    )
    if cold:
        missing = sorted(f"{pid} {kind}" for pid, kind in cold)
        print(f"{summary}: still cold after {options.seconds:.0f} s: {', '.join(missing[:10])}")
        return 1
    print(f"{summary}, each served at least {options.per_worker} times by every worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
