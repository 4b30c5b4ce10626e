from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from channels.selectors import (
    reps_visible_to,
)
from crm.exports import EXPORT_FORMATS, export_response
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
                ";".join(r.code for r in rep.regions.all()),
                rep.is_active,
            )
            for rep in reps
        )
        return export_response(
            fmt=request.GET["format"],
            filename="reps",
            header=["external_id", "name", "email", "regions", "is_active"],
            rows=rows,
        )
    page = Paginator(reps, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "channels/rep_list.html",
        {
            "page": page,
            "q": q,
            "region": region,
            "regions": regions_all(),
            "querystring": query.urlencode(),
        },
    )
