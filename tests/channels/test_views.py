from __future__ import annotations

from crm.models import ChannelKind, SizeBand
from tests.cast import Cast, signed_in
from tests.factories import (
    AccountFactory,
    CoverageAssignmentFactory,
    RegionFactory,
    SalesRepFactory,
)


class TestAccountList:
    def test_it_shows_a_rep_only_the_accounts_assigned_to_them(self, cast: Cast) -> None:
        mine = CoverageAssignmentFactory(rep=cast.rep, account__name="Mine Ltd").account
        other_rep = SalesRepFactory()
        CoverageAssignmentFactory(rep=other_rep, account__name="Theirs GmbH")
        CoverageAssignmentFactory(kind=ChannelKind.ONLINE, account__name="Online Only Inc")

        response = signed_in(cast.rep_user).get("/workspace/my-accounts/")

        assert response.status_code == 200
        html = response.content.decode()
        assert mine.name in html
        assert "Theirs GmbH" not in html
        assert "Online Only Inc" not in html

    def test_it_gives_a_rep_the_same_scope_on_the_general_account_list(self, cast: Cast) -> None:
        CoverageAssignmentFactory(rep=SalesRepFactory(), account__name="Theirs GmbH")
        response = signed_in(cast.rep_user).get("/workspace/accounts/?q=Theirs")
        assert "Theirs GmbH" not in response.content.decode()

    def test_it_shows_a_manager_every_account_filtered_by_segment(self, cast: Cast) -> None:
        dach = RegionFactory(code="dach", name="DACH")
        AccountFactory(name="In Dach Enterprise", region=dach, size_band=SizeBand.ENTERPRISE)
        AccountFactory(name="In Dach Smb", region=dach, size_band=SizeBand.SMB)
        AccountFactory(name="Elsewhere Enterprise", size_band=SizeBand.ENTERPRISE)

        response = signed_in(cast.manager).get(
            "/workspace/accounts/?region=dach&size_band=enterprise"
        )

        html = response.content.decode()
        assert "In Dach Enterprise" in html
        assert "In Dach Smb" not in html
        assert "Elsewhere Enterprise" not in html
        assert "1 account" in html

    def test_it_hides_the_account_list_from_partner_users(self, cast: Cast) -> None:
        AccountFactory(name="Secret Account")
        response = signed_in(cast.partner_a_user).get("/workspace/accounts/")
        assert response.status_code == 404
        assert b"Secret Account" not in response.content
