"""Driving the searchable selects in a browser test."""

from __future__ import annotations

from playwright.sync_api import Page


def choose(page: Page, label: str, text: str) -> None:
    """Pick `text` in a searchable select (Tom Select over a `data-choices-url` select) the
    way a user does: type part of it, then click the match the page loaded."""
    page.get_by_role("combobox", name=label, exact=True).focus()
    page.keyboard.type(text[:4])
    page.get_by_role("option", name=text, exact=True).click()
