"""The database itself refuses coverage and rep rows that break the model's rules."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from channels.models import CoverageAssignment
from crm.models import ChannelKind
from tests.factories import (
    AccountFactory,
    CoverageAssignmentFactory,
    PartnerFactory,
    SalesRepFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

START = date(2025, 1, 1)


class TestSalesRep:
    def test_it_refuses_a_second_rep_with_the_same_external_id(self) -> None:
        SalesRepFactory(external_id="REP-1")
        with pytest.raises(IntegrityError), transaction.atomic():
            SalesRepFactory(external_id="REP-1")

    def test_it_refuses_two_reps_for_one_user(self) -> None:
        user = UserFactory()
        SalesRepFactory(user=user)
        with pytest.raises(IntegrityError), transaction.atomic():
            SalesRepFactory(user=user)


class TestCoverageDates:
    def test_it_refuses_an_end_before_the_start(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(start_date=date(2025, 3, 1), end_date=date(2025, 2, 28))

    def test_it_accepts_a_one_day_assignment(self) -> None:
        CoverageAssignmentFactory(start_date=date(2025, 3, 1), end_date=date(2025, 3, 1))

    def test_it_refuses_an_unknown_kind(self) -> None:
        rep = SalesRepFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignment.objects.create(
                account=AccountFactory(), kind="telepathy", rep=rep, start_date=START
            )


class TestCoverageOwner:
    @pytest.mark.parametrize("kind", ChannelKind.values)
    def test_it_accepts_the_owner_each_kind_expects(self, kind: str) -> None:
        assignment = CoverageAssignmentFactory(kind=kind)
        assert CoverageAssignment.objects.get(pk=assignment.pk).owner_label

    def test_it_refuses_direct_coverage_without_a_rep(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignment.objects.create(
                account=AccountFactory(), kind=ChannelKind.DIRECT, start_date=START
            )

    def test_it_refuses_direct_coverage_that_also_names_a_partner(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=ChannelKind.DIRECT, partner=PartnerFactory())

    def test_it_refuses_direct_coverage_with_an_online_source(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=ChannelKind.DIRECT, online_source="web")

    @pytest.mark.parametrize("kind", [ChannelKind.PARTNER, ChannelKind.DISTRIBUTION])
    def test_it_refuses_partner_coverage_without_a_partner(self, kind: str) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignment.objects.create(account=AccountFactory(), kind=kind, start_date=START)

    @pytest.mark.parametrize("kind", [ChannelKind.PARTNER, ChannelKind.DISTRIBUTION])
    def test_it_refuses_partner_coverage_that_also_names_a_rep(self, kind: str) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=kind, rep=SalesRepFactory())

    def test_it_refuses_online_coverage_without_a_source(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=ChannelKind.ONLINE, online_source="")

    def test_it_refuses_online_coverage_owned_by_a_rep(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=ChannelKind.ONLINE, rep=SalesRepFactory())

    def test_it_refuses_online_coverage_owned_by_a_partner(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(kind=ChannelKind.ONLINE, partner=PartnerFactory())


class TestCoverageUniqueness:
    def test_it_refuses_the_same_rep_on_the_same_account_from_the_same_day(self) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.DIRECT)
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(account=first.account, kind=ChannelKind.DIRECT, rep=first.rep)

    def test_it_accepts_the_same_rep_again_from_another_day(self) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.DIRECT, end_date=date(2025, 3, 31))
        CoverageAssignmentFactory(
            account=first.account,
            kind=ChannelKind.DIRECT,
            rep=first.rep,
            start_date=date(2025, 4, 1),
        )

    def test_it_accepts_two_reps_on_one_account_from_the_same_day(self) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.DIRECT)
        CoverageAssignmentFactory(account=first.account, kind=ChannelKind.DIRECT)

    @pytest.mark.parametrize("kind", [ChannelKind.PARTNER, ChannelKind.DISTRIBUTION])
    def test_it_refuses_the_same_partner_on_the_same_account_from_the_same_day(
        self, kind: str
    ) -> None:
        first = CoverageAssignmentFactory(kind=kind)
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(account=first.account, kind=kind, partner=first.partner)

    def test_it_accepts_two_partners_on_one_account_from_the_same_day(self) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.PARTNER)
        CoverageAssignmentFactory(account=first.account, kind=ChannelKind.PARTNER)

    def test_it_refuses_the_same_online_source_on_the_same_account_from_the_same_day(
        self,
    ) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.ONLINE, online_source="web")
        with pytest.raises(IntegrityError), transaction.atomic():
            CoverageAssignmentFactory(
                account=first.account, kind=ChannelKind.ONLINE, online_source="web"
            )

    def test_it_accepts_two_online_sources_on_one_account_from_the_same_day(self) -> None:
        first = CoverageAssignmentFactory(kind=ChannelKind.ONLINE, online_source="web")
        CoverageAssignmentFactory(
            account=first.account, kind=ChannelKind.ONLINE, online_source="marketplace"
        )
