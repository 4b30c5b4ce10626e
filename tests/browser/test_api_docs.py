"""The API's schema and its reference pages, in a real browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.cast import Cast

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]


def test_redoc_renders_under_its_policy_with_no_console_error(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page]
) -> None:
    errors: list[str] = []
    page = sign_in("rep")
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(f"{live_server.url}/api/redoc/")
    assert (
        response is not None
        and "style-src 'self' 'unsafe-inline'" in (response.headers["content-security-policy"])
    )
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Channel CRM API")).to_be_visible(timeout=15000)
    expect(page.locator("body")).to_contain_text("agreements")
    assert errors == [], errors


def test_the_schema_opens_as_json_in_a_browser(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page]
) -> None:
    page = sign_in("rep")
    response = page.goto(f"{live_server.url}/api/schema/")
    assert response is not None and response.ok
    assert response.headers["content-type"].startswith("application/json")
    assert '"openapi"' in page.locator("body").inner_text()
