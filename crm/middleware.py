"""Request-wide rules that no single view should have to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext_lazy as _

from crm.roles import Role, role_of

# What a partner user may reach at all (and a survey link, which works for whoever holds it);
# everything else (workspace, dashboard, admin, API documentation) does not exist for them.
PARTNER_PATHS = ("/portal/", "/api/v1/", "/accounts/", "/i18n/", "/static/", "/survey/")


class PartnerBoundaryMiddleware:
    """Answer 404 to partner users outside the portal, the API and their own account pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/" and not request.path.startswith(PARTNER_PATHS):
            if role_of(getattr(request, "user", None)) == Role.PARTNER_USER:
                raise Http404("No such page.")
        return self.get_response(request)


# Market files are uploaded here, and may be far larger than any other request.
IMPORT_UPLOAD_PATH = "/workspace/imports/"
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


class PrivateAnswersMiddleware:
    """`Cache-Control: private, no-store` on every answer to a signed-in user or an API client:
    pages, downloads and API answers hold data a shared cache (a proxy, a CDN, the browser's
    back button on a shared computer) must never keep."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            getattr(user, "is_authenticated", False)
            or "HTTP_AUTHORIZATION" in request.META
            or request.path.startswith("/api/")
        ):
            patch_cache_control(response, private=True, no_store=True)
        return response


class RequestSizeLimitMiddleware:
    """Refuse a request body larger than settings.REQUEST_MAX_BYTES (market file uploads:
    settings.IMPORT_REQUEST_MAX_BYTES) with 413, from its Content-Length, before any of it is
    read. A body sent without a Content-Length is not read at all (WSGI)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = (
            settings.IMPORT_REQUEST_MAX_BYTES
            if request.path.startswith(IMPORT_UPLOAD_PATH)
            else settings.REQUEST_MAX_BYTES
        )
        if length > limit:
            message = _("The request is larger than the %(mb)s MB this server accepts.") % {
                "mb": limit // (1024 * 1024)
            }
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return render(request, "413.html", {"reason": message}, status=413)
        return self.get_response(request)
