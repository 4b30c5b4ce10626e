"""The one reader of the snapshot and rollup tables.

Every page, e-mail, export and API answer takes its weekly figures from here, as plain typed rows
(`SegmentFigures`, `ChannelFigures`, `PartnerFigures`, `PartnerTotals`, `FeedbackFigures`,
`RegistrationFigures`), and only formats them. Nothing is summed here: a week's run wrote the
sums every filter needs (docs/metrics.md rule 5 in `SegmentRollup`, rule 7 in `PartnerRollup`,
rule 8 in `FeedbackRollup`, rule 18 in `RegistrationRollup`), and the rows read here divide them
into ratios and means (`metrics.ratio`, `metrics.nps_from_counts`). Pages read the live market
elsewhere (selectors), never these tables.

Rows are read through the database driver without the ORM's per-row conversions, which over a
few hundred rows were most of a cold dashboard's time; the few values that differ by backend
(dates on SQLite) are normalised here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

import numpy as np
import psycopg
from django.db import connections
from django.db.models import (
    Count,
    DecimalField,
    F,
    ForeignKey,
    IntegerField,
    Max,
    OrderBy,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone
from psycopg import sql

from analytics import metrics
from analytics.models import (
    FeedbackRollup,
    MetricsRun,
    PartnerRevenueRollup,
    PartnerRevenueSnapshot,
    PartnerRollup,
    PartnerSnapshot,
    RegistrationRollup,
    RevenueForecast,
    RevenueRollup,
    RevenueSnapshot,
    RunStatus,
    SegmentRollup,
    SegmentSnapshot,
)
from analytics.programme_models import (
    PartnerProgramme,
    RepProgramme,
    SatisfactionDriver,
    SatisfactionFit,
)
from analytics.routers import figures_database
from crm.sql import driver_rows, int8_gathered, int8_values


class SegmentFigures(NamedTuple):
    """A week's counts and ratios (rule 4) for one segment, or summed over the segments that
    match a region, a vertical and a size band (rule 5), "" standing for any."""

    week: str
    region: str
    vertical: str
    size_band: str
    accounts: int
    covered_direct: int
    covered_distribution: int
    covered_partner: int
    covered_online: int
    covered_any: int
    overlap: int
    converted: int
    converted_direct: int
    converted_distribution: int
    converted_partner: int
    converted_online: int
    white_space: int
    coverage: float | None
    coverage_direct: float | None
    coverage_distribution: float | None
    coverage_partner: float | None
    coverage_online: float | None
    penetration: float | None


class ChannelFigures(NamedTuple):
    """One channel kind's figures for a selection of segments (rule 5 by channel): every
    in-market account, those the kind covers, those it won, and the two ratios."""

    week: str
    channel: str
    accounts: int
    covered: int
    converted: int
    coverage: float | None
    penetration: float | None


class PartnerFigures(NamedTuple):
    """One partner's figures for a week (rule 6), as of the week's run."""

    week: str
    as_of: date
    final: bool
    partner_id: int
    external_id: str
    name: str
    channel_kind: str
    covered_accounts: int
    converted_accounts: int
    agreements_in_force: int
    feedback_count: int
    satisfaction_mean: float | None
    nps: float | None
    nps_responses: int
    nps_promoters: int
    nps_detractors: int


class PartnerTotals(NamedTuple):
    """The partners of one channel kind ("" for all) in a week (rule 7)."""

    week: str
    channel_kind: str
    partners: int
    active_partners: int
    agreements_in_force: int
    feedback_count: int
    satisfaction: float | None
    nps: float | None


class FeedbackFigures(NamedTuple):
    """A week's feedback of one category, from the partners of one channel kind ("" for all)
    (rule 8)."""

    week: str
    channel_kind: str
    category: str
    feedback_count: int
    satisfaction: float | None


@dataclass(frozen=True)
class WeekOption:
    """A week with a succeeded run: its as-of day, final or provisional, and the
    `snapshot_version`, which every finished run changes (a cache key for figures of the week)."""

    week: str
    as_of: date
    final: bool
    version: str = ""


COUNTS: tuple[str, ...] = tuple(metrics.COUNT_COLUMNS)
# A partner's figures as exports and the API give them (rule 6), without the week and its run.
PARTNER_FIGURE_COLUMNS: list[str] = metrics.PARTNER_COLUMNS[1:]
# By rule 6: what a partner's figures may be ordered by. Most accounts covered first, or the
# least satisfied partners first (by mean satisfaction or NPS; partners without feedback last).
PARTNER_ORDERS: dict[str, tuple[str | OrderBy, ...]] = {
    "covered": ("-covered_accounts", "-converted_accounts", "external_id"),
    "satisfaction": (
        F("satisfaction_mean").asc(nulls_last=True),
        "-feedback_count",
        "external_id",
    ),
    "nps": (F("nps").asc(nulls_last=True), "-nps_responses", "external_id"),
    "external_id": ("external_id",),
}
# The dimensions a rollup may be taken by, as `metrics_export --by` and the API name them.
EXPORT_DIMENSIONS = ("segment", "region", "vertical", "size_band", "channel", "partner", "total")


def _as_date(value: date | str) -> date:
    """A date column as the driver returns it: a date (PostgreSQL) or its ISO text (SQLite)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _finished_runs() -> QuerySet[MetricsRun]:
    """The runs that have finished, succeeded or failed, where the figures are read: every one
    changed the snapshot and rollup tables (or left them as they were) before it finished."""
    return MetricsRun.objects.using(figures_database()).filter(finished_at__isnull=False)


def _version(count: int, last: datetime | str | None) -> str:
    """The snapshot version of `count` finished runs, the latest of which ended at `last` (as
    the ORM or, as ISO text in UTC on SQLite, the driver returns it)."""
    if isinstance(last, str):
        last = datetime.fromisoformat(last)
    if last is not None and timezone.is_naive(last):
        last = timezone.make_aware(last, UTC)
    return f"{count}:{last.isoformat() if last else ''}"


def snapshot_version() -> str:
    """A version of everything the snapshot and rollup tables hold: the number of finished
    runs and the latest end, which every run changes once it has written its week's rows,
    whether it then succeeded or failed. Figures read after it are at least as new as it says,
    so figures cached under it never outlive their rows. One query, on the database the
    figures are read from. The API's caches key on it (`analytics.api.views.cached_rows`), the
    dashboard's on the same version, which `week_options` reads from the runs it lists."""
    count, last = _finished_runs().aggregate(count=Count("id"), last=Max("finished_at")).values()
    return _version(count, last)


