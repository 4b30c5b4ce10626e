"""The leadership dashboard's and the digest's figures: what the page shows for a set of
filters, from the typed rows of `analytics.reports` (the only reader of the snapshot tables),
and how each figure is shown.

Snapshot figures, feedback and NPS included, are cached under a version that every succeeded
metrics run changes. The only live table read here is Agreement (the agreements ending soon,
docs/metrics.md rule 9, through the user's selector), with bounded, aggregated queries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TypedDict, TypeVar, cast

import numpy as np
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.db.models import Count, Max, Q, QuerySet, Value
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from analytics import metrics, reports
from analytics.reports import RegistrationFigures, SegmentFigures, WeekOption
from analytics.routers import figures_database
from crm.models import ChannelKind, SizeBand
from partners.models import Agreement, FeedbackCategory
from partners.rules import AGREEMENT_ENDING_SOON, ENDING_WITHIN_DAYS

SPANS: tuple[int, ...] = (12, 26, 52)
DEFAULT_SPAN = 12
HEAT_METRICS: tuple[str, ...] = ("coverage", "penetration")
# The leaderboard's orders (`reports.PARTNER_ORDERS`): most accounts covered first, or the
# least satisfied partners first.
LEADERBOARD_ORDERS: tuple[str, ...] = ("covered", "satisfaction", "nps")
WHITE_SPACE_LIMIT = 15
LEADERBOARD_LIMIT = 20
CACHE_SECONDS = 3600
# Part of every cache key: a deploy that changes the shape of cached figures changes it, so a
# figure cached by the previous code is never read as the new shape.
CACHE_SHAPE = "reports-1"
T = TypeVar("T")


# A figure of the dashboard: a count, a ratio or a score; None without data.
Figure = float | int | None


class HeatCell(TypedDict):
    region: str
    vertical: str
    accounts: int
    covered: int
    converted: int
    value: float | None


class HeatRow(TypedDict):
    region: str
    cells: list[HeatCell | None]


class HeatMap(TypedDict):
    regions: list[str]
    verticals: list[str]
    rows: list[HeatRow]
    cells: list[HeatCell]


class WhiteSpaceRow(TypedDict):
    region: str
    vertical: str
    size_band: str
    accounts: int
    covered_any: int
    white_space: int
    coverage: float | None


class RegistrationLine(TypedDict):
    key: str
    label: StrOrPromise
    shown: str
    previous_shown: str
    change_shown: str
    tone: str


class FeedbackCell(TypedDict):
    week: str
    category: str
    count: int
    satisfaction: float | None


class ChannelRow(TypedDict):
    """One channel kind's row of the week (`channel_table`); the changes are against the
    week before, None without figures in either week."""

    channel: str
    label: str
    accounts: int
    covered: int
    converted: int
    coverage: float | None
    penetration: float | None
    coverage_change: float | None
    penetration_change: float | None


class Trend(TypedDict):
    coverage: list[Figure]
    penetration: list[Figure]
    converted: dict[str, list[int | None]]


class RegistrationWeeks(TypedDict):
    weeks: list[RegistrationFigures | None]
    current: RegistrationFigures | None
    previous: RegistrationFigures | None
    channels: list[RegistrationFigures]


class WeekReport(TypedDict):
    """Everything the dashboard shows for one set of filters (`week_report`)."""

    week: WeekOption
    previous_week: str
    headlines: list[Headline]
    trend_weeks: list[str]
    trend: Trend
    channels: list[ChannelRow]
    heat: HeatMap
    white_space: list[WhiteSpaceRow]
    leaderboard: list[dict[str, object]]
    feedback_weeks: list[str]
    feedback: list[FeedbackCell]
    registrations: RegistrationWeeks


@dataclass(frozen=True)
class Filters:
    """The validated GET parameters of the dashboard; blank means "all"."""

    week: str = ""
    region: str = ""
    vertical: str = ""
    size_band: str = ""
    channel: str = ""
    span: int = DEFAULT_SPAN
    heat: str = "coverage"
    partners: str = "covered"

    def segment(self) -> dict[str, str]:
        """The segment filters, as `reports` takes them (the channel filter picks columns
        instead; partner figures have no segment and take only the channel)."""
        return {"region": self.region, "vertical": self.vertical, "size_band": self.size_band}

    def query(self, **changes: object) -> dict[str, str]:
        """The GET parameters of these filters (with `changes`), blanks left out."""
        values = {
            "week": self.week,
            "region": self.region,
            "vertical": self.vertical,
            "size_band": self.size_band,
            "channel": self.channel,
            "span": str(self.span),
            "heat": self.heat,
            "partners": self.partners,
            **changes,
        }
        return {key: str(value) for key, value in values.items() if value not in ("", None)}


@contextmanager
def serial_reads() -> Iterator[None]:
    """On PostgreSQL, read without parallel workers: on two cores the parallel plan of the
    trend aggregate is two to three times slower (measured: README, "Dashboard and digest")."""
    # On the database the figures are read from: the replica when there is one.
    alias = figures_database()
    if connections[alias].vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def cached(name: str, filters: Filters, version: str, compute: Callable[[], T]) -> T:
    """`compute()` cached under the snapshot version: a succeeded run changes the version, so a
    cached figure never outlives the rows it was summed from."""
    key_source = repr(
        (
            CACHE_SHAPE,
            name,
            version,
            filters.week,
            filters.region,
            filters.vertical,
            filters.size_band,
            filters.channel,
            filters.span,
            filters.heat,
            filters.partners,
        )
    )
    key = "dashboard:" + hashlib.sha256(key_source.encode()).hexdigest()
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return cast(T, value)


def agreements_version(agreements: QuerySet[Agreement]) -> str:
    """A version of the caller's agreements: their number and latest change, and the query
    that selects them. Saving, adding or deleting an agreement changes it, so a figure cached
    under it is never older than the agreements it was counted from. One small query."""
    sql, params = (
        agreements.order_by()
        .values(one=Value(1))
        .annotate(n=Count("id"), last=Max("updated_at"))
        .values_list("n", "last")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        versions = cursor.fetchall()
    return repr((versions, sql, params))


def default_week(options: Sequence[WeekOption]) -> WeekOption | None:
    """The latest final week; the latest provisional one when no week is final yet."""
    return next((o for o in options if o.final), options[0] if options else None)


def parse_filters(
    params: Mapping[str, str],
    options: Sequence[WeekOption],
    *,
    regions: Collection[str],
    verticals: Collection[str],
) -> tuple[Filters, WeekOption | None]:
    """Validate GET parameters against the known weeks, region and vertical codes; an unknown
    value falls back to "all" (or the default week)."""
    by_week = {o.week: o for o in options}
    chosen = by_week.get(params.get("week", "")) or default_week(options)
    region = params.get("region", "")
    vertical = params.get("vertical", "")
    size_band = params.get("size_band", "")
    channel = params.get("channel", "")
    try:
        span = int(params.get("span", DEFAULT_SPAN))
    except ValueError:
        span = DEFAULT_SPAN
    heat = params.get("heat", "coverage")
    partners = params.get("partners", "covered")
    filters = Filters(
        week=chosen.week if chosen else "",
        region=region if region in regions else "",
        vertical=vertical if vertical in verticals else "",
        size_band=size_band if size_band in SizeBand.values else "",
        channel=channel if channel in ChannelKind.values else "",
        span=span if span in SPANS else DEFAULT_SPAN,
        heat=heat if heat in HEAT_METRICS else "coverage",
        partners=partners if partners in LEADERBOARD_ORDERS else "covered",
    )
    return filters, chosen


def previous_week(week: str) -> str:
    return metrics.iso_week_of(metrics.iso_week_as_of(week) - timedelta(days=7))


def trailing_weeks(week: str, count: int) -> list[str]:
    """`count` ISO weeks ending with `week`, oldest first."""
    last = metrics.iso_week_as_of(week)
    return [
        metrics.iso_week_of(last - timedelta(days=7 * back)) for back in range(count - 1, -1, -1)
    ]


def weekly_totals(filters: Filters, weeks: Sequence[str]) -> dict[str, SegmentFigures]:
    """The filtered segments' figures per week (one row a week from the rollups, one query).
    Weeks without rows are absent."""
    return {row.week: row for row in reports.rollup(weeks, **filters.segment())}


def segment_figures(counts: SegmentFigures | None, channel: str) -> dict[str, Figure]:
    """The headline segment figures; ratios None when there are no accounts (or no snapshot at
    all). With a channel, coverage and penetration are that channel's."""
    if counts is None:
        return {
            "accounts": None,
            "coverage": None,
            "penetration": None,
            "white_space": None,
            "overlap": None,
        }
    coverage, penetration = counts.coverage, counts.penetration
    if channel:
        own = reports.channel(counts, channel)
        coverage, penetration = own.coverage, own.penetration
    return {
        "accounts": counts.accounts,
        "coverage": coverage,
        "penetration": penetration,
        "white_space": counts.white_space,
        "overlap": counts.overlap,
    }


