"""The partner and rep selects of the account pages load their choices on demand."""

from __future__ import annotations

import re

from django.utils import timezone

from channels.models import CoverageAssignment
from partners.choice_views import CHOICES_LIMIT
from partners.models import PartnerKind
from tests.cast import Cast, signed_in
from tests.factories import AccountFactory, PartnerFactory, SalesRepFactory


def _names(response: object) -> list[str]:
    return [row["text"] for row in response.json()["results"]]  # type: ignore[attr-defined]


class TestChoices:
    def test_it_searches_partners_by_name_in_order_and_says_when_there_are_more(
        self, cast: Cast
    ) -> None:
        PartnerFactory.create_batch(CHOICES_LIMIT + 2, name="Gamma Reseller")
        PartnerFactory(name="Delta Retired", is_active=False)
        client = signed_in(cast.manager)

        first = client.get("/workspace/choices/partners/").json()
        found = _names(client.get("/workspace/choices/partners/?q=alpha"))
        retired = _names(client.get("/workspace/choices/partners/?q=delta"))
        retired_active = _names(client.get("/workspace/choices/partners/?q=delta&active=1"))

        assert len(first["results"]) == CHOICES_LIMIT and first["more"] is True
        assert first["results"][0] == {"value": str(cast.partner_a.pk), "text": "Alpha Systems"}
        assert found == ["Alpha Systems"]
        assert retired == ["Delta Retired"] and retired_active == []

    def test_it_narrows_partners_to_a_channel_kind_and_searches_reps(self, cast: Cast) -> None:
        PartnerFactory(name="Omega Distribution", channel_kind=PartnerKind.DISTRIBUTION)
        SalesRepFactory(name="Sam Seller")
        client = signed_in(cast.manager)

        distributors = _names(client.get("/workspace/choices/partners/?kind=distribution"))
        reps = _names(client.get("/workspace/choices/reps/?q=sELL"))

        assert distributors == ["Omega Distribution"]
        assert reps == ["Sam Seller"]

    def test_hostile_searches_answer_an_empty_or_plain_list(self, cast: Cast) -> None:
        client = signed_in(cast.manager)

        nul = client.get("/workspace/choices/partners/?q=%00Alpha")
        long = client.get("/workspace/choices/reps/", {"q": "x" * 5000})
        wildcard = client.get("/workspace/choices/partners/?q=%25&kind=nonsense")

        assert nul.status_code == 400  # crm.middleware answers NUL before any view
        assert long.status_code == 200 and _names(long) == []
        assert _names(wildcard) == []

    def test_partner_users_reach_no_choices(self, cast: Cast) -> None:
        client = signed_in(cast.partner_a_user)

        assert client.get("/workspace/choices/partners/").status_code == 404
        assert client.get("/workspace/choices/reps/").status_code == 404


class TestAccountPageSelects:
    def test_the_page_carries_only_the_selected_partner_not_every_one(self, cast: Cast) -> None:
        PartnerFactory.create_batch(30)
        account = AccountFactory()
        CoverageAssignment.objects.create(
            account=account,
            kind="partner",
            partner=cast.partner_b,
            start_date=timezone.localdate(),
        )
        client = signed_in(cast.manager)

        page = client.get(f"/workspace/accounts/?partner={cast.partner_b.pk}").content.decode()

        partner_filter = re.search(r'<select[^>]*id="f-partner".*?</select>', page, re.S)
        assign = re.search(
            r'<select[^>]*name="partner"[^>]*id="id_partner".*?</select>', page, re.S
        )
        assert partner_filter and assign
        assert re.findall(r'<option value="(\d*)"', partner_filter.group(0)) == [
            "",
            str(cast.partner_b.pk),
        ]
        assert re.findall(r'<option value="(\d*)"', assign.group(0)) == [""]
        assert 'data-choices-url="/workspace/choices/partners/?active=1"' in assign.group(0)

    def test_a_bulk_assign_to_a_partner_the_page_never_listed_still_validates(
        self, cast: Cast
    ) -> None:
        account = AccountFactory()
        client = signed_in(cast.manager)

        response = client.post(
            "/workspace/coverage/assign/",
            {
                "scope": "selected",
                "account": [account.pk],
                "kind": "partner",
                "partner": cast.partner_a.pk,
                "start_date": timezone.localdate().isoformat(),
                "next": "/workspace/accounts/",
            },
        )

        assert response.status_code == 302
        assert CoverageAssignment.objects.filter(account=account, partner=cast.partner_a).exists()
