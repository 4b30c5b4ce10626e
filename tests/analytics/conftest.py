"""Fixtures for the worker tests: a private Redis server and `celery -A crm worker` processes
on the pytest test database.

With CI=true a missing PostgreSQL or Redis fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from analytics import kept_rows

REDIS_PORT = 56379
BASE_DIR = Path(__file__).resolve().parents[2]


def unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required when CI=true")
    pytest.skip(f"{what} is not available")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server of our own, on port 56379 or, when that is taken, on a free port: a server
    shared with another test run would mix queues and stop under our feet."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server")
    port = REDIS_PORT if not _answers(REDIS_PORT) else _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            unavailable(f"a Redis server on port {port}")
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def postgres_db(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        unavailable("PostgreSQL as the test database (DATABASE_URL=postgres://...)")


def _database_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{settings['HOST']}{port}/{settings['NAME']}"


StartWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(postgres_db: None, redis_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start `celery -A crm worker` processes on the test database; all stopped at teardown."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    workers: list[subprocess.Popen[bytes]] = []

    def start(**extra_env: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.analytics.worker_settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": redis_url,
            **extra_env,
        }
        log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"test{len(workers)}@%h",
        ]
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        workers.append(process)
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
    connection.close()


@pytest.fixture
def sender(redis_url: str) -> Iterator[Celery]:
    """A Celery client on the test Redis broker (the app in this process runs tasks eagerly)."""
    # Not the current app: shared tasks in this process must keep running eagerly.
    client = Celery("test-sender", broker=redis_url, set_as_current=False)
    client.conf.broker_connection_retry_on_startup = True
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def nothing_kept() -> Iterator[None]:
    """No rows kept by this process before or after the test (`analytics.kept_rows`)."""
    kept_rows.forget_kept_rows()
    yield
    kept_rows.forget_kept_rows()
