"""The dashboard's revenue figures (docs/metrics.md rules 10-17): what the page shows beside
coverage for a set of filters, from the typed rows of `analytics.reports` (the only reader of
the snapshot tables), cached under the snapshot version like the coverage figures.

Sourced and influenced revenue are shown side by side and never added: a won deal is sourced
once and may be influenced by several channels (rule 16).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict, cast
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from analytics import reports
from analytics.dashboard import (
    DASH,
    Filters,
    cached,
    change_tone,
    previous_week,
    trailing_weeks,
)
from analytics.reports import CENT, ForecastWeek, PartnerRevenue, RevenueFigures, WeekOption
from crm.models import ChannelKind
from crm.selectors import AccountFilter
from partners.selectors import AccountListFilter

TOP_PARTNERS = 10
# The revenue tables the dashboard offers as CSV, for the same week and filters as the page.
EXPORT_TABLES: tuple[str, ...] = (
    "revenue_headlines",
    "revenue_channels",
    "revenue_trend",
    "revenue_white_space",
    "revenue_forecast",
    "revenue_partners",
)
# A CSV table: its header (translated when written) and its rows.
Table = tuple[Sequence[StrOrPromise], list[list[object]]]


class RevenueHeadline(TypedDict):
    key: str
    label: StrOrPromise
    kind: str
    value: Decimal | int | None
    previous: Decimal | int | None
    change: Decimal | int | None
    shown: str
    change_shown: str
    tone: str


class ValueCell(TypedDict):
    """One cell or total of the white-space value table (rule 15)."""

    region: str
    vertical: str
    value: Decimal | None
    per_account: Decimal | None
    sales_revenue: Decimal | None
    won_amount: Decimal
    won_accounts: int


class ValueMapRow(TypedDict):
    region: str
    cells: list[ValueCell | None]
    total: ValueCell | None


class ValueMap(TypedDict):
    verticals: list[str]
    rows: list[ValueMapRow]
    totals: list[ValueCell | None]
    total: ValueCell | None


class ShownCell(TypedDict):
    shown: str
    url: str
    title: str
    muted: bool


class ChannelRevenue(TypedDict):
    """One sourcing channel's line of the revenue-by-channel table."""

    channel: str
    won_count: int
    sourced: Decimal
    influenced: Decimal
    pipeline: Decimal
    mrr: Decimal


class ShownChannel(ChannelRevenue):
    label: StrOrPromise
    sourced_shown: str
    influenced_shown: str
    pipeline_shown: str
    mrr_shown: str


class RevenueTrend(TypedDict):
    """The trend's weeks' MRR, U and P, None for a week without figures."""

    mrr: list[Decimal | None]
    subscribers: list[int | None]
    arpa: list[Decimal | None]


class PartnerLine(TypedDict):
    """A `reports.PartnerRevenue` row as a dict (the page adds what it shows to it)."""

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


class ShownPartner(PartnerLine):
    channel_label: StrOrPromise
    won_shown: str
    mrr_shown: str
    pipeline_shown: str
    forecast_shown: str
    target_shown: str


class ForecastLine(TypedDict):
    """A `reports.ForecastWeek` row as a dict."""

    week: str
    currency: str
    channel: str
    weeks_ahead: int
    forecast_count: int
    forecast_amount: Decimal


class ShownValueRow(TypedDict):
    name: str
    cells: list[ShownCell]
    total: ShownCell


class ShownValueMap(TypedDict):
    verticals: list[str]
    rows: list[ShownValueRow]
    has_totals_column: bool
    totals: list[ShownCell]
    total: ShownCell


class RevenueReport(TypedDict):
    """The dashboard's revenue figures for a set of filters (`revenue_report`)."""

    currency: str
    problem: str
    headlines: list[RevenueHeadline]
    channels: list[ChannelRevenue]
    trend_weeks: list[str]
    trend: RevenueTrend
    value_map: ValueMap
    partners: list[PartnerLine]
    forecast: list[ForecastLine]
    forecast_total: Decimal
    target: Decimal | None
    partner_forecast: Decimal | None


