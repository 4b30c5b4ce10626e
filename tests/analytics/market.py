"""A random market for comparing the metric implementations: small, seeded, full of edges."""

from __future__ import annotations

import random
from datetime import date, timedelta

import psycopg
from django.db import connection
from django.db.models import Q

from channels.models import CoverageAssignment, SalesRep
from crm.models import Account, ChannelKind, Region, SizeBand, Vertical
from partners.models import Agreement, AgreementStatus, AgreementType, Partner, PartnerKind

BASE = date(2026, 1, 5)


def _day(rng: random.Random, span: int = 120) -> date:
    return BASE + timedelta(days=rng.randrange(span))


def random_market(seed: int, *, accounts: int = 80) -> list[date]:
    """Create a random market and return as-of dates worth checking (including the dates where
    something starts or ends)."""
    rng = random.Random(seed)
    regions = [Region.objects.create(code=f"R{seed}-{i}", name=f"R{i}") for i in range(3)]
    verticals = [Vertical.objects.create(code=f"V{seed}-{i}", name=f"V{i}") for i in range(3)]
    reps = [
        SalesRep.objects.create(external_id=f"REP{seed}-{i}", name=f"Rep {i}", email="r@x.example")
        for i in range(2)
    ]
    partners = [
        Partner.objects.create(
            external_id=f"P{seed}-{i}",
            name=f"Partner {i}",
            channel_kind=rng.choice(PartnerKind.values),
            partner_type="reseller",
        )
        for i in range(4)
    ]
    interesting: set[date] = set()
    for index, partner in enumerate(partners):
        for number in range(rng.randrange(0, 4)):
            start = _day(rng)
            end = start + timedelta(days=rng.randrange(0, 90))
            status = rng.choice(AgreementStatus.values)
            signed: date | None = start + timedelta(rng.randrange(-3, 10))
            if status == AgreementStatus.DRAFT and rng.random() < 0.5:
                signed = None  # a draft is never in force, signed date or not
            terminated = (
                start + timedelta(days=rng.randrange(0, (end - start).days + 1))
                if status == AgreementStatus.TERMINATED
                else None
            )
            agreement = Agreement.objects.create(
                external_id=f"AG{seed}-{index}-{number}",
                partner=partner,
                agreement_type=AgreementType.RESELLER,
                status=status,
                start_date=start,
                end_date=end,
                signed_on=signed,
                terminated_on=terminated,
            )
            agreement.regions.set(rng.sample(regions, rng.choice([0, 0, 1, 2])))
            agreement.verticals.set(rng.sample(verticals, rng.choice([0, 0, 1, 2])))
            interesting.update(x for x in (start, end, signed, terminated) if x)
    for number in range(accounts):
        entered = _day(rng)
        archived = entered + timedelta(days=rng.randrange(0, 100)) if rng.random() < 0.3 else None
        converted = _day(rng) if rng.random() < 0.4 else None
        account = Account.objects.create(
            external_id=f"A{seed}-{number}",
            name=f"Account {number}",
            region=rng.choice(regions),
            vertical=rng.choice(verticals),
            size_band=rng.choice(SizeBand.values),
            entered_on=entered,
            archived_on=archived,
            converted_on=converted,
            converted_via=rng.choice(ChannelKind.values) if converted else "",
        )
        interesting.update(x for x in (entered, archived, converted) if x)
        for _ in range(rng.choice([0, 1, 2, 2, 3, 4])):
            kind = rng.choice(ChannelKind.values)
            start = _day(rng)
            end = start + timedelta(days=rng.randrange(0, 90)) if rng.random() < 0.5 else None
            owner: dict[str, object] = {}
            if kind == ChannelKind.DIRECT:
                owner["rep"] = rng.choice(reps)
            elif kind == ChannelKind.ONLINE:
                owner["online_source"] = rng.choice(["web", "marketplace"])
            else:
                owner["partner"] = rng.choice(partners)
            # One owner covers an account at most once on any day (a database rule).
            clash = CoverageAssignment.objects.filter(
                Q(end_date__isnull=True) | Q(end_date__gte=start),
                account=account,
                kind=kind,
                start_date__lte=end or date.max,
                **owner,
            )
            if not clash.exists():
                CoverageAssignment.objects.create(
                    account=account, kind=kind, start_date=start, end_date=end, **owner
                )
            interesting.update(x for x in (start, end) if x)
    picks = sorted(interesting)
    return [picks[0], *rng.sample(picks, min(6, len(picks))), picks[-1], BASE + timedelta(60)]


