"""Realistic, deterministic demo data for the embedded default and for load tests.

Everything is drawn from one seeded random generator, with dates relative to `today`, so
the same seed and day give the same market. Accounts and coverage are written in batches,
which keeps a million-account market within a few minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from channels.models import CoverageAssignment, Opportunity, SalesRep
from crm.models import Account, ChannelKind, CurrencyRate, Region, SizeBand, Vertical
from crm.names import company_name_key
from crm.roles import Role, ensure_role_groups
from partners.coverage_kinds import coverage_kinds_refresh_stale
from partners.models import (
    Agreement,
    AgreementStatus,
    AgreementType,
    Feedback,
    FeedbackCategory,
    FeedbackNote,
    FeedbackReply,
    FeedbackStatus,
    Partner,
    PartnerContact,
    PartnerKind,
    PartnerTier,
    PartnerType,
    PartnerUser,
)
from partners.programme_demo import demo_programme
from partners.programme_models import Survey
from partners.registration_demo import demo_registrations
from partners.registration_models import DealRegistration
from partners.revenue_demo import demo_opportunities, demo_rates

_T = TypeVar("_T")

REGIONS = [
    ("cn-east", "East China", "华东"),
    ("cn-north", "North China", "华北"),
    ("cn-south", "South China", "华南"),
    ("jp", "Japan", "日本"),
    ("kr", "Korea", "韩国"),
    ("sea", "Southeast Asia", "东南亚"),
    ("in", "India", "印度"),
    ("dach", "DACH", "德奥瑞"),
    ("ukie", "UK & Ireland", "英国和爱尔兰"),
    ("fr-benelux", "France & Benelux", "法国和比荷卢"),
    ("na-east", "North America East", "北美东部"),
    ("na-west", "North America West", "北美西部"),
]
VERTICALS = [
    ("customer_service", "Customer service", "客户服务"),
    ("finance", "Finance", "金融"),
    ("healthcare", "Healthcare", "医疗"),
    ("education", "Education", "教育"),
    ("manufacturing", "Manufacturing", "制造"),
    ("retail", "Retail", "零售"),
    ("logistics", "Logistics", "物流"),
    ("automotive", "Automotive", "汽车"),
    ("public_sector", "Public sector", "公共部门"),
    ("media", "Media & entertainment", "媒体与娱乐"),
]
SIZE_BAND_WEIGHTS = [
    (SizeBand.SMB, 55),
    (SizeBand.MID_MARKET, 28),
    (SizeBand.ENTERPRISE, 13),
    (SizeBand.STRATEGIC, 4),
]
# Share of accounts per size band worked by each channel kind.
COVERAGE_SHARE = {
    SizeBand.SMB: {"direct": 0.04, "distribution": 0.22, "partner": 0.25, "online": 0.35},
    SizeBand.MID_MARKET: {"direct": 0.30, "distribution": 0.20, "partner": 0.35, "online": 0.15},
    SizeBand.ENTERPRISE: {"direct": 0.75, "distribution": 0.05, "partner": 0.35, "online": 0.03},
    SizeBand.STRATEGIC: {"direct": 0.92, "distribution": 0.0, "partner": 0.30, "online": 0.0},
}
ONLINE_SOURCES = ["web-signup", "cloud-marketplace", "self-serve-trial"]

PARTNER_NAMES = [
    ("Alpha Systems Integration", PartnerType.SYSTEM_INTEGRATOR),
    ("Beta Cloud Partners", PartnerType.CLOUD),
    ("Lumen Consulting", PartnerType.CONSULTING),
    ("Harbor Digital", PartnerType.RESELLER),
    ("Qingyun Intelligence", PartnerType.SYSTEM_INTEGRATOR),
    ("Nordlicht IT", PartnerType.RESELLER),
    ("Sakura Solutions", PartnerType.SYSTEM_INTEGRATOR),
    ("Maple Analytics", PartnerType.TECHNOLOGY),
    ("Ganges Tech Services", PartnerType.SYSTEM_INTEGRATOR),
    ("Thames Data Works", PartnerType.CONSULTING),
    ("Rhine AI Labs", PartnerType.TECHNOLOGY),
    ("Pacific Rim Resellers", PartnerType.RESELLER),
    ("Hangang Networks", PartnerType.RESELLER),
    ("Lion City Cloud", PartnerType.CLOUD),
    ("Atlas Referral Group", PartnerType.REFERRAL),
    ("Cedar University Lab", PartnerType.ACADEMIC),
    ("Pearl River Software", PartnerType.TECHNOLOGY),
    ("Alpine Integrators", PartnerType.SYSTEM_INTEGRATOR),
    ("Seine Conseil", PartnerType.CONSULTING),
    ("Great Lakes Solutions", PartnerType.RESELLER),
    ("Sierra Cloud Services", PartnerType.CLOUD),
    ("Yangtze Automation", PartnerType.SYSTEM_INTEGRATOR),
    ("Fuji Business Systems", PartnerType.RESELLER),
    ("Bengal Bay Analytics", PartnerType.TECHNOLOGY),
    ("Kiwi Referral Partners", PartnerType.REFERRAL),
    ("Danube Digital", PartnerType.RESELLER),
    ("Tokyo Institute AI Centre", PartnerType.ACADEMIC),
    ("Evergreen Consulting", PartnerType.CONSULTING),
    ("Northwind Integrations", PartnerType.SYSTEM_INTEGRATOR),
    ("Coral Sea Technologies", PartnerType.TECHNOLOGY),
]
DISTRIBUTOR_NAMES = [
    "Orient Distribution Group",
    "EuroTech Distribution",
    "Americas IT Supply",
    "Asia Pacific Channel Hub",
    "Silk Road Distributors",
    "Continental Value Distribution",
    "Indus Distribution Services",
    "Nippon Channel Partners",
]
REP_NAMES = [
    "Rita Chen",
    "Marco Weber",
    "Aiko Tanaka",
    "Priya Nair",
    "James Walker",
    "Li Wei",
    "Sofia Martin",
    "Daniel Kim",
    "Hannah Schmidt",
    "Arjun Mehta",
    "Emily Brown",
    "Zhang Min",
    "Lucas Dubois",
    "Mei Lin",
    "Oliver Smith",
]
FEEDBACK_SUBJECTS = {
    FeedbackCategory.PRODUCT: [
        "Model latency in peak hours",
        "Request: Chinese fine-tuning examples",
    ],
    FeedbackCategory.PRICING: ["Volume discount tiers unclear", "Revenue share paid late"],
    FeedbackCategory.SUPPORT: ["Escalation took three days", "Great help on the rollout"],
    FeedbackCategory.ENABLEMENT: ["More hands-on workshops, please", "Certification exam feedback"],
    FeedbackCategory.SALES_PROCESS: [
        "Deal registration conflicts with direct team",
        "Quote approval is slow",
    ],
    FeedbackCategory.TECHNICAL: ["SDK breaks on older Python", "Rate limits during pilots"],
    FeedbackCategory.MARKETING: ["Co-marketing funds process", "Need case studies for retail"],
    FeedbackCategory.OTHER: ["Portal suggestion", "Invoice format"],
}

BATCH_SIZE = 5000


@dataclass
class DemoResult:
    created: bool
    accounts: int
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, role, home path)


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _batched(items: Iterator[_T], size: int) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def demo_reset() -> None:
    """Delete every domain row (not users other than the demo cast), for a fresh demo."""
    with transaction.atomic():
        Opportunity.objects.all().delete()
        CurrencyRate.objects.all().delete()
        DealRegistration.objects.all().delete()
        Survey.objects.all().delete()
        FeedbackReply.objects.all().delete()
        FeedbackNote.objects.all().delete()
        Feedback.objects.all().delete()
        CoverageAssignment.objects.all().delete()
        Agreement.history.model.objects.all().delete()
        Agreement.regions.through.objects.all().delete()
        Agreement.verticals.through.objects.all().delete()
        Agreement.objects.update(renews=None)
        Agreement.objects.all().delete()
        PartnerUser.objects.all().delete()
        PartnerContact.objects.all().delete()
        Partner.objects.all().delete()
        SalesRep.objects.all().delete()
        Account.objects.all().delete()
        Region.objects.all().delete()
        Vertical.objects.all().delete()


# Markets up to this size get their coverage kinds stored while seeding (a few seconds).
DEMO_KINDS_NOW = 200_000


def demo_seed(
    *,
    accounts: int = 5000,
    password: str,
    today: date | None = None,
    seed: int = 20261122,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Create the demo market and the demo users.

    When accounts already exist the market is left as it is and only the demo users are
    (re)created with `password`, so `make demo` can run again on the same database.
    Returns the logins to print. Raises ValueError for a non-positive account count.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    today = today or timezone.localdate()
    say = progress or (lambda message: None)
    ensure_role_groups()
    created = not Account.objects.exists()
    if created:
        with transaction.atomic():
            _seed_market(rng=random.Random(seed), accounts=accounts, today=today, say=say)
    with transaction.atomic():
        # A market seeded before regions and verticals had Chinese names gets them now.
        for model, rows in ((Region, REGIONS), (Vertical, VERTICALS)):
            for code, _name, name_zh in rows:
                model.objects.filter(code=code, name_zh="").update(name_zh=name_zh)
        logins = _seed_users(password=password)
    demo_rates(today=today, say=say)
    demo_registrations(today=today, seed=seed, say=say)
    demo_programme(today=today, seed=seed, say=say)
    demo_opportunities(today=today, seed=seed, say=say)
    # The seed writes coverage and agreements in bulk: store the accounts' coverage kinds now
    # for a demo-sized market; a big one is left to the hourly job (lists are exact meanwhile,
    # testing the assignments of accounts not yet stored).
    if created and accounts <= DEMO_KINDS_NOW:
        coverage_kinds_refresh_stale()
    return DemoResult(created=created, accounts=Account.objects.count(), logins=logins)


def _seed_market(
    *, rng: random.Random, accounts: int, today: date, say: Callable[[str], None]
) -> None:
    regions = [
        Region.objects.create(code=code, name=name, name_zh=name_zh)
        for code, name, name_zh in REGIONS
    ]
    verticals = [
        Vertical.objects.create(code=code, name=name, name_zh=name_zh)
        for code, name, name_zh in VERTICALS
    ]
    say(f"{len(regions)} regions, {len(verticals)} verticals")

    reps = []
    for index, name in enumerate(REP_NAMES):
        rep = SalesRep.objects.create(
            external_id=f"REP-{index + 1:03d}",
            name=name,
            email=f"{name.lower().replace(' ', '.')}@example.com",
        )
        rep.regions.set(rng.sample(regions, k=rng.choice([1, 1, 2])) if index else regions[:2])
        reps.append(rep)

    partners = _seed_partners(rng=rng, regions=regions, verticals=verticals, today=today)
    say(f"{len(reps)} reps, {len(partners)} partners and distributors with agreements")

    reps_by_region: dict[int, list[SalesRep]] = {r.pk: [] for r in regions}
    for rep in reps:
        for region in rep.regions.all():
            reps_by_region[region.pk].append(rep)
    scope = _agreement_scope(partners)

    written = 0
    for batch in _batched(
        _account_rows(rng=rng, count=accounts, regions=regions, verticals=verticals, today=today),
        BATCH_SIZE,
    ):
        coverage: list[CoverageAssignment] = []
        for account, region, vertical in batch:
            coverage.extend(
                _coverage_for(
                    rng=rng,
                    account=account,
                    region=region,
                    vertical=vertical,
                    today=today,
                    reps=reps_by_region[region.pk] or reps,
                    partners=partners,
                    scope=scope,
                )
            )
        Account.objects.bulk_create([a for a, _, _ in batch], batch_size=BATCH_SIZE)
        for assignment in coverage:
            assignment.account_id = assignment.account.pk
        CoverageAssignment.objects.bulk_create(coverage, batch_size=BATCH_SIZE)
        written += len(batch)
        if written % 100_000 < BATCH_SIZE or written == accounts:
            say(f"{written} accounts")

    _seed_feedback(rng=rng, partners=partners, today=today)
    say("feedback with replies and internal notes")


def _account_rows(
    *, rng: random.Random, count: int, regions: list[Region], verticals: list[Vertical], today: date
) -> Iterator[tuple[Account, Region, Vertical]]:
    region_weights = [rng.randint(4, 12) for _ in regions]
    prefixes = [
        "Global",
        "United",
        "Pacific",
        "Northern",
        "Golden",
        "Bright",
        "Summit",
        "Blue",
        "Prime",
        "Urban",
    ]
    suffixes = [
        "Logistics",
        "Health",
        "Finance",
        "Motors",
        "Retail",
        "Labs",
        "Media",
        "Foods",
        "Energy",
        "Systems",
    ]
    forms = ["Ltd", "GmbH", "Inc", "Co., Ltd.", "KK", "SA", "Pte Ltd", "LLC"]
    for index in range(count):
        region = rng.choices(regions, weights=region_weights)[0]
        vertical = rng.choice(verticals)
        size_band = _weighted(rng, SIZE_BAND_WEIGHTS)
        # Most of the market was listed before the demo year; a steady trickle joins each week.
        if rng.random() < 0.9:
            entered_on = today - timedelta(days=rng.randint(380, 1100))
        else:
            entered_on = today - timedelta(days=rng.randint(0, 379))
        archived_on = None
        if rng.random() < 0.03:
            archived_on = max(entered_on, today - timedelta(days=rng.randint(0, 300)))
        name = f"{rng.choice(prefixes)} {rng.choice(suffixes)} {index + 1} {rng.choice(forms)}"
        account = Account(
            external_id=f"ACC-{index + 1:07d}",
            name=name,
            name_key=company_name_key(name),
            region_id=region.pk,
            vertical_id=vertical.pk,
            size_band=size_band,
            entered_on=entered_on,
            archived_on=archived_on,
        )
        yield account, region, vertical


def _agreement_scope(partners: list[Partner]) -> dict[int, list[tuple[set[int], set[int]]]]:
    scope: dict[int, list[tuple[set[int], set[int]]]] = {}
    for partner in partners:
        for agreement in partner.agreements.exclude(status=AgreementStatus.DRAFT).prefetch_related(
            "regions", "verticals"
        ):
            scope.setdefault(partner.pk, []).append(
                ({r.pk for r in agreement.regions.all()}, {v.pk for v in agreement.verticals.all()})
            )
    return scope


def _coverage_for(
    *,
    rng: random.Random,
    account: Account,
    region: Region,
    vertical: Vertical,
    today: date,
    reps: list[SalesRep],
    partners: list[Partner],
    scope: dict[int, list[tuple[set[int], set[int]]]],
) -> list[CoverageAssignment]:
    shares = COVERAGE_SHARE[SizeBand(account.size_band)]
    rows: list[CoverageAssignment] = []

    def start() -> date:
        return max(account.entered_on, today - timedelta(days=rng.randint(0, 540)))

    def maybe_end(started: date) -> date | None:
        if rng.random() < 0.08:
            return min(today + timedelta(days=30), started + timedelta(days=rng.randint(30, 400)))
        return None

    if rng.random() < shares["direct"]:
        s = start()
        rows.append(
            CoverageAssignment(
                account=account,
                kind=ChannelKind.DIRECT,
                rep=rng.choice(reps),
                start_date=s,
                end_date=maybe_end(s),
            )
        )
    for kind in (PartnerKind.DISTRIBUTION, PartnerKind.PARTNER):
        if rng.random() < shares[kind]:
            candidates = [p for p in partners if p.channel_kind == kind]
            # Mostly partners whose agreements cover the segment; a few without, as in real life.
            fitting = [
                p
                for p in candidates
                if any(
                    (not rs or region.pk in rs) and (not vs or vertical.pk in vs)
                    for rs, vs in scope.get(p.pk, [])
                )
            ]
            pool = fitting if fitting and rng.random() < 0.9 else candidates
            s = start()
            rows.append(
                CoverageAssignment(
                    account=account,
                    kind=kind,
                    partner=rng.choice(pool),
                    start_date=s,
                    end_date=maybe_end(s),
                )
            )
    if rng.random() < shares["online"]:
        s = start()
        rows.append(
            CoverageAssignment(
                account=account,
                kind=ChannelKind.ONLINE,
                online_source=rng.choice(ONLINE_SOURCES),
                start_date=s,
                end_date=maybe_end(s),
            )
        )

    # Conversions spread over the last year, won mostly by a channel that works the account.
    win_rate = 0.30 if rows else 0.04
    if rng.random() < win_rate:
        earliest = max(account.entered_on, today - timedelta(days=365))
        account.converted_on = earliest + timedelta(
            days=rng.randint(0, max(0, (today - earliest).days))
        )
        account.converted_via = rng.choice(rows).kind if rows else ChannelKind.ONLINE
    return rows


def _seed_partners(
    *, rng: random.Random, regions: list[Region], verticals: list[Vertical], today: date
) -> list[Partner]:
    partners: list[Partner] = []
    tiers = [PartnerTier.REGISTERED, PartnerTier.SILVER, PartnerTier.GOLD, PartnerTier.PLATINUM]
    for index, (name, partner_type) in enumerate(PARTNER_NAMES):
        partners.append(
            Partner.objects.create(
                external_id=f"PTN-{index + 1:03d}",
                name=name,
                channel_kind=PartnerKind.PARTNER,
                partner_type=partner_type,
                tier=tiers[index % 4] if index > 1 else PartnerTier.GOLD,
                country=rng.choice(["CN", "JP", "DE", "GB", "US", "SG", "IN", "KR", "FR"]),
            )
        )
    for index, name in enumerate(DISTRIBUTOR_NAMES):
        partners.append(
            Partner.objects.create(
                external_id=f"DST-{index + 1:03d}",
                name=name,
                channel_kind=PartnerKind.DISTRIBUTION,
                partner_type=PartnerType.DISTRIBUTOR
                if index % 3
                else PartnerType.VALUE_ADDED_DISTRIBUTOR,
                tier=rng.choice(tiers),
            )
        )
    for partner in partners:
        for c in range(rng.randint(1, 3)):
            first = rng.choice(["Anna", "Wang", "Kenji", "Laura", "Raj", "Chloe", "Min-jun", "Tom"])
            PartnerContact.objects.create(
                partner=partner,
                name=f"{first} {partner.name.split()[0]}",
                title=rng.choice(
                    ["Alliance manager", "Sales director", "Technical lead", "Managing director"]
                ),
                email=f"{first.lower().replace('-', '')}.{c}@{partner.external_id.lower()}.example",
                is_primary=c == 0,
            )
        _seed_agreements(
            rng=rng, partner=partner, regions=regions, verticals=verticals, today=today
        )
    return partners


def _seed_agreements(
    *,
    rng: random.Random,
    partner: Partner,
    regions: list[Region],
    verticals: list[Vertical],
    today: date,
) -> None:
    kind_type = (
        AgreementType.DISTRIBUTION
        if partner.is_distributor
        else rng.choice(
            [
                AgreementType.RESELLER,
                AgreementType.SYSTEM_INTEGRATION,
                AgreementType.REFERRAL,
                AgreementType.TECHNOLOGY,
            ]
        )
    )
    number = partner.agreements.count()

    def make(status: str, start: date, end: date, **extra: object) -> Agreement:
        nonlocal number
        number += 1
        agreement = Agreement.objects.create(
            external_id=f"AGR-{partner.external_id}-{number}",
            partner=partner,
            agreement_type=kind_type,
            status=status,
            start_date=start,
            end_date=end,
            notice_days=rng.choice([30, 60, 90]),
            auto_renew=rng.random() < 0.3,
            currency=rng.choice(["USD", "EUR", "CNY"]),
            discount_percent=rng.choice([10, 15, 20, 25])
            if kind_type != AgreementType.REFERRAL
            else None,
            revenue_share_percent=rng.choice([5, 8, 10])
            if kind_type == AgreementType.REFERRAL
            else None,
            annual_target=rng.choice([250_000, 500_000, 1_000_000, 2_500_000]),
            responsibilities="Qualify and register opportunities; deliver first-line support.",
            rights="Resell the platform within the granted regions and verticals.",
            **extra,
        )
        agreement.regions.set(
            rng.sample(regions, k=rng.randint(1, 3)) if rng.random() < 0.8 else []
        )
        agreement.verticals.set(
            rng.sample(verticals, k=rng.randint(1, 4)) if rng.random() < 0.6 else []
        )
        return agreement

    roll = rng.random()
    # An expired agreement followed by the one now running (a renewal) for a third of partners.
    if roll < 0.33:
        old_start = today - timedelta(days=rng.randint(800, 1000))
        old = make(
            AgreementStatus.EXPIRED, old_start, old_start + timedelta(days=364), signed_on=old_start
        )
        start = old.end_date + timedelta(days=1)
        make(
            AgreementStatus.ACTIVE,
            start,
            start + timedelta(days=729),
            signed_on=start - timedelta(days=5),
            renews=old,
        )
    elif roll < 0.43:
        start = today - timedelta(days=rng.randint(200, 500))
        end = start + timedelta(days=729)
        make(
            AgreementStatus.TERMINATED,
            start,
            end,
            signed_on=start,
            terminated_on=today - timedelta(days=rng.randint(10, 120)),
            termination_reason="Partner exited the AI practice.",
        )
    else:
        start = today - timedelta(days=rng.randint(120, 700))
        # Some end within the next 90 days so the renewals view has work in it.
        end = (
            today + timedelta(days=rng.randint(10, 90))
            if rng.random() < 0.3
            else start + timedelta(days=1094)
        )
        active = make(AgreementStatus.ACTIVE, start, max(end, start), signed_on=start)
        if rng.random() < 0.35:
            make(
                AgreementStatus.DRAFT,
                active.end_date + timedelta(days=1),
                active.end_date + timedelta(days=730),
                renews=active,
            )


def _seed_feedback(*, rng: random.Random, partners: list[Partner], today: date) -> None:
    statuses = [
        FeedbackStatus.NEW,
        FeedbackStatus.ACKNOWLEDGED,
        FeedbackStatus.IN_PROGRESS,
        FeedbackStatus.RESOLVED,
        FeedbackStatus.CLOSED,
    ]
    for partner in partners:
        # A few unhappy partners, so the dashboard has something to flag.
        mood = rng.choice([1.5, 3.0, 3.5, 4.0, 4.5])
        for _ in range(rng.randint(2, 8)):
            category = rng.choice(list(FeedbackCategory))
            satisfaction = min(5, max(1, round(rng.gauss(mood, 0.8))))
            feedback = Feedback.objects.create(
                partner=partner,
                category=category,
                satisfaction=satisfaction,
                nps=min(10, max(0, round(satisfaction * 2 + rng.gauss(0, 1.5))))
                if rng.random() < 0.8
                else None,
                subject=rng.choice(FEEDBACK_SUBJECTS[category]),
                body="We raised this with our account team; details and examples below.\n\n"
                "Our customers asked for it in the last two pilots.",
                status=rng.choice(statuses),
            )
            when = timezone.make_aware(
                datetime.combine(today - timedelta(days=rng.randint(0, 180)), time(10))
            )
            Feedback.objects.filter(pk=feedback.pk).update(created_at=when, updated_at=when)
            if feedback.status != FeedbackStatus.NEW and rng.random() < 0.7:
                FeedbackReply.objects.create(
                    feedback=feedback,
                    body="Thank you, we are looking into it and will follow up this week.",
                )
            if rng.random() < 0.4:
                FeedbackNote.objects.create(
                    feedback=feedback,
                    body="Linked to the Q3 partner review; do not share the pricing discussion.",
                )


def _seed_users(*, password: str) -> list[tuple[str, str, str]]:
    User = get_user_model()
    partner_a = (
        Partner.objects.filter(channel_kind=PartnerKind.PARTNER).order_by("external_id").first()
    )
    partner_b = (
        Partner.objects.filter(channel_kind=PartnerKind.PARTNER)
        .order_by("external_id")[1:2]
        .first()
    )
    # Demo people have names, which the page header shows; the rep takes its SalesRep's.
    names = {
        "manager": ("Mei", "Lin"),
        "exec": ("Daniel", "Weber"),
        "partner-a": ("Alex", "Tan"),
        "partner-b": ("Sara", "Kim"),
    }
    cast = [
        ("manager", Role.SALES_MANAGER, "/workspace/"),
        ("rep", Role.SALES_REP, "/workspace/"),
        ("exec", Role.EXECUTIVE, "/dashboard/"),
        ("partner-a", Role.PARTNER_USER, "/portal/"),
        ("partner-b", Role.PARTNER_USER, "/portal/"),
    ]
    for username, role, _ in cast:
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        user.set_password(password)
        user.is_active = True
        user.first_name, user.last_name = names.get(username, ("", ""))
        user.save()
        user.groups.set([Group.objects.get(name=role.value)])
    if rep := SalesRep.objects.order_by("external_id").first():
        SalesRep.objects.filter(user__username="rep").exclude(pk=rep.pk).update(user=None)
        rep.user = User.objects.get(username="rep")
        rep.save(update_fields=["user", "updated_at"])
        first, _space, last = rep.name.partition(" ")
        User.objects.filter(pk=rep.user.pk).update(first_name=first, last_name=last)
    for username, partner in (("partner-a", partner_a), ("partner-b", partner_b)):
        if partner is not None:
            PartnerUser.objects.update_or_create(
                user=User.objects.get(username=username), defaults={"partner": partner}
            )
    return [(username, role.value, home) for username, role, home in cast]
