"""The database itself refuses market rows that break the model's rules."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from crm.models import Account, ChannelKind, Region, Vertical
from tests.cast import Cast
from tests.factories import AccountFactory, RegionFactory, VerticalFactory

pytestmark = pytest.mark.django_db


# Region and Vertical factories get-or-create by code, so duplicates go through the manager.
class TestRegionAndVertical:
    def test_it_refuses_a_second_region_with_the_same_code(self) -> None:
        RegionFactory(code="EAST")
        with pytest.raises(IntegrityError), transaction.atomic():
            Region.objects.create(code="EAST", name="East again")

    def test_it_refuses_a_second_vertical_with_the_same_code(self) -> None:
        VerticalFactory(code="FIN")
        with pytest.raises(IntegrityError), transaction.atomic():
            Vertical.objects.create(code="FIN", name="Finance again")


class TestAccount:
    def test_it_refuses_a_second_account_with_the_same_external_id(self) -> None:
        AccountFactory(external_id="ACC-1")
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(external_id="ACC-1")

    def test_it_refuses_an_unknown_size_band(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(size_band="galactic")

    def test_it_refuses_an_archive_date_before_the_market_entry(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(entered_on=date(2025, 3, 1), archived_on=date(2025, 2, 28))

    def test_it_accepts_an_account_archived_the_day_it_entered(self) -> None:
        AccountFactory(entered_on=date(2025, 3, 1), archived_on=date(2025, 3, 1))

    def test_it_refuses_a_conversion_date_without_the_winning_channel(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(converted_on=date(2025, 6, 1), converted_via="")

    def test_it_refuses_a_winning_channel_without_a_conversion_date(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(converted_on=None, converted_via=ChannelKind.PARTNER)

    def test_it_refuses_a_winning_channel_that_is_not_a_channel_kind(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AccountFactory(converted_on=date(2025, 6, 1), converted_via="carrier-pigeon")

    @pytest.mark.parametrize("kind", ChannelKind.values)
    def test_it_accepts_a_conversion_won_by_any_channel_kind(self, kind: str) -> None:
        account = AccountFactory(converted_on=date(2025, 6, 1), converted_via=kind)
        assert Account.objects.get(pk=account.pk).converted_via == kind

    def test_it_refuses_an_update_that_clears_the_conversion_date_only(self) -> None:
        account = AccountFactory(converted_on=date(2025, 6, 1), converted_via=ChannelKind.DIRECT)
        with pytest.raises(IntegrityError), transaction.atomic():
            Account.objects.filter(pk=account.pk).update(converted_on=None)


class TestChineseNames:
    def test_regions_and_verticals_show_their_chinese_name_to_chinese_readers(self) -> None:
        from django.utils import translation

        from tests.factories import RegionFactory, VerticalFactory

        east = RegionFactory(name="East China", name_zh="华东")
        plain = VerticalFactory(name="Finance")
        with translation.override("zh-hans"):
            assert (str(east), east.display_name, str(plain)) == ("华东", "华东", "Finance")
        with translation.override("en"):
            assert (str(east), east.display_name) == ("East China", "East China")

    def test_the_account_list_names_regions_in_the_readers_language(self, cast: Cast) -> None:
        from django.conf import settings
        from django.test import Client

        from tests.factories import AccountFactory, RegionFactory

        AccountFactory(region=RegionFactory(code="east", name="East China", name_zh="华东"))
        client = Client()
        client.force_login(cast.manager)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        html = client.get("/workspace/accounts/").content.decode()
        assert "<td>华东</td>" in html and ">华东</option>" in html


def test_a_capped_count_stops_past_the_cap_as_the_lists_do(db: None) -> None:
    from crm.pagination import capped_count

    AccountFactory.create_batch(3)
    assert capped_count(Account.objects.all(), cap=5) == (3, False)
    assert capped_count(Account.objects.all(), cap=2) == (2, True)
