from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from analytics.models import PartnerSnapshot
from crm.roles import Role, internal_required, role_required
from partners.selectors import partners_visible_to


@role_required(Role.EXECUTIVE, Role.SALES_MANAGER)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/dashboard.html", {})


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
