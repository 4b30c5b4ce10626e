"""A survey wave goes out on a real worker: the daily beat job, sent through Redis to a Celery
worker on PostgreSQL, opens the wave and writes its invitations to the outbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from celery import Celery

from crm.models import OutboundEmail
from partners.programme_models import SurveyInvitation, SurveyWave
from partners.survey_services import SurveyValues, survey_create
from tests.analytics.conftest import StartWorker
from tests.factories import PartnerContactFactory, PartnerFactory, UserFactory


def _wait_for(condition: Callable[[], Any], *, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.postgres
@pytest.mark.redis
def test_a_wave_goes_out_on_a_real_worker(start_worker: StartWorker, sender: Celery) -> None:
    alpha = PartnerFactory(name="Alpha")
    PartnerContactFactory(partner=alpha, email="a1@alpha.example")
    survey_create(
        values=SurveyValues(name="Pulse", categories=["support"]),
        by=UserFactory(role="sales_manager"),
    )
    start_worker()
    sender.send_task("partners.surveys_daily", args=["2026-10-02"])
    wave = _wait_for(SurveyWave.objects.first, seconds=90, what="the worker's wave")
    assert wave.opens_on == date(2026, 10, 2)
    _wait_for(
        lambda: OutboundEmail.objects.filter(topic="survey-invitation").exists(),
        seconds=30,
        what="the invitation in the outbox",
    )
    assert SurveyInvitation.objects.get().email == "a1@alpha.example"
