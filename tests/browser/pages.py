"""A signed-in page of its own for each person of a browser test."""

from __future__ import annotations

from playwright.sync_api import Browser, Page
from pytest_django.live_server_helper import LiveServer

from tests.factories import TEST_PASSWORD


def signed_in_page(
    browser: Browser, live_server: LiveServer, username: str, locale: str = "en-US"
) -> Page:
    """A new browser context in `locale` (its Accept-Language), signed in as `username` through
    the login form, on the page the form lands on."""
    page = browser.new_context(locale=locale).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(TEST_PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").click()
    return page
