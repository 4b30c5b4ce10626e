"""A partner user's token reaches their own organisation and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from channels.models import CoverageAssignment
from partners.models import Feedback, FeedbackReply, Partner
from tests.api.conftest import Market
from tests.cast import Cast

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]


def test_it_answers_404_for_every_detail_of_the_other_partner(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    contact_b = cast.partner_b.contacts.get()
    paths = [
        f"/api/v1/partners/{cast.partner_b.pk}/",
        f"/api/v1/accounts/{market.account_b.pk}/",
        f"/api/v1/agreements/{market.agreement_b.pk}/",
        f"/api/v1/feedback/{market.feedback_b.pk}/",
        f"/api/v1/feedback/{market.feedback_b.pk}/replies/",
        f"/api/v1/feedback/{market.feedback_b.pk}/notes/",
        f"/api/v1/coverage/{market.coverage_b.pk}/",
        f"/api/v1/contacts/{contact_b.pk}/",
        f"/api/v1/reps/{cast.rep.pk}/",
    ]
    for path in paths:
        assert api.get(path).status_code == 404, path


def test_it_answers_404_for_writes_on_the_other_partners_objects(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    reply = api.post(
        f"/api/v1/feedback/{market.feedback_b.pk}/replies/", {"body": "Hi"}, format="json"
    )
    assert reply.status_code == 404
    assert not FeedbackReply.objects.filter(body="Hi").exists()
    triage = api.post(
        f"/api/v1/feedback/{market.feedback_b.pk}/triage/", {"status": "closed"}, format="json"
    )
    assert triage.status_code == 404


def test_it_refuses_feedback_for_the_other_partner(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    entry = {"category": "product", "satisfaction": 3, "subject": "Mine", "body": "Text"}
    refused = api.post("/api/v1/feedback/", {**entry, "partner": cast.partner_b.pk}, format="json")
    assert refused.status_code == 400
    assert "partner" in refused.json()
    assert not Feedback.objects.filter(partner=cast.partner_b, subject="Mine").exists()

    accepted = api.post("/api/v1/feedback/", entry, format="json")
    assert accepted.status_code == 201
    assert accepted.json()["partner"] == cast.partner_a.pk


def test_it_refuses_coverage_writes_from_partner_users(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    before = CoverageAssignment.objects.count()
    response = api.post(
        "/api/v1/coverage/",
        {
            "accounts": [market.account_b.pk],
            "kind": "partner",
            "partner": cast.partner_b.pk,
            "start_date": "2026-01-01",
        },
        format="json",
    )
    assert response.status_code == 404
    ended = api.post(
        f"/api/v1/coverage/{market.coverage_b.pk}/end/", {"end_date": "2026-02-01"}, format="json"
    )
    assert ended.status_code == 404
    assert CoverageAssignment.objects.count() == before


def test_it_lists_only_the_partners_own_objects(cast: Cast, market: Market, api_as: Client) -> None:
    api = api_as(cast.partner_a_user)
    partners = api.get("/api/v1/partners/").json()["results"]
    assert [p["id"] for p in partners] == [cast.partner_a.pk]
    assert partners[0]["notes"] == ""
    agreements = api.get("/api/v1/agreements/").json()["results"]
    assert [a["id"] for a in agreements] == [market.agreement_a.pk]  # no drafts
    accounts = api.get("/api/v1/accounts/").json()["results"]
    assert [a["id"] for a in accounts] == [market.account_a.pk]
    feedback = api.get("/api/v1/feedback/").json()["results"]
    assert [f["id"] for f in feedback] == [market.feedback_a.pk]
    assert feedback[0]["assignee"] is None
    assert api.get(f"/api/v1/agreements/{market.draft_a.pk}/").status_code == 404


def test_it_hides_internal_lists_and_notes_from_partner_users(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    for path in [
        "/api/v1/reps/",
        "/api/v1/coverage/",
        "/api/v1/contacts/",
        "/api/v1/regions/",
        "/api/v1/verticals/",
        "/api/v1/metrics/segments/",
        "/api/v1/metrics/rollup/",
        "/api/v1/metrics/partners/",
        "/api/v1/metrics/weeks/",
        "/api/v1/metrics/runs/",
        f"/api/v1/feedback/{market.feedback_a.pk}/notes/",
    ]:
        assert api.get(path).status_code == 404, path
    replies = api.get(f"/api/v1/feedback/{market.feedback_a.pk}/replies/").json()
    assert [r["body"] for r in replies] == ["Thanks, we will add examples."]


def test_it_refuses_partner_users_writes_on_what_they_only_read(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    assert api.post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/").status_code == 403
    update = api.put(
        f"/api/v1/partners/{cast.partner_a.pk}/",
        {
            "external_id": "P-ALPHA",
            "name": "Alpha Systems",
            "channel_kind": "partner",
            "partner_type": "reseller",
            "tier": "platinum",
        },
        format="json",
    )
    assert update.status_code == 403
    cast.partner_a.refresh_from_db()
    assert cast.partner_a.tier == "registered"


@pytest.mark.parametrize("name", ["agreements", "feedback"])
def test_it_answers_a_filter_by_another_partner_as_by_a_missing_one(
    name: str, cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.partner_a_user)
    missing = Partner.objects.order_by("-pk").first().pk + 1000
    theirs = api.get(f"/api/v1/{name}/", {"partner": cast.partner_b.pk})
    nobody = api.get(f"/api/v1/{name}/", {"partner": missing})
    assert theirs.status_code == nobody.status_code == 200
    assert theirs.json() == nobody.json() and theirs.json()["count"] == 0
    own = api.get(f"/api/v1/{name}/", {"partner": cast.partner_a.pk})
    assert own.status_code == 200 and own.json()["count"] >= 1
