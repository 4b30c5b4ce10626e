"""Demo deal registrations: every state and every conflict, made through the services on
past days, so the managers' queue and the partners' portal have something to show.

Deterministic for a seed and a day; drawn from a random generator of its own, so the demo
market stays what `partners.demo` makes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import overload

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from channels.models import CoverageAssignment
from channels.selectors import active_coverage_q
from crm.models import Account, ChannelKind, OutboundEmail
from crm.roles import Role
from partners.models import Agreement, Partner, PartnerKind, PartnerTier, PartnerUser
from partners.programme_demo import demo_programme_tiers
from partners.registration_models import DealRegistration, RegistrationStatus
from partners.registration_services import (
    DealDetails,
    RegistrationRefused,
    registration_approve,
    registration_extend,
    registration_mark_lost,
    registration_mark_won,
    registration_reject,
    registration_request_extension,
    registration_submit,
    registration_withdraw,
    registrations_expire,
)
from partners.selectors import agreements_in_force_q

PROSPECTS = [
    ("Aurora Biotech", "aurora-bio.example"),
    ("Helix Freight Systems", "helixfreight.example"),
    ("Kestrel Insurance Group", "kestrel-ins.example"),
    ("Lotus Smart Retail", "lotus-retail.example"),
    ("Meridian Health Network", "meridian-health.example"),
    ("Nova Auto Parts", "novaparts.example"),
    ("Orchid Learning", "orchid-learning.example"),
    ("Pinnacle Wealth Partners", "pinnacle-wealth.example"),
    ("Quartz Media Studio", "quartz-media.example"),
    ("Redwood Logistics", "redwood-log.example"),
    ("Saffron Foods", "saffron-foods.example"),
    ("Tidal Energy Services", "tidal-energy.example"),
]
OFFERINGS = [
    "Model API, enterprise plan",
    "Customer service assistant",
    "Document understanding",
    "Fine-tuning and private deployment",
    "Coding assistant seats",
]


@dataclass
class _Seeder:
    rng: random.Random
    today: date
    manager: User

    def at(self, days_ago: int, hour: int = 10) -> datetime:
        return timezone.make_aware(
            datetime.combine(self.today - timedelta(days=days_ago), time(hour))
        )

    @overload
    def details(self, account: Account) -> DealDetails: ...

    @overload
    def details(
        self, account: None, *, prospect: tuple[str, str]
    ) -> tuple[str, str, str, Decimal, date]: ...

    def details(
        self, account: Account | None, *, prospect: tuple[str, str] | None = None
    ) -> DealDetails | tuple[str, str, str, Decimal, date]:
        offering = self.rng.choice(OFFERINGS)
        amount = Decimal(self.rng.choice([25, 40, 60, 90, 150, 240, 400]) * 1000)
        close = self.today + timedelta(days=self.rng.randint(30, 200))
        if account is not None:
            return DealDetails(
                company_name=account.name,
                region=account.region,
                vertical=account.vertical,
                size_band=account.size_band,
                offering=offering,
                amount=amount,
                currency=self.rng.choice(["USD", "EUR", "CNY"]),
                expected_close_on=close,
                description="Pilot agreed with the business owner; security review next.",
            )
        name, website = prospect or PROSPECTS[0]
        return name, website, offering, amount, close


def _user_of(partner: Partner) -> User:
    """A portal user of `partner` to register its deals: its first one, else a login without a
    password made for the demo (nobody signs in with it)."""
    membership = partner.portal_users.select_related("user").order_by("id").first()
    if membership is not None:
        return membership.user
    user, _ = get_user_model().objects.get_or_create(
        username=f"deals@{partner.external_id.lower()}.example",
        defaults={"email": f"deals@{partner.external_id.lower()}.example"},
    )
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get_or_create(name=Role.PARTNER_USER)[0])
    PartnerUser.objects.get_or_create(user=user, defaults={"partner": partner})
    return user


def _granted_account(
    partner: Partner, today: date, *, covered: str, rng: random.Random
) -> Account | None:
    """An unconverted account in a segment the partner's agreement grants: uncovered ("none"),
    covered by a direct rep ("direct"), or by this partner ("own")."""
    agreements = Agreement.objects.filter(agreements_in_force_q(today), partner=partner)
    agreement = agreements.prefetch_related("regions", "verticals").first()
    if agreement is None:
        return None
    accounts = Account.objects.filter(converted_on__isnull=True, archived_on__isnull=True)
    regions = [r.pk for r in agreement.regions.all()]
    verticals = [v.pk for v in agreement.verticals.all()]
    if regions:
        accounts = accounts.filter(region_id__in=regions)
    if verticals:
        accounts = accounts.filter(vertical_id__in=verticals)
    active = CoverageAssignment.objects.filter(active_coverage_q(today), account=OuterRef("pk"))
    if covered == "none":
        accounts = accounts.exclude(Exists(active))
    elif covered == "direct":
        accounts = accounts.filter(Exists(active.filter(kind=ChannelKind.DIRECT)))
    elif covered == "own":
        accounts = accounts.filter(Exists(active.filter(partner=partner)))
    accounts = accounts.exclude(deal_registrations__isnull=False).select_related(
        "region", "vertical"
    )
    count = min(accounts.count(), 200)
    if count == 0:
        return None
    return accounts.order_by("id")[rng.randrange(count)]


def _submit(
    seeder: _Seeder, partner: Partner, details: DealDetails, *, days_ago: int
) -> DealRegistration:
    when = seeder.at(days_ago)
    registration = registration_submit(user=_user_of(partner), details=details, now=when)
    if registration.auto_approved:
        # Approved automatically as it arrived, on that past day, not when the demo ran.
        DealRegistration.objects.filter(pk=registration.pk).update(decided_at=when)
        registration.events.update(created_at=when, updated_at=when)
        registration.decided_at = when
    return registration


def _backdate(registration: DealRegistration, *, decided_days_ago: int, seeder: _Seeder) -> None:
    """Decisions made on past days: the services stamp them with the real time."""
    when = seeder.at(decided_days_ago, hour=15)
    # An automatic approval was made as the registration arrived (see _submit).
    DealRegistration.objects.filter(
        pk=registration.pk, decided_at__isnull=False, auto_approved=False
    ).update(decided_at=when)
    registration.events.exclude(kind__in=["submitted", "auto_approved"]).update(
        created_at=when, updated_at=when
    )
    registration.events.filter(kind="submitted").update(
        created_at=registration.submitted_at, updated_at=registration.submitted_at
    )


def demo_registrations(
    *, today: date, seed: int = 20261122, say: Callable[[str], None] | None = None
) -> int:
    """Seed deal registrations in every state (submitted, approved, rejected, won, lost,
    expired, withdrawn) and with every conflict, unless some exist. Returns how many."""
    if DealRegistration.objects.exists():
        return 0
    manager = get_user_model().objects.filter(groups__name=Role.SALES_MANAGER).first()
    # Partners before distributors, so the demo's partner-a and partner-b (the first two
    # partners) have registrations of their own.
    partners = sorted(
        (
            p
            for p in Partner.objects.filter(is_active=True)
            if Agreement.objects.filter(agreements_in_force_q(today), partner=p).exists()
        ),
        key=lambda p: (p.channel_kind != PartnerKind.PARTNER, p.external_id),
    )
    if manager is None or len(partners) < 3:
        return 0
    rng = random.Random(seed + 17)
    seeder = _Seeder(rng=rng, today=today, manager=manager)
    last_email = OutboundEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with transaction.atomic():
        demo_programme_tiers()
        _one_exclusive_agreement(partners, today)
        made = _seed(seeder, partners)
        registrations_expire(today=today)
        # Decisions of the past are not news: nobody is e-mailed about the demo's history.
        OutboundEmail.objects.filter(pk__gt=last_email).delete()
    if say:
        say(f"{made} deal registrations in every state")
    return made


def _one_exclusive_agreement(partners: list[Partner], today: date) -> None:
    """A distributor with an exclusive agreement, so `exclusive_elsewhere` has a cause."""
    if Agreement.objects.filter(agreements_in_force_q(today), exclusive=True).exists():
        return
    distributor = next((p for p in partners if p.channel_kind == PartnerKind.DISTRIBUTION), None)
    if distributor is None:
        return
    agreement = Agreement.objects.filter(agreements_in_force_q(today), partner=distributor).first()
    if agreement is None:
        return
    Agreement.objects.filter(pk=agreement.pk).update(exclusive=True)


def _seed(seeder: _Seeder, partners: list[Partner]) -> int:
    rng, today, manager = seeder.rng, seeder.today, seeder.manager
    made: list[DealRegistration] = []
    plain = [p for p in partners if p.tier in (PartnerTier.REGISTERED, PartnerTier.SILVER)]
    deciding = partners[:2] + plain
    everyone = partners[:6] + [p for p in partners if p.channel_kind != PartnerKind.PARTNER][:6]

    def account_for(partner: Partner, covered: str) -> Account | None:
        return _granted_account(partner, today, covered=covered, rng=rng)

    # Waiting in the queue: clean, covered by a direct rep, overdue, outside the agreement.
    for index, partner in enumerate(everyone):
        covered = ["none", "direct", "own"][index % 3]
        account = account_for(partner, covered)
        if account is None:
            continue
        days_ago = [0, 1, 4, 7, 2, 0][index % 6]
        made.append(_submit(seeder, partner, seeder.details(account), days_ago=days_ago))
    # Prospects, two of them claimed by two partners (possible duplicates).
    for index, (name, website) in enumerate(PROSPECTS[:8]):
        partner = everyone[index % len(everyone)]
        terms = seeder.details(None, prospect=(name, website))
        account = account_for(partner, "none")
        if account is None:
            continue
        _, _, offering, amount, close = terms
        made.append(
            _submit(
                seeder,
                partner,
                DealDetails(
                    company_name=name,
                    website=website,
                    region=account.region,
                    vertical=account.vertical,
                    size_band=account.size_band,
                    offering=offering,
                    amount=amount,
                    expected_close_on=close,
                ),
                days_ago=index % 5,
            )
        )
        if index < 2:
            rival = everyone[(index + 3) % len(everyone)]
            made.append(
                _submit(
                    seeder,
                    rival,
                    DealDetails(
                        company_name=f"{name} Ltd",
                        website=f"https://www.{website}/",
                        region=account.region,
                        vertical=account.vertical,
                        size_band=account.size_band,
                        offering=offering,
                        expected_close_on=close,
                    ),
                    days_ago=1,
                )
            )
    # The same partner registering one company twice (a possible duplicate).
    if plain:
        partner = plain[0]
        account = account_for(partner, "none")
        if account is not None:
            for name, days_ago in (("Vega Analytics", 2), ("Vega Analytics Inc.", 0)):
                details = DealDetails(
                    company_name=name,
                    region=account.region,
                    vertical=account.vertical,
                    size_band=account.size_band,
                    offering=OFFERINGS[0],
                    expected_close_on=today + timedelta(days=90),
                )
                made.append(_submit(seeder, partner, details, days_ago=days_ago))
    # Already customers.
    customers = (
        Account.objects.filter(converted_on__isnull=False, archived_on__isnull=True)
        .select_related("region", "vertical")
        .order_by("id")
    )
    for partner, customer in zip(everyone[:2], customers[:2], strict=False):
        made.append(_submit(seeder, partner, seeder.details(customer), days_ago=3))
    # Decided ones, on past days, for each outcome.
    outcomes = ["approved", "approved", "rejected", "won", "won", "lost", "expired", "withdrawn"]
    outcomes += ["extension", "approved", "won", "rejected"]
    for index, outcome in enumerate(outcomes):
        # A partner with an account to register in a small market, trying each in turn.
        partner, account = deciding[index % len(deciding)], None
        for offset in range(len(deciding)):
            partner = deciding[(index + offset) % len(deciding)]
            account = account_for(partner, "none" if index % 2 else "direct") or account_for(
                partner, "any"
            )
            if account is not None:
                break
        if account is None:
            continue
        if outcome == "expired":
            submitted_days = 150
        elif outcome in ("approved", "extension"):
            submitted_days = rng.randint(10, 40)  # still protected today
        else:
            submitted_days = rng.randint(20, 80)
        registration = _submit(seeder, partner, seeder.details(account), days_ago=submitted_days)
        decided_days = submitted_days - rng.randint(1, 3)
        decided_on = today - timedelta(days=decided_days)
        try:
            if outcome == "rejected" and registration.status == RegistrationStatus.SUBMITTED:
                registration_reject(
                    registration=registration,
                    by=manager,
                    reason="Our direct team has been working this account since last quarter.",
                )
            elif registration.status == RegistrationStatus.SUBMITTED:
                days = 30 if outcome == "expired" else None
                registration_approve(
                    registration=registration, by=manager, protected_days=days, today=decided_on
                )
            if outcome == "won":
                registration_mark_won(
                    registration=registration,
                    by=manager,
                    amount=registration.amount or Decimal(50_000),
                    closed_on=today - timedelta(days=rng.randint(0, max(decided_days - 1, 0))),
                    today=today,
                )
            elif outcome == "lost":
                registration_mark_lost(
                    registration=registration,
                    by=manager,
                    reason="Budget moved to next year.",
                    today=today,
                )
            elif outcome == "withdrawn":
                assert registration.submitted_by is not None  # submitted above
                registration_withdraw(
                    registration=registration,
                    user=registration.submitted_by,
                    reason="The customer paused the project.",
                    today=today,
                )
            elif outcome == "extension":
                assert registration.submitted_by is not None  # submitted above
                registration_request_extension(
                    registration=registration,
                    user=registration.submitted_by,
                    note="Procurement needs another month.",
                )
            elif index == 1:
                registration_extend(registration=registration, by=manager)
        except RegistrationRefused:
            continue
        _backdate(registration, decided_days_ago=decided_days, seeder=seeder)
        made.append(registration)
    for registration in made:
        DealRegistration.objects.filter(pk=registration.pk).update(
            created_at=registration.submitted_at
        )
        registration.events.filter(kind="submitted").update(
            created_at=registration.submitted_at, updated_at=registration.submitted_at
        )
    return len(made)
