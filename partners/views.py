from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from crm.exports import EXPORT_FORMATS, export_response, labelled, yes_no
from crm.filters import filters_for_page, old_bookmark_redirect
from crm.forms import form_add_service_errors, object_id
from crm.idempotency import once_per_form_token
from crm.models import Region, Vertical
from crm.pagination import list_queries
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.downloads import signed_document_response
from partners.filters import AgreementFilter
from partners.forms import (
    AgreementActivateForm,
    AgreementCreateForm,
    AgreementDraftForm,
    AgreementTerminateForm,
)
from partners.models import Agreement, AgreementStatus, AgreementType, PartnerKind
from partners.partner_views import partner_page
from partners.selectors import (
    DUE_WINDOWS,
    agreements_due,
    agreements_visible_to,
    partners_visible_to,
)
from partners.services import (
    AgreementTerms,
    agreement_activate,
    agreement_create_draft,
    agreement_discard_draft,
    agreement_renew,
    agreement_renewal_of,
    agreement_terminate,
    agreement_update_draft,
    renewal_term,
)

PAGE_SIZE = 50


@internal_required
def partner_list(request: HttpRequest) -> HttpResponseBase:
    return partner_page(request, kind=PartnerKind.PARTNER, title=_("Partners"))


@internal_required
def distributor_list(request: HttpRequest) -> HttpResponseBase:
    return partner_page(request, kind=PartnerKind.DISTRIBUTION, title=_("Distributors"))


@internal_required
def agreement_list(request: HttpRequest) -> HttpResponseBase:
    # Links written before the list's FilterSet: ?type= and ?exclusive=yes/no.
    if old := old_bookmark_redirect(
        request,
        renamed={"type": "agreement_type"},
        values={"exclusive": {"yes": "true", "no": "false"}},
    ):
        return old
    agreements = agreements_visible_to(request.user).select_related("partner")
    filters, params = filters_for_page(AgreementFilter, request, queryset=agreements)
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export_agreements(request.GET["format"], filters.qs)
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partners/agreement_list.html",
        {
            "page": page,
            "params": params,
            "filters": filters,
            **list_queries(request.GET),
            "statuses": AgreementStatus.choices,
            "types": AgreementType.choices,
            "kinds": PartnerKind.choices,
        },
    )


def _export_agreements(fmt: str, agreements: QuerySet[Agreement]) -> HttpResponseBase:
    types, statuses = labelled(AgreementType.choices), labelled(AgreementStatus.choices)
    header = [
        _("External id"),
        _("Partner id"),
        _("Partner"),
        _("Type"),
        _("Status"),
        _("Start"),
        _("End of term"),
        _("Signed on"),
        _("Terminated on"),
        _("Ends"),
        _("Exclusive"),
        _("Renews automatically"),
        _("Notice (days)"),
        _("Currency"),
        _("Discount (%)"),
        _("Revenue share (%)"),
        _("Annual target"),
    ]
    rows = (
        [
            a.external_id,
            a.partner.external_id,
            a.partner.name,
            types.get(a.agreement_type, a.agreement_type),
            statuses.get(a.status, a.status),
            a.start_date,
            a.end_date,
            a.signed_on,
            a.terminated_on,
            a.effective_end,
            yes_no(a.exclusive),
            yes_no(a.auto_renew),
            a.notice_days,
            a.currency,
            a.discount_percent,
            a.revenue_share_percent,
            a.annual_target,
        ]
        for a in agreements.select_related("partner").iterator(chunk_size=2000)
    )
    return export_response(
        fmt=fmt, filename="agreements", header=[str(h) for h in header], rows=rows
    )


# The agreement's fields as the history names them (the form's words).
HISTORY_FIELDS: dict[str, StrOrPromise] = {
    "agreement_type": gettext_lazy("Agreement type"),
    "status": gettext_lazy("Status"),
    "start_date": gettext_lazy("Start date"),
    "end_date": gettext_lazy("End date"),
    "signed_on": gettext_lazy("Signed on"),
    "terminated_on": gettext_lazy("Terminated on"),
    "termination_reason": gettext_lazy("Termination reason"),
    "auto_renew": gettext_lazy("Renews automatically"),
    "notice_days": gettext_lazy("Notice days"),
    "regions": gettext_lazy("Regions"),
    "verticals": gettext_lazy("Verticals"),
    "exclusive": gettext_lazy("Exclusive"),
    "discount_percent": gettext_lazy("Discount (%)"),
    "revenue_share_percent": gettext_lazy("Revenue share (%)"),
    "annual_target": gettext_lazy("Annual target"),
    "currency": gettext_lazy("Currency"),
    "responsibilities": gettext_lazy("Responsibilities"),
    "rights": gettext_lazy("Rights"),
    "signed_document": gettext_lazy("Signed document"),
    "renews": gettext_lazy("Renews"),
    "partner": gettext_lazy("Partner"),
    "external_id": gettext_lazy("External id"),
}
HISTORY_KINDS: dict[str, StrOrPromise] = {
    "+": gettext_lazy("Created"),
    "~": gettext_lazy("Changed"),
    "-": gettext_lazy("Deleted"),
}


