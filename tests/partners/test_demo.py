from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.http import HttpRequest

from channels.models import CoverageAssignment
from crm.models import Account, ChannelKind, SizeBand
from partners.demo import demo_reset, demo_seed
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    Partner,
)

TODAY = date(2026, 11, 22)


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


@pytest.mark.django_db
class TestDemoSeed:
    def test_it_creates_a_market_in_the_domains_words(self) -> None:
        demo_seed(accounts=600, password="demo-password-1", today=TODAY)
        # Approved prospects of the demo registrations become accounts too.
        assert Account.objects.exclude(external_id__startswith="PRS-").count() == 600
        assert set(Account.objects.values_list("size_band", flat=True)) == set(SizeBand.values)
        assert Partner.objects.filter(channel_kind="partner").count() >= 25
        assert Partner.objects.filter(channel_kind="distribution").count() >= 6
        statuses = set(Agreement.objects.values_list("status", flat=True))
        assert statuses == set(AgreementStatus.values)
        kinds = set(CoverageAssignment.objects.values_list("kind", flat=True))
        assert kinds == set(ChannelKind.values)
        uncovered = Account.objects.filter(coverage_assignments=None).count()
        assert 0 < uncovered < 600, "white space exists but is not everything"
        assert Account.objects.exclude(converted_on=None).exists()
        assert (
            Feedback.objects.exists()
            and FeedbackReply.objects.exists()
            and FeedbackNote.objects.exists()
        )

    def test_it_creates_every_demo_user_with_the_given_password(self) -> None:
        result = demo_seed(accounts=200, password="demo-password-1", today=TODAY)
        assert [login[0] for login in result.logins] == [
            "manager",
            "rep",
            "exec",
            "partner-a",
            "partner-b",
        ]
        for username, _, _ in result.logins:
            assert (
                authenticate(HttpRequest(), username=username, password="demo-password-1")
                is not None
            )
        partner_a = authenticate(
            HttpRequest(), username="partner-a", password="demo-password-1"
        ).partner_membership.partner
        partner_b = authenticate(
            HttpRequest(), username="partner-b", password="demo-password-1"
        ).partner_membership.partner
        assert partner_a != partner_b

    def test_it_gives_the_demo_rep_accounts_to_work(self) -> None:
        demo_seed(accounts=1500, password="demo-password-1", today=TODAY)
        assert CoverageAssignment.objects.filter(rep__user__username="rep").exists()

    def test_it_is_deterministic_for_the_same_seed_and_day(self) -> None:
        demo_seed(accounts=300, password="demo-password-1", today=TODAY, seed=7)
        first = _market_fingerprint()
        demo_reset()
        demo_seed(accounts=300, password="demo-password-1", today=TODAY, seed=7)
        assert _market_fingerprint() == first

    def test_it_keeps_an_existing_market_and_refreshes_the_users(self) -> None:
        demo_seed(accounts=200, password="first-password-1", today=TODAY)
        before = _market_fingerprint()
        result = demo_seed(accounts=999, password="second-password-2", today=TODAY)
        assert result.created is False
        assert _market_fingerprint() == before
        assert (
            authenticate(HttpRequest(), username="manager", password="second-password-2")
            is not None
        )

    def test_it_prints_the_logins(self, capsys: pytest.CaptureFixture[str]) -> None:
        call_command("seed_demo", "--accounts", "100", "--password", "printed-password-1")
        out = capsys.readouterr().out
        assert "printed-password-1" in out
        for username in ["manager", "rep", "exec", "partner-a", "partner-b"]:
            assert username in out


@pytest.mark.django_db
def test_the_demo_has_revenue_of_every_channel_in_two_foreign_currencies() -> None:
    from io import StringIO

    from analytics import reports
    from channels.models import Opportunity, OpportunityStage
    from crm.models import CurrencyRate

    demo_seed(accounts=600, password="demo-password-1", today=TODAY)
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