def week_options() -> list[WeekOption]:
    """The weeks with a succeeded run, newest first, flagged final or provisional as of their
    latest succeeded run (the run that wrote the rows now stored), each with the
    `snapshot_version` of the finished runs read with them (one query for both)."""
    # The runs are read where the rows are, so a week is listed once its rows are there.
    runs = driver_rows(
        _finished_runs()
        .order_by("-week", "-finished_at")
        .values_list("week", "as_of", "final", "finished_at", "status")
    )
    version = _version(len(runs), max((run[3] for run in runs), default=None))
    options: dict[str, WeekOption] = {}
    for week, as_of, final, _finished_at, status in runs:
        if status == RunStatus.SUCCEEDED and week not in options:
            options[week] = WeekOption(
                week=week, as_of=_as_date(as_of), final=bool(final), version=version
            )
    return list(options.values())


def weeks() -> list[str]:
    """The weeks that have a snapshot, oldest first."""
    return list(SegmentSnapshot.objects.order_by("week").values_list("week", flat=True).distinct())


def latest_week() -> str | None:
    """The newest week with a snapshot, or None (one step down the unique index)."""
    return SegmentSnapshot.objects.order_by("-week").values_list("week", flat=True).first()


def has_week(week: str, *, final: bool = False) -> bool:
    """Whether `week` has a snapshot (a final one, with `final`)."""
    rows = SegmentSnapshot.objects.filter(week=week)
    return (rows.filter(final=True) if final else rows).exists()


def stored_week(week: str) -> WeekOption | None:
    """The as-of day and finality of the rows stored for `week`, or None without any."""
    for model in (SegmentSnapshot, PartnerSnapshot):
        stored = model.objects.filter(week=week).values_list("as_of", "final").first()
        if stored is not None:
            return WeekOption(week=week, as_of=stored[0], final=stored[1])
    return None


# Where each ratio's count sits among `COUNTS`, and `accounts`, which they all divide by.
_RATIO_COUNT_POSITIONS = [COUNTS.index(count) for count in metrics.RATIO_COUNTS.values()]
_ACCOUNTS = COUNTS.index("accounts")


def _segment_figures(week: str, keys: Sequence[str], counts: Sequence[int]) -> SegmentFigures:
    accounts = counts[_ACCOUNTS]
    ratios = [metrics.ratio(counts[position], accounts) for position in _RATIO_COUNT_POSITIONS]
    return SegmentFigures._make((week, *keys, *counts, *ratios))


def segments(
    week: str, *, region: str = "", vertical: str = "", size_band: str = ""
) -> list[SegmentFigures]:
    """The stored segments of `week` with the ratios stored with them, sorted by segment;
    a blank filter takes every value."""
    narrowing = {"region": region, "vertical": vertical, "size_band": size_band}
    rows = SegmentSnapshot.objects.filter(
        week=week, **{key: value for key, value in narrowing.items() if value}
    )
    fields = [*metrics.SEGMENT_KEYS, *COUNTS, *metrics.RATIO_COLUMNS]
    return [
        SegmentFigures._make((week, *row))
        for row in driver_rows(rows.order_by(*metrics.SEGMENT_KEYS).values_list(*fields))
    ]


def _rollup_rows(
    *, by: Sequence[str], region: str, vertical: str, size_band: str
) -> QuerySet[SegmentRollup]:
    """The rollup rows holding the sums of the filtered segments, one per value of the `by`
    keys: a given filter picks its value, a key in `by` any value but "", the rest ""."""
    rows = SegmentRollup.objects.all()
    chosen = {"region": region, "vertical": vertical, "size_band": size_band}
    for key in metrics.SEGMENT_KEYS:
        if chosen[key]:
            rows = rows.filter(**{key: chosen[key]})
        elif key in by:
            rows = rows.exclude(**{key: ""})
        else:
            rows = rows.filter(**{key: ""})
    return rows


def rollup(
    weeks: Sequence[str],
    *,
    by: Sequence[str] = (),
    region: str = "",
    vertical: str = "",
    size_band: str = "",
) -> list[SegmentFigures]:
    """The filtered segments' counts summed per week and per value of the `by` keys (a subset
    of `metrics.SEGMENT_KEYS`; none for one row a week), with their ratios (rule 5). Sorted by
    week, then by the keys; weeks without a snapshot and empty selections are absent. One
    query."""
    unknown = set(by) - set(metrics.SEGMENT_KEYS)
    if unknown:
        raise ValueError(f"unknown rollup keys {sorted(unknown)}")
    rows = (
        _rollup_rows(by=by, region=region, vertical=vertical, size_band=size_band)
        .filter(week__in=list(weeks))
        .order_by("week", *metrics.SEGMENT_KEYS)
        .values_list("week", *metrics.SEGMENT_KEYS, *COUNTS)
    )
    return [_segment_figures(row[0], row[1:4], row[4:]) for row in driver_rows(rows)]


def channel(figures: SegmentFigures, kind: str) -> ChannelFigures:
    """One channel kind's figures within `figures` (rule 5 by channel)."""
    accounts, covered, converted = (getattr(figures, c) for c in metrics.channel_columns(kind))
    return ChannelFigures(
        figures.week,
        kind,
        accounts,
        covered,
        converted,
        metrics.ratio(covered, accounts),
        metrics.ratio(converted, accounts),
    )


def channels(figures: SegmentFigures) -> list[ChannelFigures]:
    """Each channel kind's figures within `figures`, in `metrics.KINDS` order."""
    return [channel(figures, kind) for kind in metrics.KINDS]


def channel_rollup(
    week: str, *, region: str = "", vertical: str = "", size_band: str = ""
) -> list[ChannelFigures]:
    """Each channel kind's figures for the filtered segments of `week`; zeros (and no ratios)
    when the filter selects nothing."""
    total = rollup([week], region=region, vertical=vertical, size_band=size_band)
    if total:
        return channels(total[0])
    nothing = _segment_figures(week, ("", "", ""), [0] * len(COUNTS))
    return channels(nothing)


def white_space(
    week: str, *, region: str = "", vertical: str = "", size_band: str = "", limit: int
) -> list[SegmentFigures]:
    """The filtered segments of `week` with the most in-market accounts no channel covers
    (none without any), at most `limit`."""
    narrowing = {"region": region, "vertical": vertical, "size_band": size_band}
    rows = (
        SegmentSnapshot.objects.filter(
            week=week, white_space__gt=0, **{k: v for k, v in narrowing.items() if v}
        )
        .order_by("-white_space", *metrics.SEGMENT_KEYS)
        .values_list(*metrics.SEGMENT_KEYS, *COUNTS, *metrics.RATIO_COLUMNS)[:limit]
    )
    return [SegmentFigures._make((week, *row)) for row in driver_rows(rows)]


_PARTNER_FIELDS = PartnerFigures._fields[1:]


