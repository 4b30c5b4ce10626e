"""Account pages that combine coverage (channels) with partner agreements (this app)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from django_stubs_ext import StrOrPromise

from channels.models import PARTNER_KINDS, CoverageAssignment
from channels.selectors import (
    active_coverage_q,
    coverage_visible_to,
    internal_accounts_visible_to,
    reps_visible_to,
)
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.columns import ACCOUNT_COLUMNS, ACCOUNT_HEADERS
from crm.exports import EXPORT_FORMATS, export_response, labelled
from crm.filters import filters_for_page
from crm.forms import form_add_service_errors, object_id
from crm.models import Account, ChannelKind, SizeBand, localized_name
from crm.pagination import CappedPaginator
from crm.roles import Role, can_manage, internal_required, manager_required, role_required
from crm.selectors import AccountFilter, regions_all, verticals_all
from crm.sql import without_jit
from partners.coverage_forms import CoverageAssignForm, CoverageEndForm
from partners.filters import AccountListFilterSet
from partners.registration_selectors import registrations_visible_to
from partners.selectors import (
    AccountListFilter,
    Grants,
    accounts_listed,
    accounts_outside_agreements,
    coverage_counts,
    partners_visible_to,
)

PAGE_SIZE = 50
# What the account list's rows show (partners/partials/account_rows.jinja) and its coverage
# badges test: the rows are read with these columns only, which spares building the rest
# (the time stamps of every account, region and vertical) for each row of every view.
ACCOUNT_ROW_FIELDS = (
    "external_id",
    "name",
    "region",
    "region__name",
    "region__name_zh",
    "vertical",
    "vertical__name",
    "vertical__name_zh",
    "size_band",
    "entered_on",
    "converted_on",
    "converted_via",
)
COVERAGE_BADGE_FIELDS = (
    "account",
    "kind",
    "online_source",
    "rep",
    "rep__name",
    "partner",
    "partner__name",
)
# An account page lists its latest registrations; the queue, filtered by it, lists them all.
ACCOUNT_REGISTRATIONS_SHOWN = 10


def _export_accounts(fmt: str, accounts: QuerySet[Account]) -> HttpResponseBase:
    """The listed accounts in `ACCOUNT_COLUMNS`' order, for people: headers in the reader's
    language, region and vertical by name, size band and winning channel by label."""
    labels = {
        "size_band": labelled(SizeBand.choices),
        "converted_via": labelled(ChannelKind.choices),
    }
    named = ("region", "vertical")
    lookups = [
        lookup
        for column in ACCOUNT_COLUMNS
        for lookup in ((f"{column}__name", f"{column}__name_zh") if column in named else (column,))
    ]

    def row(values: tuple[object, ...]) -> list[object]:
        cells: list[object] = []
        position = 0
        for column in ACCOUNT_COLUMNS:
            value = values[position]
            if column in named:
                cells.append(localized_name(str(value), str(values[position + 1] or "")))
                position += 2
                continue
            cells.append(labels[column].get(str(value), value) if column in labels else value)
            position += 1
        return cells

    rows = (row(values) for values in accounts.values_list(*lookups).iterator(chunk_size=5000))
    header = [str(ACCOUNT_HEADERS[column]) for column in ACCOUNT_COLUMNS]
    return export_response(fmt=fmt, filename="accounts", header=header, rows=rows)


COVERAGE_LABELS = {
    "none": gettext_lazy("Not covered (white space)"),
    "any": gettext_lazy("Covered by any channel"),
    "outside": gettext_lazy("Assigned outside an agreement (not counted)"),
}


def _filter_names(request: HttpRequest, account_filter: AccountListFilter) -> dict[str, str]:
    """The partner and rep a list is filtered by, named for the page."""
    names = {}
    if account_filter.partner is not None:
        partner = partners_visible_to(request.user).filter(pk=account_filter.partner).first()
        names["partner"] = partner.name if partner else _("(unknown partner)")
    if account_filter.rep is not None:
        rep = reps_visible_to(request.user).filter(pk=account_filter.rep).first()
        names["rep"] = rep.name if rep else _("(unknown rep)")
    return names


def _filter_labels(
    request: HttpRequest, account_filter: AccountListFilter
) -> list[tuple[str, str]]:
    """Each filter that is set, as (what, value) in words: names, never codes."""
    segment = account_filter.segment
    names = _filter_names(request, account_filter)
    labels: list[tuple[str, str]] = []
    if segment.q:
        labels.append((_("Search"), segment.q))
    if segment.region:
        region = regions_all().filter(code=segment.region).first()
        labels.append((_("Region"), region.display_name if region else segment.region))
    if segment.vertical:
        vertical = verticals_all().filter(code=segment.vertical).first()
        labels.append((_("Vertical"), vertical.display_name if vertical else segment.vertical))
    if segment.size_band:
        labels.append((_("Size band"), str(SizeBand(segment.size_band).label)))
    if account_filter.coverage:
        kinds = dict(ChannelKind.choices)
        label: StrOrPromise | None = COVERAGE_LABELS.get(account_filter.coverage)
        if label is None:
            label = _("Covered: %(kind)s") % {"kind": kinds[account_filter.coverage]}
        labels.append((_("Coverage"), str(label)))
    if "partner" in names:
        labels.append((_("Partner"), names["partner"]))
    if "rep" in names:
        labels.append((_("Sales rep"), names["rep"]))
    if account_filter.as_of:
        labels.append((_("As of"), date_format(account_filter.as_of)))
    return labels


def _account_page(request: HttpRequest, *, title: str) -> HttpResponseBase:
    today = timezone.localdate()
    filters, params = filters_for_page(
        AccountListFilterSet, request, queryset=internal_accounts_visible_to(request.user)
    )
    account_filter = filters.account_filter(today=today)
    day = account_filter.day(today)
    sort = params["sort"]
    accounts = filters.qs.select_related("region", "vertical").order_by(*filters.sort_order())
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export_accounts(request.GET["format"], accounts)
    with without_jit():
        # The page's ids first, which an index that includes every filtered column answers
        # alone, then just those rows by their keys: the filters never visit the rows they
        # leave out, nor run again for the rows they keep.
        ids: QuerySet[Any] = accounts.values_list("pk", flat=True)
        page = CappedPaginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
        listed = [int(pk) for pk in page]
        rows = (
            Account.objects.select_related("region", "vertical")
            .only(*ACCOUNT_ROW_FIELDS)
            .in_bulk(listed)
        )
        shown = [rows[pk] for pk in listed if pk in rows]
        page.object_list = shown
    active = (
        CoverageAssignment.objects.filter(active_coverage_q(day), account__in=listed)
        .select_related("rep", "partner")
        .only(*COVERAGE_BADGE_FIELDS)
        .order_by("kind")
    )
    by_account: dict[int, list[CoverageAssignment]] = {}
    for assignment in active:
        by_account.setdefault(assignment.account_id, []).append(assignment)
    grants = filters.grants_on(day) if by_account else Grants(agreements=())
    coverage = {
        account.pk: [
            (assignment, coverage_counts(assignment, account, grants))
            for assignment in by_account.get(account.pk, [])
        ]
        for account in shown
    }
    filter_query = account_filter.query()
    return render(
        request,
        "partners/account_list.html",
        {
            "title": title,
            "page": page,
            "filter": account_filter.segment,
            "account_filter": account_filter,
            "filter_names": _filter_names(request, account_filter),
            "filters": filters,
            "filter_query": filter_query,
            "today_query": urlencode(replace(account_filter, as_of=None).query()),
            "regions": regions_all(),
            "verticals": verticals_all(),
            "size_bands": SizeBand.choices,
            # Pages keep the filters and the order; the sort links keep the filters only.
            "querystring": urlencode({**filter_query, "sort": sort}),
            "sort_query": urlencode(filter_query),
            "coverage": account_filter.coverage,
            "sort": sort,
            "kinds": ChannelKind.choices,
            "can_manage": can_manage(request.user),
            "account_coverage": coverage,
            "assign_form": _assign_form(request) if can_manage(request.user) else None,
            "today": today,
            "day": day,
        },
    )


@internal_required
def account_list(request: HttpRequest) -> HttpResponseBase:
    return _account_page(request, title=_("Accounts"))


@role_required(Role.SALES_REP)
def my_accounts(request: HttpRequest) -> HttpResponseBase:
    return _account_page(request, title=_("My accounts"))


def _assign_form(request: HttpRequest, data: object = None) -> CoverageAssignForm:
    return CoverageAssignForm(
        data,
        reps=reps_visible_to(request.user),
        partners=partners_visible_to(request.user),
        initial={"start_date": timezone.localdate()},
    )


def _coverage_rows(assignments: QuerySet[CoverageAssignment]) -> list[dict[str, object]]:
    today = timezone.localdate()
    rows = []
    for assignment in assignments.select_related("rep", "partner", "account").order_by(
        "-start_date"
    ):
        counts = True
        if assignment.kind in PARTNER_KINDS:
            assert assignment.partner is not None  # coverage of a partner kind names its partner
            outside = accounts_outside_agreements(
                partner=assignment.partner,
                accounts=Account.objects.filter(pk=assignment.account_id),
                day=today,
            )
            counts = not outside.exists()
        rows.append(
            {"assignment": assignment, "active": assignment.running_on(today), "counts": counts}
        )
    return rows


@internal_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(
        internal_accounts_visible_to(request.user).select_related("region", "vertical"), pk=pk
    )
    registrations = (
        registrations_visible_to(request.user)
        .filter(account=account)
        .select_related("partner")
        .order_by("-submitted_at", "-id")
    )
    return render(
        request,
        "partners/account_detail.html",
        {
            "account": account,
            "coverage": _coverage_rows(coverage_visible_to(request.user).filter(account=account)),
            "registrations": registrations[:ACCOUNT_REGISTRATIONS_SHOWN],
            "registration_count": registrations.count(),
            "assign_form": _assign_form(request) if can_manage(request.user) else None,
            "end_form": CoverageEndForm(initial={"end_date": timezone.localdate()}),
        },
    )


# The list's filters travel in the bulk-assign form under this prefix: the form's own
# fields (a rep, a partner) would otherwise be read as filters of the same name.
FILTER_PREFIX = "filter-"


def _posted_filter(request: HttpRequest) -> AccountListFilter:
    params = {
        name.removeprefix(FILTER_PREFIX): value
        for name, value in request.POST.items()
        if name.startswith(FILTER_PREFIX)
    }
    filters = AccountListFilterSet(params, queryset=Account.objects.none(), request=request)
    return filters.account_filter(today=timezone.localdate())


def _selected_accounts(request: HttpRequest) -> QuerySet[Account]:
    """The accounts a bulk action applies to: the ticked ones, or exactly the rows the list
    shows for the filters the form carries (every filter of the list, `AccountListFilter`)."""
    if request.POST.get("scope") == "filter":
        account_filter = _posted_filter(request)
        return accounts_listed(request.user, account_filter, today=timezone.localdate())
    visible = internal_accounts_visible_to(request.user)
    ids = [pk for pk in map(object_id, request.POST.getlist("account")) if pk is not None]
    return visible.filter(pk__in=ids)


def _owner_label(owner: CoverageOwner) -> str:
    return str(owner.rep or owner.partner or owner.online_source)


@manager_required
@require_POST
def coverage_assign_view(request: HttpRequest) -> HttpResponse:
    """Assign the ticked accounts, or everything matching the list's filters. The latter is
    applied only once confirmed on a page that names the exact count; when the filters match
    another number by then, the page asks again."""
    back = request.POST.get("next", "")
    if not back.startswith("/workspace/"):
        back = "/workspace/accounts/"
    form = _assign_form(request, request.POST)
    accounts = _selected_accounts(request)
    if not accounts.exists():
        messages.error(
            request, _("Select at least one account, or choose “everything matching the filter”.")
        )
        return redirect(back)
    if form.is_valid():
        owner = form.owner()
        if request.POST.get("scope") == "filter":
            count = accounts.count()
            if request.POST.get("confirmed_count") != str(count):
                return _assign_confirmation(request, form, owner, count, back)
        try:
            result = coverage_assign(
                accounts=accounts,
                owner=owner,
                start_date=form.cleaned_data["start_date"],
                end_date=form.cleaned_data.get("end_date"),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            text = ngettext(
                "Assigned %(count)d account to %(owner)s",
                "Assigned %(count)d accounts to %(owner)s",
                result.created,
            ) % {"count": result.created, "owner": _owner_label(owner)}
            if result.already_covered:
                text += ngettext(
                    "; %(count)d was already covered by them",
                    "; %(count)d were already covered by them",
                    result.already_covered,
                ) % {"count": result.already_covered}
            messages.success(request, text + ".")
            # The form's own partner (the owner holds it as coverage sees a partner).
            partner = form.cleaned_data.get("partner")
            if partner is not None:
                outside = accounts_outside_agreements(
                    partner=partner, accounts=accounts, day=form.cleaned_data["start_date"]
                ).count()
                if outside:
                    messages.warning(
                        request,
                        ngettext(
                            "%(count)d of these accounts lies outside the agreements of "
                            "%(partner)s in force for its region and vertical; that coverage "
                            "will not count until an agreement grants it.",
                            "%(count)d of these accounts lie outside the agreements of "
                            "%(partner)s in force for their region and vertical; that coverage "
                            "will not count until an agreement grants it.",
                            outside,
                        )
                        % {"count": outside, "partner": partner.name},
                    )
            return redirect(back)
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        messages.error(request, f"{label or _('Coverage')}: {' '.join(map(str, errors))}")
    return redirect(back)


def _assign_confirmation(
    request: HttpRequest, form: CoverageAssignForm, owner: CoverageOwner, count: int, back: str
) -> HttpResponse:
    """The page that names how many accounts everything-matching-the-filter is, before any
    is assigned. Its form posts the same fields back with the count it showed."""
    account_filter = _posted_filter(request)
    previous = request.POST.get("confirmed_count", "")
    return render(
        request,
        "partners/coverage_assign_confirm.html",
        {
            "count": count,
            "changed_from": previous if previous and previous != str(count) else "",
            "owner": _owner_label(owner),
            "kind": ChannelKind(owner.kind).label,
            "start_date": form.cleaned_data["start_date"],
            "end_date": form.cleaned_data.get("end_date"),
            "fields": [
                (name, value)
                for name, value in request.POST.items()
                if name not in ("csrfmiddlewaretoken", "confirmed_count", "account")
            ],
            "filter_labels": _filter_labels(request, account_filter),
            "back": back,
        },
    )


@manager_required
@require_POST
def coverage_end_view(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = get_object_or_404(coverage_visible_to(request.user), pk=pk)
    form = CoverageEndForm(request.POST)
    if form.is_valid():
        try:
            coverage_end(
                assignments=CoverageAssignment.objects.filter(pk=assignment.pk),
                end_date=form.cleaned_data["end_date"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("Coverage by %(owner)s ends on %(day)s.")
                % {
                    "owner": assignment.owner_label,
                    "day": date_format(form.cleaned_data["end_date"]),
                },
            )
    else:
        messages.error(request, _("Give the last day of coverage as a date."))
    return redirect("partners:account_detail", pk=assignment.account_id)


class WhiteSpaceSegment(TypedDict):
    """One segment of the white space page; the labels and link are filled in for the 200
    shown only."""

    region__code: str
    region__name: str
    region__name_zh: str
    vertical__code: str
    vertical__name: str
    vertical__name_zh: str
    size_band: str
    accounts: int
    size_band_label: StrOrPromise
    region_label: str
    vertical_label: str
    accounts_url: str


@internal_required
def white_space(request: HttpRequest) -> HttpResponse:
    """Accounts in the market today that no coverage that counts reaches, by segment, each
    count linking to the account list that shows exactly those accounts."""
    today = timezone.localdate()
    uncovered = accounts_listed(request.user, AccountListFilter(coverage="none"), today=today)
    # Grouped by ids over the accounts alone; the few regions and verticals are named after.
    with without_jit():
        counts = list(
            uncovered.values("region_id", "vertical_id", "size_band")
            .annotate(accounts=Count("id"))
            .order_by()
        )
    regions = {r.pk: r for r in regions_all()}
    verticals = {v.pk: v for v in verticals_all()}
    segments: list[WhiteSpaceSegment] = [
        {
            "region__code": regions[row["region_id"]].code,
            "region__name": regions[row["region_id"]].name,
            "region__name_zh": regions[row["region_id"]].name_zh,
            "vertical__code": verticals[row["vertical_id"]].code,
            "vertical__name": verticals[row["vertical_id"]].name,
            "vertical__name_zh": verticals[row["vertical_id"]].name_zh,
            "size_band": row["size_band"],
            "accounts": row["accounts"],
            "size_band_label": "",
            "region_label": "",
            "vertical_label": "",
            "accounts_url": "",
        }
        for row in counts
    ]
    segments.sort(key=lambda s: (-s["accounts"], s["region__name"], s["vertical__name"]))
    segments = segments[:200]
    size_bands = dict(SizeBand.choices)
    for segment in segments:
        segment["size_band_label"] = size_bands.get(segment["size_band"], segment["size_band"])
        segment["region_label"] = localized_name(
            segment["region__name"], segment["region__name_zh"]
        )
        segment["vertical_label"] = localized_name(
            segment["vertical__name"], segment["vertical__name_zh"]
        )
        segment["accounts_url"] = white_space_url(
            region=segment["region__code"],
            vertical=segment["vertical__code"],
            size_band=segment["size_band"],
        )
    return render(request, "partners/white_space.html", {"segments": segments, "today": today})


def white_space_url(
    *, region: str, vertical: str, size_band: str, as_of: date | None = None
) -> str:
    """The account list of one segment's white space (on `as_of`, today when None)."""
    segment = AccountFilter(region=region, vertical=vertical, size_band=size_band)
    query = AccountListFilter(segment=segment, coverage="none", as_of=as_of).query()
    return reverse("partners:account_list") + "?" + urlencode(query)
