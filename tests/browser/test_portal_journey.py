"""A partner sends feedback, a manager answers, the partner reads it; another partner cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from pytest_django.live_server_helper import LiveServer

from partners.models import Feedback
from tests.browser.pages import signed_in_page
from tests.cast import Cast

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_it_carries_feedback_from_partner_to_manager_and_back(
    live_server: LiveServer, live_cast: Cast, browser: Browser, tmp_path: Path
) -> None:
    screenshot = tmp_path / "screen.png"
    screenshot.write_bytes(PNG)
    partner = signed_in_page(browser, live_server, "partner-a")
    expect(partner).to_have_url(re.compile(r"/portal/$"))
    partner.get_by_role("link", name="Send feedback").first.click()
    partner.get_by_label("Category").select_option("support")
    partner.get_by_label(re.compile("Satisfaction")).select_option("2")
    partner.get_by_label("Subject").fill("Escalations are slow")
    partner.get_by_label("Message").fill("Two tickets waited a week.")
    partner.get_by_label(re.compile("Attachment")).set_input_files(str(screenshot))
    partner.get_by_role("button", name="Send").click()
    expect(partner.get_by_text("your feedback has been received")).to_be_visible()
    feedback = Feedback.objects.get(subject="Escalations are slow")
    assert feedback.attachment

    manager = signed_in_page(browser, live_server, "manager")
    manager.goto(f"{live_server.url}/workspace/feedback/?status=new")
    manager.get_by_role("link", name="Escalations are slow").click()
    manager.get_by_label("Message").first.fill("Sorry — a named engineer now owns your tickets.")
    manager.get_by_role("button", name="Send reply to partner").click()
    expect(manager.get_by_text("Reply posted")).to_be_visible()

    partner.goto(f"{live_server.url}/portal/feedback/{feedback.pk}/")
    expect(partner.get_by_test_id("reply")).to_contain_text(
        "a named engineer now owns your tickets"
    )

    other = signed_in_page(browser, live_server, "partner-b")
    response = other.goto(f"{live_server.url}/portal/feedback/{feedback.pk}/")
    assert response is not None and response.status == 404
    expect(other.get_by_text("Escalations are slow")).to_have_count(0)


def test_it_serves_the_portal_in_simplified_chinese(
    live_server: LiveServer, live_cast: Cast, browser: Browser
) -> None:
    page = signed_in_page(browser, live_server, "partner-a", locale="zh-CN")
    expect(page.get_by_role("link", name="提交反馈").first).to_be_visible()
    page.get_by_role("link", name="提交反馈").first.click()
    expect(page.get_by_label("主题")).to_be_visible()
    page.get_by_label("语言").select_option("en")
    expect(page.get_by_label("Subject")).to_be_visible()
