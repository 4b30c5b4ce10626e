"""Two beats (or a beat and a retry) send the Monday close at the same moment, to two workers:
the week is closed once.

"Once" means: exactly one `MetricsRun` of last week succeeded, so exactly one run wrote the
week's snapshot; the other delivery either found the week's lock held (and, retried, found the
closed week) or came after and found the closed week, and returned that run without writing.
The snapshot holds one row per segment and per partner, equal to an in-process run's rows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery
from django.db.models import Count
from django.utils import timezone

from analytics import metrics, services
from analytics.models import MetricsRun, PartnerSnapshot, RunStatus, SegmentSnapshot
from tests.analytics.conftest import StartWorker
from tests.analytics.market import random_market
from tests.analytics.test_services import snapshot_rows

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_it_closes_last_week_once_when_two_beats_send_it_together(
    start_worker: StartWorker, sender: Celery, redis_url: str
) -> None:
    random_market(61, accounts=400)
    week = metrics.iso_week_of(timezone.localdate() - timedelta(days=7))
    services.metrics_compute_week(week=week, final=True)
    expected = snapshot_rows(week)
    SegmentSnapshot.objects.all().delete()
    PartnerSnapshot.objects.all().delete()
    MetricsRun.objects.all().delete()

    # The production settings: a Redis week lock that outlives any run.
    start_worker(DJANGO_SETTINGS_MODULE="crm.settings_test")
    start_worker(DJANGO_SETTINGS_MODULE="crm.settings_test")
    sender.conf.result_backend = redis_url
    first = sender.send_task("analytics.close_last_week")
    second = sender.send_task("analytics.close_last_week")
    summaries = [first.get(timeout=120), second.get(timeout=120)]

    assert [summary["week"] for summary in summaries] == [week, week]
    runs = MetricsRun.objects.filter(week=week)
    assert runs.filter(status=RunStatus.SUCCEEDED).count() == 1
    assert not runs.exclude(status=RunStatus.SUCCEEDED).exists()
    assert snapshot_rows(week) == expected
    duplicated = (
        SegmentSnapshot.objects.filter(week=week)
        .values("region", "vertical", "size_band")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
    )
    assert not duplicated.exists()


def test_it_leaves_a_closed_week_alone_when_the_close_is_sent_again(
    start_worker: StartWorker, sender: Celery, redis_url: str
) -> None:
    random_market(62, accounts=200)
    week = metrics.iso_week_of(timezone.localdate() - timedelta(days=7))
    start_worker(DJANGO_SETTINGS_MODULE="crm.settings_test")
    sender.conf.result_backend = redis_url
    sender.send_task("analytics.close_last_week").get(timeout=120)
    closed = MetricsRun.objects.get(week=week, status=RunStatus.SUCCEEDED)
    rows = snapshot_rows(week)

    sender.send_task("analytics.close_last_week").get(timeout=120)

    assert list(MetricsRun.objects.filter(week=week)) == [closed]
    assert snapshot_rows(week) == rows