def partners(
    week: str,
    *,
    channel_kind: str = "",
    partner_id: int | None = None,
    order: str = "external_id",
    limit: int | None = None,
) -> list[PartnerFigures]:
    """The partners' figures of `week`, of one channel kind or partner when given, in the
    order `PARTNER_ORDERS[order]` names, at most `limit`."""
    rows = PartnerSnapshot.objects.filter(week=week)
    if channel_kind:
        rows = rows.filter(channel_kind=channel_kind)
    if partner_id is not None:
        rows = rows.filter(partner_id=partner_id)
    rows = rows.order_by(*PARTNER_ORDERS[order]).values_list(*_PARTNER_FIELDS)
    return [
        PartnerFigures._make((week, _as_date(as_of), bool(final), *rest))
        for as_of, final, *rest in driver_rows(rows[:limit] if limit else rows)
    ]


def partner_requirement_figures(week: str) -> list[tuple[int, int, float | None, float | None]]:
    """Per partner with a row in `week`: `(partner_id, covered_accounts, satisfaction_mean,
    nps)`, the rule 6 figures the programme's tier requirements read, in no particular order."""
    rows = PartnerSnapshot.objects.filter(week=week).order_by()
    return driver_rows(
        rows.values_list("partner_id", "covered_accounts", "satisfaction_mean", "nps")
    )


def partner_latest(partner_id: int) -> PartnerFigures | None:
    """A partner's figures of its latest snapshot (final or provisional), or None."""
    row = (
        PartnerSnapshot.objects.filter(partner_id=partner_id)
        .order_by("-as_of")
        .values_list("week", *_PARTNER_FIELDS)
        .first()
    )
    return None if row is None else PartnerFigures._make(row)


def partner_totals(weeks: Sequence[str], *, channel_kind: str = "") -> list[PartnerTotals]:
    """Per week, the partners of `channel_kind` (every partner when blank) summed (rule 7):
    active partners, agreements in force, feedback, the feedback-weighted mean satisfaction
    and the NPS of the summed scores, over the 90 days ending on the week's as-of day. Sorted
    by week. One query."""
    rows = (
        PartnerRollup.objects.filter(channel_kind=channel_kind, week__in=list(weeks))
        .order_by("week")
        .values_list(
            "week",
            "partners",
            "active_partners",
            "agreements_in_force",
            "feedback_count",
            "satisfaction_weighted",
            *metrics.NPS_COUNT_COLUMNS,
        )
    )
    return [
        PartnerTotals(
            week,
            channel_kind,
            partner_count,
            active,
            in_force,
            feedback,
            metrics.ratio(weighted, feedback),
            metrics.nps_from_counts(*scores),
        )
        for week, partner_count, active, in_force, feedback, weighted, *scores in driver_rows(rows)
    ]


def feedback(weeks: Sequence[str], *, channel_kind: str = "") -> list[FeedbackFigures]:
    """Per week and category, the feedback created in the week (rule 8) from partners of
    `channel_kind` (every partner when blank): its number and mean satisfaction. Sorted by week
    and category. One query."""
    rows = (
        FeedbackRollup.objects.filter(channel_kind=channel_kind, week__in=list(weeks))
        .order_by("week", "category")
        .values_list("week", "category", "feedback_count", "satisfaction_sum")
    )
    return [
        FeedbackFigures(week, channel_kind, category, count, metrics.ratio(total, count))
        for week, category, count, total in driver_rows(rows)
    ]


class RegistrationFigures(NamedTuple):
    """A week's deal registrations (rule 18) of the registrations whose segment matches a
    region, a vertical and a size band and whose partner is of a channel kind, "" for any:
    how many were submitted, approved, rejected and won in the week, the median time from
    submission to a manager's decision (hours; None without any decision), and the share of
    the registrations submitted in the week that met a conflict on arrival (None when none was
    checked)."""

    week: str
    region: str
    vertical: str
    size_band: str
    channel_kind: str
    submitted: int
    approved: int
    rejected: int
    won: int
    decisions_timed: int
    decision_hours_median: float | None
    checked: int
    with_conflicts: int
    conflict_share: float | None


_REGISTRATION_COUNTS = (
    "submitted",
    "approved",
    "rejected",
    "won",
    "decisions_timed",
    "decision_hours_median",
    "checked",
    "with_conflicts",
)


def _registration_figures(
    week: str, keys: Sequence[str], values: Sequence[Any]
) -> RegistrationFigures:
    region, vertical, size_band, channel_kind = keys
    submitted, approved, rejected, won, timed, median, checked, with_conflicts = values
    return RegistrationFigures(
        week,
        region,
        vertical,
        size_band,
        channel_kind,
        submitted=submitted,
        approved=approved,
        rejected=rejected,
        won=won,
        decisions_timed=timed,
        decision_hours_median=median,
        checked=checked,
        with_conflicts=with_conflicts,
        conflict_share=metrics.ratio(with_conflicts, checked),
    )


def registration_zeros(
    week: str, *, region: str = "", vertical: str = "", size_band: str = "", channel_kind: str = ""
) -> RegistrationFigures:
    """The figures of a filter that took in no registration of a week its run counted."""
    keys = [region, vertical, size_band, channel_kind]
    return _registration_figures(week, keys, [0, 0, 0, 0, 0, None, 0, 0])


def registrations(
    weeks: Sequence[str],
    *,
    region: str = "",
    vertical: str = "",
    size_band: str = "",
    channel_kind: str = "",
    by_channel: bool = False,
    with_total: bool = False,
) -> list[RegistrationFigures]:
    """The filtered registrations' figures per week (rule 18), sorted by week; with
    `by_channel`, one row per channel kind that registered (the filter's kind only, when
    given) instead of one for all kinds, after the row of all kinds too `with_total`. The row
    of all kinds (or of the filter's kind) of a week whose run counted registrations but none
    matching the filter has zeros; a week without a run that counted them is absent. One
    query."""
    chosen = {"region": region, "vertical": vertical, "size_band": size_band}
    keys = ["region", "vertical", "size_band", "channel_kind"]
    want_total = not by_channel or with_total

    def kind_wanted(kind: str) -> bool:
        if channel_kind:
            return kind == channel_kind
        if by_channel:
            return with_total or kind != ""
        return kind == ""

    matching = Q(**chosen)
    if channel_kind:
        matching &= Q(channel_kind=channel_kind)
    elif not by_channel:
        matching &= Q(channel_kind="")
    elif not with_total:
        matching &= ~Q(channel_kind="")
    counted = Q(region="", vertical="", size_band="", channel_kind="")
    rows = driver_rows(
        RegistrationRollup.objects.filter(matching | counted, week__in=list(weeks))
        .order_by("week", *keys)
        .values_list("week", *keys, *_REGISTRATION_COUNTS)
    )
    wanted = (region, vertical, size_band)
    found: dict[str, list[RegistrationFigures]] = {}
    for week, *rest in rows:
        row_keys, values = rest[:4], rest[4:]
        figures = found.setdefault(week, [])
        if tuple(row_keys[:3]) == wanted and kind_wanted(row_keys[3]):
            figures.append(_registration_figures(week, row_keys, values))
    result = []
    for week in sorted(found):
        has_total = any(row.channel_kind == channel_kind for row in found[week])
        if want_total and not has_total:  # counted, and nothing matches the filter
            result.append(registration_zeros(week, channel_kind=channel_kind, **chosen))
        result.extend(found[week])
    return result


