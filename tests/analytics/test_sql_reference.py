from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics import metrics, selectors
from analytics.sql_reference import reference_segment_counts
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
        in_database = metrics.segment_counts(selectors.mask_groups_on(day))
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
        in_database = selectors.partner_coverage_on(day)
        pd.testing.assert_frame_equal(
            in_memory.sort_values("partner_id").reset_index(drop=True),
            in_database.sort_values("partner_id").reset_index(drop=True),
            check_dtype=False,
            obj=f"partners {day}",
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("seed", "parts"), [(21, 2), (22, 3), (23, 5)])
def test_a_week_read_in_parts_from_one_snapshot_equals_one_reader(seed: int, parts: int) -> None:
    # Committed data (transaction=True): the parts read on connections of their own.
    days = random_market(seed, accounts=120)
    for day in days:
        groups, coverage = selectors.week_aggregates_on(day, parts=parts)
        reference = reference_segment_counts(day)
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(groups)), _sorted(reference), obj=f"parts {day}"
        )
        pd.testing.assert_frame_equal(
            coverage.sort_values("partner_id").reset_index(drop=True),
            selectors.partner_coverage_on(day).sort_values("partner_id").reset_index(drop=True),
            check_dtype=False,
            obj=f"partners {day}",
        )


@pytest.mark.django_db
@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_id_ranges_cover_every_account_once_with_open_ends(parts: int) -> None:
    random_market(31, accounts=50)
    ranges = selectors._id_ranges(parts)
    assert len(ranges) == parts
    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(parts - 1))


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
