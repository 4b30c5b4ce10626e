"""Outside services the suite needs: PostgreSQL, Redis and Chromium.

Tests marked `postgres` are deselected when the test database is not PostgreSQL (CI runs the
suite a second time on PostgreSQL). Tests that need Redis or a browser skip with a reason on a
laptop without them, and fail under CI=true, where a missing service is a broken pipeline.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.conf import settings

# Playwright's sync API keeps an event loop running in the main thread; Django would otherwise
# refuse ORM calls from the test body and from live_server's set-up there. Django reads this
# when an ORM call is made, so setting it at import of this plugin is early enough.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
POSTGRES_HINT = "DATABASE_URL=postgres://USER@HOST:PORT/DB make test"

_call_report = pytest.StashKey[pytest.TestReport]()
_postgres_deselected = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    # pytest-playwright's own session fixture; nothing in this suite relies on what it warns about.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning",
    )


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def service_missing(reason: str) -> NoReturn:
    """Skip on a developer machine; fail under CI=true, where every service must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so a missing service fails the run)", pytrace=False)
    pytest.skip(reason)


def database_is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def require_postgres() -> None:
    """For tests that only mean something on PostgreSQL; mark them `postgres` as well."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL as the test database; run {POSTGRES_HINT}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if database_is_postgres():
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        needs_postgres = item.get_closest_marker("postgres") is not None or (
            "require_postgres" in getattr(item, "fixturenames", ())
        )
        (deselected if needs_postgres else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    config.stash[_postgres_deselected] = len(deselected)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    count = config.stash.get(_postgres_deselected, 0)
    if count:
        terminalreporter.write_line(
            f"{count} test(s) marked postgres deselected: the test database is not PostgreSQL; "
            f"run them with {POSTGRES_HINT}",
            yellow=True,
        )


# Redis -----------------------------------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A reachable Redis: TEST_REDIS_URL when set, else a private redis-server on a free port."""
    configured = os.environ.get("TEST_REDIS_URL", "")
    if configured:
        if not _redis_answers(configured):
            service_missing(f"TEST_REDIS_URL={configured} does not answer PING")
        yield configured
        return

    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("needs Redis: install redis-server or set TEST_REDIS_URL=redis://...")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                service_missing(f"redis-server on port {port} did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(autouse=True)
def _redis_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """A test marked `redis` skips (or fails under CI) without Redis, even if it never asks."""
    if request.node.get_closest_marker("redis") is not None:
        request.getfixturevalue("redis_url")


# Browser ---------------------------------------------------------------------------------------


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        service_missing(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium instead of a browser downloaded by Playwright; nothing phones home."""
    _require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


@pytest.fixture(autouse=True)
def _browser_screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep a full-page screenshot of a failed browser test in test-results/screenshots/."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    _require_chromium()
    # Asking for the page here, rather than only in the test, makes it close after this
    # fixture's teardown, so the screenshot still has a page to take.
    page = request.getfixturevalue("page") if "page" in request.fixturenames else None
    yield
    report = request.node.stash.get(_call_report, None)
    if page is None or report is None or not report.failed:
        return
    folder = request.config.rootpath / "test-results" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
