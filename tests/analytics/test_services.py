from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import time_machine
from django.apps import apps
from django.utils import timezone

from analytics import metrics, programme_services, reports, selectors, services
from analytics.locks import LockBusy, named_lock
from analytics.models import (
    FeedbackRollup,
    MetricsLock,
    MetricsRun,
    PartnerRollup,
    PartnerSnapshot,
    RunStatus,
    SegmentSnapshot,
)
from crm.models import ChannelKind, Region
from partners.models import Feedback, Partner
from tests.analytics.market import random_market, random_revenue
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    PartnerFactory,
    RegionFactory,
    VerticalFactory,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in 2026-W47

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def snapshot_rows(week: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    skip = {"id", "created_at", "updated_at"}
    segment_fields = [f.attname for f in SegmentSnapshot._meta.fields if f.attname not in skip]
    partner_fields = [f.attname for f in PartnerSnapshot._meta.fields if f.attname not in skip]
    return (
        list(
            SegmentSnapshot.objects.filter(week=week)
            .order_by("region", "vertical", "size_band")
            .values_list(*segment_fields)
        ),
        list(
            PartnerSnapshot.objects.filter(week=week)
            .order_by("external_id")
            .values_list(*partner_fields)
        ),
    )


def small_market() -> None:
    east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
    finance = VerticalFactory(code="FIN")
    partner = PartnerFactory(external_id="P-ONE")
    AgreementFactory(partner=partner, start_date=date(2026, 1, 1), regions=[east])
    covered = AccountFactory(
        region=east,
        vertical=finance,
        converted_on=date(2026, 3, 1),
        converted_via=ChannelKind.PARTNER,
    )
    CoverageAssignmentFactory(account=covered, kind=ChannelKind.PARTNER, partner=partner)
    CoverageAssignmentFactory(account=covered, kind=ChannelKind.DIRECT)
    outside = AccountFactory(region=west, vertical=finance)
    CoverageAssignmentFactory(account=outside, kind=ChannelKind.PARTNER, partner=partner)
    AccountFactory(region=west, vertical=finance, entered_on=date(2026, 12, 1))
    FeedbackFactory(partner=partner, satisfaction=5, nps=10)


def test_it_writes_the_week_as_of_its_sunday() -> None:
    small_market()
    run = services.metrics_compute_week(week="2026-W46", final=True)
    assert run.status == RunStatus.SUCCEEDED
    assert run.as_of == date(2026, 11, 15)
    # Two segments and one partner; the programme's row of that partner and the week's
    # regression record (too little data: no coefficient).
    assert run.rows_written == 5
    east = SegmentSnapshot.objects.get(week="2026-W46", region="EAST")
    assert (east.accounts, east.covered_partner, east.covered_direct, east.overlap) == (1, 1, 1, 1)
    assert (east.converted, east.converted_partner, east.penetration) == (1, 1, 1.0)
    west = SegmentSnapshot.objects.get(week="2026-W46", region="WEST")
    # The agreement grants EAST only, and the second WEST account enters after the week.
    assert (west.accounts, west.covered_partner, west.white_space) == (1, 0, 1)
    partner = PartnerSnapshot.objects.get(week="2026-W46")
    assert (partner.external_id, partner.covered_accounts, partner.converted_accounts) == (
        "P-ONE",
        1,
        1,
    )
    # The feedback is created "now", after the Sunday: outside the window of 2026-W46.
    assert (partner.agreements_in_force, partner.feedback_count, partner.nps) == (1, 0, None)


def test_it_computes_a_provisional_week_as_of_today() -> None:
    small_market()
    run = services.metrics_compute_week(week="2026-W47", final=False)
    assert run.as_of == date(2026, 11, 18)
    assert not run.final
    partner = PartnerSnapshot.objects.get(week="2026-W47")
    assert (partner.feedback_count, partner.satisfaction_mean, partner.nps) == (1, 5.0, 100.0)
    assert (partner.nps_responses, partner.nps_promoters, partner.nps_detractors) == (1, 1, 0)
    rollup = PartnerRollup.objects.get(week="2026-W47", channel_kind="")
    assert (rollup.nps_responses, rollup.nps_promoters, rollup.nps_detractors) == (1, 1, 0)
    # The feedback of the week so far, by category, for its partner's kind and for everyone.
    entry = Feedback.objects.get()
    cells = FeedbackRollup.objects.filter(week="2026-W47").values_list(
        "as_of", "channel_kind", "category", "feedback_count", "satisfaction_sum"
    )
    assert sorted(cells) == [
        (date(2026, 11, 18), "", entry.category, 1, 5),
        (date(2026, 11, 18), partner.channel_kind, entry.category, 1, 5),
    ]
    assert not FeedbackRollup.objects.filter(week="2026-W46").exists()


def test_it_writes_names_with_tabs_backslashes_and_line_breaks_as_they_are() -> None:
    small_market()
    name = "Tab\there \\N back\\slash\nnew line\r\n中文"
    Partner.objects.filter(external_id="P-ONE").update(name=name)
    services.metrics_compute_week(week="2026-W46", final=True)
    stored = PartnerSnapshot.objects.get(week="2026-W46", external_id="P-ONE")
    assert stored.name == name
    assert stored.satisfaction_mean is None and stored.nps is None  # no feedback by then


def test_it_gives_identical_rows_when_run_twice() -> None:
    small_market()
    services.metrics_compute_week(week="2026-W46", final=True)
    first = snapshot_rows("2026-W46")
    services.metrics_compute_week(week="2026-W46", final=True)
    assert snapshot_rows("2026-W46") == first
    assert MetricsRun.objects.filter(week="2026-W46", status=RunStatus.SUCCEEDED).count() == 2


def test_it_leaves_a_failed_run_visible_and_the_old_rows_in_place(monkeypatch: Any) -> None:
    small_market()
    services.metrics_compute_week(week="2026-W46", final=True)
    before = snapshot_rows("2026-W46")

    def broken(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(selectors, "week_read", broken)
    with pytest.raises(RuntimeError):
        services.metrics_compute_week(week="2026-W46", final=True)
    failed = MetricsRun.objects.filter(status=RunStatus.FAILED).get()
    assert "disk on fire" in failed.error
    assert failed.finished_at is not None
    assert snapshot_rows("2026-W46") == before
    assert not MetricsLock.objects.exists()

    monkeypatch.undo()
    assert services.metrics_compute_week(week="2026-W46", final=True).status == "succeeded"
    assert snapshot_rows("2026-W46") == before


def test_it_refuses_to_overlap_with_a_run_of_the_same_week() -> None:
    small_market()
    with named_lock("metrics:week:2026-W46", ttl_seconds=60):
        with pytest.raises(services.MetricsRunInProgress):
            services.metrics_compute_week(week="2026-W46", final=True)
        # Another week is not blocked.
        services.metrics_compute_week(week="2026-W45", final=True)
    assert not SegmentSnapshot.objects.filter(week="2026-W46").exists()


def test_it_takes_over_the_lock_of_a_dead_run_and_marks_that_run_failed() -> None:
    small_market()
    MetricsLock.objects.create(
        name="metrics:week:2026-W46", token="dead", expires_at=timezone.now() - timedelta(seconds=1)
    )
    MetricsRun.objects.create(
        week="2026-W46", as_of=date(2026, 11, 15), final=True, started_at=timezone.now()
    )
    run = services.metrics_compute_week(week="2026-W46", final=True)
    assert run.status == RunStatus.SUCCEEDED
    abandoned = MetricsRun.objects.exclude(pk=run.pk).get()
    assert abandoned.status == RunStatus.FAILED
    assert "abandoned" in abandoned.error


def test_it_keeps_a_live_database_lock() -> None:
    with named_lock("some-job", ttl_seconds=60):
        with pytest.raises(LockBusy):
            with named_lock("some-job", ttl_seconds=60):
                pass
    with named_lock("some-job", ttl_seconds=60):
        pass


def test_it_rejects_a_malformed_week() -> None:
    with pytest.raises(ValueError):
        services.metrics_compute_week(week="2026-46", final=True)
    assert not MetricsRun.objects.exists()


def test_it_gives_the_same_rows_from_a_backfill_as_from_single_weeks() -> None:
    random_market(21, accounts=120)
    FeedbackFactory(partner=PartnerFactory(), satisfaction=2, nps=4)
    weeks = ["2026-W03", "2026-W10", "2026-W17", "2026-W47"]
    services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks[:3])
    backfilled = {week: snapshot_rows(week) for week in weeks}
    for week in weeks:
        services.metrics_compute_week(week=week, final=week in weeks[:3])
        assert snapshot_rows(week) == backfilled[week], week


def test_a_backfill_of_weeks_written_already_gives_the_rows_of_single_weeks() -> None:
    random_market(23, accounts=120)
    FeedbackFactory(partner=PartnerFactory(), satisfaction=2, nps=4)
    weeks = ["2026-W44", "2026-W45", "2026-W46"]
    services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    partners = list(Partner.objects.order_by("pk").values_list("pk", flat=True))
    # A week with a partner's row missing, a week with stale figures, and a new partner.
    PartnerSnapshot.objects.filter(week="2026-W44", partner_id=partners[0]).delete()
    PartnerSnapshot.objects.filter(week="2026-W45").update(covered_accounts=99, nps=None)
    PartnerFactory()
    services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    backfilled = {week: snapshot_rows(week) for week in weeks}
    for week in weeks:
        services.metrics_compute_week(week=week, final=True)
        assert snapshot_rows(week) == backfilled[week], week


def week_rows(weeks: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a run writes for `weeks`, of every model kept by week (the metrics, revenue
    and programme rows, and the tier changes), by model, without ids and time stamps."""
    skip = {"id", "created_at", "updated_at"}
    rows = {}
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        if "week" not in names or model in (MetricsRun, MetricsLock):
            continue
        found = model._default_manager.filter(week__in=weeks).values_list(*names)
        rows[model._meta.label] = sorted(found, key=repr)
    return rows


@pytest.mark.parametrize("seed", [31, 32])
def test_a_backfill_writes_every_row_a_run_of_each_week_in_turn_writes(seed: int) -> None:
    random_market(seed, accounts=100)
    random_revenue(seed, opportunities=60)
    for number, partner in enumerate(Partner.objects.order_by("pk")[:4]):
        FeedbackFactory(partner=partner, satisfaction=1 + number, nps=5 + number)
    weeks = metrics.iso_weeks_between("2026-W41", "2026-W47")
    services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks[:-1])
    backfilled = week_rows(weeks)
    assert backfilled["analytics.PartnerSnapshot"] and backfilled["analytics.PartnerProgramme"]
    for week in weeks:
        services.metrics_compute_week(week=week, final=week != weeks[-1])
    assert week_rows(weeks) == backfilled


def _three_weeks_the_first_closed(
    *, seed: int
) -> tuple[list[str], dict[str, list[tuple[Any, ...]]]]:
    """A random market's three weeks to backfill, the first computed and closed already, and
    their rows as they are before the backfill."""
    random_market(seed, accounts=60)
    weeks = ["2026-W44", "2026-W45", "2026-W46"]
    services.metrics_compute_week(week="2026-W44", final=True)
    return weeks, week_rows(weeks)


def test_a_failing_week_fails_the_backfill_and_leaves_every_week_as_it_was(
    monkeypatch: Any,
) -> None:
    weeks, before = _three_weeks_the_first_closed(seed=33)
    original = programme_services.week_programme

    def broken(each: programme_services.ProgrammeWeek, *args: Any, **kwargs: Any) -> Any:
        if each.week == "2026-W45":
            raise RuntimeError("disk on fire")
        return original(each, *args, **kwargs)

    monkeypatch.setattr(programme_services, "week_programme", broken)
    with pytest.raises(RuntimeError):
        services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    assert week_rows(weeks) == before
    failed = MetricsRun.objects.filter(status=RunStatus.FAILED).order_by("week")
    assert [run.week for run in failed] == weeks
    assert "disk on fire" in failed[1].error
    assert all("2026-W45 failed" in run.error for run in (failed[0], failed[2]))
    assert not MetricsLock.objects.exists()

    monkeypatch.undo()
    runs = services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    assert [run.status for run in runs] == ["succeeded"] * 3
    assert all(run.rows_written for run in runs)


def test_it_gives_the_same_rows_when_a_week_is_split_by_region() -> None:
    random_market(22, accounts=120)
    services.metrics_compute_week(week="2026-W10", final=True)
    whole = snapshot_rows("2026-W10")
    region_ids = list(Region.objects.values_list("id", flat=True))
    parts = [
        services.metrics_region_part(week="2026-W10", final=True, region_ids=region_ids[:1]),
        services.metrics_region_part(week="2026-W10", final=True, region_ids=region_ids[1:]),
    ]
    services.metrics_merge_week(week="2026-W10", final=True, parts=parts)
    assert snapshot_rows("2026-W10") == whole


def _rollup(week: str, **segment: str) -> dict[str, int] | None:
    from analytics.models import SegmentRollup

    lookups = {key: segment.get(key, "") for key in metrics.SEGMENT_KEYS}
    return SegmentRollup.objects.filter(week=week, **lookups).values(*metrics.COUNT_COLUMNS).first()


@pytest.mark.django_db
@pytest.mark.parametrize("backfill", [False, True])
def test_a_week_is_written_with_a_rollup_for_every_filter_equal_to_summing_its_segments(
    backfill: bool,
) -> None:
    random_market(61, accounts=150)
    if backfill:
        services.metrics_compute_weeks(weeks=["2026-W46"], final_weeks=["2026-W46"])
    else:
        services.metrics_compute_week(week="2026-W46", final=True)
    segments = pd.DataFrame(reports.segments("2026-W46"))
    total = segments[metrics.COUNT_COLUMNS].sum()
    assert _rollup("2026-W46") == {c: int(total[c]) for c in metrics.COUNT_COLUMNS}
    for key in metrics.SEGMENT_KEYS:
        for value, rows in segments.groupby(key):
            expected = {c: int(rows[c].sum()) for c in metrics.COUNT_COLUMNS}
            assert _rollup("2026-W46", **{key: value}) == expected
    region, vertical, size_band = segments.iloc[0][metrics.SEGMENT_KEYS]
    pair = segments[(segments["region"] == region) & (segments["size_band"] == size_band)]
    assert _rollup("2026-W46", region=region, size_band=size_band) == {
        c: int(pair[c].sum()) for c in metrics.COUNT_COLUMNS
    }
    assert _rollup("2026-W46", region="NO-SUCH-REGION") is None


@pytest.mark.django_db
def test_rollups_rebuilt_from_stored_snapshots_equal_the_ones_a_run_writes() -> None:
    from analytics.models import RegistrationRollup, SegmentRollup

    random_market(62, accounts=100)
    for number, partner in enumerate(Partner.objects.order_by("pk")[:3]):
        entry = FeedbackFactory(partner=partner, satisfaction=1 + number, nps=8 + number)
        Feedback.objects.filter(pk=entry.pk).update(
            created_at=datetime(2026, 11, 10 + number, 9, 0, tzinfo=UTC)
        )
    services.metrics_compute_week(week="2026-W46", final=True)
    segment_fields = ["week", "as_of", "final", *metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]
    partner_fields = ["week", "as_of", "final", *metrics.PARTNER_ROLLUP_COLUMNS]
    feedback_fields = ["week", "as_of", "final", *metrics.FEEDBACK_ROLLUP_COLUMNS]

    def stored() -> tuple[list[Any], list[Any], list[Any]]:
        return (
            list(SegmentRollup.objects.order_by(*segment_fields).values_list(*segment_fields)),
            list(PartnerRollup.objects.order_by(*partner_fields).values_list(*partner_fields)),
            list(FeedbackRollup.objects.order_by(*feedback_fields).values_list(*feedback_fields)),
        )

    segments, partners, feedback = stored()
    assert partners and [row[3] for row in partners][0] == ""
    assert sum(row[5] for row in feedback if row[3] == "") == 3
    SegmentRollup.objects.all().delete()
    PartnerRollup.objects.all().delete()
    FeedbackRollup.objects.all().delete()
    # The week had no deal registrations: its registration rollup is the row of zeros.
    registrations = list(RegistrationRollup.objects.values_list("submitted", flat=True))
    assert registrations == [0]
    assert services.metrics_rollups_rebuild(["2026-W46"]) == (
        len(segments) + len(partners) + len(feedback) + len(registrations)
    )
    rebuilt_segments, rebuilt_partners, rebuilt_feedback = stored()
    assert rebuilt_segments == segments
    assert rebuilt_feedback == feedback
    assert [row[:-1] for row in rebuilt_partners] == [row[:-1] for row in partners]
    assert [row[-1] for row in rebuilt_partners] == pytest.approx([row[-1] for row in partners])


def test_partner_rollups_sum_the_partner_figures_per_kind_and_in_all() -> None:
    figures = pd.DataFrame(
        {
            "channel_kind": ["partner", "partner", "distribution"],
            "agreements_in_force": [2, 0, 1],
            "feedback_count": [3, 0, 2],
            "satisfaction_mean": [4.0, float("nan"), 2.5],
            "nps_responses": [3, 0, 1],
            "nps_promoters": [2, 0, 0],
            "nps_detractors": [1, 0, 1],
        }
    )
    rollups = metrics.partner_rollups(figures).set_index("channel_kind")
    everyone = rollups.loc[""]
    assert (everyone["nps_responses"], everyone["nps_promoters"]) == (4, 2)
    # Exact from the summed scores: (2 - 2) / 4, where the partners' mean NPS would be -16.7.
    assert metrics.nps_from_counts(*everyone[metrics.NPS_COUNT_COLUMNS]) == 0.0
    assert metrics.nps_from_counts(0, 0, 0) is None
    assert rollups.loc["", "partners"] == 3 and rollups.loc["", "active_partners"] == 2
    assert rollups.loc["", "agreements_in_force"] == 3 and rollups.loc["", "feedback_count"] == 5
    assert rollups.loc["", "satisfaction_weighted"] == pytest.approx(4.0 * 3 + 2.5 * 2)
    assert rollups.loc["partner", "active_partners"] == 1
    assert rollups.loc["distribution", "satisfaction_weighted"] == pytest.approx(5.0)
    assert metrics.partner_rollups(figures.iloc[0:0]).empty


def test_a_week_failing_while_the_weeks_are_computed_fails_the_backfill_and_writes_nothing(
    monkeypatch: Any,
) -> None:
    weeks, before = _three_weeks_the_first_closed(seed=34)
    original = metrics.MarketSweep.week_figures

    def broken(sweep: metrics.MarketSweep, d: date) -> metrics.WeekFigures:
        if d == metrics.iso_week_as_of("2026-W46"):
            raise RuntimeError("figures on fire")
        return original(sweep, d)

    # The partner snapshots of the weeks before are on their way to the database by then.
    monkeypatch.setattr(metrics.MarketSweep, "week_figures", broken)
    with pytest.raises(RuntimeError, match="figures on fire"):
        services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    assert week_rows(weeks) == before
    failed = MetricsRun.objects.filter(status=RunStatus.FAILED).order_by("week")
    assert [run.week for run in failed] == weeks
    assert "figures on fire" in failed[2].error
