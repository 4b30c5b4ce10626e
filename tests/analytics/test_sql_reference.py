"""The weekly run against the SQL reference (`analytics.sql_reference`), the one independent
implementation of docs/metrics.md rules 1-4 and of rule 6's coverage and agreement counts, on
random markets: the single-week database path and the backfill's in-memory path alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import product

import pandas as pd
import pytest

from analytics import metrics, selectors, services
from analytics.sql_reference import reference_partner_counts, reference_segment_counts
from crm.models import Region
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackCategory,
    FeedbackSource,
    PartnerKind,
)
from tests.analytics.market import random_market
from tests.factories import (
    AgreementFactory,
    FeedbackFactory,
    PartnerFactory,
    RegionFactory,
    VerticalFactory,
)

COUNTS = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]
PARTNER_COUNTS = ["partner_id", "covered_accounts", "converted_accounts", "agreements_in_force"]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COUNTS].sort_values(metrics.SEGMENT_KEYS).reset_index(drop=True)
    return frame.astype({column: "int64" for column in metrics.COUNT_COLUMNS})


def _partner_counts(figures: pd.DataFrame) -> pd.DataFrame:
    frame = figures[PARTNER_COUNTS].sort_values("partner_id").reset_index(drop=True)
    return frame.astype("int64")


def _database_figures(day: date) -> metrics.WeekFigures:
    groups, coverage, context = services.metrics_day_counts(day)
    return metrics.week_figures(
        groups=groups,
        partner_coverage=coverage,
        agreements=context.agreements,
        partners=context.partners,
        feedback=context.feedback,
        d=day,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_it_agrees_with_the_weekly_run_in_memory_and_in_the_database(seed: int) -> None:
    days = random_market(seed)
    prepared = metrics.PreparedMarket(**selectors.market_frames())
    for day in days:
        in_memory = prepared.week_figures(day)
        in_database = _database_figures(day)
        reference = _sorted(reference_segment_counts(day))
        pd.testing.assert_frame_equal(_sorted(in_memory.segments), reference, obj=f"memory {day}")
        pd.testing.assert_frame_equal(_sorted(in_database.segments), reference, obj=f"db {day}")
        partners = reference_partner_counts(day)
        pd.testing.assert_frame_equal(
            _partner_counts(in_memory.partners), partners, obj=f"memory partners {day}"
        )
        pd.testing.assert_frame_equal(
            _partner_counts(in_database.partners), partners, obj=f"db partners {day}"
        )


def _assert_same_programme_counts(swept: metrics.WeekFigures, single: metrics.WeekFigures) -> None:
    assert swept.programme is not None and single.programme is not None
    for name, key in (("partners", "partner_id"), ("reps", "rep_id")):
        pd.testing.assert_frame_equal(
            getattr(swept.programme, name).sort_values(key).reset_index(drop=True),
            getattr(single.programme, name).sort_values(key).reset_index(drop=True),
            obj=f"programme {name}",
        )


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [51, 52, 53, 54])
def test_a_backfill_gives_exactly_the_figures_of_a_single_week(seed: int) -> None:
    days = random_market(seed, accounts=120)
    prepared = metrics.PreparedMarket(**selectors.market_frames())
    swept = metrics.MarketSweep(prepared, days)
    for day in days:
        single = _database_figures(day)
        _assert_same_programme_counts(swept.week_figures(day), services.metrics_week_figures(day))
        for backfill, path in (
            (prepared.week_figures(day), "day"),
            (swept.week_figures(day), "swept"),
        ):
            for name in ("segments", "partners", "segment_rollups", "partner_rollups"):
                pd.testing.assert_frame_equal(
                    getattr(backfill, name).reset_index(drop=True),
                    getattr(single, name).reset_index(drop=True),
                    check_dtype=False,
                    obj=f"{path} {name} {day}",
                )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_week_read_on_two_connections_from_one_snapshot_equals_one_reader(seed: int) -> None:
    # Committed data (transaction=True): the assignments are read on a connection of its own.
    days = random_market(seed, accounts=120)
    for day in days:
        groups, coverage, _ = services.metrics_day_counts(day, parallel=True)
        single_groups, single_coverage, _ = services.metrics_day_counts(day, parallel=False)
        reference = _sorted(reference_segment_counts(day))
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(groups)), reference, obj=f"parallel {day}"
        )
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(single_groups)), reference, obj=f"one {day}"
        )
        pd.testing.assert_frame_equal(coverage, single_coverage, obj=f"partners {day}")


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [41, 42])
def test_a_region_share_of_the_week_counts_only_the_accounts_of_those_regions(seed: int) -> None:
    days = random_market(seed, accounts=120)
    region_ids = sorted(Region.objects.values_list("id", flat=True))
    for day in days:
        whole_groups, whole_coverage, _ = services.metrics_day_counts(day)
        shares = [services.metrics_day_counts(day, region_ids=[region]) for region in region_ids]
        merged = pd.concat([groups for groups, _, _ in shares], ignore_index=True)
        pd.testing.assert_frame_equal(
            _sorted(metrics.segment_counts(merged)),
            _sorted(metrics.segment_counts(whole_groups)),
            obj=f"groups {day}",
        )
        pd.testing.assert_frame_equal(
            metrics.summed_partner_coverage([coverage for _, coverage, _ in shares]),
            whole_coverage.sort_values("partner_id").reset_index(drop=True),
            obj=f"partners {day}",
        )
        for region_id, (groups, _, _) in zip(region_ids, shares, strict=True):
            code = Region.objects.get(id=region_id).code
            assert set(groups["region"]) <= {code}


@pytest.mark.django_db
def test_an_empty_market_gives_no_segments_and_no_partners() -> None:
    prepared = metrics.PreparedMarket(**selectors.market_frames())
    day = date(2026, 11, 15)
    for figures in (
        prepared.week_figures(day),
        metrics.MarketSweep(prepared, [day]).week_figures(day),
    ):
        assert figures.segments.empty and figures.partners.empty
    assert list(figures.segments.columns) == [*COUNTS, *metrics.RATIO_COLUMNS]
    assert _database_figures(date(2026, 11, 15)).segments.empty


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [55, 56])
def test_a_sweep_over_more_days_than_one_word_holds_equals_each_day_alone(seed: int) -> None:
    days = random_market(seed, accounts=60)
    first = min(days)
    sundays = [first + timedelta(days=6 - first.weekday() + 7 * week) for week in range(70)]
    prepared = metrics.PreparedMarket(**selectors.market_frames())
    swept = metrics.MarketSweep(prepared, [*sundays, *days])
    for day in [*sundays, *days]:
        alone, together = prepared.week_figures(day), swept.week_figures(day)
        for name in metrics.WeekFigures.__dataclass_fields__:
            if name in ("programme", "accounts", "influencing"):  # handed on, not figures
                continue
            pd.testing.assert_frame_equal(
                getattr(together, name).reset_index(drop=True),
                getattr(alone, name).reset_index(drop=True),
                obj=f"{name} {day}",
            )


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_feedback_read_as_arrays_equals_the_rows_read_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = datetime(2026, 11, 9, 23, 59, 59, 999999, tzinfo=UTC)
    for number, (kind, category, source, nps) in enumerate(
        product(PartnerKind.values, FeedbackCategory.values, FeedbackSource.values, [None, 0, 10])
    ):
        entry = FeedbackFactory(
            partner=PartnerFactory(channel_kind=kind),
            category=category,
            source=source,
            satisfaction=1 + number % 5,
            nps=nps,
        )
        # Some created at the same moment, the rest a second apart on either side of midnight.
        moment = created + timedelta(seconds=number // 3 - 20)
        Feedback.objects.filter(id=entry.id).update(created_at=moment)
    for since, moments in ((None, True), (date(2026, 11, 10), False), (date(2027, 1, 1), True)):
        arrays = selectors.feedback_frame(since=since, moments=moments)
        monkeypatch.setattr(selectors, "_feedback_arrays", lambda entries: None)
        rows = selectors.feedback_frame(since=since, moments=moments)
        monkeypatch.undo()
        assert list(arrays.columns) == list(rows.columns)
        columns = list(rows.columns)
        pd.testing.assert_frame_equal(
            arrays.sort_values(columns, ignore_index=True),
            rows.sort_values(columns, ignore_index=True),
            check_exact=True,
            obj=f"feedback since {since}",
        )
        if moments and len(rows):
            # Newest first, ties by id, as the model lists them.
            order = list(arrays[["created_us", "id"]].itertuples(index=False, name=None))
            assert order == sorted(order, reverse=True)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_agreements_read_as_arrays_equal_the_rows_read_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    regions = [RegionFactory() for _ in range(3)]
    verticals = [VerticalFactory() for _ in range(2)]
    start = date(2024, 2, 29)
    for number, status in enumerate(AgreementStatus.values * 3):
        terminated = status == AgreementStatus.TERMINATED
        # A draft may lack its signed date; every other agreement has one.
        unsigned = status == AgreementStatus.DRAFT and number % 8 == 0
        AgreementFactory(
            status=status,
            start_date=start + timedelta(days=number),
            end_date=start + timedelta(days=number + 400),
            signed_on=None if unsigned else date(1, 1, 1),
            terminated_on=start + timedelta(days=number + 30) if terminated else None,
            regions=regions[: number % 4],
            verticals=verticals[: number % 3],
        )
    Agreement.objects.filter(signed_on=date(1, 1, 1)).update(signed_on=date(9999, 12, 31))

    arrays = selectors.agreements_frame()
    monkeypatch.setattr(selectors, "_agreement_arrays", lambda: None)
    rows = selectors.agreements_frame()
    assert list(arrays.columns) == list(rows.columns) == metrics.AGREEMENT_COLUMNS
    assert len(rows) == 12
    dates = metrics.AGREEMENT_COLUMNS[3:]
    rows[dates] = rows[dates].apply(pd.to_datetime)
    arrays[dates] = arrays[dates].astype(rows[dates].dtypes.iloc[0])
    pd.testing.assert_frame_equal(
        arrays, rows.sort_values("agreement_id", ignore_index=True), check_exact=True
    )
    assert arrays["signed_on"].isna().sum() == 2
    # In force (rule 2) alike from either frame.
    for day in (start, start + timedelta(days=35), start + timedelta(days=500)):
        pd.testing.assert_frame_equal(
            metrics.agreements_in_force(arrays, day)[["agreement_id"]].reset_index(drop=True),
            metrics.agreements_in_force(rows, day)[["agreement_id"]].reset_index(drop=True),
        )

    for column in ("region", "vertical"):
        through = getattr(Agreement, f"{column}s").through
        stored = sorted(through.objects.values_list("agreement_id", f"{column}_id"))
        scopes = selectors.agreement_scopes(column)
        assert list(scopes.columns) == ["agreement_id", column]
        assert sorted(scopes.itertuples(index=False, name=None)) == stored
        assert len(stored) > 0
