from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django.core import mail
from django.test import Client

from analytics.models import PartnerSnapshot
from partners.models import Partner, PartnerUser
from tests.cast import Cast, signed_in

PARTNER_FORM = {
    "name": "Gamma Integrators",
    "external_id": "P-GAMMA",
    "channel_kind": "partner",
    "partner_type": "system_integrator",
    "tier": "gold",
    "is_active": "on",
}


class TestPartnerPages:
    def test_it_creates_a_partner_and_refuses_a_taken_external_id(self, cast: Cast) -> None:
        client = signed_in(cast.manager)
        response = client.post("/workspace/partners/new/", PARTNER_FORM)
        partner = Partner.objects.get(external_id="P-GAMMA")
        assert response["Location"] == f"/workspace/partners/{partner.pk}/"
        again = client.post("/workspace/partners/new/", {**PARTNER_FORM, "name": "Other"})
        assert 'data-field-error="external_id"' in again.content.decode()
        assert Partner.objects.filter(name="Other").count() == 0

    def test_it_filters_and_sorts_partners_in_the_url(self, cast: Cast) -> None:
        client = signed_in(cast.manager)
        client.post("/workspace/partners/new/", PARTNER_FORM)
        html = client.get("/workspace/partners/?tier=gold").content.decode()
        assert "Gamma Integrators" in html and "Alpha Systems" not in html
        html = client.get("/workspace/partners/?sort=-name").content.decode()
        assert html.index("Gamma Integrators") < html.index("Alpha Systems")

    def test_it_adds_contacts_and_shows_them(self, cast: Cast) -> None:
        client = signed_in(cast.manager)
        client.post(
            f"/workspace/partners/{cast.partner_a.pk}/contacts/",
            {"name": "Wang Lei", "email": "wang@alpha.example", "is_primary": "on"},
        )
        assert (
            "Wang Lei" in client.get(f"/workspace/partners/{cast.partner_a.pk}/").content.decode()
        )

    def test_it_shows_the_health_card_from_the_latest_snapshot(self, cast: Cast) -> None:
        for week, as_of, covered in [
            ("2026-W45", date(2026, 11, 8), 10),
            ("2026-W46", date(2026, 11, 15), 12),
        ]:
            PartnerSnapshot.objects.create(
                week=week,
                as_of=as_of,
                final=True,
                partner=cast.partner_a,
                external_id="P-ALPHA",
                name="Alpha",
                channel_kind="partner",
                covered_accounts=covered,
                converted_accounts=3,
                agreements_in_force=1,
                feedback_count=4,
                satisfaction_mean=3.4,
                nps=-20.0,
            )
        html = (
            signed_in(cast.manager)
            .get(f"/dashboard/partners/{cast.partner_a.pk}/health/", headers={"HX-Request": "true"})
            .content.decode()
        )
        assert "2026-W46" in html and ">12<" in html and "3.4 / 5" in html and "-20" in html
        assert (
            signed_in(cast.partner_a_user)
            .get(f"/dashboard/partners/{cast.partner_a.pk}/health/")
            .status_code
            == 404
        )


class TestInvitation:
    def test_it_invites_a_portal_user_who_sets_a_password_through_the_link_once(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            signed_in(cast.manager).post(
                f"/workspace/partners/{cast.partner_a.pk}/invite/",
                {"email": "new.user@alpha.example"},
            )
        membership = PartnerUser.objects.get(user__email="new.user@alpha.example")
        assert membership.partner == cast.partner_a and not membership.user.has_usable_password()
        link = re.search(r"https?://[^/\s]+(/portal/invitation/\S+/)", mail.outbox[0].body).group(1)

        anonymous = Client()
        page = anonymous.get(link)
        assert page.status_code == 200 and "new.user@alpha.example" in page.content.decode()
        weak = anonymous.post(link, {"new_password1": "short", "new_password2": "short"})
        assert 'data-field-error="new_password2"' in weak.content.decode()
        done = anonymous.post(
            link,
            {
                "new_password1": "a-long-portal-passphrase",
                "new_password2": "a-long-portal-passphrase",
            },
        )
        assert done["Location"] == "/portal/"
        assert anonymous.get("/portal/").status_code == 200
        assert Client().get(link).status_code == 400, "the link works once"

    def test_it_refuses_a_tampered_or_expired_link(self, cast: Cast, settings: Any) -> None:
        from partners.services import invitation_path, portal_user_invite

        membership = portal_user_invite(
            partner=cast.partner_a, email="x@alpha.example", by=cast.manager
        )
        path = invitation_path(membership.user)
        assert Client().get(path[:-3] + "xx/").status_code == 400
        settings.PASSWORD_RESET_TIMEOUT = -1
        assert Client().get(path).status_code == 400

    def test_it_refuses_to_invite_an_address_that_already_has_a_login(self, cast: Cast) -> None:
        cast.partner_b_user.email = "taken@example.com"
        cast.partner_b_user.save()
        response = signed_in(cast.manager).post(
            f"/workspace/partners/{cast.partner_a.pk}/invite/",
            {"email": "taken@example.com"},
            follow=True,
        )
        assert "already has a login" in response.content.decode()
        assert PartnerUser.objects.count() == 2


class TestCoveredCounts:
    def _listed(self, client: Client, partner: Partner) -> int:
        html = client.get("/workspace/partners/").content.decode()
        row = re.search(rf"{re.escape(partner.name)}</a>.*?</tr>", html, re.S)
        assert row is not None
        return int(re.findall(r'<td class="num"><a [^>]*>(\d+)</a></td>', row.group(0))[0])

    def test_the_list_shows_covered_counts_at_most_a_minute_old(self, cast: Cast) -> None:
        import time_machine
        from django.core.cache import cache
        from django.utils import timezone

        from tests.factories import CoverageAssignmentFactory

        cache.clear()
        client = signed_in(cast.manager)
        start = timezone.now()
        today = timezone.localdate()
        with time_machine.travel(start, tick=False):
            before = self._listed(client, cast.partner_a)
            CoverageAssignmentFactory(
                kind="partner", partner=cast.partner_a, rep=None, start_date=today
            )
            assert self._listed(client, cast.partner_a) == before
        with time_machine.travel(start + timedelta(seconds=61), tick=False):
            assert self._listed(client, cast.partner_a) == before + 1
