from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django_stubs_ext import StrOrPromise

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
from partners.models import Agreement, FeedbackCategory
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
LEADERBOARD_ORDER_LABELS: dict[str, StrOrPromise] = {
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


@leadership_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The leadership dashboard: one week's figures and trends, from the snapshot tables."""
    filters, chosen, options, names = _page_state(request)
    context: dict[str, object] = {
        "filters": filters,
        "options": options,
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
    agreements = agreements_visible_to(request.user)
    # The figures as shown, cached under everything they are made of: the snapshot version,
    # the agreements the user may see (their version names the query, so its scope too), the
    # filters, the language and the region and vertical names. Rendering them was most of the
    # page's CPU; a view now reads one small query and one cache entry for them.
    version = f"{chosen.version}|{board.agreements_version(agreements)}"
    context["body"] = mark_safe(
        board.cached(
            f"body-1:{get_language()}:{names!r}",
            filters,
            version,
            lambda: _dashboard_body(filters, chosen, options, names, agreements, context),
        )
    )
    return render(request, "analytics/dashboard.html", context)


def _dashboard_body(
    filters: board.Filters,
    chosen: reports.WeekOption,
    options: list[reports.WeekOption],
    names: dict[str, dict[str, str]],
    agreements: QuerySet[Agreement],
    page: Mapping[str, object],
) -> str:
    """The dashboard's figures rendered (`analytics/partials/dashboard_body.html`), with no
    request: nothing in them depends on who asks beyond the agreements they may see."""
    report = board.week_report(filters=filters, options=options, agreements=agreements)
    figures = board.cached(
        "programme", filters, chosen.version, lambda: programme_figures(filters.week)
    )
    drivers = drivers_section(filters.week, figures.drivers)
    revenue = revenue_board.revenue_section(filters=filters, chosen=chosen, names=names)
    heat_scale = board.HeatScale.of(report["heat"])
    context = {
        **page,
        "report": report,
        "heat_scale": heat_scale,
        "heat_legend": heat_scale.legend(),
        "missing_weeks": board.missing_weeks(report),
        "registration_rows": board.registration_rows(report),
        "registration_channels": board.registration_channel_rows(report),
        "drivers": drivers,
        "attainment": attainment_section(filters.week, figures.attainment),
        "tiers": tiers_section(filters.week, figures.tier_counts),
        "revenue": revenue,
        "chart_data": {
            **board.chart_data(report, drivers["chart"]),
            "revenue": revenue_board.chart_data(revenue),
        },
        "leaderboard_orders": LEADERBOARD_ORDER_LABELS,
    }
    return str(render_to_string("analytics/partials/dashboard_body.html", context))


# The dashboard's CSV files are for people: headers in the reader's language, names instead
# of codes, ratios as percentages rounded to one decimal beside the exact fraction (for anyone
# who sums or recomputes), scores and NPS rounded. Each column: (key, header, kind).
Column = tuple[str, StrOrPromise | None, str]
EXPORT_COLUMNS: dict[str, list[Column]] = {
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


def _rounded(value: float | int | None, kind: str) -> float | int | None:
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


def _headers(columns: list[Column], value_label: StrOrPromise | None) -> list[str]:
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
    table: str,
    report: board.WeekReport,
    names: dict[str, dict[str, str]],
    heat: str = "coverage",
) -> tuple[list[str], list[list[object]]]:
    """One table's figures: a header row in the reader's language and one row per line."""
    week = report["week"].week
    labels = {
        "region": names["regions"],
        "vertical": names["verticals"],
        "size_band": {k: str(v) for k, v in SizeBand.choices},
        "channel": {k: str(v) for k, v in ChannelKind.choices},
        "category": {k: str(v) for k, v in FeedbackCategory.choices},
    }

    def cells(value: Any, kind: str) -> list[object]:
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
    if table == "trend":
        trend = report["trend"]
        kinds = list(trend["converted"])
        channel = dict(ChannelKind.choices)
        columns: list[Column] = [
            ("coverage", _("Coverage"), "ratio"),
            ("penetration", _("Penetration"), "ratio"),
            *(
                (kind, _("Converted: %(channel)s") % {"channel": channel[kind]}, "count")
                for kind in kinds
            ),
        ]
        rows = []
        for index, trend_week in enumerate(report["trend_weeks"]):
            row: list[object] = [trend_week]
            row += cells(trend["coverage"][index], "ratio")
            row += cells(trend["penetration"][index], "ratio")
            row += [trend["converted"][kind][index] for kind in kinds]
            rows.append(row)
        return _headers(columns, None), rows
    sources: dict[str, Sequence[Mapping[str, object]]] = {
        "channels": report["channels"],
        "heatmap": report["heat"]["cells"],
        "white_space": report["white_space"],
        "partners": report["leaderboard"],
        "feedback": report["feedback"],
    }
    source = sources[table]
    columns = EXPORT_COLUMNS[table]
    value_label = _("Coverage") if heat == "coverage" else _("Penetration")
    rows = []
    for item in source:
        row = [item["week"] if table == "feedback" else week]
        for key, _label, kind in columns:
            row += cells(item[key], kind)
        rows.append(row)
    return _headers(columns, value_label), rows


def _registration_export(
    table: Sequence[reports.RegistrationFigures],
) -> tuple[list[str], list[list[object]]]:
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
    rows: list[list[object]] = [
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
        for row in table
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
        header, rows = _registration_export(
            board.registration_table(filters, report["trend_weeks"])
        )
    else:
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
