"""Feedback triage in the sales managers' workspace."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.exports import EXPORT_FORMATS, export_response, labelled
from crm.filters import filters_for_page, old_bookmark_redirect
from crm.forms import form_add_service_errors, object_id
from crm.idempotency import once_per_form_token
from crm.pagination import list_queries
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.feedback_forms import (
    FeedbackLogForm,
    FeedbackMessageForm,
    FeedbackTriageForm,
    colleagues,
)
from partners.filters import FEEDBACK_ALL, FEEDBACK_OPEN, FeedbackFilter
from partners.models import Feedback, FeedbackCategory, FeedbackStatus
from partners.selectors import (
    feedback_visible_to,
    partners_visible_to,
)
from partners.services import (
    feedback_log_for_partner,
    feedback_note_add,
    feedback_reply,
    feedback_triage,
)

PAGE_SIZE = 50


FEEDBACK_ROW_FIELDS = (
    "created_at",
    "partner",
    "partner__name",
    "subject",
    "category",
    "satisfaction",
    "nps",
    "status",
    "assignee",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
)


def _filtered(
    request: AuthenticatedHttpRequest,
) -> tuple[QuerySet[Feedback], dict[str, str], FeedbackFilter]:
    """The inbox's rows for its GET parameters, read through `FeedbackFilter` as the API reads
    them. The inbox opens on what still needs work (`status=open`)."""
    feedback = feedback_visible_to(request.user).select_related("partner", "assignee")
    filters, params = filters_for_page(
        FeedbackFilter, request, queryset=feedback, defaults={"status": FEEDBACK_OPEN}
    )
    params["status"] = params["status"] or FEEDBACK_ALL
    return filters.qs, params, filters


@internal_required
def feedback_inbox(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    # Links written before the inbox's FilterSet: ?rating=.
    if old := old_bookmark_redirect(request, renamed={"rating": "satisfaction"}):
        return old
    feedback, params, filters = _filtered(request)
    if request.GET.get("format") in EXPORT_FORMATS:
        categories = labelled(FeedbackCategory.choices)
        statuses = labelled(FeedbackStatus.choices)
        columns = (
            "created_at",
            "partner__external_id",
            "partner__name",
            "subject",
            "category",
            "satisfaction",
            "nps",
            "status",
            "assignee__username",
        )
        header = [
            _("Received"),
            _("Partner id"),
            _("Partner"),
            _("Subject"),
            _("Category"),
            _("Satisfaction (1–5)"),
            _("NPS (0–10)"),
            _("Status"),
            _("Assigned to"),
        ]
        rows = (
            (
                *row[:4],
                categories.get(row[4], row[4]),
                row[5],
                row[6],
                statuses.get(row[7], row[7]),
                row[8],
            )
            for row in feedback.values_list(*columns).iterator(chunk_size=2000)
        )
        return export_response(
            fmt=request.GET["format"],
            filename="feedback",
            header=[str(h) for h in header],
            rows=rows,
        )
    # The columns the rows show (partners/partials/feedback_rows.jinja) only.
    shown = feedback.only(*FEEDBACK_ROW_FIELDS)
    page = Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partners/feedback_list.html",
        {
            "page": page,
            "params": params,
            "filters": filters,
            **list_queries(request.GET),
            "statuses": FeedbackStatus.choices,
            "categories": FeedbackCategory.choices,
            "partners": partners_visible_to(request.user).only("name").order_by("name"),
        },
    )


@internal_required
def feedback_detail(request: HttpRequest, pk: int) -> HttpResponse:
    feedback = get_object_or_404(
        feedback_visible_to(request.user).select_related("partner", "assignee"), pk=pk
    )
    return _render_detail(request, feedback, manage=can_manage(request.user))


def _render_detail(
    request: HttpRequest,
    feedback: Feedback,
    *,
    manage: bool,
    bound: FeedbackMessageForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The feedback page; `bound` is a reply or note form shown again with its errors."""

    def message_form(prefix: str) -> FeedbackMessageForm | None:
        if not manage:
            return None
        return (
            bound
            if bound is not None and bound.prefix == prefix
            else FeedbackMessageForm(prefix=prefix)
        )

    return render(
        request,
        "partners/feedback_detail.html",
        {
            "feedback": feedback,
            "replies": feedback.replies.select_related("author"),
            "notes": feedback.internal_notes.select_related("author"),
            "can_manage": manage,
            "triage_form": FeedbackTriageForm(
                initial={"status": feedback.status, "assignee": feedback.assignee}
            )
            if manage
            else None,
            "reply_form": message_form("reply"),
            "note_form": message_form("note"),
        },
        status=status,
    )


def _feedback_for_write(request: HttpRequest, pk: int) -> Feedback:
    return get_object_or_404(feedback_visible_to(request.user).select_related("partner"), pk=pk)


@manager_required
@require_POST
def feedback_triage_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    feedback = _feedback_for_write(request, pk)
    form = FeedbackTriageForm(request.POST)
    if form.is_valid():
        try:
            feedback_triage(
                feedback=feedback,
                status=form.cleaned_data["status"],
                assignee=form.cleaned_data["assignee"],
                by=request.user,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Status and assignee saved."))
    else:
        messages.error(request, _("Choose a status and a colleague from the lists."))
    return redirect("partners:feedback_detail", pk=feedback.pk)


def _post_message(request: AuthenticatedHttpRequest, pk: int, *, prefix: str) -> HttpResponse:
    feedback = _feedback_for_write(request, pk)
    form = FeedbackMessageForm(request.POST, prefix=prefix)
    if form.is_valid():
        try:
            if prefix == "reply":
                feedback_reply(
                    feedback=feedback, author=request.user, body=form.cleaned_data["body"]
                )
                messages.success(request, _("Reply posted; the partner is notified by e-mail."))
            else:
                feedback_note_add(
                    feedback=feedback, author=request.user, body=form.cleaned_data["body"]
                )
                messages.success(request, _("Internal note added."))
            return redirect("partners:feedback_detail", pk=feedback.pk)
        except ValidationError as error:
            form_add_service_errors(form, error)
    return _render_detail(request, feedback, manage=True, bound=form, status=400)


@manager_required
@require_POST
@once_per_form_token
def feedback_reply_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _post_message(request, pk, prefix="reply")


@manager_required
@require_POST
@once_per_form_token
def feedback_note_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _post_message(request, pk, prefix="note")


@manager_required
@once_per_form_token
def feedback_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user).filter(is_active=True)
    if request.method == "POST":
        form = FeedbackLogForm(request.POST, partners=partners)
        if form.is_valid():
            try:
                feedback = feedback_log_for_partner(
                    partner=form.cleaned_data["partner"], entry=form.entry(), by=request.user
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("Feedback from %(partner)s logged.") % {"partner": feedback.partner.name},
                )
                return redirect("partners:feedback_detail", pk=feedback.pk)
    else:
        partner_id = request.GET.get("partner", "")
        initial = (
            {"partner": partners.filter(pk=partner_pk).first()}
            if (partner_pk := object_id(partner_id))
            else {}
        )
        form = FeedbackLogForm(initial=initial, partners=partners)
    return render(request, "partners/feedback_log.html", {"form": form, "colleagues": colleagues()})
