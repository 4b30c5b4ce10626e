"""A real worker on PostgreSQL and Redis computes weeks through the queue, and survives being
killed mid-run."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from analytics import services
from analytics.models import (
    MetricsRun,
    PartnerRollup,
    PartnerSnapshot,
    RunStatus,
    SegmentRollup,
    SegmentSnapshot,
)
from tests.analytics.conftest import StartWorker
from tests.analytics.market import random_market
from tests.analytics.test_services import snapshot_rows

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WEEK = "2026-W10"


def wait_for(condition: Callable[[], Any], *, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


ROLLUPS = (SegmentRollup, PartnerRollup)


def week_rows(week: str) -> tuple[list[tuple[Any, ...]], ...]:
    """The week's segment and partner snapshots and every rollup row, without ids and times."""
    rollups = []
    for model in ROLLUPS:
        fields = [
            f.attname
            for f in model._meta.fields
            if f.attname not in {"id", "created_at", "updated_at"}
        ]
        rollups.append(sorted(model.objects.filter(week=week).values_list(*fields), key=repr))
    return (*snapshot_rows(week), *rollups)


def expected_week() -> tuple[list[tuple[Any, ...]], ...]:
    """The rows an in-process run writes; then the week is cleared for the worker."""
    services.metrics_compute_week(week=WEEK, final=True)
    rows = week_rows(WEEK)
    assert all(rows), "the market gives rows of every kind"
    for model in (SegmentSnapshot, PartnerSnapshot, *ROLLUPS, MetricsRun):
        model.objects.all().delete()
    return rows


def succeeded() -> bool:
    return MetricsRun.objects.filter(week=WEEK, status=RunStatus.SUCCEEDED).exists()


def test_it_computes_a_week_through_the_queue(start_worker: StartWorker, sender: Celery) -> None:
    random_market(41, accounts=150)
    expected = expected_week()
    start_worker()
    sender.send_task("analytics.compute_week", args=[WEEK, True])
    wait_for(succeeded, seconds=90, what="the worker's run")
    assert week_rows(WEEK) == expected


def test_it_splits_a_week_between_workers_with_the_same_rows(
    start_worker: StartWorker, sender: Celery, redis_url: str
) -> None:
    random_market(42, accounts=150)
    expected = expected_week()
    sender.conf.result_backend = redis_url
    start_worker()
    start_worker()
    sender.send_task("analytics.compute_week_split", args=[WEEK, True, 3])
    wait_for(succeeded, seconds=90, what="the merged run")
    assert week_rows(WEEK) == expected


def test_it_ends_with_one_complete_snapshot_after_a_worker_is_killed_mid_run(
    start_worker: StartWorker, sender: Celery, tmp_path: Path
) -> None:
    random_market(43, accounts=150)
    expected = expected_week()
    pause = tmp_path / "pause"
    pause.touch()
    worker = start_worker(METRICS_PAUSE_FILE=str(pause))
    sender.send_task("analytics.compute_week", args=[WEEK, True])
    wait_for(Path(f"{pause}.reached").exists, seconds=90, what="the run to reach its write")

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    pause.unlink()
    # The write transaction died with the worker; the run it started is left running.
    assert not SegmentSnapshot.objects.filter(week=WEEK).exists()
    assert MetricsRun.objects.get(week=WEEK).status == RunStatus.RUNNING

    start_worker(METRICS_PAUSE_FILE=str(pause))
    wait_for(succeeded, seconds=120, what="the redelivered run")
    assert week_rows(WEEK) == expected
    runs = list(MetricsRun.objects.filter(week=WEEK).order_by("started_at"))
    assert runs[0].status == RunStatus.FAILED and "abandoned" in runs[0].error
    assert runs[-1].status == RunStatus.SUCCEEDED
    assert [r.status for r in runs].count(RunStatus.SUCCEEDED) == 1
