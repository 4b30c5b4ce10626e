"""The dashboard's revenue figures (docs/metrics.md rules 10-17): what the page shows beside
coverage for a set of filters, from the typed rows of `analytics.reports` (the only reader of
the snapshot tables), cached under the snapshot version like the coverage figures.

Sourced and influenced revenue are shown side by side and never added: a won deal is sourced
once and may be influenced by several channels (rule 16).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from analytics import reports
from analytics.dashboard import (
    DASH,
    Filters,
    cached,
    change_tone,
    previous_week,
    trailing_weeks,
)
from analytics.reports import RevenueFigures, WeekOption
from crm.models import ChannelKind

TOP_PARTNERS = 10
# The white-space value table: the cells with the most money at stake.
WHITE_SPACE_CELLS = 15
HEADLINES: tuple[tuple[str, Any, str], ...] = (
    # (field of RevenueFigures, label, kind: money or count)
    ("won_amount", _("Won revenue (52 weeks)"), "money"),
    ("mrr", _("MRR"), "money"),
    ("subscribers", _("Subscribers (U)"), "count"),
    ("arpa", _("ARPA (P)"), "money"),
    ("pipeline_amount", _("Pipeline"), "money"),
    ("weighted_pipeline", _("Weighted pipeline"), "money"),
)


def show_money(value: Decimal | None) -> str:
    """An amount to the cent with thousands separators; "—" for none."""
    return DASH if value is None else f"{value.quantize(Decimal('0.01')):,}"


def show_money_change(change: Decimal | None) -> str:
    return DASH if change is None else f"{change.quantize(Decimal('0.01')):+,}"


def _figure(row: RevenueFigures | None, key: str) -> Any:
    return getattr(row, key) if row is not None else None


def _headlines(now: RevenueFigures | None, before: RevenueFigures | None) -> list[dict[str, Any]]:
    rows = []
    for key, label, kind in HEADLINES:
        value, previous = _figure(now, key), _figure(before, key)
        change = value - previous if value is not None and previous is not None else None
        shown = show_money if kind == "money" else lambda v: DASH if v is None else f"{v:,}"
        rows.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "shown": shown(value),
                "change_shown": (
                    show_money_change(change)
                    if kind == "money"
                    else (DASH if change is None else f"{change:+,}")
                ),
                "tone": change_tone(change, 1),
            }
        )
    return rows


def _compute(filters: Filters, chosen: WeekOption) -> dict[str, Any]:
    week = filters.week
    segment = {
        "region": filters.region,
        "vertical": filters.vertical,
        "size_band": filters.size_band,
    }
    prior = previous_week(week)
    weeks = trailing_weeks(week, filters.span)
    # The span is at least 12 weeks: the trend holds the week and the one before.
    trend = {
        row.week: row
        for row in reports.revenue_rollup(
            weeks,
            channel=filters.channel,
            region=segment["region"],
            vertical=segment["vertical"],
            size_band=segment["size_band"],
        )
    }
    totals = {w: trend[w] for w in (prior, week) if w in trend}
    by_channel = reports.revenue_rollup(
        [week],
        by_channel=True,
        region=segment["region"],
        vertical=segment["vertical"],
        size_band=segment["size_band"],
    )
    # White-space value and I are given on the all-channel rows only (rule 15).
    cells = reports.revenue_rollup(
        [week],
        by=("region", "vertical"),
        region=segment["region"],
        vertical=segment["vertical"],
        size_band=segment["size_band"],
    )
    kind = (
        filters.channel
        if filters.channel in (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)
        else ""
    )
    partners = reports.revenue_partners(week, channel_kind=kind, order="won", limit=TOP_PARTNERS)
    partner_totals = reports.revenue_partner_totals([week], channel_kind=kind)
    forecast = reports.revenue_forecast(week, channel=filters.channel)
    now = totals.get(week)
    currency = next(
        (row.currency for row in (now, *by_channel, *cells) if row is not None),
        "",
    )
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
            "mrr": [_money_float(_figure(trend.get(w), "mrr")) for w in weeks],
            "subscribers": [_figure(trend.get(w), "subscribers") for w in weeks],
            "arpa": [_money_float(_figure(trend.get(w), "arpa")) for w in weeks],
        },
        "white_space": [
            {
                "region": row.region,
                "vertical": row.vertical,
                "value": row.white_space_value,
                "per_account": row.revenue_per_won_account,
                "sales_revenue": row.sales_revenue,
            }
            for row in sorted(
                cells, key=lambda r: (-(r.white_space_value or 0), r.region, r.vertical)
            )
            if row.white_space_value
        ][:WHITE_SPACE_CELLS],
        "partners": [row._asdict() for row in partners],
        "forecast": [row._asdict() for row in forecast],
        "forecast_total": sum((row.forecast_amount for row in forecast), Decimal(0)),
        "target": partner_totals[0].target_amount if partner_totals else None,
        "partner_forecast": partner_totals[0].forecast_amount if partner_totals else None,
    }


def _money_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def revenue_report(*, filters: Filters, chosen: WeekOption) -> dict[str, Any]:
    """The revenue figures the dashboard shows for `filters` (whose week is `chosen`): the
    headlines against the previous week, sourced and influenced revenue by channel, the MRR
    trend with U and P, the white-space value by region and vertical, the top partners by
    sourced revenue, and the next 13 weeks' forecast against the partners' targets. Amounts
    are Decimals in the reporting currency `currency`; `problem` says why a week has none."""
    # Plain reads of a few stored rows each: no need for `serial_reads` (the coverage trend's
    # aggregate is what a parallel plan slows down).
    return cached("revenue", filters, chosen.version, lambda: _compute(filters, chosen))
