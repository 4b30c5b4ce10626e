"""Shared fixtures for the fault and load tests: the worker fixtures of tests/analytics, and a
throwaway PostgreSQL 15 cluster that a test may stop and restart without touching the test
database.

With CI=true a missing PostgreSQL binary, Redis or test database fails the test; elsewhere it
skips it (tests/services.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.analytics.conftest import postgres_db, sender, start_worker  # noqa: F401
from tests.services import free_port, service_missing

BASE_DIR = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("CI_PG_BIN", "/usr/lib/postgresql/15/bin"))


def wait_for(condition: Callable[[], Any], *, seconds: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as any other user it runs as that user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresCluster:
    """A private PostgreSQL 15 cluster on a free loopback port, owned by one test."""

    def __init__(self, root: Path) -> None:
        if not (PG_BIN / "postgres").exists():
            service_missing(f"needs PostgreSQL 15 binaries in {PG_BIN}")
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(root, user="postgres")

    @property
    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/crm"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self, *, template: Path | None = None) -> None:
        """Start a new cluster with an empty `crm` database, or a copy of `template` (the data
        directory of a stopped cluster, see `migrated_cluster_data`)."""
        if template is not None:
            subprocess.run(
                _as_postgres(["cp", "-a", str(template), str(self.data)]), check=True, timeout=120
            )
            self.start_again()
            return
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        self._pg_ctl("-l", str(self.log), "-o", self._options, "-w", "-t", "60", "start")
        subprocess.run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "crm",
            ],
            check=True,
            timeout=60,
        )

    def start_again(self) -> None:
        """Start the stopped cluster on the same port and data directory."""
        self._pg_ctl("-l", str(self.log), "-o", self._options, "-w", "-t", "60", "start")

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", "fast", "-w", "stop")


def manage_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like process (DEBUG off) on `database_url`."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "integration-secret-key-not-used-elsewhere",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        **extra,
    }


@pytest.fixture(scope="session")
def migrated_cluster_data() -> Iterator[Path]:
    """The data directory of a stopped PostgreSQL cluster whose `crm` database is migrated: made
    once a session, copied by each test that needs a cluster of its own (a copy starts in a
    second; `initdb` and `migrate` take most of a minute, several on a loaded machine)."""
    root = Path(tempfile.mkdtemp(prefix="pg-template-"))
    cluster = PostgresCluster(root)
    try:
        cluster.start()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=BASE_DIR,
            env=manage_env(cluster.url, REDIS_URL=""),
            check=True,
            timeout=900,
        )
        cluster.stop()
        yield cluster.data
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_cluster(migrated_cluster_data: Path) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (not the test database), its `crm` database migrated: free
    to stop and restart."""
    root = Path(tempfile.mkdtemp(prefix="pg-ops-"))
    cluster = PostgresCluster(root)
    try:
        cluster.start(template=migrated_cluster_data)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
