from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from channels.models import CoverageAssignment
from crm.models import Account
from tests.cast import Cast, signed_in
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    PartnerFactory,
    RegionFactory,
    SalesRepFactory,
    VerticalFactory,
)


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
        client = signed_in(cast.manager)

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
        assert "Assigned 3 accounts" in html
        assert "1 of these accounts lies outside" in html and "Systems's" not in html
        detail = client.get(f"/workspace/accounts/{outside.pk}/").content.decode()
        assert "no agreement in force" in detail
        assert "counts" in client.get(f"/workspace/accounts/{inside[0].pk}/").content.decode()

    def test_it_assigns_everything_matching_the_filter_once_the_count_is_confirmed(
        self, cast: Cast
    ) -> None:
        east = RegionFactory(code="east")
        AccountFactory.create_batch(3, region=east)
        AccountFactory()
        rep = SalesRepFactory()
        client = signed_in(cast.manager)
        data = {
            "scope": "filter",
            "filter-region": "east",
            "kind": "direct",
            "rep": rep.pk,
            "start_date": "2026-01-01",
        }
        confirm = client.post("/workspace/coverage/assign/", data)
        assert confirm.status_code == 200 and not CoverageAssignment.objects.exists()
        assert "Assign 3 accounts to" in confirm.content.decode()
        client.post("/workspace/coverage/assign/", {**data, "confirmed_count": "3"})
        assert set(CoverageAssignment.objects.values_list("account__region__code", flat=True)) == {
            "east"
        }
        assert CoverageAssignment.objects.count() == 3

    def test_it_asks_again_when_the_filter_matches_another_count_by_then(self, cast: Cast) -> None:
        east = RegionFactory(code="east")
        AccountFactory.create_batch(3, region=east)
        data = {
            "scope": "filter",
            "filter-region": "east",
            "kind": "online",
            "online_source": "web",
            "start_date": "2026-01-01",
        }
        client = signed_in(cast.manager)
        client.post("/workspace/coverage/assign/", data)
        AccountFactory(region=east)
        again = client.post("/workspace/coverage/assign/", {**data, "confirmed_count": "3"})
        html = again.content.decode()
        assert 'data-testid="count-changed"' in html and "Assign 4 accounts" in html
        assert not CoverageAssignment.objects.exists()

    def test_it_refuses_another_partners_id_it_cannot_choose(self, cast: Cast) -> None:
        account = AccountFactory()
        response = signed_in(cast.manager).post(
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
        response = signed_in(cast.rep_user).post(
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
        signed_in(cast.manager).post(
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
        client = signed_in(cast.manager)
        html = client.get("/workspace/accounts/?coverage=none").content.decode()
        assert "Bare Co" in html and "Covered Co" not in html
        html = client.get("/workspace/accounts/?coverage=online").content.decode()
        assert "Covered Co" in html and "Online: web-signup" in html

    def test_it_sorts_by_the_chosen_column(self, cast: Cast) -> None:
        AccountFactory(name="Aardvark", entered_on=date(2025, 5, 1))
        AccountFactory(name="Zebra", entered_on=date(2024, 5, 1))
        html = signed_in(cast.manager).get("/workspace/accounts/?sort=-name").content.decode()
        assert html.index("Zebra") < html.index("Aardvark")

    def test_it_counts_white_space_by_segment_with_links_to_the_accounts(self, cast: Cast) -> None:
        east, retail = RegionFactory(code="east", name="East"), VerticalFactory(code="retail")
        AccountFactory.create_batch(2, region=east, vertical=retail)
        AccountFactory(region=east, vertical=retail, archived_on=date(2025, 6, 1))
        html = signed_in(cast.manager).get("/workspace/white-space/").content.decode()
        assert "?region=east&amp;vertical=retail&amp;size_band=smb&amp;coverage=none" in html
        assert ">2</a>" in html
        assert Account.objects.count() == 3


@pytest.fixture
def market(cast: Cast) -> dict[str, Any]:
    """Accounts over two regions, two verticals and two size bands, covered by a partner
    inside and outside its agreement, a distributor without one, a rep and online; one
    account archived and one entering the market later."""
    today = timezone.localdate()
    east, west = RegionFactory(code="east", name="East"), RegionFactory(code="west", name="West")
    fin, ret = VerticalFactory(code="fin", name="Finance"), VerticalFactory(code="ret")
    rep = SalesRepFactory(name="Rita Direct")
    distributor = PartnerFactory(name="Dist Co", channel_kind="distribution")
    AgreementFactory(
        partner=cast.partner_a,
        regions=[east],
        start_date=today - timedelta(days=100),
        end_date=today + timedelta(days=200),
    )
    accounts = []
    for number in range(24):
        account = AccountFactory(
            name=f"Shop {number:02d}",
            region=(east, west)[number % 2],
            vertical=(fin, ret)[number // 2 % 2],
            size_band=("smb", "enterprise")[number // 4 % 2],
            entered_on=today - timedelta(days=400),
            archived_on=today - timedelta(days=5) if number == 23 else None,
        )
        started = today - timedelta(days=30)
        if number % 3 == 0:
            CoverageAssignmentFactory(
                account=account, kind="partner", partner=cast.partner_a, start_date=started
            )
        if number % 4 == 1:
            CoverageAssignmentFactory(
                account=account, kind="distribution", partner=distributor, start_date=started
            )
        if number % 5 == 2:
            CoverageAssignmentFactory(account=account, kind="direct", rep=rep, start_date=started)
        if number % 7 == 3:
            CoverageAssignmentFactory(
                account=account, kind="online", start_date=today - timedelta(days=3)
            )
        accounts.append(account)
    AccountFactory(name="Shop later", region=east, entered_on=today + timedelta(days=10))
    return {"rep": rep, "distributor": distributor, "accounts": accounts}


def _listed(client: Client, query: dict[str, str]) -> tuple[int, set[int]]:
    """The count the list names and the ids of every account it shows (all pages)."""
    response = client.get("/workspace/accounts/", query)
    count = response.context["page"].paginator.count
    ids = set(response.context["page"].paginator.object_list.values_list("pk", flat=True))
    return count, ids


def _filters(cast: Cast, market: dict[str, Any]) -> list[dict[str, str]]:
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    return [
        {},
        {"q": "Shop 1"},
        {"region": "east"},
        {"vertical": "fin", "size_band": "smb"},
        {"coverage": "none"},
        {"coverage": "any", "region": "west"},
        {"coverage": "partner"},
        {"coverage": "distribution"},
        {"coverage": "outside"},
        {"partner": str(cast.partner_a.pk)},
        {"partner": str(cast.partner_a.pk), "coverage": "outside"},
        {"rep": str(market["rep"].pk), "vertical": "ret"},
        {"coverage": "online", "as_of": week_ago},
        {"coverage": "none", "as_of": week_ago, "region": "east", "size_band": "enterprise"},
    ]


class TestAccountListFilters:
    def test_bulk_assign_acts_on_exactly_the_rows_the_list_shows_for_every_filter(
        self, cast: Cast, market: dict[str, Any]
    ) -> None:
        client = signed_in(cast.manager)
        for number, query in enumerate(_filters(cast, market)):
            count, ids = _listed(client, query)
            source = f"batch-{number}"
            page = client.get("/workspace/accounts/", query).content.decode()
            # The form carries every filter the list applies.
            for name, value in query.items():
                form = page.split('id="account-form"')[1]
                assert f'name="filter-{name}" value="{value}"' in form, query
            data = {
                **{f"filter-{name}": value for name, value in query.items()},
                "scope": "filter",
                "kind": "online",
                "online_source": source,
                "start_date": timezone.localdate().isoformat(),
            }
            confirm = client.post("/workspace/coverage/assign/", data)
            if not ids:
                assert confirm.status_code == 302, query
                continue
            assert confirm.context["count"] == count == len(ids), query
            client.post("/workspace/coverage/assign/", {**data, "confirmed_count": str(count)})
            assigned = set(
                CoverageAssignment.objects.filter(online_source=source).values_list(
                    "account_id", flat=True
                )
            )
            assert assigned == ids, query
            CoverageAssignment.objects.filter(online_source=source).delete()

    def test_coverage_follows_the_metric_rules(self, cast: Cast, market: dict[str, Any]) -> None:
        client = signed_in(cast.manager)
        accounts = market["accounts"]
        _, none = _listed(client, {"coverage": "none"})
        _, outside = _listed(client, {"coverage": "outside"})
        _, partner = _listed(client, {"coverage": "partner"})
        # Shop 15 (west) is assigned to partner A, whose agreement grants only east: white
        # space, and outside an agreement. Shop 00 (east) counts. The archived Shop 23 and the
        # account entering later are not in the market.
        assert accounts[15].pk in none and accounts[15].pk in outside
        assert accounts[0].pk in partner and accounts[0].pk not in none | outside
        assert accounts[23].pk not in none
        assert not {a.pk for a in Account.objects.filter(name="Shop later")} & none
        # The distributor has no agreement: its accounts are outside, never covered by it.
        assert not _listed(client, {"coverage": "distribution"})[1]
        assert accounts[1].pk in outside


class TestPartnerPageCounts:
    def test_each_count_links_to_a_list_of_exactly_that_count(
        self, cast: Cast, market: dict[str, Any]
    ) -> None:
        client = signed_in(cast.manager)
        html = client.get(f"/workspace/partners/{cast.partner_a.pk}/").content.decode()
        counts = {}
        for key in ("assigned", "counted", "outside"):
            match = re.search(rf'<a href="([^"]+)" data-testid="{key}">([\d,]+)</a>', html)
            assert match, key
            url, shown = match.group(1).replace("&amp;", "&"), int(match.group(2))
            listed = client.get(url).context["page"].paginator.count
            assert listed == shown, key
            counts[key] = shown
        # Partner A covers Shop 00, 03, ..., 21 (eight accounts): east ones count, west not.
        assert counts == {"assigned": 8, "counted": 4, "outside": 4}
        assert "coverage=partner" not in html, "no link to every partner's accounts"

    def test_the_white_space_page_links_to_lists_of_exactly_its_counts(
        self, cast: Cast, market: dict[str, Any]
    ) -> None:
        client = signed_in(cast.manager)
        response = client.get("/workspace/white-space/")
        segments = response.context["segments"]
        assert segments
        for segment in segments:
            listed = client.get(segment["accounts_url"]).context["page"].paginator.count
            assert listed == segment["accounts"], segment

    def test_the_health_card_links_to_the_accounts_its_snapshot_counted(
        self, cast: Cast, market: dict[str, Any]
    ) -> None:
        from django.core.management import call_command

        from analytics.metrics import iso_week_of

        last_week = iso_week_of(timezone.localdate() - timedelta(days=7))
        call_command("compute_metrics", "--week", last_week, "--no-progress", stdout=io.StringIO())
        client = signed_in(cast.manager)
        html = client.get(f"/dashboard/partners/{cast.partner_a.pk}/health/").content.decode()
        match = re.search(r'<a href="([^"]+)" data-testid="health-counted">(\d+)</a>', html)
        assert match and "as_of=" in match.group(1)
        listed = client.get(match.group(1).replace("&amp;", "&")).context["page"].paginator.count
        assert listed == int(match.group(2)) == 4


def test_the_account_lists_sort_links_carry_one_order_and_every_filter(cast: Cast) -> None:
    AccountFactory(name="Aardvark")
    html = (
        signed_in(cast.manager)
        .get("/workspace/accounts/?coverage=none&sort=-name&page=1")
        .content.decode()
    )
    links = re.findall(r'href="\?([^"]*sort=[^"]*)"', html)
    assert links and all(link.count("sort=") == 1 for link in links)
    assert all("coverage=none" in link and "page=" not in link for link in links)


def test_switching_language_on_the_confirmation_page_returns_to_the_list(cast: Cast) -> None:
    AccountFactory.create_batch(2, region=RegionFactory(code="east"))
    client = signed_in(cast.manager)
    data = {
        "scope": "filter",
        "filter-region": "east",
        "kind": "online",
        "online_source": "web",
        "start_date": "2026-01-01",
        "next": "/workspace/accounts/?region=east",
    }
    html = client.post(
        "/workspace/coverage/assign/",
        data,
        headers={"referer": "http://testserver/workspace/accounts/?region=east"},
    ).content.decode()
    switcher = html[html.index('data-testid="language-switcher"') :]
    assert (
        'name="next" type="hidden" value="http://testserver/workspace/accounts/?region=east"'
        in switcher
    )
