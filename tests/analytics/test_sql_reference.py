from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics import metrics, selectors
from analytics.sql_reference import reference_segment_counts
from crm.models import Region
from tests.analytics.market import random_market

COUNTS = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COUNTS].sort_values(metrics.SEGMENT_KEYS).reset_index(drop=True)
    return frame.astype({column: "int64" for column in metrics.COUNT_COLUMNS})


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_it_agrees_with_the_pandas_paths_on_random_markets(seed: int) -> None:
    days = random_market(seed)
    frames = selectors.market_frames()
    for day in days:
        in_memory, _ = metrics.week_metrics(d=day, **frames)
        in_database = metrics.segment_counts(selectors.week_aggregates_on(day)[0])
        reference = reference_segment_counts(day)
        pd.testing.assert_frame_equal(_sorted(in_memory), _sorted(reference), obj=f"memory {day}")
        pd.testing.assert_frame_equal(_sorted(in_database), _sorted(reference), obj=f"db {day}")


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_it_agrees_on_partner_coverage_in_memory_and_in_the_database(seed: int) -> None:
    days = random_market(seed)
    frames = selectors.market_frames()
    for day in days:
        active = metrics.active_coverage(
            frames["coverage"],
            frames["accounts"],
            frames["agreements"],
            frames["agreement_regions"],
            frames["agreement_verticals"],
            day,
        )
        in_memory = metrics.partner_coverage_counts(active, frames["accounts"], day)
        in_database = selectors.week_aggregates_on(day)[1]
        pd.testing.assert_frame_equal(
            in_memory.sort_values("partner_id").reset_index(drop=True),
            in_database.sort_values("partner_id").reset_index(drop=True),
            check_dtype=False,
            obj=f"partners {day}",
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_week_read_on_two_connections_from_one_snapshot_equals_one_reader(seed: int) -> None:
    # Committed data (transaction=True): the assignments are read on a connection of its own.
    days = random_market(seed, accounts=120)
    for day in days:
        groups, coverage = selectors.week_aggregates_on(day, parallel=True)
        single_groups, single_coverage = selectors.week_aggregates_on(day, parallel=False)
        reference = reference_segment_counts(day)
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(groups)), _sorted(reference), obj=f"parallel {day}"
        )
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(single_groups)), _sorted(reference), obj=f"one {day}"
        )
        pd.testing.assert_frame_equal(coverage, single_coverage, obj=f"partners {day}")


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [41, 42])
def test_a_region_share_of_the_week_counts_only_the_accounts_of_those_regions(seed: int) -> None:
    days = random_market(seed, accounts=120)
    region_ids = sorted(Region.objects.values_list("id", flat=True))
    for day in days:
        whole_groups, whole_coverage = selectors.week_aggregates_on(day)
        shares = [
            selectors.week_aggregates_on(day, region_ids=[region_id]) for region_id in region_ids
        ]
        merged = pd.concat([groups for groups, _ in shares], ignore_index=True)
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(merged)),
            _sorted(metrics.segment_counts(whole_groups)),
            obj=f"groups {day}",
        )
        pd.testing.assert_frame_equal(
            metrics.summed_partner_coverage([coverage for _, coverage in shares]),
            whole_coverage.sort_values("partner_id").reset_index(drop=True),
            obj=f"partners {day}",
        )
        for region_id, (groups, _) in zip(region_ids, shares, strict=True):
            code = Region.objects.get(id=region_id).code
            assert set(groups["region"]) <= {code}


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [51, 52, 53, 54])
def test_the_prepared_market_gives_exactly_the_week_metrics_on_every_checked_day(
    seed: int,
) -> None:
    days = random_market(seed, accounts=120)
    frames = selectors.market_frames()
    prepared = metrics.PreparedMarket(**frames)
    for day in days:
        segments, partners = metrics.week_metrics(d=day, **frames)
        fast_segments, fast_partners = prepared.week_metrics(day)
        pd.testing.assert_frame_equal(fast_segments, segments, obj=f"segments {day}")
        pd.testing.assert_frame_equal(fast_partners, partners, obj=f"partners {day}")


@pytest.mark.django_db
def test_the_prepared_market_of_an_empty_market_gives_no_segments() -> None:
    frames = selectors.market_frames()
    segments, partners = metrics.PreparedMarket(**frames).week_metrics(date(2026, 11, 15))
    expected_segments, expected_partners = metrics.week_metrics(d=date(2026, 11, 15), **frames)
    assert segments.empty and expected_segments.empty
    assert list(segments.columns) == list(expected_segments.columns)
    pd.testing.assert_frame_equal(partners, expected_partners)
