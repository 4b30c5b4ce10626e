from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from analytics import dashboard as board
from analytics import digest, metrics
from analytics.models import PartnerSnapshot
from crm.exports import export_response
from crm.models import ChannelKind, Region, SizeBand, Vertical
from crm.roles import Role, internal_required, role_required
from partners.models import FeedbackCategory
from partners.selectors import agreements_visible_to, partners_visible_to

EXPORT_TABLES = ("headlines", "trend", "channels", "heatmap", "white_space", "partners", "feedback")
LEADERBOARD_ORDER_LABELS: dict[str, Any] = {
    "covered": gettext_lazy("Most accounts covered"),
    "satisfaction": gettext_lazy("Lowest satisfaction"),
    "nps": gettext_lazy("Lowest NPS"),
}
leadership_required = role_required(Role.EXECUTIVE, Role.SALES_MANAGER)


def _page_state(
    request: HttpRequest,
) -> tuple[
    board.Filters, board.WeekOption | None, list[board.WeekOption], dict[str, dict[str, str]]
]:
    options = board.snapshot_week_options()
    regions = dict(Region.objects.values_list("code", "name"))
    verticals = dict(Vertical.objects.values_list("code", "name"))
    filters, chosen = board.parse_filters(
        request.GET, options, regions=regions, verticals=verticals
    )
    return filters, chosen, options, {"regions": regions, "verticals": verticals}


def _headline_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for headline in report["headlines"]:
        rows.append(
            {
                "key": headline.key,
                "label": board.HEADLINE_LABELS[headline.key],
                "value": headline.value,
                "previous": headline.previous,
                "change": headline.change,
                "kind": headline.kind,
                "shown": board.show_value(headline.value, headline.kind),
                "change_shown": board.show_change(headline.change, headline.kind),
                "tone": board.change_tone(headline.change, board.HEADLINE_BETTER[headline.key]),
            }
        )
    return rows


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _chart_data(report: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """Everything dashboard.js draws, as plain JSON (ratios in percent)."""
    channel_labels = dict(ChannelKind.choices)
    category_labels = dict(FeedbackCategory.choices)
    trend = report["trend"]
    feedback_weeks = report["feedback_weeks"]
    categories = sorted({row["category"] for row in report["feedback"]})
    cell = {(row["week"], row["category"]): row for row in report["feedback"]}
    return {
        "weeks": report["trend_weeks"],
        "labels": {key: str(value) for key, value in labels.items()},
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
            "satisfaction": [
                {
                    "label": str(category_labels.get(category, category)),
                    "data": [
                        round(cell[(week, category)]["satisfaction"], 2)
                        if (week, category) in cell
                        else None
                        for week in feedback_weeks
                    ],
                }
                for category in categories
            ],
        },
    }


def _heat_class(value: float | None) -> str:
    if value is None:
        return "heat-none"
    return f"heat-{min(10, max(0, int(value * 10)))}"


def _heat_rows_html(heat: dict[str, Any], names: dict[str, dict[str, str]]) -> SafeString:
    """The heat map's header and rows as HTML, built here rather than in the template: a
    16 x 30 map is 480 cells, and per-cell template lookups and escaping dominated the page's
    rendering time. Names and codes are escaped once each; the figures are digits only."""
    verticals = [(escape(v), escape(names["verticals"].get(v, v))) for v in heat["verticals"]]
    parts = [
        '<thead><tr><th scope="col">',
        escape(_("Region")),
        " \\ ",
        escape(_("Vertical")),
        "</th>",
        *(f'<th scope="col" class="num">{name}</th>' for _code, name in verticals),
        "</tr></thead><tbody>",
    ]
    for row in heat["rows"]:
        code = escape(row["region"])
        name = escape(names["regions"].get(row["region"], row["region"]))
        parts.append(f'<tr><th scope="row">{name}</th>')
        for (vertical, vertical_name), cell in zip(verticals, row["cells"], strict=True):
            value = cell["value"] if cell else None
            text = board.show_ratio(value)
            accounts = f" ({cell['accounts']:,})" if cell else ""
            parts.append(
                f'<td class="num {_heat_class(value)}" data-region="{code}" '
                f'data-vertical="{vertical}" title="{name} / {vertical_name}: {text}{accounts}">'
                f"{text}</td>"
            )
        parts.append("</tr>")
    parts.append("</tbody>")
    return mark_safe("".join(parts))


