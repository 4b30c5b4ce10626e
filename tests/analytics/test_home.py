"""The workspace home: what a manager, an executive and a rep start the day with."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from analytics.models import PartnerSnapshot
from channels.models import CoverageAssignment
from partners.registration_services import (
    DealDetails,
    registration_reject,
    registration_submit,
)
from tests.cast import Cast, signed_in
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    FeedbackReplyFactory,
    RegionFactory,
    VerticalFactory,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47
TODAY = date(2026, 11, 18)

pytestmark = pytest.mark.django_db


@pytest.fixture
def day(cast: Cast) -> Any:
    """Agreements falling due, feedback answered and not, coverage outside an agreement, and
    two closed weeks in which partner A's coverage fell."""
    with time_machine.travel(NOW, tick=False) as traveller:
        east, west = RegionFactory(code="east", name="East"), RegionFactory(code="west")
        fin = VerticalFactory(code="fin", name="Finance")
        for days, notice in ((10, 30), (45, 30), (80, 60), (200, 150)):
            AgreementFactory(
                partner=cast.partner_b,
                start_date=TODAY - timedelta(days=300),
                end_date=TODAY + timedelta(days=days),
                notice_days=notice,
            )
        agreement = AgreementFactory(
            partner=cast.partner_a,
            regions=[east],
            start_date=TODAY - timedelta(days=300),
            end_date=TODAY + timedelta(days=400),
        )
        accounts = [
            AccountFactory(region=(east, west)[n % 2], vertical=fin, entered_on=date(2025, 1, 1))
            for n in range(8)
        ]
        for account in accounts:
            CoverageAssignmentFactory(
                account=account,
                kind="partner",
                partner=cast.partner_a,
                start_date=date(2026, 1, 1),
                end_date=date(2026, 11, 12) if account.pk == accounts[0].pk else None,
            )
        for days_ago, subject in ((20, "Oldest waiting"), (3, "Newer waiting"), (5, "Answered")):
            traveller.move_to(NOW - timedelta(days=days_ago))
            entry = FeedbackFactory(partner=cast.partner_a, subject=subject)
            if subject == "Answered":
                FeedbackReplyFactory(feedback=entry, author=cast.manager)
        # Deal registrations waiting: due a week ago, due tomorrow, due on Friday; one decided.
        for days_ago, company in ((8, "Overdue Deal Co"), (1, "Due Soon Co"), (0, "Fresh Deal Co")):
            traveller.move_to(NOW - timedelta(days=days_ago))
            registration_submit(
                user=cast.partner_a_user,
                details=DealDetails(
                    company_name=company, region=east, vertical=fin, size_band="smb"
                ),
            )
        traveller.move_to(NOW - timedelta(days=9))
        registration_reject(
            registration=registration_submit(
                user=cast.partner_a_user,
                details=DealDetails(
                    company_name="Decided Deal Co", region=east, vertical=fin, size_band="smb"
                ),
            ),
            by=cast.manager,
            reason="Not ours.",
        )
        traveller.move_to(NOW)
        FeedbackFactory(partner=cast.partner_a, subject="Closed", status="closed")
        call_command(
            "compute_metrics", "--from", "2026-W45", "--to", "2026-W46", stdout=io.StringIO()
        )
        yield {"agreement": agreement, "accounts": accounts}


def _count(html: str, testid: str) -> tuple[str, int]:
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*data-testid="{testid}"[^>]*>([\d,]+)</a>', html)
    if match is None:
        match = re.search(rf'<a href="([^"]+)" data-testid="{testid}">([\d,]+)</a>', html)
    assert match, testid
    return match.group(1).replace("&amp;", "&"), int(match.group(2).replace(",", ""))


def _listed(client: Client, url: str) -> int:
    response = client.get(url)
    context = response.context
    if "page" in context and hasattr(context["page"], "paginator"):
        return context["page"].paginator.count
    return len(context["rows"])