def channel_table(
    counts: SegmentFigures | None, previous: SegmentFigures | None = None
) -> list[ChannelRow]:
    """One row per channel kind, as `metrics_export --by channel` gives it: accounts, covered,
    converted (won by that kind), coverage, penetration; and the change of coverage and
    penetration against `previous` (the prior week's figures; None without them or without
    accounts in either week)."""
    before = {row["channel"]: row for row in _channel_rows(previous)} if previous else {}
    rows = _channel_rows(counts)
    for row in rows:
        prior = before.get(row["channel"])
        old_coverage = prior["coverage"] if prior else None
        old_penetration = prior["penetration"] if prior else None
        row["coverage_change"] = _change(row["coverage"], old_coverage)
        row["penetration_change"] = _change(row["penetration"], old_penetration)
    return rows


def _change(value: float | None, old: float | None) -> float | None:
    return None if value is None or old is None else value - old


def _channel_rows(counts: SegmentFigures | None) -> list[ChannelRow]:
    labels = dict(ChannelKind.choices)
    figures = {row.channel: row for row in reports.channels(counts)} if counts else {}
    rows: list[ChannelRow] = []
    for kind in metrics.KINDS:
        figure = figures.get(kind)
        rows.append(
            {
                "channel": kind,
                "label": str(labels[kind]),
                "accounts": figure.accounts if figure else 0,
                "covered": figure.covered if figure else 0,
                "converted": figure.converted if figure else 0,
                "coverage": figure.coverage if figure else None,
                "penetration": figure.penetration if figure else None,
                "coverage_change": None,
                "penetration_change": None,
            }
        )
    return rows