# The longest loops of the page are built here with `format_html_join`, which escapes every
# value like the template would, at a tenth of the template engine's cost per row.


def _week_options_html(options: list[board.WeekOption], chosen: str) -> SafeString:
    provisional = f" ({_('provisional')})"
    return format_html_join(
        "",
        '<option value="{}"{}>{}{}</option>',
        (
            (
                option.week,
                mark_safe(" selected") if option.week == chosen else "",
                option.week,
                "" if option.final else provisional,
            )
            for option in options
        ),
    )


def _white_space_rows_html(rows: list[dict[str, Any]]) -> SafeString:
    return format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td>'
        '<td class="num"><a href="{}">{}</a></td><td class="num">{}</td></tr>',
        (
            (
                row["region_name"],
                row["vertical_name"],
                row["size_band_name"],
                number_format(row["accounts"]),
                row["accounts_url"],
                number_format(row["white_space"]),
                row["coverage_shown"],
            )
            for row in rows
        ),
    )


def _leaderboard_rows_html(rows: list[dict[str, Any]]) -> SafeString:
    return format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td></tr>',
        (
            (
                reverse("partners:partner_detail", args=[row["partner_id"]]),
                row["name"],
                row["channel_label"],
                number_format(row["covered_accounts"]),
                number_format(row["converted_accounts"]),
                number_format(row["agreements_in_force"]),
                number_format(row["feedback_count"]),
                row["satisfaction_shown"],
                row["nps_shown"],
            )
            for row in rows
        ),
    )


@leadership_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The leadership dashboard: one week's figures and trends, from the snapshot tables."""
    filters, chosen, options, names = _page_state(request)
    context: dict[str, Any] = {
        "filters": filters,
        "options": options,
        "week_options": _week_options_html(options, filters.week),
        "regions": names["regions"],
        "verticals": names["verticals"],
        "size_bands": SizeBand.choices,
        "channels": ChannelKind.choices,
        "spans": board.SPANS,
        "week": chosen,
    }
    if chosen is None:
        return render(request, "analytics/dashboard.html", context)
    report = board.week_report(
        filters=filters, options=options, agreements=agreements_visible_to(request.user)
    )
    # The map's HTML is cached with its figures, under their version plus what else it shows:
    # the language of its headings and the region and vertical names.
    heat_version = repr(
        (
            chosen.version,
            get_language(),
            sorted(names["regions"].items()),
            sorted(names["verticals"].items()),
        )
    )
    report["heat"]["html"] = board.cached(
        "heat_html", filters, heat_version, lambda: _heat_rows_html(report["heat"], names)
    )
    category_labels = dict(FeedbackCategory.choices)
    for row in report["feedback"]:
        row["label"] = category_labels.get(row["category"], row["category"])
        row["satisfaction_shown"] = board.show_score(row["satisfaction"])
    for row in report["channels"]:
        row["covered_shown"] = board.show_count(row["covered"])
        row["converted_shown"] = board.show_count(row["converted"])
        row["coverage_shown"] = board.show_ratio(row["coverage"])
        row["penetration_shown"] = board.show_ratio(row["penetration"])
        row["coverage_change_shown"] = board.show_change(row["coverage_change"], "ratio")
        row["coverage_tone"] = board.change_tone(
            row["coverage_change"], board.HEADLINE_BETTER["coverage"]
        )
    size_band_labels = dict(SizeBand.choices)
    for row in report["white_space"]:
        row["coverage_shown"] = board.show_ratio(row["coverage"])
        row["region_name"] = names["regions"].get(row["region"], row["region"])
        row["vertical_name"] = names["verticals"].get(row["vertical"], row["vertical"])
        row["size_band_name"] = size_band_labels.get(row["size_band"], row["size_band"])
        row["accounts_url"] = "/workspace/accounts/?" + urlencode(
            {
                "region": row["region"],
                "vertical": row["vertical"],
                "size_band": row["size_band"],
                "coverage": "none",
            }
        )
    channel_labels = dict(ChannelKind.choices)
    for row in report["leaderboard"]:
        row["channel_label"] = channel_labels.get(row["channel_kind"], row["channel_kind"])
        row["satisfaction_shown"] = board.show_score(row["satisfaction_mean"])
        row["nps_shown"] = board.show_nps(row["nps"])
    context.update(
        {
            "report": report,
            "headlines": _headline_rows(report),
            "chart_data": _chart_data(report, board.HEADLINE_LABELS),
            "query": urlencode(filters.query()),
            "heat_toggle": urlencode(
                filters.query(heat="penetration" if filters.heat == "coverage" else "coverage")
            ),
            "export_tables": EXPORT_TABLES,
            "leaderboard_orders": [
                (value, label, urlencode(filters.query(partners=value)))
                for value, label in LEADERBOARD_ORDER_LABELS.items()
            ],
            "show": board,
            "white_space_rows": _white_space_rows_html(report["white_space"]),
            "leaderboard_rows": _leaderboard_rows_html(report["leaderboard"]),
        }
    )
    return render(request, "analytics/dashboard.html", context)