@pytest.mark.parametrize("who", ["manager", "executive"])
def test_every_count_on_the_home_links_to_a_list_of_exactly_that_count(
    day: Any, cast: Cast, who: str
) -> None:
    client = signed_in(getattr(cast, who))
    with time_machine.travel(NOW, tick=False):
        html = client.get("/workspace/").content.decode()
        found = {}
        for testid in [
            *(f"due-{by}-{days}" for by in ("end", "notice") for days in (30, 60, 90)),
            "waiting-count",
            "outside-count",
            "registrations-waiting-count",
            "registrations-due-count",
            "registrations-overdue-count",
        ]:
            url, shown = _count(html, testid)
            assert _listed(client, url) == shown, testid
            found[testid] = shown
        for url, shown in re.findall(
            r'<a href="([^"]+)" data-testid="white-space-count">([\d,]+)</a>', html
        ):
            assert _listed(client, url.replace("&amp;", "&")) == int(shown)
    # Ending within 30/60/90 days: 1, 2, 3. Notice deadlines (end less notice) fall in 15,
    # 20 and 50 days: 2, 3, 3 (the one already passed is not due).
    assert [found[f"due-end-{d}"] for d in (30, 60, 90)] == [1, 2, 3]
    assert [found[f"due-notice-{d}"] for d in (30, 60, 90)] == [2, 3, 3]
    assert found["waiting-count"] == 2
    assert found["registrations-waiting-count"] == 3
    assert found["registrations-due-count"] == 2  # overdue, or due by the next business day
    assert found["registrations-overdue-count"] == 1
    # Partner A covers eight accounts and its agreement grants east only: the four west ones
    # are assigned outside it (the east one whose assignment ended does not matter).
    assert found["outside-count"] == 4


def test_it_lists_the_oldest_feedback_waiting_first_with_its_age(day: Any, cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        html = signed_in(cast.manager).get("/workspace/").content.decode()
    waiting = html[html.index('data-testid="home-waiting"') :]
    assert waiting.index("Oldest waiting") < waiting.index("Newer waiting")
    assert "20 days old" in waiting and "3 days old" in waiting
    assert "Answered" not in waiting and "Closed" not in waiting


def test_it_lists_the_oldest_registrations_waiting_with_their_age(day: Any, cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        html = signed_in(cast.manager).get("/workspace/").content.decode()
    waiting = html[html.index('data-testid="home-registrations"') :]
    waiting = waiting[: waiting.index("</section>")]
    assert waiting.index("Overdue Deal Co") < waiting.index("Due Soon Co")
    assert waiting.index("Due Soon Co") < waiting.index("Fresh Deal Co")
    assert "6 business days old" in waiting and "1 business day old" in waiting
    assert "Decided Deal Co" not in waiting


def test_it_names_the_partners_whose_coverage_fell_this_week(day: Any, cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        response = signed_in(cast.manager).get("/workspace/")
    fell = response.context["fell"]
    before, after = (
        PartnerSnapshot.objects.get(partner=cast.partner_a, week=week).covered_accounts
        for week in ("2026-W45", "2026-W46")
    )
    assert after < before
    assert [row["name"] for row in fell] == [cast.partner_a.name]
    assert (fell[0]["covered_before"], fell[0]["covered_now"]) == (before, after)


def test_a_rep_lands_on_a_home_of_their_own_accounts_and_this_weeks_changes(
    cast: Cast,
) -> None:
    cast.rep_user.first_name, cast.rep_user.last_name = "Rita", "Rep"
    cast.rep_user.save()
    with time_machine.travel(NOW, tick=False):
        mine = AccountFactory(name="Mine Since Monday", entered_on=date(2025, 1, 1))
        won = AccountFactory(
            name="Won This Week",
            entered_on=date(2025, 1, 1),
            converted_on=TODAY - timedelta(days=1),
            converted_via="direct",
        )
        gone = AccountFactory(name="Handed Over", entered_on=date(2025, 1, 1))
        AccountFactory(name="Someone Elses")
        for account, start, end in (
            (mine, TODAY - timedelta(days=2), None),
            (won, date(2026, 1, 1), None),
            (gone, date(2026, 1, 1), TODAY - timedelta(days=1)),
        ):
            CoverageAssignment.objects.create(
                account=account, kind="direct", rep=cast.rep, start_date=start, end_date=end
            )
        CoverageAssignmentFactory(account=won, kind="online", start_date=TODAY - timedelta(days=3))
        client = signed_in(cast.rep_user)
        landing = client.get("/")
        assert landing["Location"] == "/workspace/"
        response = client.get("/workspace/")
        html = response.content.decode()
        url, shown = _count(html, "rep-accounts")
        assert shown == 2 == _listed(client, url)
    changes = html[html.index('data-testid="rep-changes"') :]
    assert "Mine Since Monday" in changes and "Won This Week" in changes
    assert "Handed Over" in changes and "Someone Elses" not in html
    assert 'data-testid="signed-in-as" title="rep">Rita Rep<' in html