# The partner programme (docs/metrics.md rules 20-23) -------------------------------------------


class ProgrammeFigures(NamedTuple):
    """One partner's programme figures for a week: rule 6's figures of its snapshot beside the
    programme's counts (rule 20), its tiers (rule 21) and its yearly target (rule 22)."""

    week: str
    as_of: date
    final: bool
    partner_id: int
    covered_accounts: int
    converted_accounts: int
    feedback_count: int
    satisfaction: float | None
    nps: float | None
    conversions: int
    conversions_ytd: int
    registrations_submitted: int
    registrations_won: int
    registrations_lost: int
    registrations_won_ytd: int
    sourced_revenue: Decimal | None
    sourced_revenue_ytd: Decimal | None
    certifications: int
    tier_before: str
    qualified_tier: str
    tier: str
    weeks_below: int
    target_accounts_covered: int | None
    target_conversions: int | None
    target_revenue: Decimal | None
    revenue_target_source: str

    @property
    def win_rate(self) -> float | None:
        """Registrations won among those won or lost in the 52 weeks (none without any)."""
        return metrics.ratio(
            self.registrations_won, self.registrations_won + self.registrations_lost
        )

    def requirement_figures(self) -> dict[str, float | None]:
        """The figures tier requirements read (rule 20), by requirement key."""
        return {
            "covered_accounts": float(self.covered_accounts),
            "conversions": float(self.conversions),
            "sourced_revenue": None
            if self.sourced_revenue is None
            else float(self.sourced_revenue),
            "registrations_won": float(self.registrations_won),
            "satisfaction": self.satisfaction,
            "nps": self.nps,
            "certifications": float(self.certifications),
        }


_PROGRAMME_FIELDS = [
    "week",
    "partner_id",
    "conversions",
    "conversions_ytd",
    "registrations_submitted",
    "registrations_won",
    "registrations_lost",
    "registrations_won_ytd",
    "sourced_revenue",
    "sourced_revenue_ytd",
    "certifications",
    "tier_before",
    "qualified_tier",
    "tier",
    "weeks_below",
    "target_accounts_covered",
    "target_conversions",
    "target_revenue",
    "revenue_target_source",
]
_SNAPSHOT_FOR_PROGRAMME = [
    "week",
    "partner_id",
    "covered_accounts",
    "converted_accounts",
    "feedback_count",
    "satisfaction_mean",
    "nps",
]


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _programme_weeks(weeks: Sequence[str]) -> dict[str, tuple[date, bool]]:
    """The as-of day and whether it is final of each of `weeks` with a programme snapshot,
    kept once per week on its regression (`SatisfactionFit`)."""
    rows = SatisfactionFit.objects.filter(week__in=list(weeks)).values_list(
        "week", "as_of", "final"
    )
    return {week: (_as_date(as_of), bool(final)) for week, as_of, final in driver_rows(rows)}


def _programme_figures(
    programme_rows: list[tuple[Any, ...]], snapshot_rows: list[tuple[Any, ...]]
) -> list[ProgrammeFigures]:
    snapshots = {(row[0], row[1]): row[2:] for row in snapshot_rows}
    days = _programme_weeks(sorted({row[0] for row in programme_rows}))
    figures = []
    for row in programme_rows:
        (week, partner_id, *counts) = row
        as_of, final = days[week]
        covered, converted, feedback_count, satisfaction, nps = snapshots.get(
            (week, partner_id), (0, 0, 0, None, None)
        )
        (
            conversions,
            conversions_ytd,
            submitted,
            won,
            lost,
            won_ytd,
            revenue,
            revenue_ytd,
            certifications,
            tier_before,
            qualified,
            tier,
            weeks_below,
            target_accounts,
            target_conversions,
            target_revenue,
            revenue_source,
        ) = counts
        figures.append(
            ProgrammeFigures(
                week,
                as_of,
                final,
                partner_id,
                covered,
                converted,
                feedback_count,
                satisfaction,
                nps,
                conversions,
                conversions_ytd,
                submitted,
                won,
                lost,
                won_ytd,
                _decimal(revenue),
                _decimal(revenue_ytd),
                certifications,
                tier_before,
                qualified,
                tier,
                weeks_below,
                target_accounts,
                target_conversions,
                _decimal(target_revenue),
                revenue_source,
            )
        )
    return figures


def partner_programme(
    partner_id: int, *, last: int = 12, until_week: str | None = None
) -> list[ProgrammeFigures]:
    """A partner's programme figures of its latest `last` weeks with a programme snapshot (up
    to `until_week` when given), oldest first (the scorecard and its trend). Two small queries
    down the (partner, week) indexes."""
    rows_of_partner = PartnerProgramme.objects.filter(partner_id=partner_id)
    if until_week:
        rows_of_partner = rows_of_partner.filter(week__lte=until_week)
    rows = driver_rows(rows_of_partner.order_by("-week").values_list(*_PROGRAMME_FIELDS)[:last])
    weeks = [row[0] for row in rows]
    if not weeks:
        return []  # no programme snapshot of this partner yet
    snapshot = driver_rows(
        PartnerSnapshot.objects.filter(partner_id=partner_id, week__in=weeks).values_list(
            *_SNAPSHOT_FOR_PROGRAMME
        )
    )
    return list(reversed(_programme_figures(rows, snapshot)))


def programme_partners(
    week: str, *, partner_ids: Sequence[int] | None = None
) -> list[ProgrammeFigures]:
    """The programme figures of `week`, of the partners in `partner_ids` when given, by
    partner id."""
    rows = PartnerProgramme.objects.filter(week=week)
    snapshot = PartnerSnapshot.objects.filter(week=week)
    if partner_ids is not None and not partner_ids:
        return []
    if partner_ids is not None:
        rows = rows.filter(partner_id__in=list(partner_ids))
        snapshot = snapshot.filter(partner_id__in=list(partner_ids))
    return _programme_figures(
        driver_rows(rows.order_by("partner_id").values_list(*_PROGRAMME_FIELDS)),
        driver_rows(snapshot.values_list(*_SNAPSHOT_FOR_PROGRAMME)),
    )