class RevenueSection(TypedDict):
    """`RevenueReport` with what the page shows beside its figures (`revenue_section`)."""

    currency: str
    problem: str
    headlines: list[RevenueHeadline]
    channels: list[ShownChannel]
    trend_weeks: list[str]
    trend: RevenueTrend
    value_map: ValueMap
    partners: list[ShownPartner]
    forecast: list[ForecastLine]
    forecast_total: Decimal
    target: Decimal | None
    partner_forecast: Decimal | None
    white_space: ShownValueMap
    forecast_total_shown: str
    target_shown: str
    partner_forecast_shown: str


class RevenueCharts(TypedDict):
    weeks: list[str]
    mrr: list[float | None]
    subscribers: list[int | None]
    arpa: list[float | None]
    labels: dict[str, str]
    forecast: ForecastChart


class ForecastChart(TypedDict):
    labels: list[str]
    amounts: list[float]
    label: str


HEADLINES: tuple[tuple[str, StrOrPromise, str], ...] = (
    # (field of RevenueFigures, label, kind: money or count)
    ("won_amount", _("Won revenue (52 weeks)"), "money"),
    ("mrr", _("MRR"), "money"),
    ("subscribers", _("Subscribers (U)"), "count"),
    ("arpa", _("ARPA (P)"), "money"),
    ("pipeline_amount", _("Pipeline"), "money"),
    ("weighted_pipeline", _("Weighted pipeline"), "money"),
)


def show_money(value: Decimal | None) -> str:
    """An amount to the cent, rounded half up (docs/metrics.md rule 10) as the API and the
    exports round it, with thousands separators; "—" for none."""
    return DASH if value is None else f"{to_cent(value):,}"


def show_money_change(change: Decimal | None) -> str:
    return DASH if change is None else f"{to_cent(change):+,}"


def show_whole(value: Decimal | None) -> str:
    """An amount in whole units of the currency (half up), with thousands separators."""
    return DASH if value is None else f"{value.quantize(Decimal(1), ROUND_HALF_UP):,}"


def to_cent(value: Decimal) -> Decimal:
    """An amount (ARPA and D are divided at full precision) to the cent, half up."""
    return value.quantize(CENT, ROUND_HALF_UP)


def _figure(row: RevenueFigures | None, key: str) -> Decimal | int | None:
    """A headline's figure (a field of `RevenueFigures` named in `HEADLINES`), None without
    a row."""
    return cast(Decimal | int | None, getattr(row, key)) if row is not None else None


def _amount(figure: Decimal | int | None) -> Decimal | None:
    """A money headline's figure (always a Decimal or None) typed as one."""
    return None if figure is None else Decimal(figure)


def _partner_line(row: PartnerRevenue) -> PartnerLine:
    return cast(PartnerLine, row._asdict())


def _forecast_line(row: ForecastWeek) -> ForecastLine:
    return cast(ForecastLine, row._asdict())


def _headlines(now: RevenueFigures | None, before: RevenueFigures | None) -> list[RevenueHeadline]:
    rows: list[RevenueHeadline] = []
    for key, label, kind in HEADLINES:
        value, previous = _figure(now, key), _figure(before, key)
        change = value - previous if value is not None and previous is not None else None
        rows.append(
            {
                "key": key,
                "label": label,
                "kind": kind,
                "value": value,
                "previous": previous,
                "change": change,
                "shown": (
                    show_money(_amount(value))
                    if kind == "money"
                    else (DASH if value is None else f"{value:,}")
                ),
                "change_shown": (
                    show_money_change(_amount(change))
                    if kind == "money"
                    else (DASH if change is None else f"{change:+,}")
                ),
                "tone": change_tone(change, 1),
            }
        )
    return rows


