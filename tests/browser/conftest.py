"""Fixtures for the browser tests: the cast committed for live_server, and a signed-in page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from tests.cast import Cast
from tests.factories import TEST_PASSWORD


@pytest.fixture
def live_cast(transactional_db: None, cast: Cast) -> Cast:
    """The shared cast, committed: live_server answers from another thread and connection."""
    return cast


@pytest.fixture
def sign_in(page: Page, live_server: LiveServer) -> Callable[[str], Page]:
    """Sign in through the login form as `username` and return the page it lands on."""

    def sign_in_as(username: str) -> Page:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(TEST_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        return page

    return sign_in_as
