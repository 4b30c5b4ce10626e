"""/api/v1/deal-registrations/: the fields, the actions, 409 for refused changes, 404 for another
partner's registration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from partners.registration_models import DealRegistration
from partners.registration_services import registration_approve
from tests.partners.registration_market import NOW, TODAY, RegistrationMarket

pytestmark = pytest.mark.django_db

URL = "/api/v1/deal-registrations/"
OUTPUT_FIELDS = {
    "id",
    "external_id",
    "partner",
    "company_name",
    "website",
    "region",
    "vertical",
    "size_band",
    "offering",
    "amount",
    "currency",
    "expected_close_on",
    "description",
    "contact_name",
    "contact_email",
    "contact_phone",
    "status",
    "needs_review",
    "decision_reason",
    "protected_until",
    "extension_status",
    "closed_on",
    "won_amount",
    "account",
    "conflicts",
    "submitted_at",
    "updated_at",
}


def payload(**overrides: Any) -> dict[str, Any]:
    data = {
        "company_name": "Bolt Finance",
        "website": "bolt.example",
        "region": "EAST",
        "vertical": "FIN",
        "size_band": "enterprise",
        "offering": "Model API",
        "amount": "120000.50",
        "currency": "EUR",
        "expected_close_on": (TODAY + timedelta(days=40)).isoformat(),
        "description": "Claims automation pilot.",
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def _fixed_day() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


class TestCreateAndRead:
    def test_a_partner_user_registers_and_reads_it_back_without_internal_fields(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        partner = api_as(registration_market.cast.partner_a_user)
        response = partner.post(URL, payload(), format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == OUTPUT_FIELDS
        assert (body["status"], body["needs_review"]) == ("submitted", True)
        assert (body["amount"], body["currency"], body["region"]) == ("120000.50", "EUR", "EAST")
        assert body["account"] is None and body["conflicts"] is None
        listed = partner.get(URL).json()["results"]
        assert [row["id"] for row in listed] == [body["id"]]

    def test_internal_users_see_the_account_and_the_conflicts(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        created = api_as(registration_market.cast.partner_a_user).post(
            URL, payload(), format="json"
        )
        row = api_as(registration_market.cast.manager).get(f"{URL}{created.json()['id']}/").json()
        assert row["account"] == registration_market.direct.external_id
        assert row["conflicts"] == ["covered_by_other_channel"]
        filtered = api_as(registration_market.cast.executive).get(
            URL, {"conflict": "covered_by_other_channel"}
        )
        assert [r["id"] for r in filtered.json()["results"]] == [row["id"]]

    def test_a_repeated_idempotency_key_registers_once(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        partner = api_as(registration_market.cast.partner_a_user)
        first = partner.post(URL, payload(), format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
        again = partner.post(URL, payload(), format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
        assert DealRegistration.objects.count() == 1
        other = partner.post(
            URL, payload(company_name="Else"), format="json", HTTP_IDEMPOTENCY_KEY="reg-1"
        )
        assert other.status_code == 422
        assert DealRegistration.objects.count() == 1

    def test_only_partner_users_register(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        for user in (registration_market.cast.manager, registration_market.cast.rep_user):
            assert api_as(user).post(URL, payload(), format="json").status_code == 403
        assert DealRegistration.objects.count() == 0

    def test_bad_input_answers_400_by_field(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        partner = api_as(registration_market.cast.partner_a_user)
        response = partner.post(
            URL,
            payload(region="NOPE", currency="XYZ", company_name="", amount="-3"),
            format="json",
        )
        assert response.status_code == 400
        assert {"region", "company_name", "amount"} <= set(response.json())
        service = partner.post(URL, payload(currency="XYZ", website="no site"), format="json")
        assert service.status_code == 400
        assert set(service.json()) == {"currency", "website"}
        assert DealRegistration.objects.count() == 0

    def test_the_partners_own_account_fills_the_segment(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        response = api_as(registration_market.cast.partner_a_user).post(
            URL, {"company_name": "Ember", "account": "ACC-OWN-1"}, format="json"
        )
        assert response.status_code == 201
        assert (response.json()["region"], response.json()["size_band"]) == ("EAST", "smb")
        theirs = api_as(registration_market.cast.partner_a_user).post(
            URL, {"company_name": "Flint", "account": "ACC-THEIRS-1"}, format="json"
        )
        assert theirs.status_code == 400 and "account" in theirs.json()


class TestActions:
    def _submitted(self, market: RegistrationMarket, **overrides: Any) -> DealRegistration:
        return market.submit(**overrides)

    def test_a_manager_approves_and_the_partner_sees_the_protection(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        registration = self._submitted(registration_market, company_name="Acme Finance")
        response = api_as(registration_market.cast.manager).post(
            f"{URL}{registration.pk}/approve/", {"protected_days": 30}, format="json"
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "approved"
        assert body["protected_until"] == (TODAY + timedelta(days=30)).isoformat()
        again = api_as(registration_market.cast.manager).post(
            f"{URL}{registration.pk}/approve/", {}, format="json"
        )
        assert again.status_code == 409
        assert again.json()["conflict"] == "invalid_state"
        assert again.json()["detail"].startswith("invalid_state: ")

    def test_an_approval_sent_twice_with_one_key_is_answered_as_the_first(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        registration = self._submitted(registration_market, company_name="Acme Finance")
        manager = api_as(registration_market.cast.manager)
        path = f"{URL}{registration.pk}/approve/"
        first = manager.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="approve-1")
        again = manager.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="approve-1")
        assert first.status_code == again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert registration.events.filter(kind="approved").count() == 1

    def test_a_rival_approval_answers_409_naming_the_conflict(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        cast = registration_market.cast
        first = registration_market.submit(user=cast.partner_b_user, company_name="Acme Finance")
        second = registration_market.submit(company_name="Acme Finance")
        registration_approve(registration=first, by=cast.manager)
        response = api_as(cast.manager).post(f"{URL}{second.pk}/approve/", {}, format="json")
        assert response.status_code == 409
        assert response.json()["conflict"] == "already_registered"
        assert "already_registered" in response.json()["detail"]
        assert "Beta Cloud holds approved registration" in response.json()["detail"]

    def test_reject_needs_a_reason(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        registration = self._submitted(registration_market)
        manager = api_as(registration_market.cast.manager)
        assert manager.post(f"{URL}{registration.pk}/reject/", {}, format="json").status_code == 400
        response = manager.post(
            f"{URL}{registration.pk}/reject/", {"reason": "Direct deal."}, format="json"
        )
        assert response.json()["decision_reason"] == "Direct deal."

    def test_won_and_lost(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        cast = registration_market.cast
        manager = api_as(cast.manager)
        won = registration_approve(
            registration=self._submitted(registration_market, company_name="Acme Finance"),
            by=cast.manager,
        )
        response = manager.post(
            f"{URL}{won.pk}/won/",
            {"amount": "99000.00", "closed_on": TODAY.isoformat()},
            format="json",
        )
        assert (response.json()["status"], response.json()["won_amount"]) == ("won", "99000.00")
        lost = registration_approve(
            registration=self._submitted(registration_market, company_name="Dune Insurance"),
            by=cast.manager,
        )
        response = manager.post(f"{URL}{lost.pk}/lost/", {"reason": "Budget cut."}, format="json")
        assert response.json()["status"] == "lost"
        assert manager.post(f"{URL}{lost.pk}/won/", {}, format="json").status_code == 400

    def test_the_partner_withdraws_and_asks_for_more_time_but_does_not_decide(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        cast = registration_market.cast
        partner = api_as(cast.partner_a_user)
        registration = registration_approve(
            registration=self._submitted(registration_market, company_name="Acme Finance"),
            by=cast.manager,
        )
        url = f"{URL}{registration.pk}/"
        for forbidden in ("approve/", "reject/", "won/", "lost/"):
            assert partner.post(url + forbidden, {}, format="json").status_code == 403
        asked = partner.post(url + "extend/", {"note": "Board in March."}, format="json")
        assert asked.json()["extension_status"] == "requested"
        granted = api_as(cast.manager).post(url + "extend/", {"days": 15}, format="json")
        assert granted.json()["protected_until"] == (TODAY + timedelta(days=105)).isoformat()
        twice = api_as(cast.manager).post(url + "extend/", {}, format="json")
        assert twice.status_code == 409 and twice.json()["conflict"] == "already_extended"
        assert api_as(cast.manager).post(url + "withdraw/", {}, format="json").status_code == 403
        withdrawn = partner.post(url + "withdraw/", {"reason": "Paused."}, format="json")
        assert withdrawn.json()["status"] == "withdrawn"

    def test_another_partners_registration_is_a_404_everywhere(
        self, registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
    ) -> None:
        theirs = registration_market.submit(user=registration_market.cast.partner_b_user)
        partner = api_as(registration_market.cast.partner_a_user)
        url = f"{URL}{theirs.pk}/"
        assert partner.get(url).status_code == 404
        for name in ("approve", "reject", "won", "lost", "withdraw", "extend"):
            assert partner.post(f"{url}{name}/", {}, format="json").status_code == 404, name
        assert partner.get(URL).json()["results"] == []
        theirs.refresh_from_db()
        assert theirs.status == "submitted"


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=300),
    st.sampled_from(["", "EAST", "FIN", "smb", "2026-02-30", "9999-12-31", "1e309", "NaN"]),
)


def test_arbitrary_json_never_breaks_registration(
    registration_market: RegistrationMarket, api_as: Callable[[Any], APIClient]
) -> None:
    """Hypothesis on the API input: a 201 or a 400, never a server error, nothing half saved."""
    partner = api_as(registration_market.cast.partner_a_user)
    fields = sorted(payload()) + ["account", "contact_email"]

    @SETTINGS
    @given(body=st.dictionaries(st.sampled_from(fields), anything, max_size=8))
    def post(body: dict[str, Any]) -> None:
        before = DealRegistration.objects.count()
        response = partner.post(URL, body, format="json")
        assert response.status_code in (201, 400), (response.status_code, body)
        if response.status_code == 400:
            assert DealRegistration.objects.count() == before

    post()
