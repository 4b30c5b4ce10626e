from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm.models import Account, Region, Vertical
from crm.roles import HOME_URL_NAME, Role, role_of, role_required


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own home page."""
    role = role_of(request.user)
    if role is None:
        return render(request, "crm/no_role.html", status=403)
    return redirect(HOME_URL_NAME[role])


@role_required(Role.SALES_MANAGER, Role.EXECUTIVE)
def workspace(request: HttpRequest) -> HttpResponse:
    counts = {
        "accounts": Account.objects.count(),
        "regions": Region.objects.count(),
        "verticals": Vertical.objects.count(),
    }
    by_size_band = Account.objects.values("size_band").annotate(n=Count("id")).order_by("size_band")
    return render(
        request, "crm/workspace.html", {"counts": counts, "by_size_band": list(by_size_band)}
    )


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused for its missing or stale security token: most often a page left open
    across a sign-in or sign-out. Our own page; Django's names the mechanism, not the fix."""
    return render(request, "403_csrf.html", status=403)
