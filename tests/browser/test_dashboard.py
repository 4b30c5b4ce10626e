from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.models import ChannelKind, SizeBand
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    RegionFactory,
    VerticalFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-results" / "screenshots" / "dashboard.png"


@pytest.fixture
def snapshots(live_cast: Cast) -> Cast:
    """A small market with every channel, four weeks of snapshots, committed for live_server."""
    regions = [
        RegionFactory(code=code, name=name) for code, name in (("EAST", "East"), ("WEST", "West"))
    ]
    verticals = [
        VerticalFactory(code=code, name=name)
        for code, name in (("FIN", "Finance"), ("RET", "Retail"))
    ]
    AgreementFactory(
        partner=live_cast.partner_a, start_date=date(2025, 1, 1), end_date=date(2030, 1, 1)
    )
    kinds = list(ChannelKind.values)
    for number in range(24):
        account = AccountFactory(
            region=regions[number % 2],
            vertical=verticals[number // 2 % 2],
            size_band=SizeBand.values[number % 3],
            converted_on=date(2025, 6, 1) if number % 4 == 0 else None,
            converted_via=kinds[number % 4] if number % 4 == 0 else "",
        )
        kind = kinds[number % 4]
        if number % 3:
            CoverageAssignmentFactory(
                account=account,
                kind=kind,
                partner=live_cast.partner_a if kind in ("partner", "distribution") else None,
            )
    for score in (9, 10, 4, 8):
        FeedbackFactory(partner=live_cast.partner_a, nps=score, satisfaction=score // 2)
    call_command(
        "compute_metrics",
        "--last",
        "4",
        "--no-progress",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    cache.clear()
    return live_cast


def _charts_drawn(page: Page) -> list[str]:
    """The ids (or sparkline keys) of the canvases that hold drawn pixels."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('canvas')).filter((canvas) => {
            const { width, height } = canvas;
            if (!width || !height) return false;
            const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) return true; }
            return false;
        }).map((canvas) => canvas.id || canvas.dataset.sparkline)"""
    )


def test_it_changes_week_and_filters_and_draws_every_chart(
    live_server: LiveServer, snapshots: Cast, sign_in: Callable[[str], Page]
) -> None:
    errors: list[str] = []
    page = sign_in("exec")
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_test_id("dashboard-week")).to_be_visible()
    weeks = page.locator("#f-week option")
    expect(weeks).to_have_count(4)
    expect(page.locator("#f-week option", has_text="provisional")).to_have_count(1)

    provisional = page.locator("#f-week option", has_text="provisional").get_attribute("value")
    page.select_option("#f-week", provisional)
    page.wait_for_url(re.compile(rf"week={provisional}"))
    expect(page.get_by_test_id("provisional")).to_be_visible()

    page.select_option("#f-region", "EAST")
    page.wait_for_url(re.compile(r"region=EAST"))
    page.select_option("#f-channel", "direct")
    page.wait_for_url(re.compile(r"channel=direct"))
    assert f"week={provisional}" in page.url and "region=EAST" in page.url
    expect(page.locator("#f-region")).to_have_value("EAST")

    page.get_by_test_id("heat-toggle").click()
    page.wait_for_url(re.compile(r"heat=penetration"))
    expect(page.get_by_role("heading", name=re.compile("Penetration by region"))).to_be_visible()

    order = page.get_by_test_id("leaderboard-order")
    order.get_by_role("link", name="Lowest satisfaction").click()
    page.wait_for_url(re.compile(r"partners=satisfaction"))
    assert "region=EAST" in page.url and "heat=penetration" in page.url
    expect(order.locator("[aria-current]")).to_have_text("Lowest satisfaction")

    page.wait_for_function("() => document.documentElement.dataset.chartsDrawn > 0")
    drawn = _charts_drawn(page)
    for chart in (
        "chart-trend",
        "chart-channels",
        "chart-converted",
        "chart-feedback-volume",
        "coverage",
        "penetration",
        "accounts",
        "agreements_ending",
    ):
        assert chart in drawn
    expect(page.get_by_test_id("value-coverage")).not_to_have_text("")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The heat map: the lowest value is drawn darkest (the strongest warning), on one scale
    # with a legend.
    page.get_by_test_id("heat-toggle").click()
    page.wait_for_url(re.compile(r"heat=coverage"))
    shades = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid=heat-map] td[title]'))
            .filter((cell) => cell.textContent.includes('%'))
            .map((cell) => {
                const [r, g, b] = getComputedStyle(cell).backgroundColor.match(/\\d+/g).map(Number);
                return [parseFloat(cell.textContent), 0.2126 * r + 0.7152 * g + 0.0722 * b];
            })"""
    )
    assert len(shades) >= 2
    lowest, highest = min(shades), max(shades)
    assert lowest[0] < highest[0] and lowest[1] < highest[1]
    assert all(light >= lowest[1] for _value, light in shades)
    expect(page.get_by_test_id("heat-legend")).to_be_visible()

    # Printed, the page names its week, filters and as-of date; the filter form is not printed.
    page.emulate_media(media="print")
    expect(page.get_by_test_id("print-header")).to_be_visible()
    expect(page.get_by_test_id("print-header")).to_contain_text("Region: East")
    expect(page.get_by_test_id("dashboard-filters")).to_be_hidden()
    page.emulate_media(media="screen")
    expect(page.get_by_test_id("print-header")).to_be_hidden()

    page.get_by_role("link", name="Digest preview").click()
    expect(page.get_by_test_id("digest-preview")).to_contain_text("Weekly coverage digest")
    assert errors == []
