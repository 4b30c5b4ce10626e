from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.roles import Role, role_required


@role_required(Role.EXECUTIVE, Role.SALES_MANAGER)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/dashboard.html", {})