def programme_weeks() -> list[str]:
    """The weeks with a programme snapshot, newest first."""
    return list(SatisfactionFit.objects.order_by("-week").values_list("week", flat=True).distinct())


def programme_weeks_below(week: str) -> dict[int, int]:
    """Per partner below its tier as of `week`, its closed weeks in a row below it (rule 21);
    a partner absent has none (empty when the week has no programme snapshot)."""
    rows = PartnerProgramme.objects.filter(week=week, weeks_below__gt=0).order_by()
    return dict(driver_rows(rows.values_list("partner_id", "weeks_below")))


def regression_inputs(week: str) -> dict[str, np.ndarray]:
    """The inputs of `week`'s satisfaction regression, one value per active partner in id
    order (`SatisfactionFit.inputs` says what each array holds); empty when the week has no
    regression."""
    packed = SatisfactionFit.objects.filter(week=week).values_list("inputs", flat=True).first()
    if not packed:
        return {}
    with np.load(io.BytesIO(bytes(packed)), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def programme_week_rows(week: str, fields: Sequence[str]) -> dict[str, np.ndarray]:
    """The partner programme rows of `week` as stored, column by column (`fields`, by name),
    one value per row in the same row order for every column (none in particular): what a run
    of the week compares its rows with before it rewrites them. A count as a float (a blank
    as NaN), money as a Decimal (a blank as None), text as it is; empty arrays when the week
    has none.

    On PostgreSQL each column comes gathered in one value (`_gathered_week_rows`): read ahead
    beside the week's pass, 10,000 rows as Python values took about 25 ms of the interpreter
    from the pass; gathered, about 8 ms."""
    rows = PartnerProgramme.objects.filter(week=week).order_by()
    kinds = {name: _column_kind(name) for name in fields}
    if connections[rows.db].vendor == "postgresql":
        gathered = _gathered_week_rows(rows.db, week, kinds)
        if gathered is not None:
            return gathered
    found = driver_rows(rows.values_list(*fields))
    columns = list(zip(*found, strict=True)) if found else [()] * len(fields)
    return {
        name: _typed(list(column), kinds[name])
        for name, column in zip(fields, columns, strict=True)
    }


def _column_kind(name: str) -> str:
    """ "count" (an integer column, or a key), "money" (a decimal) or "text" (anything else)."""
    field = PartnerProgramme._meta.get_field(name)
    if isinstance(field, IntegerField | ForeignKey):
        return "count"
    return "money" if isinstance(field, DecimalField) else "text"


def _typed(values: list[Any], kind: str) -> np.ndarray:
    if kind == "count":
        return np.array(values, dtype="float64")  # None as NaN
    if kind == "money":
        # From its text: SQLite hands an amount over as a float (123.4 for 123.40).
        return np.array(
            [None if value is None else Decimal(str(value)) for value in values], dtype=object
        )
    return np.array(values, dtype=object)


# What `_gathered_week_rows` puts between two values of a text column.
_SEPARATOR = "\x1f"


def _gathered_week_rows(
    using: str, week: str, kinds: dict[str, str]
) -> dict[str, np.ndarray] | None:
    """`programme_week_rows` on PostgreSQL, in one query whose aggregates all take the rows
    in one order: each count column as one value of bytes (`int8_gathered`, read with numpy), a
    blank as -1 (the table's check constraints keep every count at 0 or more); each other
    column as the text of its values joined by `_SEPARATOR`, a blank amount as no text. None
    when a text holds the separator (its values cannot be told apart)."""
    names = {field.attname: str(field.column) for field in PartnerProgramme._meta.concrete_fields}
    gathered: list[sql.Composable] = []
    for name, kind in kinds.items():
        column = sql.Identifier("rows", names[name])
        if kind == "count":
            gathered.append(int8_gathered(sql.SQL("coalesce({}, -1)::int8").format(column)))
        else:
            gathered.append(
                sql.SQL("string_agg(coalesce({}::text, ''), {})").format(
                    column, sql.Literal(_SEPARATOR)
                )
            )
    gathered.append(sql.SQL("count(*)"))
    statement = sql.SQL("SELECT {} FROM {} AS rows WHERE rows.week = %s").format(
        sql.SQL(", ").join(gathered), sql.Identifier(PartnerProgramme._meta.db_table)
    )
    connection = connections[using]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, [week], binary=True)
        *values, count = cursor.fetchone() or [None] * (len(kinds) + 1)
    columns: dict[str, np.ndarray] = {}
    for (name, kind), value in zip(kinds.items(), values, strict=True):
        if kind == "count":
            counts = int8_values(value, count).astype("float64")
            columns[name] = np.where(counts < 0, np.nan, counts)
            continue
        texts = value.split(_SEPARATOR) if count else []
        if len(texts) != count:
            return None
        if kind == "money":
            columns[name] = _typed([text or None for text in texts], kind)
        else:
            columns[name] = np.array(texts, dtype=object)
    return columns


def tier_counts(weeks: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per week, the number of partners holding each tier after the week's evaluation."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        PartnerProgramme.objects.filter(week__in=list(weeks))
        .values("week", "tier")
        .annotate(n=Count("id"))
        .order_by("week", "tier")
        .values_list("week", "tier", "n")
    )
    for week, tier, n in driver_rows(rows):
        counts.setdefault(week, {})[tier] = n
    return counts


class RepFigures(NamedTuple):
    """A sales rep's figures against its yearly target for a week (rule 22)."""

    week: str
    as_of: date
    final: bool
    rep_id: int
    external_id: str
    name: str
    covered_accounts: int
    conversions_ytd: int
    sourced_revenue_ytd: Decimal | None
    target_accounts_covered: int | None
    target_conversions: int | None
    target_revenue: Decimal | None


def rep_programme(week: str, *, rep_ids: Sequence[int] | None = None) -> list[RepFigures]:
    """The reps with a target and their figures of `week` (those of `rep_ids` when given), by
    name."""
    rows = RepProgramme.objects.filter(week=week)
    if rep_ids is not None and not rep_ids:
        return []
    if rep_ids is not None:
        rows = rows.filter(rep_id__in=list(rep_ids))
    fields = [name for name in RepFigures._fields]
    return [
        RepFigures(
            week,
            _as_date(as_of),
            bool(final),
            rep_id,
            external_id,
            name,
            covered,
            conversions,
            _decimal(revenue),
            target_accounts,
            target_conversions,
            _decimal(target_revenue),
        )
        for (
            week,
            as_of,
            final,
            rep_id,
            external_id,
            name,
            covered,
            conversions,
            revenue,
            target_accounts,
            target_conversions,
            target_revenue,
        ) in driver_rows(rows.order_by("name", "rep_id").values_list(*fields))
    ]


