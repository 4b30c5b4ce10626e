"""Deal registration: matching, every conflict code and every transition, by hand-built cases
(tests/partners/registration_market.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import translation

from channels.models import CoverageAssignment
from crm.models import Account, ChannelKind, OutboundEmail
from partners.models import Partner, PartnerKind
from partners.registration_models import (
    ConflictCode,
    DealRegistration,
    ExtensionStatus,
    MatchReason,
    RegistrationEventKind,
    RegistrationStatus,
)
from partners.registration_services import (
    RegistrationRefused,
    partner_channel_manager_set,
    registration_approve,
    registration_decline_extension,
    registration_extend,
    registration_link_account,
    registration_mark_lost,
    registration_mark_won,
    registration_reject,
    registration_request_extension,
    registration_withdraw,
    registrations_expire,
    registrations_warn_expiring,
)
from partners.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    PartnerUserFactory,
    UserFactory,
    tier_set,
)
from tests.partners.registration_market import TODAY, RegistrationMarket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    # Registrations remember the language they were made in; these are made in English.
    with translation.override("en"):
        yield


def codes(registration: DealRegistration) -> list[str]:
    return registration.conflict_codes


class TestMatching:
    def test_it_matches_an_account_by_its_folded_name(self, registration_market) -> None:
        registration = registration_market.submit(company_name="ACME FINANCE LIMITED")
        assert registration.account == registration_market.clean
        assert registration.match_reason == MatchReason.NAME

    def test_it_matches_by_domain_through_an_earlier_registration(
        self, registration_market
    ) -> None:
        first = registration_market.submit(company_name="Acme Finance", website="acme.example")
        assert first.account == registration_market.clean
        second = registration_market.submit(
            user=registration_market.cast.partner_b_user,
            company_name="ACME Group Treasury",
            website="https://www.acme.example/contact",
        )
        assert second.account == registration_market.clean
        assert second.match_reason == MatchReason.DOMAIN

    def test_it_matches_the_partners_own_account_by_external_id(self, registration_market) -> None:
        registration = registration_market.submit(
            company_name="Whatever they call it", account="ACC-OWN-1", region=None, vertical=None
        )
        assert registration.account == registration_market.own
        assert registration.match_reason == MatchReason.EXTERNAL_ID
        assert registration.region == registration_market.own.region

    def test_it_answers_another_partners_account_id_as_if_it_did_not_exist(
        self, registration_market
    ) -> None:
        with pytest.raises(ValidationError) as theirs:
            registration_market.submit(account="ACC-THEIRS-1")
        with pytest.raises(ValidationError) as missing:
            registration_market.submit(account="ACC-NO-SUCH")
        assert theirs.value.message_dict == missing.value.message_dict
        assert DealRegistration.objects.count() == 0

    def test_it_keeps_an_unknown_company_as_a_prospect(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Quasar Robotics")
        assert registration.account is None
        assert registration.match_reason == MatchReason.NONE

    def test_it_links_no_account_when_the_name_matches_several(self, registration_market) -> None:
        AccountFactory(name="Acme Finance", region=registration_market.west)
        AccountFactory(name="Acme Finance", region=registration_market.west)
        registration = registration_market.submit(
            company_name="Acme Finance Ltd", region=registration_market.west
        )
        assert registration.account is None
        assert ConflictCode.POSSIBLE_DUPLICATE in codes(registration)
        assert "matches 3 accounts" in registration.conflicts[-1]["message"]

    def test_it_prefers_the_one_account_in_the_registrations_region(
        self, registration_market
    ) -> None:
        AccountFactory(name="Acme Finance", region=registration_market.west)
        registration = registration_market.submit(company_name="Acme Finance")
        assert registration.account == registration_market.clean


class TestConflicts:
    def test_a_clean_registration_has_none(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Acme Finance Ltd")
        assert registration.conflicts == []
        assert registration.needs_review is False

    def test_already_registered(self, registration_market) -> None:
        first = registration_market.submit(
            user=registration_market.cast.partner_b_user, company_name="Acme Finance"
        )
        registration_approve(registration=first, by=registration_market.cast.manager, today=TODAY)
        second = registration_market.submit(company_name="Acme Finance Ltd")
        # partner-b covers it now too, through the approval.
        assert codes(second) == [
            ConflictCode.ALREADY_REGISTERED,
            ConflictCode.COVERED_BY_OTHER_CHANNEL,
        ]
        assert "Beta Cloud holds approved registration" in second.conflicts[0]["message"]
        assert second.needs_review is True

    def test_covered_by_a_direct_rep(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Bolt Finance")
        assert codes(registration) == [ConflictCode.COVERED_BY_OTHER_CHANNEL]
        assert "Rita Rep" in registration.conflicts[0]["message"]

    def test_covered_by_another_partner_under_its_agreement(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Cobalt Bank")
        assert codes(registration) == [ConflictCode.COVERED_BY_OTHER_CHANNEL]
        assert "partner Beta Cloud" in registration.conflicts[0]["message"]

    def test_coverage_without_an_agreement_in_force_does_not_count(
        self, registration_market
    ) -> None:
        registration = registration_market.submit(company_name="Dune Insurance")
        assert registration.account == registration_market.lapsed_distributor
        assert codes(registration) == []

    def test_online_and_own_coverage_do_not_count(self, registration_market) -> None:
        CoverageAssignmentFactory(account=registration_market.own, kind=ChannelKind.ONLINE)
        registration = registration_market.submit(company_name="Ember Capital")
        assert codes(registration) == []

    def test_coverage_that_ended_does_not_count(self, registration_market) -> None:
        CoverageAssignment.objects.filter(account=registration_market.direct).update(
            end_date=TODAY - timedelta(days=1)
        )
        assert codes(registration_market.submit(company_name="Bolt Finance")) == []

    def test_exclusive_elsewhere(self, registration_market) -> None:
        registration_market.agreement_b.exclusive = True
        registration_market.agreement_b.save()
        registration = registration_market.submit(company_name="Acme Finance")
        assert codes(registration) == [ConflictCode.EXCLUSIVE_ELSEWHERE]
        assert "Beta Cloud holds exclusive agreement" in registration.conflicts[0]["message"]

    def test_exclusive_for_another_segment_does_not_count(self, registration_market) -> None:
        AgreementFactory(
            partner=registration_market.distributor,
            start_date=date(2026, 1, 1),
            exclusive=True,
            regions=[registration_market.west],
        )
        assert codes(registration_market.submit(company_name="Acme Finance")) == []

    def test_outside_agreement(self, registration_market) -> None:
        registration = registration_market.submit(
            company_name="Quasar Robotics", vertical=registration_market.retail
        )
        assert codes(registration) == [ConflictCode.OUTSIDE_AGREEMENT]
        assert "East / Retail" in registration.conflicts[0]["message"]

    def test_outside_agreement_uses_the_accounts_segment(self, registration_market) -> None:
        # The partner says West, but the account it matched is in East: East counts.
        registration = registration_market.submit(
            company_name="Acme Finance", region=registration_market.west
        )
        assert registration.account == registration_market.clean
        assert codes(registration) == []

    def test_outside_agreement_once_the_agreement_is_terminated(self, registration_market) -> None:
        agreement = registration_market.agreement_a
        agreement.status, agreement.terminated_on = "terminated", TODAY - timedelta(days=1)
        agreement.save()
        assert codes(registration_market.submit()) == [ConflictCode.OUTSIDE_AGREEMENT]

    def test_already_customer(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Granite Trust")
        assert codes(registration) == [ConflictCode.ALREADY_CUSTOMER]
        assert "became a customer on 1 Jun 2026" in registration.conflicts[0]["message"]

    def test_possible_duplicate_of_the_same_partners_pending_one(self, registration_market) -> None:
        registration_market.submit(company_name="Quasar Robotics")
        second = registration_market.submit(company_name="Quasar Robotics Inc.")
        assert codes(second) == [ConflictCode.POSSIBLE_DUPLICATE]
        assert "this partner's pending" in second.conflicts[0]["message"]

    def test_another_partners_pending_claim_is_no_conflict_until_approved(
        self, registration_market
    ) -> None:
        registration_market.submit(
            user=registration_market.cast.partner_b_user,
            company_name="Quasar Robotics",
            website="quasar.example",
        )
        second = registration_market.submit(company_name="Quasar Labs", website="quasar.example")
        assert codes(second) == []

    def test_possible_duplicate_of_a_company_matching_several_accounts(
        self, registration_market
    ) -> None:
        AccountFactory(name="Orbit Finance", region=registration_market.west)
        AccountFactory(name="Orbit Finance Ltd", region=registration_market.west)
        registration = registration_market.submit(company_name="Orbit Finance")
        assert codes(registration) == [ConflictCode.POSSIBLE_DUPLICATE]
        assert "matches 2 accounts" in registration.conflicts[0]["message"]

    def test_several_conflicts_come_in_code_order(self, registration_market) -> None:
        registration = registration_market.submit(
            company_name="Granite Trust", vertical=registration_market.retail
        )
        # The account's segment (East / Finance) counts, so only the conversion conflicts.
        assert codes(registration) == [ConflictCode.ALREADY_CUSTOMER]
        CoverageAssignmentFactory(
            account=registration_market.customer,
            kind=ChannelKind.DIRECT,
            rep=registration_market.cast.rep,
        )
        registration_market.agreement_b.exclusive = True
        registration_market.agreement_b.save()
        again = registration_market.submit(company_name="Granite Trust")
        assert codes(again) == [
            ConflictCode.COVERED_BY_OTHER_CHANNEL,
            ConflictCode.EXCLUSIVE_ELSEWHERE,
            ConflictCode.ALREADY_CUSTOMER,
            ConflictCode.POSSIBLE_DUPLICATE,
        ]


class TestSubmit:
    def test_it_records_the_submission_and_tells_the_partners_manager(
        self, registration_market
    ) -> None:
        cast = registration_market.cast
        partner_channel_manager_set(partner=cast.partner_a, manager=cast.manager)
        registration = registration_market.submit()
        event = registration.events.get()
        assert (event.kind, event.by, event.to_status) == (
            "submitted",
            cast.partner_a_user,
            "submitted",
        )
        email = OutboundEmail.objects.get(topic="reg-new")
        assert email.to == [cast.manager.email]
        assert "Nimbus Analytics Ltd" in email.subject and "No conflicts." in email.body_text

    def test_it_tells_every_sales_manager_when_nobody_looks_after_the_partner(
        self, registration_market
    ) -> None:
        other = UserFactory(username="manager-two", role="sales_manager")
        registration_market.submit()
        email = OutboundEmail.objects.get(topic="reg-new")
        assert email.to == sorted([registration_market.cast.manager.email, other.email])

    def test_it_refuses_a_channel_manager_who_is_not_a_sales_manager(self, cast) -> None:
        with pytest.raises(ValidationError):
            partner_channel_manager_set(partner=cast.partner_a, manager=cast.rep_user)

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"company_name": "  "}, "company_name"),
            ({"website": "not a site"}, "website"),
            ({"region": None}, "region"),
            ({"vertical": None}, "vertical"),
            ({"size_band": "huge"}, "size_band"),
            ({"amount": Decimal("-1")}, "amount"),
            ({"amount": Decimal("NaN")}, "amount"),
            ({"currency": "XYZ"}, "currency"),
            ({"expected_close_on": TODAY - timedelta(days=1)}, "expected_close_on"),
            ({"expected_close_on": date(2040, 1, 1)}, "expected_close_on"),
            ({"contact_email": "nobody@"}, "contact_email"),
            ({"description": "x" * 5001}, "description"),
        ],
    )
    def test_it_refuses_bad_details_by_field(self, registration_market, overrides, field) -> None:
        with pytest.raises(ValidationError) as error:
            registration_market.submit(**overrides)
        assert field in error.value.message_dict
        assert DealRegistration.objects.count() == 0

    @override_settings(REGISTRATION_SUBMISSIONS_PER_HOUR=2)
    def test_it_limits_submissions_per_hour(self, registration_market) -> None:
        registration_market.submit(company_name="One")
        registration_market.submit(company_name="Two")
        with pytest.raises(ValidationError, match="last hour"):
            registration_market.submit(company_name="Three")

    def test_it_refuses_users_of_a_deactivated_partner(self, registration_market) -> None:
        registration_market.cast.partner_a.is_active = False
        registration_market.cast.partner_a.save()
        with pytest.raises(ValidationError, match="active partner"):
            registration_market.submit()

    def test_it_announces_the_new_registration_to_webhooks(self, registration_market) -> None:
        WebhookEndpoint.objects.create(
            url="https://hooks.example/crm",
            secret="s" * 20,
            events=["deal_registration.status_changed"],
        )
        registration = registration_market.submit()
        delivery = WebhookDelivery.objects.get()
        data = delivery.payload["data"]["registration"]
        assert data["external_id"] == registration.external_id
        assert (data["status"], data["previous_status"]) == ("submitted", "")


class TestAutoApproval:
    def test_a_clean_registration_of_an_auto_approving_tier_is_approved_at_once(
        self, registration_market
    ) -> None:
        tier_set("registered", protection_days=60, extension_days=30, auto_approve=True)
        registration = registration_market.submit(company_name="Acme Finance")
        assert registration.status == RegistrationStatus.APPROVED
        assert registration.auto_approved and registration.decided_by is None
        assert registration.protected_until == TODAY + timedelta(days=60)
        assert [e.kind for e in registration.events.all()] == ["submitted", "auto_approved"]

    def test_a_registration_with_a_conflict_waits_for_a_manager(self, registration_market) -> None:
        tier_set("registered", protection_days=60, extension_days=30, auto_approve=True)
        registration = registration_market.submit(company_name="Bolt Finance")
        assert registration.status == RegistrationStatus.SUBMITTED

    def test_outside_the_agreement_is_never_approved_automatically(
        self, registration_market
    ) -> None:
        tier_set("registered", protection_days=60, extension_days=30, auto_approve=True)
        registration = registration_market.submit(vertical=registration_market.retail)
        assert registration.status == RegistrationStatus.SUBMITTED
        assert codes(registration) == [ConflictCode.OUTSIDE_AGREEMENT]

    def test_another_tier_is_not_approved_automatically(self, registration_market) -> None:
        tier_set("gold", protection_days=60, extension_days=30, auto_approve=True)
        assert registration_market.submit().status == RegistrationStatus.SUBMITTED

    def test_a_tier_the_programme_does_not_define_gets_the_default_protection(
        self, registration_market
    ) -> None:
        Partner.objects.filter(pk=registration_market.cast.partner_a.pk).update(tier="legacy")
        manager = registration_market.cast.manager
        approved = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=manager,
            today=TODAY,
        )
        assert approved.protected_until == TODAY + timedelta(days=90)


class TestApprove:
    def test_it_protects_the_account_and_makes_the_partner_cover_it(
        self, registration_market
    ) -> None:
        manager = registration_market.cast.manager
        registration = registration_market.submit(company_name="Acme Finance")
        approved = registration_approve(registration=registration, by=manager, today=TODAY)
        assert approved.status == RegistrationStatus.APPROVED
        assert (approved.protected_from, approved.protected_until) == (
            TODAY,
            TODAY + timedelta(days=90),
        )
        coverage = approved.coverage
        assert (coverage.account, coverage.partner, coverage.kind) == (
            registration_market.clean,
            registration_market.cast.partner_a,
            ChannelKind.PARTNER,
        )
        assert (coverage.start_date, coverage.end_date) == (TODAY, None)
        email = OutboundEmail.objects.get(topic="registration-approved")
        assert email.to == [registration_market.cast.partner_a_user.email]
        assert "protected until 2027-02-16" in email.body_text

    def test_the_tier_policy_and_the_manager_set_the_protection(self, registration_market) -> None:
        tier_set("registered", protection_days=45, extension_days=15, auto_approve=False)
        manager = registration_market.cast.manager
        by_tier = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=manager,
            today=TODAY,
        )
        assert by_tier.protected_until == TODAY + timedelta(days=45)
        by_manager = registration_approve(
            registration=registration_market.submit(company_name="Quasar"),
            by=manager,
            protected_days=10,
            today=TODAY,
        )
        assert by_manager.protected_until == TODAY + timedelta(days=10)
        with pytest.raises(ValidationError, match="1 to 730"):
            registration_approve(
                registration=registration_market.submit(company_name="Zenith"),
                by=manager,
                protected_days=731,
                today=TODAY,
            )

    def test_it_makes_a_prospect_an_account_in_its_segment(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Quasar Robotics Co., Ltd.")
        approved = registration_approve(
            registration=registration, by=registration_market.cast.manager, today=TODAY
        )
        account = approved.account
        assert approved.match_reason == MatchReason.CREATED
        assert account.external_id.startswith("PRS-")
        assert (account.name, account.name_key, account.entered_on) == (
            "Quasar Robotics Co., Ltd.",
            "quasar robotics",
            TODAY,
        )
        assert (account.region, account.vertical, account.size_band) == (
            registration_market.east,
            registration_market.finance,
            "mid_market",
        )
        assert approved.coverage.account == account

    def test_it_keeps_coverage_the_partner_had_already(self, registration_market) -> None:
        registration = registration_market.submit(account="ACC-OWN-1", region=None, vertical=None)
        approved = registration_approve(
            registration=registration, by=registration_market.cast.manager, today=TODAY
        )
        assert approved.coverage is None
        assert CoverageAssignment.objects.filter(account=registration_market.own).count() == 1

    def test_it_approves_despite_conflicts_that_only_inform(self, registration_market) -> None:
        registration = registration_market.submit(company_name="Bolt Finance")
        approved = registration_approve(
            registration=registration, by=registration_market.cast.manager, today=TODAY
        )
        assert approved.status == RegistrationStatus.APPROVED
        assert codes(approved) == [ConflictCode.COVERED_BY_OTHER_CHANNEL]

    def test_it_refuses_a_rival_of_an_approved_registration(self, registration_market) -> None:
        manager = registration_market.cast.manager
        first = registration_market.submit(
            user=registration_market.cast.partner_b_user, company_name="Acme Finance"
        )
        second = registration_market.submit(company_name="Acme Finance")
        registration_approve(registration=first, by=manager, today=TODAY)
        with pytest.raises(RegistrationRefused) as refusal:
            registration_approve(registration=second, by=manager, today=TODAY)
        assert refusal.value.code == ConflictCode.ALREADY_REGISTERED
        second.refresh_from_db()
        assert second.status == RegistrationStatus.SUBMITTED

    def test_it_expires_a_rival_whose_protection_has_ended_before_approving(
        self, registration_market
    ) -> None:
        manager = registration_market.cast.manager
        first = registration_market.submit(
            user=registration_market.cast.partner_b_user, company_name="Acme Finance"
        )
        registration_approve(registration=first, by=manager, protected_days=5, today=TODAY)
        second = registration_market.submit(company_name="Acme Finance")
        later = TODAY + timedelta(days=6)
        approved = registration_approve(registration=second, by=manager, today=later)
        first.refresh_from_db()
        assert first.status == RegistrationStatus.EXPIRED
        assert first.coverage.end_date == TODAY + timedelta(days=5)
        assert approved.status == RegistrationStatus.APPROVED

    @pytest.mark.parametrize("status", ["rejected", "withdrawn", "expired", "lost"])
    def test_it_approves_only_submitted_registrations(self, registration_market, status) -> None:
        registration = registration_market.submit()
        DealRegistration.objects.filter(pk=registration.pk).update(status=status)
        with pytest.raises(RegistrationRefused) as refusal:
            registration_approve(
                registration=registration, by=registration_market.cast.manager, today=TODAY
            )
        assert refusal.value.code == "invalid_state"

    def test_it_asks_for_the_right_account_when_the_name_matches_several(
        self, registration_market
    ) -> None:
        for _ in range(2):
            AccountFactory(name="Orbit Finance", region=registration_market.west)
        registration = registration_market.submit(company_name="Orbit Finance")
        with pytest.raises(RegistrationRefused, match="matches 2 accounts"):
            registration_approve(
                registration=registration, by=registration_market.cast.manager, today=TODAY
            )
        account = Account.objects.filter(name="Orbit Finance").first()
        registration_link_account(
            registration=registration, by=registration_market.cast.manager, account=account
        )
        approved = registration_approve(
            registration=registration, by=registration_market.cast.manager, today=TODAY
        )
        assert approved.account == account
        assert approved.match_reason == MatchReason.MANAGER

    def test_the_database_holds_one_approved_registration_per_account(
        self, registration_market
    ) -> None:
        manager = registration_market.cast.manager
        first = registration_market.submit(company_name="Acme Finance")
        second = registration_market.submit(
            user=registration_market.cast.partner_b_user, company_name="Acme Finance"
        )
        registration_approve(registration=first, by=manager, today=TODAY)
        with pytest.raises(IntegrityError), transaction.atomic():
            DealRegistration.objects.filter(pk=second.pk).update(
                status="approved", protected_from=TODAY, protected_until=TODAY
            )


class TestOtherDecisions:
    def test_reject_needs_a_reason_the_partner_reads(self, registration_market) -> None:
        manager = registration_market.cast.manager
        registration = registration_market.submit()
        with pytest.raises(ValidationError) as error:
            registration_reject(registration=registration, by=manager, reason=" ")
        assert "reason" in error.value.message_dict
        rejected = registration_reject(
            registration=registration, by=manager, reason="Direct team is in the final round."
        )
        assert (rejected.status, rejected.decision_reason) == (
            "rejected",
            "Direct team is in the final round.",
        )
        email = OutboundEmail.objects.get(topic="registration-rejected")
        assert "Direct team is in the final round." in email.body_text
        with pytest.raises(RegistrationRefused):
            registration_reject(registration=registration, by=manager, reason="again")

    def test_won_converts_the_account_through_the_partners_channel(
        self, registration_market
    ) -> None:
        manager = registration_market.cast.manager
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=manager,
            today=TODAY,
        )
        won = registration_mark_won(
            registration=registration,
            by=manager,
            amount=Decimal("99000"),
            closed_on=TODAY,
            today=TODAY,
        )
        assert (won.status, won.won_amount, won.closed_on) == ("won", Decimal("99000"), TODAY)
        account = Account.objects.get(pk=registration_market.clean.pk)
        assert (account.converted_on, account.converted_via) == (TODAY, ChannelKind.PARTNER)
        assert won.coverage.end_date is None, "the partner keeps working its customer"

    def test_won_keeps_an_earlier_conversion(self, registration_market) -> None:
        manager = registration_market.cast.manager
        registration = registration_approve(
            registration=registration_market.submit(company_name="Granite Trust"),
            by=manager,
            today=TODAY,
        )
        registration_mark_won(
            registration=registration, by=manager, amount=Decimal(1), closed_on=TODAY, today=TODAY
        )
        account = Account.objects.get(pk=registration_market.customer.pk)
        assert (account.converted_on, account.converted_via) == (date(2026, 6, 1), "direct")

    def test_won_through_a_distributor_counts_for_distribution(self, registration_market) -> None:
        distributor = registration_market.distributor
        AgreementFactory(partner=distributor, start_date=date(2026, 1, 1))
        user = PartnerUserFactory(partner=distributor).user
        registration = registration_market.submit(user=user, company_name="Acme Finance")
        manager = registration_market.cast.manager
        approved = registration_approve(registration=registration, by=manager, today=TODAY)
        assert approved.coverage.kind == ChannelKind.DISTRIBUTION
        registration_mark_won(
            registration=registration, by=manager, amount=Decimal(5), closed_on=TODAY, today=TODAY
        )
        account = Account.objects.get(pk=registration_market.clean.pk)
        assert account.converted_via == PartnerKind.DISTRIBUTION

    def test_won_refuses_bad_dates_and_undecided_registrations(self, registration_market) -> None:
        manager = registration_market.cast.manager
        registration = registration_market.submit()
        with pytest.raises(RegistrationRefused):
            registration_mark_won(
                registration=registration,
                by=manager,
                amount=Decimal(1),
                closed_on=TODAY,
                today=TODAY,
            )
        registration_approve(registration=registration, by=manager, today=TODAY)
        for closed_on in (TODAY + timedelta(days=1), TODAY - timedelta(days=30)):
            with pytest.raises(ValidationError) as error:
                registration_mark_won(
                    registration=registration,
                    by=manager,
                    amount=Decimal(1),
                    closed_on=closed_on,
                    today=TODAY,
                )
            assert "closed_on" in error.value.message_dict

    def test_lost_ends_the_coverage_the_approval_created(self, registration_market) -> None:
        manager = registration_market.cast.manager
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=manager,
            today=TODAY,
        )
        later = TODAY + timedelta(days=20)
        lost = registration_mark_lost(
            registration=registration, by=manager, reason="Went with a rival.", today=later
        )
        assert (lost.status, lost.closed_on) == ("lost", later)
        assert CoverageAssignment.objects.get(pk=registration.coverage_id).end_date == later
        account = Account.objects.get(pk=registration_market.clean.pk)
        assert account.converted_on is None

    def test_withdrawn_by_the_partner_only(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=cast.manager,
            today=TODAY,
        )
        with pytest.raises(ValidationError):
            registration_withdraw(registration=registration, user=cast.partner_b_user)
        withdrawn = registration_withdraw(
            registration=registration,
            user=cast.partner_a_user,
            reason="Customer paused.",
            today=TODAY,
        )
        assert withdrawn.status == "withdrawn"
        assert CoverageAssignment.objects.get(pk=registration.coverage_id).end_date == TODAY
        assert OutboundEmail.objects.filter(topic="reg-withdrawn").exists()
        with pytest.raises(RegistrationRefused):
            registration_withdraw(registration=registration, user=cast.partner_a_user)


class TestExtension:
    def test_it_extends_once_on_request(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=cast.manager,
            today=TODAY,
        )
        requested = registration_request_extension(
            registration=registration, user=cast.partner_a_user, note="Board meets in March."
        )
        assert requested.extension_status == ExtensionStatus.REQUESTED
        assert OutboundEmail.objects.filter(topic="reg-extension").exists()
        with pytest.raises(RegistrationRefused) as again:
            registration_request_extension(registration=registration, user=cast.partner_a_user)
        assert again.value.code == "already_requested"
        extended = registration_extend(registration=registration, by=cast.manager)
        assert extended.protected_until == TODAY + timedelta(days=90 + 30)
        assert extended.extension_status == ExtensionStatus.GRANTED
        with pytest.raises(RegistrationRefused) as twice:
            registration_extend(registration=registration, by=cast.manager, days=10)
        assert twice.value.code == "already_extended"
        with pytest.raises(RegistrationRefused):
            registration_request_extension(registration=registration, user=cast.partner_a_user)

    def test_a_declined_request_is_not_granted_later(self, registration_market) -> None:
        cast = registration_market.cast
        registration = registration_approve(
            registration=registration_market.submit(company_name="Acme Finance"),
            by=cast.manager,
            today=TODAY,
        )
        registration_request_extension(registration=registration, user=cast.partner_a_user)
        declined = registration_decline_extension(
            registration=registration, by=cast.manager, reason="The deal has stalled."
        )
        assert declined.extension_status == ExtensionStatus.DECLINED
        email = OutboundEmail.objects.get(topic="registration-extension_declined")
        assert "The deal has stalled." in email.body_text
        with pytest.raises(RegistrationRefused):
            registration_extend(registration=registration, by=cast.manager)

    def test_only_approved_registrations_are_extended(self, registration_market) -> None:
        registration = registration_market.submit()
        with pytest.raises(RegistrationRefused):
            registration_extend(registration=registration, by=registration_market.cast.manager)


class TestDailyJob:
    def _approved(self, market: RegistrationMarket, days: int) -> DealRegistration:
        return registration_approve(
            registration=market.submit(company_name="Acme Finance"),
            by=market.cast.manager,
            protected_days=days,
            today=TODAY,
        )

    def test_it_expires_registrations_past_their_protection(self, registration_market) -> None:
        registration = self._approved(registration_market, 10)
        end = TODAY + timedelta(days=10)
        assert registrations_expire(today=end) == 0, "protected through its last day"
        assert registrations_expire(today=end + timedelta(days=1)) == 1
        registration.refresh_from_db()
        assert registration.status == RegistrationStatus.EXPIRED
        assert registration.coverage.end_date == end
        assert registrations_expire(today=end + timedelta(days=2)) == 0
        assert registration.events.filter(kind=RegistrationEventKind.EXPIRED).count() == 1
        assert OutboundEmail.objects.filter(topic="registration-expired").count() == 1

    def test_it_warns_the_partner_once_fourteen_days_before(self, registration_market) -> None:
        registration = self._approved(registration_market, 30)
        end = TODAY + timedelta(days=30)
        assert registrations_warn_expiring(today=end - timedelta(days=15)) == 0
        assert registrations_warn_expiring(today=end - timedelta(days=14)) == 1
        assert registrations_warn_expiring(today=end - timedelta(days=13)) == 0
        email = OutboundEmail.objects.get(topic="registration-expiring")
        assert email.to == [registration_market.cast.partner_a_user.email]
        assert f"ends on {end:%Y-%m-%d}" in email.body_text
        registration_extend(registration=registration, by=registration_market.cast.manager, days=5)
        assert registrations_warn_expiring(today=end - timedelta(days=5)) == 1, "a new end"

    def test_a_missed_day_still_warns(self, registration_market) -> None:
        self._approved(registration_market, 30)
        assert registrations_warn_expiring(today=TODAY + timedelta(days=20)) == 1
