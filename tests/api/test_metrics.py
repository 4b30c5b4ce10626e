"""The metrics endpoints return the snapshot figures `metrics_export` prints."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from analytics import reports
from analytics.models import MetricsRun, RunStatus
from crm.models import ChannelKind
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    RegionFactory,
    VerticalFactory,
)

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WEEKS = ["2026-W45", "2026-W46", "2026-W47"]


@pytest.fixture
def snapshots(cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
        finance, retail = VerticalFactory(code="FIN"), VerticalFactory(code="RET")
        AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1), regions=[east])
        for position in range(12):
            account = AccountFactory(
                region=(east, west)[position % 2],
                vertical=(finance, retail)[position % 3 == 0],
                size_band=("smb", "enterprise")[position % 4 == 0],
                entered_on=date(2026, 11, 1 + position),
                converted_on=date(2026, 11, 5) if position % 5 == 0 else None,
                converted_via="direct" if position % 5 == 0 else "",
            )
            if position % 2 == 0:
                CoverageAssignmentFactory(
                    account=account, kind=ChannelKind.PARTNER, partner=cast.partner_a
                )
            if position % 3 == 0:
                CoverageAssignmentFactory(account=account, kind=ChannelKind.DIRECT, rep=cast.rep)
        FeedbackFactory(partner=cast.partner_a, satisfaction=5, nps=10)
        call_command(
            "compute_metrics",
            "--from",
            WEEKS[0],
            "--to",
            WEEKS[-1],
            "--no-progress",
            stdout=io.StringIO(),
        )


def exported(week: str, by: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("metrics_export", "--week", week, "--by", by, "--format", "json", stdout=out)
    return json.loads(out.getvalue())["rows"]


@pytest.mark.parametrize(
    "by", ["segment", "region", "vertical", "size_band", "channel", "partner", "total"]
)
def test_it_returns_the_same_figures_as_metrics_export(
    cast: Cast, snapshots: None, api_as: Client, by: str
) -> None:
    response = api_as(cast.executive).get(
        "/api/v1/metrics/rollup/", {"week": "2026-W46", "by": by, "page_size": 5000}
    )
    assert response.status_code == 200
    rows = response.json()["results"]
    expected = exported("2026-W46", by)
    assert len(rows) == len(expected) > 0
    for row, want in zip(rows, expected, strict=True):
        assert {key: row[key] for key in want} == pytest.approx(want)


def test_it_lists_segments_of_a_region(cast: Cast, snapshots: None, api_as: Client) -> None:
    api = api_as(cast.manager)
    rows = api.get("/api/v1/metrics/segments/", {"week": "2026-W46", "region": "EAST"}).json()
    expected = [row for row in exported("2026-W46", "segment") if row["region"] == "EAST"]
    assert [r["accounts"] for r in rows["results"]] == [r["accounts"] for r in expected]
    assert {r["region"] for r in rows["results"]} == {"EAST"}


def test_it_gives_a_trend_over_a_week_range(cast: Cast, snapshots: None, api_as: Client) -> None:
    api = api_as(cast.executive)
    rows = api.get(
        "/api/v1/metrics/trend/", {"first": "2026-W44", "last": "2026-W47", "by": "total"}
    ).json()["results"]
    assert [r["week"] for r in rows] == WEEKS
    for row in rows:
        (total,) = exported(row["week"], "total")
        assert row["accounts"] == total["accounts"]
        assert row["coverage"] == pytest.approx(total["coverage"])


def test_it_gives_per_partner_figures(cast: Cast, snapshots: None, api_as: Client) -> None:
    rows = (
        api_as(cast.manager)
        .get("/api/v1/metrics/partners/", {"week": "2026-W47", "partner": cast.partner_a.pk})
        .json()["results"]
    )
    (want,) = [r for r in exported("2026-W47", "partner") if r["external_id"] == "P-ALPHA"]
    assert rows[0]["partner"] == cast.partner_a.pk
    assert {key: rows[0][key] for key in want} == want


def test_it_answers_404_for_a_week_without_snapshot_and_400_for_a_bad_week(
    cast: Cast, snapshots: None, api_as: Client
) -> None:
    api = api_as(cast.manager)
    assert api.get("/api/v1/metrics/segments/", {"week": "2020-W01"}).status_code == 404
    bad = api.get("/api/v1/metrics/segments/", {"week": "2026-W99"})
    assert bad.status_code == 400
    assert "week" in bad.json()


def test_it_keeps_metrics_from_reps_and_lists_runs_for_leadership(
    cast: Cast, snapshots: None, api_as: Client
) -> None:
    assert api_as(cast.rep_user).get("/api/v1/metrics/rollup/").status_code == 404
    runs = api_as(cast.executive).get("/api/v1/metrics/runs/").json()
    assert sorted(r["week"] for r in runs["results"]) == WEEKS
    assert {r["status"] for r in runs["results"]} == {"succeeded"}
    weeks = api_as(cast.executive).get("/api/v1/metrics/weeks/").json()["results"]
    assert [w["week"] for w in weeks] == WEEKS


def test_it_narrows_a_rollup_to_a_region(cast: Cast, snapshots: None, api_as: Client) -> None:
    east = [row for row in exported("2026-W46", "segment") if row["region"] == "EAST"]
    rows = (
        api_as(cast.manager)
        .get("/api/v1/metrics/rollup/", {"week": "2026-W46", "by": "channel", "region": "EAST"})
        .json()["results"]
    )
    direct = next(row for row in rows if row["channel"] == "direct")
    assert direct["accounts"] == sum(row["accounts"] for row in east)
    assert direct["covered"] == sum(row["covered_direct"] for row in east)


def test_a_page_is_the_json_of_its_rows_whether_read_or_cached(
    cast: Cast, snapshots: None, api_as: Client
) -> None:
    api = api_as(cast.manager)
    query = {"week": "2026-W46", "page": 2, "page_size": 2}
    read = api.get("/api/v1/metrics/segments/", query)  # the rows read, encoded and cached
    cached = api.get("/api/v1/metrics/segments/", query)
    assert read.status_code == cached.status_code == 200
    assert cached.content == read.content
    page = json.loads(read.content)
    rows = [row._asdict() for row in reports.segments("2026-W46")]
    assert page["count"] == len(rows) > 4
    assert page["results"] == rows[2:4]
    assert "page=3" in page["next"] and "page_size=2" in page["previous"]
    # The same bytes as the API's renderer writes for the rows as dicts.
    assert read.content == JSONRenderer().render(page)
    indented = api.get("/api/v1/metrics/segments/", query, HTTP_ACCEPT="application/json; indent=2")
    assert indented.content == JSONRenderer().render(page, "application/json; indent=2")


def test_a_new_run_of_the_week_is_answered_at_once(
    cast: Cast, snapshots: None, api_as: Client
) -> None:
    api = api_as(cast.executive)
    query = {"week": "2026-W46", "by": "total"}
    (before,) = api.get("/api/v1/metrics/rollup/", query).json()["results"]
    with time_machine.travel(NOW, tick=False):
        AccountFactory(region=RegionFactory(code="NORTH"), entered_on=date(2026, 11, 2))
        call_command("compute_metrics", "--week", "2026-W46", "--no-progress", stdout=io.StringIO())
    (after,) = api.get("/api/v1/metrics/rollup/", query).json()["results"]
    assert after["accounts"] == before["accounts"] + 1


def test_a_finished_run_changes_the_snapshot_version_whether_it_succeeded_or_not() -> None:
    version = reports.snapshot_version()
    run = MetricsRun.objects.create(
        week="2026-W46", as_of=date(2026, 11, 15), final=True, started_at=NOW
    )
    assert reports.snapshot_version() == version  # running: its rows may not be there yet
    run.status, run.finished_at = RunStatus.FAILED, NOW
    run.save()
    failed = reports.snapshot_version()
    assert failed != version
    MetricsRun.objects.create(
        week="2026-W46",
        as_of=date(2026, 11, 15),
        final=True,
        status=RunStatus.SUCCEEDED,
        started_at=NOW,
        finished_at=NOW,
    )
    assert reports.snapshot_version() not in {version, failed}


def test_figures_cached_for_leadership_reach_no_one_else(
    cast: Cast, snapshots: None, api_as: Client
) -> None:
    path = "/api/v1/metrics/segments/?week=2026-W46&page_size=5000"
    assert api_as(cast.manager).get(path).status_code == 200
    for outsider in (cast.partner_a_user, cast.partner_b_user, cast.rep_user):
        refused = api_as(outsider).get(path)
        assert refused.status_code == 404
        assert b"accounts" not in refused.content
