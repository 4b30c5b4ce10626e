"""The dashboard's revenue figures: hand-computed for a small market, the same to the cent as
`analytics.reports` gives them, sourced and influenced side by side, and the week's change."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from analytics import reports
from channels.models import OpportunityStage, OpportunitySubStage
from crm.models import ChannelKind
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    CoverageAssignmentFactory,
    CurrencyRateFactory,
    OpportunityFactory,
    PartnerFactory,
    RegionFactory,
    SalesRepFactory,
    VerticalFactory,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47
WEEK = "2026-W46"  # as of Sunday 2026-11-15

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(cast: Cast) -> None:
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        east, fin = RegionFactory(code="EAST"), VerticalFactory(code="FIN")
        rep = SalesRepFactory()
        reseller = PartnerFactory(external_id="P-RES", name="Reseller One")
        accounts = [AccountFactory(region=east, vertical=fin) for _ in range(4)]
        CurrencyRateFactory(currency="EUR", valid_from=date(2026, 1, 1), rate_to_reporting="1.5")
        # The reseller's deal was won on an account the rep covered: the direct channel
        # influenced it.
        CoverageAssignmentFactory(
            account=accounts[1], kind=ChannelKind.DIRECT, rep=rep, start_date=date(2026, 9, 1)
        )
        won = {"stage": OpportunityStage.WON, "opened_on": date(2026, 5, 1)}
        OpportunityFactory(
            account=accounts[0],
            rep=rep,
            amount=Decimal("1000.00"),
            closed_on=date(2026, 10, 1),
            **won,
        )
        OpportunityFactory(
            account=accounts[1],
            channel=ChannelKind.PARTNER,
            partner=reseller,
            amount=Decimal("200.00"),
            currency="EUR",
            closed_on=date(2026, 11, 1),
            **won,
        )
        OpportunityFactory(
            account=accounts[2],
            channel=ChannelKind.ONLINE,
            amount=Decimal("50.00"),
            recurring=True,
            closed_on=date(2026, 6, 1),
            **won,
        )
        # Open since October in the propose step: in the pipeline at 50 %.
        OpportunityFactory(
            account=accounts[3],
            rep=rep,
            amount=Decimal("400.00"),
            opened_on=date(2026, 10, 1),
            sub_stage=OpportunitySubStage.objects.get(code="propose"),
        )
        call_command("compute_metrics", "--last", "2", "--no-progress", stdout=io.StringIO())


def _revenue(client: Client) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/", {"week": WEEK})
    assert response.status_code == 200
    return response.context["revenue"]  # type: ignore[no-any-return]


def test_it_shows_the_hand_computed_figures_as_the_reports_give_them(
    market: None, cast: Cast
) -> None:
    client = Client()
    client.force_login(cast.executive)

    revenue = _revenue(client)

    shown = {h["key"]: h["value"] for h in revenue["headlines"]}
    # 1000 USD + 200 EUR at 1.5 + a subscription of 50 a month at 12 fees.
    assert shown["won_amount"] == Decimal("1900.00")
    assert (shown["mrr"], shown["subscribers"], shown["arpa"]) == (
        Decimal("50.00"),
        1,
        Decimal("50.00"),
    )
    # propose: 50 %.
    assert (shown["pipeline_amount"], shown["weighted_pipeline"]) == (
        Decimal("400.00"),
        Decimal("200.00"),
    )
    (total,) = reports.revenue_rollup([WEEK])
    assert shown["won_amount"] == total.won_amount and shown["mrr"] == total.mrr
    by_channel = {row["channel"]: row for row in revenue["channels"]}
    assert by_channel["direct"]["sourced"] == Decimal("1000.00")
    assert by_channel["partner"]["sourced"] == Decimal("300.00")
    assert by_channel["online"]["sourced"] == Decimal("600.00")
    assert by_channel["direct"]["influenced"] == Decimal("300.00")
    assert [row["external_id"] for row in revenue["partners"]] == ["P-RES"]
    html = client.get("/dashboard/", {"week": WEEK}).content.decode()
    assert 'data-testid="revenue-value-won_amount">1,900.00<' in html


def test_a_channel_filter_shows_that_channels_sourced_revenue(market: None, cast: Cast) -> None:
    client = Client()
    client.force_login(cast.manager)

    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/", {"week": WEEK, "channel": "partner"})

    shown = {h["key"]: h["value"] for h in response.context["revenue"]["headlines"]}
    assert shown["won_amount"] == Decimal("300.00") and shown["mrr"] == Decimal("0.00")


def _export(*args: str) -> str:
    out = io.StringIO()
    call_command("metrics_export", "--week", WEEK, "--report", "revenue", *args, stdout=out)
    return out.getvalue()


def test_the_export_gives_the_same_figures_to_the_cent(market: None, cast: Cast) -> None:
    import json

    total = _export("--by", "total").splitlines()
    assert total == [
        "pipeline_count,pipeline_amount,weighted_pipeline,won_count,won_amount,mrr,"
        "subscribers,arpa,influenced_amount",
        "1,400.00,200.00,3,1900.00,50.00,1,50.00,300.00",
    ]
    by_channel = {
        row["channel"]: row
        for row in json.loads(_export("--by", "channel", "--format", "json"))["rows"]
    }
    assert {c: r["won_amount"] for c, r in by_channel.items()} == {
        "direct": "1000.00",
        "partner": "300.00",
        "online": "600.00",
    }
    assert by_channel["direct"]["influenced_amount"] == "300.00"
    assert by_channel["online"]["arpa"] == "50.00" and by_channel["direct"]["arpa"] is None
    region = _export("--by", "region").splitlines()
    assert region[0].startswith("region,channel,pipeline_count,")
    assert "EAST,partner,0,0.00,0.00,1,300.00,0.00,0,,0.00" in region
    partner = _export("--by", "partner").splitlines()
    assert partner[1] == "P-RES,partner,0,0.00,0.00,1,300.00,0.00,0,,0.00"


def test_the_api_gives_the_same_figures_to_the_cent(market: None, cast: Cast) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(cast.executive)

    rows = api.get("/api/v1/metrics/revenue/", {"week": WEEK, "by": "channel"}).json()["results"]

    by_channel = {row["channel"]: row for row in rows}
    assert {c: r["won_amount"] for c, r in by_channel.items()} == {
        "direct": "1000.00",
        "partner": "300.00",
        "online": "600.00",
    }
    (total,) = api.get("/api/v1/metrics/revenue/", {"week": WEEK}).json()["results"]
    assert (total["won_amount"], total["mrr"], total["arpa"], total["subscribers"]) == (
        "1900.00",
        "50.00",
        "50.00",
        1,
    )
    assert api.get("/api/v1/metrics/revenue/", {"by": "nonsense"}).status_code == 400


def test_the_digest_names_the_regions_whose_won_revenue_moved(market: None, cast: Cast) -> None:
    from analytics.digest import digest_content

    with time_machine.travel(NOW, tick=False):
        OpportunityFactory(
            account=AccountFactory(region=RegionFactory(code="WEST")),
            amount=Decimal("250.00"),
            stage=OpportunityStage.WON,
            opened_on=date(2026, 11, 2),
            closed_on=date(2026, 11, 10),
        )
        assert digest_content(week=WEEK)["revenue_movers"] == [], "no W45 to compare with"
        for week in ("2026-W45", WEEK):
            call_command("compute_metrics", "--week", week, "--no-progress", stdout=io.StringIO())
        content = digest_content(week=WEEK)

    assert [(m["code"], m["won_shown"], m["change_shown"]) for m in content["revenue_movers"]] == [
        ("WEST", "250.00", "+250.00")
    ]
    won = next(h for h in content["revenue_headlines"] if h["label"] == "Won revenue (52 weeks)")
    assert (won["shown"], won["change_shown"]) == ("2,150.00", "+250.00")


def test_a_half_cent_is_rounded_up_on_the_page_as_in_the_api(cast: Cast) -> None:
    from rest_framework.test import APIClient

    cache.clear()
    with time_machine.travel(NOW, tick=False):
        east = RegionFactory(code="EAST")
        won = {"stage": OpportunityStage.WON, "opened_on": date(2026, 5, 1), "recurring": True}
        # MRR 200.01 over two subscribers: ARPA 100.005, to the cent half up 100.01.
        for fee in ("100.00", "100.01"):
            OpportunityFactory(
                account=AccountFactory(region=east),
                channel=ChannelKind.ONLINE,
                amount=Decimal(fee),
                closed_on=date(2026, 10, 1),
                **won,
            )
        call_command("compute_metrics", "--week", WEEK, "--no-progress", stdout=io.StringIO())
    client = Client()
    client.force_login(cast.executive)
    api = APIClient()
    api.force_authenticate(cast.executive)

    shown = {h["key"]: h["shown"] for h in _revenue(client)["headlines"]}
    (total,) = api.get("/api/v1/metrics/revenue/", {"week": WEEK}).json()["results"]

    assert total["arpa"] == "100.01"
    assert shown["arpa"] == "100.01"
