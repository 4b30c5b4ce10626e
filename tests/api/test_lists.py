"""Lists: pagination, filters, ordering, and what each internal role sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from channels.models import CoverageAssignment
from tests.api.conftest import Market
from tests.cast import Cast
from tests.factories import AccountFactory, PartnerFactory

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]


def test_it_pages_accounts_by_cursor_without_counting(
    cast: Cast, market: Market, api_as: Client
) -> None:
    AccountFactory.create_batch(5)
    api = api_as(cast.manager)
    first = api.get("/api/v1/accounts/", {"page_size": 3}).json()
    assert "count" not in first
    assert len(first["results"]) == 3
    second = api.get(first["next"]).json()
    seen = [a["id"] for a in first["results"] + second["results"]]
    assert seen == sorted(seen)
    assert len(seen) == 6


def test_it_filters_accounts_by_segment_codes(cast: Cast, market: Market, api_as: Client) -> None:
    rows = api_as(cast.manager).get("/api/v1/accounts/", {"region": "WEST"}).json()["results"]
    assert [a["id"] for a in rows] == [market.account_b.pk]
    assert rows[0]["region"] == "WEST"


def test_it_shows_reps_their_own_accounts_and_coverage(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.rep_user)
    accounts = api.get("/api/v1/accounts/").json()["results"]
    assert [a["id"] for a in accounts] == [market.account_rep.pk]
    coverage = api.get("/api/v1/coverage/").json()["results"]
    assert {c["account"] for c in coverage} == {market.account_rep.pk}
    assert api.get(f"/api/v1/accounts/{market.account_a.pk}/").status_code == 404


def test_it_filters_partners_by_channel_kind(cast: Cast, market: Market, api_as: Client) -> None:
    distributor = PartnerFactory(channel_kind="distribution", partner_type="distributor")
    api = api_as(cast.executive)
    rows = api.get("/api/v1/partners/", {"channel_kind": "distribution"}).json()
    assert [p["id"] for p in rows["results"]] == [distributor.pk]
    ordered = api.get("/api/v1/partners/", {"ordering": "-name"}).json()["results"]
    assert [p["name"] for p in ordered] == sorted((p["name"] for p in ordered), reverse=True)


def test_it_assigns_and_ends_coverage_through_the_service(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    payload = {
        "accounts": [market.account_b.pk, market.account_rep.pk],
        "kind": "partner",
        "partner": cast.partner_a.pk,
        "start_date": "2026-03-01",
    }
    assert api.post("/api/v1/coverage/", payload, format="json").json() == {
        "created": 2,
        "already_covered": 0,
    }
    again = api.post("/api/v1/coverage/", payload, format="json").json()
    assert again == {"created": 0, "already_covered": 2}
    wrong = api.post("/api/v1/coverage/", {**payload, "kind": "distribution"}, format="json")
    assert wrong.status_code == 400
    assert "partner" in wrong.json()
    assignment = CoverageAssignment.objects.get(account=market.account_b, partner=cast.partner_a)
    ended = api.post(
        f"/api/v1/coverage/{assignment.pk}/end/", {"end_date": "2026-01-01"}, format="json"
    )
    assert ended.status_code == 400
    assert "end_date" in ended.json()
    ended = api.post(
        f"/api/v1/coverage/{assignment.pk}/end/", {"end_date": "2026-04-30"}, format="json"
    )
    assert ended.json()["end_date"] == "2026-04-30"
    assert (
        api_as(cast.executive).post("/api/v1/coverage/", payload, format="json").status_code == 403
    )


def test_it_creates_and_updates_partners(cast: Cast, market: Market, api_as: Client) -> None:
    api = api_as(cast.manager)
    profile = {
        "external_id": "P-GAMMA",
        "name": "Gamma Dist",
        "channel_kind": "distribution",
        "partner_type": "distributor",
    }
    created = api.post("/api/v1/partners/", profile, format="json")
    assert created.status_code == 201
    taken = api.post("/api/v1/partners/", profile, format="json")
    assert taken.status_code == 400
    assert "external_id" in taken.json()
    updated = api.put(
        f"/api/v1/partners/{created.json()['id']}/", {**profile, "tier": "gold"}, format="json"
    )
    assert updated.json()["tier"] == "gold"


def test_it_refuses_search_text_postgresql_would_refuse(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).get("/api/v1/partners/", {"search": "Alpha\x00"})
    assert response.status_code == 400
