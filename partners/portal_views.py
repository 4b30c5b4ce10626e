"""The partner portal: partner users see their own organisation only.

Every object is fetched through a selector scoped to the user; anything else is a 404,
so a partner cannot even learn that another partner's object exists.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.forms import StyledFormMixin, form_add_service_errors
from crm.idempotency import once_per_form_token
from crm.limits import RateLimited, mark_rate_limited
from crm.models import Account
from crm.roles import AuthenticatedHttpRequest, Role, role_required
from crm.selectors import api_tokens_visible_to
from crm.services import api_tokens_revoke_all
from partners.downloads import attachment_response, signed_document_response
from partners.models import Feedback, FeedbackStatus
from partners.portal_forms import PortalFeedbackForm, PortalFollowUpForm
from partners.selectors import (
    agreements_in_force_q,
    agreements_visible_to,
    feedback_visible_to,
    partner_granted_segments_q,
    partner_of_user,
    portal_accounts_count,
    portal_accounts_for,
    portal_accounts_outside_count,
)
from partners.services import FeedbackEntry, feedback_follow_up, feedback_submit

portal_required = role_required(Role.PARTNER_USER)
PAGE_SIZE = 25


@portal_required
def portal_home(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    agreements = agreements_visible_to(request.user)
    in_force = agreements.filter(agreements_in_force_q(today)).order_by("end_date")
    open_feedback = (
        feedback_visible_to(request.user)
        .exclude(status=FeedbackStatus.CLOSED)
        .prefetch_related("replies")
        .order_by("-updated_at")[:10]
    )
    return render(
        request,
        "partners/portal/home.html",
        {
            "partner": partner_of_user(request.user),
            "in_force": in_force,
            "open_feedback": open_feedback,
        },
    )


@portal_required
def portal_agreements(request: HttpRequest) -> HttpResponse:
    agreements = (
        agreements_visible_to(request.user)
        .prefetch_related("regions", "verticals")
        .order_by("-end_date")
    )
    return render(
        request,
        "partners/portal/agreements.html",
        {"agreements": agreements, "today": timezone.localdate()},
    )


@portal_required
def portal_agreement_document(request: HttpRequest, pk: int) -> FileResponse:
    agreement = get_object_or_404(agreements_visible_to(request.user), pk=pk)
    if not agreement.signed_document:
        raise Http404
    return signed_document_response(agreement)


@portal_required
def portal_accounts(request: HttpRequest) -> HttpResponse:
    accounts = (
        portal_accounts_for(request.user)
        .select_related("region", "vertical")
        .order_by("name", "id")
    )
    q = request.GET.get("q", "").strip()[:100]
    if q:
        accounts = accounts.filter(Q(name__icontains=q) | Q(external_id=q))
    paginator = Paginator(accounts, PAGE_SIZE)
    # Unsearched, the partner's accounts are counted from its own assignments.
    total = None if q else portal_accounts_count(request.user)
    if total is not None:
        paginator.count = total  # Paginator.count is a cached property: set, it is not counted
    page = paginator.get_page(request.GET.get("page"))
    # Flag the accounts no agreement of the partner in force today grants: their coverage does
    # not count, and the partner should know before working them.
    partner = partner_of_user(request.user)
    today = timezone.localdate()
    outside_ids: set[int] = set()
    outside_total = 0
    # No partner (deactivated): no accounts either (portal_accounts_for), nothing to flag.
    if partner is not None:
        # accounts_outside_agreements' rule, with the grants read once for both figures.
        granted = partner_granted_segments_q(partner=partner, day=today)
        shown = [account.pk for account in page]
        if granted is None:  # no agreement in force: every account is outside
            outside_ids = set(shown)
            outside_total = total if total is not None else portal_accounts_count(request.user)
        else:
            outside_ids = set(
                Account.objects.filter(pk__in=shown).exclude(granted).values_list("pk", flat=True)
            )
            outside_total = portal_accounts_outside_count(request.user, granted=granted)
    return render(
        request,
        "partners/portal/accounts.html",
        {
            "page": page,
            "q": q,
            "querystring": f"q={q}" if q else "",
            "outside_total": outside_total,
            "outside_ids": outside_ids,
        },
    )


@portal_required
def portal_feedback_list(request: HttpRequest) -> HttpResponse:
    feedback = feedback_visible_to(request.user).order_by("-created_at")
    page = Paginator(feedback, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "partners/portal/feedback_list.html", {"page": page})


@portal_required
@once_per_form_token
def portal_feedback_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PortalFeedbackForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                feedback = feedback_submit(
                    user=request.user,
                    entry=FeedbackEntry(
                        category=data["category"],
                        satisfaction=data["satisfaction"],
                        nps=data["nps"],
                        subject=data["subject"],
                        body=data["body"],
                    ),
                    attachment=data.get("attachment"),
                )
            except RateLimited as error:
                form_add_service_errors(form, error)
                return mark_rate_limited(
                    render(request, "partners/portal/feedback_new.html", {"form": form}), error
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("Thank you — your feedback has been received."))
                return redirect("portal:feedback_detail", pk=feedback.pk)
    else:
        form = PortalFeedbackForm()
    return render(request, "partners/portal/feedback_new.html", {"form": form})


def _portal_feedback(request: HttpRequest, pk: int) -> Feedback:
    return get_object_or_404(feedback_visible_to(request.user), pk=pk)


@portal_required
@once_per_form_token
def portal_feedback_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    feedback = _portal_feedback(request, pk)
    form = PortalFollowUpForm()
    if request.method == "POST":
        form = PortalFollowUpForm(request.POST)
        if form.is_valid():
            try:
                feedback_follow_up(
                    feedback=feedback, user=request.user, body=form.cleaned_data["body"]
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("Your message has been added."))
                return redirect("portal:feedback_detail", pk=feedback.pk)
    # Replies only: internal notes are never loaded for the portal.
    return render(
        request,
        "partners/portal/feedback_detail.html",
        {
            "feedback": feedback,
            "replies": feedback.replies.select_related("author").order_by("created_at"),
            "form": form,
        },
    )


@portal_required
def portal_feedback_attachment(request: HttpRequest, pk: int) -> FileResponse:
    feedback = _portal_feedback(request, pk)
    if not feedback.attachment:
        raise Http404
    return attachment_response(feedback)


class StyledPasswordChangeForm(StyledFormMixin, PasswordChangeForm):
    pass


@portal_required
def portal_profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = StyledPasswordChangeForm(request.user)
    if request.method == "POST":
        form = StyledPasswordChangeForm(request.user, request.POST)
        if form.is_valid():
            user = form.save()
            update_session_auth_hash(request, user)
            messages.success(request, _("Your password has been changed."))
            return redirect("portal:profile")
    partner = partner_of_user(request.user)
    return render(
        request,
        "partners/portal/profile.html",
        {
            "partner": partner,
            "form": form,
            "contacts": partner.contacts.all() if partner is not None else [],
            "api_tokens": api_tokens_visible_to(request.user).count(),
        },
    )


@portal_required
@require_POST
def portal_revoke_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    count = api_tokens_revoke_all(user=request.user, by=request.user, request=request)
    messages.success(
        request,
        ngettext("%(count)d API token revoked.", "%(count)d API tokens revoked.", count)
        % {"count": count},
    )
    return redirect("portal:profile")