def _map_value(row: RevenueFigures | None) -> ValueCell | None:
    """What the white-space table shows of one cell or total (rule 15)."""
    if row is None:
        return None
    return {
        "region": row.region,
        "vertical": row.vertical,
        "value": row.white_space_value,
        "per_account": row.revenue_per_won_account,
        "sales_revenue": row.sales_revenue,
        "won_amount": row.won_amount,
        "won_accounts": row.won_accounts,
    }


def _value_map(filters: Filters) -> ValueMap:
    """Rule 15's white-space value as a region x vertical table: region rows, vertical
    columns, each cell the stored (region, vertical) figure and each total a stored rollup
    (rounded once, so a total may differ by a cent from the sum of its shown cells). Totals
    of one region or one vertical are the cells themselves and are left out."""
    rows = reports.revenue_value_map(filters.week, **filters.segment())
    cells = {(r.region, r.vertical): r for r in rows if r.region and r.vertical}
    regions = sorted({region for region, _vertical in cells})
    verticals = sorted({vertical for _region, vertical in cells})
    by_key = {(r.region, r.vertical): r for r in rows}
    many_regions, many_verticals = len(regions) > 1, len(verticals) > 1
    return {
        "verticals": verticals,
        "rows": [
            {
                "region": region,
                "cells": [_map_value(cells.get((region, vertical))) for vertical in verticals],
                "total": _map_value(by_key.get((region, ""))) if many_verticals else None,
            }
            for region in regions
        ],
        "totals": (
            [_map_value(by_key.get(("", vertical))) for vertical in verticals]
            if many_regions
            else []
        ),
        "total": _map_value(by_key.get(("", ""))) if many_regions and many_verticals else None,
    }


def _compute(filters: Filters, chosen: WeekOption) -> RevenueReport:
    week = filters.week
    prior = previous_week(week)
    weeks = trailing_weeks(week, filters.span)
    # The span is at least 12 weeks: the trend holds the week and the one before.
    trend = {
        row.week: row
        for row in reports.revenue_rollup(
            weeks,
            channel=filters.channel,
            region=filters.region,
            vertical=filters.vertical,
            size_band=filters.size_band,
        )
    }
    totals = {w: trend[w] for w in (prior, week) if w in trend}
    by_channel = reports.revenue_rollup(
        [week],
        by_channel=True,
        region=filters.region,
        vertical=filters.vertical,
        size_band=filters.size_band,
    )
    # White-space value and I are given on the all-channel rows only (rule 15).
    value_map = _value_map(filters)
    kind = (
        filters.channel
        if filters.channel in (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)
        else ""
    )
    partners = reports.revenue_partners(week, channel_kind=kind, order="won", limit=TOP_PARTNERS)
    partner_totals = reports.revenue_partner_totals([week], channel_kind=kind)
    forecast = reports.revenue_forecast(week, channel=filters.channel)
    now = totals.get(week)
    currency = next((row.currency for row in (now, *by_channel) if row is not None), "")
    return {
        "currency": currency,
        "problem": reports.revenue_problem(week),
        "headlines": _headlines(now, totals.get(prior)),
        "channels": [
            {
                "channel": row.channel,
                "won_count": row.won_count,
                "sourced": row.won_amount,
                "influenced": row.influenced_amount,
                "pipeline": row.pipeline_amount,
                "mrr": row.mrr,
            }
            for row in by_channel
        ],
        "trend_weeks": weeks,
        "trend": {
            "mrr": [row.mrr if row else None for row in map(trend.get, weeks)],
            "subscribers": [row.subscribers if row else None for row in map(trend.get, weeks)],
            "arpa": [row.arpa if row else None for row in map(trend.get, weeks)],
        },
        "value_map": value_map,
        "partners": [_partner_line(row) for row in partners],
        "forecast": [_forecast_line(row) for row in forecast],
        "forecast_total": sum((row.forecast_amount for row in forecast), Decimal(0)),
        "target": partner_totals[0].target_amount if partner_totals else None,
        "partner_forecast": partner_totals[0].forecast_amount if partner_totals else None,
    }