def random_revenue(seed: int, *, opportunities: int = 150) -> list[date]:
    """Add rates, sub-stages, agreement targets and opportunities of every kind to the market
    of `random_market(seed)` (call it first), and return as-of dates worth checking: around
    closes, ends, rate changes and the edges of the 52-week and 13-week windows."""
    from decimal import Decimal

    from channels.models import Opportunity, OpportunitySubStage
    from crm.models import CurrencyRate

    rng = random.Random(seed * 7919)
    interesting: set[date] = set()
    for currency in ("EUR", "CNY"):
        day = BASE - timedelta(days=400)
        for _ in range(rng.randrange(1, 5)):
            CurrencyRate.objects.create(
                currency=currency,
                valid_from=day,
                rate_to_reporting=Decimal(rng.randrange(1, 200_000)) / Decimal(100_000),
            )
            interesting.add(day)
            day += timedelta(days=rng.randrange(20, 200))
    sub_stages = list(OpportunitySubStage.objects.all())
    sub_stages.append(
        OpportunitySubStage.objects.create(
            code=f"odd{seed}", name="Odd", probability=Decimal("33.33"), position=99
        )
    )
    accounts = list(Account.objects.filter(external_id__startswith=f"A{seed}-"))
    reps = list(SalesRep.objects.filter(external_id__startswith=f"REP{seed}-"))
    partners = list(Partner.objects.filter(external_id__startswith=f"P{seed}-"))
    for agreement in Agreement.objects.filter(partner__in=partners):
        if rng.random() < 0.7:
            agreement.annual_target = Decimal(rng.randrange(0, 10**9)) / 100
            agreement.currency = rng.choice(["USD", "EUR", "CNY"])
            agreement.save(update_fields=["annual_target", "currency"])
    for number in range(opportunities):
        channel = rng.choice(ChannelKind.values)
        owner: dict[str, object] = {}
        if channel == ChannelKind.DIRECT:
            owner["rep"] = rng.choice(reps)
        elif channel == ChannelKind.ONLINE:
            owner["online_source"] = rng.choice(["web", "marketplace"])
        else:
            kinds = [p for p in partners if p.channel_kind == channel]
            if not kinds:
                continue
            owner["partner"] = rng.choice(kinds)
        opened = BASE - timedelta(days=rng.randrange(-60, 420))
        stage = rng.choice(["open", "open", "won", "won", "won", "lost"])
        closed = opened + timedelta(days=rng.randrange(0, 200)) if stage != "open" else None
        recurring = rng.random() < 0.4
        ends = None
        if stage == "won" and recurring and rng.random() < 0.4:
            assert closed is not None
            ends = closed + timedelta(days=rng.randrange(0, 300))
        expected = opened + timedelta(days=rng.randrange(0, 300)) if rng.random() < 0.8 else None
        Opportunity.objects.create(
            external_id=f"O{seed}-{number}",
            account=rng.choice(accounts),
            channel=channel,
            stage=stage,
            sub_stage=rng.choice(sub_stages),
            amount=Decimal(rng.randrange(0, 10**8)) / 100,
            currency=rng.choice(["USD", "USD", "EUR", "CNY"]),
            recurring=recurring,
            opened_on=opened,
            expected_close_on=expected,
            closed_on=closed,
            ends_on=ends,
            **owner,
        )
        for day in (opened, closed, ends, expected):
            if day is not None:
                interesting.update({day, day - timedelta(days=1)})
        if closed is not None:
            interesting.update(
                {closed + timedelta(days=363), closed + timedelta(days=364), closed + timedelta(91)}
            )
    # Rates must exist for every day that asks for one: from the earliest deal on.
    first = min(Opportunity.objects.values_list("opened_on", flat=True), default=BASE)
    for currency in ("EUR", "CNY"):
        CurrencyRate.objects.get_or_create(
            currency=currency,
            valid_from=min(first, BASE - timedelta(days=400)) - timedelta(days=1),
            defaults={"rate_to_reporting": Decimal("0.5")},
        )
    picks = sorted(interesting)
    return [picks[0], *rng.sample(picks, min(8, len(picks))), picks[-1], BASE]


def another_connection() -> psycopg.Connection:
    """A connection of its own to the test database, for a transaction beside the test's."""
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
