"""Searchable choices of the account pages' partner and rep selects, loaded on demand: a page
carries only the selected choice instead of every partner and rep (`crm.forms.RemoteSelect`)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse

from channels.models import SalesRep
from channels.selectors import reps_visible_to
from crm.roles import internal_required
from partners.models import Partner
from partners.selectors import partners_visible_to

CHOICES_LIMIT = 20


def _choices(request: HttpRequest, rows: QuerySet[Partner] | QuerySet[SalesRep]) -> JsonResponse:
    """The first `CHOICES_LIMIT` rows whose name contains `q`, by name; `active=1` leaves out
    inactive ones (what can be assigned), otherwise all (what lists can be filtered by)."""
    query = request.GET.get("q", "").strip()[:100]
    if request.GET.get("active") == "1":
        rows = rows.filter(is_active=True)
    if query:
        rows = rows.filter(name__icontains=query)
    found = list(rows.order_by("name", "pk").values_list("pk", "name")[: CHOICES_LIMIT + 1])
    return JsonResponse(
        {
            "results": [{"value": str(pk), "text": name} for pk, name in found[:CHOICES_LIMIT]],
            "more": len(found) > CHOICES_LIMIT,
        }
    )


@internal_required
def partner_choices(request: HttpRequest) -> JsonResponse:
    return _choices(request, partners_visible_to(request.user, kind=request.GET.get("kind")))


@internal_required
def rep_choices(request: HttpRequest) -> JsonResponse:
    return _choices(request, reps_visible_to(request.user))
