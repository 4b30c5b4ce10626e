"""Account pages that combine coverage (channels) with partner agreements (this app)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from channels.models import PARTNER_KINDS, CoverageAssignment
from channels.selectors import (
    accounts_with_coverage,
    active_coverage_q,
    coverage_visible_to,
    internal_accounts_visible_to,
    reps_visible_to,
)
from channels.services import coverage_assign, coverage_end
from crm.exports import EXPORT_FORMATS, export_response
from crm.forms import form_add_service_errors, object_id
from crm.models import Account, ChannelKind, SizeBand
from crm.pagination import CappedPaginator
from crm.roles import Role, can_manage, internal_required, manager_required, role_required
from crm.selectors import AccountFilter, accounts_filtered, regions_all, verticals_all
from partners.coverage_forms import CoverageAssignForm, CoverageEndForm
from partners.selectors import accounts_outside_agreements, partners_visible_to

PAGE_SIZE = 50

SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "external_id": ("external_id",),
    "-external_id": ("-external_id",),
    "entered_on": ("entered_on", "id"),
    "-entered_on": ("-entered_on", "-id"),
}
COVERAGE_FILTERS = {"", "none", "any", *ChannelKind.values}


def _account_rows_html(accounts: Iterable[Account], *, selectable: bool) -> SafeString:
    """The account table's rows, with each account's coverage badges (`active_coverage`).

    Built here with `format_html`, which escapes every value as the template would: fifty rows
    of template tags were most of the page's rendering time under load."""
    # Labels looked up once: `get_FOO_display()` rebuilds its choices on every call.
    kinds = {value: str(label) for value, label in ChannelKind.choices}
    size_bands = {value: str(label) for value, label in SizeBand.choices}
    rows = []
    for account in accounts:
        badges = format_html_join(
            "",
            '<span class="badge text-bg-light border me-1" title="{}">{}: {}</span>',
            (
                (kinds.get(c.kind, c.kind), c.kind, c.owner_label)
                for c in account.active_coverage  # type: ignore[attr-defined]
            ),
        ) or mark_safe('<span class="text-muted">—</span>')
        converted = (
            format_html(
                "{} ({})",
                account.converted_on.isoformat(),
                kinds.get(account.converted_via, account.converted_via),
            )
            if account.converted_on
            else "—"
        )
        tick = (
            format_html(
                '<td><input class="form-check-input" type="checkbox" name="account" value="{}"'
                ' aria-label="Select {}"></td>',
                account.pk,
                account.name,
            )
            if selectable
            else ""
        )
        rows.append(
            format_html(
                '<tr>{}<td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                tick,
                account.external_id,
                reverse("partners:account_detail", args=[account.pk]),
                account.name,
                account.region.name,
                account.vertical.name,
                size_bands.get(account.size_band, account.size_band),
                account.entered_on.isoformat(),
                badges,
                converted,
            )
        )
    return mark_safe("\n".join(rows))


def _account_page(request: HttpRequest, *, title: str) -> HttpResponseBase:
    account_filter = AccountFilter.from_query(request.GET)
    accounts = accounts_filtered(internal_accounts_visible_to(request.user), account_filter)
    coverage = request.GET.get("coverage", "")
    coverage = coverage if coverage in COVERAGE_FILTERS else ""
    if coverage:
        accounts = accounts_with_coverage(accounts, coverage=coverage, day=timezone.localdate())
    sort = request.GET.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    accounts = accounts.select_related("region", "vertical").order_by(*SORTS[sort])
    if request.GET.get("format") in EXPORT_FORMATS:
        columns = (
            "external_id",
            "name",
            "region__code",
            "vertical__code",
            "size_band",
            "entered_on",
            "archived_on",
            "converted_on",
            "converted_via",
        )
        return export_response(
            fmt=request.GET["format"],
            filename="accounts",
            header=[
                "external_id",
                "name",
                "region",
                "vertical",
                "size_band",
                "entered_on",
                "archived_on",
                "converted_on",
                "converted_via",
            ],
            rows=accounts.values_list(*columns).iterator(chunk_size=5000),
        )
    page = CappedPaginator(accounts, PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    active = (
        CoverageAssignment.objects.filter(
            active_coverage_q(today), account__in=[a.pk for a in page]
        )
        .select_related("rep", "partner")
        .order_by("kind")
    )
    by_account: dict[int, list[CoverageAssignment]] = {}
    for assignment in active:
        by_account.setdefault(assignment.account_id, []).append(assignment)
    for account in page:
        account.active_coverage = by_account.get(account.pk, [])  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "partners/account_list.html",
        {
            "title": title,
            "page": page,
            "filter": account_filter,
            "regions": regions_all(),
            "verticals": verticals_all(),
            "size_bands": SizeBand.choices,
            "querystring": query.urlencode(),
            "coverage": coverage,
            "sort": sort,
            "kinds": ChannelKind.choices,
            "can_manage": can_manage(request.user),
            "account_rows": _account_rows_html(page, selectable=can_manage(request.user)),
            "assign_form": _assign_form(request) if can_manage(request.user) else None,
            "reps": reps_visible_to(request.user).filter(is_active=True),
            "today": today,
        },
    )


