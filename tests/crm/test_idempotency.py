"""Sent twice, saved once: every create form carries a one-time token, and the API takes an
Idempotency-Key header on its POSTs. (At the same moment: tests/integration/test_races.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from crm.services import api_token_issue
from partners.models import Feedback, FeedbackReply, PartnerContact
from tests.cast import Cast, signed_in
from tests.factories import FeedbackFactory

pytestmark = pytest.mark.django_db

FEEDBACK = {"category": "support", "satisfaction": "3", "subject": "Once", "body": "Only once."}


def form_token(client: Client, path: str) -> str:
    page = client.get(path).content.decode()
    found = re.search(r'name="submission_token" value="([^"]+)"', page)
    assert found, f"{path} carries no submission token"
    return found.group(1)


def test_the_portal_feedback_form_saves_a_double_submit_once(cast: Cast) -> None:
    portal = signed_in(cast.partner_a_user)
    token = form_token(portal, "/portal/feedback/new/")
    first = portal.post("/portal/feedback/new/", {**FEEDBACK, "submission_token": token})
    again = portal.post(
        "/portal/feedback/new/", {**FEEDBACK, "submission_token": token}, follow=True
    )
    feedback = Feedback.objects.get()
    assert first["Location"] == f"/portal/feedback/{feedback.pk}/"
    assert again.redirect_chain[-1][0] == first["Location"]
    assert "already" in again.content.decode()


def test_a_refused_form_can_be_sent_again_with_its_token(cast: Cast) -> None:
    portal = signed_in(cast.partner_a_user)
    token = form_token(portal, "/portal/feedback/new/")
    refused = portal.post(
        "/portal/feedback/new/", {**FEEDBACK, "subject": "", "submission_token": token}
    )
    assert refused.status_code == 200 and f'value="{token}"' in refused.content.decode()
    assert (
        portal.post("/portal/feedback/new/", {**FEEDBACK, "submission_token": token}).status_code
        == 302
    )
    assert Feedback.objects.count() == 1


def test_a_double_submitted_reply_is_posted_and_mailed_once(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    feedback = FeedbackFactory(partner=cast.partner_a)
    workspace = signed_in(cast.manager)
    token = form_token(workspace, f"/workspace/feedback/{feedback.pk}/")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            workspace.post(
                f"/workspace/feedback/{feedback.pk}/reply/",
                {"reply-body": "We are on it.", "submission_token": token},
            )
    assert FeedbackReply.objects.filter(feedback=feedback).count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("page", "action", "data"),
    [
        ("/portal/feedback/new/", "/portal/feedback/new/", FEEDBACK),
        ("/workspace/feedback/log/", "/workspace/feedback/log/", None),
        ("/workspace/agreements/new/", "/workspace/agreements/new/", None),
        ("/workspace/partners/new/", "/workspace/partners/new/", None),
        ("/workspace/imports/", "/workspace/imports/", None),
        ("/portal/registrations/new/", "/portal/registrations/new/", None),
    ],
)
def test_every_create_form_carries_a_token(page: str, action: str, data: Any, cast: Cast) -> None:
    user = cast.partner_a_user if page.startswith("/portal/") else cast.manager
    assert form_token(signed_in(user), page)


def test_the_partner_page_forms_save_a_double_submit_once(cast: Cast) -> None:
    workspace = signed_in(cast.manager)
    page = f"/workspace/partners/{cast.partner_a.pk}/"
    token = form_token(workspace, page)
    for _ in range(2):
        workspace.post(f"{page}contacts/", {"name": "Dora Double", "submission_token": token})
    assert PartnerContact.objects.filter(name="Dora Double").count() == 1


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user)[1]}")
    return client


def test_the_api_answers_a_repeated_idempotency_key_with_the_first_answer(cast: Cast) -> None:
    api = _api(cast.partner_a_user)
    body = {**FEEDBACK, "satisfaction": 3}
    first = api.post("/api/v1/feedback/", body, format="json", HTTP_IDEMPOTENCY_KEY="fb-0001")
    again = api.post("/api/v1/feedback/", body, format="json", HTTP_IDEMPOTENCY_KEY="fb-0001")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Feedback.objects.count() == 1
    other = api.post(
        "/api/v1/feedback/",
        {**body, "subject": "Else"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="fb-0001",
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert api.post("/api/v1/feedback/", body, format="json").status_code == 201  # no key
    assert Feedback.objects.count() == 2


def test_a_refused_api_request_leaves_its_idempotency_key_free(cast: Cast) -> None:
    api = _api(cast.manager)
    path = f"/api/v1/feedback/{FeedbackFactory(partner=cast.partner_a).pk}/notes/"
    refused = api.post(path, {"body": ""}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert refused.status_code == 400
    done = api.post(path, {"body": "Now"}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert done.status_code == 201
    keyless = api.post(path, {"body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="")
    assert keyless.status_code == 400 and "Idempotency-Key" in keyless.json()
