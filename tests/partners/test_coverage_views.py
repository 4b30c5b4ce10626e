from __future__ import annotations

from datetime import date, timedelta

from django.test import Client
from django.utils import timezone

from channels.models import CoverageAssignment
from crm.models import Account
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    RegionFactory,
    SalesRepFactory,
    VerticalFactory,
)


def _client_for(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


class TestCoverageAssignment:
    def test_it_assigns_ticked_accounts_to_a_partner_and_flags_those_outside_its_agreements(
        self, cast: Cast
    ) -> None:
        granted, other = RegionFactory(code="east"), RegionFactory(code="west")
        today = timezone.localdate()
        AgreementFactory(
            partner=cast.partner_a,
            regions=[granted],
            start_date=today - timedelta(days=10),
            end_date=today + timedelta(days=300),
        )
        inside = AccountFactory.create_batch(2, region=granted)
        outside = AccountFactory(region=other)
        client = _client_for(cast.manager)

        response = client.post(
            "/workspace/coverage/assign/",
            {
                "scope": "selected",
                "account": [a.pk for a in [*inside, outside]],
                "kind": "partner",
                "partner": cast.partner_a.pk,
                "start_date": today.isoformat(),
                "next": "/workspace/accounts/",
            },
            follow=True,
        )

        assert CoverageAssignment.objects.filter(partner=cast.partner_a).count() == 3
        html = response.content.decode()
        assert "Assigned 3 account(s)" in html
        assert "1 of these accounts lie outside" in html
        detail = client.get(f"/workspace/accounts/{outside.pk}/").content.decode()
        assert "no agreement in force" in detail
        assert "counts" in client.get(f"/workspace/accounts/{inside[0].pk}/").content.decode()

    def test_it_assigns_everything_matching_the_filter(self, cast: Cast) -> None:
        east = RegionFactory(code="east")
        AccountFactory.create_batch(3, region=east)
        AccountFactory()
        rep = SalesRepFactory()
        _client_for(cast.manager).post(
            "/workspace/coverage/assign/",
            {
                "scope": "filter",
                "region": "east",
                "kind": "direct",
                "rep": rep.pk,
                "start_date": "2026-01-01",
            },
        )
        assert set(CoverageAssignment.objects.values_list("account__region__code", flat=True)) == {
            "east"
        }
        assert CoverageAssignment.objects.count() == 3

    def test_it_refuses_another_partners_id_it_cannot_choose(self, cast: Cast) -> None:
        account = AccountFactory()
        response = _client_for(cast.manager).post(
            "/workspace/coverage/assign/",
            {
                "scope": "selected",
                "account": account.pk,
                "kind": "partner",
                "partner": "999999",
                "start_date": "2026-01-01",
            },
            follow=True,
        )
        assert not CoverageAssignment.objects.exists()
        assert "Select a valid choice" in response.content.decode()

    def test_it_does_not_let_reps_assign(self, cast: Cast) -> None:
        account = AccountFactory()
        response = _client_for(cast.rep_user).post(
            "/workspace/coverage/assign/",
            {
                "scope": "selected",
                "account": account.pk,
                "kind": "online",
                "online_source": "web",
                "start_date": "2026-01-01",
            },
        )
        assert response.status_code == 404 and not CoverageAssignment.objects.exists()

    def test_it_ends_an_assignment(self, cast: Cast) -> None:
        assignment = CoverageAssignment.objects.create(
            account=AccountFactory(),
            kind="online",
            online_source="web",
            start_date=date(2026, 1, 1),
        )
        _client_for(cast.manager).post(
            f"/workspace/coverage/{assignment.pk}/end/", {"end_date": "2026-06-30"}
        )
        assignment.refresh_from_db()
        assert assignment.end_date == date(2026, 6, 30)


class TestAccountListAndWhiteSpace:
    def test_it_filters_by_coverage_and_shows_each_accounts_coverage(self, cast: Cast) -> None:
        covered = AccountFactory(name="Covered Co")
        AccountFactory(name="Bare Co")
        CoverageAssignment.objects.create(
            account=covered, kind="online", online_source="web-signup", start_date=date(2025, 1, 1)
        )
        client = _client_for(cast.manager)
        html = client.get("/workspace/accounts/?coverage=none").content.decode()
        assert "Bare Co" in html and "Covered Co" not in html
        html = client.get("/workspace/accounts/?coverage=online").content.decode()
        assert "Covered Co" in html and "online: web-signup" in html

    def test_it_sorts_by_the_chosen_column(self, cast: Cast) -> None:
        AccountFactory(name="Aardvark", entered_on=date(2025, 5, 1))
        AccountFactory(name="Zebra", entered_on=date(2024, 5, 1))
        html = _client_for(cast.manager).get("/workspace/accounts/?sort=-name").content.decode()
        assert html.index("Zebra") < html.index("Aardvark")

    def test_it_counts_white_space_by_segment_with_links_to_the_accounts(self, cast: Cast) -> None:
        east, retail = RegionFactory(code="east", name="East"), VerticalFactory(code="retail")
        AccountFactory.create_batch(2, region=east, vertical=retail)
        AccountFactory(region=east, vertical=retail, archived_on=date(2025, 6, 1))
        html = _client_for(cast.manager).get("/workspace/white-space/").content.decode()
        assert "?region=east&amp;vertical=retail&amp;size_band=smb&amp;coverage=none" in html
        assert ">2</a>" in html
        assert Account.objects.count() == 3
