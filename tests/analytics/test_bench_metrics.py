"""bench_metrics --opportunities: it seeds deals on the bench market and prints the week and the
backfill timed without and with revenue, and the programme step's share of the week (the
figures are for the README, not asserted)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from analytics import reports
from analytics.management.commands import bench_metrics
from analytics.models import MetricsRun
from channels.models import CoverageAssignment, Opportunity
from crm.models import Account

# Seeded in a forked child, as the command does: a database other connections see.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_it_times_the_week_the_backfill_the_programme_and_the_scorecard() -> None:
    out = io.StringIO()

    call_command(
        "bench_metrics",
        "--accounts",
        "300",
        "--opportunities",
        "400",
        "--repeat",
        "1",
        "--backfill-weeks",
        "1",
        "--partners",
        "30",
        stdout=out,
    )

    lines = out.getvalue().strip().splitlines()
    last = next(line for line in reversed(lines) if "backfill_ratio" in line)
    assert re.fullmatch(
        r"bench_metrics: accounts=300 opportunities=400 week_seconds=[\d.]+ "
        r"week_revenue_seconds=[\d.]+ week_ratio=[\d.]+ backfill_weeks=1 "
        r"backfill_seconds=[\d.]+ backfill_revenue_seconds=[\d.]+ backfill_ratio=[\d.]+",
        last,
    ), last
    assert Opportunity.objects.count() == 400
    # The programme step's share of the week, without and with the deals, for 30 partners.
    programme = [line for line in lines if "programme_share" in line]
    assert [line.split(" programme_seconds")[0] for line in programme] == [
        "bench_metrics: partners=30 opportunities=0",
        "bench_metrics: partners=30 opportunities=400",
    ]
    for line in programme:
        found = re.search(
            r"programme_seconds=([\d.]+) week_seconds=([\d.]+) rest_seconds=([\d.]+) "
            r"programme_share=[\d.]+$",
            line,
        )
        assert found, line
        step, week, rest = map(float, found.groups())
        # The step is timed inside the weekly runs: a part of the week, the rest the remainder.
        assert 0 < step < week, line
        assert rest == pytest.approx(week - step, abs=0.0015), line
    assert set(Opportunity.objects.values_list("channel", flat=True)) == {
        "direct",
        "distribution",
        "partner",
        "online",
    }
    assert reports.revenue_problem("2026-W46") == ""
    (total,) = reports.revenue_rollup(["2026-W46"])
    assert total.won_count > 0 and total.pipeline_count > 0

    # The portal scorecard on that market: the week before computed too, for its trend.
    out = io.StringIO()
    call_command("bench_scorecard", "--weeks", "2", "--users", "3", "--requests", "6", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(
        r"bench_scorecard: partners=\d+ weeks=2 requests=6 p50_ms=[\d.]+ p95_ms=[\d.]+ "
        r"cpu_p95_ms=[\d.]+ queries=\d+",
        last,
    ), last
    assert reports.programme_weeks() == ["2026-W46", "2026-W45"]


def _schema(tables: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The tables' indexes and constraints by name and kind (PostgreSQL words a re-created
    exclusion constraint's condition differently, with the same meaning)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indisunique::text, indisexclusion::text "
            "FROM pg_index WHERE indrelid = ANY(%s::regclass[]) UNION ALL "
            "SELECT conname, contype::text, convalidated::text FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
            [list(tables), list(tables)],
        )
        return list(cursor.fetchall())


def test_it_seeds_a_market_in_blocks_and_rebuilds_every_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = (Account._meta.db_table, CoverageAssignment._meta.db_table)
    schema = _schema(tables)
    monkeypatch.setattr(bench_metrics, "SEED_CHUNK", 100)
    out = io.StringIO()

    call_command("bench_metrics", "--accounts", "250", "--seed-only", "--partners", "9", stdout=out)

    assert "seeded 250 accounts" in out.getvalue()
    assert "bench_metrics:" not in out.getvalue()  # nothing timed
    assert _schema(tables) == schema
    assert Account.objects.count() == 250
    assert not MetricsRun.objects.exists()
    # Each block's assignments went to that block's accounts: 0-3 kinds an account, one
    # assignment per kind, accounts of every block covered.
    per_kind = CoverageAssignment.objects.values("account", "kind").annotate(n=Count("id"))
    assert {row["n"] for row in per_kind} == {1}
    covered = sorted(
        Account.objects.filter(coverage_assignments__isnull=False)
        .values_list("external_id", flat=True)
        .distinct()
    )
    assert {int(external_id[1:]) // 100 for external_id in covered} == {0, 1, 2}


def test_it_times_a_backfill_last_when_asked() -> None:
    out = io.StringIO()

    call_command(
        "bench_metrics",
        "--accounts",
        "120",
        "--repeat",
        "1",
        "--backfill",
        "--backfill-weeks",
        "3",
        "--partners",
        "6",
        stdout=out,
    )

    last = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(
        r"bench_metrics: accounts=120 backfill_weeks=3 backfill_seconds=[\d.]+ peak_rss_mb=\d+",
        last,
    ), last
    # The three weeks up to 2026-W46 were written, as compute_metrics --from --to writes them.
    assert reports.weeks() == ["2026-W44", "2026-W45", "2026-W46"]