@internal_required
def account_list(request: HttpRequest) -> HttpResponseBase:
    return _account_page(request, title="Accounts")


@role_required(Role.SALES_REP)
def my_accounts(request: HttpRequest) -> HttpResponseBase:
    return _account_page(request, title="My accounts")


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
        active = assignment.start_date <= today and (
            assignment.end_date is None or assignment.end_date >= today
        )
        rows.append({"assignment": assignment, "active": active, "counts": counts})
    return rows


@internal_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(
        internal_accounts_visible_to(request.user).select_related("region", "vertical"), pk=pk
    )
    return render(
        request,
        "partners/account_detail.html",
        {
            "account": account,
            "coverage": _coverage_rows(coverage_visible_to(request.user).filter(account=account)),
            "assign_form": _assign_form(request) if can_manage(request.user) else None,
            "end_form": CoverageEndForm(initial={"end_date": timezone.localdate()}),
        },
    )


def _selected_accounts(request: HttpRequest) -> QuerySet[Account]:
    """The accounts a bulk action applies to: the ticked ones, or all matching the filter."""
    visible = internal_accounts_visible_to(request.user)
    if request.POST.get("scope") == "filter":
        return accounts_filtered(visible, AccountFilter.from_query(request.POST))
    ids = [pk for pk in map(object_id, request.POST.getlist("account")) if pk is not None]
    return visible.filter(pk__in=ids)


@manager_required
@require_POST
def coverage_assign_view(request: HttpRequest) -> HttpResponse:
    back = request.POST.get("next", "")
    if not back.startswith("/workspace/"):
        back = "/workspace/accounts/"
    form = _assign_form(request, request.POST)
    accounts = _selected_accounts(request)
    if not accounts.exists():
        messages.error(
            request, "Select at least one account, or choose “everything matching the filter”."
        )
        return redirect(back)
    if form.is_valid():
        owner = form.owner()
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
            label = owner.rep or owner.partner or owner.online_source
            text = f"Assigned {result.created} account(s) to {label}"
            if result.already_covered:
                text += f"; {result.already_covered} were already covered by them"
            messages.success(request, text + ".")
            if owner.partner is not None:
                outside = accounts_outside_agreements(
                    partner=owner.partner, accounts=accounts, day=form.cleaned_data["start_date"]
                ).count()
                if outside:
                    messages.warning(
                        request,
                        f"{outside} of these accounts lie outside {owner.partner.name}'s "
                        "agreements in force for their region and vertical; that coverage will "
                        "not count until an agreement grants it.",
                    )
            return redirect(back)
    for field, errors in form.errors.items():
        field_label = form.fields[field].label if field in form.fields else ""
        messages.error(request, f"{field_label or 'Coverage'}: {' '.join(map(str, errors))}")
    return redirect(back)


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
                f"Coverage by {assignment.owner_label} ends on "
                f"{form.cleaned_data['end_date']:%Y-%m-%d}.",
            )
    else:
        messages.error(request, "Give the last day of coverage as a date.")
    return redirect("partners:account_detail", pk=assignment.account_id)


@internal_required
def white_space(request: HttpRequest) -> HttpResponse:
    """Accounts in the market today that nobody covers, counted by segment."""
    today = timezone.localdate()
    active = CoverageAssignment.objects.filter(active_coverage_q(today), account=OuterRef("pk"))
    uncovered = (
        internal_accounts_visible_to(request.user)
        .filter(entered_on__lte=today)
        .filter(Q(archived_on__isnull=True) | Q(archived_on__gt=today))
        .exclude(Exists(active))
    )
    segments = (
        uncovered.values(
            "region__code", "region__name", "vertical__code", "vertical__name", "size_band"
        )
        .annotate(accounts=Count("id"))
        .order_by("-accounts", "region__name", "vertical__name")[:200]
    )
    return render(request, "partners/white_space.html", {"segments": segments, "today": today})