def _history_value(field: str, value: Any, names: dict[str, dict[int, str]]) -> str:
    """A recorded value as a reader knows it: labels for choices, names for regions and
    verticals, formatted dates and yes/no, "—" for nothing."""
    if field in ("regions", "verticals"):
        key = field[:-1]
        chosen = [names[field].get(row.get(key), str(row.get(key))) for row in value or []]
        return ", ".join(sorted(chosen)) or (
            _("All regions") if field == "regions" else _("All verticals")
        )
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, date):
        return date_format(value)
    if field == "status":
        return str(AgreementStatus(value).label)
    if field == "agreement_type":
        return str(AgreementType(value).label)
    if field == "signed_document":
        return _("a signed PDF")
    return str(value)


def _agreement_history(agreement: Agreement) -> list[dict[str, object]]:
    """The latest changes, newest first, each with every field it changed, from what to what."""
    records = list(
        agreement.history.select_related("history_user").order_by("-history_date", "-history_id")[
            :51
        ]
    )
    names = {
        "regions": {region.pk: region.display_name for region in Region.objects.all()},
        "verticals": {vertical.pk: vertical.display_name for vertical in Vertical.objects.all()},
    }
    labels = HISTORY_FIELDS
    skipped = {"updated_at", "created_at"}
    rows = []
    for index, record in enumerate(records[:50]):
        previous = records[index + 1] if index + 1 < len(records) else None
        changes = []
        if previous is not None:
            for change in record.diff_against(previous).changes:
                if change.field in skipped:
                    continue
                changes.append(
                    {
                        "field": str(labels.get(change.field, change.field.replace("_", " "))),
                        "old": _history_value(change.field, change.old, names),
                        "new": _history_value(change.field, change.new, names),
                    }
                )
        rows.append(
            {
                "record": record,
                "kind": HISTORY_KINDS.get(record.history_type, record.history_type),
                "changes": changes,
            }
        )
    return rows


@internal_required
def agreement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    agreement = get_object_or_404(
        agreements_visible_to(request.user).select_related("partner", "renews"), pk=pk
    )
    return render(
        request,
        "partners/agreement_detail.html",
        {
            "agreement": agreement,
            "in_force": agreement.in_force_on(timezone.localdate()),
            "can_manage": can_manage(request.user),
            "renewals": agreement.renewals.order_by("start_date"),
            "renewal": agreement_renewal_of(agreement),
            "discarded_renewals": Agreement.history.filter(renews_id=agreement.pk, history_type="-")
            .select_related("history_user")
            .order_by("history_date"),
            "history": _agreement_history(agreement),
        },
    )


def _agreement_for(request: HttpRequest, pk: int) -> Agreement:
    return get_object_or_404(agreements_visible_to(request.user).select_related("partner"), pk=pk)


@manager_required
@once_per_form_token
def agreement_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user)
    if request.method == "POST":
        form = AgreementCreateForm(request.POST, partners=partners)
        if form.is_valid():
            try:
                agreement = agreement_create_draft(
                    partner=form.cleaned_data["partner"], terms=form.terms(), by=request.user
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("Draft %(agreement)s created.") % {"agreement": agreement.external_id},
                )
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        initial: dict[str, object] = {"notice_days": 30, "currency": "USD"}
        partner_id = request.GET.get("partner", "")
        if (pk := object_id(partner_id)) is not None:
            initial["partner"] = partners.filter(pk=pk).first()
        form = AgreementCreateForm(initial=initial, partners=partners)
    return render(
        request, "partners/agreement_form.html", {"form": form, "title": _("New agreement")}
    )


@manager_required
def agreement_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    agreement = _agreement_for(request, pk)
    if request.method == "POST":
        form = AgreementDraftForm(request.POST)
        if form.is_valid():
            try:
                agreement_update_draft(agreement=agreement, terms=form.terms(), by=request.user)
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request, _("Draft %(agreement)s saved.") % {"agreement": agreement.external_id}
                )
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementDraftForm(
            initial=AgreementDraftForm.initial_from(AgreementTerms.of(agreement))
        )
    return render(
        request,
        "partners/agreement_form.html",
        {
            "form": form,
            "agreement": agreement,
            "title": _("Edit draft %(agreement)s") % {"agreement": agreement.external_id},
        },
    )


