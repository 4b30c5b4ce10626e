"""The read model: the rows `analytics.reports` gives every page, e-mail, export and API answer
are the stored segments summed as docs/metrics.md rule 5 says, then divided."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import combinations

import pytest
import time_machine

from analytics import metrics, reports, services
from analytics.models import MetricsRun, RunStatus
from partners.models import Partner
from tests.analytics.market import random_market
from tests.factories import FeedbackFactory

WEEK = "2026-W20"
PRIOR = "2026-W19"


@pytest.fixture
def stored() -> None:
    with time_machine.travel(datetime(2026, 5, 20, 12, 0, tzinfo=UTC), tick=False) as traveller:
        random_market(71, accounts=150)
        for number, partner in enumerate(Partner.objects.order_by("pk")):
            traveller.move_to(datetime(2026, 5, 11 + number % 6, 9, 0, tzinfo=UTC))
            FeedbackFactory(
                partner=partner, satisfaction=1 + number % 5, nps=(4, 9, 10)[number % 3]
            )
            FeedbackFactory(partner=partner, satisfaction=3, nps=None, category="support")
        traveller.move_to(datetime(2026, 5, 20, 12, 0, tzinfo=UTC))
        services.metrics_compute_weeks(weeks=[PRIOR, WEEK], final_weeks=[PRIOR, WEEK])


def test_segment_figures_carry_the_columns_the_metrics_write() -> None:
    assert list(reports.SegmentFigures._fields) == [
        "week",
        *metrics.SEGMENT_KEYS,
        *metrics.COUNT_COLUMNS,
        *metrics.RATIO_COLUMNS,
    ]
    assert list(reports.PartnerFigures._fields[3:]) == metrics.PARTNER_COLUMNS


@pytest.mark.django_db
def test_every_rollup_is_its_segments_summed_then_divided(stored: None) -> None:
    segments = reports.segments(WEEK)
    assert segments and all(s.week == WEEK for s in segments)
    values = {key: sorted({getattr(s, key) for s in segments}) for key in metrics.SEGMENT_KEYS}
    for size in range(len(metrics.SEGMENT_KEYS) + 1):
        for by in combinations(metrics.SEGMENT_KEYS, size):
            for narrowed in (*metrics.SEGMENT_KEYS, None):
                chosen = {narrowed: values[narrowed][0]} if narrowed else {}
                rows = reports.rollup([WEEK], by=by, **chosen)
                matching = [
                    s for s in segments if all(getattr(s, k) == v for k, v in chosen.items())
                ]
                groups: dict[tuple[str, ...], list[reports.SegmentFigures]] = {}
                for s in matching:
                    key = tuple(getattr(s, k) for k in by if k not in chosen)
                    groups.setdefault(key, []).append(s)
                assert len(rows) == len(groups), (by, chosen)
                for row in rows:
                    key = tuple(getattr(row, k) for k in by if k not in chosen)
                    for count in metrics.COUNT_COLUMNS:
                        assert getattr(row, count) == sum(getattr(s, count) for s in groups[key])
                    assert row.coverage == metrics.ratio(row.covered_any, row.accounts)
                    assert row.penetration == metrics.ratio(row.converted, row.accounts)


@pytest.mark.django_db
def test_a_trend_reads_one_row_a_week_and_skips_weeks_without_a_snapshot(stored: None) -> None:
    trend = reports.rollup(["2026-W18", PRIOR, WEEK])
    assert [row.week for row in trend] == [PRIOR, WEEK]
    assert trend[1].accounts == sum(s.accounts for s in reports.segments(WEEK))


@pytest.mark.django_db
def test_channel_figures_take_every_account_and_the_kinds_own_counts(stored: None) -> None:
    (total,) = reports.rollup([WEEK])
    channels = reports.channel_rollup(WEEK)
    assert [c.channel for c in channels] == list(metrics.KINDS)
    for channel in channels:
        assert channel.accounts == total.accounts
        assert channel.covered == getattr(total, f"covered_{channel.channel}")
        assert channel.converted == getattr(total, f"converted_{channel.channel}")
        assert channel.penetration == metrics.ratio(channel.converted, total.accounts)
    nothing = reports.channel_rollup(WEEK, region="NO-SUCH-REGION")
    assert [(c.accounts, c.coverage) for c in nothing] == [(0, None)] * len(metrics.KINDS)


@pytest.mark.django_db
def test_partner_totals_weight_satisfaction_and_count_nps_from_the_summed_scores(
    stored: None,
) -> None:
    partners = reports.partners(WEEK)
    assert [p.external_id for p in partners] == sorted(p.external_id for p in partners)
    (everyone,) = [t for t in reports.partner_totals([WEEK]) if t.week == WEEK]
    feedback = sum(p.feedback_count for p in partners)
    assert everyone.feedback_count == feedback > 0
    weighted = sum(p.satisfaction_mean * p.feedback_count for p in partners if p.feedback_count)
    assert everyone.satisfaction == pytest.approx(weighted / feedback)
    assert everyone.nps == metrics.nps_from_counts(
        sum(p.nps_responses for p in partners),
        sum(p.nps_promoters for p in partners),
        sum(p.nps_detractors for p in partners),
    )
    assert everyone.active_partners == sum(1 for p in partners if p.agreements_in_force)
    kinds = {p.channel_kind for p in partners}
    by_kind = [reports.partner_totals([WEEK], channel_kind=kind)[0] for kind in kinds]
    assert sum(t.partners for t in by_kind) == everyone.partners == len(partners)


@pytest.mark.django_db
def test_partners_are_read_in_the_order_asked_and_one_at_a_time(stored: None) -> None:
    least_satisfied = reports.partners(WEEK, order="satisfaction")
    means = [p.satisfaction_mean for p in least_satisfied if p.satisfaction_mean is not None]
    assert means == sorted(means)
    first = least_satisfied[0]
    assert reports.partners(WEEK, partner_id=first.partner_id) == [first]
    latest = reports.partner_latest(first.partner_id)
    assert latest is not None and latest.week == WEEK and latest.as_of == date(2026, 5, 17)
    assert reports.partner_latest(-1) is None


@pytest.mark.django_db
def test_feedback_figures_are_the_weeks_means_by_category(stored: None) -> None:
    cells = reports.feedback([WEEK])
    support = next(c for c in cells if c.category == "support")
    assert support.satisfaction == 3.0
    assert sum(c.feedback_count for c in cells) == 2 * Partner.objects.count()


@pytest.mark.django_db
def test_it_knows_the_weeks_it_holds(stored: None) -> None:
    assert reports.weeks() == [PRIOR, WEEK]
    assert reports.latest_week() == WEEK
    assert reports.has_week(WEEK, final=True) and not reports.has_week("2026-W18")
    options = reports.week_options()
    assert [o.week for o in options] == [WEEK, PRIOR]
    assert options[0].as_of == date(2026, 5, 17) and options[0].final
    # The dashboard's caches key on the same version as the API's.
    assert {o.version for o in options} == {reports.snapshot_version()}
    stored_week = reports.stored_week(WEEK)
    assert stored_week is not None and stored_week.as_of == options[0].as_of
    # A failed run lists no week but renews the version (its rows may be written), in both.
    MetricsRun.objects.create(
        week="2026-W21",
        as_of=date(2026, 5, 24),
        final=False,
        status=RunStatus.FAILED,
        started_at=datetime(2026, 5, 21, 8, 30, tzinfo=UTC),
        finished_at=datetime(2026, 5, 21, 8, 30, 15, 250000, tzinfo=UTC),
    )
    after = reports.week_options()
    assert [o.week for o in after] == [WEEK, PRIOR]
    assert {o.version for o in after} == {reports.snapshot_version()} != {options[0].version}


def test_it_refuses_an_unknown_rollup_key() -> None:
    with pytest.raises(ValueError):
        reports.rollup([WEEK], by=("planet",))
