from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from analytics import dashboard as board
from analytics import digest, reports, revenue_board
from analytics.programme_dashboard import (
    attainment_section,
    drivers_section,
    programme_figures,
    tiers_section,
)
from analytics.programme_dashboard import export_rows as programme_export_rows
from crm.exports import export_response
from crm.models import ChannelKind, Region, SizeBand, Vertical
from crm.roles import Role, internal_required, role_required
from crm.selectors import AccountFilter
from partners.models import FeedbackCategory
from partners.selectors import AccountListFilter, agreements_visible_to, partners_visible_to

EXPORT_TABLES = (
    "headlines",
    "trend",
    "channels",
    "heatmap",
    "white_space",
    "partners",
    "feedback",
    "registrations",
    "drivers",
    "attainment",
    *revenue_board.EXPORT_TABLES,
)
LEADERBOARD_ORDER_LABELS: dict[str, Any] = {
    "covered": gettext_lazy("Most accounts covered"),
    "satisfaction": gettext_lazy("Lowest satisfaction"),
    "nps": gettext_lazy("Lowest NPS"),
}
leadership_required = role_required(Role.EXECUTIVE, Role.SALES_MANAGER)


def _page_state(
    request: HttpRequest,
) -> tuple[
    board.Filters, reports.WeekOption | None, list[reports.WeekOption], dict[str, dict[str, str]]
]:
    options = reports.week_options()
    regions = {r.code: r.display_name for r in Region.objects.only("code", "name", "name_zh")}
    verticals = {v.code: v.display_name for v in Vertical.objects.only("code", "name", "name_zh")}
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


def registration_channel_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen week's registration figures per channel kind, shown."""
    labels = dict(ChannelKind.choices)
    return [
        {
            "channel": row.channel_kind,
            "label": labels.get(row.channel_kind, row.channel_kind),
            **{
                key: board.registration_value(getattr(row, key), kind)
                for key, _label, kind, _better in board.REGISTRATION_ROWS
            },
        }
        for row in report["registrations"]["channels"]
    ]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _filter_summary(
    filters: board.Filters, names: dict[str, dict[str, str]]
) -> list[tuple[Any, str]]:
    """Every filter of the page in words, "all" where none is set: the printed page's header."""
    channels = dict(ChannelKind.choices)
    size_bands = dict(SizeBand.choices)
    return [
        (_("Region"), names["regions"].get(filters.region, _("All regions"))),
        (_("Vertical"), names["verticals"].get(filters.vertical, _("All verticals"))),
        (_("Size band"), str(size_bands.get(filters.size_band, _("All sizes")))),
        (_("Channel"), str(channels.get(filters.channel, _("All channels")))),
        (_("Trend"), _("%(span)s weeks") % {"span": filters.span}),
    ]


def _chart_data(
    report: dict[str, Any], labels: dict[str, Any], drivers: dict[str, Any]
) -> dict[str, Any]:
    """Everything dashboard.js draws, as plain JSON (ratios in percent)."""
    channel_labels = dict(ChannelKind.choices)
    category_labels = dict(FeedbackCategory.choices)
    trend = report["trend"]
    feedback_weeks = report["feedback_weeks"]
    registrations = report["registrations"]["weeks"]
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
        "registrations": {
            **{
                key: [getattr(row, key) if row else None for row in registrations]
                for key in ("submitted", "approved", "won")
            },
            "labels": {key: str(label) for key, label, *_rest in board.REGISTRATION_ROWS[:4]},
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
        "drivers": drivers["chart"],
    }


# The heat map's scale: one sequential colour ramp (ColorBrewer YlOrRd, safe for colour-blind
# readers), the darkest red for the lowest value: lower coverage or penetration is always the
# stronger warning. Its range is the map's own lowest and highest value, split in equal steps.
HEAT_STEPS = 7