def heat_map(filters: Filters) -> HeatMap:
    """Region x vertical cells of the week: counts summed over size bands, then the chosen
    ratio (`filters.heat`, for `filters.channel` when set). One query."""
    cells: dict[tuple[str, str], HeatCell] = {}
    for row in reports.rollup([filters.week], by=("region", "vertical"), **filters.segment()):
        if filters.channel:
            own = reports.channel(row, filters.channel)
            covered, converted = own.covered, own.converted
            coverage, penetration = own.coverage, own.penetration
        else:
            covered, converted = row.covered_any, row.converted
            coverage, penetration = row.coverage, row.penetration
        cells[(row.region, row.vertical)] = {
            "region": row.region,
            "vertical": row.vertical,
            "accounts": row.accounts,
            "covered": covered,
            "converted": converted,
            "value": coverage if filters.heat == "coverage" else penetration,
        }
    regions = sorted({region for region, _ in cells})
    verticals = sorted({vertical for _, vertical in cells})
    return {
        "regions": regions,
        "verticals": verticals,
        "rows": [
            {"region": region, "cells": [cells.get((region, vertical)) for vertical in verticals]}
            for region in regions
        ],
        "cells": [cells[key] for key in sorted(cells)],
    }


def white_space_segments(filters: Filters, limit: int = WHITE_SPACE_LIMIT) -> list[WhiteSpaceRow]:
    """The segments of the week with the most in-market accounts no channel covers."""
    return [
        {
            "region": row.region,
            "vertical": row.vertical,
            "size_band": row.size_band,
            "accounts": row.accounts,
            "covered_any": row.covered_any,
            "white_space": row.white_space,
            "coverage": row.coverage,
        }
        for row in reports.white_space(filters.week, limit=limit, **filters.segment())
    ]


