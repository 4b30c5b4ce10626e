"""The dashboard's revenue tables, their CSV files, the API and `metrics_export` on one random
market: the same figures to the cent, every table with its CSV link carrying the page's filters,
and the white-space value as a region x vertical table whose cells link to their accounts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from analytics import reports
from analytics.revenue_board import EXPORT_TABLES
from crm.models import Region
from tests.analytics.market import random_market, random_revenue
from tests.cast import Cast

pytestmark = pytest.mark.django_db

SEED = 5
WEEK = "2026-W10"  # as of Sunday 2026-03-08, inside the random market's deals
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


@pytest.fixture
def market(cast: Cast) -> None:
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        random_market(SEED, accounts=60)
        random_revenue(SEED, opportunities=120)
        for week in ("2026-W09", WEEK):
            call_command("compute_metrics", "--week", week, "--no-progress", stdout=io.StringIO())


def _page(client: Client, **filters: str) -> tuple[dict[str, Any], str]:
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/", {"week": WEEK, **filters})
    assert response.status_code == 200
    return response.context["revenue"], response.content.decode()


def _csv(client: Client, table: str, **filters: str) -> list[dict[str, str]]:
    with time_machine.travel(NOW, tick=False):
        response = client.get(f"/dashboard/export/{table}.csv", {"week": WEEK, **filters})
    assert response.status_code == 200, table
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _api(user: Any, by: str) -> list[dict[str, Any]]:
    """The API's rows, without the week every row repeats."""
    api = APIClient()
    api.force_authenticate(user)
    response = api.get("/api/v1/metrics/revenue/", {"week": WEEK, "by": by})
    assert response.status_code == 200
    return [{k: v for k, v in row.items() if k != "week"} for row in response.json()["results"]]