class DriverFigures(NamedTuple):
    """One variable of a week's satisfaction regression (rule 23): its coefficient per unit
    with the 95 % interval, and its effect, the change in satisfaction for one standard
    deviation of the variable, with the same interval."""

    variable: str
    coefficient: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    std_dev: float
    effect: float
    effect_low: float
    effect_high: float


@dataclass(frozen=True)
class DriversReport:
    """A week's regression: status ("fitted" or "too_little_data"), n, parameters, R², the
    variables left out, and the drivers ranked by the size of their effect."""

    week: str
    as_of: date
    final: bool
    status: str
    observations: int
    parameters: int
    r_squared: float | None
    adjusted_r_squared: float | None
    dropped: list[str]
    drivers: list[DriverFigures]


def satisfaction_drivers(week: str | None = None) -> DriversReport | None:
    """The satisfaction regression of `week` (the newest one when None), or None when there is
    none."""
    # Not its inputs: half a megabyte at 10,000 partners that the report does not show.
    fits = SatisfactionFit.objects.defer("inputs")
    fit = (fits.filter(week=week) if week else fits.order_by("-week")).first()
    if fit is None:
        return None
    rows = driver_rows(
        SatisfactionDriver.objects.filter(week=fit.week).values_list(*DriverFigures._fields)
    )
    drivers = sorted(
        (DriverFigures._make(row) for row in rows), key=lambda d: (-abs(d.effect), d.variable)
    )
    return DriversReport(
        fit.week,
        fit.as_of,
        fit.final,
        fit.status,
        fit.observations,
        fit.parameters,
        fit.r_squared,
        fit.adjusted_r_squared,
        list(fit.dropped),
        drivers,
    )


def partner_sourced_revenue(week: str) -> dict[int, Decimal]:
    """Per partner with a revenue row in `week`: the revenue it sourced, won in the 52 weeks
    ending on the week's as-of day, in the reporting currency (rules 13, 17 and 20), as the
    week's revenue snapshot holds it. A partner without a row sourced nothing that week. The
    programme reads its 52-week revenue from here only."""
    rows = PartnerRevenueSnapshot.objects.filter(week=week).values_list("partner_id", "won_cents")
    return {partner_id: _money(cents) for partner_id, cents in driver_rows(rows)}


@dataclass(frozen=True)
class AttainmentTotals:
    """A week's yearly targets of partners (or reps) summed (rule 22): per figure, the actual
    and target summed over those with that figure targeted, how many are targeted and how many
    reached their target."""

    owners: int
    accounts_actual: int
    accounts_target: int
    accounts_targeted: int
    accounts_reached: int
    conversions_actual: int
    conversions_target: int
    conversions_targeted: int
    conversions_reached: int
    revenue_actual: Decimal | None
    revenue_target: Decimal | None
    revenue_targeted: int
    revenue_reached: int


def _totals(
    rows: QuerySet[PartnerProgramme] | QuerySet[RepProgramme],
    covered: str,
    conversions: str,
    revenue: str,
) -> AttainmentTotals:
    sums = rows.aggregate(
        owners=Count("id"),
        accounts_actual=Sum(covered, filter=Q(target_accounts_covered__isnull=False)),
        accounts_target=Sum("target_accounts_covered"),
        accounts_targeted=Count("id", filter=Q(target_accounts_covered__isnull=False)),
        accounts_reached=Count(
            "id",
            filter=Q(target_accounts_covered__isnull=False)
            & Q(**{f"{covered}__gte": F("target_accounts_covered")}),
        ),
        conversions_actual=Sum(conversions, filter=Q(target_conversions__isnull=False)),
        conversions_target=Sum("target_conversions"),
        conversions_targeted=Count("id", filter=Q(target_conversions__isnull=False)),
        conversions_reached=Count(
            "id",
            filter=Q(target_conversions__isnull=False)
            & Q(**{f"{conversions}__gte": F("target_conversions")}),
        ),
        revenue_actual=Sum(revenue, filter=Q(target_revenue__isnull=False)),
        revenue_target=Sum("target_revenue"),
        revenue_targeted=Count("id", filter=Q(target_revenue__isnull=False)),
        revenue_reached=Count(
            "id",
            filter=Q(target_revenue__isnull=False) & Q(**{f"{revenue}__gte": F("target_revenue")}),
        ),
    )
    counts = {key: value or 0 for key, value in sums.items()}
    return AttainmentTotals(
        owners=counts["owners"],
        accounts_actual=counts["accounts_actual"],
        accounts_target=counts["accounts_target"],
        accounts_targeted=counts["accounts_targeted"],
        accounts_reached=counts["accounts_reached"],
        conversions_actual=counts["conversions_actual"],
        conversions_target=counts["conversions_target"],
        conversions_targeted=counts["conversions_targeted"],
        conversions_reached=counts["conversions_reached"],
        revenue_actual=_decimal(sums["revenue_actual"]),
        revenue_target=_decimal(sums["revenue_target"]) if counts["revenue_targeted"] else None,
        revenue_targeted=counts["revenue_targeted"],
        revenue_reached=counts["revenue_reached"],
    )


def attainment_totals(week: str) -> dict[str, AttainmentTotals]:
    """The week's target attainment summed over partners ("partners") and over reps
    ("reps"), each over those with a target (rule 22). Two aggregate queries."""
    partners = PartnerProgramme.objects.filter(week=week).filter(
        Q(target_accounts_covered__isnull=False)
        | Q(target_conversions__isnull=False)
        | Q(target_revenue__isnull=False)
    )
    return {
        "partners": _totals(partners, "covered_accounts", "conversions_ytd", "sourced_revenue_ytd"),
        "reps": _totals(
            RepProgramme.objects.filter(week=week),
            "covered_accounts",
            "conversions_ytd",
            "sourced_revenue_ytd",
        ),
    }


# -- Revenue (docs/metrics.md rules 10-17) ----------------------------------------------------


class RevenueFigures(NamedTuple):
    """A week's revenue figures for one segment (or the segments matching a region, a vertical
    and a size band, "" standing for any) and one sourcing channel ("" for all channels), in
    the reporting currency `currency`. `arpa` (P = mrr / subscribers) and
    `revenue_per_won_account` (D = won_amount / won_accounts) are divided when read, so
    `mrr = subscribers x arpa` holds; `white_space_value` and `sales_revenue` (I) are given on
    the all-channel rows only, none without a won account."""

    week: str
    region: str
    vertical: str
    size_band: str
    channel: str
    currency: str
    pipeline_count: int
    pipeline_amount: Decimal
    weighted_pipeline: Decimal
    won_count: int
    won_amount: Decimal
    won_accounts: int
    mrr: Decimal
    subscribers: int
    arpa: Decimal | None
    influenced_count: int
    influenced_amount: Decimal
    forecast_count: int
    forecast_amount: Decimal
    revenue_per_won_account: Decimal | None
    white_space_value: Decimal | None
    sales_revenue: Decimal | None


