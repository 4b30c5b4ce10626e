from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from channels import services
from channels.models import CoverageAssignment
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.models import Account, ChannelKind
from tests.factories import AccountFactory, PartnerFactory, SalesRepFactory


@pytest.mark.django_db
class TestCoverageAssign:
    def test_it_assigns_many_accounts_and_skips_those_already_covered_by_the_owner(self) -> None:
        rep = SalesRepFactory()
        accounts = AccountFactory.create_batch(3)
        CoverageAssignment.objects.create(
            account=accounts[0], kind="direct", rep=rep, start_date=date(2026, 1, 1)
        )

        result = coverage_assign(
            accounts=Account.objects.all(),
            owner=CoverageOwner(kind="direct", rep=rep),
            start_date=date(2026, 3, 1),
        )

        assert (result.created, result.already_covered) == (2, 1)
        again = coverage_assign(
            accounts=Account.objects.all(),
            owner=CoverageOwner(kind="direct", rep=rep),
            start_date=date(2026, 3, 1),
        )
        assert again.created == 0 and CoverageAssignment.objects.count() == 3

    def test_it_counts_a_concurrent_identical_assignment_as_already_covered(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner = PartnerFactory()
        accounts = AccountFactory.create_batch(3)
        checked = services._accounts_covered

        def other_request_commits_after_the_check(**kwargs: Any) -> set[int]:
            covered = checked(**kwargs)
            monkeypatch.setattr(services, "_accounts_covered", checked)
            CoverageAssignment.objects.create(
                account=accounts[1], kind="partner", partner=partner, start_date=date(2026, 3, 1)
            )
            return covered

        monkeypatch.setattr(services, "_accounts_covered", other_request_commits_after_the_check)
        result = coverage_assign(
            accounts=Account.objects.all(),
            owner=CoverageOwner(kind="partner", partner=partner),
            start_date=date(2026, 3, 1),
        )

        assert (result.created, result.already_covered) == (2, 1)
        assert sorted(CoverageAssignment.objects.values_list("account_id", flat=True)) == sorted(
            account.pk for account in accounts
        )

    def test_it_lets_an_insert_error_that_is_no_duplicate_through(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        AccountFactory()

        def refused(*args: Any, **kwargs: Any) -> None:
            raise IntegrityError("not a duplicate")

        monkeypatch.setattr(CoverageAssignment.objects, "bulk_create", refused)
        with pytest.raises(IntegrityError):
            coverage_assign(
                accounts=Account.objects.all(),
                owner=CoverageOwner(kind="online", online_source="web"),
                start_date=date(2026, 3, 1),
            )

    def test_it_refuses_a_partner_of_the_wrong_channel_kind(self) -> None:
        distributor = PartnerFactory(
            channel_kind=ChannelKind.DISTRIBUTION, name="Orient Distribution"
        )
        AccountFactory()
        with pytest.raises(ValidationError) as error:
            coverage_assign(
                accounts=Account.objects.all(),
                start_date=date(2026, 3, 1),
                owner=CoverageOwner(kind="partner", partner=distributor),
            )
        assert "Orient Distribution is a distributor" in str(error.value)
        assert not CoverageAssignment.objects.exists()

    def test_it_refuses_a_deactivated_rep_or_partner(self) -> None:
        AccountFactory()
        for owner, field, message in [
            (
                CoverageOwner(kind="direct", rep=SalesRepFactory(name="Lee", is_active=False)),
                "rep",
                "Lee is deactivated.",
            ),
            (
                CoverageOwner(
                    kind="partner", partner=PartnerFactory(name="Gone Ltd", is_active=False)
                ),
                "partner",
                "Gone Ltd is deactivated.",
            ),
        ]:
            with pytest.raises(ValidationError) as error:
                coverage_assign(
                    accounts=Account.objects.all(), owner=owner, start_date=date(2026, 3, 1)
                )
            assert error.value.message_dict == {field: [message]}
        assert not CoverageAssignment.objects.exists()

    def test_it_requires_an_owner_for_the_kind(self) -> None:
        AccountFactory()
        for owner, field in [
            (CoverageOwner(kind="direct"), "rep"),
            (CoverageOwner(kind="online"), "online_source"),
        ]:
            with pytest.raises(ValidationError) as error:
                coverage_assign(
                    accounts=Account.objects.all(), owner=owner, start_date=date(2026, 3, 1)
                )
            assert field in error.value.message_dict

    def test_it_ends_coverage_but_not_before_it_starts(self) -> None:
        assignment = CoverageAssignment.objects.create(
            account=AccountFactory(),
            kind="online",
            online_source="web",
            start_date=date(2026, 3, 1),
        )
        with pytest.raises(ValidationError):
            coverage_end(assignments=CoverageAssignment.objects.all(), end_date=date(2026, 2, 1))
        assert (
            coverage_end(assignments=CoverageAssignment.objects.all(), end_date=date(2026, 4, 30))
            == 1
        )
        assignment.refresh_from_db()
        assert assignment.end_date == date(2026, 4, 30)
