"""factory_boy factories for every model, in one place."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from channels.models import CoverageAssignment, Opportunity, OpportunitySubStage, SalesRep
from crm.models import Account, ChannelKind, CurrencyRate, Region, SizeBand, Vertical
from crm.names import company_name_key
from partners.models import (
    Agreement,
    AgreementStatus,
    AgreementType,
    Feedback,
    FeedbackCategory,
    FeedbackNote,
    FeedbackReply,
    Partner,
    PartnerContact,
    PartnerKind,
    PartnerType,
    PartnerUser,
    Tier,
)
from partners.programme_models import TierChange
from partners.programme_services import partner_tier_set, programme_tiers_ensure

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted:
            group, _ = Group.objects.get_or_create(name=extracted)
            self.groups.add(group)


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.LazyAttribute(lambda r: f"Region {r.code}")


class VerticalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vertical
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"V{n:03d}")
    name = factory.LazyAttribute(lambda v: f"Vertical {v.code}")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"ACC-{n:07d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    name_key = factory.LazyAttribute(lambda a: company_name_key(a.name))
    region = factory.SubFactory(RegionFactory)
    vertical = factory.SubFactory(VerticalFactory)
    size_band = SizeBand.SMB
    entered_on = date(2025, 1, 1)


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"P-{n:04d}")
    name = factory.Sequence(lambda n: f"Partner {n}")
    channel_kind = PartnerKind.PARTNER
    partner_type = PartnerType.RESELLER

    @factory.post_generation
    def programme(self, create: bool, extracted: object, **kwargs: object) -> None:
        # A test that empties the database (transactional tests) loses the migration's tiers.
        if create:
            programme_tiers_ensure()


def tier_change_made(*, partner: Partner, tier: str, by: Any, reason: str = "") -> TierChange:
    """A manager's move of `partner` to `tier` (`partner_tier_set`), as its history records it."""
    partner_tier_set(partner=partner, tier=tier, by=by, reason=reason)
    return TierChange.objects.filter(partner=partner).latest("id")


def tier_set(code: str, **values: object) -> Tier:
    """The tier `code` with `values` set (created at the next free rank when missing)."""
    programme_tiers_ensure()
    tier = Tier.objects.filter(code=code).first()
    if tier is None:
        rank = (Tier.objects.order_by("-rank").values_list("rank", flat=True).first() or 0) + 1
        tier = Tier(code=code, name=code.title(), rank=rank)
    for name, value in values.items():
        setattr(tier, name, value)
    tier.full_clean()
    tier.save()
    return tier


class PartnerContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerContact

    partner = factory.SubFactory(PartnerFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.LazyAttribute(lambda c: f"contact{c.name.split()[-1]}@partner.example")


class PartnerUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerUser

    user = factory.SubFactory(UserFactory, role="partner_user")
    partner = factory.SubFactory(PartnerFactory)


class AgreementFactory(factory.django.DjangoModelFactory):
    """An active agreement, signed on its start date, running a year."""

    class Meta:
        model = Agreement
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"AG-{n:05d}")
    partner = factory.SubFactory(PartnerFactory)
    agreement_type = AgreementType.RESELLER
    status = AgreementStatus.ACTIVE
    start_date = date(2025, 1, 1)
    end_date = factory.LazyAttribute(lambda a: a.start_date + timedelta(days=364))
    signed_on = factory.LazyAttribute(lambda a: a.start_date)

    @factory.post_generation
    def regions(self, create: bool, extracted: list[Region] | None, **kwargs: object) -> None:
        if create and extracted:
            self.regions.set(extracted)

    @factory.post_generation
    def verticals(self, create: bool, extracted: list[Vertical] | None, **kwargs: object) -> None:
        if create and extracted:
            self.verticals.set(extracted)


class SalesRepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesRep

    external_id = factory.Sequence(lambda n: f"REP-{n:04d}")
    name = factory.Sequence(lambda n: f"Rep {n}")
    email = factory.LazyAttribute(lambda r: f"{r.external_id.lower()}@example.com")


class CoverageAssignmentFactory(factory.django.DjangoModelFactory):
    """Direct coverage by a rep unless told otherwise."""

    class Meta:
        model = CoverageAssignment

    account = factory.SubFactory(AccountFactory)
    kind = ChannelKind.DIRECT
    rep = factory.Maybe(
        factory.LazyAttribute(lambda c: c.kind == ChannelKind.DIRECT),
        factory.SubFactory(SalesRepFactory),
        None,
    )
    partner = factory.Maybe(
        factory.LazyAttribute(lambda c: c.kind in (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)),
        factory.SubFactory(
            PartnerFactory,
            channel_kind=factory.SelfAttribute("..kind"),
        ),
        None,
    )
    online_source = factory.LazyAttribute(lambda c: "web" if c.kind == ChannelKind.ONLINE else "")
    start_date = date(2025, 1, 1)


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    partner = factory.SubFactory(PartnerFactory)
    category = FeedbackCategory.PRODUCT
    satisfaction = 4
    nps = 8
    subject = factory.Sequence(lambda n: f"Feedback {n}")
    body = "The onboarding went well; the API docs could show more examples."


class FeedbackReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeedbackReply

    feedback = factory.SubFactory(FeedbackFactory)
    body = "Thanks, we will add examples."


class FeedbackNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeedbackNote

    feedback = factory.SubFactory(FeedbackFactory)
    body = "Internal: docs team ticket DOC-42."


class CurrencyRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CurrencyRate
        django_get_or_create = ("currency", "valid_from")

    currency = "EUR"
    valid_from = date(2020, 1, 1)
    rate_to_reporting = Decimal("1.1")


class OpportunityFactory(factory.django.DjangoModelFactory):
    """An open direct deal of 10,000.00 USD in the first sub-stage, unless told otherwise."""

    class Meta:
        model = Opportunity

    external_id = factory.Sequence(lambda n: f"OPP-{n:06d}")
    name = factory.Sequence(lambda n: f"Deal {n}")
    account = factory.SubFactory(AccountFactory)
    channel = ChannelKind.DIRECT
    rep = factory.Maybe(
        factory.LazyAttribute(lambda o: o.channel == ChannelKind.DIRECT),
        factory.SubFactory(SalesRepFactory),
        None,
    )
    partner = factory.Maybe(
        factory.LazyAttribute(
            lambda o: o.channel in (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)
        ),
        factory.SubFactory(PartnerFactory, channel_kind=factory.SelfAttribute("..channel")),
        None,
    )
    online_source = factory.LazyAttribute(
        lambda o: "web" if o.channel == ChannelKind.ONLINE else ""
    )
    sub_stage = factory.LazyFunction(
        lambda: OpportunitySubStage.objects.order_by("position").first()
    )
    amount = Decimal("10000.00")
    currency = "USD"
    opened_on = date(2026, 1, 5)
