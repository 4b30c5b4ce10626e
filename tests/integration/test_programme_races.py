"""The partner programme's one-per rules under two requests at once, on PostgreSQL: one yearly
target per partner, one business review per partner and quarter, one survey wave per survey
and day, one answer per survey link. Each pair is fired together through the app, with
`tests.integration.test_races.fire_together` (a thread and a connection each); exactly one row
results and the other request gets the answer it would get one after the other."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from crm.models import OutboundEmail
from partners.models import Feedback
from partners.programme_models import (
    BusinessReview,
    SurveyInvitation,
    SurveyResponse,
    SurveyWave,
    Target,
)
from partners.survey_services import (
    SurveyValues,
    survey_create,
    survey_link_token,
    survey_wave_open,
)
from tests.cast import Cast
from tests.factories import PartnerContactFactory, PartnerFactory
from tests.integration.test_races import _celery_join_flag_restored, _postgres_only, fire_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
__all__ = ["_celery_join_flag_restored", "_postgres_only"]  # the shared autouse fixtures

ROUNDS = 20


def signed_in(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_two_managers_setting_a_new_yearly_target_at_once_leave_one(cast: Cast) -> None:
    clients = [signed_in(cast.manager), signed_in(cast.manager)]
    refused = 0
    for attempt in range(ROUNDS):
        partner = PartnerFactory(external_id=f"P-TARGET-{attempt}")

        def post(client: Client, covered: int, p: Any = partner) -> Any:
            return client.post(
                f"/workspace/partners/{p.pk}/targets/",
                {"year": 2026, "accounts_covered": covered},
                follow=True,
            )

        answers = fire_together(lambda: post(clients[0], 10), lambda: post(clients[1], 20))
        assert [a.status_code for a in answers] == [200, 200]
        targets = list(Target.objects.filter(partner=partner))
        assert len(targets) == 1 and targets[0].accounts_covered in (10, 20)
        texts = [a.content.decode() for a in answers]
        lost = [t for t in texts if "was just set by someone else" in t]
        # One after the other, the second replaces the first; at once, the second is refused
        # by the unique constraint with a message, and the first one's figure stands.
        assert len(lost) <= 1
        if lost:
            refused += 1
            winner = 10 if "was just set by someone else" in texts[1] else 20
            assert targets[0].accounts_covered == winner
    print(f"targets: the unique constraint refused {refused} of {ROUNDS}")


def test_two_managers_opening_a_quarters_review_at_once_share_one(cast: Cast) -> None:
    clients = [signed_in(cast.manager), signed_in(cast.manager)]
    for attempt in range(ROUNDS):
        partner = PartnerFactory(external_id=f"P-REVIEW-{attempt}")

        def post(client: Client, p: Any = partner) -> Any:
            return client.post("/workspace/reviews/open/", {"partner": p.pk, "quarter": "2026-Q3"})

        answers = fire_together(lambda: post(clients[0]), lambda: post(clients[1]))
        review = BusinessReview.objects.get(partner=partner)
        assert (review.year, review.quarter) == (2026, 3)
        # Both land on the one review.
        assert [a.status_code for a in answers] == [302, 302]
        assert {a["Location"] for a in answers} == {f"/workspace/reviews/{review.pk}/"}


def test_a_survey_wave_opened_twice_at_once_goes_out_once(cast: Cast) -> None:
    partner = PartnerFactory(external_id="P-SURVEY")
    PartnerContactFactory(partner=partner, email="one@partner.example")
    PartnerContactFactory(partner=partner, email="two@partner.example")
    refusals = []
    for attempt in range(ROUNDS):
        survey = survey_create(
            values=SurveyValues(name=f"Pulse {attempt}", categories=["support"]), by=cast.manager
        )

        def send(s: Any = survey) -> Any:
            try:
                return survey_wave_open(survey=s, opens_on=date(2026, 10, 2)).invitations
            except Exception as error:  # noqa: BLE001 - the refusal is what is checked
                return error

        outcomes = fire_together(send, send)
        wave = SurveyWave.objects.get(survey=survey)
        assert SurveyInvitation.objects.filter(wave=wave).count() == 2
        sent = OutboundEmail.objects.filter(topic="survey-invitation").count()
        assert sent == 2 * (attempt + 1)
        assert outcomes.count(2) == 1
        refusals.extend(" ".join(o.messages) for o in outcomes if o != 2)
    assert all("already opened on 2026-10-02" in text for text in refusals)


def test_a_survey_link_answered_twice_at_once_counts_once(cast: Cast) -> None:
    partner = PartnerFactory(external_id="P-ANSWER")
    for attempt in range(ROUNDS):
        PartnerContactFactory(partner=partner, email=f"c{attempt}@partner.example")
    survey = survey_create(
        values=SurveyValues(name="Pulse", categories=["support", "pricing"]), by=cast.manager
    )
    survey_wave_open(survey=survey, opens_on=timezone.localdate())
    answer = {"score_support": "4", "score_pricing": "2", "nps": "9", "comment": "Fine."}
    for invitation in SurveyInvitation.objects.filter(partner=partner):
        url = f"/survey/{survey_link_token(invitation)}/"
        answers = fire_together(
            lambda u=url: Client().post(u, answer), lambda u=url: Client().post(u, answer)
        )
        assert [a.status_code for a in answers] == [200, 200]
        texts = sorted(a.content.decode() for a in answers)
        assert sum("Your answers have been received" in t for t in texts) == 1
        assert sum("answered already" in t for t in texts) == 1
        response = SurveyResponse.objects.get(invitation=invitation)
        # One entry per topic rated, the NPS score on the first only.
        entries = Feedback.objects.filter(survey_response=response)
        assert sorted(entries.values_list("category", "satisfaction")) == [
            ("pricing", 2),
            ("support", 4),
        ]
        assert sorted(entries.values_list("nps", flat=True), key=str) == [9, None]
    assert SurveyResponse.objects.count() == ROUNDS