def partner_weekly(filters: Filters, weeks: Sequence[str]) -> dict[str, dict[str, Figure]]:
    """Per week: partners with an agreement in force, agreements in force, feedback count, the
    feedback-weighted mean satisfaction and the NPS of the summed scores (rule 7), of the
    channel filter's kind or every partner. One query."""
    return {
        row.week: {
            "active_partners": row.active_partners,
            "agreements_in_force": row.agreements_in_force,
            "feedback": row.feedback_count,
            "satisfaction": row.satisfaction,
            "nps": row.nps,
        }
        for row in reports.partner_totals(weeks, channel_kind=filters.channel)
    }


def feedback_weekly(filters: Filters, weeks: Sequence[str]) -> tuple[list[str], list[FeedbackCell]]:
    """Feedback volume and mean satisfaction per ISO week (by created date) and category
    (rule 8), of the channel filter's kind or every partner: the weeks that have feedback,
    sorted, and one row per week and category. One query."""
    cells: list[FeedbackCell] = [
        {
            "week": row.week,
            "category": row.category,
            "count": row.feedback_count,
            "satisfaction": row.satisfaction,
        }
        for row in reports.feedback(weeks, channel_kind=filters.channel)
    ]
    return sorted({cell["week"] for cell in cells}), cells


def registration_weekly(
    rows: Sequence[RegistrationFigures], channel: str
) -> dict[str, RegistrationFigures]:
    """Per week, of `registration_table`'s rows, the filters' registrations of all channel
    kinds, or of `channel` when chosen (rule 18)."""
    return {row.week: row for row in rows if row.channel_kind == channel}


def registration_channels(
    rows: Sequence[RegistrationFigures], week: str
) -> list[RegistrationFigures]:
    """Of `registration_table`'s rows, the week's per channel kind that registers."""
    return [row for row in rows if row.week == week and row.channel_kind]


def registration_table(filters: Filters, weeks: Sequence[str]) -> list[RegistrationFigures]:
    """Per week of `weeks` whose run counted registrations: the filters' registrations per
    channel kind that registers (zeros where none), after their sum over the kinds when no
    channel is chosen (rule 18), as the dashboard's export gives them. One query."""
    segment = filters.segment()
    region, vertical, size_band = segment["region"], segment["vertical"], segment["size_band"]
    if filters.channel:
        return reports.registrations(
            weeks,
            region=region,
            vertical=vertical,
            size_band=size_band,
            channel_kind=filters.channel,
        )
    read = reports.registrations(
        weeks,
        region=region,
        vertical=vertical,
        size_band=size_band,
        by_channel=True,
        with_total=True,
    )
    found = {(row.week, row.channel_kind): row for row in read}
    rows: list[RegistrationFigures] = []
    for total in (row for row in read if not row.channel_kind):
        rows.append(total)
        rows += [
            found.get((total.week, kind))
            or reports.registration_zeros(total.week, channel_kind=kind, **segment)
            for kind in metrics.PARTNER_KINDS
        ]
    return rows


def leaderboard(filters: Filters, limit: int | None = LEADERBOARD_LIMIT) -> list[dict[str, object]]:
    """The week's partners (as `metrics_export --by partner`) in the order `filters.partners`
    names: most accounts covered first, or the least satisfied first. Direct and online have
    no partners, so their selection is empty."""
    rows = reports.partners(
        filters.week, channel_kind=filters.channel, order=filters.partners, limit=limit
    )
    return [{column: getattr(row, column) for column in metrics.PARTNER_COLUMNS} for row in rows]


