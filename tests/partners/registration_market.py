"""A small market for deal registration tests, around the shared cast, on a fixed day.

partner-a (Alpha Systems) holds an agreement granting East / Finance only; partner-b (Beta
Cloud) one granting everything; a distributor covers one account under an agreement that has
lapsed. Each account stands for one situation a registration can meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from crm.models import Account, ChannelKind, CurrencyRate, Region, SizeBand, Vertical
from partners.models import Agreement, Partner, PartnerKind
from partners.registration_services import DealDetails, registration_submit
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    PartnerFactory,
    RegionFactory,
    VerticalFactory,
)

TODAY = date(2026, 11, 18)  # a Wednesday
NOW = timezone.make_aware(datetime.combine(TODAY, time(10)))


@dataclass
class RegistrationMarket:
    cast: Cast
    east: Region
    west: Region
    finance: Vertical
    retail: Vertical
    agreement_a: Agreement
    agreement_b: Agreement
    distributor: Partner
    clean: Account  # East / Finance, nobody covers it
    direct: Account  # a rep covers it
    partner_b_covered: Account  # partner-b covers it under its agreement
    lapsed_distributor: Account  # a distributor whose agreement ended covers it
    customer: Account  # converted already
    own: Account  # assigned to partner-a
    theirs: Account  # assigned to partner-b only

    def details(self, **overrides: Any) -> DealDetails:
        values: dict[str, Any] = {
            "company_name": "Nimbus Analytics Ltd",
            "region": self.east,
            "vertical": self.finance,
            "size_band": SizeBand.MID_MARKET,
            "offering": "Model API, enterprise plan",
            "amount": Decimal("120000.00"),
            "currency": "USD",
            "expected_close_on": date(2027, 2, 1),
        }
        values.update(overrides)
        return DealDetails(**values)

    def submit(self, user: Any = None, **overrides: Any) -> Any:
        return registration_submit(
            user=user or self.cast.partner_a_user, details=self.details(**overrides), now=NOW
        )


@pytest.fixture
def registration_market(cast: Cast) -> RegistrationMarket:
    east, west = RegionFactory(code="EAST", name="East"), RegionFactory(code="WEST", name="West")
    finance = VerticalFactory(code="FIN", name="Finance")
    retail = VerticalFactory(code="RET", name="Retail")
    agreement_a = AgreementFactory(
        partner=cast.partner_a,
        start_date=date(2026, 1, 1),
        regions=[east],
        verticals=[finance],
    )
    agreement_b = AgreementFactory(partner=cast.partner_b, start_date=date(2026, 1, 1))
    distributor = PartnerFactory(name="Delta Distribution", channel_kind=PartnerKind.DISTRIBUTION)
    AgreementFactory(partner=distributor, start_date=date(2025, 1, 1))  # ended 2025-12-31

    def account(name: str, **extra: Any) -> Account:
        return AccountFactory(name=name, region=east, vertical=finance, **extra)

    direct = account("Bolt Finance GmbH")
    CoverageAssignmentFactory(account=direct, kind=ChannelKind.DIRECT, rep=cast.rep)
    partner_b_covered = account("Cobalt Bank PLC")
    CoverageAssignmentFactory(
        account=partner_b_covered, kind=ChannelKind.PARTNER, partner=cast.partner_b
    )
    lapsed = account("Dune Insurance")
    CoverageAssignmentFactory(account=lapsed, kind=ChannelKind.DISTRIBUTION, partner=distributor)
    own = account("Ember Capital", external_id="ACC-OWN-1")
    CoverageAssignmentFactory(
        account=own, kind=ChannelKind.PARTNER, partner=cast.partner_a, start_date=date(2026, 3, 1)
    )
    theirs = account("Flint Payments", external_id="ACC-THEIRS-1")
    CoverageAssignmentFactory(account=theirs, kind=ChannelKind.PARTNER, partner=cast.partner_b)
    # Approved registrations become opportunities, whose currencies need rates.
    for currency, rate in (("EUR", "1.08"), ("CNY", "0.14")):
        CurrencyRate.objects.create(
            currency=currency, valid_from=date(2020, 1, 1), rate_to_reporting=Decimal(rate)
        )
    return RegistrationMarket(
        cast=cast,
        east=east,
        west=west,
        finance=finance,
        retail=retail,
        agreement_a=agreement_a,
        agreement_b=agreement_b,
        distributor=distributor,
        clean=account("Acme Finance Ltd"),
        direct=direct,
        partner_b_covered=partner_b_covered,
        lapsed_distributor=lapsed,
        customer=account(
            "Granite Trust", converted_on=date(2026, 6, 1), converted_via=ChannelKind.DIRECT
        ),
        own=own,
        theirs=theirs,
    )