def revenue_report(*, filters: Filters, chosen: WeekOption) -> RevenueReport:
    """The revenue figures the dashboard shows for `filters` (whose week is `chosen`): the
    headlines against the previous week, sourced and influenced revenue by channel, the MRR
    trend with U and P, the white-space value by region and vertical, the top partners by
    sourced revenue, and the next 13 weeks' forecast against the partners' targets. Amounts
    are Decimals in the reporting currency `currency`; `problem` says why a week has none."""
    # Plain reads of a few stored rows each: no need for `serial_reads` (the coverage trend's
    # aggregate is what a parallel plan slows down).
    return cached("revenue-2", filters, chosen.version, lambda: _compute(filters, chosen))


def _white_space_url(filters: Filters, as_of: date, region: str, vertical: str) -> str:
    """The account list of the white space a cell counts: uncovered in-market accounts of the
    cell's region and vertical (and the page's size band) on the week's as-of day."""
    accounts = AccountListFilter(
        segment=AccountFilter(region=region, vertical=vertical, size_band=filters.size_band),
        coverage="none",
        as_of=as_of,
    )
    return reverse("partners:account_list") + "?" + urlencode(accounts.query())


def revenue_section(
    *, filters: Filters, chosen: WeekOption, names: dict[str, dict[str, str]]
) -> RevenueSection:
    """`revenue_report` with what the page shows beside the figures: channel labels, region
    and vertical names, amounts to the cent, and each white-space cell's account list.

    Cached as the figures are, under the snapshot version (a succeeded run changes it), and
    per language and region and vertical names, which are part of what it shows: formatting
    the white-space cells (a link, an amount and a tooltip each) took a sixth of the
    dashboard's CPU per view."""
    return cached(
        f"revenue-section-1:{get_language()}:{names!r}",
        filters,
        chosen.version,
        lambda: _revenue_section(filters=filters, chosen=chosen, names=names),
    )


def _revenue_section(
    *, filters: Filters, chosen: WeekOption, names: dict[str, dict[str, str]]
) -> RevenueSection:
    revenue = revenue_report(filters=filters, chosen=chosen)
    channel_labels = dict(ChannelKind.choices)
    money = show_money
    value_map = revenue["value_map"]

    def shown(cell: ValueCell | None, region: str, vertical: str) -> ShownCell:
        """A cell of the white-space table: whole units, to be read at a glance; the exact
        amount, D and I in its tooltip (and the CSV). Every cell links to its accounts."""
        url = _white_space_url(filters, chosen.as_of, region, vertical)
        if cell is None or cell["value"] is None:
            return {"shown": DASH, "url": url, "title": "", "muted": True}
        where = " / ".join(
            name
            for name in (
                names["regions"].get(region, region) if region else "",
                names["verticals"].get(vertical, vertical) if vertical else "",
            )
            if name
        )
        return {
            "shown": show_whole(cell["value"]),
            "url": url,
            "title": gettext("%(where)s: %(value)s; D %(per_account)s, I %(sales_revenue)s")
            % {
                "where": where,
                "value": money(cell["value"]),
                "per_account": money(cell["per_account"]),
                "sales_revenue": money(cell["sales_revenue"]),
            },
            "muted": False,
        }

    verticals = value_map["verticals"]
    rows: list[ShownValueRow] = [
        {
            "name": names["regions"].get(row["region"], row["region"]),
            "cells": [
                shown(cell, row["region"], vertical)
                for cell, vertical in zip(row["cells"], verticals, strict=True)
            ],
            "total": shown(row["total"], row["region"], ""),
        }
        for row in value_map["rows"]
    ]
    white_space: ShownValueMap = {
        "verticals": [names["verticals"].get(v, v) for v in verticals],
        "rows": rows,
        "has_totals_column": any(row["total"] for row in value_map["rows"]),
        "totals": (
            [
                shown(cell, "", vertical)
                for cell, vertical in zip(value_map["totals"], verticals, strict=True)
            ]
            if value_map["totals"]
            else []
        ),
        "total": shown(value_map["total"], "", ""),
    }
    return {
        **revenue,
        "channels": [
            {
                **row,
                "label": channel_labels.get(row["channel"], row["channel"]),
                "sourced_shown": money(row["sourced"]),
                "influenced_shown": money(row["influenced"]),
                "pipeline_shown": money(row["pipeline"]),
                "mrr_shown": money(row["mrr"]),
            }
            for row in revenue["channels"]
        ],
        "white_space": white_space,
        "partners": [
            {
                **row,
                "channel_label": channel_labels.get(row["channel_kind"], row["channel_kind"]),
                "won_shown": money(row["won_amount"]),
                "mrr_shown": money(row["mrr"]),
                "pipeline_shown": money(row["pipeline_amount"]),
                "forecast_shown": money(row["forecast_amount"]),
                "target_shown": money(row["target_amount"]),
            }
            for row in revenue["partners"]
        ],
        "forecast_total_shown": money(revenue["forecast_total"]),
        "target_shown": money(revenue["target"]),
        "partner_forecast_shown": money(revenue["partner_forecast"]),
    }