def _agreements_scoped(agreements: QuerySet[Agreement], filters: Filters) -> QuerySet[Agreement]:
    if filters.channel:
        agreements = agreements.filter(partner__channel_kind=filters.channel)
    if filters.region:
        agreements = agreements.filter(Q(regions__isnull=True) | Q(regions__code=filters.region))
    if filters.vertical:
        agreements = agreements.filter(
            Q(verticals__isnull=True) | Q(verticals__code=filters.vertical)
        )
    return agreements


def agreements_ending(
    agreements: QuerySet[Agreement], filters: Filters, as_of: date
) -> QuerySet[Agreement]:
    """Rule 9 (`partners.rules.AGREEMENT_ENDING_SOON`): agreements (from the caller's selector)
    in force on `as_of` whose effective end falls within the next 90 days, scoped by the
    channel, region and vertical filters (an agreement with no regions or verticals grants
    all)."""
    return _agreements_scoped(agreements, filters).filter(AGREEMENT_ENDING_SOON.q(as_of)).distinct()


def agreements_ending_counts(
    agreements: QuerySet[Agreement], filters: Filters, days: Sequence[date]
) -> list[int]:
    """`agreements_ending(...).count()` for each of `days` (rule 9). One query reads the
    agreements that could end within 90 days of one of the days; each day then counts those the
    rule holds for, over the arrays of their dates. (One filtered count per day in SQL took the
    ORM 35 ms to build for a 52-week trend.)"""
    if not days:
        return []
    window = timedelta(days=ENDING_WITHIN_DAYS)
    fields = AGREEMENT_ENDING_SOON.fields
    candidates = list(
        _agreements_scoped(agreements, filters)
        .filter(
            Q(end_date__lte=max(days) + window) | Q(terminated_on__lte=max(days) + window),
            start_date__lte=max(days),
            end_date__gte=min(days),
        )
        .distinct()
        .values_list("id", *fields)
    )
    columns = {
        field: np.array(
            [row[1 + position] for row in candidates],
            dtype=object if field in AGREEMENT_ENDING_SOON.value_fields else "datetime64[D]",
        )
        for position, field in enumerate(fields)
    }
    return [int(AGREEMENT_ENDING_SOON.mask(columns, day).sum()) for day in days]


@dataclass
class Headline:
    key: str
    value: float | int | None
    previous: float | int | None
    kind: str  # "count", "ratio", "score" or "nps"
    trend: list[float | int | None] = field(default_factory=list)

    @property
    def change(self) -> float | int | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def label(self) -> StrOrPromise:
        return HEADLINE_LABELS[self.key]

    @property
    def better(self) -> int:
        """Which way a change is good news (HEADLINE_BETTER)."""
        return HEADLINE_BETTER[self.key]


HEADLINE_LABELS: dict[str, StrOrPromise] = {
    "accounts": _("Addressable accounts"),
    "coverage": _("Coverage"),
    "penetration": _("Penetration"),
    "white_space": _("White space"),
    "overlap": _("Overlap"),
    "active_partners": _("Active partners"),
    "agreements_in_force": _("Agreements in force"),
    "agreements_ending": _("Agreements ending within 90 days"),
    "satisfaction": _("Partner satisfaction (90 days)"),
    "nps": _("Partner NPS (90 days)"),
}


# Which way a headline's change is good news: +1 up, -1 down, 0 neither (shown uncoloured).
HEADLINE_BETTER: dict[str, int] = {
    "accounts": 0,
    "coverage": 1,
    "penetration": 1,
    "white_space": -1,
    "overlap": 0,
    "active_partners": 1,
    "agreements_in_force": 1,
    "agreements_ending": 0,
    "satisfaction": 1,
    "nps": 1,
}


def change_tone(change: Decimal | float | int | None, better: int) -> str:
    """ "good", "bad" or "" (no change, nothing to compare, or neither way better): the colour
    of a change whose good direction is `better` (+1 up, -1 down, 0 neither)."""
    if not change or not better:
        return ""
    return "good" if (change > 0) == (better > 0) else "bad"


