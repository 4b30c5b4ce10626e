"""/api/v1/opportunities/: the fields, the filters, who sees which deals, opening a deal with
field errors, a missing rate, and Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from channels.models import Opportunity, OpportunityStage
from crm.models import ChannelKind
from tests.api.conftest import Market
from tests.cast import Cast
from tests.factories import CurrencyRateFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/opportunities/"


@pytest.fixture
def deals(cast: Cast, market: Market) -> dict[str, Opportunity]:
    return {
        "alpha": OpportunityFactory(
            account=market.account_a,
            channel=ChannelKind.PARTNER,
            partner=cast.partner_a,
            amount=Decimal("2500.00"),
        ),
        "beta": OpportunityFactory(
            account=market.account_b, channel=ChannelKind.PARTNER, partner=cast.partner_b
        ),
        "rep": OpportunityFactory(
            account=market.account_rep,
            rep=cast.rep,
            stage=OpportunityStage.WON,
            closed_on=date(2026, 3, 1),
        ),
    }


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["external_id"] for row in response.json()["results"]}


def test_it_shows_each_caller_the_deals_it_may_see(
    cast: Cast, deals: dict[str, Opportunity], api_as: Callable[[Any], APIClient]
) -> None:
    alpha, beta, rep = (deals[k].external_id for k in ("alpha", "beta", "rep"))

    assert _ids(api_as(cast.manager).get(URL)) == {alpha, beta, rep}
    assert _ids(api_as(cast.partner_a_user).get(URL)) == {alpha}
    assert _ids(api_as(cast.rep_user).get(URL)) == {rep}
    partner = api_as(cast.partner_a_user)
    assert partner.get(f"{URL}{deals['beta'].pk}/").status_code == 404
    row = partner.get(f"{URL}{deals['alpha'].pk}/").json()
    assert (row["partner"], row["amount"], row["stage"], row["sub_stage"]) == (
        "P-ALPHA",
        "2500.00",
        "open",
        "qualify",
    )


def test_it_filters(
    cast: Cast, deals: dict[str, Opportunity], api_as: Callable[[Any], APIClient]
) -> None:
    api = api_as(cast.manager)

    assert _ids(api.get(URL, {"stage": "won"})) == {deals["rep"].external_id}
    assert _ids(api.get(URL, {"partner": cast.partner_b.pk})) == {deals["beta"].external_id}
    assert _ids(api.get(URL, {"closed_from": "2026-03-01", "closed_to": "2026-03-01"})) == {
        deals["rep"].external_id
    }
    assert api.get(URL, {"stage": "maybe"}).status_code == 400


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "account": "",
        "name": "API deal",
        "channel": "partner",
        "partner": "P-ALPHA",
        "amount": "900.00",
        "currency": "EUR",
        "opened_on": "2026-04-01",
        **overrides,
    }


def test_a_manager_opens_a_deal_once_per_key(
    cast: Cast, market: Market, api_as: Callable[[Any], APIClient]
) -> None:
    CurrencyRateFactory(currency="EUR", valid_from=date(2026, 1, 1))
    api = api_as(cast.manager)
    body = _body(account=market.account_a.external_id, sub_stage="propose")

    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="opp-1")
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="opp-1")

    assert first.status_code == 201, first.content
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    deal = Opportunity.objects.get()
    assert (deal.partner, deal.sub_stage.code, deal.currency) == (cast.partner_a, "propose", "EUR")
    assert deal.events.get().kind == "created"


def test_bad_input_is_a_400_by_field_and_nothing_is_saved(
    cast: Cast, market: Market, api_as: Callable[[Any], APIClient]
) -> None:
    api = api_as(cast.manager)
    account = market.account_a.external_id

    fields = api.post(
        URL, _body(account="NOPE", amount="-1", channel="fax", opened_on="x"), format="json"
    )
    assert fields.status_code == 400
    assert set(fields.json()) >= {"account", "amount", "channel", "opened_on"}

    no_rate = api.post(URL, _body(account=account, currency="GBP"), format="json")
    assert no_rate.status_code == 400
    assert "no GBP rate valid on 2026-04-01" in no_rate.json()["currency"][0]

    wrong_owner = api.post(URL, _body(account=account, channel="direct"), format="json")
    assert wrong_owner.status_code == 400 and "rep" in wrong_owner.json()
    # A key no database text can hold names its field too (it was a server error).
    nul = api.post(
        URL, _body(account="C\u0000", channel="partner", partner="P\u0000"), format="json"
    )
    assert nul.status_code == 400 and set(nul.json()) >= {"account", "partner"}
    assert not Opportunity.objects.exists()


def test_only_managers_open_deals(
    cast: Cast, market: Market, api_as: Callable[[Any], APIClient]
) -> None:
    body = _body(account=market.account_a.external_id, currency="USD")
    for user in (cast.partner_a_user, cast.rep_user, cast.executive):
        assert api_as(user).post(URL, body, format="json").status_code == 403
    assert not Opportunity.objects.exists()
