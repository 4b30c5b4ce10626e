from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.cast import Cast

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]


def test_it_signs_a_manager_in_and_lands_on_the_workspace(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page]
) -> None:
    page = sign_in("manager")

    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server.url)}/workspace/$"))
    expect(page.get_by_test_id("signed-in-as")).to_have_text("manager")
    expect(page.get_by_role("navigation", name="Main navigation")).to_be_visible()


def test_it_keeps_a_wrong_password_on_the_login_page(
    live_server: LiveServer, live_cast: Cast, page: Page
) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
