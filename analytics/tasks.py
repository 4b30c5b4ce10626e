"""Celery tasks for the metrics: thin wrappers over `analytics.services`.

Every task is idempotent (a week's rows are replaced, never appended), acknowledged late so a
worker that dies mid-run hands the task to another, and retried only on transient failures:
a dropped database or Redis connection, or another run of the same week holding its lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

import redis.exceptions
from celery import chord, group, shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from analytics import digest, metrics, services
from analytics.digest import DigestNotReady
from analytics.models import MetricsRun
from crm.enqueue import TaskOptions
from crm.models import Region

TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    services.MetricsRunInProgress,
)
# Hard limit below the week lock's 30 minutes: a run never outlives the lock it holds.
WEEK_TASK_OPTIONS: TaskOptions = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
    "soft_time_limit": 15 * 60,
    "time_limit": 20 * 60,
}


class RunSummary(TypedDict):
    """What a metrics task returns (its Celery result)."""

    week: str
    final: bool
    as_of: str
    rows_written: int
    seconds: float | None


class DigestResult(TypedDict, total=False):
    week: str
    sent: int
    already_sent: bool


def _run_summary(run: MetricsRun) -> RunSummary:
    return {
        "week": run.week,
        "final": run.final,
        "as_of": run.as_of.isoformat(),
        "rows_written": run.rows_written,
        "seconds": run.seconds,
    }


@shared_task(name="analytics.compute_week", **WEEK_TASK_OPTIONS)
def compute_week(week: str, final: bool) -> RunSummary:
    """Compute one week in this worker (see `services.metrics_compute_week`)."""
    return _run_summary(services.metrics_compute_week(week=week, final=final))


@shared_task(name="analytics.compute_week_region", **WEEK_TASK_OPTIONS)
def compute_week_region(week: str, final: bool, region_ids: list[int]) -> services.RegionPart:
    """One region share of a split week; writes nothing (see `services.metrics_region_part`)."""
    return services.metrics_region_part(week=week, final=final, region_ids=region_ids)


@shared_task(name="analytics.merge_week", **WEEK_TASK_OPTIONS)
def merge_week(parts: list[services.RegionPart], week: str, final: bool) -> RunSummary:
    """The chord body of a split week: merge the region shares and write the week."""
    return _run_summary(services.metrics_merge_week(week=week, final=final, parts=parts))


def region_batches(batches: int) -> list[list[int]]:
    """Every region id, dealt round-robin into at most `batches` non-empty lists."""
    region_ids = list(Region.objects.order_by("id").values_list("id", flat=True))
    dealt = [region_ids[start::batches] for start in range(max(1, batches))]
    return [batch for batch in dealt if batch] or [[]]


@shared_task(name="analytics.compute_week_split", acks_late=True, ignore_result=True)
def compute_week_split(week: str, final: bool, batches: int = 4) -> None:
    """Share one week between workers: a chord of region shares merged into one write.

    Needs a result backend (Redis); the merged rows equal `compute_week`'s.
    """
    metrics.iso_week_as_of(week)
    header = group(compute_week_region.s(week, final, batch) for batch in region_batches(batches))
    chord(header)(merge_week.s(week, final))


@shared_task(name="analytics.close_last_week", **WEEK_TASK_OPTIONS)
def close_last_week() -> RunSummary:
    """Close last ISO week (relative to today) as final, once: see `services.metrics_close_week`."""
    week = metrics.iso_week_of(timezone.localdate() - timedelta(days=7))
    return _run_summary(services.metrics_close_week(week=week))


@shared_task(name="analytics.refresh_current_week", **WEEK_TASK_OPTIONS)
def refresh_current_week() -> RunSummary:
    """Compute the current ISO week as provisional, as of today."""
    week = metrics.iso_week_of(timezone.localdate())
    return _run_summary(services.metrics_compute_week(week=week, final=False))


@shared_task(
    name="analytics.send_weekly_digest",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, DigestNotReady),
    retry_backoff=600,
    retry_backoff_max=3600,
    max_retries=6,
)
def send_weekly_digest() -> DigestResult:
    """E-mail last week's leadership digest once its final snapshot exists (retried for a few
    hours while the Monday close is late); a week already sent is left alone."""
    week = metrics.iso_week_of(timezone.localdate() - timedelta(days=7))
    try:
        emails = digest.digest_send(week=week)
    except digest.DigestAlreadySent:
        return {"week": week, "sent": 0, "already_sent": True}
    return {"week": week, "sent": len(emails)}