def heat_scale(values: list[float]) -> list[tuple[float, float]]:
    """The (from, to) bounds of each colour step for `values`, lowest first; empty without
    values. Equal steps from the lowest to the highest value."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = (high - low) / HEAT_STEPS
    return [(low + width * step, low + width * (step + 1)) for step in range(HEAT_STEPS)]


def _heat_class(value: float | None, scale: list[tuple[float, float]]) -> str:
    """`heat-0` (the lowest step, darkest) to `heat-6`, `heat-none` without a figure."""
    if value is None or not scale:
        return "heat-none"
    low, high = scale[0][0], scale[-1][1]
    if high == low:
        return "heat-0"
    step = int((value - low) / (high - low) * HEAT_STEPS)
    return f"heat-{min(HEAT_STEPS - 1, max(0, step))}"


def heat_legend(heat: dict[str, Any]) -> list[dict[str, str]]:
    """The legend of the map's scale: each step's class and range, lowest first."""
    scale = heat_scale([c["value"] for c in heat["cells"] if c["value"] is not None])
    if scale and scale[0][0] == scale[-1][1]:
        scale = scale[:1]
    return [
        {
            "css": f"heat-{step}",
            "from": board.show_ratio(low),
            "to": board.show_ratio(high),
        }
        for step, (low, high) in enumerate(scale)
    ]


def _heat_rows_html(heat: dict[str, Any], names: dict[str, dict[str, str]]) -> SafeString:
    """The heat map's header and rows as HTML, built here rather than in the template: a
    16 x 30 map is 480 cells, and per-cell template lookups and escaping dominated the page's
    rendering time. Names and codes are escaped once each; the figures are digits only."""
    scale = heat_scale([c["value"] for c in heat["cells"] if c["value"] is not None])
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
                f'<td class="num {_heat_class(value, scale)}" data-region="{code}" '
                f'data-vertical="{vertical}" title="{name} / {vertical_name}: {text}{accounts}">'
                f"{text}</td>"
            )
        parts.append("</tr>")
    parts.append("</tbody>")
    return mark_safe("".join(parts))


# The longest loops of the page are built here with `format_html_join`, which escapes every
# value like the template would, at a tenth of the template engine's cost per row.


def _week_options_html(options: list[reports.WeekOption], chosen: str) -> SafeString:
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


def missing_weeks(report: dict[str, Any]) -> list[str]:
    """The trend's weeks without a snapshot (no segment figures at all)."""
    accounts = next(h for h in report["headlines"] if h.key == "accounts").trend
    return [
        week for week, value in zip(report["trend_weeks"], accounts, strict=True) if value is None
    ]


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
        "today": timezone.localdate(),
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
        # The segment's white space listed on the week's as-of date: the same accounts the
        # snapshot counted, as long as nobody changed that day's records since.
        white_space = AccountListFilter(
            segment=AccountFilter(
                region=row["region"], vertical=row["vertical"], size_band=row["size_band"]
            ),
            coverage="none",
            as_of=chosen.as_of,
        )
        row["accounts_url"] = (
            reverse("partners:account_list") + "?" + urlencode(white_space.query())
        )
    channel_labels = dict(ChannelKind.choices)
    for row in report["leaderboard"]:
        row["channel_label"] = channel_labels.get(row["channel_kind"], row["channel_kind"])
        row["satisfaction_shown"] = board.show_score(row["satisfaction_mean"])
        row["nps_shown"] = board.show_nps(row["nps"])
    figures = board.cached(
        "programme", filters, chosen.version, lambda: programme_figures(filters.week)
    )
    drivers = drivers_section(filters.week, figures.drivers)
    revenue = revenue_board.revenue_section(filters=filters, chosen=chosen, names=names)
    chart_data = _chart_data(report, board.HEADLINE_LABELS, drivers)
    chart_data["revenue"] = revenue_board.chart_data(revenue)
    context.update(
        {
            "report": report,
            "heat_legend": heat_legend(report["heat"]),
            "drivers": drivers,
            "attainment": attainment_section(filters.week, figures.attainment),
            "tiers": tiers_section(filters.week, figures.tier_counts),
            "missing_weeks": missing_weeks(report),
            "filter_summary": _filter_summary(filters, names),
            "headlines": _headline_rows(report),
            "chart_data": chart_data,
            "revenue": revenue,
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
            "registration_rows": board.registration_rows(report),
            "registration_channels": registration_channel_rows(report),
            "leaderboard_rows": _leaderboard_rows_html(report["leaderboard"]),
        }
    )
    return render(request, "analytics/dashboard.html", context)


