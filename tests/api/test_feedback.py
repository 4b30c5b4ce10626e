"""Feedback over the API: partners submit and follow up, managers log, reply and keep notes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as DjangoClient
from rest_framework.test import APIClient

from partners.models import Feedback, FeedbackStatus
from partners.services import FEEDBACK_PER_HOUR
from tests.api.conftest import PDF, Market
from tests.cast import Cast

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]
ENTRY = {"category": "support", "satisfaction": 2, "nps": 5, "subject": "Slow", "body": "Tickets"}


def test_it_submits_partner_feedback_for_their_own_organisation(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.partner_a_user).post("/api/v1/feedback/", ENTRY, format="json")
    assert response.status_code == 201
    feedback = Feedback.objects.get(pk=response.json()["id"])
    assert (feedback.partner, feedback.submitted_by) == (cast.partner_a, cast.partner_a_user)
    assert feedback.status == FeedbackStatus.NEW


def test_it_reports_bad_ratings_under_the_field(cast: Cast, market: Market, api_as: Client) -> None:
    response = api_as(cast.partner_a_user).post(
        "/api/v1/feedback/", {**ENTRY, "satisfaction": 9}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["satisfaction"]


def test_it_answers_429_with_retry_after_past_the_hourly_limit(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    for _ in range(FEEDBACK_PER_HOUR):
        assert api.post("/api/v1/feedback/", ENTRY, format="json").status_code == 201
    refused = api.post("/api/v1/feedback/", ENTRY, format="json")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "last hour" in refused.json()["detail"]
    assert Feedback.objects.filter(submitted_by=cast.partner_a_user).count() == FEEDBACK_PER_HOUR


def test_it_logs_feedback_for_a_partner_when_a_manager_names_it(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    missing = api.post("/api/v1/feedback/", ENTRY, format="json")
    assert missing.status_code == 400
    assert "partner" in missing.json()
    logged = api.post("/api/v1/feedback/", {**ENTRY, "partner": cast.partner_b.pk}, format="json")
    assert logged.status_code == 201
    assert logged.json()["status"] == "acknowledged"


def test_it_threads_replies_and_follow_ups(cast: Cast, market: Market, api_as: Client) -> None:
    path = f"/api/v1/feedback/{market.feedback_a.pk}/replies/"
    follow_up = api_as(cast.partner_a_user).post(path, {"body": "Any news?"}, format="json")
    assert follow_up.status_code == 201
    assert follow_up.json()["from_partner"] is True
    reply = api_as(cast.manager).post(path, {"body": "Next week."}, format="json")
    assert reply.status_code == 201
    thread = api_as(cast.partner_a_user).get(path).json()
    assert [r["body"] for r in thread][-2:] == ["Any news?", "Next week."]


def test_it_keeps_internal_notes_internal(cast: Cast, market: Market, api_as: Client) -> None:
    path = f"/api/v1/feedback/{market.feedback_a.pk}/notes/"
    added = api_as(cast.manager).post(path, {"body": "Escalate."}, format="json")
    assert added.status_code == 201
    notes = api_as(cast.executive).get(path).json()
    assert [n["body"] for n in notes][-1] == "Escalate."
    assert api_as(cast.executive).post(path, {"body": "x"}, format="json").status_code == 403
    assert api_as(cast.partner_a_user).get(path).status_code == 404
    detail = api_as(cast.partner_a_user).get(f"/api/v1/feedback/{market.feedback_a.pk}/").json()
    assert "Escalate" not in str(detail)


def test_it_triages_with_an_internal_assignee_only(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    path = f"/api/v1/feedback/{market.feedback_a.pk}/triage/"
    refused = api.post(
        path, {"status": "in_progress", "assignee": cast.partner_a_user.pk}, format="json"
    )
    assert refused.status_code == 400
    assert "assignee" in refused.json()
    done = api.post(path, {"status": "in_progress", "assignee": cast.manager.pk}, format="json")
    assert done.status_code == 200
    assert done.json()["assignee"] == cast.manager.pk


def test_it_ignores_fields_partner_users_may_not_set(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.partner_a_user).post(
        "/api/v1/feedback/",
        {**ENTRY, "status": "closed", "assignee": cast.manager.pk, "id": market.feedback_b.pk},
        format="json",
    )
    assert response.status_code == 201
    feedback = Feedback.objects.get(pk=response.json()["id"])
    assert feedback.pk != market.feedback_b.pk
    assert (feedback.status, feedback.assignee) == (FeedbackStatus.NEW, None)


def test_it_takes_a_partners_attachment_checked_by_content(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    refused = api.post(
        "/api/v1/feedback/",
        {**ENTRY, "nps": "", "attachment": SimpleUploadedFile("a.pdf", b"MZ not a pdf")},
        format="multipart",
    )
    assert refused.status_code == 400
    assert "attachment" in refused.json()
    accepted = api.post(
        "/api/v1/feedback/",
        {**ENTRY, "attachment": SimpleUploadedFile("a.pdf", PDF, "application/pdf")},
        format="multipart",
    )
    assert accepted.status_code == 201, accepted.json()
    assert accepted.json()["has_attachment"] is True


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _attachment(api: APIClient, feedback: Feedback, **headers: str) -> Any:
    return api.get(f"/api/v1/feedback/{feedback.pk}/attachment/", **headers)


def test_it_downloads_a_partners_own_attachment_like_the_portal(
    cast: Cast, market: Market, api_as: Client
) -> None:
    market.feedback_a.attachment.save("shot.png", SimpleUploadedFile("shot.png", PNG))
    response = _attachment(api_as(cast.partner_a_user), market.feedback_a)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == (
        f'attachment; filename="feedback-{market.feedback_a.pk}-attachment.png"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PNG

    browser = DjangoClient()
    browser.force_login(cast.partner_a_user)
    portal = browser.get(f"/portal/feedback/{market.feedback_a.pk}/attachment/")
    assert portal.status_code == 200
    for header in ("Content-Type", "Content-Disposition", "X-Content-Type-Options"):
        assert portal[header] == response[header], header

    # A client that asks for the file's own type gets it (no 406).
    asked = _attachment(api_as(cast.partner_a_user), market.feedback_a, HTTP_ACCEPT="image/png")
    assert asked.status_code == 200
    assert b"".join(asked.streaming_content) == PNG


def test_it_answers_404_for_another_partners_attachment_or_none_at_all(
    cast: Cast, market: Market, api_as: Client
) -> None:
    market.feedback_b.attachment.save("b.pdf", SimpleUploadedFile("b.pdf", PDF))
    partner = api_as(cast.partner_a_user)
    refused = _attachment(partner, market.feedback_b, HTTP_ACCEPT="application/pdf")
    assert refused.status_code == 404
    assert refused["Content-Type"] == "application/json"
    assert partner.get("/api/v1/feedback/999999/attachment/").status_code == 404

    missing = _attachment(partner, market.feedback_a)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "This feedback has no attachment."}
    assert _attachment(APIClient(), market.feedback_b).status_code == 401


def test_it_answers_404_to_internal_users_as_the_workspace_has_no_download(
    cast: Cast, market: Market, api_as: Client
) -> None:
    market.feedback_a.attachment.save("a.pdf", SimpleUploadedFile("a.pdf", PDF))
    for user in (cast.manager, cast.rep_user, cast.executive):
        response = _attachment(api_as(user), market.feedback_a)
        assert response.status_code == 404, user
        assert response["Content-Type"] == "application/json"
    # They still see that there is one.
    detail = api_as(cast.manager).get(f"/api/v1/feedback/{market.feedback_a.pk}/").json()
    assert detail["has_attachment"] is True