HEADLINE_KINDS: dict[str, str] = {
    "accounts": "count",
    "coverage": "ratio",
    "penetration": "ratio",
    "white_space": "count",
    "overlap": "count",
    "active_partners": "count",
    "agreements_in_force": "count",
    "agreements_ending": "count",
    "satisfaction": "score",
    "nps": "nps",
}


def week_report(
    *,
    filters: Filters,
    options: Sequence[WeekOption],
    agreements: QuerySet[Agreement],
) -> WeekReport:
    """Everything the dashboard shows for `filters` (whose week must be one of `options`).

    Returns plain values (numbers or None): `headlines` (list of Headline),
    `trend_weeks`, `trend` (per week coverage, penetration, conversions by winning channel),
    `channels`, `heat`, `white_space`, `leaderboard`, `feedback_weeks`, `feedback`.
    Snapshot figures are cached under the snapshot version; the agreements ending soon under
    that and `agreements_version`, which one small query reads every time.
    """
    with serial_reads():
        return _week_report(filters=filters, options=options, agreements=agreements)


def _week_report(
    *,
    filters: Filters,
    options: Sequence[WeekOption],
    agreements: QuerySet[Agreement],
) -> WeekReport:
    by_week = {o.week: o for o in options}
    chosen = by_week[filters.week]
    prior = previous_week(filters.week)
    weeks = trailing_weeks(filters.week, filters.span)
    version = chosen.version
    totals = cached("totals", filters, version, lambda: weekly_totals(filters, weeks))
    partners = cached("partners", filters, version, lambda: partner_weekly(filters, weeks))

    feedback_weeks, feedback = cached(
        "feedback", filters, version, lambda: feedback_weekly(filters, weeks)
    )
    registration_rows = cached(
        "registrations", filters, version, lambda: registration_table(filters, weeks)
    )
    registrations = registration_weekly(registration_rows, filters.channel)
    # Agreements ending soon are counted live, cached under both versions: the snapshot's gives
    # the weeks and their as-of dates, the agreements' the rows counted.
    live = f"{version}|{agreements_version(agreements)}"

    def segment_series(key: str) -> list[Figure]:
        return [segment_figures(totals.get(w), filters.channel)[key] for w in weeks]

    def partner_series(key: str) -> list[Figure]:
        return [partners[w][key] if w in partners else None for w in weeks]

    # Counted on the as-of date of each trend week that has a snapshot, in one query.
    ending_days = {w: by_week[w].as_of for w in weeks if w in by_week}
    ending = cached(
        "agreements_ending",
        filters,
        live,
        lambda: dict(
            zip(
                ending_days,
                agreements_ending_counts(agreements, filters, list(ending_days.values())),
                strict=True,
            )
        ),
    )
    series: dict[str, list[Figure]] = {
        "accounts": segment_series("accounts"),
        "coverage": segment_series("coverage"),
        "penetration": segment_series("penetration"),
        "white_space": segment_series("white_space"),
        "overlap": segment_series("overlap"),
        "active_partners": partner_series("active_partners"),
        "agreements_in_force": partner_series("agreements_in_force"),
        "agreements_ending": [ending.get(w) for w in weeks],
        "satisfaction": partner_series("satisfaction"),
        "nps": partner_series("nps"),
    }
    headlines = []
    for key, kind in HEADLINE_KINDS.items():
        values = series[key]
        previous = values[-2] if len(values) > 1 else None
        headlines.append(
            Headline(
                key=key,
                value=values[-1],
                previous=previous,
                kind=kind,
                trend=values,
            )
        )

    current = totals.get(filters.week)
    return {
        "week": chosen,
        "previous_week": prior,
        "headlines": headlines,
        "trend_weeks": weeks,
        "trend": {
            "coverage": series["coverage"],
            "penetration": series["penetration"],
            "converted": {
                kind: [
                    getattr(totals[w], f"converted_{kind}") if w in totals else None for w in weeks
                ]
                for kind in metrics.KINDS
            },
        },
        "channels": channel_table(current, totals.get(prior)),
        "heat": cached("heat", filters, version, lambda: heat_map(filters)),
        "white_space": cached(
            "white_space", filters, version, lambda: white_space_segments(filters)
        ),
        "leaderboard": cached("leaderboard", filters, version, lambda: leaderboard(filters)),
        "feedback_weeks": feedback_weeks,
        "feedback": feedback,
        "registrations": {
            "weeks": [registrations.get(w) for w in weeks],
            "current": registrations.get(filters.week),
            "previous": registrations.get(prior),
            "channels": registration_channels(registration_rows, filters.week),
        },
    }


