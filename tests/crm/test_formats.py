"""One way to show each kind of value, following the reader's language."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.test import Client
from django.utils import timezone

from channels.models import CoverageAssignment
from crm.models import SizeBand
from tests.cast import Cast
from tests.factories import AccountFactory, AgreementFactory, FeedbackFactory


def _client_for(user: object, language: str = "en") -> Client:
    client = Client()
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return html


class TestDates:
    def test_workspace_and_portal_pages_show_no_iso_or_us_dates(self, cast: Cast) -> None:
        entered = date(2024, 3, 7)
        account = AccountFactory(name="Dated Co", entered_on=entered)
        CoverageAssignment.objects.create(
            account=account, kind="partner", partner=cast.partner_a, start_date=date(2025, 1, 2)
        )
        today = timezone.localdate()
        AgreementFactory(
            partner=cast.partner_a,
            start_date=today - timedelta(days=10),
            end_date=today + timedelta(days=100),
        )
        FeedbackFactory(partner=cast.partner_a)
        pages = {
            "manager": [
                "/workspace/accounts/",
                f"/workspace/accounts/{account.pk}/",
                "/workspace/agreements/",
                f"/workspace/partners/{cast.partner_a.pk}/",
                "/workspace/feedback/",
            ],
            "partner_a_user": ["/portal/", "/portal/agreements/", "/portal/feedback/"],
        }
        for who, paths in pages.items():
            for language, shown in (("en", "7 Mar 2024"), ("zh-hans", "2024年3月7日")):
                client = _client_for(getattr(cast, who), language)
                for path in paths:
                    text = _visible_text(client.get(path).content.decode())
                    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), (path, language)
                    assert not re.search(r"\b\d\d/\d\d/20\d\d\b", text), (path, language)
                    if path.startswith("/workspace/accounts/"):
                        assert shown in text, (path, language)


class TestLabelsAndMoney:
    def test_white_space_shows_size_band_labels_not_codes(self, cast: Cast) -> None:
        AccountFactory(size_band=SizeBand.MID_MARKET)
        html = _client_for(cast.manager).get("/workspace/white-space/").content.decode()
        assert "Mid-market" in html and "mid_market" not in _visible_text(html)

    def test_money_has_thousands_separators_and_its_currency(self, cast: Cast) -> None:
        agreement = AgreementFactory(
            partner=cast.partner_a, annual_target=Decimal("1250000"), currency="EUR"
        )
        html = _client_for(cast.manager).get(f"/workspace/agreements/{agreement.pk}/").content
        assert "1,250,000.00 EUR" in html.decode()
