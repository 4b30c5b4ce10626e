"""A market import in a real browser, on a Chinese page: the manager uploads files with bad
rows and reads every problem in Chinese, after the file, line and column as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from pytest_django.live_server_helper import LiveServer

from crm.models import Account, Region
from tests.browser.pages import signed_in_page
from tests.cast import Cast

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]


def test_a_chinese_page_shows_the_import_problems_in_chinese(
    live_server: LiveServer, live_cast: Cast, browser: Browser, tmp_path: Path
) -> None:
    files = {
        "regions.csv": "code,name\neast,East China\n",
        "accounts.csv": "external_id,name,region,vertical,size_band,entered_on,archived_on,"
        "converted_on,converted_via\nA-1,Shop One,nowhere,retail,smb,2025-02-30,,,\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    page = signed_in_page(browser, live_server, "manager", locale="zh-CN")
    page.goto(f"{live_server.url}/workspace/imports/")
    page.locator("#id_files").set_input_files([str(tmp_path / name) for name in files])
    page.get_by_role("button", name="上传并检查").click()

    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "invalid")
    problems = page.get_by_test_id("import-problems").locator("li")
    expect(problems).to_have_text(
        [
            "accounts.csv:2: region: 未知的区域代码 'nowhere'",
            "accounts.csv:2: vertical: 未知的行业代码 'retail'",
            "accounts.csv:2: entered_on: 不是日期（应为 yyyy-mm-dd）：'2025-02-30'",
        ]
    )
    assert not Region.objects.exists() and not Account.objects.exists()