# Display: every figure is shown as text here, so the page, the digest and the tests agree on
# "—" for an empty selection rather than 0 % or an error.

DASH = "—"


def show_count(value: float | int | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def show_ratio(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f} %"


def show_score(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def show_nps(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def show_days(hours: float | None) -> str:
    """A time in hours shown in days, to one decimal (rule 18's median time to decision)."""
    return DASH if hours is None else _("%(days)s days") % {"days": f"{hours / 24:.1f}"}


def show_value(value: float | int | None, kind: str) -> str:
    """`value` shown as a figure of `kind` ("count", "ratio", "score" or "nps")."""
    return {"count": show_count, "ratio": show_ratio, "score": show_score, "nps": show_nps}[kind](
        value
    )


def show_change(change: float | int | None, kind: str) -> str:
    """A week-on-week change: signed counts, ratios in percentage points ("pp")."""
    if change is None:
        return DASH
    if kind == "count":
        return f"{int(change):+,}"
    if kind == "ratio":
        return f"{change * 100:+.1f} pp"
    if kind == "score":
        return f"{change:+.2f}"
    return f"{change:+.1f}"


# The week's deal registration figures (rule 18) as the page lists them: (key, label, kind),
# kind "count", "days" (a median in hours, shown in days) or "ratio". Which way is good news
# is as for the headlines: +1 up, -1 down, 0 neither.
REGISTRATION_ROWS: list[tuple[str, StrOrPromise, str, int]] = [
    ("submitted", _("Submitted"), "count", 0),
    ("approved", _("Approved"), "count", 0),
    ("rejected", _("Rejected"), "count", 0),
    ("won", _("Won"), "count", 1),
    ("decision_hours_median", _("Median time to decision"), "days", -1),
    ("conflict_share", _("Submitted with a conflict"), "ratio", -1),
]


def registration_value(value: float | int | None, kind: str) -> str:
    if kind == "days":
        return show_days(value)
    return show_value(value, kind)


def _registration_change(change: float | int | None, kind: str) -> str:
    if kind == "days" and change is not None:
        return _("%(days)s days") % {"days": f"{change / 24:+.1f}"}
    return show_change(change, "count" if kind == "days" else kind)


def registration_rows(report: WeekReport) -> list[RegistrationLine]:
    """The chosen week's registration figures beside the previous week's, shown."""
    current, previous = report["registrations"]["current"], report["registrations"]["previous"]
    rows: list[RegistrationLine] = []
    for key, label, kind, better in REGISTRATION_ROWS:
        value = getattr(current, key) if current else None
        before = getattr(previous, key) if previous else None
        change = None if value is None or before is None else value - before
        rows.append(
            {
                "key": key,
                "label": label,
                "shown": registration_value(value, kind),
                "previous_shown": registration_value(before, kind),
                "change_shown": _registration_change(change, kind),
                "tone": change_tone(change, better),
            }
        )
    return rows


def registration_channel_rows(report: WeekReport) -> list[dict[str, StrOrPromise]]:
    """The chosen week's registration figures per channel kind, shown."""
    labels = dict(ChannelKind.choices)
    return [
        {
            "channel": row.channel_kind,
            "label": labels.get(row.channel_kind, row.channel_kind),
            **{
                key: registration_value(getattr(row, key), kind)
                for key, _label, kind, _better in REGISTRATION_ROWS
            },
        }
        for row in report["registrations"]["channels"]
    ]


def missing_weeks(report: WeekReport) -> list[str]:
    """The trend's weeks without a snapshot (no segment figures at all)."""
    accounts = next(h for h in report["headlines"] if h.key == "accounts").trend
    return [
        week for week, value in zip(report["trend_weeks"], accounts, strict=True) if value is None
    ]


# The heat map's scale: one sequential colour ramp (ColorBrewer YlOrRd, safe for colour-blind
# readers), the darkest red for the lowest value: lower coverage or penetration is always the
# stronger warning. Its range is the map's own lowest and highest value, split in equal steps.
HEAT_STEPS = 7


@dataclass(frozen=True)
class HeatScale:
    """The colour steps of one heat map: equal steps from its lowest to its highest value."""

    low: float | None
    high: float | None

    @classmethod
    def of(cls, heat: HeatMap) -> HeatScale:
        values = [c["value"] for c in heat["cells"] if c["value"] is not None]
        return cls(min(values), max(values)) if values else cls(None, None)

    def steps(self) -> list[tuple[float, float]]:
        """The (from, to) bounds of each colour step, lowest first; empty without values."""
        if self.low is None or self.high is None:
            return []
        width = (self.high - self.low) / HEAT_STEPS
        return [
            (self.low + width * step, self.low + width * (step + 1)) for step in range(HEAT_STEPS)
        ]

    def css(self, value: float | None) -> str:
        """`heat-0` (the lowest step, darkest) to `heat-6`, `heat-none` without a figure."""
        if value is None or self.low is None or self.high is None:
            return "heat-none"
        if self.high == self.low:
            return "heat-0"
        step = int((value - self.low) / (self.high - self.low) * HEAT_STEPS)
        return f"heat-{min(HEAT_STEPS - 1, max(0, step))}"

    def legend(self) -> list[dict[str, str]]:
        """Each step's class and range, lowest first; one step when every value is the same."""
        steps = self.steps()
        if steps and self.low == self.high:
            steps = steps[:1]
        return [
            {"css": f"heat-{step}", "from": show_ratio(low), "to": show_ratio(high)}
            for step, (low, high) in enumerate(steps)
        ]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def chart_data(report: WeekReport, drivers_chart: object) -> dict[str, object]:
    """Everything dashboard.js draws of the week's report, as plain JSON (ratios in percent),
    with the programme's `drivers_chart` (JSON-ready, or None)."""
    channel_labels = dict(ChannelKind.choices)
    category_labels = dict(FeedbackCategory.choices)
    trend = report["trend"]
    feedback_weeks = report["feedback_weeks"]
    registrations = report["registrations"]["weeks"]
    categories = sorted({row["category"] for row in report["feedback"]})
    cell = {(row["week"], row["category"]): row for row in report["feedback"]}
    return {
        "weeks": report["trend_weeks"],
        "labels": {key: str(value) for key, value in HEADLINE_LABELS.items()},
        "sparklines": {
            h.key: [_percent(v) if h.kind == "ratio" else v for v in h.trend]
            for h in report["headlines"]
            if h.trend
        },
        "coverage": [_percent(v) for v in trend["coverage"]],
        "penetration": [_percent(v) for v in trend["penetration"]],
        "converted": [
            {"label": str(channel_labels[kind]), "data": values}
            for kind, values in trend["converted"].items()
        ],
        "channels": {
            "labels": [str(row["label"]) for row in report["channels"]],
            "coverage": [_percent(row["coverage"]) for row in report["channels"]],
            "penetration": [_percent(row["penetration"]) for row in report["channels"]],
        },
        "registrations": {
            **{
                key: [getattr(row, key) if row else None for row in registrations]
                for key in ("submitted", "approved", "won")
            },
            "labels": {key: str(label) for key, label, *_rest in REGISTRATION_ROWS[:4]},
        },
        "feedback": {
            "weeks": feedback_weeks,
            "volume": [
                {
                    "label": str(category_labels.get(category, category)),
                    "data": [
                        cell[(week, category)]["count"] if (week, category) in cell else 0
                        for week in feedback_weeks
                    ],
                }
                for category in categories
            ],
        },
        "drivers": drivers_chart,
    }
