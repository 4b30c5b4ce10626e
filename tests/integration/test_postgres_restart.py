"""PostgreSQL goes away for a few seconds under traffic: requests fail fast with the app's own
error, and gunicorn, a Celery worker and beat recover when it is back, with no restart of their
own.

The stack runs against a throwaway PostgreSQL cluster (not the test database, which lives on the
CI server and must keep running) and a Redis of its own database number. The cluster is stopped,
probed while down, and started again: `pg_ctl restart` alone is over too quickly to observe the
outage from outside. Persistent connections (CONN_MAX_AGE=600) with CONN_HEALTH_CHECKS are what
let each process drop its dead connection and open a new one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from celery import Celery

from loadtest.warmup import ACCESS_LOG_FORMAT, request_type, served, worker_pids
from tests.integration.conftest import BASE_DIR, PostgresCluster, manage_env, wait_for
from tests.services import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "restart-check-password"
# A request during the outage must be answered within this many seconds.
FAIL_FAST_SECONDS = 5.0
OUTAGE_SECONDS = 4.0


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.processes[name] = process
        return process

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def stack(postgres_cluster: PostgresCluster, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """Migrated, seeded and served: gunicorn, `celery worker` and `celery beat`."""
    import redis

    redis_db = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(redis_db).flushdb()
    env = manage_env(postgres_cluster.url, REDIS_URL=redis_db, VAR_DIR=str(tmp_path / "var"))
    stack = Stack(env=env, logs=tmp_path)
    # The cluster's database is migrated already (a copy of the session's template).
    stack.manage("seed_demo", "--accounts", "200", "--password", PASSWORD)
    stack.manage("compute_metrics", "--last", "2", "--no-progress")  # /health/ wants a week
    stack.start(
        "gunicorn",
        "gunicorn",
        "crm.wsgi",
        "-b",
        f"127.0.0.1:{stack.port}",
        "--workers",
        "2",
        # A worker's first request imports the analytics stack: on a loaded machine that takes
        # longer than gunicorn's 30 s default, which would kill the worker and start over.
        "--timeout",
        "120",
        "--access-logfile",
        str(tmp_path / "access.log"),
        "--access-logformat",
        ACCESS_LOG_FORMAT,
    )
    stack.start(
        "worker",
        "celery",
        "-A",
        "crm",
        "worker",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        "restart@%h",
    )
    stack.start(
        "beat",
        "celery",
        "-A",
        "crm",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(tmp_path / "beat-schedule"),
        "--pidfile",
        "",
    )
    try:
        wait_for(lambda: _status(f"{stack.base}/health/") == 200, seconds=240, what="gunicorn")
        yield stack
    except AssertionError:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        if stack.alive("gunicorn"):
            print(requests.get(f"{stack.base}/health/", timeout=5).text)
        raise
    finally:
        stack.stop()


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def _warm(stack: Stack, master: int, urls: dict[str, dict[str, str]]) -> bool:
    """Send each URL a few times at once on new connections; True once every gunicorn worker
    has answered each of them (its access log names the worker of each request)."""

    def get(url: str) -> None:
        try:
            requests.get(url, headers={**urls[url], "Connection": "close"}, timeout=120)
        except requests.RequestException:
            pass

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(get, [url for url in urls for _ in range(4)]))
    counts = served(stack.logs / "access.log")
    paths = [request_type("GET", url.removeprefix(stack.base)) for url in urls]
    workers = worker_pids(master)
    return bool(workers) and all(counts[(pid, path)] for pid in workers for path in paths)


def _flush_outbox(sender: Celery) -> int:
    return sender.send_task("crm.outbound_emails_flush").get(timeout=60)


def test_it_fails_fast_while_postgres_is_down_and_recovers_without_restarts(
    stack: Stack, postgres_cluster: PostgresCluster
) -> None:
    api = requests.Session()
    answer = api.post(
        f"{stack.base}/api/v1/auth/token/",
        data={"username": "manager", "password": PASSWORD},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    api.headers["Authorization"] = f"Token {answer.json()['token']}"
    accounts = f"{stack.base}/api/v1/accounts/"
    health = f"{stack.base}/health/"
    sender = Celery("restart-sender", broker=stack.env["REDIS_URL"])
    sender.conf.result_backend = stack.env["REDIS_URL"]
    gunicorn_pid = stack.processes["gunicorn"].pid
    try:
        assert api.get(accounts, timeout=10).status_code == 200
        assert _flush_outbox(sender) >= 0
        # Both workers warm before the outage: a worker's first request imports the analytics
        # stack, seconds on a loaded machine, which is not what the fail-fast bound is about.
        wait_for(
            lambda: _warm(stack, gunicorn_pid, {health: {}, accounts: dict(api.headers)}),
            seconds=240,
            what="every gunicorn worker to serve /health/ and the accounts list",
        )

        postgres_cluster.stop()
        outage: list[tuple[str, int, float]] = []
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            for url, get in ((health, requests.get), (accounts, api.get)):
                started = time.monotonic()
                # A hang shows as a Timeout here, failing the test.
                response = get(url, timeout=FAIL_FAST_SECONDS + 5)
                outage.append((url, response.status_code, time.monotonic() - started))
                if url == accounts:
                    assert "Something went wrong" in response.text
            time.sleep(0.2)
        postgres_cluster.start_again()

        assert outage
        assert {status for url, status, _ in outage if url == health} == {503}
        assert {status for url, status, _ in outage if url == accounts} == {500}
        assert max(seconds for _, _, seconds in outage) < FAIL_FAST_SECONDS

        wait_for(lambda: _status(health) == 200, seconds=30, what="/health/ to answer 200")
        assert api.get(accounts, timeout=10).status_code == 200
        assert _flush_outbox(sender) >= 0
        assert stack.processes["gunicorn"].pid == gunicorn_pid
        assert stack.alive("gunicorn") and stack.alive("worker") and stack.alive("beat")
    finally:
        sender.close()
