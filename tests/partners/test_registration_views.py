"""Deal registration pages: the portal (register, follow, withdraw, ask for more time) and the
workspace (queue, detail, decisions, rules, a partner's card, webhooks)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from channels.models import CoverageAssignment
from crm.models import OutboundEmail
from partners.registration_models import DealRegistration
from partners.registration_services import registration_approve
from partners.webhook_models import WebhookEndpoint
from tests.partners.registration_market import NOW, TODAY, RegistrationMarket

pytestmark = pytest.mark.django_db


def client_for(user: object, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def form_data(market: RegistrationMarket, **overrides: str) -> dict[str, str]:
    data = {
        "company_name": "Acme Finance",
        "website": "acme.example",
        "region": str(market.east.pk),
        "vertical": str(market.finance.pk),
        "size_band": "enterprise",
        "offering": "Model API",
        "amount": "50000",
        "currency": "EUR",
        "expected_close_on": (TODAY + timedelta(days=60)).isoformat(),
        "description": "Pilot in the claims team.",
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def _fixed_day():
    with time_machine.travel(NOW, tick=True):
        yield


class TestPortal:
    def test_a_partner_registers_a_deal_and_follows_it(self, registration_market) -> None:
        client = client_for(registration_market.cast.partner_a_user)
        response = client.post("/portal/registrations/new/", form_data(registration_market))
        registration = DealRegistration.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/portal/registrations/{registration.pk}/"
        assert registration.account == registration_market.clean
        page = client.get(response["Location"]).content.decode()
        assert "Acme Finance" in page and "Waiting for a decision." in page
        listing = client.get("/portal/registrations/").content.decode()
        assert registration.external_id in listing

    def test_the_partner_sees_that_it_needs_review_but_not_why(self, registration_market) -> None:
        client = client_for(registration_market.cast.partner_a_user)
        response = client.post(
            "/portal/registrations/new/", form_data(registration_market, company_name="Cobalt Bank")
        )
        page = client.get(response["Location"]).content.decode()
        assert "needs a review" in page
        for secret in (
            "Beta Cloud",
            "covered_by_other_channel",
            "Covered today",
            "Cobalt Bank PLC",
        ):
            assert secret not in page
        listing = client.get("/portal/registrations/").content.decode()
        assert "needs review" in listing and "Beta Cloud" not in listing

    def test_a_double_submitted_registration_is_saved_once(self, registration_market) -> None:
        client = client_for(registration_market.cast.partner_a_user)
        page = client.get("/portal/registrations/new/").content.decode()
        token = re.search(r'name="submission_token" value="([^"]+)"', page)
        assert token, "the form carries no one-time token"
        data = {**form_data(registration_market), "submission_token": token.group(1)}
        first = client.post("/portal/registrations/new/", data)
        again = client.post("/portal/registrations/new/", data, follow=True)
        registration = DealRegistration.objects.get()
        assert first["Location"] == f"/portal/registrations/{registration.pk}/"
        assert again.redirect_chain[-1][0] == first["Location"]
        assert "already sent" in again.content.decode()
        assert registration.events.count() == 1

    def test_bad_input_is_shown_next_to_the_field_and_nothing_is_saved(
        self, registration_market
    ) -> None:
        client = client_for(registration_market.cast.partner_a_user)
        response = client.post(
            "/portal/registrations/new/",
            form_data(registration_market, currency="EURO", website="no site", region=""),
        )
        page = response.content.decode()
        assert response.status_code == 400
        for field in ("currency", "website", "region"):
            assert f'data-field-error="{field}"' in page
        assert DealRegistration.objects.count() == 0

    def test_another_partners_account_id_is_refused_like_an_unknown_one(
        self, registration_market
    ) -> None:
        client = client_for(registration_market.cast.partner_a_user)
        theirs = client.post(
            "/portal/registrations/new/", form_data(registration_market, account="ACC-THEIRS-1")
        )
        unknown = client.post(
            "/portal/registrations/new/", form_data(registration_market, account="ACC-NOPE")
        )
        assert theirs.status_code == unknown.status_code == 400
        assert 'data-field-error="account"' in theirs.content.decode()
        # The prefill from an account id only ever shows the partner's own accounts.
        page = client.get("/portal/registrations/new/?account=ACC-THEIRS-1").content.decode()
        assert "Flint Payments" not in page
        own = client.get("/portal/registrations/new/?account=ACC-OWN-1").content.decode()
        assert 'value="Ember Capital"' in own

    def test_the_portal_accounts_list_links_to_a_prefilled_registration(
        self, registration_market
    ) -> None:
        page = client_for(registration_market.cast.partner_a_user).get("/portal/accounts/")
        assert "/portal/registrations/new/?account=ACC-OWN-1" in page.content.decode()

    def test_the_partner_withdraws_and_asks_for_an_extension(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"), by=cast.manager
        )
        client = client_for(cast.partner_a_user)
        url = f"/portal/registrations/{registration.pk}/"
        assert "Request an extension" in client.get(url).content.decode()
        response = client.post(url + "extend/", {"extend-note": "Board meets in March."})
        assert response.status_code == 302
        registration.refresh_from_db()
        assert registration.extension_status == "requested"
        assert "Request an extension" not in client.get(url).content.decode()
        client.post(url + "withdraw/", {"withdraw-reason": "Customer paused."})
        registration.refresh_from_db()
        assert registration.status == "withdrawn"
        again = client.post(url + "withdraw/", {"withdraw-reason": ""})
        assert again.status_code == 409 and "only submitted or approved" in again.content.decode()

    def test_the_history_hides_internal_steps_and_names(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_market.submit(company_name="Acme Finance")
        client_for(cast.manager).post(
            f"/workspace/registrations/{registration.pk}/account/", {"link-account": ""}
        )
        registration_approve(registration=registration, by=cast.manager, reason="Go ahead.")
        page = (
            client_for(cast.partner_a_user)
            .get(f"/portal/registrations/{registration.pk}/")
            .content.decode()
        )
        assert "Go ahead." in page and "Channel team" in page
        assert "Treated as a prospect" not in page and ">manager<" not in page

    def test_the_partner_is_written_to_in_the_language_it_registered_in(
        self, registration_market
    ) -> None:
        cast = registration_market.cast
        client_for(cast.partner_a_user, "zh-hans").post(
            "/portal/registrations/new/", form_data(registration_market)
        )
        registration = DealRegistration.objects.get()
        assert registration.language == "zh-hans"
        client_for(cast.manager, "en").post(f"/workspace/registrations/{registration.pk}/approve/")
        email = OutboundEmail.objects.get(topic="registration-approved")
        assert email.subject.startswith("商机报备已批准") and "保护期至" in email.body_text
        manager_email = OutboundEmail.objects.get(topic="reg-new")
        assert "Open it in the workspace" in manager_email.body_text

    def test_it_speaks_simplified_chinese(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"), by=cast.manager
        )
        client = client_for(cast.partner_a_user, "zh-hans")
        listing = client.get("/portal/registrations/").content.decode()
        assert "商机报备" in listing and "已批准" in listing
        detail = client.get(f"/portal/registrations/{registration.pk}/").content.decode()
        assert "保护期至" in detail
        form = client.get("/portal/registrations/new/").content.decode()
        assert "公司名称" in form


class TestWorkspace:
    def test_the_queue_lists_submitted_registrations_oldest_first_with_conflicts(
        self, registration_market
    ) -> None:
        first = registration_market.submit(company_name="Bolt Finance")
        second = registration_market.submit(company_name="Acme Finance")
        page = client_for(registration_market.cast.manager).get("/workspace/registrations/")
        html = page.content.decode()
        assert html.index(first.external_id) < html.index(second.external_id)
        assert "covered_by_other_channel" in html
        filtered = client_for(registration_market.cast.manager).get(
            "/workspace/registrations/?conflict=covered_by_other_channel"
        )
        assert first.external_id in filtered.content.decode()
        assert second.external_id not in filtered.content.decode()

    def test_the_queue_shows_the_age_against_the_deadline(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Acme Finance")
        DealRegistration.objects.filter(pk=registration.pk).update(
            submitted_at=NOW - timedelta(days=5)  # the Friday before
        )
        client = client_for(registration_market.cast.manager)
        html = client.get("/workspace/registrations/").content.decode()
        assert "3 business days — overdue" in html
        overdue = client.get("/workspace/registrations/?overdue=yes").content.decode()
        assert registration.external_id in overdue

    def test_the_queue_exports(self, registration_market) -> None:
        registration_market.submit(company_name="Acme Finance")
        response = client_for(registration_market.cast.manager).get(
            "/workspace/registrations/?format=csv"
        )
        text = b"".join(response.streaming_content).decode()
        header, row = list(csv.reader(io.StringIO(text)))[:2]
        assert header[:4] == ["External id", "Submitted", "Partner id", "Partner"]
        assert "Acme Finance" in text
        shown = dict(zip(header, row, strict=True))
        assert (shown["Region"], shown["Size band"], shown["Status"]) == (
            "East",
            "Mid-market",
            "Submitted",
        )

    def test_a_manager_sees_conflicts_and_duplicates_and_approves(
        self, registration_market
    ) -> None:
        cast = registration_market.cast
        registration = registration_market.submit(company_name="Bolt Finance GmbH")
        client = client_for(cast.manager)
        url = f"/workspace/registrations/{registration.pk}/"
        page = client.get(url).content.decode()
        assert "Covered today by sales rep Rita Rep" in page
        assert "same company name" in page
        response = client.post(url + "approve/", {"approve-protected_days": "30"})
        assert response.status_code == 302
        registration.refresh_from_db()
        assert registration.status == "approved"
        assert registration.protected_until == TODAY + timedelta(days=30)
        assert CoverageAssignment.objects.filter(
            account=registration_market.direct, partner=cast.partner_a
        ).exists()

    def test_a_refused_decision_is_shown_where_the_manager_is(self, registration_market) -> None:
        cast = registration_market.cast
        first = registration_market.submit(user=cast.partner_b_user, company_name="Acme Finance")
        registration_approve(registration=first, by=cast.manager)
        second = registration_market.submit(company_name="Acme Finance")
        client = client_for(cast.manager)
        url = f"/workspace/registrations/{second.pk}/"
        response = client.post(url + "approve/", {})
        assert response.status_code == 409
        assert "Beta Cloud holds approved registration" in response.content.decode()
        rejected = client.post(url + "reject/", {"reject-reason": ""})
        assert rejected.status_code == 400
        assert 'data-field-error="reason"' in rejected.content.decode()
        second.refresh_from_db()
        assert second.status == "submitted"

    def test_won_lost_and_extension_from_the_page(self, registration_market) -> None:
        cast = registration_market.cast
        client = client_for(cast.manager)
        one = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"), by=cast.manager
        )
        url = f"/workspace/registrations/{one.pk}/"
        client.post(url + "extend/", {"extend-days": "10"})
        one.refresh_from_db()
        assert one.protected_until == TODAY + timedelta(days=100)
        client.post(url + "won/", {"won-amount": "1000", "won-closed_on": TODAY.isoformat()})
        one.refresh_from_db()
        assert one.status == "won" and one.account.converted_via == "partner"
        other = registration_approve(
            registration=registration_market.submit(company_name="Dune Insurance"), by=cast.manager
        )
        client.post(f"/workspace/registrations/{other.pk}/lost/", {"lost-reason": "Budget cut."})
        other.refresh_from_db()
        assert other.status == "lost"

    def test_executives_read_but_cannot_decide(self, registration_market) -> None:
        registration = registration_market.submit()
        client = client_for(registration_market.cast.executive)
        page = client.get(f"/workspace/registrations/{registration.pk}/").content.decode()
        assert "Nimbus Analytics" in page and "approve/" not in page
        response = client.post(f"/workspace/registrations/{registration.pk}/approve/")
        assert response.status_code == 404

    def test_reps_see_the_registrations_of_their_accounts_only(self, registration_market) -> None:
        on_theirs = registration_market.submit(company_name="Bolt Finance")
        elsewhere = registration_market.submit(company_name="Acme Finance")
        html = client_for(registration_market.cast.rep_user).get("/workspace/registrations/")
        assert on_theirs.external_id in html.content.decode()
        assert elsewhere.external_id not in html.content.decode()

    def test_a_rep_sees_no_duplicates_beyond_its_accounts(self, registration_market) -> None:
        cast = registration_market.cast
        prospect = registration_market.submit(
            user=cast.partner_b_user, company_name="Zeta Holdings", website="bolt.example"
        )
        on_theirs = registration_market.submit(company_name="Bolt Finance", website="bolt.example")
        assert on_theirs.account == registration_market.direct and prospect.account is None
        rep_page = client_for(cast.rep_user).get(f"/workspace/registrations/{on_theirs.pk}/")
        assert rep_page.status_code == 200
        assert prospect.external_id not in rep_page.content.decode()
        manager_page = client_for(cast.manager).get(f"/workspace/registrations/{on_theirs.pk}/")
        assert prospect.external_id in manager_page.content.decode()

    def test_the_account_page_lists_the_accounts_registrations(
        self, registration_market, settings
    ) -> None:
        cast = registration_market.cast
        mine = registration_market.submit(company_name="Bolt Finance")
        theirs = registration_market.submit(user=cast.partner_b_user, company_name="Bolt Finance")
        other = registration_market.submit(company_name="Acme Finance")
        assert mine.account == theirs.account == registration_market.direct
        path = f"/workspace/accounts/{registration_market.direct.pk}/"
        for user in (cast.manager, cast.rep_user):
            html = client_for(user).get(path).content.decode()
            assert mine.external_id in html and theirs.external_id in html, user
            assert other.external_id not in html
            assert 'data-testid="account-registration-count">2<' in html
        empty = client_for(cast.manager).get(
            f"/workspace/accounts/{registration_market.customer.pk}/"
        )
        assert "No partner has registered a deal for this account." in empty.content.decode()

    def test_the_queue_lists_every_registration_of_an_account(
        self, registration_market, monkeypatch
    ) -> None:
        from partners import coverage_views

        monkeypatch.setattr(coverage_views, "ACCOUNT_REGISTRATIONS_SHOWN", 1)
        first = registration_market.submit(company_name="Bolt Finance")
        second = registration_market.submit(company_name="Bolt Finance GmbH")
        other = registration_market.submit(company_name="Acme Finance")
        client = client_for(registration_market.cast.manager)
        account = registration_market.direct
        page = client.get(f"/workspace/accounts/{account.pk}/").content.decode()
        link = f"/workspace/registrations/?status=&amp;account={account.pk}"
        assert link in page and "All 2 registrations of this account" in page
        queue = client.get(link.replace("&amp;", "&")).content.decode()
        assert first.external_id in queue and second.external_id in queue
        assert other.external_id not in queue
        assert f'name="account" value="{account.pk}"' in queue
        assert account.name in queue

    def test_the_partner_page_shows_registrations_and_win_rate(self, registration_market) -> None:
        cast = registration_market.cast
        won = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"), by=cast.manager
        )
        client = client_for(cast.manager)
        client.post(
            f"/workspace/registrations/{won.pk}/won/",
            {"won-amount": "10", "won-closed_on": TODAY.isoformat()},
        )
        lost = registration_approve(
            registration=registration_market.submit(company_name="Dune Insurance"),
            by=cast.manager,
        )
        client.post(f"/workspace/registrations/{lost.pk}/lost/", {})
        registration_market.submit(company_name="Quasar")
        partner_page = client.get(f"/workspace/partners/{cast.partner_a.pk}/").content.decode()
        assert f"/workspace/partners/{cast.partner_a.pk}/registrations/" in partner_page
        card = client.get(f"/workspace/partners/{cast.partner_a.pk}/registrations/")
        html = card.content.decode()
        assert "50 %" in html and "1 won of 2 approved and ended" in html
        assert "3 registrations" in html and "Quasar" in html

    def test_the_channel_manager_receives_new_registrations(self, registration_market) -> None:
        cast = registration_market.cast
        client = client_for(cast.manager)
        client.post(
            f"/workspace/partners/{cast.partner_a.pk}/channel-manager/",
            {"manager": str(cast.manager.pk)},
        )
        cast.partner_a.refresh_from_db()
        assert cast.partner_a.channel_manager == cast.manager
        client.post(
            f"/workspace/partners/{cast.partner_a.pk}/channel-manager/",
            {"manager": str(cast.rep_user.pk)},
        )
        cast.partner_a.refresh_from_db()
        assert cast.partner_a.channel_manager == cast.manager, "a rep is not a choice"


class TestWebhookPages:
    def test_a_manager_adds_an_endpoint_and_reads_its_deliveries(self, cast, settings) -> None:
        client = client_for(cast.manager)

        def add_endpoint(url: str, *events: str) -> Any:
            return client.post(
                "/workspace/webhooks/",
                {"url": url, "secret": "x" * 20, "events": list(events)},
            )

        response = add_endpoint("http://hooks.example/crm", "deal_registration.status_changed")
        assert response.status_code == 400
        assert "HTTPS only" in response.content.decode()
        response = add_endpoint(
            "https://169.254.169.254/latest/meta-data", "deal_registration.status_changed"
        )
        assert response.status_code == 400
        assert "Webhooks are not sent to 169.254.169.254" in response.content.decode()
        response = add_endpoint(
            "https://hooks.example/crm",
            "deal_registration.status_changed",
            "agreement.status_changed",
        )
        endpoint = WebhookEndpoint.objects.get()
        assert response["Location"] == f"/workspace/webhooks/{endpoint.pk}/"
        settings.WEBHOOK_TIMEOUT_SECONDS = 1
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # an unreachable receiver of our own
        endpoint.url = "https://127.0.0.1:9/nothing"
        endpoint.save()
        client.post(f"/workspace/webhooks/{endpoint.pk}/ping/")
        page = client.get(f"/workspace/webhooks/{endpoint.pk}/").content.decode()
        assert "ping" in page and "pending" in page
        assert "x" * 20 not in page, "the secret is never shown again"
        client.post(f"/workspace/webhooks/{endpoint.pk}/toggle/")
        endpoint.refresh_from_db()
        assert endpoint.is_active is False
