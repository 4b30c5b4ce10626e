"""The opportunity pages: the pipeline list and its filters, the board by step, a deal with
its history and the managers' changes, the new-deal form, and the portal's own deals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from channels.models import Opportunity, OpportunityStage, OpportunitySubStage
from crm.models import ChannelKind
from tests.cast import Cast
from tests.factories import AccountFactory, CurrencyRateFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


@pytest.fixture
def deals(cast: Cast) -> dict[str, Opportunity]:
    CurrencyRateFactory(currency="EUR", valid_from=date(2020, 1, 1), rate_to_reporting="1.25")
    propose = OpportunitySubStage.objects.get(code="propose")
    return {
        "direct": OpportunityFactory(name="Direct seats", rep=cast.rep, amount=Decimal("100.00")),
        "alpha": OpportunityFactory(
            name="Alpha platform",
            channel=ChannelKind.PARTNER,
            partner=cast.partner_a,
            sub_stage=propose,
            amount=Decimal("2000.00"),
            currency="EUR",
        ),
        "beta": OpportunityFactory(
            name="Beta renewal",
            channel=ChannelKind.PARTNER,
            partner=cast.partner_b,
            sub_stage=propose,
            amount=Decimal("50.00"),
            recurring=True,
        ),
        "won": OpportunityFactory(
            name="Won deal",
            stage=OpportunityStage.WON,
            closed_on=date(2026, 2, 1),
            rep=cast.rep,
        ),
    }


def test_it_lists_the_open_pipeline_and_filters_it(
    cast: Cast, deals: dict[str, Opportunity]
) -> None:
    client = _client(cast.manager)

    page = client.get("/workspace/opportunities/").content.decode()
    assert "Direct seats" in page and "Alpha platform" in page and "Won deal" not in page

    page = client.get(
        "/workspace/opportunities/", {"channel": "partner", "partner": cast.partner_b.pk}
    ).content.decode()
    assert "Beta renewal" in page and "Alpha platform" not in page and "Direct seats" not in page

    page = client.get("/workspace/opportunities/", {"stage": "won"}).content.decode()
    assert "Won deal" in page and "Direct seats" not in page

    page = client.get("/workspace/opportunities/", {"stage": "", "q": "platform"}).content.decode()
    assert "Alpha platform" in page and "Beta renewal" not in page


def test_it_exports_the_filtered_list(cast: Cast, deals: dict[str, Opportunity]) -> None:
    response = _client(cast.manager).get(
        "/workspace/opportunities/", {"channel": "partner", "format": "csv"}
    )

    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    lines = text.strip().splitlines()
    assert len(lines) == 3 and "Alpha platform" in text and "Direct seats" not in text


def test_a_rep_sees_only_their_deals(cast: Cast, deals: dict[str, Opportunity]) -> None:
    page = _client(cast.rep_user).get("/workspace/opportunities/", {"stage": ""}).content.decode()

    assert "Direct seats" in page and "Won deal" in page
    assert "Alpha platform" not in page
    assert (
        _client(cast.rep_user).get(f"/workspace/opportunities/{deals['alpha'].pk}/").status_code
        == 404
    )


def test_the_board_sums_each_step_in_the_reporting_currency(
    cast: Cast, deals: dict[str, Opportunity]
) -> None:
    response = _client(cast.manager).get("/workspace/opportunities/board/")

    columns = {c["sub_stage"].code: c for c in response.context["columns"]}
    # 2000 EUR at 1.25, and a subscription of 50 a month at 12 fees.
    assert columns["propose"]["count"] == 2
    assert columns["propose"]["total"] == Decimal("3100.00")
    assert columns["propose"]["weighted"] == Decimal("1550.00")
    assert columns["qualify"]["count"] == 1 and columns["qualify"]["total"] == Decimal("100.00")


def test_the_board_names_a_currency_without_a_rate(cast: Cast) -> None:
    deal = OpportunityFactory(name="Yen deal", rep=cast.rep)
    Opportunity.objects.filter(pk=deal.pk).update(currency="JPY")

    response = _client(cast.manager).get("/workspace/opportunities/board/")

    assert response.context["missing_rates"] == ["JPY"]
    assert "No rate valid today for JPY" in response.content.decode()


def test_a_manager_moves_wins_and_reopens_a_deal_with_history(
    cast: Cast, deals: dict[str, Opportunity]
) -> None:
    client = _client(cast.manager)
    deal = deals["direct"]
    commit = OpportunitySubStage.objects.get(code="commit")
    today = timezone.localdate()

    client.post(f"/workspace/opportunities/{deal.pk}/move/", {"move-sub_stage": commit.pk})
    client.post(
        f"/workspace/opportunities/{deal.pk}/win/",
        {"win-closed_on": today.isoformat(), "win-amount": "120.00"},
    )
    deal.refresh_from_db()
    assert (deal.stage, deal.closed_on, deal.amount) == ("won", today, Decimal("120.00"))

    page = client.get(f"/workspace/opportunities/{deal.pk}/").content.decode()
    assert "Moved to another step" in page and "120.00" in page
    kinds = list(deal.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["moved", "won"]

    client.post(f"/workspace/opportunities/{deal.pk}/reopen/", {"reopen-note": "Typo"})
    deal.refresh_from_db()
    assert deal.stage == "open" and deal.closed_on is None


def test_a_bad_close_is_refused_next_to_the_field(
    cast: Cast, deals: dict[str, Opportunity]
) -> None:
    deal = deals["direct"]
    tomorrow = timezone.localdate() + timedelta(days=1)

    response = _client(cast.manager).post(
        f"/workspace/opportunities/{deal.pk}/lose/", {"lose-closed_on": tomorrow.isoformat()}
    )

    assert response.status_code == 400
    assert 'data-field-error="closed_on"' in response.content.decode()
    deal.refresh_from_db()
    assert deal.stage == "open"


def test_a_manager_opens_a_deal_and_a_missing_rate_is_named(cast: Cast) -> None:
    account = AccountFactory(external_id="ACC-NEW")
    client = _client(cast.manager)
    form = {
        "account": "ACC-NEW",
        "name": "New logo",
        "channel": "partner",
        "partner": cast.partner_a.pk,
        "sub_stage": OpportunitySubStage.objects.get(code="qualify").pk,
        "amount": "500.00",
        "currency": "GBP",
        "opened_on": "2026-03-02",
    }

    refused = client.post("/workspace/opportunities/new/", form)
    assert refused.status_code == 400
    assert "no GBP rate valid on 2026-03-02" in refused.content.decode()
    assert not Opportunity.objects.exists()

    created = client.post("/workspace/opportunities/new/", {**form, "currency": "usd"})
    deal = Opportunity.objects.get()
    assert created.status_code == 302 and created["Location"].endswith(f"/{deal.pk}/")
    assert (deal.account, deal.partner, deal.currency) == (account, cast.partner_a, "USD")


def test_a_partner_sees_its_own_deals_only(cast: Cast, deals: dict[str, Opportunity]) -> None:
    client = _client(cast.partner_a_user)

    page = client.get("/portal/opportunities/").content.decode()
    assert "Alpha platform" in page
    assert "Beta renewal" not in page and "Direct seats" not in page

    assert client.get(f"/portal/opportunities/{deals['alpha'].pk}/").status_code == 200
    for other in ("beta", "direct"):
        assert client.get(f"/portal/opportunities/{deals[other].pk}/").status_code == 404
    assert client.get("/workspace/opportunities/").status_code == 404
