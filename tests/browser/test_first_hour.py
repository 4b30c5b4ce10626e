"""A new sales manager's, partner's and executive's first hour, in Chromium: the manager's
home and the counts it links to, the partner page's links, bulk assign with every filter, the
portal after a termination, and the dashboard in Chinese. Each step saves a screenshot in
test-results/screenshots/."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from django.utils.formats import date_format
from playwright.sync_api import Locator, Page, expect
from pytest_django.live_server_helper import LiveServer

from analytics.metrics import iso_week_of
from channels.models import CoverageAssignment
from crm.models import Region, Vertical
from partners.models import Agreement, AgreementStatus, Feedback
from tests.browser.selects import choose
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    PartnerFactory,
    SalesRepFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"first-hour-{name}.png"), full_page=True)


def _count(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _follow(page: Page, link: Locator) -> None:
    """Click `link` (or a form's button) and wait for the page it leads to, not the one it left."""
    with page.expect_navigation():
        link.click()


def _listed(page: Page) -> int:
    """The count an account list, the feedback inbox or the renewals page names."""
    if page.get_by_test_id("result-count").count():
        return _count(page.get_by_test_id("result-count").inner_text().split()[0])
    return page.locator("table tbody tr:not(:has(td[colspan]))").count()


@pytest.fixture
def market(live_cast: Cast) -> dict[str, Any]:
    """Two regions and verticals in English and Chinese, partner A's agreement granting east
    only, accounts covered by it inside and outside the agreement, a distributor, a rep,
    renewals and feedback waiting; last week's and this week's snapshots."""
    today = timezone.localdate()
    east = Region.objects.create(code="east", name="East China", name_zh="华东")
    west = Region.objects.create(code="west", name="West China", name_zh="华西")
    fin = Vertical.objects.create(code="fin", name="Finance", name_zh="金融")
    ret = Vertical.objects.create(code="ret", name="Retail", name_zh="零售")
    partner = live_cast.partner_a
    agreement = AgreementFactory(
        partner=partner,
        external_id="AG-ALPHA",
        regions=[east],
        verticals=[fin, ret],
        start_date=today - timedelta(days=300),
        end_date=today + timedelta(days=25),
        notice_days=20,
    )
    distributor = PartnerFactory(name="Delta Distribution", channel_kind="distribution")
    rep = SalesRepFactory(name="Rita Direct")
    started = today - timedelta(days=60)
    for number in range(16):
        account = AccountFactory(
            name=f"Shop {number:02d}",
            region=(east, west)[number % 2],
            vertical=(fin, ret)[number // 2 % 2],
            size_band=("smb", "enterprise")[number // 4 % 2],
            entered_on=today - timedelta(days=500),
        )
        if number % 3 == 0:
            CoverageAssignment.objects.create(
                account=account, kind="partner", partner=partner, start_date=started
            )
        if number % 5 == 1:
            CoverageAssignment.objects.create(
                account=account, kind="distribution", partner=distributor, start_date=started
            )
        if number % 4 == 2:
            CoverageAssignment.objects.create(
                account=account, kind="direct", rep=rep, start_date=started
            )
    FeedbackFactory(partner=partner, subject="Docs in Chinese, please")
    FeedbackFactory(partner=partner, subject="Quote approval is slow")
    # Two closed weeks, and this week's provisional figures.
    for days in (14, 7):
        week = iso_week_of(today - timedelta(days=days))
        call_command("compute_metrics", "--week", week, "--no-progress", stdout=io.StringIO())
    call_command("compute_metrics", "--last", "1", "--no-progress", stdout=io.StringIO())
    cache.clear()
    return {"agreement": agreement, "rep": rep, "distributor": distributor}


def test_a_managers_first_hour(
    live_server: LiveServer,
    market: dict[str, Any],
    live_cast: Cast,
    sign_in: Callable[[str], Page],
) -> None:
    errors: list[str] = []
    page = sign_in("manager")
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1400, "height": 900})

    # The home: every count lands on a list of exactly that count.
    expect(page).to_have_url(re.compile(r"/workspace/$"))
    expect(page.get_by_test_id("home-due")).to_be_visible()
    _shot(page, "manager-home")
    for testid in ("due-end-30", "due-notice-30", "waiting-count", "outside-count"):
        link = page.get_by_test_id(testid)
        shown = _count(link.inner_text())
        _follow(page, link)
        assert _listed(page) == shown, testid
        page.go_back()
    white_space = page.get_by_test_id("white-space-count").first
    shown = _count(white_space.inner_text())
    _follow(page, white_space)
    assert _listed(page) == shown

    # The partner page: assigned, counted and outside an agreement, each a link to its list.
    page.goto(f"{live_server.url}/workspace/partners/{live_cast.partner_a.pk}/")
    expect(page.get_by_test_id("health-card")).to_be_visible()
    counts = {}
    for testid in ("assigned", "counted", "outside"):
        link = page.get_by_test_id(testid)
        counts[testid] = _count(link.inner_text())
        _follow(page, link)
        assert _listed(page) == counts[testid], testid
        if testid == "outside":
            expect(page.locator(".coverage-outside").first).to_be_visible()
            _shot(page, "partner-outside-list")
        page.go_back()
    assert counts["assigned"] == counts["counted"] + counts["outside"] and counts["outside"] > 0
    _shot(page, "partner-page")
    health = page.get_by_test_id("health-counted")
    shown = _count(health.inner_text())
    health.click()
    page.wait_for_url(re.compile(r"coverage=any"))
    assert _listed(page) == shown

    # Bulk assign with every filter the form offers: the confirmation names the list's count.
    page.goto(f"{live_server.url}/workspace/accounts/")
    page.get_by_label("Search").fill("Shop")
    page.locator("#f-region").select_option("east")
    page.locator("#f-vertical").select_option("fin")
    page.locator("#f-size").select_option("smb")
    page.locator("#f-coverage").select_option("none")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"coverage=none"))
    listed = _listed(page)
    assert listed > 0
    page.get_by_label(re.compile("Everything matching the filter")).check()
    page.get_by_label("Channel kind").select_option("direct")
    choose(page, "Sales rep (direct)", "Rita Direct")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_test_id("confirm-count")).to_contain_text(f"Assign {listed} account")
    expect(page.get_by_test_id("confirm-filters")).to_contain_text("East China")
    assert not CoverageAssignment.objects.filter(start_date=timezone.localdate()).exists()
    _shot(page, "bulk-assign-confirm")
    page.get_by_role("button", name=re.compile(r"^Assign \d+ account")).click()
    expect(page.get_by_text(f"Assigned {listed} account")).to_be_visible()
    assert (
        CoverageAssignment.objects.filter(
            rep=market["rep"], start_date=timezone.localdate()
        ).count()
        == listed
    )
    # A partner's accounts outside its agreement, by the partner and coverage filters.
    page.goto(f"{live_server.url}/workspace/accounts/")
    choose(page, "Partner", live_cast.partner_a.name)
    page.locator("#f-coverage").select_option("outside")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"coverage=outside"))
    outside = _listed(page)
    page.get_by_label(re.compile("Everything matching the filter")).check()
    page.get_by_label("Channel kind").select_option("online")
    page.get_by_label("Online source").fill("web-signup")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_test_id("confirm-count")).to_contain_text(f"Assign {outside} account")
    expect(page.get_by_test_id("confirm-filters")).to_contain_text(live_cast.partner_a.name)

    # Renewing asks first, and shows the renewal instead of drafting a second one.
    agreement = market["agreement"]
    page.goto(f"{live_server.url}/workspace/agreements/{agreement.pk}/")
    page.get_by_role("link", name="Renew…").click()
    expect(page.get_by_test_id("renewal-term")).to_be_visible()
    _follow(page, page.get_by_role("button", name="Create the renewal draft"))
    page.goto(f"{live_server.url}/workspace/agreements/{agreement.pk}/renew/")
    expect(page.get_by_test_id("existing-renewal")).to_be_visible()
    assert Agreement.objects.filter(renews=agreement).count() == 1
    assert errors == []