# The dashboard's CSV files are for people: headers in the reader's language, names instead
# of codes, ratios as percentages rounded to one decimal beside the exact fraction (for anyone
# who sums or recomputes), scores and NPS rounded. Each column: (key, header, kind).
EXPORT_COLUMNS: dict[str, list[tuple[str, Any, str]]] = {
    "channels": [
        ("label", gettext_lazy("Channel"), "text"),
        ("accounts", gettext_lazy("Accounts"), "count"),
        ("covered", gettext_lazy("Covered"), "count"),
        ("converted", gettext_lazy("Converted"), "count"),
        ("coverage", gettext_lazy("Coverage"), "ratio"),
        ("penetration", gettext_lazy("Penetration"), "ratio"),
        ("coverage_change", gettext_lazy("Coverage change"), "points"),
        ("penetration_change", gettext_lazy("Penetration change"), "points"),
    ],
    "heatmap": [
        ("region", gettext_lazy("Region"), "region"),
        ("vertical", gettext_lazy("Vertical"), "vertical"),
        ("accounts", gettext_lazy("Accounts"), "count"),
        ("covered", gettext_lazy("Covered"), "count"),
        ("converted", gettext_lazy("Converted"), "count"),
        ("value", None, "ratio"),  # coverage or penetration, as the page shows
    ],
    "white_space": [
        ("region", gettext_lazy("Region"), "region"),
        ("vertical", gettext_lazy("Vertical"), "vertical"),
        ("size_band", gettext_lazy("Size band"), "size_band"),
        ("accounts", gettext_lazy("Accounts"), "count"),
        ("covered_any", gettext_lazy("Covered"), "count"),
        ("white_space", gettext_lazy("White space"), "count"),
        ("coverage", gettext_lazy("Coverage"), "ratio"),
    ],
    "partners": [
        ("external_id", gettext_lazy("External id"), "text"),
        ("name", gettext_lazy("Partner"), "text"),
        ("channel_kind", gettext_lazy("Channel"), "channel"),
        ("covered_accounts", gettext_lazy("Accounts covered"), "count"),
        ("converted_accounts", gettext_lazy("Converted"), "count"),
        ("agreements_in_force", gettext_lazy("Agreements in force"), "count"),
        ("feedback_count", gettext_lazy("Feedback (90 days)"), "count"),
        ("satisfaction_mean", gettext_lazy("Satisfaction (90 days)"), "score"),
        ("nps", gettext_lazy("NPS (90 days)"), "nps"),
    ],
    "feedback": [
        ("category", gettext_lazy("Category"), "category"),
        ("count", gettext_lazy("Feedback"), "count"),
        ("satisfaction", gettext_lazy("Satisfaction"), "score"),
    ],
}
HEADLINE_UNITS = {"count": "", "ratio": "%", "score": "1–5", "nps": "NPS"}


def _rounded(value: float | int | None, kind: str) -> Any:
    """A figure as the CSV shows it: percentages and percentage points to one decimal, scores
    to two, NPS to one; None stays empty."""
    if value is None:
        return None
    if kind in ("ratio", "points"):
        return round(value * 100, 1)
    if kind == "score":
        return round(value, 2)
    if kind == "nps":
        return round(value, 1)
    return value


def _headers(columns: list[tuple[str, Any, str]], value_label: Any) -> list[str]:
    header = [str(_("Week"))]
    for _key, label, kind in columns:
        label = label if label is not None else value_label
        if kind == "ratio":
            header += [
                _("%(figure)s (%%)") % {"figure": label},
                _("%(figure)s (exact fraction)") % {"figure": label},
            ]
        elif kind == "points":
            header += [
                _("%(figure)s (percentage points)") % {"figure": label},
                _("%(figure)s (exact)") % {"figure": label},
            ]
        else:
            header.append(str(label))
    return header


def _export_rows(
    table: str, report: dict[str, Any], names: dict[str, dict[str, str]], heat: str = "coverage"
) -> tuple[list[str], list[list[Any]]]:
    """One table's figures: a header row in the reader's language and one row per line."""
    week = report["week"].week
    labels = {
        "region": names["regions"],
        "vertical": names["verticals"],
        "size_band": {k: str(v) for k, v in SizeBand.choices},
        "channel": {k: str(v) for k, v in ChannelKind.choices},
        "category": {k: str(v) for k, v in FeedbackCategory.choices},
    }

    def cells(value: Any, kind: str) -> list[Any]:
        if kind in ("ratio", "points"):
            return [_rounded(value, kind), value]
        if kind in labels:
            return [labels[kind].get(value, value)]
        return [_rounded(value, kind)]

    if table == "headlines":
        header = [
            str(_("Week")),
            str(_("Figure")),
            str(_("Value")),
            str(_("Previous week")),
            str(_("Change")),
            str(_("Unit")),
            str(_("Value (exact)")),
        ]
        return header, [
            [
                week,
                str(board.HEADLINE_LABELS[h.key]),
                _rounded(h.value, h.kind),
                _rounded(h.previous, h.kind),
                _rounded(h.change, "points" if h.kind == "ratio" else h.kind),
                HEADLINE_UNITS[h.kind],
                h.value,
            ]
            for h in report["headlines"]
        ]
    if table == "registrations":
        return _registration_export(report)
    if table == "trend":
        trend = report["trend"]
        kinds = list(trend["converted"])
        channel = dict(ChannelKind.choices)
        columns: list[tuple[str, Any, str]] = [
            ("coverage", _("Coverage"), "ratio"),
            ("penetration", _("Penetration"), "ratio"),
            *(
                (kind, _("Converted: %(channel)s") % {"channel": channel[kind]}, "count")
                for kind in kinds
            ),
        ]
        rows = []
        for index, trend_week in enumerate(report["trend_weeks"]):
            row: list[Any] = [trend_week]
            row += cells(trend["coverage"][index], "ratio")
            row += cells(trend["penetration"][index], "ratio")
            row += [trend["converted"][kind][index] for kind in kinds]
            rows.append(row)
        return _headers(columns, None), rows
    source = {
        "channels": report["channels"],
        "heatmap": report["heat"]["cells"],
        "white_space": report["white_space"],
        "partners": report["leaderboard"],
        "feedback": report["feedback"],
    }[table]
    columns = EXPORT_COLUMNS[table]
    value_label = _("Coverage") if heat == "coverage" else _("Penetration")
    rows = []
    for item in source:
        row = [item["week"] if table == "feedback" else week]
        for key, _label, kind in columns:
            row += cells(item[key], kind)
        rows.append(row)
    return _headers(columns, value_label), rows