EXPORT_COLUMNS: dict[str, list[str]] = {
    "channels": [*metrics.CHANNEL_COLUMNS, "coverage_change", "penetration_change"],
    "heatmap": ["region", "vertical", "accounts", "covered", "converted", "value"],
    "white_space": [
        "region",
        "vertical",
        "size_band",
        "accounts",
        "covered_any",
        "white_space",
        "coverage",
    ],
    "partners": [
        "external_id",
        "name",
        "channel_kind",
        "covered_accounts",
        "converted_accounts",
        "agreements_in_force",
        "feedback_count",
        "satisfaction_mean",
        "nps",
    ],
}


def _export_rows(table: str, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The raw figures of one table (ratios as fractions, empty when undefined)."""
    week = report["week"].week
    if table == "headlines":
        header = ["week", "figure", "value", "previous", "change"]
        return header, [[week, h.key, h.value, h.previous, h.change] for h in report["headlines"]]
    if table == "trend":
        trend = report["trend"]
        kinds = list(trend["converted"])
        header = ["week", "coverage", "penetration", *(f"converted_{k}" for k in kinds)]
        return header, [
            [w, trend["coverage"][i], trend["penetration"][i]]
            + [trend["converted"][k][i] for k in kinds]
            for i, w in enumerate(report["trend_weeks"])
        ]
    if table == "feedback":
        header = ["week", "category", "count", "satisfaction"]
        return header, [[r[c] for c in header] for r in report["feedback"]]
    rows = {
        "channels": report["channels"],
        "heatmap": report["heat"]["cells"],
        "white_space": report["white_space"],
        "partners": report["leaderboard"],
    }[table]
    columns = EXPORT_COLUMNS[table]
    return ["week", *columns], [[week, *(row[c] for c in columns)] for row in rows]


@leadership_required
def dashboard_export(request: HttpRequest, table: str) -> HttpResponseBase:
    """One dashboard table as CSV, for the same week and filters as the page."""
    if table not in EXPORT_TABLES:
        raise Http404("No such table.")
    filters, chosen, options, _names = _page_state(request)
    if chosen is None:
        raise Http404("No snapshot yet.")
    report = board.week_report(
        filters=filters, options=options, agreements=agreements_visible_to(request.user)
    )
    if table == "partners":
        report["leaderboard"] = board.leaderboard(filters, limit=None)
    header, rows = _export_rows(table, report)
    return export_response(
        fmt="csv", filename=f"dashboard-{table}-{chosen.week}", header=header, rows=rows
    )


@leadership_required
def digest_preview(request: HttpRequest) -> HttpResponse:
    """The weekly digest e-mail as it would be sent, shown in the browser."""
    options = board.snapshot_week_options()
    by_week = {o.week: o for o in options}
    chosen = by_week.get(request.GET.get("week", "")) or board.default_week(options)
    if chosen is None:
        raise Http404("No snapshot yet.")
    content = digest.digest_content(week=chosen.week)
    return render(
        request,
        "analytics/digest_preview.html",
        {"digest": content, "options": options, "week": chosen},
    )


@internal_required
def partner_health(request: HttpRequest, pk: int) -> HttpResponse:
    """A partner's health card from its latest snapshot (final or provisional)."""
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    snapshot = PartnerSnapshot.objects.filter(partner=partner).order_by("-as_of").first()
    template = (
        "analytics/partials/partner_health.html"
        if request.headers.get("HX-Request")
        else "analytics/partner_health.html"
    )
    return render(request, template, {"partner": partner, "snapshot": snapshot})
