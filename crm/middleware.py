"""Request-wide rules that no single view should have to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from crm.roles import Role, role_of

# What a partner user may reach at all; everything else (workspace, dashboard, admin, API
# documentation) does not exist for them.
PARTNER_PATHS = ("/portal/", "/api/v1/", "/accounts/", "/i18n/", "/static/")


class PartnerBoundaryMiddleware:
    """Answer 404 to partner users outside the portal, the API and their own account pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/" and not request.path.startswith(PARTNER_PATHS):
            if role_of(getattr(request, "user", None)) == Role.PARTNER_USER:
                raise Http404("No such page.")
        return self.get_response(request)


NUL_MESSAGE = _("The address contains a NUL character, which no search or filter can use.")


class QueryStringGuardMiddleware:
    """Answer 400 to a query string holding a NUL character (`%00`), for every page and the
    API alike: PostgreSQL cannot compare text with one, so it would reach the database as a
    server error wherever a parameter is used."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": str(NUL_MESSAGE)}, status=400)
            return render(request, "400.html", {"reason": NUL_MESSAGE}, status=400)
        return self.get_response(request)
