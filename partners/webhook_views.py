"""Webhook endpoints and their delivery log, for sales managers."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.forms import form_add_service_errors
from crm.idempotency import once_per_form_token
from crm.roles import AuthenticatedHttpRequest, manager_required
from partners.registration_forms import WebhookEndpointForm
from partners.registration_selectors import (
    webhook_deliveries_visible_to,
    webhook_endpoints_visible_to,
)
from partners.webhook_models import DeliveryStatus, WebhookDelivery
from partners.webhooks import (
    MAX_ATTEMPTS,
    webhook_endpoint_create,
    webhook_endpoint_set_active,
    webhook_ping,
    webhook_redeliver,
)

PAGE_SIZE = 50


def _deliveries_page(
    request: HttpRequest, deliveries: QuerySet[WebhookDelivery]
) -> tuple[Page[WebhookDelivery], str]:
    status = request.GET.get("status", "")
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    else:
        status = ""
    page = Paginator(deliveries.select_related("endpoint"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return page, status


@manager_required
@once_per_form_token
def webhook_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = WebhookEndpointForm()
    status_code = 200
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = webhook_endpoint_create(by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request, _("Events will be sent to %(url)s.") % {"url": endpoint.url}
                )
                return redirect("registrations:webhook_detail", pk=endpoint.pk)
        status_code = 400
    page, status = _deliveries_page(request, webhook_deliveries_visible_to(request.user))
    return render(
        request,
        "partners/webhook_list.html",
        {
            "endpoints": webhook_endpoints_visible_to(request.user),
            "form": form,
            "page": page,
            "status": status,
            "statuses": DeliveryStatus.choices,
            "querystring": f"status={status}" if status else "",
            "max_attempts": MAX_ATTEMPTS,
        },
        status=status_code,
    )


@manager_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(webhook_endpoints_visible_to(request.user), pk=pk)
    page, status = _deliveries_page(request, endpoint.deliveries.all())
    return render(
        request,
        "partners/webhook_detail.html",
        {
            "endpoint": endpoint,
            "page": page,
            "status": status,
            "statuses": DeliveryStatus.choices,
            "querystring": f"status={status}" if status else "",
        },
    )


@manager_required
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(webhook_endpoints_visible_to(request.user), pk=pk)
    webhook_endpoint_set_active(endpoint=endpoint, active=not endpoint.is_active)
    messages.success(
        request, _("Endpoint resumed.") if endpoint.is_active else _("Endpoint paused.")
    )
    return redirect("registrations:webhook_detail", pk=endpoint.pk)


@manager_required
@require_POST
def webhook_ping_view(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(webhook_endpoints_visible_to(request.user), pk=pk)
    try:
        webhook_ping(endpoint=endpoint)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Test event queued; its delivery shows below."))
    return redirect("registrations:webhook_detail", pk=endpoint.pk)


@manager_required
@require_POST
def webhook_redeliver_view(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(webhook_deliveries_visible_to(request.user), pk=pk)
    try:
        webhook_redeliver(delivery=delivery)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Delivery queued again."))
    return redirect("registrations:webhook_detail", pk=delivery.endpoint_id)
