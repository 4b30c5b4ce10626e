from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.cast import Cast
from tests.factories import AgreementFactory, FeedbackFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _client_for(user: object, language: str) -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


class TestPortalLanguages:
    def test_it_has_a_translation_for_every_message_in_the_catalogue(self) -> None:
        text = CATALOGUE.read_text(encoding="utf-8")
        entries = re.findall(r'^msgid "(.*)"\nmsgstr "(.*)"', text, flags=re.M)
        untranslated = [msgid for msgid, msgstr in entries if msgid and not msgstr]
        assert entries and untranslated == []
        assert "#, fuzzy" not in text

    def test_it_shows_the_portal_in_simplified_chinese(self, cast: Cast) -> None:
        today = timezone.localdate()
        AgreementFactory(partner=cast.partner_a, start_date=today - timedelta(days=5))
        FeedbackFactory(partner=cast.partner_a)
        client = _client_for(cast.partner_a_user, "zh-hans")
        for path, phrase in [
            ("/portal/", "生效中的协议"),
            ("/portal/agreements/", "签署文件"),
            ("/portal/feedback/", "您的反馈"),
            ("/portal/feedback/new/", "满意度"),
            ("/portal/accounts/", "分配给您的客户"),
            ("/portal/profile/", "修改密码"),
        ]:
            html = client.get(path).content.decode()
            assert phrase in html, path
            assert 'lang="zh-hans"' in html, path
        html = client.get("/portal/feedback/").content.decode()
        assert "新提交" in html, "choice labels are translated too"

    def test_it_formats_dates_for_the_chosen_language(self, cast: Cast) -> None:
        today = timezone.localdate()
        AgreementFactory(
            partner=cast.partner_a,
            start_date=today - timedelta(days=5),
            end_date=today + timedelta(days=100),
        )
        end = today + timedelta(days=100)
        chinese = _client_for(cast.partner_a_user, "zh-hans").get("/portal/").content.decode()
        english = _client_for(cast.partner_a_user, "en").get("/portal/").content.decode()
        assert f"{end.year}年{end.month}月{end.day}日" in chinese
        assert f"{end.day} {end:%b} {end.year}" in english
        assert f"{end:%m/%d/%Y}" not in english and end.isoformat() not in english

    def test_it_switches_language_from_the_switcher(self, cast: Cast) -> None:
        client = _client_for(cast.partner_a_user, "en")
        client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/portal/"})
        assert "概览" in client.get("/portal/").content.decode()
