"""One FilterSet per list (partners/filters.py): the page and the API read the same parameters
the same way, so a filter gives the same rows on both, and a refused value is an error on
both (a 400 by field in the API, a message beside the filters on the page)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.http import QueryDict
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from channels.models import OpportunityStage, OpportunitySubStage
from crm.models import ChannelKind, SizeBand
from crm.services import api_token_issue
from partners.models import AgreementStatus, AgreementType, FeedbackStatus, PartnerType
from partners.registration_models import DealRegistration, RegistrationStatus
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    OpportunityFactory,
    PartnerFactory,
    RegionFactory,
    VerticalFactory,
)
from tests.partners.registration_market import RegistrationMarket

pytestmark = pytest.mark.django_db


def _page(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user: Any) -> APIClient:
    client = APIClient()
    _, key = api_token_issue(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _page_ids(client: Client, url: str, params: dict[str, str]) -> list[int]:
    response = client.get(url, params)
    assert response.status_code == 200, params
    return [row.pk for row in response.context["page"]]


def _api_ids(client: APIClient, url: str, params: dict[str, str]) -> list[int]:
    response = client.get(url, params)
    assert response.status_code == 200, (params, response.content)
    return [row["id"] for row in response.json()["results"]]


def _same_rows(
    user: Any, page_url: str, api_url: str, cases: list[dict[str, str]], *, ordered: bool = False
) -> None:
    page, api = _page(user), _api(user)
    for params in cases:
        listed, answered = _page_ids(page, page_url, params), _api_ids(api, api_url, params)
        assert listed, params  # every case lists something, so equality says something
        if ordered:
            assert listed == answered, params
        else:
            assert sorted(listed) == sorted(answered), params


def _refused(user: Any, page_url: str, api_url: str, params: dict[str, str], field: str) -> None:
    answered = _api(user).get(api_url, params)
    assert answered.status_code == 400
    assert field in answered.json()
    shown = _page(user).get(page_url, params)
    assert shown.status_code == 200
    assert field in shown.context["filters"].errors
    assert 'id="filter-errors"' in shown.content.decode()


def test_the_inbox_and_the_api_list_the_same_feedback(cast: Cast) -> None:
    FeedbackFactory(partner=cast.partner_a, subject="Slow tickets", satisfaction=1)
    FeedbackFactory(partner=cast.partner_a, subject="Pricing", category="pricing", satisfaction=1)
    FeedbackFactory(partner=cast.partner_b, subject="Slow portal", satisfaction=4)
    FeedbackFactory(partner=cast.partner_b, subject="Done", status=FeedbackStatus.CLOSED)
    _same_rows(
        cast.manager,
        "/workspace/feedback/",
        "/api/v1/feedback/",
        [
            {"status": "open"},
            {"status": "all", "satisfaction": "1"},
            {"status": "all", "category": "pricing"},
            {"status": "closed", "partner": str(cast.partner_b.pk)},
            {"status": "all", "assignee": "none", "q": "slow"},
            {"status": "all", "sort": "satisfaction"},
        ],
    )
    _same_rows(
        cast.manager,
        "/workspace/feedback/",
        "/api/v1/feedback/",
        [{"status": "all", "sort": "-satisfaction"}],
        ordered=True,
    )
    _refused(cast.manager, "/workspace/feedback/", "/api/v1/feedback/", {"status": "x"}, "status")


def test_the_queue_and_the_api_list_the_same_registrations(
    registration_market: RegistrationMarket,
) -> None:
    market = registration_market
    market.submit(company_name="Nimbus Analytics Ltd")
    market.submit(company_name="Cobalt Bank PLC")
    market.submit(user=market.cast.partner_b_user, company_name="Quartz Retail")
    DealRegistration.objects.filter(company_name="Quartz Retail").update(
        status=RegistrationStatus.REJECTED
    )
    _same_rows(
        market.cast.manager,
        "/workspace/registrations/",
        "/api/v1/deal-registrations/",
        [
            {"status": "submitted"},
            {"status": "open", "partner": str(market.cast.partner_a.pk)},
            {"status": "", "q": "cobalt"},
            {"status": "", "conflict": "any"},
            {"status": "rejected"},
            {"status": "", "sort": "company_name"},
        ],
    )
    _same_rows(
        market.cast.manager,
        "/workspace/registrations/",
        "/api/v1/deal-registrations/",
        [{"status": "", "sort": "company_name"}],
        ordered=True,
    )
    _refused(
        market.cast.manager,
        "/workspace/registrations/",
        "/api/v1/deal-registrations/",
        {"overdue": "later"},
        "overdue",
    )


def test_the_pipeline_and_the_api_list_the_same_opportunities(cast: Cast) -> None:
    OpportunityFactory(
        channel=ChannelKind.PARTNER, partner=cast.partner_a, amount=Decimal("900"), recurring=True
    )
    OpportunityFactory(channel=ChannelKind.PARTNER, partner=cast.partner_b, name="Bolt renewal")
    OpportunityFactory(rep=cast.rep, amount=Decimal("50000"))
    OpportunityFactory(
        rep=cast.rep,
        stage=OpportunityStage.LOST,
        closed_on=timezone.localdate(),
        lost_reason="price",
    )
    _same_rows(
        cast.manager,
        "/workspace/opportunities/",
        "/api/v1/opportunities/",
        [
            {"stage": "open"},
            {"stage": "", "channel": "partner"},
            {"stage": "open", "recurring": "true"},
            {"stage": "", "rep": str(cast.rep.pk)},
            {"stage": "lost"},
            {"stage": "", "q": "bolt"},
            {"stage": "open", "sub_stage": "qualify"},
        ],
    )
    _same_rows(
        cast.manager,
        "/workspace/opportunities/",
        "/api/v1/opportunities/",
        [{"stage": "", "sort": "-amount"}],
        ordered=True,
    )
    _refused(
        cast.manager,
        "/workspace/opportunities/",
        "/api/v1/opportunities/",
        {"stage": "sold"},
        "stage",
    )


def test_the_partner_list_and_the_api_list_the_same_partners(cast: Cast) -> None:
    PartnerFactory(name="Gamma Integrators", partner_type=PartnerType.SYSTEM_INTEGRATOR)
    PartnerFactory(name="Old Reseller", is_active=False)
    cases = [
        {"channel_kind": "partner"},
        {"channel_kind": "partner", "partner_type": PartnerType.SYSTEM_INTEGRATOR},
        {"channel_kind": "partner", "is_active": "false"},
        {"channel_kind": "partner", "q": "beta"},
    ]
    _same_rows(cast.manager, "/workspace/partners/", "/api/v1/partners/", cases)
    _same_rows(
        cast.manager,
        "/workspace/partners/",
        "/api/v1/partners/",
        [{"channel_kind": "partner", "sort": "-name"}],
        ordered=True,
    )
    _refused(
        cast.manager,
        "/workspace/partners/",
        "/api/v1/partners/",
        {"partner_type": "pirate"},
        "partner_type",
    )


def test_the_account_list_and_the_api_list_the_same_accounts(cast: Cast) -> None:
    east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
    finance = VerticalFactory(code="FIN")
    AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1))
    covered = AccountFactory(region=east, vertical=finance, name="Acme East")
    CoverageAssignmentFactory(account=covered, kind=ChannelKind.PARTNER, partner=cast.partner_a)
    # partner-b has no agreement in force: its assignment does not count as coverage.
    outside = AccountFactory(region=west, vertical=finance, name="Bolt West")
    CoverageAssignmentFactory(account=outside, kind=ChannelKind.PARTNER, partner=cast.partner_b)
    direct = AccountFactory(region=east, vertical=finance, size_band=SizeBand.ENTERPRISE)
    CoverageAssignmentFactory(account=direct, kind=ChannelKind.DIRECT, rep=cast.rep)
    AccountFactory(region=west, vertical=finance, name="Nobody's")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    _same_rows(
        cast.manager,
        "/workspace/accounts/",
        "/api/v1/accounts/",
        [
            {"region": "EAST"},
            {"coverage": "none"},
            {"coverage": "any"},
            {"coverage": "direct", "as_of": yesterday},
            {"coverage": "outside"},
            {"partner": str(cast.partner_a.pk)},
            {"rep": str(cast.rep.pk)},
            {"size_band": SizeBand.ENTERPRISE},
            {"q": "bolt"},
            {"vertical": "FIN", "coverage": "partner"},
        ],
    )
    _refused(
        cast.manager,
        "/workspace/accounts/",
        "/api/v1/accounts/",
        {"size_band": "galactic"},
        "size_band",
    )
    # A partner user's token lists its own accounts; how other channels cover them is not its
    # to filter by.
    partner_api = _api(cast.partner_a_user)
    assert _api_ids(partner_api, "/api/v1/accounts/", {"coverage": "none"}) == [covered.pk]
    assert _api_ids(partner_api, "/api/v1/accounts/", {"partner": str(cast.partner_b.pk)}) == []


def test_the_agreement_list_and_the_api_list_the_same_agreements(cast: Cast) -> None:
    distributor = PartnerFactory(name="Delta Distribution", channel_kind="distribution")
    AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1), exclusive=True)
    AgreementFactory(
        partner=cast.partner_b,
        agreement_type=AgreementType.REFERRAL,
        status=AgreementStatus.DRAFT,
        start_date=date(2026, 3, 1),
    )
    AgreementFactory(
        partner=distributor,
        agreement_type=AgreementType.DISTRIBUTION,
        status=AgreementStatus.EXPIRED,
        start_date=date(2024, 6, 1),
    )
    cases = [
        {},
        {"status": "draft"},
        {"agreement_type": "distribution"},
        {"channel_kind": "partner"},
        {"partner": str(cast.partner_a.pk)},
        {"exclusive": "true"},
        {"ends_after": "2026-06-01"},
        {"ends_before": "2025-12-31"},
        {"q": "delta"},
    ]
    _same_rows(cast.manager, "/workspace/agreements/", "/api/v1/agreements/", cases)
    for sort in ("partner", "end_date", "-start_date"):
        _same_rows(
            cast.manager,
            "/workspace/agreements/",
            "/api/v1/agreements/",
            [{"sort": sort}],
            ordered=True,
        )
    _refused(
        cast.manager,
        "/workspace/agreements/",
        "/api/v1/agreements/",
        {"ends_before": "soon"},
        "ends_before",
    )
    _refused(
        cast.manager,
        "/workspace/agreements/",
        "/api/v1/agreements/",
        {"agreement_type": "handshake"},
        "agreement_type",
    )


ACCOUNT_SORTS = ["name", "-name", "external_id", "-external_id", "entered_on", "-entered_on"]


def _tied_accounts() -> None:
    """Accounts whose names and entry dates repeat, created out of order, so only the id
    tiebreak tells the rows apart."""
    region, vertical = RegionFactory(code="EAST"), VerticalFactory(code="FIN")
    for index, (name, day) in enumerate(
        [("Zeta", 3), ("Acme", 1), ("Acme", 2), ("Mid", 1), ("Acme", 3), ("Zeta", 1), ("Acme", 1)]
        * 2
    ):
        AccountFactory(
            region=region,
            vertical=vertical,
            name=name,
            external_id=f"X-{(index * 5) % 14:02d}",
            entered_on=date(2025, 1, day),
        )


def test_the_account_list_and_the_api_sort_accounts_the_same_way(cast: Cast) -> None:
    _tied_accounts()
    cases = [{"region": "EAST", "sort": sort} for sort in ACCOUNT_SORTS]
    _same_rows(cast.manager, "/workspace/accounts/", "/api/v1/accounts/", cases, ordered=True)
    listed = _page_ids(_page(cast.manager), "/workspace/accounts/", {"sort": "name"})
    names = [
        (row["name"], row["id"])
        for row in _api(cast.manager).get("/api/v1/accounts/", {"sort": "name"}).json()["results"]
    ]
    assert names == sorted(names)  # by name, ties by id
    assert [pk for _name, pk in names] == listed
    _refused(
        cast.manager, "/workspace/accounts/", "/api/v1/accounts/", {"sort": "size_band"}, "sort"
    )


def _walk(client: APIClient, params: dict[str, str]) -> tuple[list[int], list[int]]:
    """Every id the cursor lists, following `next` to the end, then `previous` back."""
    forward: list[int] = []
    pages = []
    url: str | None = "/api/v1/accounts/"
    query: dict[str, str] | None = params
    while url:
        body = client.get(url, query).json()
        pages.append([row["id"] for row in body["results"]])
        forward += pages[-1]
        url, query = body["next"], None
    backward: list[int] = []
    url = body["previous"]
    while url:
        body = client.get(url).json()
        backward = [row["id"] for row in body["results"]] + backward
        url = body["previous"]
    return forward, backward + pages[-1]


def test_the_api_cursor_walks_every_account_once_in_a_sort_with_ties(cast: Cast) -> None:
    _tied_accounts()
    api = _api(cast.manager)
    for sort in ("name", "-name", "entered_on", "-entered_on"):
        whole = _api_ids(api, "/api/v1/accounts/", {"sort": sort, "page_size": "100"})
        # Pages of 2 and 3 rows split runs of equal names and dates between pages.
        for size in ("2", "3"):
            forward, backward = _walk(api, {"sort": sort, "page_size": size})
            assert forward == whole, (sort, size)
            assert backward == whole, (sort, size)
    assert len(whole) == len(set(whole)) == 14


# Links written before the FilterSets ------------------------------------------------------------


def _follows_to(client: Client, url: str, params: dict[str, str], new: dict[str, str]) -> None:
    """`params` (an old bookmark) redirect to the same list under today's names `new`, which
    lists the same rows as asking with `new` directly."""
    response = client.get(url, params)
    assert response.status_code == 302, params
    location = response.headers["Location"]
    assert location.startswith(url + "?")
    assert QueryDict(location.split("?", 1)[1]) == QueryDict(urlencode(new)), location
    followed = client.get(location)
    assert followed.status_code == 200
    assert not followed.context["filters"].errors
    assert [row.pk for row in followed.context["page"]] == _page_ids(client, url, new)


def test_old_agreement_list_bookmarks_keep_their_filters(cast: Cast) -> None:
    AgreementFactory(partner=cast.partner_a, exclusive=True, agreement_type=AgreementType.RESELLER)
    AgreementFactory(partner=cast.partner_b, agreement_type=AgreementType.REFERRAL)
    page = _page(cast.manager)
    url = "/workspace/agreements/"
    _follows_to(page, url, {"type": "referral"}, {"agreement_type": "referral"})
    _follows_to(
        page,
        url,
        {"type": "reseller", "exclusive": "yes", "sort": "partner"},
        {"agreement_type": "reseller", "exclusive": "true", "sort": "partner"},
    )
    _follows_to(page, url, {"exclusive": "no", "q": "a"}, {"exclusive": "false", "q": "a"})
    # A new name given beside the old one wins; today's names are not redirected.
    _follows_to(
        page,
        url,
        {"type": "reseller", "agreement_type": "referral"},
        {"agreement_type": "referral"},
    )
    assert page.get(url, {"agreement_type": "referral", "exclusive": "false"}).status_code == 200
    assert len(_page_ids(page, url, {"agreement_type": "reseller", "exclusive": "true"})) == 1


def test_old_bookmarks_of_the_other_renamed_lists_keep_their_filters(cast: Cast) -> None:
    PartnerFactory(name="Gamma Integrators", partner_type=PartnerType.SYSTEM_INTEGRATOR)
    PartnerFactory(name="Old Reseller", is_active=False)
    FeedbackFactory(partner=cast.partner_a, satisfaction=2)
    OpportunityFactory(channel=ChannelKind.PARTNER, partner=cast.partner_a, recurring=True)
    page = _page(cast.manager)
    _follows_to(
        page,
        "/workspace/partners/",
        {"type": PartnerType.SYSTEM_INTEGRATOR, "active": "yes"},
        {"partner_type": PartnerType.SYSTEM_INTEGRATOR, "is_active": "true"},
    )
    _follows_to(page, "/workspace/partners/", {"active": "no"}, {"is_active": "false"})
    _follows_to(
        page,
        "/workspace/feedback/",
        {"status": "all", "rating": "2"},
        {"status": "all", "satisfaction": "2"},
    )
    _follows_to(page, "/workspace/opportunities/", {"recurring": "yes"}, {"recurring": "true"})
    step = OpportunitySubStage.objects.get(code="qualify")
    _follows_to(
        page, "/workspace/opportunities/", {"sub_stage": str(step.pk)}, {"sub_stage": "qualify"}
    )


@pytest.mark.parametrize(
    ("page_url", "api_url", "field"),
    [
        ("/workspace/agreements/", "/api/v1/agreements/", "exclusive"),
        ("/workspace/partners/", "/api/v1/partners/", "is_active"),
        ("/workspace/accounts/", "/api/v1/accounts/", "converted"),
        ("/workspace/opportunities/", "/api/v1/opportunities/", "recurring"),
        ("/workspace/registrations/", "/api/v1/deal-registrations/", "needs_review"),
    ],
)
def test_a_yes_no_filter_refuses_any_other_value(
    cast: Cast, page_url: str, api_url: str, field: str
) -> None:
    """true/false (or 1/0) only: an unknown value is shown as refused, never read as no filter."""
    _refused(cast.manager, page_url, api_url, {field: "maybe"}, field)
    shown = _page(cast.manager).get(page_url, {field: "maybe"}).content.decode()
    assert "maybe" in shown  # the message names the refused value
    chinese = _page(cast.manager)
    chinese.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "不在可用的选项中" in chinese.get(page_url, {field: "maybe"}).content.decode()


def test_every_renamed_list_refuses_an_unknown_sort_or_value(cast: Cast) -> None:
    """The lists whose parameters moved into a FilterSet say so when a link's value is not
    theirs (an order that does not exist, a stage or a type by an unknown code)."""
    for page_url, api_url, params, field in [
        ("/workspace/accounts/", "/api/v1/accounts/", {"sort": "-size_band"}, "sort"),
        ("/workspace/agreements/", "/api/v1/agreements/", {"sort": "status"}, "sort"),
        ("/workspace/partners/", "/api/v1/partners/", {"sort": "-tier"}, "sort"),
        ("/workspace/feedback/", "/api/v1/feedback/", {"satisfaction": "9"}, "satisfaction"),
        ("/workspace/opportunities/", "/api/v1/opportunities/", {"sort": "name"}, "sort"),
    ]:
        _refused(cast.manager, page_url, api_url, params, field)