class PartnerRevenue(NamedTuple):
    """One partner's revenue figures for a week (rules 16 and 17)."""

    week: str
    currency: str
    partner_id: int
    external_id: str
    name: str
    channel_kind: str
    pipeline_count: int
    pipeline_amount: Decimal
    weighted_pipeline: Decimal
    won_count: int
    won_amount: Decimal
    mrr: Decimal
    subscribers: int
    influenced_count: int
    influenced_amount: Decimal
    forecast_count: int
    forecast_amount: Decimal
    target_amount: Decimal


class PartnerRevenueTotals(NamedTuple):
    """The partners of one channel kind ("" for all) summed for a week (rule 17)."""

    week: str
    currency: str
    channel_kind: str
    partners: int
    pipeline_count: int
    pipeline_amount: Decimal
    weighted_pipeline: Decimal
    won_count: int
    won_amount: Decimal
    mrr: Decimal
    forecast_count: int
    forecast_amount: Decimal
    target_amount: Decimal


class ForecastWeek(NamedTuple):
    """The weighted pipeline of one channel ("" for all) expected to close in the given week
    after the as-of day (rule 12)."""

    week: str
    currency: str
    channel: str
    weeks_ahead: int
    forecast_count: int
    forecast_amount: Decimal


def money(cents: int | None) -> Decimal | None:
    """Whole cents as an amount with two decimals; None stays None."""
    return None if cents is None else Decimal(int(cents)).scaleb(-2)


