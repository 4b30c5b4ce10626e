"""The partner and rep selects of the account list: searched as the user types, by keyboard,
in English and Chinese, with nothing the Content-Security-Policy refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.cast import Cast
from tests.factories import TEST_PASSWORD, PartnerFactory, SalesRepFactory

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_a_manager_finds_a_partner_by_typing_and_the_keyboard(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page]
) -> None:
    PartnerFactory.create_batch(40, name="Gamma Reseller")
    page = sign_in("manager")
    errors = _errors(page)
    page.goto(f"{live_server.url}/workspace/accounts/")
    assert page.locator("#f-partner option").count() == 1, "only the blank choice on the page"

    control = page.get_by_role("combobox", name="Partner", exact=True)
    control.focus()
    page.keyboard.type("beta")
    expect(page.get_by_role("option", name="Beta Cloud", exact=True)).to_be_visible()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Filter").click()

    page.wait_for_url(re.compile(rf"partner={live_cast.partner_b.pk}"))
    expect(page.get_by_test_id("filter-meaning")).to_contain_text("assigned to Beta Cloud")
    expect(page.locator("#f-partner + .ts-wrapper .item")).to_have_text("Beta Cloud")
    page.get_by_role("combobox", name="Partner", exact=True).focus()
    page.keyboard.type("zzz")
    expect(page.get_by_text("No match")).to_be_visible()
    assert errors == []


def test_the_rep_to_assign_is_searched_in_chinese(
    live_server: LiveServer, live_cast: Cast, browser: Browser
) -> None:
    SalesRepFactory(name="王小明")
    SalesRepFactory(name="Retired Rep", is_active=False)
    page = browser.new_context(locale="zh-CN").new_page()
    errors = _errors(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("manager")
    page.locator("#id_password").fill(TEST_PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit]").click()
    page.goto(f"{live_server.url}/workspace/accounts/")

    control = page.get_by_role("combobox", name="销售代表（直销）", exact=True)
    control.focus()
    page.keyboard.type("王")
    option = page.get_by_role("option", name="王小明", exact=True)
    expect(option).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "searchable-select-zh.png"), full_page=True)
    option.click()
    expect(page.locator("#id_rep + .ts-wrapper .item")).to_have_text("王小明")
    assert page.locator("#id_rep").input_value() != ""
    page.get_by_role("combobox", name="销售代表（直销）", exact=True).focus()
    page.keyboard.type("Retired")
    expect(page.get_by_text("没有匹配项")).to_be_visible()
    assert errors == []