def _registration_export(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Rule 18 per week of the trend and channel kind (after all kinds when no channel is
    chosen): the counts, the median time to decision in days (rounded, and in hours, exact)
    and the share submitted with a conflict (rounded, and the exact fraction)."""
    channels = {k: str(v) for k, v in ChannelKind.choices}
    header = [
        str(_("Week")),
        str(_("Channel")),
        str(_("Submitted")),
        str(_("Approved")),
        str(_("Rejected")),
        str(_("Won")),
        str(_("Median time to decision (days)")),
        str(_("Median time to decision (hours, exact)")),
        str(_("Decisions by a manager")),
        str(_("Submitted with a conflict (%)")),
        str(_("Submitted with a conflict (exact fraction)")),
        str(_("Checked for conflicts on arrival")),
        str(_("With a conflict on arrival")),
    ]
    rows = [
        [
            row.week,
            channels.get(row.channel_kind, str(_("All channels"))),
            row.submitted,
            row.approved,
            row.rejected,
            row.won,
            None if row.decision_hours_median is None else round(row.decision_hours_median / 24, 1),
            row.decision_hours_median,
            row.decisions_timed,
            _rounded(row.conflict_share, "ratio"),
            row.conflict_share,
            row.checked,
            row.with_conflicts,
        ]
        for row in report["registration_table"]
    ]
    return header, rows


@leadership_required
def dashboard_export(request: HttpRequest, table: str) -> HttpResponseBase:
    """One dashboard table as CSV, for the same week and filters as the page."""
    if table not in EXPORT_TABLES:
        raise Http404("No such table.")
    filters, chosen, options, names = _page_state(request)
    if chosen is None:
        raise Http404("No snapshot yet.")
    if table in ("drivers", "attainment"):
        header, rows = programme_export_rows(table, filters.week)
        return export_response(
            fmt="csv", filename=f"dashboard-{table}-{chosen.week}", header=header, rows=rows
        )
    if table in revenue_board.EXPORT_TABLES:
        header, rows = revenue_board.export_rows(table, filters=filters, chosen=chosen, names=names)
        return export_response(
            fmt="csv", filename=f"dashboard-{table}-{chosen.week}", header=header, rows=rows
        )
    report = board.week_report(
        filters=filters, options=options, agreements=agreements_visible_to(request.user)
    )
    if table == "partners":
        report["leaderboard"] = board.leaderboard(filters, limit=None)
    if table == "registrations":
        report["registration_table"] = board.registration_table(filters, report["trend_weeks"])
    header, rows = _export_rows(table, report, names, heat=filters.heat)
    return export_response(
        fmt="csv", filename=f"dashboard-{table}-{chosen.week}", header=header, rows=rows
    )


@leadership_required
def digest_preview(request: HttpRequest) -> HttpResponse:
    """The weekly digest e-mail as it would be sent, shown in the browser."""
    options = reports.week_options()
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
    snapshot = reports.partner_latest(partner.pk)
    template = (
        "analytics/partials/partner_health.html"
        if request.headers.get("HX-Request")
        else "analytics/partner_health.html"
    )
    counted_url = ""
    if snapshot is not None:
        # The accounts the snapshot counted, listed on its as-of date.
        account_filter = AccountListFilter(partner=partner.pk, coverage="any", as_of=snapshot.as_of)
        counted_url = reverse("partners:account_list") + "?" + urlencode(account_filter.query())
    return render(
        request,
        template,
        {"partner": partner, "snapshot": snapshot, "counted_url": counted_url},
    )
