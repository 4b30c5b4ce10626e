"""Agreements over the API call the same services as the web app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from partners.models import Agreement, AgreementStatus
from tests.api.conftest import PDF, Market
from tests.cast import Cast
from tests.factories import AgreementFactory

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]
TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def _today() -> Any:
    with time_machine.travel(TODAY, tick=False):
        yield


def test_it_drafts_an_agreement_with_regions_by_code(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).post(
        "/api/v1/agreements/",
        {
            "partner": cast.partner_b.pk,
            "agreement_type": "reseller",
            "start_date": "2026-07-01",
            "end_date": "2027-06-30",
            "regions": ["EAST"],
            "discount_percent": "12.50",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["regions"] == ["EAST"]
    assert body["start_date"] == "2026-07-01"
    assert Agreement.objects.get(pk=body["id"]).partner == cast.partner_b


def test_it_reports_service_errors_under_their_field_names(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).post(
        f"/api/v1/agreements/{market.agreement_a.pk}/terminate/",
        {"terminated_on": "2030-01-01", "reason": " "},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"terminated_on", "reason"}


def test_it_activates_a_draft_with_the_signed_pdf(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).post(
        f"/api/v1/agreements/{market.draft_a.pk}/activate/",
        {
            "signed_on": "2026-06-10",
            "signed_document": SimpleUploadedFile("signed.pdf", PDF, "application/pdf"),
        },
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "active"
    assert response.json()["signed_on"] == "2026-06-10"
    market.draft_a.refresh_from_db()
    assert market.draft_a.signed_document


def test_it_refuses_a_signed_document_that_is_not_a_pdf(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).post(
        f"/api/v1/agreements/{market.draft_a.pk}/activate/",
        {
            "signed_on": "2026-06-10",
            "signed_document": SimpleUploadedFile("signed.pdf", b"hello", "application/pdf"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "signed_document" in response.json()
    market.draft_a.refresh_from_db()
    assert market.draft_a.status == AgreementStatus.DRAFT


def test_it_renews_and_terminates(cast: Cast, market: Market, api_as: Client) -> None:
    api = api_as(cast.manager)
    renewal = api.post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/")
    assert renewal.status_code == 201
    assert renewal.json()["renews"] == market.agreement_a.pk
    assert renewal.json()["status"] == "draft"
    terminated = api.post(
        f"/api/v1/agreements/{market.agreement_a.pk}/terminate/",
        {"terminated_on": "2026-06-30", "reason": "Merged with another reseller."},
        format="json",
    )
    assert terminated.status_code == 200
    assert terminated.json()["status"] == "terminated"
    assert terminated.json()["terminated_on"] == "2026-06-30"


def test_it_lets_reps_and_executives_read_but_not_write(
    cast: Cast, market: Market, api_as: Client
) -> None:
    for user in (cast.rep_user, cast.executive):
        api = api_as(user)
        assert api.get(f"/api/v1/agreements/{market.draft_a.pk}/").status_code == 200
        assert api.post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/").status_code == 403


def test_it_filters_agreements_by_status_and_channel_kind(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    drafts = api.get("/api/v1/agreements/", {"status": "draft"}).json()
    assert [a["id"] for a in drafts["results"]] == [market.draft_a.pk]
    distributors = api.get("/api/v1/agreements/", {"channel_kind": "distribution"}).json()
    assert distributors["count"] == 0


def _document(api: APIClient, agreement: Agreement, **headers: str) -> Any:
    return api.get(f"/api/v1/agreements/{agreement.pk}/document/", **headers)


def test_it_downloads_the_signed_pdf_for_every_role_that_sees_the_agreement(
    cast: Cast, market: Market, api_as: Client
) -> None:
    market.agreement_a.signed_document.save("s.pdf", SimpleUploadedFile("s.pdf", PDF))
    for user in (cast.manager, cast.rep_user, cast.executive, cast.partner_a_user):
        response = _document(api_as(user), market.agreement_a)
        assert response.status_code == 200, user
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == (
            f'attachment; filename="{market.agreement_a.external_id}-signed.pdf"'
        )
        assert b"".join(response.streaming_content) == PDF
    # A client that asks for a PDF gets it (no 406).
    asked = _document(api_as(cast.manager), market.agreement_a, HTTP_ACCEPT="application/pdf")
    assert asked.status_code == 200
    assert b"".join(asked.streaming_content) == PDF


def test_it_answers_404_without_a_document_or_for_an_agreement_the_caller_cannot_see(
    cast: Cast, market: Market, api_as: Client
) -> None:
    manager = api_as(cast.manager)
    missing = _document(manager, market.agreement_b, HTTP_ACCEPT="application/pdf")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "This agreement has no signed document."}
    assert manager.get("/api/v1/agreements/999999/document/").status_code == 404

    market.agreement_b.signed_document.save("s.pdf", SimpleUploadedFile("s.pdf", PDF))
    market.draft_a.signed_document.save("d.pdf", SimpleUploadedFile("d.pdf", PDF))
    partner = api_as(cast.partner_a_user)
    for agreement in (market.agreement_b, market.draft_a):
        refused = _document(partner, agreement)
        assert refused.status_code == 404
        assert refused["Content-Type"] == "application/json"
    assert _document(APIClient(), market.agreement_b).status_code == 401


def _draft(api: APIClient, partner_id: int, start: str, end: str) -> Any:
    return api.post(
        "/api/v1/agreements/",
        {"partner": partner_id, "agreement_type": "reseller", "start_date": start, "end_date": end},
        format="json",
    )


def test_it_names_the_end_date_when_it_lies_before_the_start(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = _draft(api_as(cast.manager), cast.partner_b.pk, "2026-07-01", "2026-06-30")
    assert response.status_code == 400
    assert response.json() == {"end_date": ["The end date cannot be before the start date."]}


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [("0001-01-01", "9999-12-31", "start_date"), ("2026-07-01", "9999-12-31", "end_date")],
)
def test_it_refuses_absurd_dates_at_entry(
    cast: Cast, market: Market, api_as: Client, start: str, end: str, field: str
) -> None:
    response = _draft(api_as(cast.manager), cast.partner_b.pk, start, end)
    assert response.status_code == 400
    assert "between 1900-01-01 and 2199-12-31" in response.json()[field][0]
    assert not Agreement.objects.filter(end_date=date(9999, 12, 31)).exists()


def test_it_answers_400_when_a_renewal_would_run_past_the_calendar(
    cast: Cast, market: Market, api_as: Client
) -> None:
    # Stored before dates were checked at entry.
    Agreement.objects.filter(pk=market.agreement_a.pk).update(
        start_date=date(1, 1, 1), end_date=date(9999, 12, 31), signed_on=date(1, 1, 1)
    )
    response = api_as(cast.manager).post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/")
    assert response.status_code == 400
    assert "31 Dec 2199" in response.json()["non_field_errors"][0]
    assert not Agreement.objects.filter(renews=market.agreement_a).exists()


def test_it_renews_an_agreement_only_once(cast: Cast, market: Market, api_as: Client) -> None:
    api = api_as(cast.manager)
    first = api.post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/")
    assert first.status_code == 201
    # Even once its renewal is signed, the agreement is renewed; the renewal renews onwards.
    Agreement.objects.filter(pk=first.json()["id"]).update(
        status=AgreementStatus.ACTIVE, signed_on=TODAY
    )
    again = api.post(f"/api/v1/agreements/{market.agreement_a.pk}/renew/")
    assert again.status_code == 400
    assert again.json() == {
        "non_field_errors": [
            f"{market.agreement_a.external_id} is already renewed by "
            f"{first.json()['external_id']} (active)."
        ]
    }
    onwards = api.post(f"/api/v1/agreements/{first.json()['id']}/renew/")
    assert onwards.status_code == 201


def test_it_reports_absurd_dates_before_any_conflict_with_another_agreement(
    cast: Cast, market: Market, api_as: Client
) -> None:
    # Another partner's exclusive agreement in force everywhere: the absurd term overlaps it.
    AgreementFactory(partner=cast.partner_b, exclusive=True, start_date=date(2026, 1, 1))
    response = _draft(api_as(cast.manager), cast.partner_a.pk, "0001-01-01", "9999-12-31")
    assert response.status_code == 400
    assert set(response.json()) == {"start_date", "end_date"}
