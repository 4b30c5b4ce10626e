"""A deal registration in real browsers: partner-a registers a deal for an account a direct rep
covers, a manager sees the `covered_by_other_channel` conflict and approves it anyway,
partner-a reads the approval in Simplified Chinese, and the next weekly snapshot counts the
account as covered by partner-a."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect
from pytest_django.live_server_helper import LiveServer

from analytics import services
from analytics.models import PartnerSnapshot, SegmentSnapshot
from crm.models import ChannelKind
from partners.registration_models import DealRegistration
from tests.browser.pages import signed_in_page
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    CurrencyRateFactory,
    RegionFactory,
    VerticalFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]


def test_a_registered_deal_is_approved_and_counted_as_partner_coverage(
    live_server: LiveServer, live_cast: Cast, browser: Browser
) -> None:
    today = timezone.localdate()
    east = RegionFactory(code="EAST", name="East China")
    finance = VerticalFactory(code="FIN", name="Finance")
    account = AccountFactory(name="Harbor Logistics Ltd", region=east, vertical=finance)
    # The deal is in renminbi: its approval opens an opportunity, converted at this rate.
    CurrencyRateFactory(currency="CNY", rate_to_reporting=Decimal("0.14"))
    CoverageAssignmentFactory(
        account=account, kind=ChannelKind.DIRECT, rep=live_cast.rep, start_date=today
    )
    AgreementFactory(partner=live_cast.partner_a, start_date=today - timedelta(days=30))

    partner = signed_in_page(browser, live_server, "partner-a", "en-US")
    partner.get_by_role("link", name="Deal registrations").click()
    partner.get_by_role("link", name="Register a deal").click()
    partner.get_by_label("Company name").fill("HARBOR LOGISTICS LIMITED")
    partner.get_by_label("Website").fill("harbor-logistics.example")
    partner.get_by_label("Region").select_option(label="East China")
    partner.get_by_label("Industry").select_option(label="Finance")
    partner.get_by_label("Company size").select_option("smb")
    partner.get_by_label("Estimated amount").fill("80000")
    partner.get_by_label("Currency").fill("CNY")
    partner.get_by_role("button", name="Register the deal").click()
    expect(partner.get_by_text("your deal is registered")).to_be_visible()
    expect(partner.get_by_test_id("review-state")).to_contain_text("needs a review")
    expect(partner.get_by_text("covered_by_other_channel")).to_have_count(0)
    registration = DealRegistration.objects.get()
    assert registration.account == account

    manager = signed_in_page(browser, live_server, "manager", "en-US")
    manager.get_by_role("link", name="Registrations").first.click()
    queue = manager.get_by_test_id("registration-queue")
    expect(queue.locator('[data-code="covered_by_other_channel"]')).to_have_text(
        "Covered by another channel"
    )
    queue.get_by_role("link", name=registration.external_id).click()
    expect(manager.get_by_test_id("conflicts")).to_contain_text(
        "Covered today by sales rep Rita Rep"
    )
    manager.get_by_role("button", name=re.compile("Approve despite 1 conflict")).click()
    expect(manager.get_by_text(f"{registration.external_id} approved")).to_be_visible()
    expect(manager.get_by_test_id("registration-status")).to_have_text("Approved")

    chinese = signed_in_page(browser, live_server, "partner-a", "zh-CN")
    chinese.get_by_role("link", name="商机报备").click()
    expect(chinese.get_by_test_id("status").first).to_have_text("已批准")
    chinese.get_by_role("link", name="HARBOR LOGISTICS LIMITED").click()
    expect(chinese.get_by_test_id("registration-status")).to_have_text("已批准")
    expect(chinese.get_by_test_id("protected-until")).to_be_visible()

    # The week that holds the approval, closed on its Sunday: the next snapshot.
    year, week, _ = today.isocalendar()
    services.metrics_compute_week(week=f"{year}-W{week:02d}", final=True)
    snapshot = PartnerSnapshot.objects.get(week=f"{year}-W{week:02d}", partner=live_cast.partner_a)
    assert snapshot.covered_accounts == 1
    segment = SegmentSnapshot.objects.get(
        week=f"{year}-W{week:02d}", region="EAST", vertical="FIN", size_band="smb"
    )
    assert (segment.covered_partner, segment.covered_direct, segment.overlap) == (1, 1, 1)
