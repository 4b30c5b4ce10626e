"""A random market for comparing the metric implementations: small, seeded, full of edges."""

from __future__ import annotations

import random
from datetime import date, timedelta

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