def chart_data(revenue: RevenueSection) -> RevenueCharts:
    """The revenue charts' data for dashboard.js: the MRR trend with U and P, the forecast."""
    return {
        "weeks": revenue["trend_weeks"],
        "mrr": [_money_float(value) for value in revenue["trend"]["mrr"]],
        "subscribers": revenue["trend"]["subscribers"],
        "arpa": [_money_float(value) for value in revenue["trend"]["arpa"]],
        "labels": {
            "mrr": gettext("MRR"),
            "subscribers": gettext("Subscribers (U)"),
            "arpa": gettext("ARPA (P)"),
        },
        "forecast": {
            "labels": [
                gettext("+%(weeks)s wk") % {"weeks": row["weeks_ahead"]}
                for row in revenue["forecast"]
            ],
            "amounts": [float(row["forecast_amount"]) for row in revenue["forecast"]],
            "label": gettext("Weighted pipeline expected to close"),
        },
    }


def _money_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# -- CSV (the dashboard's "Export CSV" links) --------------------------------------------------
#
# Like the coverage tables' files: headers in the reader's language, names instead of codes,
# amounts to the cent (half up, as the page, the API and `metrics_export` give them), the
# same week and filters as the page.


def _cent(value: Decimal | None) -> Decimal | None:
    return None if value is None else to_cent(value)


def _export_headlines(week: str, revenue: RevenueReport) -> Table:
    header = [
        _("Week"),
        _("Figure"),
        _("Value"),
        _("Previous week"),
        _("Change"),
        _("Currency"),
    ]
    rows: list[list[object]] = []
    for h in revenue["headlines"]:
        money = h["kind"] == "money"
        value, previous, change = (
            _cent(_amount(v)) if money else v for v in (h["value"], h["previous"], h["change"])
        )
        currency = revenue["currency"] if money else ""
        rows.append([week, str(h["label"]), value, previous, change, currency])
    return header, rows


def _export_channels(week: str, revenue: RevenueReport) -> Table:
    labels = dict(ChannelKind.choices)
    header = [
        _("Week"),
        _("Channel"),
        _("Won deals (52 weeks)"),
        _("Sourced"),
        _("Influenced"),
        _("MRR"),
        _("Pipeline"),
    ]
    return header, [
        [
            week,
            labels.get(row["channel"], row["channel"]),
            row["won_count"],
            _cent(row["sourced"]),
            _cent(row["influenced"]),
            _cent(row["mrr"]),
            _cent(row["pipeline"]),
        ]
        for row in revenue["channels"]
    ]