@manager_required
def agreement_activate_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    agreement = _agreement_for(request, pk)
    if request.method == "POST":
        form = AgreementActivateForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                agreement_activate(
                    agreement=agreement,
                    signed_on=form.cleaned_data["signed_on"],
                    signed_document=form.cleaned_data["signed_document"],
                    by=request.user,
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("%(agreement)s is signed and active.") % {"agreement": agreement.external_id},
                )
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementActivateForm(initial={"signed_on": timezone.localdate()})
    return render(
        request,
        "partners/agreement_action.html",
        {
            "form": form,
            "agreement": agreement,
            "title": _("Sign and activate %(agreement)s") % {"agreement": agreement.external_id},
            "button": _("Activate"),
            "multipart": True,
        },
    )


@manager_required
def agreement_terminate_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    agreement = _agreement_for(request, pk)
    if request.method == "POST":
        form = AgreementTerminateForm(request.POST)
        if form.is_valid():
            try:
                agreement_terminate(
                    agreement=agreement,
                    terminated_on=form.cleaned_data["terminated_on"],
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("%(agreement)s is terminated.") % {"agreement": agreement.external_id},
                )
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementTerminateForm(initial={"terminated_on": timezone.localdate()})
    return render(
        request,
        "partners/agreement_action.html",
        {
            "form": form,
            "agreement": agreement,
            "title": _("Terminate %(agreement)s") % {"agreement": agreement.external_id},
            "button": _("Terminate"),
            "danger": True,
        },
    )


@manager_required
def agreement_renew_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Renewing asks first: the page names the renewal's term, or the renewal that exists
    already (an agreement has one), and only the confirming POST creates the draft."""
    agreement = _agreement_for(request, pk)
    existing = agreement_renewal_of(agreement)
    if request.method == "POST" and existing is None:
        try:
            renewal = agreement_renew(agreement=agreement, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("partners:agreement_detail", pk=agreement.pk)
        messages.success(
            request,
            _("Renewal draft %(renewal)s created from %(agreement)s.")
            % {"renewal": renewal.external_id, "agreement": agreement.external_id},
        )
        return redirect("partners:agreement_edit", pk=renewal.pk)
    start, end = renewal_term(start_date=agreement.start_date, end_date=agreement.end_date)
    return render(
        request,
        "partners/agreement_renew.html",
        {"agreement": agreement, "existing": existing, "start": start, "end": end},
        status=409 if request.method == "POST" else 200,
    )


@manager_required
def agreement_discard_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Discard a draft after a confirmation page; its history is kept."""
    agreement = _agreement_for(request, pk)
    if request.method == "POST":
        try:
            agreement_discard_draft(agreement=agreement, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("partners:agreement_detail", pk=agreement.pk)
        messages.success(
            request, _("Draft %(agreement)s discarded.") % {"agreement": agreement.external_id}
        )
        if agreement.renews_id:
            return redirect("partners:agreement_detail", pk=agreement.renews_id)
        return redirect("partners:partner_detail", pk=agreement.partner_id)
    if agreement.status != AgreementStatus.DRAFT:
        raise Http404("Only drafts can be discarded.")
    return render(request, "partners/agreement_discard.html", {"agreement": agreement})


@internal_required
def agreement_document(request: HttpRequest, pk: int) -> FileResponse:
    agreement = _agreement_for(request, pk)
    if not agreement.signed_document:
        raise Http404("No signed document.")
    return signed_document_response(agreement)


@internal_required
def renewals_due(request: HttpRequest) -> HttpResponse:
    """Active agreements ending, or whose notice deadline falls, within 30, 60 or 90 days."""
    today = timezone.localdate()
    window = request.GET.get("within", "90")
    days = int(window) if window in {str(d) for d in DUE_WINDOWS} else 90
    by = "notice" if request.GET.get("by") == "notice" else "end"
    agreements = agreements_due(request.user, by=by, days=days, today=today)
    renewals = {
        row["renews_id"]: row
        for row in Agreement.objects.filter(renews__in=[a.pk for a in agreements])
        .order_by("-start_date", "-pk")
        .values("renews_id", "pk", "external_id", "status")
    }
    rows = [
        {
            "agreement": agreement,
            "days_left": (agreement.end_date - today).days,
            "notice_deadline": agreement.notice_deadline,
            # Active agreements (all that are due) have a notice deadline.
            "notice_passed": agreement.notice_deadline is not None
            and agreement.notice_deadline < today,
            "renewal": {
                **renewals[agreement.pk],
                "status": AgreementStatus(renewals[agreement.pk]["status"]).label,
            }
            if agreement.pk in renewals
            else None,
        }
        for agreement in agreements
    ]
    return render(
        request,
        "partners/renewals_due.html",
        {"rows": rows, "days": days, "by": by, "windows": DUE_WINDOWS, "today": today},
    )
