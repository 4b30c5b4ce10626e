from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm.roles import HOME_URL_NAME, role_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own home page."""
    role = role_of(request.user)
    if role is None:
        return render(request, "crm/no_role.html", status=403)
    return redirect(HOME_URL_NAME[role])


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404
