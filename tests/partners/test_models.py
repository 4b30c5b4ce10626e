"""The database itself refuses partner, agreement and feedback rows that break the rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from crm.models import ChannelKind
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackStatus,
    PartnerKind,
)
from tests.factories import (
    AgreementFactory,
    FeedbackFactory,
    PartnerFactory,
    PartnerUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

START = date(2025, 1, 1)
END = date(2025, 12, 31)


class TestPartner:
    def test_it_refuses_a_second_partner_with_the_same_external_id(self) -> None:
        PartnerFactory(external_id="P-ONE")
        with pytest.raises(IntegrityError), transaction.atomic():
            PartnerFactory(external_id="P-ONE")

    @pytest.mark.parametrize("kind", [ChannelKind.DIRECT, ChannelKind.ONLINE, "reseller"])
    def test_it_refuses_a_channel_kind_other_than_distribution_or_partner(self, kind: str) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            PartnerFactory(channel_kind=kind)

    @pytest.mark.parametrize("kind", PartnerKind.values)
    def test_it_accepts_distributors_and_partners(self, kind: str) -> None:
        PartnerFactory(channel_kind=kind)

    def test_it_refuses_an_unknown_partner_type(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            PartnerFactory(partner_type="pirate")


class TestPartnerUser:
    def test_it_refuses_one_user_in_two_partners(self) -> None:
        user = UserFactory()
        PartnerUserFactory(user=user)
        with pytest.raises(IntegrityError), transaction.atomic():
            PartnerUserFactory(user=user)


class TestAgreementTerm:
    def test_it_refuses_a_second_agreement_with_the_same_external_id(self) -> None:
        AgreementFactory(external_id="AG-ONE")
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(external_id="AG-ONE")

    def test_it_refuses_an_end_before_the_start(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(start_date=START, end_date=date(2024, 12, 31))

    def test_it_accepts_a_one_day_term(self) -> None:
        AgreementFactory(start_date=START, end_date=START)

    def test_it_refuses_an_unknown_status(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(status="paused")

    def test_it_refuses_an_unknown_agreement_type(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(agreement_type="handshake")


class TestAgreementSignature:
    @pytest.mark.parametrize(
        "status", [AgreementStatus.ACTIVE, AgreementStatus.EXPIRED, AgreementStatus.TERMINATED]
    )
    def test_it_refuses_an_unsigned_agreement_past_draft(self, status: str) -> None:
        terminated_on = date(2025, 6, 30) if status == AgreementStatus.TERMINATED else None
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(status=status, signed_on=None, terminated_on=terminated_on)

    def test_it_accepts_an_unsigned_draft(self) -> None:
        AgreementFactory(status=AgreementStatus.DRAFT, signed_on=None)

    def test_it_refuses_activating_an_unsigned_draft_in_place(self) -> None:
        draft = AgreementFactory(status=AgreementStatus.DRAFT, signed_on=None)
        with pytest.raises(IntegrityError), transaction.atomic():
            Agreement.objects.filter(pk=draft.pk).update(status=AgreementStatus.ACTIVE)


class TestAgreementTermination:
    def test_it_refuses_a_terminated_agreement_without_a_termination_date(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(status=AgreementStatus.TERMINATED, terminated_on=None)

    @pytest.mark.parametrize(
        "status", [AgreementStatus.DRAFT, AgreementStatus.ACTIVE, AgreementStatus.EXPIRED]
    )
    def test_it_refuses_a_termination_date_on_an_agreement_not_terminated(
        self, status: str
    ) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(status=status, terminated_on=date(2025, 6, 30))

    @pytest.mark.parametrize("day", [START, date(2025, 6, 30), END])
    def test_it_accepts_a_termination_within_the_term(self, day: date) -> None:
        AgreementFactory(
            status=AgreementStatus.TERMINATED, start_date=START, end_date=END, terminated_on=day
        )

    @pytest.mark.parametrize("day", [date(2024, 12, 31), date(2026, 1, 1)])
    def test_it_refuses_a_termination_outside_the_term(self, day: date) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(
                status=AgreementStatus.TERMINATED, start_date=START, end_date=END, terminated_on=day
            )


class TestAgreementPercentages:
    @pytest.mark.parametrize("field", ["discount_percent", "revenue_share_percent"])
    @pytest.mark.parametrize("value", ["-0.01", "100.01", "250"])
    def test_it_refuses_a_percentage_outside_0_to_100(self, field: str, value: str) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            AgreementFactory(**{field: Decimal(value)})

    @pytest.mark.parametrize("field", ["discount_percent", "revenue_share_percent"])
    @pytest.mark.parametrize("value", ["0", "12.50", "100"])
    def test_it_accepts_a_percentage_from_0_to_100(self, field: str, value: str) -> None:
        agreement = AgreementFactory(**{field: Decimal(value)})
        assert getattr(Agreement.objects.get(pk=agreement.pk), field) == Decimal(value)

    def test_it_accepts_an_agreement_without_commercial_percentages(self) -> None:
        AgreementFactory(discount_percent=None, revenue_share_percent=None)


class TestFeedback:
    @pytest.mark.parametrize("satisfaction", [0, 6])
    def test_it_refuses_a_satisfaction_outside_1_to_5(self, satisfaction: int) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            FeedbackFactory(satisfaction=satisfaction)

    @pytest.mark.parametrize("satisfaction", [1, 5])
    def test_it_accepts_a_satisfaction_from_1_to_5(self, satisfaction: int) -> None:
        FeedbackFactory(satisfaction=satisfaction)

    @pytest.mark.parametrize("nps", [-1, 11])
    def test_it_refuses_an_nps_outside_0_to_10(self, nps: int) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            FeedbackFactory(nps=nps)

    @pytest.mark.parametrize("nps", [0, 10, None])
    def test_it_accepts_an_nps_from_0_to_10_or_none(self, nps: int | None) -> None:
        feedback = FeedbackFactory(nps=nps)
        assert Feedback.objects.get(pk=feedback.pk).nps == nps

    def test_it_refuses_an_unknown_status(self) -> None:
        feedback = FeedbackFactory(status=FeedbackStatus.NEW)
        with pytest.raises(IntegrityError), transaction.atomic():
            Feedback.objects.filter(pk=feedback.pk).update(status="ignored")

    def test_it_refuses_an_unknown_category(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            FeedbackFactory(category="gossip")
