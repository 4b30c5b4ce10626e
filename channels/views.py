from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from channels.selectors import (
    reps_visible_to,
)
from crm.roles import internal_required

PAGE_SIZE = 50


@internal_required
def rep_list(request: HttpRequest) -> HttpResponse:
    reps = reps_visible_to(request.user).prefetch_related("regions").order_by("name")
    page = Paginator(reps, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "channels/rep_list.html", {"page": page})
