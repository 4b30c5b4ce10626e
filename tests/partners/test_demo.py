"""The demo market (`make demo`, the README's first command).

Seeding a market takes seconds, so the tests that only read one share a single market per
module (`demo_market`). The tests that write (reseeding, refreshing the users' passwords) run
first, each in its own savepoint inside the module's transaction, and roll back: the readers
after them check passwords and the whole market, so a write that leaked would fail them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.http import HttpRequest
from pytest_django import DjangoDbBlocker

from channels.models import CoverageAssignment
from crm.models import Account, ChannelKind, OutboundEmail, SizeBand
from partners.demo import DemoResult, demo_reset, demo_seed
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    Partner,
)
from partners.registration_demo import demo_registrations
from partners.registration_models import ConflictCode, DealRegistration, RegistrationStatus
from tests.conftest import migration_rows_restore

TODAY = date(2026, 11, 22)
ACCOUNTS = 600
PASSWORD = "demo-password-1"
CAST = ["manager", "rep", "exec", "partner-a", "partner-b"]


def _market_fingerprint() -> list[tuple]:
    return list(
        Account.objects.order_by("external_id").values_list(
            "external_id",
            "region__code",
            "vertical__code",
            "size_band",
            "entered_on",
            "archived_on",
            "converted_on",
            "converted_via",
        )
    )


@pytest.fixture(scope="module")
def demo_market(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[DemoResult]:
    """One demo market for the module, in a transaction rolled back at its end; each test
    runs in a savepoint of its own inside it (pytest-django's `db`)."""
    with django_db_blocker.unblock(), transaction.atomic():
        # The rows migrations make, which a transactional test's flush may have emptied.
        migration_rows_restore()
        result = demo_seed(accounts=ACCOUNTS, password=PASSWORD, today=TODAY)
        with django_db_blocker.block():
            yield result
        transaction.set_rollback(True)


pytestmark = pytest.mark.django_db


class TestDemoSeed:
    # The writers first: see the module's docstring.

    def test_it_is_deterministic_for_the_same_seed_and_day(self, demo_market: DemoResult) -> None:
        first = _market_fingerprint()
        assert len(first) >= ACCOUNTS
        demo_reset()
        assert not Account.objects.exists()
        demo_seed(accounts=ACCOUNTS, password=PASSWORD, today=TODAY)
        assert _market_fingerprint() == first

    def test_it_keeps_an_existing_market_and_refreshes_the_users(
        self, demo_market: DemoResult
    ) -> None:
        before = _market_fingerprint()
        result = demo_seed(accounts=999, password="second-password-2", today=TODAY)
        assert result.created is False
        assert _market_fingerprint() == before
        assert (
            authenticate(HttpRequest(), username="manager", password="second-password-2")
            is not None
        )

    def test_it_prints_the_logins(
        self, demo_market: DemoResult, capsys: pytest.CaptureFixture[str]
    ) -> None:
        call_command("seed_demo", "--accounts", "100", "--password", "printed-password-1")
        out = capsys.readouterr().out
        assert "printed-password-1" in out
        for username in CAST:
            assert username in out

    # The readers.

    def test_it_creates_a_market_in_the_domains_words(self, demo_market: DemoResult) -> None:
        assert demo_market.created is True
        # Approved prospects of the demo registrations become accounts too.
        assert Account.objects.exclude(external_id__startswith="PRS-").count() == ACCOUNTS
        assert set(Account.objects.values_list("size_band", flat=True)) == set(SizeBand.values)
        assert Partner.objects.filter(channel_kind="partner").count() >= 25
        assert Partner.objects.filter(channel_kind="distribution").count() >= 6
        statuses = set(Agreement.objects.values_list("status", flat=True))
        assert statuses == set(AgreementStatus.values)
        kinds = set(CoverageAssignment.objects.values_list("kind", flat=True))
        assert kinds == set(ChannelKind.values)
        uncovered = Account.objects.filter(coverage_assignments=None).count()
        assert 0 < uncovered < ACCOUNTS, "white space exists but is not everything"
        assert Account.objects.exclude(converted_on=None).exists()
        assert (
            Feedback.objects.exists()
            and FeedbackReply.objects.exists()
            and FeedbackNote.objects.exists()
        )

    def test_it_creates_every_demo_user_with_the_given_password(
        self, demo_market: DemoResult
    ) -> None:
        assert [login[0] for login in demo_market.logins] == CAST
        for username, _, _ in demo_market.logins:
            assert authenticate(HttpRequest(), username=username, password=PASSWORD) is not None
        partner_a = authenticate(
            HttpRequest(), username="partner-a", password=PASSWORD
        ).partner_membership.partner
        partner_b = authenticate(
            HttpRequest(), username="partner-b", password=PASSWORD
        ).partner_membership.partner
        assert partner_a != partner_b

    def test_it_gives_the_demo_rep_accounts_to_work(self, demo_market: DemoResult) -> None:
        assert CoverageAssignment.objects.filter(rep__user__username="rep").exists()


def test_the_demo_has_revenue_of_every_channel_in_two_foreign_currencies(
    demo_market: DemoResult,
) -> None:
    from analytics import reports
    from channels.models import Opportunity, OpportunityStage
    from crm.models import CurrencyRate

    demo = Opportunity.objects.filter(external_id__startswith="DEMO-OPP-")

    assert set(demo.values_list("channel", flat=True)) == set(ChannelKind.values)
    assert set(demo.values_list("stage", flat=True)) == set(OpportunityStage.values)
    assert {"EUR", "CNY"} <= set(demo.values_list("currency", flat=True))
    assert set(CurrencyRate.objects.values_list("currency", flat=True)) == {"EUR", "CNY"}
    assert demo.filter(recurring=True, stage="won", ends_on__isnull=False).exists()
    assert demo.filter(recurring=True, stage="won", ends_on__isnull=True).exists()
    assert all(deal.events.exists() for deal in demo[:20])
    call_command("compute_metrics", "--week", "2026-W46", "--no-progress", stdout=StringIO())
    assert reports.revenue_problem("2026-W46") == ""
    (total,) = reports.revenue_rollup(["2026-W46"])
    assert total.won_amount > 0 and total.mrr > 0 and total.pipeline_amount > 0
    assert total.influenced_amount > 0


def test_the_demo_has_registrations_in_every_state_and_with_every_conflict(
    demo_market: DemoResult,
) -> None:
    registrations = list(DealRegistration.objects.all())
    assert {r.status for r in registrations} == set(RegistrationStatus.values)
    assert {code for r in registrations for code in r.conflict_codes} == set(ConflictCode.values)
    partner_a = DealRegistration.objects.filter(partner__portal_users__user__username="partner-a")
    assert partner_a.exists(), "the demo partner user has registrations to look at"
    assert not OutboundEmail.objects.filter(topic__startswith="reg").exists()
    # The weekly figures count a decision in the week it was made: an automatic approval was
    # made as its registration arrived, on the demo's past day, not when the demo ran.
    automatic = [r for r in registrations if r.auto_approved]
    assert automatic
    assert all(r.decided_at == r.submitted_at for r in automatic)
    # Every decision stands on a day of the demo's past, never after its "today".
    late = [r.pk for r in registrations if r.decided_at and r.decided_at.date() > TODAY]
    assert not late
    assert demo_registrations(today=TODAY) == 0, "a second run adds none"
