"""A short load test in CI: scripts/loadtest.sh on a small market (1,000 accounts, 10 users,
15 s at full strength) serves the whole mixed traffic of loadtest/locustfile.py - managers,
partners, executives and API clients, reads and form posts - with no failed request.

No latency target is asserted here: CI runs on a machine 2-5 times slower than a developer's,
sharing its two cores with another test pass, so a latency bound would fail on machine load
alone. Speed is measured by full runs of the script, which print their figures (README, "Load
test"). The verdict's bounds are set to gunicorn's worker timeout (30 s), which a request can
only reach by hanging; such a request is killed and fails the run anyway.

The script warms every gunicorn worker before locust starts (loadtest/warmup.py), and the
cluster starts from the session's migrated template, as test_postgres_restart's does.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import BASE_DIR, PG_BIN
from tests.services import service_missing

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# gunicorn's --timeout in scripts/loadtest.sh: no answered request can take longer.
HANG_MS = 30_000


def test_it_serves_a_short_mixed_load_without_errors(migrated_cluster_data: Path) -> None:
    if not (PG_BIN / "initdb").exists():
        service_missing(f"needs PostgreSQL 15 binaries in {PG_BIN}")
    env = {
        **os.environ,
        "ACCOUNTS": "1000",
        "USERS": "10",
        "SPAWN": "10",
        "DURATION": "15s",
        "WEB_WORKERS": "2",
        "P95_MAX_MS": str(HANG_MS),
        "P99_MAX_MS": str(HANG_MS),
        "PG_BIN": str(PG_BIN),
        "PG_TEMPLATE": str(migrated_cluster_data),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "LOADTEST_DIR"):
        env.pop(name, None)
    run = subprocess.run(
        ["bash", "scripts/loadtest.sh"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout[-6000:], run.stderr[-3000:])
    assert re.search(
        r"^warm-up: .* each served at least 2 times by every worker$", run.stdout, re.M
    )
    summary = re.search(
        r"^loadtest: .* users=10 .* requests=(\d+) failures=(\d+) rps=[\d.]+ p50_ms=\d+ "
        r"p95_ms=\d+ p99_ms=\d+ load_start=[\d./]+ load_end=[\d./]+ .* verdict=(\w+)",
        run.stdout,
        re.MULTILINE,
    )
    assert summary, "the script printed no summary line"
    requests, failures = int(summary.group(1)), int(summary.group(2))
    assert requests > 0 and failures == 0
    # Every kind of user was served: sign-ins, the workspace, the portal, the dashboard, the API.
    served = set(re.findall(r"^(?:GET|POST) (\S+)", run.stdout, re.MULTILINE))
    for prefix in ("/accounts/login/", "/workspace/", "/portal/", "/dashboard/", "/api/v1/"):
        assert any(name.startswith(prefix) for name in served), (prefix, sorted(served))
    assert run.returncode == 0 and summary.group(3) == "PASS"