def _export(by: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    args = ["--week", WEEK, "--report", "revenue", "--by", by, "--format", "json"]
    call_command("metrics_export", *args, stdout=out)
    rows: list[dict[str, Any]] = json.loads(out.getvalue())["rows"]
    return rows


def _plain(shown: str) -> str:
    """A figure as the page shows it ("1,234.50") as the API writes it ("1234.50")."""
    return shown.replace(",", "")


def test_the_page_its_csv_files_the_api_and_the_export_agree_to_the_cent(
    market: None, cast: Cast
) -> None:
    client = Client()
    client.force_login(cast.executive)
    revenue, _html = _page(client)

    (total,) = _api(cast.executive, "total")
    assert [total] == _export("total")
    shown = {h["key"]: h["shown"] for h in revenue["headlines"]}
    assert _plain(shown["won_amount"]) == total["won_amount"]
    assert _plain(shown["mrr"]) == total["mrr"]
    assert _plain(shown["subscribers"]) == str(total["subscribers"])
    assert _plain(shown["arpa"]) == (total["arpa"] or "—")
    assert _plain(shown["pipeline_amount"]) == total["pipeline_amount"]
    assert _plain(shown["weighted_pipeline"]) == total["weighted_pipeline"]
    headlines = {row["Figure"]: row for row in _csv(client, "revenue_headlines")}
    assert headlines["Won revenue (52 weeks)"]["Value"] == total["won_amount"]
    assert headlines["ARPA (P)"]["Value"] == (total["arpa"] or "")
    assert headlines["Weighted pipeline"]["Value"] == total["weighted_pipeline"]

    api_channels = {row["channel"]: row for row in _api(cast.executive, "channel")}
    assert api_channels == {row["channel"]: row for row in _export("channel")}
    page_channels = {row["channel"]: row for row in revenue["channels"]}
    assert set(page_channels) == set(api_channels) and api_channels
    csv_channels = {row["Channel"]: row for row in _csv(client, "revenue_channels")}
    for channel, row in page_channels.items():
        api = api_channels[channel]
        assert _plain(row["sourced_shown"]) == api["won_amount"]
        assert _plain(row["influenced_shown"]) == api["influenced_amount"]
        assert _plain(row["mrr_shown"]) == api["mrr"]
        assert _plain(row["pipeline_shown"]) == api["pipeline_amount"]
        assert row["won_count"] == api["won_count"]
        line = csv_channels[str(row["label"])]
        assert (line["Sourced"], line["Influenced"], line["MRR"], line["Pipeline"]) == (
            api["won_amount"],
            api["influenced_amount"],
            api["mrr"],
            api["pipeline_amount"],
        )

    api_partners = {row["partner"]: row for row in _api(cast.executive, "partner")}
    assert api_partners == {row["partner"]: row for row in _export("partner")}
    assert revenue["partners"]
    for row in revenue["partners"]:
        api = api_partners[row["external_id"]]
        assert (_plain(row["won_shown"]), _plain(row["mrr_shown"])) == (
            api["won_amount"],
            api["mrr"],
        )
        assert _plain(row["pipeline_shown"]) == api["pipeline_amount"]
    csv_partners = {row["External id"]: row for row in _csv(client, "revenue_partners")}
    assert set(csv_partners) == set(api_partners), "every partner, not only the top ones"
    for external_id, api in api_partners.items():
        line = csv_partners[external_id]
        assert (line["Won (52 weeks)"], line["MRR"], line["Pipeline"]) == (
            api["won_amount"],
            api["mrr"],
            api["pipeline_amount"],
        )


def test_a_filter_applies_to_the_page_and_its_csv_alike(market: None, cast: Cast) -> None:
    client = Client()
    client.force_login(cast.executive)
    region = Region.objects.filter(code__startswith=f"R{SEED}-").order_by("code").first()
    assert region is not None

    revenue, _html = _page(client, region=region.code)
    rows = _csv(client, "revenue_channels", region=region.code)

    by_region = {
        row["channel"]: row
        for row in _api(cast.executive, "region")
        if row["region"] == region.code
    }
    assert {row["channel"] for row in revenue["channels"]} == set(by_region)
    assert sorted(row["Sourced"] for row in rows) == sorted(
        row["won_amount"] for row in by_region.values()
    )
    white_space = _csv(client, "revenue_white_space", region=region.code)
    assert white_space and {row["Region"] for row in white_space} == {region.name}


def test_every_revenue_table_links_its_csv_with_the_pages_filters(market: None, cast: Cast) -> None:
    client = Client()
    client.force_login(cast.manager)
    region = Region.objects.filter(code__startswith=f"R{SEED}-").order_by("code").first()
    assert region is not None

    _revenue, html = _page(client, region=region.code, span="26")

    section = html[html.index('data-testid="revenue"') :]
    links = re.findall(r'href="(/dashboard/export/(revenue_\w+)\.csv\?[^"]*)"', section)
    assert sorted(table for _link, table in links) == sorted(EXPORT_TABLES)
    for link, table in links:
        query = parse_qs(urlsplit(unescape(link)).query)
        assert query["week"] == [WEEK] and query["region"] == [region.code], table
        assert query["span"] == ["26"]
        assert _csv(client, table, region=region.code, span="26") is not None


def test_the_white_space_value_is_a_region_by_vertical_table_linked_to_its_accounts(
    market: None, cast: Cast
) -> None:
    client = Client()
    client.force_login(cast.executive)

    revenue, html = _page(client)

    table = revenue["white_space"]
    stored = {
        (row.region, row.vertical): row
        for row in reports.revenue_value_map(WEEK)
        if row.region and row.vertical
    }
    regions = sorted({region for region, _vertical in stored})
    verticals = sorted({vertical for _region, vertical in stored})
    assert [row["name"] for row in table["rows"]] == [
        Region.objects.get(code=code).name for code in regions
    ]
    assert len(table["verticals"]) == len(verticals) and table["has_totals_column"]
    for code, row in zip(regions, table["rows"], strict=True):
        for vertical, cell in zip(verticals, row["cells"], strict=True):
            figure = stored.get((code, vertical))
            value = figure.white_space_value if figure else None
            expected = "—" if value is None else f"{value.quantize(Decimal(1)):,}"
            assert cell["shown"] == expected
            query = parse_qs(urlsplit(cell["url"]).query)
            assert query["region"] == [code] and query["vertical"] == [vertical]
            assert query["coverage"] == ["none"] and query["as_of"] == ["2026-03-08"]
    # The totals are the stored rollups (rounded once), not sums of the shown cells.
    (everything,) = [r for r in reports.revenue_value_map(WEEK) if not r.region and not r.vertical]
    lines = _csv(client, "revenue_white_space")
    (total_line,) = [
        r for r in lines if (r["Region"], r["Vertical"]) == ("All regions", "All verticals")
    ]
    assert total_line["White-space value"] == str(everything.white_space_value)
    assert 'data-testid="revenue-white-space"' in html
    cells = [r for r in lines if r["Region"] != "All regions" and r["Vertical"] != "All verticals"]
    assert len(cells) == len(stored)
