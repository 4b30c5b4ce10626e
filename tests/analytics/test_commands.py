from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command

from analytics import metrics
from analytics.models import MetricsRun, SegmentSnapshot
from crm.models import ChannelKind
from tests.factories import (
    AccountFactory,
    CoverageAssignmentFactory,
    RegionFactory,
    VerticalFactory,
)

SNAPSHOT_COLUMNS = ("region", "vertical", "size_band", *metrics.COUNT_COLUMNS)
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def market() -> Any:
    with time_machine.travel(NOW, tick=False):
        east, fin = RegionFactory(code="EAST"), VerticalFactory(code="FIN")
        AccountFactory(
            region=east, vertical=fin, converted_on=date(2026, 2, 1), converted_via="direct"
        )
        CoverageAssignmentFactory(
            account=AccountFactory(region=east, vertical=fin), kind=ChannelKind.ONLINE
        )
        AccountFactory(
            region=RegionFactory(code="WEST"), vertical=fin, entered_on=date(2026, 12, 1)
        )
        yield


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_computes_one_week_as_final() -> None:
    assert "2026-W46" in run("compute_metrics", "--week", "2026-W46")
    assert MetricsRun.objects.get().final
    assert SegmentSnapshot.objects.filter(week="2026-W46").count() == 2


def test_it_computes_the_last_weeks_with_only_the_current_one_provisional() -> None:
    run("compute_metrics", "--last", "3", "--no-progress")
    runs = {r.week: r.final for r in MetricsRun.objects.all()}
    assert runs == {"2026-W45": True, "2026-W46": True, "2026-W47": False}


def test_it_backfills_a_range_of_weeks() -> None:
    output = run("compute_metrics", "--from", "2026-W01", "--to", "2026-W10", "--no-progress")
    assert "10 weeks" in output
    assert SegmentSnapshot.objects.values("week").distinct().count() == 10


def test_it_queues_a_week_split_by_region_with_the_rows_of_one_run() -> None:
    run("compute_metrics", "--week", "2026-W46")
    whole = sorted(SegmentSnapshot.objects.filter(week="2026-W46").values_list(*SNAPSHOT_COLUMNS))
    # Without REDIS_URL the tasks run in this process: the chord runs at once.
    assert "queued in 2 region shares" in run(
        "compute_metrics", "--week", "2026-W46", "--split", "2"
    )
    split = sorted(SegmentSnapshot.objects.filter(week="2026-W46").values_list(*SNAPSHOT_COLUMNS))
    assert split == whole
    assert MetricsRun.objects.filter(week="2026-W46", status="succeeded").count() == 2


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--from", "2026-W01", "--to", "2026-W02", "--split", "2"),
        ("--week", "2026-W01", "--split", "0"),
        ("--week", "2026-46"),
        ("--from", "2026-W10"),
        ("--from", "2026-W10", "--to", "2026-W01"),
        ("--week", "2026-W01", "--last", "2"),
        ("--last", "0"),
    ],
)
def test_it_rejects_bad_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        run("compute_metrics", *args)


def test_it_exports_segments_as_csv_with_counts_then_ratios() -> None:
    run("compute_metrics", "--week", "2026-W46")
    rows = list(csv.DictReader(io.StringIO(run("metrics_export", "--week", "2026-W46"))))
    assert list(rows[0]) == [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS, *metrics.RATIO_COLUMNS]
    east, west = rows
    assert (east["region"], east["accounts"], east["covered_online"], east["coverage"]) == (
        "EAST",
        "2",
        "1",
        "0.5",
    )
    assert (west["region"], west["accounts"], west["coverage"], west["penetration"]) == (
        "WEST",
        "0",
        "",
        "",
    )


def test_it_exports_totals_channels_and_partners_as_json() -> None:
    run("compute_metrics", "--week", "2026-W46")
    total = json.loads(
        run("metrics_export", "--week", "2026-W46", "--by", "total", "--format", "json")
    )
    assert total["rows"] == [
        {
            **{c: 0 for c in metrics.COUNT_COLUMNS},
            "accounts": 2,
            "covered_online": 1,
            "covered_any": 1,
            "converted": 1,
            "converted_direct": 1,
            "white_space": 1,
            "coverage": 0.5,
            "coverage_direct": 0.0,
            "coverage_distribution": 0.0,
            "coverage_partner": 0.0,
            "coverage_online": 0.5,
            "penetration": 0.5,
        }
    ]
    channels = json.loads(
        run("metrics_export", "--week", "2026-W46", "--by", "channel", "--format", "json")
    )["rows"]
    assert [row["channel"] for row in channels] == list(metrics.KINDS)
    assert channels[0] == {
        "channel": "direct",
        "accounts": 2,
        "covered": 0,
        "converted": 1,
        "coverage": 0.0,
        "penetration": 0.5,
    }
    by_region = run("metrics_export", "--week", "2026-W46", "--by", "region").splitlines()
    assert by_region[0].startswith("region,accounts,")
    assert run("metrics_export", "--week", "2026-W46", "--by", "partner").startswith(
        "external_id,name,channel_kind,covered_accounts"
    )


def test_it_refuses_to_export_a_week_without_a_snapshot() -> None:
    with pytest.raises(CommandError):
        run("metrics_export", "--week", "2026-W40")
