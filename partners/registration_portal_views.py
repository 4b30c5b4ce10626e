"""Deal registrations in the partner portal: register, follow, withdraw, ask for more time.

A partner sees its own registrations only (anything else is a 404), whether one needs review,
and each decision with its reason; never the conflicts, another partner, nor who covers the
account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.forms import form_add_service_errors
from crm.idempotency import once_per_form_token
from crm.roles import AuthenticatedHttpRequest, Role, role_required
from partners.registration_forms import ExtensionRequestForm, RegistrationForm, WithdrawForm
from partners.registration_matching import accounts_assigned_to
from partners.registration_models import (
    DealRegistration,
    DealRegistrationEvent,
    ExtensionStatus,
    RegistrationStatus,
)
from partners.registration_selectors import (
    registration_events_visible_to,
    registrations_visible_to,
)
from partners.registration_services import (
    RegistrationRefused,
    registration_request_extension,
    registration_submit,
    registration_withdraw,
)
from partners.registration_text import event_note
from partners.selectors import partner_of_user

portal_required = role_required(Role.PARTNER_USER)
PAGE_SIZE = 25


@portal_required
def portal_registration_list(request: HttpRequest) -> HttpResponse:
    registrations = registrations_visible_to(request.user).order_by("-submitted_at", "-id")
    status = request.GET.get("status", "")
    if status in RegistrationStatus.values:
        registrations = registrations.filter(status=status)
    else:
        status = ""
    page = Paginator(registrations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partners/portal/registration_list.html",
        {
            "page": page,
            "status": status,
            "statuses": RegistrationStatus.choices,
            "querystring": f"status={status}" if status else "",
        },
    )


def _initial_for_own_account(request: HttpRequest) -> dict[str, object]:
    """Prefill the form from one of the partner's own accounts (`?account=<external id>`)."""
    external_id = request.GET.get("account", "").strip()[:64]
    partner = partner_of_user(request.user)
    if not external_id or partner is None:
        return {"currency": "USD"}
    account = accounts_assigned_to(partner).filter(external_id=external_id).first()
    if account is None:
        return {"currency": "USD"}
    return {
        "account": account.external_id,
        "company_name": account.name,
        "region": account.region_id,
        "vertical": account.vertical_id,
        "size_band": account.size_band,
        "currency": "USD",
    }


@portal_required
@once_per_form_token
def portal_registration_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = RegistrationForm(request.POST)
        if form.is_valid():
            try:
                registration = registration_submit(user=request.user, details=form.details())
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _(
                        "Thank you — your deal is registered. Our channel team decides within "
                        "%(days)s business days."
                    )
                    % {"days": settings.REGISTRATION_DECISION_BUSINESS_DAYS}
                    if registration.status == RegistrationStatus.SUBMITTED
                    else _("Thank you — your deal is registered and approved."),
                )
                return redirect("portal_registrations:detail", pk=registration.pk)
        status = 400
    else:
        form = RegistrationForm(initial=_initial_for_own_account(request))
        status = 200
    return render(request, "partners/portal/registration_new.html", {"form": form}, status=status)


def _own_registration(request: HttpRequest, pk: int) -> DealRegistration:
    return get_object_or_404(
        registrations_visible_to(request.user).select_related("region", "vertical"), pk=pk
    )


class HistoryStep(TypedDict):
    event: DealRegistrationEvent
    who: str
    note: str


def _history(request: HttpRequest, registration: DealRegistration) -> list[HistoryStep]:
    rows: list[HistoryStep] = []
    for event in registration_events_visible_to(request.user, registration):
        if event.by is None:
            who = _("Automatically")
        elif hasattr(event.by, "partner_membership"):
            who = event.by.get_username()
        else:
            who = _("Channel team")
        rows.append({"event": event, "who": who, "note": event_note(event)})
    return rows


def _render_detail(
    request: HttpRequest,
    registration: DealRegistration,
    *,
    bound: Form | None = None,
    status: int = 200,
) -> HttpResponse:
    withdraw = bound if isinstance(bound, WithdrawForm) else WithdrawForm(prefix="withdraw")
    extension = (
        bound if isinstance(bound, ExtensionRequestForm) else ExtensionRequestForm(prefix="extend")
    )
    return render(
        request,
        "partners/portal/registration_detail.html",
        {
            "registration": registration,
            "history": _history(request, registration),
            "can_withdraw": registration.status
            in (RegistrationStatus.SUBMITTED, RegistrationStatus.APPROVED),
            "can_request_extension": registration.status == RegistrationStatus.APPROVED
            and registration.extension_status == ExtensionStatus.NONE,
            "withdraw_form": withdraw,
            "extension_form": extension,
        },
        status=status,
    )


@portal_required
def portal_registration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _own_registration(request, pk))


def _act(
    request: HttpRequest,
    pk: int,
    *,
    form: Form,
    act: Callable[[DealRegistration, dict[str, Any]], object],
    done: str,
) -> HttpResponse:
    registration = _own_registration(request, pk)
    if form.is_valid():
        try:
            act(registration, form.cleaned_data)
        except RegistrationRefused as refusal:
            # The state changed under the partner: say so above the page, whose forms follow it.
            messages.error(request, " ".join(refusal.messages))
            return _render_detail(request, _own_registration(request, pk), status=409)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, done)
            return redirect("portal_registrations:detail", pk=registration.pk)
    return _render_detail(request, registration, bound=form, status=400)


@portal_required
@require_POST
def portal_registration_withdraw(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        form=WithdrawForm(request.POST, prefix="withdraw"),
        act=lambda registration, data: registration_withdraw(
            registration=registration, user=request.user, reason=data["reason"]
        ),
        done=_("Your registration is withdrawn."),
    )


@portal_required
@require_POST
def portal_registration_extend(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        form=ExtensionRequestForm(request.POST, prefix="extend"),
        act=lambda registration, data: registration_request_extension(
            registration=registration, user=request.user, note=data["note"]
        ),
        done=_("Your request for a longer protection has been sent."),
    )
