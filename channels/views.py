from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext as _

from channels.selectors import (
    reps_visible_to,
)
from crm.exports import EXPORT_FORMATS, export_response, yes_no
from crm.pagination import list_queries
from crm.roles import internal_required
from crm.selectors import regions_all

PAGE_SIZE = 50


@internal_required
def rep_list(request: HttpRequest) -> HttpResponseBase:
    q = request.GET.get("q", "").strip()[:100]
    region = request.GET.get("region", "").strip()
    reps = reps_visible_to(request.user).prefetch_related("regions").order_by("name")
    if q:
        reps = reps.filter(Q(name__icontains=q) | Q(email__icontains=q) | Q(external_id=q))
    if region:
        reps = reps.filter(regions__code=region).distinct()
    if request.GET.get("format") in EXPORT_FORMATS:
        rows = (
            (
                rep.external_id,
                rep.name,
                rep.email,
                "; ".join(r.display_name for r in rep.regions.all()),
                yes_no(rep.is_active),
            )
            for rep in reps
        )
        header = [_("External id"), _("Name"), _("E-mail"), _("Regions"), _("Active")]
        return export_response(
            fmt=request.GET["format"],
            filename="reps",
            header=[str(h) for h in header],
            rows=rows,
        )
    page = Paginator(reps, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "channels/rep_list.html",
        {
            "page": page,
            "q": q,
            "region": region,
            "regions": regions_all(),
            **list_queries(request.GET),
        },
    )
