from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client

from analytics import dashboard as board
from analytics import metrics
from analytics.models import SegmentSnapshot
from crm.models import ChannelKind, SizeBand
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    PartnerFactory,
    RegionFactory,
    SalesRepFactory,
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
    """Two regions, two verticals, two size bands; every channel covers something; a partner
    with an agreement ending soon and scored feedback; a region with no account in market."""
    with time_machine.travel(NOW, tick=False) as traveller:
        east, west, north = (RegionFactory(code=c) for c in ("EAST", "WEST", "NORTH"))
        fin, ret = VerticalFactory(code="FIN"), VerticalFactory(code="RET")
        rep = SalesRepFactory()
        reseller = PartnerFactory(external_id="P-RES", name="Reseller One")
        distributor = PartnerFactory(
            external_id="P-DIS", name="Distributor One", channel_kind=ChannelKind.DISTRIBUTION
        )
        AgreementFactory(partner=reseller, start_date=date(2026, 1, 1), end_date=date(2027, 3, 31))
        AgreementFactory(
            partner=distributor,
            start_date=date(2025, 12, 1),
            end_date=date(2026, 12, 31),
            regions=[east],
        )
        layout = [
            (east, fin, SizeBand.SMB, 5),
            (east, ret, SizeBand.ENTERPRISE, 3),
            (west, fin, SizeBand.SMB, 4),
            (west, ret, SizeBand.SMB, 2),
        ]
        number = 0
        for region, vertical, band, count in layout:
            for _ in range(count):
                number += 1
                converted = number % 3 == 0
                account = AccountFactory(
                    region=region,
                    vertical=vertical,
                    size_band=band,
                    converted_on=date(2026, 3, 1) if converted else None,
                    converted_via=("direct", "partner", "online")[number % 3] if converted else "",
                )
                if number % 2 == 0:
                    CoverageAssignmentFactory(account=account, kind=ChannelKind.DIRECT, rep=rep)
                if number % 4 == 1:
                    CoverageAssignmentFactory(
                        account=account, kind=ChannelKind.PARTNER, partner=reseller
                    )
                if number % 5 == 0:
                    CoverageAssignmentFactory(
                        account=account, kind=ChannelKind.DISTRIBUTION, partner=distributor
                    )
                if number % 7 == 0:
                    CoverageAssignmentFactory(account=account, kind=ChannelKind.ONLINE)
        # Newly entered in the week: last week had fewer accounts.
        AccountFactory(region=east, vertical=fin, entered_on=date(2026, 11, 12))
        # NORTH has only an account entering later: an empty selection.
        AccountFactory(region=north, vertical=fin, entered_on=date(2027, 1, 1))
        for days_ago, partner, satisfaction, nps in [
            (10, reseller, 5, 10),
            (11, reseller, 4, 9),
            (12, reseller, 2, 3),
            (13, distributor, 3, None),
            (14, distributor, 4, 7),
            (200, reseller, 1, 0),  # outside the 90 days
        ]:
            traveller.move_to(datetime(2026, 11, 15, 12, 0, tzinfo=UTC) - timedelta(days=days_ago))
            FeedbackFactory(partner=partner, satisfaction=satisfaction, nps=nps)
        traveller.move_to(NOW)
        run("compute_metrics", "--last", "3", "--no-progress")
        yield


@pytest.fixture
def executive(cast: Cast) -> Client:
    client = Client()
    client.force_login(cast.executive)
    return client


def export(by: str) -> list[dict[str, Any]]:
    return json.loads(run("metrics_export", "--week", WEEK, "--by", by, "--format", "json"))["rows"]


def expected_from_segments(**filters: str) -> dict[str, Any]:
    """The figures of the filtered segments as metrics_export gives them: counts summed, then
    divided."""
    rows = [r for r in export("segment") if all(r[k] == v for k, v in filters.items())]
    sums = {c: sum(r[c] for r in rows) for c in metrics.COUNT_COLUMNS}
    return {**sums, "rows": rows}


