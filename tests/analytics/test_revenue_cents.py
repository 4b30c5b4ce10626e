"""Each opportunity's amount in whole cents (`Opportunity.cents`, which the revenue figures
read, docs/metrics.md rule 10) is the database's to keep: right after every write path
(the services, a queryset update, the market import) for amounts a float cannot hold."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from channels.models import Opportunity
from crm.models import ChannelKind
from partners.opportunity_services import OpportunityOwner, opportunity_change, opportunity_create
from tests.cast import Cast
from tests.factories import AccountFactory, CurrencyRateFactory, SalesRepFactory

pytestmark = pytest.mark.django_db

GOOD = Path(__file__).parents[1] / "partners" / "csv" / "good"
# Amounts whose cents a binary float misses (0.29 x 100 = 28.999...), and the largest.
OPENED = date(2026, 3, 2)
AMOUNTS = ["0.29", "1.15", "0.01", "0.00", "4.35", "123456.78", "999999999999.99"]


def _cents_astray() -> list[tuple[Decimal, int]]:
    """The (amount, cents) pairs whose cents are not the amount's."""
    return [
        (amount, cents)
        for amount, cents in Opportunity.objects.values_list("amount", "cents")
        if cents != int(amount.scaleb(2))
    ]


def test_the_services_and_an_update_keep_the_cents(cast: Cast) -> None:
    CurrencyRateFactory(currency="USD")
    owner = OpportunityOwner(channel=ChannelKind.DIRECT, rep=SalesRepFactory())
    created: list[Opportunity] = []
    for amount in AMOUNTS:
        arguments: dict[str, Any] = {"account": AccountFactory(), "owner": owner}
        created.append(
            opportunity_create(
                **arguments,
                amount=Decimal(amount),
                currency="USD",
                opened_on=OPENED,
                by=cast.manager,
            )
        )
    assert Opportunity.objects.count() == len(AMOUNTS)
    assert _cents_astray() == []
    changed = opportunity_change(opportunity=created[0], by=cast.manager, amount=Decimal("2.55"))
    assert Opportunity.objects.get(pk=changed.pk).cents == 255
    Opportunity.objects.filter(pk=created[1].pk).update(amount=Decimal("7.07"))
    assert Opportunity.objects.get(pk=created[1].pk).cents == 707
    assert _cents_astray() == []


def test_the_market_import_keeps_the_cents(tmp_path: Path) -> None:
    market = tmp_path / "market"
    shutil.copytree(GOOD, market)
    call_command("import_csv", str(market), stdout=StringIO(), stderr=StringIO())
    assert Opportunity.objects.count() > 0
    assert _cents_astray() == []
    # An update of the amounts through the import.
    path = market / "opportunities.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    column = header.index("amount")
    rewritten = [lines[0]]
    for number, line in enumerate(lines[1:]):
        values = line.split(",")
        values[column] = AMOUNTS[number % len(AMOUNTS)]
        rewritten.append(",".join(values))
    path.write_text("\n".join(rewritten) + "\n", encoding="utf-8")
    call_command("import_csv", str(market), stdout=StringIO(), stderr=StringIO())
    assert {str(amount) for amount in Opportunity.objects.values_list("amount", flat=True)} <= set(
        AMOUNTS
    )
    assert _cents_astray() == []
