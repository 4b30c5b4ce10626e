from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from crm.roles import Role, internal_required, role_required
from partners.models import AgreementStatus, PartnerKind
from partners.selectors import (
    agreements_visible_to,
    feedback_visible_to,
    partner_of_user,
    partners_visible_to,
)

PAGE_SIZE = 50


def _partner_page(request: HttpRequest, *, kind: str, title: str) -> HttpResponse:
    partners = partners_visible_to(request.user, kind=kind).order_by("name")
    page = Paginator(partners, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "partners/partner_list.html", {"page": page, "title": title})


@internal_required
def partner_list(request: HttpRequest) -> HttpResponse:
    return _partner_page(request, kind=PartnerKind.PARTNER, title="Partners")


@internal_required
def distributor_list(request: HttpRequest) -> HttpResponse:
    return _partner_page(request, kind=PartnerKind.DISTRIBUTION, title="Distributors")


@internal_required
def partner_detail(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    return render(
        request,
        "partners/partner_detail.html",
        {
            "partner": partner,
            "contacts": partner.contacts.all(),
            "agreements": agreements_visible_to(request.user).filter(partner=partner),
            "feedback": feedback_visible_to(request.user).filter(partner=partner)[:20],
        },
    )


@internal_required
def agreement_list(request: HttpRequest) -> HttpResponse:
    agreements = (
        agreements_visible_to(request.user).select_related("partner").order_by("-start_date", "id")
    )
    status = request.GET.get("status", "")
    if status in AgreementStatus.values:
        agreements = agreements.filter(status=status)
    else:
        status = ""
    page = Paginator(agreements, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partners/agreement_list.html",
        {"page": page, "status": status, "statuses": AgreementStatus.choices},
    )


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
            "in_force": agreement.in_force_on(date.today()),
            "history": agreement.history.select_related("history_user").order_by("-history_date")[
                :50
            ],
        },
    )


@internal_required
def feedback_list(request: HttpRequest) -> HttpResponse:
    feedback = feedback_visible_to(request.user).select_related("partner").order_by("-created_at")
    page = Paginator(feedback, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "partners/feedback_list.html", {"page": page})


@role_required(Role.PARTNER_USER)
def portal_home(request: HttpRequest) -> HttpResponse:
    partner = partner_of_user(request.user)
    return render(
        request,
        "partners/portal_home.html",
        {
            "partner": partner,
            "agreements": agreements_visible_to(request.user).order_by("-end_date"),
            "feedback": feedback_visible_to(request.user).order_by("-created_at")[:10],
        },
    )
