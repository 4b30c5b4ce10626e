"""Driving the searchable selects in a browser test."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def choose(page: Page, label: str, text: str) -> None:
    """Pick `text` in a searchable select (Tom Select over a `data-choices-url` select) the
    way a user does: type part of it, then click the match the page loaded."""
    box = page.get_by_role("combobox", name=label, exact=True)
    wrapper = box.locator(
        "xpath=ancestor::div[contains(concat(' ', @class, ' '), ' ts-wrapper ')][1]"
    )
    box.focus()
    page.keyboard.type(text[:4])
    # Each key starts a search; wait until the last one has answered, so the click lands on an
    # option that is not replaced under it, then see the choice taken.
    expect(wrapper).not_to_have_class(re.compile(r"\bloading\b"))
    page.get_by_role("option", name=text, exact=True).click()
    expect(wrapper.locator(".item")).to_have_text(text)