def test_a_partner_after_a_termination_and_an_executive_in_chinese(
    live_server: LiveServer,
    market: dict[str, Any],
    live_cast: Cast,
    sign_in: Callable[[str], Page],
    browser: Any,
) -> None:
    today = timezone.localdate()
    agreement = market["agreement"]

    # The manager terminates partner A's agreement today.
    page = sign_in("manager")
    page.goto(f"{live_server.url}/workspace/agreements/{agreement.pk}/terminate/")
    page.get_by_label("Reason").fill("Merged into another partner")
    page.get_by_role("button", name="Terminate").click()
    expect(page.get_by_text("is terminated")).to_be_visible()
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.TERMINATED
    _follow(page, page.get_by_role("button", name="Log out"))

    # The partner sees the termination, not the old end and notice dates.
    page = sign_in("partner-a")
    rows = page.get_by_test_id("agreements-in-force")
    expect(rows).to_contain_text(f"Terminated on {date_format(today)}")
    expect(rows).not_to_contain_text(date_format(agreement.end_date))
    _shot(page, "portal-after-termination")
    page.goto(f"{live_server.url}/portal/agreements/")
    expect(page.get_by_text(f"Terminated on {date_format(today)}")).to_be_visible()
    expect(page.locator("table")).to_contain_text("Finance")
    page.goto(f"{live_server.url}/portal/accounts/")
    expect(page.get_by_test_id("outside-note")).to_be_visible()

    # Feedback without a score is refused next to the field; nothing is sent.
    page.goto(f"{live_server.url}/portal/feedback/new/")
    expect(page.get_by_label("Satisfaction")).to_have_value("")
    page.get_by_label("Category").select_option("support")
    page.get_by_label("Subject").fill("Slow answers")
    page.get_by_label("Message").fill("Tickets wait three days.")
    before = Feedback.objects.count()
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-field-error="satisfaction"]')).to_be_visible()
    assert Feedback.objects.count() == before
    _follow(page, page.get_by_role("button", name="Log out"))

    # The executive switches to Chinese: navigation, dashboard and legend in Chinese.
    errors: list[str] = []
    page = sign_in("exec")
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.set_viewport_size({"width": 1400, "height": 900})
    page.locator("#language-select").select_option("zh-hans")
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="覆盖仪表板")).to_be_visible()
    expect(page.get_by_role("navigation", name="主导航")).to_contain_text("仪表板")
    expect(page.get_by_test_id("heat-legend")).to_contain_text("最低者颜色最深")
    expect(page.get_by_test_id("drivers")).to_contain_text("影响满意度的因素")
    # The header holds on one line: the language choice and "log out" fit, nothing wraps.
    select = page.locator("#language-select")
    log_out = page.get_by_role("button", name="退出登录")
    assert log_out.bounding_box()["x"] + log_out.bounding_box()["width"] <= 1400
    assert select.bounding_box()["height"] < 40 and log_out.bounding_box()["height"] < 40
    page.wait_for_function("() => document.documentElement.dataset.chartsDrawn > 0")
    _shot(page, "dashboard-zh")
    assert errors == []
