from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm.exports import EXPORT_FORMATS, export_response
from crm.forms import form_add_service_errors, object_id
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.downloads import signed_document_response
from partners.forms import (
    AgreementActivateForm,
    AgreementCreateForm,
    AgreementDraftForm,
    AgreementTerminateForm,
)
from partners.models import Agreement, AgreementStatus, AgreementType, PartnerKind
from partners.partner_views import partner_page
from partners.selectors import (
    agreements_visible_to,
    partners_visible_to,
)
from partners.services import (
    AgreementTerms,
    agreement_activate,
    agreement_create_draft,
    agreement_renew,
    agreement_terminate,
    agreement_update_draft,
)

PAGE_SIZE = 50


@internal_required
def partner_list(request: HttpRequest) -> HttpResponseBase:
    return partner_page(request, kind=PartnerKind.PARTNER, title="Partners")


@internal_required
def distributor_list(request: HttpRequest) -> HttpResponseBase:
    return partner_page(request, kind=PartnerKind.DISTRIBUTION, title="Distributors")


AGREEMENT_SORTS = {
    "-start_date": ("-start_date", "id"),
    "start_date": ("start_date", "id"),
    "end_date": ("end_date", "id"),
    "-end_date": ("-end_date", "id"),
    "partner": ("partner__name", "id"),
}


@internal_required
def agreement_list(request: HttpRequest) -> HttpResponseBase:
    names = ("q", "status", "type", "ends_after", "ends_before", "exclusive", "sort")
    params = {name: request.GET.get(name, "").strip() for name in names}
    agreements = agreements_visible_to(request.user).select_related("partner")
    if params["q"]:
        agreements = agreements.filter(
            Q(external_id__icontains=params["q"][:64])
            | Q(partner__name__icontains=params["q"][:100])
        )
    if params["status"] in AgreementStatus.values:
        agreements = agreements.filter(status=params["status"])
    if params["type"] in AgreementType.values:
        agreements = agreements.filter(agreement_type=params["type"])
    for name, lookup in (("ends_after", "end_date__gte"), ("ends_before", "end_date__lte")):
        try:
            agreements = agreements.filter(**{lookup: date.fromisoformat(params[name])})
        except ValueError:
            params[name] = ""
    if params["exclusive"] in {"yes", "no"}:
        agreements = agreements.filter(exclusive=params["exclusive"] == "yes")
    params["sort"] = params["sort"] if params["sort"] in AGREEMENT_SORTS else "-start_date"
    agreements = agreements.order_by(*AGREEMENT_SORTS[params["sort"]])
    if request.GET.get("format") in EXPORT_FORMATS:
        columns = (
            "external_id",
            "partner__external_id",
            "partner__name",
            "agreement_type",
            "status",
            "start_date",
            "end_date",
            "signed_on",
            "terminated_on",
            "exclusive",
            "auto_renew",
            "notice_days",
            "currency",
            "discount_percent",
            "revenue_share_percent",
            "annual_target",
        )
        header = ["external_id", "partner", "partner_name", *columns[3:]]
        return export_response(
            fmt=request.GET["format"],
            filename="agreements",
            header=header,
            rows=agreements.values_list(*columns).iterator(chunk_size=2000),
        )
    page = Paginator(agreements, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "partners/agreement_list.html",
        {
            "page": page,
            "params": params,
            "querystring": query.urlencode(),
            "statuses": AgreementStatus.choices,
            "types": AgreementType.choices,
        },
    )


def _agreement_history(agreement: Agreement) -> list[dict[str, object]]:
    """The latest changes, newest first, each with the fields it changed."""
    records = list(
        agreement.history.select_related("history_user").order_by("-history_date", "-history_id")[
            :51
        ]
    )
    rows = []
    for index, record in enumerate(records[:50]):
        previous = records[index + 1] if index + 1 < len(records) else None
        changed = record.diff_against(previous).changed_fields if previous else []
        rows.append({"record": record, "changed": [name.replace("_", " ") for name in changed]})
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
            "history": _agreement_history(agreement),
        },
    )


def _agreement_for(request: HttpRequest, pk: int) -> Agreement:
    return get_object_or_404(agreements_visible_to(request.user).select_related("partner"), pk=pk)


@manager_required
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
                messages.success(request, f"Draft {agreement.external_id} created.")
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        initial: dict[str, object] = {"notice_days": 30, "currency": "USD"}
        partner_id = request.GET.get("partner", "")
        if (pk := object_id(partner_id)) is not None:
            initial["partner"] = partners.filter(pk=pk).first()
        form = AgreementCreateForm(initial=initial, partners=partners)
    return render(request, "partners/agreement_form.html", {"form": form, "title": "New agreement"})


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
                messages.success(request, f"Draft {agreement.external_id} saved.")
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementDraftForm(
            initial=AgreementDraftForm.initial_from(AgreementTerms.of(agreement))
        )
    return render(
        request,
        "partners/agreement_form.html",
        {"form": form, "agreement": agreement, "title": f"Edit draft {agreement.external_id}"},
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
                messages.success(request, f"{agreement.external_id} is signed and active.")
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementActivateForm(initial={"signed_on": timezone.localdate()})
    return render(
        request,
        "partners/agreement_action.html",
        {
            "form": form,
            "agreement": agreement,
            "title": f"Sign and activate {agreement.external_id}",
            "button": "Activate",
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
                messages.success(request, f"{agreement.external_id} is terminated.")
                return redirect("partners:agreement_detail", pk=agreement.pk)
    else:
        form = AgreementTerminateForm(initial={"terminated_on": timezone.localdate()})
    return render(
        request,
        "partners/agreement_action.html",
        {
            "form": form,
            "agreement": agreement,
            "title": f"Terminate {agreement.external_id}",
            "button": "Terminate",
            "danger": True,
        },
    )


@manager_required
@require_POST
def agreement_renew_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    agreement = _agreement_for(request, pk)
    try:
        renewal = agreement_renew(agreement=agreement, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("partners:agreement_detail", pk=agreement.pk)
    messages.success(
        request, f"Renewal draft {renewal.external_id} created from {agreement.external_id}."
    )
    return redirect("partners:agreement_edit", pk=renewal.pk)


@internal_required
def agreement_document(request: HttpRequest, pk: int) -> FileResponse:
    agreement = _agreement_for(request, pk)
    if not agreement.signed_document:
        raise Http404("No signed document.")
    return signed_document_response(agreement)


@internal_required
def renewals_due(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    window = request.GET.get("within", "90")
    days = int(window) if window in {"30", "60", "90"} else 90
    agreements = (
        agreements_visible_to(request.user)
        .filter(
            status=AgreementStatus.ACTIVE,
            end_date__gte=today,
            end_date__lte=today + timedelta(days=days),
        )
        .select_related("partner")
        # One query for the whole page rather than one per agreement.
        .annotate(has_renewal=Exists(Agreement.objects.filter(renews=OuterRef("pk"))))
        .order_by("end_date")
    )
    rows = [
        {
            "agreement": agreement,
            "days_left": (agreement.end_date - today).days,
            "notice_deadline": agreement.end_date - timedelta(days=agreement.notice_days),
            "notice_passed": agreement.end_date - timedelta(days=agreement.notice_days) < today,
            "has_renewal": agreement.has_renewal,
        }
        for agreement in agreements
    ]
    return render(
        request, "partners/renewals_due.html", {"rows": rows, "days": days, "today": today}
    )