def _export_trend(week: str, revenue: RevenueReport) -> Table:
    trend = revenue["trend"]
    header = [_("Week"), _("MRR"), _("Subscribers (U)"), _("ARPA (P)")]
    return header, [
        [trend_week, _cent(mrr), subscribers, _cent(arpa)]
        for trend_week, mrr, subscribers, arpa in zip(
            revenue["trend_weeks"], trend["mrr"], trend["subscribers"], trend["arpa"], strict=True
        )
    ]


def _export_white_space(
    week: str, revenue: RevenueReport, names: dict[str, dict[str, str]]
) -> Table:
    value_map = revenue["value_map"]
    header = [
        _("Week"),
        _("Region"),
        _("Vertical"),
        _("White-space value"),
        _("Revenue per won account (D)"),
        _("I = M × η × D"),
        _("Won revenue (52 weeks)"),
        _("Won accounts"),
    ]
    every_region, every_vertical = gettext("All regions"), gettext("All verticals")

    def line(cell: ValueCell) -> list[object]:
        region, vertical = cell["region"], cell["vertical"]
        return [
            week,
            names["regions"].get(region, region) if region else every_region,
            names["verticals"].get(vertical, vertical) if vertical else every_vertical,
            _cent(cell["value"]),
            _cent(cell["per_account"]),
            _cent(cell["sales_revenue"]),
            _cent(cell["won_amount"]),
            cell["won_accounts"],
        ]

    rows = [line(cell) for row in value_map["rows"] for cell in row["cells"] if cell]
    rows += [line(row["total"]) for row in value_map["rows"] if row["total"]]
    rows += [line(cell) for cell in value_map["totals"] if cell]
    if value_map["total"]:
        rows.append(line(value_map["total"]))
    return header, rows


def _export_forecast(week: str, revenue: RevenueReport) -> Table:
    header = [_("Week"), _("Weeks ahead"), _("Deals"), _("Weighted pipeline expected to close")]
    return header, [
        [week, row["weeks_ahead"], row["forecast_count"], _cent(row["forecast_amount"])]
        for row in revenue["forecast"]
    ]


def _export_partners(week: str, filters: Filters) -> Table:
    labels = dict(ChannelKind.choices)
    kind = (
        filters.channel
        if filters.channel in (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)
        else ""
    )
    header = [
        _("Week"),
        _("External id"),
        _("Partner"),
        _("Channel"),
        _("Won (52 weeks)"),
        _("MRR"),
        _("Pipeline"),
        _("Forecast (13 weeks)"),
        _("Target (13 weeks)"),
        _("Influenced"),
    ]
    return header, [
        [
            week,
            row.external_id,
            row.name,
            labels.get(row.channel_kind, row.channel_kind),
            _cent(row.won_amount),
            _cent(row.mrr),
            _cent(row.pipeline_amount),
            _cent(row.forecast_amount),
            _cent(row.target_amount),
            _cent(row.influenced_amount),
        ]
        for row in reports.revenue_partners(week, channel_kind=kind, order="won")
    ]


def export_rows(
    table: str, *, filters: Filters, chosen: WeekOption, names: dict[str, dict[str, str]]
) -> tuple[list[str], list[list[object]]]:
    """One revenue table of the dashboard (`EXPORT_TABLES`) as CSV rows for the page's week
    and filters: a header in the reader's language and one row per line the page shows (every
    partner of the filter's kind, not only the top ones)."""
    week = filters.week
    revenue = revenue_report(filters=filters, chosen=chosen)
    builders: dict[str, Callable[[], Table]] = {
        "revenue_headlines": lambda: _export_headlines(week, revenue),
        "revenue_channels": lambda: _export_channels(week, revenue),
        "revenue_trend": lambda: _export_trend(week, revenue),
        "revenue_white_space": lambda: _export_white_space(week, revenue, names),
        "revenue_forecast": lambda: _export_forecast(week, revenue),
        "revenue_partners": lambda: _export_partners(week, filters),
    }
    header, rows = builders[table]()
    return [str(label) for label in header], rows
