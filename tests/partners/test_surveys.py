"""Scheduled surveys: a wave invites every active partner's contacts through the outbox with a
signed link that needs no password; the answer lands as feedback from the survey and counts in
satisfaction and NPS; one reminder; response rates per wave and channel; the daily beat job,
also on a real worker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.test import Client

from analytics import reports, services
from analytics.schedule import BEAT_SCHEDULE
from crm.models import OutboundEmail
from partners.models import Feedback, FeedbackSource
from partners.programme_models import Survey, SurveyInvitation, SurveyWave
from partners.programme_selectors import wave_response_rates
from partners.survey_services import (
    SurveyValues,
    survey_create,
    survey_invitation_for,
    survey_link,
    survey_link_token,
    survey_reminders_send,
    survey_wave_open,
)
from partners.tasks import surveys_daily
from tests.factories import PartnerContactFactory, PartnerFactory, UserFactory

OPENS = date(2026, 10, 1)
ANSWERED_AT = datetime(2026, 10, 1, 9, tzinfo=UTC)  # a moment: responded_at is aware


@pytest.fixture
def market(db: None) -> dict[str, Any]:
    alpha = PartnerFactory(name="Alpha", channel_kind="partner")
    beta = PartnerFactory(name="Beta", channel_kind="distribution")
    gone = PartnerFactory(name="Gone", is_active=False)
    contacts = [
        PartnerContactFactory(partner=alpha, email="a1@alpha.example"),
        PartnerContactFactory(partner=alpha, email="a2@alpha.example"),
        PartnerContactFactory(partner=beta, email="b1@beta.example"),
        PartnerContactFactory(partner=gone, email="g@gone.example"),
    ]
    PartnerContactFactory(partner=beta, email="")  # no address: not invited
    survey = survey_create(
        values=SurveyValues(
            name="Quarterly pulse",
            categories=["support", "pricing"],
            send_day=1,
            open_days=21,
            reminder_days_before_close=7,
        ),
        by=UserFactory(role="sales_manager"),
    )
    return {"alpha": alpha, "beta": beta, "contacts": contacts, "survey": survey}


def test_a_wave_invites_every_active_partners_contacts_through_the_outbox(
    market: dict[str, Any],
) -> None:
    opened = survey_wave_open(survey=market["survey"], opens_on=OPENS)
    assert opened.invitations == 3
    assert opened.wave.closes_on == OPENS + timedelta(days=20)
    emails = OutboundEmail.objects.filter(topic="survey-invitation")
    assert sorted(address for email in emails for address in email.to) == [
        "a1@alpha.example",
        "a2@alpha.example",
        "b1@beta.example",
    ]
    invitation = SurveyInvitation.objects.get(email="b1@beta.example")
    email = emails.get(to=["b1@beta.example"])
    # Each contact has a link of its own, in an e-mail written in both languages.
    link = survey_link(invitation).rsplit("/survey/", 1)[0] + "/survey/"
    token = email.body_text.split(link, 1)[1].split("/", 1)[0]
    assert survey_invitation_for(token, today=OPENS) == invitation
    assert "Quarterly pulse" in email.subject and "渠道团队" in email.subject


def test_the_link_needs_no_password_and_the_answer_counts_as_scored_feedback(
    market: dict[str, Any],
) -> None:
    wave = survey_wave_open(survey=market["survey"], opens_on=OPENS).wave
    invitation = wave.invitations.get(email="a1@alpha.example")
    path = f"/survey/{survey_link_token(invitation)}/"
    with time_machine.travel(date(2026, 10, 5), tick=False):
        page = Client().get(path)
        assert page.status_code == 200 and "Quarterly pulse" in page.content.decode()
        answered = Client().post(
            path, {"score_support": "2", "score_pricing": "4", "nps": "9", "comment": "Faster"}
        )
    assert answered.status_code == 200
    entries = Feedback.objects.filter(partner=market["alpha"]).order_by("id")
    assert [(f.category, f.satisfaction, f.nps, f.source) for f in entries] == [
        ("support", 2, 9, FeedbackSource.SURVEY),
        ("pricing", 4, None, FeedbackSource.SURVEY),
    ]
    assert entries[0].body == "Faster"
    # In the week's figures like any scored feedback: mean 3.0 over two scores, NPS 100.
    services.metrics_compute_week(week="2026-W41", final=True)
    alpha = next(p for p in reports.partners("2026-W41") if p.partner_id == market["alpha"].pk)
    assert (alpha.satisfaction_mean, alpha.nps) == (3.0, 100.0)
    # Answered once: the link now says thank you and takes nothing more.
    with time_machine.travel(date(2026, 10, 6), tick=False):
        again = Client().post(path, {"score_support": "5"})
    assert "answered already" in again.content.decode()
    assert Feedback.objects.filter(partner=market["alpha"]).count() == 2


def test_a_bad_answer_is_refused_next_to_its_field_and_nothing_is_saved(
    market: dict[str, Any],
) -> None:
    wave = survey_wave_open(survey=market["survey"], opens_on=OPENS).wave
    path = f"/survey/{survey_link_token(wave.invitations.get(email='b1@beta.example'))}/"
    with time_machine.travel(date(2026, 10, 5), tick=False):
        for data in ({"score_support": "7"}, {"nps": "11"}, {}, {"comment": "x" * 5001}):
            response = Client().post(path, data)
            assert response.status_code == 400, data
            assert "data-field-error" in response.content.decode() or 'role="alert"' in (
                response.content.decode()
            ), data
    assert not Feedback.objects.exists()
    assert not SurveyInvitation.objects.filter(responded_at__isnull=False).exists()


def test_a_forged_or_closed_link_shows_no_survey(market: dict[str, Any]) -> None:
    wave = survey_wave_open(survey=market["survey"], opens_on=OPENS).wave
    token = survey_link_token(wave.invitations.first())  # type: ignore[arg-type]
    with time_machine.travel(wave.closes_on + timedelta(days=1), tick=False):
        assert Client().get(f"/survey/{token}/").status_code == 404
    with time_machine.travel(date(2026, 10, 5), tick=False):
        assert Client().get(f"/survey/{token[:-2]}xx/").status_code == 404
        assert Client().get(f"/survey/{token}/").status_code == 200


def test_one_reminder_goes_to_those_who_have_not_answered(market: dict[str, Any]) -> None:
    wave = survey_wave_open(survey=market["survey"], opens_on=OPENS).wave
    answered = wave.invitations.get(email="a1@alpha.example")
    SurveyInvitation.objects.filter(pk=answered.pk).update(responded_at=ANSWERED_AT)
    reminder_day = wave.closes_on - timedelta(days=7)
    assert survey_reminders_send(today=reminder_day - timedelta(days=1)) == 0
    assert survey_reminders_send(today=reminder_day) == 2
    assert survey_reminders_send(today=reminder_day + timedelta(days=1)) == 0
    reminded = OutboundEmail.objects.filter(topic="survey-reminder")
    assert sorted(e.to[0] for e in reminded) == ["a2@alpha.example", "b1@beta.example"]


def test_response_rates_per_wave_and_channel(market: dict[str, Any]) -> None:
    wave = survey_wave_open(survey=market["survey"], opens_on=OPENS).wave
    SurveyInvitation.objects.filter(email="a1@alpha.example").update(responded_at=ANSWERED_AT)
    rows = {row["channel_kind"]: row for row in wave_response_rates([wave.pk])[wave.pk]}
    assert (rows["partner"]["invited"], rows["partner"]["answered"]) == (2, 1)
    assert rows["partner"]["rate"] == 0.5 and rows["partner"]["partner_rate"] == 1.0
    assert (rows["distribution"]["invited"], rows["distribution"]["answered"]) == (1, 0)
    assert (rows[""]["invited"], rows[""]["answered"], rows[""]["partners_answered"]) == (3, 1, 1)
    assert rows[""]["partner_rate"] == 0.5


def test_beat_runs_the_daily_job_which_opens_a_wave_once_per_scheduled_month(
    market: dict[str, Any],
) -> None:
    assert BEAT_SCHEDULE["surveys-daily"]["task"] == "partners.surveys_daily"
    assert surveys_daily("2026-11-01") == {"waves": 0, "invitations": 0}  # not a quarter month
    assert surveys_daily("2026-10-03") == {"waves": 1, "invitations": 3}
    assert surveys_daily("2026-10-04") == {"waves": 0, "invitations": 0}
    assert SurveyWave.objects.get().opens_on == date(2026, 10, 3)
    Survey.objects.update(is_active=False)
    assert surveys_daily("2027-01-01") == {"waves": 0, "invitations": 0}


def test_send_now_opens_the_wave_in_the_request_when_the_broker_is_down(
    market: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    manager = UserFactory(role="sales_manager")
    client = Client()
    client.force_login(manager)
    survey = market["survey"]
    with (
        mock.patch(
            "partners.tasks.survey_wave_open_task.apply_async",
            side_effect=ConnectionError("broker down"),
        ) as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/workspace/surveys/{survey.pk}/send/")
    assert response.status_code == 302
    assert publish.called
    wave = SurveyWave.objects.get(survey=survey)
    assert SurveyInvitation.objects.filter(wave=wave).count() == 3
