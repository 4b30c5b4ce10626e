from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from crm.forms import StyledFormMixin, form_add_service_errors
from crm.limits import RateLimited, mark_rate_limited
from crm.observability import client_address
from crm.roles import HOME_URL_NAME, role_of
from crm.services import password_reset_request


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own home page."""
    role = role_of(request.user)
    if role is None:
        return render(request, "crm/no_role.html", status=403)
    return redirect(HOME_URL_NAME[role])


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused for its missing or stale security token: most often a page left open
    across a sign-in or sign-out. Our own page; Django's names the mechanism, not the fix."""
    return render(request, "403_csrf.html", status=403)


class PasswordResetRequestForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


@never_cache
def password_reset(request: HttpRequest) -> HttpResponse:
    """Ask for a reset link. The answer is the same page whether or not the address has a
    login: the e-mail is written and sent later, by a worker (crm.services)."""
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            password_reset_request(
                email=form.cleaned_data["email"],
                client_address=client_address(request),
                language=getattr(request, "LANGUAGE_CODE", ""),
            )
        except RateLimited as error:
            form_add_service_errors(form, error)
            page = render(request, "registration/password_reset_form.html", {"form": form})
            return mark_rate_limited(page, error)
        return redirect("password_reset_done")
    return render(request, "registration/password_reset_form.html", {"form": form})
