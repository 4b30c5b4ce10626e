"""Approved registrations show in the next weekly snapshot as the partner's coverage, and won
ones as its conversions: the weekly run counts the coverage assignments approvals create, with
no change to the metrics."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from analytics import services
from analytics.models import PartnerSnapshot, SegmentSnapshot
from partners.registration_services import (
    registration_approve,
    registration_mark_lost,
    registration_mark_won,
)
from tests.partners.registration_market import NOW, TODAY, RegistrationMarket

pytestmark = pytest.mark.django_db

BEFORE, WEEK, AFTER = "2026-W46", "2026-W47", "2026-W48"  # TODAY is the Wednesday of 2026-W47


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(NOW + timedelta(days=20), tick=False):  # the weeks have ended
        yield


def covered_by(market: RegistrationMarket, week: str) -> int:
    return PartnerSnapshot.objects.get(week=week, partner=market.cast.partner_a).covered_accounts


def segment(market: RegistrationMarket, week: str, *counts: str) -> dict[str, Any]:
    return SegmentSnapshot.objects.filter(
        week=week, region="EAST", vertical="FIN", size_band="smb"
    ).values(*counts)[0]


def test_an_approval_is_the_partners_coverage_in_the_next_snapshot(
    registration_market: RegistrationMarket,
) -> None:
    market = registration_market
    registration_approve(
        registration=market.submit(company_name="Acme Finance"),
        by=market.cast.manager,
        today=TODAY,
    )
    for week in (BEFORE, WEEK):
        services.metrics_compute_week(week=week, final=True)
    # partner-a covered its own account before; the approval adds the registered one.
    assert covered_by(market, BEFORE) == 1
    assert covered_by(market, WEEK) == 2
    before = segment(market, BEFORE, "covered_partner", "accounts")
    after = segment(market, WEEK, "covered_partner", "accounts")
    assert after["covered_partner"] == before["covered_partner"] + 1
    assert after["accounts"] == before["accounts"]


def test_an_approved_prospect_enters_the_market_covered(
    registration_market: RegistrationMarket,
) -> None:
    market = registration_market
    registration_approve(
        registration=market.submit(company_name="Quasar Robotics", size_band="smb"),
        by=market.cast.manager,
        today=TODAY,
    )
    for week in (BEFORE, WEEK):
        services.metrics_compute_week(week=week, final=True)
    before = segment(market, BEFORE, "covered_partner", "accounts")
    after = segment(market, WEEK, "covered_partner", "accounts")
    assert (after["accounts"], after["covered_partner"]) == (
        before["accounts"] + 1,
        before["covered_partner"] + 1,
    )


def test_won_counts_as_a_partner_conversion_and_lost_ends_the_coverage(
    registration_market: RegistrationMarket,
) -> None:
    market = registration_market
    manager = market.cast.manager
    won = registration_approve(
        registration=market.submit(company_name="Acme Finance"), by=manager, today=TODAY
    )
    registration_mark_won(
        registration=won, by=manager, amount=Decimal(10), closed_on=TODAY, today=TODAY
    )
    lost = registration_approve(
        registration=market.submit(company_name="Dune Insurance"), by=manager, today=TODAY
    )
    services.metrics_compute_week(week=WEEK, final=True)
    assert covered_by(market, WEEK) == 3
    registration_mark_lost(registration=lost, by=manager, today=TODAY + timedelta(days=5))
    services.metrics_compute_week(week=AFTER, final=True)
    assert covered_by(market, AFTER) == 2, "the lost deal's coverage ended in the week"
    week = segment(market, WEEK, "converted_partner")
    assert week["converted_partner"] == 1
    partner = PartnerSnapshot.objects.get(week=WEEK, partner=market.cast.partner_a)
    assert partner.converted_accounts == 1
