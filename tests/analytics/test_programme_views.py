"""The scorecard and the quarterly business review: a partner sees its own scorecard (the
payload holds its figures only) with the distance to the next tier; a manager records a
review, e-mails its summary to the partner's contacts and sees its open actions at home."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from analytics import services
from analytics.scorecard import scorecard_for, scorecard_payload
from crm.models import ChannelKind, OutboundEmail
from partners.programme_models import BusinessReview, ReviewAction, Tier
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    OpportunityFactory,
    PartnerContactFactory,
    RegionFactory,
    tier_set,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WEEKS = ("2026-W44", "2026-W45", "2026-W46")


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def weeks(cast: Cast) -> Cast:
    """Partner A covers 3 accounts, B covers 7, each under an agreement; three weeks run."""
    region = RegionFactory(code="EAST")
    for partner, count, score in ((cast.partner_a, 3, 4), (cast.partner_b, 7, 2)):
        AgreementFactory(
            partner=partner,
            start_date=date(2025, 1, 1),
            end_date=date(2027, 12, 31),
            regions=[region],
        )
        for _ in range(count):
            account = AccountFactory(region=region)
            CoverageAssignmentFactory(account=account, kind=ChannelKind.PARTNER, partner=partner)
        feedback = FeedbackFactory(partner=partner, satisfaction=score, nps=None)
        type(feedback).objects.filter(pk=feedback.pk).update(
            created_at=datetime(2026, 10, 20, 9, tzinfo=UTC)
        )
    tier_set("silver", min_covered_accounts=5, min_satisfaction=Decimal("3"))
    for week in WEEKS:
        services.metrics_compute_week(week=week, final=True)
    return cast


def test_the_portal_scorecard_holds_the_partners_own_figures_only(weeks: Cast) -> None:
    client = Client()
    client.force_login(weeks.partner_a_user)
    response = client.get("/portal/scorecard/")
    assert response.status_code == 200
    card = response.context["card"]
    own = scorecard_payload(card)
    theirs = scorecard_payload(scorecard_for(weeks.partner_b.pk))  # type: ignore[arg-type]
    assert own == scorecard_payload(scorecard_for(weeks.partner_a.pk))  # type: ignore[arg-type]
    assert own["partner_id"] == weeks.partner_a.pk and own != theirs
    assert [w["covered_accounts"] for w in own["trend"]] == [3, 3, 3]
    assert [w["week"] for w in own["trend"]] == list(WEEKS)
    # Distance to silver, requirement by requirement: 2 accounts short, satisfaction met.
    assert own["next_tier"] == "silver"
    assert [(r["key"], r["value"], r["minimum"], r["met"], r["gap"]) for r in own["distance"]] == [
        ("covered_accounts", 3.0, 5.0, False, 2.0),
        ("satisfaction", 4.0, 3.0, True, None),
    ]
    html = response.content.decode()
    assert weeks.partner_b.name not in html
    assert 'data-testid="distance"' in html


def test_the_scorecard_shows_the_partners_own_sourced_revenue_in_both_languages(
    weeks: Cast,
) -> None:
    account = AccountFactory()
    for partner, closed, amount, recurring in (
        (weeks.partner_a, date(2026, 5, 1), "1234.50", False),
        (weeks.partner_a, date(2026, 11, 5), "10.00", True),  # 12 monthly fees: 120.00
        (weeks.partner_b, date(2026, 6, 1), "99999.00", False),
    ):
        OpportunityFactory(
            account=account,
            channel=ChannelKind.PARTNER,
            partner=partner,
            stage="won",
            amount=Decimal(amount),
            recurring=recurring,
            opened_on=date(2026, 1, 5),
            closed_on=closed,
        )
    tier_set("silver", min_sourced_revenue=Decimal("2000"))
    for week in WEEKS:
        services.metrics_compute_week(week=week, final=True)
    card = scorecard_for(weeks.partner_a.pk)
    assert card is not None
    assert (card.sourced_revenue, card.sourced_revenue_ytd) == (1354.5, 1354.5)
    assert [w.sourced_revenue for w in card.trend] == [1234.5, 1354.5, 1354.5]
    assert [(r.key, r.value, r.gap) for r in card.distance] == [
        ("covered_accounts", 3.0, 2.0),
        ("sourced_revenue", 1354.5, 645.5),
        ("satisfaction", 4.0, None),
    ]
    client = Client()
    client.force_login(weeks.partner_a_user)
    english = client.get("/portal/scorecard/").content.decode()
    assert 'data-testid="sc-revenue">1,354.50 USD<' in english
    assert "1,354.50 USD this year" in english and "645.50 USD" in english
    assert "99,999" not in english
    chinese = client.get("/portal/scorecard/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "来源收入（52 周）" in chinese and "今年 1,354.50 USD" in chinese


def test_the_api_scorecard_of_a_partner_is_its_own_whatever_it_names(weeks: Cast) -> None:
    api = APIClient()
    api.force_authenticate(weeks.partner_a_user)
    payload = api.get(f"/api/v1/programme/scorecard/?partner={weeks.partner_b.pk}").json()
    assert payload["partner"] == weeks.partner_a.pk
    assert payload["name"] == weeks.partner_a.name
    assert payload["covered_accounts"] == 3
    assert weeks.partner_b.name not in str(payload)
    assert {week["covered_accounts"] for week in payload["trend"]} == {3}
    manager = APIClient()
    manager.force_authenticate(weeks.manager)
    other = manager.get(f"/api/v1/programme/scorecard/?partner={weeks.partner_b.pk}").json()
    assert (other["partner"], other["covered_accounts"]) == (weeks.partner_b.pk, 7)


def test_a_tier_change_is_shown_with_the_week_and_figure_that_caused_it(weeks: Cast) -> None:
    Tier.objects.filter(code="silver").update(min_covered_accounts=3)
    services.metrics_compute_week(week="2026-W47", final=True)
    client = Client()
    client.force_login(weeks.manager)
    history = client.get("/workspace/programme/history/").content.decode()
    assert "2026-W47" in history and weeks.partner_a.name in history
    change = weeks.partner_a.tier_changes.get()
    detail = client.get(f"/workspace/programme/history/{change.pk}/").content.decode()
    assert "The partner met every requirement of Silver in this week" in detail
    assert change.week == "2026-W47"
    assert change.evidence["requirements"][0] == {
        "key": "covered_accounts",
        "minimum": 3.0,
        "value": 3.0,
        "met": True,
    }


def test_a_business_review_is_recorded_mailed_to_the_contacts_and_its_actions_shown_at_home(
    weeks: Cast,
) -> None:
    PartnerContactFactory(partner=weeks.partner_a, email="ceo@alpha.example")
    PartnerContactFactory(partner=weeks.partner_a, email="")
    PartnerContactFactory(partner=weeks.partner_b, email="ceo@beta.example")
    client = Client()
    client.force_login(weeks.manager)
    opened = client.post(
        "/workspace/reviews/open/", {"partner": weeks.partner_a.pk, "quarter": "2026-Q4"}
    )
    review = BusinessReview.objects.get()
    assert opened["Location"] == f"/workspace/reviews/{review.pk}/"
    page = client.get(f"/workspace/reviews/{review.pk}/")
    assert page.context["card"].partner_id == weeks.partner_a.pk
    client.post(
        f"/workspace/reviews/{review.pk}/record/",
        {"held_on": "2026-11-18", "attendees": "Ana, Bo", "notes": "Grow the east."},
    )
    form = client.get(f"/workspace/reviews/{review.pk}/").content.decode()
    token = form.split('name="submission_token" value="')[1].split('"')[0]
    client.post(
        f"/workspace/reviews/{review.pk}/actions/",
        {
            "description": "Train two sellers",
            "owner": weeks.manager.pk,
            "due_on": "2026-12-15",
            "submission_token": token,
        },
    )
    assert ReviewAction.objects.get().owner == weeks.manager
    client.post(f"/workspace/reviews/{review.pk}/send/")
    email = OutboundEmail.objects.get(topic="business-review-summary")
    assert email.to == ["ceo@alpha.example"]
    assert "Grow the east." in email.body_text and "Train two sellers" in email.body_text
    assert "2026-W46" in email.body_text  # the scorecard it discussed
    review.refresh_from_db()
    assert review.summary_sent_at is not None
    home = client.get("/workspace/").content.decode()
    assert "Train two sellers" in home
    action = ReviewAction.objects.get()
    client.post(f"/workspace/reviews/actions/{action.pk}/done/", {"next": "home"})
    assert "Train two sellers" not in client.get("/workspace/").content.decode()
