"""A survey wave goes out on a real worker: the daily beat job, sent through Redis to a Celery
worker on PostgreSQL, opens the wave and writes its invitations to the outbox; the answer sent
through the link counts in the partner's satisfaction and NPS of the week the worker then
computes (docs/metrics.md rule 6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from django.test import Client
from django.utils import timezone

from analytics import metrics, reports
from analytics.models import MetricsRun, RunStatus
from crm.models import OutboundEmail
from partners.programme_models import SurveyInvitation, SurveyWave
from partners.survey_services import SurveyValues, survey_create, survey_link_token
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
        values=SurveyValues(name="Pulse", categories=["support"], schedule="monthly"),
        by=UserFactory(role="sales_manager"),
    )
    start_worker()
    today = timezone.localdate()
    sender.send_task("partners.surveys_daily", args=[today.isoformat()])
    wave = _wait_for(SurveyWave.objects.first, seconds=90, what="the worker's wave")
    assert wave.opens_on == today
    _wait_for(
        lambda: OutboundEmail.objects.filter(topic="survey-invitation").exists(),
        seconds=30,
        what="the invitation in the outbox",
    )
    invitation = SurveyInvitation.objects.get()
    assert invitation.email == "a1@alpha.example"

    answered = Client().post(
        f"/survey/{survey_link_token(invitation)}/", {"score_support": "4", "nps": "10"}
    )
    assert "Your answers have been received" in answered.content.decode()
    week = metrics.iso_week_of(today)
    sender.send_task("analytics.compute_week", args=[week, False])
    _wait_for(
        lambda: MetricsRun.objects.filter(week=week, status=RunStatus.SUCCEEDED).exists(),
        seconds=90,
        what="the worker's weekly run",
    )
    (figures,) = reports.partners(week)
    assert figures.partner_id == alpha.pk
    assert (figures.feedback_count, figures.satisfaction_mean, figures.nps) == (1, 4.0, 100.0)
    (programme,) = reports.programme_partners(week)
    assert (programme.satisfaction, programme.nps) == (4.0, 100.0)
