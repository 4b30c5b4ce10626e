from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from celery.schedules import crontab
from django.db import OperationalError

from analytics import services, tasks
from analytics.models import MetricsRun, SegmentSnapshot
from analytics.schedule import BEAT_SCHEDULE
from crm.celery import app
from partners.models import AgreementStatus
from partners.tasks import agreements_expire_task
from tests.analytics.market import random_market
from tests.analytics.test_services import snapshot_rows
from tests.factories import AgreementFactory

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.mark.django_db
def test_it_computes_a_week_through_the_task() -> None:
    random_market(31, accounts=40)
    result = tasks.compute_week.delay("2026-W46", True).get()
    assert result["week"] == "2026-W46"
    assert result["as_of"] == "2026-11-15"
    assert SegmentSnapshot.objects.filter(week="2026-W46").exists()


@pytest.mark.django_db
def test_it_closes_last_week_as_final_and_refreshes_this_week_as_provisional() -> None:
    random_market(32, accounts=20)
    assert tasks.close_last_week.delay().get()["week"] == "2026-W46"
    refreshed = tasks.refresh_current_week.delay().get()
    assert (refreshed["week"], refreshed["final"], refreshed["as_of"]) == (
        "2026-W47",
        False,
        "2026-11-18",
    )
    assert {r.week: r.final for r in MetricsRun.objects.all()} == {
        "2026-W46": True,
        "2026-W47": False,
    }


@pytest.mark.django_db
def test_it_splits_a_week_by_region_into_a_chord_with_the_same_rows() -> None:
    random_market(33, accounts=120)
    tasks.compute_week.delay("2026-W20", True).get()
    whole = snapshot_rows("2026-W20")
    tasks.compute_week_split.delay("2026-W20", True, 2)
    assert snapshot_rows("2026-W20") == whole
    assert MetricsRun.objects.filter(week="2026-W20", status="succeeded").count() == 2


def test_it_retries_only_transient_errors() -> None:
    retried = tasks.compute_week.autoretry_for
    assert OperationalError in retried
    assert services.MetricsRunInProgress in retried
    assert ValueError not in retried and Exception not in retried
    for task in (tasks.compute_week, tasks.merge_week, tasks.close_last_week):
        assert task.acks_late
        assert task.soft_time_limit < task.time_limit <= 30 * 60


@pytest.mark.django_db
def test_it_expires_agreements_past_their_end_date() -> None:
    ended = AgreementFactory(start_date=date(2025, 11, 1), end_date=date(2026, 11, 17))
    last_day = AgreementFactory(start_date=date(2025, 11, 1), end_date=date(2026, 11, 18))
    assert agreements_expire_task.delay().get() == 1
    ended.refresh_from_db()
    last_day.refresh_from_db()
    assert ended.status == AgreementStatus.EXPIRED
    assert last_day.status == AgreementStatus.ACTIVE


def test_it_schedules_every_job_on_a_crontab_with_an_expiry() -> None:
    assert app.conf.beat_schedule == BEAT_SCHEDULE
    app.loader.import_default_modules()  # every app's task module, as a worker loads them
    names = {entry["task"] for entry in BEAT_SCHEDULE.values()}
    assert names >= {
        "analytics.close_last_week",
        "analytics.refresh_current_week",
        "partners.agreements_expire",
    }
    for entry in BEAT_SCHEDULE.values():
        assert isinstance(entry["schedule"], crontab)
        assert entry["task"] in app.tasks
        assert 0 < entry["options"]["expires"] <= 24 * 3600
