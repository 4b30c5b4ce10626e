"""Demo revenue: rates for two foreign currencies that move over the year, and opportunities
of every channel (one-off deals and subscriptions, open, won and lost, some subscriptions
ended), so every revenue chart of the dashboard has a story.

Deterministic for a seed and a day; drawn from a random generator of its own, so the demo
market stays what `partners.demo` makes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from channels.models import (
    PARTNER_KINDS,
    CoverageAssignment,
    Opportunity,
    OpportunityEvent,
    OpportunityEventKind,
    OpportunityStage,
    OpportunitySubStage,
)
from crm.models import ChannelKind, CurrencyRate

# Rates into the reporting currency (USD in the demo), one a quarter over two years: the euro
# strengthens, the yuan weakens a little, so won revenue in USD moves with them.
DEMO_RATES: dict[str, tuple[str, ...]] = {
    "EUR": ("1.0500", "1.0620", "1.0710", "1.0850", "1.0930", "1.1040", "1.1120", "1.0980"),
    "CNY": ("0.1410", "0.1398", "0.1385", "0.1392", "0.1379", "0.1371", "0.1366", "0.1374"),
}


def demo_rates(*, today: date, say: Callable[[str], None] | None = None) -> int:
    """Quarterly rates for EUR and CNY over the two years before `today` (nothing for the
    reporting currency, whose rate is always 1), unless rates exist. Returns how many."""
    if CurrencyRate.objects.exists():
        return 0
    first = date(today.year - 2, 1, 1)
    rows = []
    for currency, rates in DEMO_RATES.items():
        if currency == settings.REPORTING_CURRENCY:
            continue
        for quarter, rate in enumerate(rates):
            year, month = first.year + quarter // 4, 1 + 3 * (quarter % 4)
            rows.append(
                CurrencyRate(
                    currency=currency,
                    valid_from=date(year, month, 1) if quarter else first - timedelta(days=365),
                    rate_to_reporting=Decimal(rate),
                )
            )
    with transaction.atomic():
        CurrencyRate.objects.bulk_create(rows)
    if say:
        say(f"{len(rows)} currency rates")
    return len(rows)


DEMO_PREFIX = "DEMO-OPP-"
DEMO_OPPORTUNITIES = 600
CURRENCY_WEIGHTS = (("USD", 6), ("EUR", 3), ("CNY", 2))


def demo_opportunities(*, today: date, seed: int, say: Callable[[str], None] | None = None) -> int:
    """Deals of every channel over the last two years, unless the demo's exist: each on an
    account its owner covered (so other channels' coverage influences some wins), one-off
    deals and subscriptions in USD, EUR and CNY, open in every step, won and lost, some
    subscriptions ended. Each has its history. Returns how many were made."""
    if Opportunity.objects.filter(external_id__startswith=DEMO_PREFIX).exists():
        return 0
    rng = random.Random(seed + 18)
    steps = list(OpportunitySubStage.objects.order_by("position", "code"))
    coverage = list(
        CoverageAssignment.objects.order_by("id").values_list(
            "account_id", "kind", "rep_id", "partner_id", "online_source"
        )
    )
    if not steps or not coverage:
        return 0
    currencies = [code for code, weight in CURRENCY_WEIGHTS for _ in range(weight)]
    deals = []
    for number in range(DEMO_OPPORTUNITIES):
        account_id, kind, rep_id, partner_id, source = rng.choice(coverage)
        opened = today - timedelta(days=rng.randrange(5, 720))
        recurring = rng.random() < 0.35
        amount = (
            Decimal(rng.randrange(200, 5000))
            if recurring
            else Decimal(rng.randrange(5_000, 250_000))
        )
        stage, closed, ends = OpportunityStage.OPEN, None, None
        close_after = rng.randrange(20, 150)
        if opened + timedelta(days=close_after) < today and rng.random() < 0.8:
            closed = opened + timedelta(days=close_after)
            stage = OpportunityStage.WON if rng.random() < 0.6 else OpportunityStage.LOST
            if stage == OpportunityStage.WON and recurring and rng.random() < 0.2:
                ends = min(today, closed + timedelta(days=rng.randrange(60, 400)))
        deals.append(
            Opportunity(
                external_id=f"{DEMO_PREFIX}{number + 1:04d}",
                name=f"{rng.choice(DEAL_NAMES)} {number + 1}",
                account_id=account_id,
                channel=kind,
                rep_id=rep_id if kind == ChannelKind.DIRECT else None,
                partner_id=partner_id if kind in PARTNER_KINDS else None,
                online_source=(source or "web-signup") if kind == ChannelKind.ONLINE else "",
                stage=stage,
                sub_stage=rng.choice(steps),
                amount=amount,
                currency=rng.choice(currencies),
                recurring=recurring,
                opened_on=opened,
                expected_close_on=opened + timedelta(days=close_after),
                closed_on=closed,
                ends_on=ends,
                lost_reason=rng.choice(LOST_REASONS) if stage == OpportunityStage.LOST else "",
            )
        )
    with transaction.atomic():
        Opportunity.objects.bulk_create(deals, batch_size=500)
        made = Opportunity.objects.filter(external_id__startswith=DEMO_PREFIX)
        events = [
            OpportunityEvent(opportunity=deal, kind=OpportunityEventKind.CREATED)
            for deal in made.only("id")
        ]
        events += [
            OpportunityEvent(
                opportunity=deal,
                kind=deal.stage,
                changes={"stage": ["open", deal.stage], "closed_on": ["", str(deal.closed_on)]},
            )
            for deal in made.exclude(stage=OpportunityStage.OPEN).only("id", "stage", "closed_on")
        ]
        OpportunityEvent.objects.bulk_create(events, batch_size=1000)
    if say:
        say(f"{len(deals)} opportunities")
    return len(deals)


DEAL_NAMES = (
    "Model API",
    "Enterprise seats",
    "Data platform",
    "Support plan",
    "Analytics add-on",
    "Pilot",
)
LOST_REASONS = (
    "Chose a competitor",
    "Budget moved to next year",
    "No decision",
    "Price",
)