def _money(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def divided(amount: Decimal, count: int) -> Decimal | None:
    """An amount per one of `count` (ARPA, D), at full precision; None when `count` is 0."""
    return amount / count if count else None


_REVENUE_FIELDS = (
    "currency",
    "pipeline_count",
    "pipeline_cents",
    "weighted_pipeline_cents",
    "won_count",
    "won_cents",
    "won_accounts",
    "mrr_cents",
    "subscribers",
    "influenced_count",
    "influenced_cents",
    "forecast_count",
    "forecast_cents",
    "white_space_value_cents",
    "sales_revenue_cents",
)


def _revenue_figures(week: str, keys: Sequence[str], values: Sequence[Any]) -> RevenueFigures:
    (
        currency,
        pipeline_count,
        pipeline,
        weighted,
        won_count,
        won,
        won_accounts,
        mrr,
        subscribers,
        influenced_count,
        influenced,
        forecast_count,
        forecast,
        white_space_value,
        sales_revenue,
    ) = values
    won_amount, mrr_amount = _money(won), _money(mrr)
    region, vertical, size_band, channel = keys
    return RevenueFigures(
        week,
        region,
        vertical,
        size_band,
        channel,
        currency,
        pipeline_count,
        _money(pipeline),
        _money(weighted),
        won_count,
        won_amount,
        won_accounts,
        mrr_amount,
        subscribers,
        divided(mrr_amount, subscribers),
        influenced_count,
        _money(influenced),
        forecast_count,
        _money(forecast),
        divided(won_amount, won_accounts),
        money(white_space_value),
        money(sales_revenue),
    )


def _revenue_rows(
    *, by: Sequence[str], region: str, vertical: str, size_band: str
) -> QuerySet[RevenueSnapshot] | QuerySet[RevenueRollup]:
    """The rows holding the sums of the filtered segments, one per value of the `by` keys:
    the segment rows when every key is chosen or asked for, else the rollup rows."""
    chosen = {"region": region, "vertical": vertical, "size_band": size_band}
    if all(chosen[key] or key in by for key in metrics.SEGMENT_KEYS):
        return RevenueSnapshot.objects.filter(**{k: v for k, v in chosen.items() if v})
    rows = RevenueRollup.objects.all()
    for key in metrics.SEGMENT_KEYS:
        if chosen[key]:
            rows = rows.filter(**{key: chosen[key]})
        elif key in by:
            rows = rows.exclude(**{key: ""})
        else:
            rows = rows.filter(**{key: ""})
    return rows


def revenue_rollup(
    weeks: Sequence[str],
    *,
    by: Sequence[str] = (),
    by_channel: bool = False,
    channel: str = "",
    region: str = "",
    vertical: str = "",
    size_band: str = "",
) -> list[RevenueFigures]:
    """The filtered segments' revenue figures per week and per value of the `by` keys (a
    subset of `metrics.SEGMENT_KEYS`), for `channel` ("" for all channels together) or, with
    `by_channel`, one row per sourcing channel. Sorted by week, keys and channel; a week or
    selection without any deal counted has no row. One query."""
    unknown = set(by) - set(metrics.SEGMENT_KEYS)
    if unknown:
        raise ValueError(f"unknown rollup keys {sorted(unknown)}")
    rows = _revenue_rows(by=by, region=region, vertical=vertical, size_band=size_band)
    rows = rows.exclude(channel="") if by_channel else rows.filter(channel=channel)
    values = (
        rows.filter(week__in=list(weeks))
        .order_by("week", *metrics.SEGMENT_KEYS, "channel")
        .values_list("week", *metrics.SEGMENT_KEYS, "channel", *_REVENUE_FIELDS)
    )
    return [_revenue_figures(row[0], row[1:5], row[5:]) for row in driver_rows(values)]


def revenue_segments(
    week: str, *, region: str = "", vertical: str = "", size_band: str = "", channel: str = ""
) -> list[RevenueFigures]:
    """The stored segments of `week` for `channel` ("" for all channels), sorted by segment."""
    return revenue_rollup(
        [week],
        by=metrics.SEGMENT_KEYS,
        channel=channel,
        region=region,
        vertical=vertical,
        size_band=size_band,
    )


def revenue_value_map(
    week: str, *, region: str = "", vertical: str = "", size_band: str = ""
) -> list[RevenueFigures]:
    """The all-channel rows of `week` that a region x vertical table of rule 15's values needs,
    within the filters: each (region, vertical) cell, each region's and each vertical's total
    ("" for the other key) and the total of both (""/""), all of `size_band` ("" for every
    band). Totals are stored rollups, each rounded once (rule 17). One query, two with a size
    band (its cells are segment rows)."""
    rows = RevenueRollup.objects.filter(week=week, channel="", size_band=size_band)
    if region:
        rows = rows.filter(region=region)
    if vertical:
        rows = rows.filter(vertical=vertical)
    fields = ("week", *metrics.SEGMENT_KEYS, "channel", *_REVENUE_FIELDS)
    stored = list(driver_rows(rows.values_list(*fields)))
    if size_band:
        cells = _revenue_rows(
            by=("region", "vertical"), region=region, vertical=vertical, size_band=size_band
        )
        stored += driver_rows(cells.filter(week=week, channel="").values_list(*fields))
    figures = [_revenue_figures(row[0], row[1:5], row[5:]) for row in stored]
    return sorted(figures, key=lambda row: (row.region, row.vertical))


_PARTNER_REVENUE_FIELDS = (
    "currency",
    "partner_id",
    "external_id",
    "name",
    "channel_kind",
    "pipeline_count",
    "pipeline_cents",
    "weighted_pipeline_cents",
    "won_count",
    "won_cents",
    "mrr_cents",
    "subscribers",
    "influenced_count",
    "influenced_cents",
    "forecast_count",
    "forecast_cents",
    "target_cents",
)
# What partners' revenue may be ordered by: most sourced won revenue first, most pipeline,
# most expected in the next 13 weeks, or by external id.
PARTNER_REVENUE_ORDERS: dict[str, tuple[str, ...]] = {
    "won": ("-won_cents", "external_id"),
    "pipeline": ("-pipeline_cents", "external_id"),
    "forecast": ("-forecast_cents", "external_id"),
    "external_id": ("external_id",),
}


def revenue_partners(
    week: str,
    *,
    channel_kind: str = "",
    partner_id: int | None = None,
    order: str = "external_id",
    limit: int | None = None,
) -> list[PartnerRevenue]:
    """The partners' revenue figures of `week`, of one channel kind or partner when given, in
    the order `PARTNER_REVENUE_ORDERS[order]` names, at most `limit`."""
    rows = PartnerRevenueSnapshot.objects.filter(week=week)
    if channel_kind:
        rows = rows.filter(channel_kind=channel_kind)
    if partner_id is not None:
        rows = rows.filter(partner_id=partner_id)
    values = rows.order_by(*PARTNER_REVENUE_ORDERS[order]).values_list(*_PARTNER_REVENUE_FIELDS)
    result = []
    for row in driver_rows(values[:limit] if limit else values):
        currency, partner, external_id, name, kind, *numbers = row
        result.append(
            PartnerRevenue(
                week,
                currency,
                partner,
                external_id,
                name,
                kind,
                numbers[0],
                _money(numbers[1]),
                _money(numbers[2]),
                numbers[3],
                _money(numbers[4]),
                _money(numbers[5]),
                numbers[6],
                numbers[7],
                _money(numbers[8]),
                numbers[9],
                _money(numbers[10]),
                _money(numbers[11]),
            )
        )
    return result


def revenue_partner_totals(
    weeks: Sequence[str], *, channel_kind: str = ""
) -> list[PartnerRevenueTotals]:
    """Per week, the partners of `channel_kind` (every partner when blank) summed (rule 17).
    Sorted by week. One query."""
    rows = (
        PartnerRevenueRollup.objects.filter(channel_kind=channel_kind, week__in=list(weeks))
        .order_by("week")
        .values_list(
            "week",
            "currency",
            "partners",
            "pipeline_count",
            "pipeline_cents",
            "weighted_pipeline_cents",
            "won_count",
            "won_cents",
            "mrr_cents",
            "forecast_count",
            "forecast_cents",
            "target_cents",
        )
    )
    return [
        PartnerRevenueTotals(
            week,
            currency,
            channel_kind,
            partner_count,
            pipeline_count,
            _money(pipeline),
            _money(weighted),
            won_count,
            _money(won),
            _money(mrr),
            forecast_count,
            _money(forecast),
            _money(target),
        )
        for (
            week,
            currency,
            partner_count,
            pipeline_count,
            pipeline,
            weighted,
            won_count,
            won,
            mrr,
            forecast_count,
            forecast,
            target,
        ) in driver_rows(rows)
    ]


def revenue_forecast(week: str, *, channel: str = "") -> list[ForecastWeek]:
    """The weighted pipeline of `channel` ("" for all) expected to close in each of the 13
    weeks after the week's as-of day, weeks without any deal absent; by week ahead."""
    rows = (
        RevenueForecast.objects.filter(week=week, channel=channel)
        .order_by("weeks_ahead")
        .values_list("currency", "weeks_ahead", "forecast_count", "forecast_cents")
    )
    return [
        ForecastWeek(week, currency, channel, ahead, count, _money(cents))
        for currency, ahead, count, cents in driver_rows(rows)
    ]


def revenue_problem(week: str) -> str:
    """Why the week's stored figures have no revenue (a missing rate), or "" when they have
    it: the note of the run that wrote them."""
    problem = (
        MetricsRun.objects.using(figures_database())
        .filter(week=week, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("revenue_problem", flat=True)
        .first()
    )
    return problem or ""


# -- The revenue export (metrics_export --report revenue, /api/v1/metrics/revenue/) ---------

REVENUE_FIGURES = [
    "pipeline_count",
    "pipeline_amount",
    "weighted_pipeline",
    "won_count",
    "won_amount",
    "mrr",
    "subscribers",
    "arpa",
    "influenced_amount",
]
CENT = Decimal("0.01")


def _cents(value: object) -> object:
    """An amount with two decimals (ARPA, divided at full precision, rounded half up here)."""
    if isinstance(value, Decimal):
        return str(value.quantize(CENT, ROUND_HALF_UP))
    return value


def revenue_export(week: str, *, by: str) -> tuple[list[str], list[list[object]]]:
    """The week's revenue figures (docs/metrics.md rules 10-17) as `metrics_export --report
    revenue` and /api/v1/metrics/revenue/ give them, by `by`, one row per value of
    the dimension and sourcing channel (`channel`); `total` sums every channel, `partner` gives
    each partner's sourced figures with its channel kind. Amounts as text with two decimals,
    ARPA empty without subscribers."""
    if by == "partner":
        columns = ["partner", "channel", *REVENUE_FIGURES]
        rows = [
            [
                row.external_id,
                row.channel_kind,
                row.pipeline_count,
                row.pipeline_amount,
                row.weighted_pipeline,
                row.won_count,
                row.won_amount,
                row.mrr,
                row.subscribers,
                divided(row.mrr, row.subscribers),
                row.influenced_amount,
            ]
            for row in revenue_partners(week)
        ]
    else:
        keys = [] if by in ("channel", "total") else metrics.ROLLUP_DIMENSIONS[by]
        by_channel = by != "total"
        columns = [*keys, *(["channel"] if by_channel else []), *REVENUE_FIGURES]
        figures = revenue_rollup([week], by=keys, by_channel=by_channel)
        rows = [[getattr(row, column) for column in columns] for row in figures]
    return columns, [[_cents(value) for value in row] for row in rows]
