"""Every weekly run writes the week's deal registration figures (docs/metrics.md rule 18) with
its snapshot, a backfill and a rollup rebuild write the same rows, and `reports.registrations`
reads them for any filter: checked against hand-counted registrations decided through the
services, on both databases."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings

from analytics import reports, services
from analytics.models import RegistrationRollup
from partners.models import DealRegistration
from partners.registration_services import (
    registration_approve,
    registration_mark_won,
    registration_reject,
    registration_submit,
)
from tests.factories import PartnerUserFactory
from tests.partners.registration_market import RegistrationMarket

pytestmark = pytest.mark.django_db

BEFORE, WEEK, AFTER = "2026-W46", "2026-W47", "2026-W48"  # Monday 16 to Sunday 22 Nov 2026
ROLLUP_FIELDS = (
    "week",
    "region",
    "vertical",
    "size_band",
    "channel_kind",
    "submitted",
    "checked",
    "with_conflicts",
    "approved",
    "rejected",
    "won",
    "decisions_timed",
    "decision_hours_median",
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def submit(market: RegistrationMarket, user: Any, moment: datetime, **details: Any) -> Any:
    with time_machine.travel(moment, tick=False):
        return registration_submit(user=user, details=market.details(**details), now=moment)


@pytest.fixture
def decided(registration_market: RegistrationMarket) -> Iterator[dict[str, Any]]:
    """2026-W47's registrations, each with its hand-counted part:

    - clean: partner-a, Monday 16 09:00, no conflict; approved Wednesday 09:00 (48 h);
    - direct: partner-a, Tuesday 10:00, a rep covers it; rejected Thursday 16:00 (54 h);
    - cobalt: partner-a, Friday 13 10:00 (W46), partner-b covers it; approved Monday 16 13:00
      (75 h), won Friday 20;
    - distributor: the distributor, Wednesday, outside its lapsed agreement; waiting;
    - imported: partner-a, Wednesday, waiting, its conflicts never checked on arrival.
    """
    market = registration_market
    manager = market.cast.manager
    distributor_user = PartnerUserFactory(partner=market.distributor).user
    clean = submit(market, market.cast.partner_a_user, at(16, 9), company_name="Acme Finance")
    direct = submit(market, market.cast.partner_a_user, at(17, 10), company_name="Bolt Finance")
    cobalt = submit(market, market.cast.partner_a_user, at(13, 10), company_name="Cobalt Bank")
    waiting = submit(market, distributor_user, at(18, 11), company_name="Nimbus Analytics")
    imported = submit(market, market.cast.partner_a_user, at(18, 12), company_name="Ember")
    DealRegistration.objects.filter(pk=imported.pk).update(arrival_conflicts=None)
    with time_machine.travel(at(16, 13), tick=False):
        registration_approve(registration=cobalt, by=manager)
    with time_machine.travel(at(18, 9), tick=False):
        registration_approve(registration=clean, by=manager)
    with time_machine.travel(at(19, 16), tick=False):
        registration_reject(registration=direct, by=manager, reason="Our rep leads it.")
    with time_machine.travel(at(20, 15), tick=False):
        registration_mark_won(
            registration=cobalt, by=manager, amount=cobalt.amount, closed_on=at(20, 15).date()
        )
    assert direct.conflict_codes == ["covered_by_other_channel"]
    assert waiting.conflict_codes == ["outside_agreement"]
    with time_machine.travel(at(30, 12), tick=False):
        yield {"market": market, "clean": clean, "cobalt": cobalt}


def stored() -> list[tuple[Any, ...]]:
    return list(RegistrationRollup.objects.order_by(*ROLLUP_FIELDS).values_list(*ROLLUP_FIELDS))


def figures(week: str, **filters: str) -> tuple[Any, ...]:
    (row,) = reports.registrations([week], **filters)
    return (
        row.submitted,
        row.checked,
        row.with_conflicts,
        row.approved,
        row.rejected,
        row.won,
        row.decisions_timed,
        row.decision_hours_median,
    )


def test_the_weekly_run_writes_the_weeks_registration_figures(decided: dict[str, Any]) -> None:
    for week in (BEFORE, WEEK):
        services.metrics_compute_week(week=week, final=True)
    # Submitted: clean, direct, the distributor's, imported; checked on arrival: all but the
    # imported one; with a conflict: direct and the distributor's. Approved: clean and cobalt
    # (approved this week, submitted the week before); rejected: direct; won: cobalt. The
    # manager's decisions took 48, 54 and 75 hours: the median is 54.
    assert figures(WEEK) == (4, 3, 2, 2, 1, 1, 3, 54.0)
    assert figures(WEEK, channel_kind="distribution") == (1, 1, 1, 0, 0, 0, 0, None)
    assert figures(WEEK, channel_kind="partner") == (3, 2, 1, 2, 1, 1, 3, 54.0)
    assert figures(WEEK, region="EAST", vertical="FIN") == figures(WEEK)
    # A filter nothing matches reads zeros; the share has no value without a checked one.
    assert figures(WEEK, region="WEST") == (0, 0, 0, 0, 0, 0, 0, None)
    assert reports.registrations([WEEK], region="WEST")[0].conflict_share is None
    assert reports.registrations([WEEK])[0].conflict_share == pytest.approx(2 / 3)
    # Cobalt was submitted the week before, with partner-b covering its account.
    assert figures(BEFORE) == (1, 1, 1, 0, 0, 0, 0, None)
    # A week whose run did not count registrations has no figures at all.
    assert reports.registrations([AFTER]) == []


def test_a_week_is_rewritten_whole_by_its_next_run(decided: dict[str, Any]) -> None:
    services.metrics_compute_week(week=WEEK, final=True)
    first = stored()
    services.metrics_compute_week(week=WEEK, final=True)
    assert stored() == first
    RegistrationRollup.objects.all().delete()
    services.metrics_compute_week(week=WEEK, final=False)
    assert [row[1:] for row in stored()] == [row[1:] for row in first]


def test_a_backfill_and_a_rollup_rebuild_write_what_single_runs_write(
    decided: dict[str, Any],
) -> None:
    for week in (BEFORE, WEEK):
        services.metrics_compute_week(week=week, final=True)
    single = stored()
    RegistrationRollup.objects.all().delete()
    call_command(
        "compute_metrics", "--from", BEFORE, "--to", WEEK, "--no-progress", stdout=io.StringIO()
    )
    assert stored() == single
    RegistrationRollup.objects.all().delete()
    services.metrics_rollups_rebuild([BEFORE, WEEK, AFTER])
    assert stored() == single


def test_a_provisional_week_counts_only_the_days_that_happened(
    decided: dict[str, Any],
) -> None:
    with time_machine.travel(at(18, 20), tick=False):  # the Wednesday evening
        services.metrics_compute_week(week=WEEK, final=False)
    # By Wednesday: clean, direct, the distributor's and the imported one submitted; cobalt
    # approved on Monday (75 h) and clean on Wednesday (48 h); the rejection and the win came
    # later in the week.
    assert figures(WEEK) == (4, 3, 2, 2, 0, 0, 2, 61.5)


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_a_submission_counts_on_its_day_in_the_products_time_zone(
    registration_market: RegistrationMarket,
) -> None:
    market = registration_market
    # Sunday 22 Nov at 18:00 UTC is Monday 23 Nov at 02:00 in Shanghai: 2026-W48 there.
    submit(market, market.cast.partner_a_user, at(22, 18), company_name="Late Night Ltd")
    with time_machine.travel(at(30, 12), tick=False):
        for week in (WEEK, AFTER):
            services.metrics_compute_week(week=week, final=True)
    assert figures(WEEK)[0] == 0
    assert figures(AFTER)[0] == 1


def test_the_dashboard_export_api_and_digest_show_the_weeks_figures(
    decided: dict[str, Any],
) -> None:
    """The hand-counted week through every reader: the dashboard in English and Chinese, its
    CSV export, the API and the digest."""
    from django.test import Client
    from rest_framework.test import APIClient

    from analytics import digest

    for week in (BEFORE, WEEK):
        services.metrics_compute_week(week=week, final=True)
    cast = decided["market"].cast
    client = Client()
    client.force_login(cast.executive)
    html = client.get("/dashboard/", {"week": WEEK}).content.decode()
    section = html.split('data-testid="registration-week"')[1].split("</table>")[0]
    shown = {
        key: cells
        for key, cells in (
            (row.split('data-figure="')[1].split('"')[0], row) for row in section.split("<tr")[2:]
        )
    }
    # This week beside the week before: 4 submitted against 1, 2 of 3 checked with a conflict
    # against 1 of 1, a median of 54 hours (2.25 days) against none.
    assert (
        '<td class="num">4</td><td class="num">1</td><td class="num change ">+3</td>'
        in (shown["submitted"])
    )
    assert '<td class="num">2.2 days</td><td class="num">—</td>' in shown["decision_hours_median"]
    assert '<td class="num">66.7 %</td><td class="num">100.0 %</td>' in shown["conflict_share"]
    assert "good" in shown["conflict_share"]  # fewer conflicts is good news
    channels = html.split('data-testid="registration-channels"')[1].split("</table>")[0]
    assert 'data-channel="partner"><td>Partner</td><td class="num">3</td>' in channels
    assert 'data-channel="distribution"><td>Distribution</td><td class="num">1</td>' in channels
    chart = html.split('<script id="dashboard-data" type="application/json">')[1].split("</")[0]
    assert '"submitted": [' in chart and "4" in chart

    chinese = Client(headers={"accept-language": "zh-hans"})
    chinese.force_login(cast.executive)
    html = chinese.get("/dashboard/", {"week": WEEK}).content.decode()
    assert "每周商机报备" in html and "2.2 天" in html

    response = client.get("/dashboard/export/registrations.csv", {"week": WEEK, "span": "4"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    mine = [(r["Week"], r["Channel"], r["Submitted"], r["Won"]) for r in rows if r["Week"] == WEEK]
    assert mine == [
        (WEEK, "All channels", "4", "1"),
        (WEEK, "Distribution", "1", "0"),
        (WEEK, "Partner", "3", "1"),
    ]
    total = next(r for r in rows if r["Week"] == WEEK and r["Channel"] == "All channels")
    assert total["Median time to decision (hours, exact)"] == "54.0"
    assert float(total["Submitted with a conflict (exact fraction)"]) == pytest.approx(2 / 3)

    api = APIClient()
    api.force_authenticate(cast.executive)
    answer = api.get(
        "/api/v1/metrics/registrations/",
        {"first": BEFORE, "last": AFTER, "channel_kind": "partner"},
    ).json()["results"]
    assert [(r["week"], r["submitted"], r["approved"], r["won"]) for r in answer] == [
        (BEFORE, 1, 0, 0),
        (WEEK, 3, 2, 1),
    ]
    assert answer[1]["decision_hours_median"] == 54.0
    latest = api.get("/api/v1/metrics/registrations/", {"by_channel": "true"}).json()["results"]
    assert [(r["week"], r["channel_kind"], r["submitted"]) for r in latest] == [
        (WEEK, "distribution", 1),
        (WEEK, "partner", 3),
    ]
    refused = api.get("/api/v1/metrics/registrations/", {"first": WEEK, "last": BEFORE})
    assert refused.status_code == 400 and "last" in refused.json()

    content = digest.digest_content(week=WEEK)
    figures_shown = {
        row["label"]: (row["shown"], row["change_shown"]) for row in content["registrations"]
    }
    assert figures_shown["Submitted"] == ("4", "+3")
    assert figures_shown["Won"] == ("1", "+1")
    from django.template.loader import render_to_string

    text = render_to_string("emails/digest.txt", {"digest": content})
    assert "Deal registrations\n- Submitted: 4 (+3)" in text
