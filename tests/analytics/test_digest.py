from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client

from analytics import digest
from crm.models import ChannelKind, OutboundEmail
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    RegionFactory,
    UserFactory,
    VerticalFactory,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47
WEEK = "2026-W46"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Snapshot figures are cached under the run version, which frozen time makes repeat.
    cache.clear()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def market(cast: Cast) -> Any:
    with time_machine.travel(NOW, tick=False):
        east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
        fin = VerticalFactory(code="FIN")
        for _ in range(3):
            AccountFactory(region=east, vertical=fin)
        AccountFactory(region=west, vertical=fin)
        # Covered from the middle of 2026-W46: EAST moves, WEST does not.
        CoverageAssignmentFactory(
            account=AccountFactory(region=east, vertical=fin),
            kind=ChannelKind.ONLINE,
            start_date=date(2026, 11, 11),
        )
        AgreementFactory(
            partner=cast.partner_a,
            external_id="AG-ENDING",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 20),
        )
        run("compute_metrics", "--last", "3", "--no-progress")
        yield


def test_it_sends_one_html_and_text_email_to_each_active_executive(
    market: None, cast: Cast, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SITE_URL = "https://crm.example.com"
    UserFactory(username="exec2", role="executive")
    UserFactory(username="gone", role="executive", is_active=False)
    UserFactory(username="noaddress", role="executive", email="")
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        output = run("send_digest", "--week", WEEK)
    assert "exec@example.com" in output and "exec2@example.com" in output
    assert sorted(m.to[0] for m in mail.outbox) == ["exec2@example.com", "exec@example.com"]
    message = mail.outbox[0]
    assert message.subject == "Weekly coverage digest, 2026-W46"
    html = message.alternatives[0][0]
    assert "https://crm.example.com/dashboard/?week=2026-W46" in message.body
    assert 'href="https://crm.example.com/dashboard/?week=2026-W46"' in html
    assert "Addressable accounts: 5 (+0)" in message.body
    assert "Coverage: 20.0 % (+20.0 pp)" in message.body
    assert "- Region EAST: 25.0 % (+25.0 pp)" in message.body
    assert "WEST" not in message.body.split("Biggest movers by vertical")[0].split("region")[1]
    assert "AG-ENDING" in message.body and "AG-ENDING" in html
    assert set(OutboundEmail.objects.values_list("topic", flat=True)) == {"digest:2026-W46"}


def test_it_never_sends_the_same_week_twice(market: None) -> None:
    with time_machine.travel(NOW, tick=False):
        assert len(digest.digest_send(week=WEEK)) == 1
        with pytest.raises(digest.DigestAlreadySent):
            digest.digest_send(week=WEEK)
        with pytest.raises(CommandError, match="already sent"):
            run("send_digest", "--week", WEEK)
    assert OutboundEmail.objects.count() == 1


def test_it_sends_a_test_copy_again_without_counting_it(market: None) -> None:
    with time_machine.travel(NOW, tick=False):
        run("send_digest", "--week", WEEK, "--to", "me@example.com")
        run("send_digest", "--week", WEEK, "--to", "me@example.com")
        assert len(digest.digest_send(week=WEEK)) == 1
        run("send_digest", "--week", WEEK, "--to", "me@example.com")
    topics = list(OutboundEmail.objects.order_by("pk").values_list("topic", "to"))
    assert topics == [
        ("digest-test:2026-W46", ["me@example.com"]),
        ("digest-test:2026-W46", ["me@example.com"]),
        ("digest:2026-W46", ["exec@example.com"]),
        ("digest-test:2026-W46", ["me@example.com"]),
    ]


def test_it_refuses_a_week_without_its_final_snapshot(market: None) -> None:
    with time_machine.travel(NOW, tick=False):
        with pytest.raises(CommandError, match="no final snapshot"):
            run("send_digest", "--week", "2026-W47")  # provisional
        with pytest.raises(CommandError, match="no final snapshot"):
            run("send_digest", "--week", "2026-W10")  # never computed
        with pytest.raises(CommandError, match="ISO week"):
            run("send_digest", "--week", "2026-46")
        with pytest.raises(CommandError, match="no final snapshot"):
            run("send_digest", "--week", "2026-W47", "--to", "me@example.com")
    assert not OutboundEmail.objects.exists()


def test_it_previews_the_digest_in_the_browser(market: None, cast: Cast) -> None:
    client = Client()
    client.force_login(cast.executive)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/digest/", {"week": WEEK})
        provisional = client.get("/dashboard/digest/", {"week": "2026-W47"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Weekly coverage digest, 2026-W46" in html
    assert "AG-ENDING" in html
    assert "provisional" in provisional.content.decode()
    assert not OutboundEmail.objects.exists()
    rep = Client()
    rep.force_login(cast.rep_user)
    assert rep.get("/dashboard/digest/").status_code == 404


def test_it_sends_last_weeks_digest_from_the_monday_task_once(market: None) -> None:
    from analytics.schedule import BEAT_SCHEDULE
    from analytics.tasks import send_weekly_digest

    monday = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # the Monday after 2026-W46
    with time_machine.travel(monday, tick=False):
        assert send_weekly_digest() == {"week": WEEK, "sent": 1}
        assert send_weekly_digest() == {"week": WEEK, "sent": 0, "already_sent": True}
    entry = BEAT_SCHEDULE["leadership-digest"]
    assert entry["task"] == "analytics.send_weekly_digest"
    assert entry["schedule"].day_of_week == {1} and entry["schedule"].hour == {7}


def test_it_counts_days_left_from_the_day_it_is_read(market: None) -> None:
    # Sent on Wednesday 18 November: AG-ENDING ends on 20 December, 32 days later (35 days
    # after the week's Sunday, which the digest counted from before).
    with time_machine.travel(NOW, tick=False):
        content = digest.digest_content(week=WEEK)
        text, html = _rendered(content)
    (ending,) = content["ending"]
    assert ending["days_left"] == 32
    assert "(32 days left)" in text and "(32 days left)" in html and "35 days" not in text


def test_it_lists_as_many_agreements_as_its_heading_counts(market: None, cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        for number in range(digest.ENDING_LIST_LIMIT + 2):
            AgreementFactory(
                partner=cast.partner_b,
                external_id=f"AG-SOON-{number:02d}",
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 1),
            )
        content = digest.digest_content(week=WEEK)
        text, html = _rendered(content)
        headline = next(h for h in content["headlines"] if "ending" in h["label"])
    total = digest.ENDING_LIST_LIMIT + 3
    assert headline["shown"] == str(total) and content["ending_count"] == total
    assert len(content["ending"]) + content["ending_more"] == total
    assert f"Agreements ending within 90 days ({total})" in text
    assert text.count("AG-SOON-") + text.count("AG-ENDING") == digest.ENDING_LIST_LIMIT
    assert "And 3 more: see the dashboard." in text and "And 3 more" in html


def _rendered(content: dict[str, Any]) -> tuple[str, str]:
    from django.template.loader import render_to_string

    return (
        render_to_string("emails/digest.txt", {"digest": content}),
        render_to_string("emails/digest.html", {"digest": content}),
    )