def headline_values(client: Client, **params: str) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/", params)
    assert response.status_code == 200
    return headlines_of(response)


def headlines_of(response: Any) -> dict[str, dict[str, Any]]:
    """Each headline's figures, with the value and change as the page shows them."""
    html = response.content.decode()
    headlines = {}
    for h in response.context["report"]["headlines"]:
        shown = re.search(rf'data-testid="value-{h.key}">([^<]*)</div>', html)
        change = re.search(rf'data-testid="change-{h.key}"[^>]*>([^<]*) <span', html)
        assert shown and change, h.key
        headlines[h.key] = {
            "key": h.key,
            "value": h.value,
            "previous": h.previous,
            "change": h.change,
            "shown": shown.group(1),
            "change_shown": change.group(1),
        }
    return headlines


FILTERS = [
    {},
    {"region": "EAST"},
    {"vertical": "RET"},
    {"size_band": "smb"},
    {"region": "WEST", "vertical": "FIN"},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_it_shows_each_segment_headline_as_metrics_export_gives_it(
    market: None, executive: Client, filters: dict[str, str]
) -> None:
    headlines = headline_values(executive, week=WEEK, **filters)
    expected = expected_from_segments(**filters)
    accounts = expected["accounts"]
    assert accounts > 0
    assert headlines["accounts"]["value"] == accounts
    assert headlines["coverage"]["value"] == pytest.approx(expected["covered_any"] / accounts)
    assert headlines["penetration"]["value"] == pytest.approx(expected["converted"] / accounts)
    assert headlines["white_space"]["value"] == expected["white_space"]
    assert headlines["overlap"]["value"] == expected["overlap"]
    assert headlines["coverage"]["shown"] == f"{expected['covered_any'] / accounts * 100:.1f} %"


def test_it_rolls_up_by_summing_counts_exactly_like_the_export_rollups(
    market: None, executive: Client
) -> None:
    for by in ("region", "vertical", "size_band"):
        for row in export(by):
            headlines = headline_values(executive, week=WEEK, **{by: row[by]})
            if row["accounts"] == 0:
                assert headlines["coverage"]["value"] is None
                continue
            assert headlines["accounts"]["value"] == row["accounts"]
            assert headlines["coverage"]["value"] == pytest.approx(row["coverage"])
            assert headlines["penetration"]["value"] == pytest.approx(row["penetration"])
    total = export("total")[0]
    headlines = headline_values(executive, week=WEEK)
    assert headlines["coverage"]["value"] == pytest.approx(total["coverage"])
    assert headlines["white_space"]["value"] == total["white_space"]


def test_it_takes_a_channels_own_coverage_and_penetration(market: None, executive: Client) -> None:
    channels = {row["channel"]: row for row in export("channel")}
    for kind in metrics.KINDS:
        headlines = headline_values(executive, week=WEEK, channel=kind)
        assert headlines["coverage"]["value"] == pytest.approx(channels[kind]["coverage"])
        assert headlines["penetration"]["value"] == pytest.approx(channels[kind]["penetration"])


def test_it_shows_the_change_against_the_previous_week(market: None, executive: Client) -> None:
    headlines = headline_values(executive, week=WEEK)
    previous = json.loads(
        run("metrics_export", "--week", "2026-W45", "--by", "total", "--format", "json")
    )["rows"][0]
    current = export("total")[0]
    assert headlines["accounts"]["change"] == current["accounts"] - previous["accounts"] == 1
    assert headlines["accounts"]["change_shown"] == "+1"
    assert headlines["coverage"]["change"] == pytest.approx(
        current["coverage"] - previous["coverage"]
    )
    assert headlines["coverage"]["change_shown"].endswith(" pp")


def test_it_shows_an_empty_selection_as_a_dash(market: None, executive: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/", {"week": WEEK, "region": "NORTH"})
    headlines = headlines_of(response)
    assert headlines["accounts"]["value"] == 0
    for key in ("coverage", "penetration"):
        assert headlines[key]["value"] is None
        assert headlines[key]["shown"] == "—"
    html = response.content.decode()
    channel_table = html.split('data-testid="channel-table"')[1].split("</table>")[0]
    assert "0.0 %" not in channel_table and "pp" not in channel_table
    changes = re.findall(r'<td class="num change[^"]*">([^<]*)</td>', channel_table)
    assert changes and all(change == "—" for change in changes)
    with time_machine.travel(NOW, tick=False):
        direct = headline_values(executive, week=WEEK, channel="direct")
    assert direct["satisfaction"]["shown"] == "—"
    assert direct["nps"]["shown"] == "—"


def test_it_matches_the_export_in_the_channel_heat_map_white_space_and_partner_tables(
    market: None, executive: Client
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/", {"week": WEEK})
    report = response.context["report"]

    channels = export("channel")
    assert [
        {k: row[k] for k in ("channel", "accounts", "covered", "converted")}
        for row in report["channels"]
    ] == [{k: row[k] for k in ("channel", "accounts", "covered", "converted")} for row in channels]
    before = json.loads(
        run("metrics_export", "--week", "2026-W45", "--by", "channel", "--format", "json")
    )["rows"]
    for mine, theirs, old in zip(report["channels"], channels, before, strict=True):
        assert mine["coverage"] == pytest.approx(theirs["coverage"])
        assert mine["coverage_change"] == pytest.approx(theirs["coverage"] - old["coverage"])
        assert mine["penetration_change"] == pytest.approx(
            theirs["penetration"] - old["penetration"]
        )
    # The newly entered account makes the week's coverage differ from the week before's.
    assert any(row["coverage_change"] for row in report["channels"])

    segments = export("segment")
    for cell in report["heat"]["cells"]:
        rows = [
            r
            for r in segments
            if (r["region"], r["vertical"]) == (cell["region"], cell["vertical"])
        ]
        accounts = sum(r["accounts"] for r in rows)
        assert cell["accounts"] == accounts
        covered = sum(r["covered_any"] for r in rows)
        assert cell["value"] == (pytest.approx(covered / accounts) if accounts else None)

    biggest = sorted(
        (r for r in segments if r["white_space"] > 0),
        key=lambda r: (-r["white_space"], r["region"], r["vertical"], r["size_band"]),
    )[: board.WHITE_SPACE_LIMIT]
    assert [
        (r["region"], r["vertical"], r["size_band"], r["white_space"])
        for r in report["white_space"]
    ] == [(r["region"], r["vertical"], r["size_band"], r["white_space"]) for r in biggest]

    partners = {row["external_id"]: row for row in export("partner")}
    assert {row["external_id"] for row in report["leaderboard"]} == set(partners)
    for row in report["leaderboard"]:
        theirs = partners[row["external_id"]]
        for column in ("covered_accounts", "converted_accounts", "feedback_count"):
            assert row[column] == theirs[column]
        assert row["nps"] == theirs["nps"]


def test_it_weights_satisfaction_by_feedback_count_and_counts_nps_from_the_scores(
    market: None, executive: Client
) -> None:
    partners = export("partner")
    weighted = sum(
        p["satisfaction_mean"] * p["feedback_count"] for p in partners if p["feedback_count"]
    )
    count = sum(p["feedback_count"] for p in partners)
    headlines = headline_values(executive, week=WEEK)
    assert headlines["satisfaction"]["value"] == pytest.approx(weighted / count)
    assert headlines["satisfaction"]["value"] == pytest.approx((5 + 4 + 2 + 3 + 4) / 5)
    # Scored: 10, 9, 3, 7 -> two promoters, one detractor out of four.
    assert headlines["nps"]["value"] == pytest.approx(25.0)
    scored, promoters, detractors = (
        sum(p[column] for p in partners) for column in metrics.NPS_COUNT_COLUMNS
    )
    assert headlines["nps"]["value"] == pytest.approx(100 * (promoters - detractors) / scored)
    assert headlines["agreements_in_force"]["value"] == sum(
        p["agreements_in_force"] for p in partners
    )
    assert headlines["active_partners"]["value"] == 2
    # The distributor's agreement ends on 2026-12-31, within 90 days of 2026-11-15.
    assert headlines["agreements_ending"]["value"] == 1
    for region, ending in (("EAST", 1), ("WEST", 0)):
        figures = headline_values(executive, week=WEEK, region=region)
        assert figures["agreements_ending"]["value"] == ending


def test_it_counts_the_agreements_ending_soon_on_each_trend_week_with_a_snapshot(
    market: None, executive: Client
) -> None:
    from partners.models import Agreement, AgreementStatus, Partner

    with time_machine.travel(NOW, tick=False):
        reseller = Partner.objects.get(external_id="P-RES")
        # Ends 87 days after 2026-W46's Sunday, but 94 days after 2026-W45's.
        AgreementFactory(partner=reseller, start_date=date(2026, 1, 1), end_date=date(2027, 2, 10))
        # Terminated between the two Sundays: ending soon in 2026-W45 only.
        AgreementFactory(
            partner=reseller,
            start_date=date(2026, 1, 1),
            end_date=date(2027, 1, 20),
            terminated_on=date(2026, 11, 10),
            status=AgreementStatus.TERMINATED,
        )
        # A draft is never in force.
        AgreementFactory(
            partner=reseller,
            start_date=date(2026, 1, 1),
            end_date=date(2027, 1, 5),
            signed_on=None,
            status=AgreementStatus.DRAFT,
        )
        pages = {
            region: executive.get("/dashboard/", {"week": WEEK, "region": region})
            for region in ("", "EAST", "WEST")
        }
    for region, response in pages.items():
        report = response.context["report"]
        trend = next(h for h in report["headlines"] if h.key == "agreements_ending").trend
        expected = [
            board.agreements_ending(
                Agreement.objects.all(),
                board.Filters(week=WEEK, region=region),
                metrics.iso_week_as_of(week),
            ).count()
            if week in ("2026-W45", "2026-W46")
            else None
            for week in report["trend_weeks"]
        ]
        assert trend == expected, region
    # The distributor's agreement (EAST only) and the terminated one; then the distributor's
    # and the one ending on 2027-02-10.
    assert trend_of(pages[""])[-2:] == [2, 2]
    assert trend_of(pages["WEST"])[-2:] == [1, 1]
    assert 'data-sparkline="agreements_ending"' in pages[""].content.decode()


def trend_of(response: Any) -> list[Any]:
    return next(
        h for h in response.context["report"]["headlines"] if h.key == "agreements_ending"
    ).trend


def test_it_defaults_to_the_latest_final_week_and_labels_the_provisional_one(
    market: None, executive: Client
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/")
        provisional = executive.get("/dashboard/", {"week": "2026-W47"})
    assert response.context["filters"].week == WEEK
    assert "2026-W47 (provisional)" in response.content.decode()
    assert provisional.context["week"].final is False
    assert 'data-testid="provisional"' in provisional.content.decode()


def test_it_keeps_the_filters_in_the_links(market: None, executive: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get(
            "/dashboard/", {"week": WEEK, "region": "EAST", "channel": "partner", "span": "12"}
        )
    html = response.content.decode()
    assert (
        "/dashboard/export/white_space.csv?week=2026-W46&amp;region=EAST&amp;channel=partner"
        in html
    )
    assert "heat=penetration" in html
    assert (
        "/workspace/accounts/?region=EAST&amp;vertical=FIN&amp;size_band=smb&amp;coverage=none"
        in html
    )
    assert len(response.context["report"]["trend_weeks"]) == 12


def test_it_orders_the_leaderboard_least_satisfied_first_on_request(
    market: None, executive: Client
) -> None:
    with time_machine.travel(NOW, tick=False):
        pages = {
            order: executive.get("/dashboard/", {"week": WEEK, "region": "EAST", "partners": order})
            for order in ("covered", "satisfaction", "nps", "bogus")
        }
        exported = executive.get(
            "/dashboard/export/partners.csv", {"week": WEEK, "partners": "satisfaction"}
        )

    def rows(order: str) -> list[dict[str, Any]]:
        return pages[order].context["report"]["leaderboard"]

    # Satisfaction over the 90 days: the distributor 3.50, the reseller 3.67; NPS 0 and 33.3.
    assert [row["external_id"] for row in rows("satisfaction")][:2] == ["P-DIS", "P-RES"]
    assert [row["external_id"] for row in rows("nps")][:2] == ["P-DIS", "P-RES"]
    means = [row["satisfaction_mean"] for row in rows("satisfaction")]
    scored = [mean for mean in means if mean is not None]
    assert len(scored) < len(means)  # partners without feedback come last
    assert means[: len(scored)] == sorted(scored)
    covered = [row["covered_accounts"] for row in rows("covered")]
    assert covered == sorted(covered, reverse=True)
    assert pages["bogus"].context["filters"].partners == "covered"
    csv_rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [row["External id"] for row in csv_rows] == [
        row["external_id"] for row in rows("satisfaction")
    ]
    html = pages["nps"].content.decode()
    assert "partners=satisfaction" in html and "region=EAST" in html
    assert '<input type="hidden" name="partners" value="nps">' in html


def test_it_ignores_unknown_filter_values(market: None, executive: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get(
            "/dashboard/",
            {"week": "1999-W01", "region": "NOPE", "channel": "fax", "span": "7", "heat": "x"},
        )
    assert response.status_code == 200
    assert response.context["filters"] == board.Filters(week=WEEK)


def test_it_exports_each_table_as_csv_for_the_same_filters(market: None, executive: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        for table in (
            "headlines",
            "trend",
            "channels",
            "heatmap",
            "white_space",
            "partners",
            "feedback",
        ):
            response = executive.get(f"/dashboard/export/{table}.csv", {"week": WEEK})
            assert response.status_code == 200, table
            rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
            assert rows, table
        response = executive.get("/dashboard/export/channels.csv", {"week": WEEK, "region": "EAST"})
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        east = next(r for r in export("region") if r["region"] == "EAST")
        assert {int(r["Accounts"]) for r in rows} == {east["accounts"]}
        assert executive.get("/dashboard/export/nothing.csv").status_code == 404


def test_it_answers_within_a_bounded_number_of_queries(
    market: None, executive: Client, django_assert_max_num_queries: Any
) -> None:
    # 20 for the coverage figures, 1 for the registrations, 4 for the programme's sections
    # (drivers, attainment, tiers), 7 for the revenue section (analytics.revenue_board).
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(32):
        response = executive.get(
            "/dashboard/", {"week": WEEK, "region": "EAST", "channel": "partner", "span": "52"}
        )
    assert response.status_code == 200


def test_it_embeds_the_chart_data_without_inline_code(market: None, executive: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        html = executive.get("/dashboard/", {"week": WEEK}).content.decode()
    assert '<script id="dashboard-data" type="application/json">' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    scripts = html.split("<script")[1:]
    assert all(' src="' in s.split(">")[0] or 'type="application/json"' in s for s in scripts)
    assert " onclick=" not in html and " onchange=" not in html


def test_it_is_for_executives_and_sales_managers_only(market: None, cast: Cast) -> None:
    for user, status in [
        (cast.executive, 200),
        (cast.manager, 200),
        (cast.rep_user, 404),
        (cast.partner_a_user, 404),
    ]:
        client = Client()
        client.force_login(user)
        with time_machine.travel(NOW, tick=False):
            assert client.get("/dashboard/").status_code == status
            assert client.get("/dashboard/export/channels.csv").status_code == status
    assert Client().get("/dashboard/").status_code == 302


def test_it_says_so_when_there_is_no_snapshot_yet(cast: Cast, executive: Client) -> None:
    response = executive.get("/dashboard/")
    assert response.status_code == 200
    assert 'data-testid="no-snapshot"' in response.content.decode()


def test_it_shows_the_page_in_simplified_chinese(market: None, cast: Cast) -> None:
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(cast.executive)
    with time_machine.travel(NOW, tick=False):
        html = client.get("/dashboard/", {"week": WEEK}).content.decode()
    assert 'lang="zh-hans"' in html
    assert "覆盖率" in html


def test_it_shows_new_figures_once_a_run_rewrites_the_week(market: None, executive: Client) -> None:
    before = headline_values(executive, week=WEEK)["accounts"]["value"]
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        AccountFactory(region=RegionFactory(code="EAST"), vertical=VerticalFactory(code="FIN"))
        run("compute_metrics", "--week", WEEK)
    after = headline_values(executive, week=WEEK)["accounts"]["value"]
    assert after == before + 1


def test_it_benchmarks_a_small_generated_history_and_refuses_one_with_snapshots(
    cast: Cast,
) -> None:
    output = run(
        "bench_dashboard",
        "--weeks",
        "3",
        "--regions",
        "2",
        "--verticals",
        "2",
        "--accounts",
        "400",
        "--partners",
        "3",
        "--feedback",
        "20",
        "--requests",
        "3",
    )
    last = output.strip().splitlines()[-1]
    assert re.fullmatch(r"bench_dashboard: p50_ms=[\d.]+ p95_ms=[\d.]+ queries=\d+", last)
    assert SegmentSnapshot.objects.values("week").distinct().count() == 3
    assert (
        SegmentSnapshot.objects.filter(week=SegmentSnapshot.objects.latest("week").week).count()
        == 16
    )
    with pytest.raises(CommandError, match="already has snapshots"):
        run("bench_dashboard", "--weeks", "1")


def test_agreement_changes_show_at_once_and_new_feedback_with_the_weeks_next_run(
    market: None, executive: Client
) -> None:
    from partners.models import Agreement, Feedback

    before = headline_values(executive, week=WEEK)
    assert before["nps"]["value"] == pytest.approx(25.0)
    assert before["agreements_ending"]["value"] == 1
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        partner = Agreement.objects.filter(end_date=date(2026, 12, 31)).get().partner
        added = FeedbackFactory(partner=partner, satisfaction=1, nps=0, category="pricing")
        Feedback.objects.filter(pk=added.pk).update(
            created_at=datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
        )
        ending = Agreement.objects.get(end_date=date(2026, 12, 31))
        ending.end_date = date(2027, 6, 30)
        ending.save()
    after = headline_values(executive, week=WEEK)
    # Agreements are read live; feedback is a snapshot figure, as of the week's run.
    assert after["agreements_ending"]["value"] == 0
    assert after["nps"]["value"] == pytest.approx(25.0)
    with time_machine.travel(NOW, tick=False):
        run("compute_metrics", "--week", WEEK, "--no-progress")
        response = executive.get("/dashboard/", {"week": WEEK})
    rerun = headlines_of(response)
    # Scored: 10, 9, 3, 7 and now 0 -> two promoters, two detractors out of five.
    assert rerun["nps"]["value"] == pytest.approx(0.0)
    assert rerun["satisfaction"]["value"] == pytest.approx((5 + 4 + 2 + 3 + 4 + 1) / 6)
    # The entry was created on Tuesday of 2026-W46: the chart's only cell of that week.
    assert [row for row in response.context["report"]["feedback"] if row["week"] == WEEK] == [
        {
            "week": WEEK,
            "category": "pricing",
            "count": 1,
            "satisfaction": 1.0,
        }
    ]


def test_the_feedback_chart_counts_each_week_of_feedback_by_category(
    market: None, executive: Client
) -> None:
    from partners.models import Feedback

    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/", {"week": WEEK})
        distributor = executive.get("/dashboard/", {"week": WEEK, "channel": "distribution"})
    expected: dict[tuple[str, str], list[int]] = {}
    weeks = {"2026-W45", "2026-W46"}  # the snapshot weeks of the 12-week trend
    for entry in Feedback.objects.all():
        week = metrics.iso_week_of(entry.created_at.date())
        if week in weeks:
            cell = expected.setdefault((week, entry.category), [0, 0])
            cell[0] += 1
            cell[1] += entry.satisfaction
    assert expected  # the market has feedback in these weeks
    shown = {
        (row["week"], row["category"]): [row["count"], row["satisfaction"]]
        for row in response.context["report"]["feedback"]
    }
    assert shown == {
        key: [count, pytest.approx(total / count)] for key, (count, total) in expected.items()
    }
    assert response.context["report"]["feedback_weeks"] == sorted({w for w, _c in expected})
    # The distributor gave two entries: on Monday 2 November (2026-W45) and on Sunday
    # 1 November, which closes 2026-W44, a week without a snapshot.
    assert [(row["week"], row["count"]) for row in distributor.context["report"]["feedback"]] == [
        ("2026-W45", 1)
    ]


def test_a_change_is_coloured_by_whether_its_direction_is_good_news() -> None:
    assert board.change_tone(0.02, board.HEADLINE_BETTER["coverage"]) == "good"
    assert board.change_tone(-0.02, board.HEADLINE_BETTER["coverage"]) == "bad"
    # Less white space is good news; more is bad.
    assert board.change_tone(-31, board.HEADLINE_BETTER["white_space"]) == "good"
    assert board.change_tone(31, board.HEADLINE_BETTER["white_space"]) == "bad"
    # Neither way is better for the number of addressable accounts; no change, no colour.
    assert board.change_tone(4, board.HEADLINE_BETTER["accounts"]) == ""
    assert board.change_tone(0, 1) == board.change_tone(None, 1) == ""
    assert set(board.HEADLINE_BETTER) == set(board.HEADLINE_KINDS)


def test_an_agreement_terminated_to_end_soon_counts_as_ending_by_its_termination_date(
    market: None, executive: Client
) -> None:
    from partners.models import AgreementStatus, Partner

    with time_machine.travel(NOW, tick=False):
        # The term runs to 2028, but the termination ends it on 2026-12-20, 35 days after
        # 2026-W46's Sunday.
        AgreementFactory(
            partner=Partner.objects.get(external_id="P-RES"),
            start_date=date(2026, 1, 1),
            end_date=date(2028, 6, 30),
            terminated_on=date(2026, 12, 20),
            status=AgreementStatus.TERMINATED,
        )
    assert headline_values(executive, week=WEEK)["agreements_ending"]["value"] == 2


def test_the_heat_map_shows_the_lowest_value_darkest_on_one_scale_with_its_range(
    market: None, executive: Client
) -> None:
    from analytics.dashboard import HEAT_STEPS

    for heat in ("coverage", "penetration"):
        with time_machine.travel(NOW, tick=False):
            response = executive.get("/dashboard/", {"week": WEEK, "heat": heat})
        html = response.content.decode()
        cells = [c for c in response.context["report"]["heat"]["cells"] if c["value"] is not None]
        lowest = min(cells, key=lambda c: c["value"])
        highest = max(cells, key=lambda c: c["value"])
        classes = dict(
            re.findall(r'<td class="num (heat-[a-z0-9]+)" data-region="([^"]+)"', html)[::-1]
        )
        assert re.search(
            rf'<td class="num heat-0" data-region="{lowest["region"]}" '
            rf'data-vertical="{lowest["vertical"]}"',
            html,
        ), heat
        assert re.search(
            rf'<td class="num heat-{HEAT_STEPS - 1}" data-region="{highest["region"]}" '
            rf'data-vertical="{highest["vertical"]}"',
            html,
        ), heat
        assert classes
        legend = response.context["heat_legend"]
        assert legend[0]["css"] == "heat-0" and legend[-1]["css"] == f"heat-{HEAT_STEPS - 1}"
        assert legend[0]["from"] == board.show_ratio(lowest["value"])
        assert legend[-1]["to"] == board.show_ratio(highest["value"])
        assert 'data-testid="heat-legend"' in html


def test_what_drives_satisfaction_replaces_the_category_chart_and_says_when_data_is_too_little(
    market: None, executive: Client
) -> None:
    with time_machine.travel(NOW, tick=False):
        run("compute_metrics", "--week", WEEK, "--no-progress")
        response = executive.get("/dashboard/", {"week": WEEK})
    drivers = response.context["drivers"]
    html = response.content.decode()
    assert "satisfaction" not in response.context
    assert drivers["status"] == "too_little_data" and drivers["rows"] == []
    assert 'data-testid="drivers-too-little"' in html
    assert 'data-testid="drivers-table"' not in html


def test_the_trend_says_which_weeks_have_no_snapshot_and_the_print_header_names_the_filters(
    market: None, executive: Client
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/", {"week": WEEK, "region": "EAST", "span": "12"})
    html = response.content.decode()
    # Three runs: 2026-W45, 2026-W46 and the provisional 2026-W47; the 12 weeks to 2026-W46
    # miss ten of them.
    missing = response.context["missing_weeks"]
    assert missing == board.trailing_weeks("2026-W44", 10)
    assert 'data-testid="missing-weeks"' in html and "10 of 12" in html
    header = html[
        html.index('data-testid="print-header"') : html.index(
            "</div>", html.index('data-testid="print-header"')
        )
    ]
    assert WEEK in header and "as of" in header
    assert "Region: Region EAST" in header or "Region: EAST" in header
    assert "Vertical: All verticals" in header and "Trend: 12 weeks" in header


def test_the_white_space_links_list_the_accounts_the_week_counted(
    market: None, cast: Cast, executive: Client
) -> None:
    manager = Client()
    manager.force_login(cast.manager)
    with time_machine.travel(NOW, tick=False):
        response = executive.get("/dashboard/", {"week": WEEK})
        rows = response.context["report"]["white_space"]
        table = response.content.decode().split('data-testid="white-space-table"')[1]
        links = re.findall(r'<a href="([^"]+)">', table.split("</table>")[0])
        assert rows and len(links) == len(rows)
        for row, link in zip(rows, links, strict=True):
            url = unescape(link)
            assert "as_of=2026-11-15" in url
            listed = manager.get(url).context["page"].paginator.count
            assert listed == row["white_space"], row


def test_make_demo_computes_enough_weeks_for_the_longest_trend() -> None:
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    weeks = int(re.search(r"^DEMO_WEEKS \?= (\d+)$", makefile, re.M).group(1))
    # The longest trend ends on the latest closed week; the current week is computed too.
    assert weeks >= max(board.SPANS) + 1


def test_the_csv_files_show_names_and_rounded_percentages_beside_the_exact_fraction(
    market: None, executive: Client
) -> None:
    def table(name: str, **params: str) -> list[dict[str, str]]:
        with time_machine.travel(NOW, tick=False):
            response = executive.get(f"/dashboard/export/{name}.csv", {"week": WEEK, **params})
        return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    white_space = table("white_space")
    assert white_space and all(row["Size band"] in {"SMB", "Enterprise"} for row in white_space)
    assert {row["Region"] for row in white_space} <= {"Region EAST", "Region WEST"}
    for row in white_space:
        exact = float(row["Coverage (exact fraction)"])
        assert row["Coverage (%)"] == str(round(exact * 100, 1))
        assert len(row["Coverage (%)"].split(".")[1]) == 1
    channels = table("channels")
    assert {row["Channel"] for row in channels} == {
        "Direct sales",
        "Distribution",
        "Partner",
        "Online",
    }
    partners = table("partners")
    assert all(row["Channel"] in {"Partner", "Distribution"} for row in partners)
    assert all(len(row["Satisfaction (90 days)"].split(".")[-1]) <= 2 for row in partners)
    with _chinese(executive):
        chinese = table("heatmap")
    from django.utils import translation

    with translation.override("zh-hans"):
        region = str(translation.gettext("Region"))
    assert region != "Region" and region in chinese[0]


class _chinese:
    """Ask for the Chinese page through the language cookie."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> None:
        from django.conf import settings

        self.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    def __exit__(self, *args: object) -> None:
        from django.conf import settings

        self.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
