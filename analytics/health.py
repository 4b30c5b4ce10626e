"""GET /health/: is the database up, is Redis up, and how old is the latest final snapshot.

It lives in the top layer because it reads the snapshot runs. Answers 503 when something a monitor
should page about is wrong; the body says which.

A new installation has no final snapshot until its first weekly run: it counts as healthy while
it is younger than SNAPSHOT_MAX_AGE, and pages after that, as when the weekly job has stopped.
Its age is that of the first migration applied (`django_migrations.applied`, written when
`migrate` first builds the database, and kept by a backup and its restore). The first
MetricsRun would not do: a weekly job that never ran writes none.
"""

from __future__ import annotations

import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from analytics.models import MetricsRun

# A final snapshot closes every Monday; older than this means the weekly job has not run.
SNAPSHOT_MAX_AGE = timedelta(days=9)


def _database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - reported to the monitor, not raised
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _redis() -> dict[str, object]:
    if not settings.REDIS_URL:
        return {"ok": True, "configured": False}
    started = time.perf_counter()
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as error:
        return {"ok": False, "configured": True, "error": type(error).__name__}
    return {"ok": True, "configured": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _snapshot() -> dict[str, object]:
    try:
        latest = (
            MetricsRun.objects.filter(final=True, status="succeeded")
            .order_by("-as_of")
            .values("week", "as_of")
            .first()
        )
    except Exception as error:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": type(error).__name__}
    if latest is None:
        installed = MigrationRecorder.Migration.objects.aggregate(first=Min("applied"))["first"]
        installed_days = None if installed is None else (timezone.now() - installed).days
        new_install = installed is not None and timezone.now() - installed <= SNAPSHOT_MAX_AGE
        return {
            "ok": new_install,
            "week": None,
            "age_days": None,
            "installed_days": installed_days,
        }
    age = timezone.localdate() - latest["as_of"]
    return {"ok": age <= SNAPSHOT_MAX_AGE, "week": latest["week"], "age_days": age.days}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "redis": _redis()}
    checks["latest_final_snapshot"] = _snapshot() if checks["database"]["ok"] else {"ok": False}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, "checks": checks}, status=200 if healthy else 503)
