"""The partner programme's pages that read the weekly snapshots: the partner scorecard (in the
portal, and as a card of the workspace's partner page), yearly targets with their attainment,
and quarterly business reviews."""

from __future__ import annotations

from calendar import monthrange
from datetime import date
from decimal import Decimal
from typing import TypedDict

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from analytics import metrics, programme, reports
from analytics.review_summary import review_summary_send
from analytics.scorecard import Scorecard, scorecard_for
from crm.exports import EXPORT_FORMATS, export_response
from crm.forms import object_id
from crm.idempotency import once_per_form_token
from crm.pagination import list_queries
from crm.roles import (
    AuthenticatedHttpRequest,
    Role,
    can_manage,
    internal_required,
    manager_required,
    role_required,
)
from partners.programme_forms import (
    RepTargetForm,
    ReviewActionForm,
    ReviewOpenForm,
    ReviewRecordForm,
)
from partners.programme_models import BusinessReview, ReviewAction, Target
from partners.programme_selectors import (
    business_reviews_visible_to,
    review_actions_open_for,
    targets_visible_to,
    tier_names,
)
from partners.review_services import (
    business_review_open,
    business_review_record,
    review_action_add,
    review_action_set_done,
)
from partners.selectors import partner_of_user, partners_visible_to

portal_required = role_required(Role.PARTNER_USER)
PAGE_SIZE = 50


@portal_required
def portal_scorecard(request: HttpRequest) -> HttpResponse:
    """The partner's own scorecard, from the snapshots only."""
    partner = partner_of_user(request.user)
    if partner is None:
        raise Http404
    return render(
        request,
        "analytics/portal_scorecard.html",
        {"partner": partner, "card": scorecard_for(partner.pk)},
    )


@internal_required
def partner_scorecard(request: HttpRequest, pk: int) -> HttpResponse:
    """The scorecard card of a partner's page (loaded into it)."""
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    return render(
        request,
        "analytics/partials/scorecard_card.html",
        {"partner": partner, "card": scorecard_for(partner.pk)},
    )


# Targets ---------------------------------------------------------------------------------------


def _year_week(year: int) -> str | None:
    """The newest programme week whose Sunday falls in `year`."""
    return next(
        (week for week in reports.programme_weeks() if metrics.iso_week_as_of(week).year == year),
        None,
    )


def _share(actual: int | Decimal | None, target: int | Decimal | None) -> float | None:
    return programme.attainment(
        None if actual is None else float(actual), None if target is None else float(target)
    )


class TargetLine(TypedDict):
    """A target beside its owner's figures of the year's latest snapshot (None before one)."""

    target: Target
    name: str
    figures: reports.ProgrammeFigures | reports.RepFigures | None
    accounts_share: float | None
    conversions_share: float | None
    # A partner's blank revenue target is its agreements' annual target.
    revenue_target: Decimal | None
    revenue_share: float | None


@internal_required
def targets_page(request: HttpRequest) -> HttpResponseBase:
    """Every yearly target of a year with its attainment in the year's latest weekly
    snapshot (rule 22): partners (paged) and reps."""
    today = timezone.localdate()
    year = object_id(request.GET.get("year", "")) or today.year
    if not 2000 <= year <= 2199:
        year = today.year
    week = _year_week(year)
    targets = targets_visible_to(request.user).filter(year=year)
    partner_targets = targets.filter(partner__isnull=False).select_related("partner")
    rep_targets = targets.filter(rep__isnull=False).select_related("rep").order_by("rep__name")
    partner_targets = partner_targets.order_by("partner__name", "id")
    figures: dict[int, reports.ProgrammeFigures] = {}
    rep_figures: dict[int, reports.RepFigures] = {}
    exporting = request.GET.get("format") in EXPORT_FORMATS
    page = Paginator(partner_targets, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(partner_targets) if exporting else list(page)
    if week is not None:
        figures = {
            row.partner_id: row
            for row in reports.programme_partners(
                week, partner_ids=[t.partner_id for t in shown if t.partner_id]
            )
        }
        rep_figures = {
            row.rep_id: row
            for row in reports.rep_programme(
                week, rep_ids=[t.rep_id for t in rep_targets if t.rep_id]
            )
        }
    partner_rows: list[TargetLine] = []
    for target in shown:
        row = figures.get(target.partner_id or 0)
        revenue_target = row.target_revenue if row else target.revenue
        partner_rows.append(
            {
                "target": target,
                "name": target.partner.name if target.partner else "",
                "figures": row,
                "accounts_share": _share(
                    row.covered_accounts if row else None, target.accounts_covered
                ),
                "conversions_share": _share(
                    row.conversions_ytd if row else None, target.conversions
                ),
                "revenue_target": revenue_target,
                "revenue_share": _share(row.sourced_revenue_ytd if row else None, revenue_target),
            }
        )
    rep_rows: list[TargetLine] = []
    for target in rep_targets:
        rep_row = rep_figures.get(target.rep_id or 0)
        rep_rows.append(
            {
                "target": target,
                "name": target.rep.name if target.rep else "",
                "figures": rep_row,
                "accounts_share": _share(
                    rep_row.covered_accounts if rep_row else None, target.accounts_covered
                ),
                "conversions_share": _share(
                    rep_row.conversions_ytd if rep_row else None, target.conversions
                ),
                "revenue_target": target.revenue,
                "revenue_share": _share(
                    rep_row.sourced_revenue_ytd if rep_row else None, target.revenue
                ),
            }
        )
    if exporting:
        return _targets_export(request.GET["format"], year, partner_rows + rep_rows)
    return render(
        request,
        "analytics/targets.html",
        {
            "year": year,
            "years": list(range(today.year + 1, today.year - 4, -1)),
            "week": reports.stored_week(week) if week else None,
            "page": page,
            "partner_rows": partner_rows,
            "rep_rows": rep_rows,
            "rep_form": RepTargetForm(initial={"year": year}) if can_manage(request.user) else None,
            **list_queries(request.GET),
        },
    )


def _targets_export(fmt: str, year: int, rows: list[TargetLine]) -> HttpResponseBase:
    header = [
        _("Year"),
        _("Partner or rep"),
        _("Kind"),
        _("Accounts covered"),
        _("Target"),
        _("Attainment"),
        _("Conversions this year"),
        _("Target"),
        _("Attainment"),
        _("Sourced revenue this year"),
        _("Target"),
        _("Attainment"),
    ]

    def cells(row: TargetLine) -> list[object]:
        target, found = row["target"], row["figures"]
        is_partner = target.partner_id is not None
        return [
            year,
            row["name"],
            _("Partner") if is_partner else _("Rep"),
            found.covered_accounts if found else None,
            target.accounts_covered,
            row["accounts_share"],
            found.conversions_ytd if found else None,
            target.conversions,
            row["conversions_share"],
            found.sourced_revenue_ytd if found else None,
            row["revenue_target"],
            row["revenue_share"],
        ]

    return export_response(
        fmt=fmt,
        filename=f"targets-{year}",
        header=[str(h) for h in header],
        rows=(cells(row) for row in rows),
    )


# Business reviews ------------------------------------------------------------------------------


def quarter_end(year: int, quarter: int) -> date:
    month = 3 * quarter
    return date(year, month, monthrange(year, month)[1])


def review_scorecard(review: BusinessReview) -> Scorecard | None:
    """The scorecard a review discusses: as of the last week of its quarter (or the latest
    week, while the quarter runs)."""
    end = min(quarter_end(review.year, review.quarter), timezone.localdate())
    return scorecard_for(review.partner_id, until_week=metrics.iso_week_of(end))


@internal_required
def reviews_page(request: HttpRequest) -> HttpResponse:
    reviews = business_reviews_visible_to(request.user).select_related("partner", "created_by")
    partner_id = object_id(request.GET.get("partner", ""))
    if partner_id is not None:
        reviews = reviews.filter(partner_id=partner_id)
    page = Paginator(reviews.order_by("-year", "-quarter", "partner__name"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    form = None
    if can_manage(request.user):
        form = ReviewOpenForm(
            partners=partners_visible_to(request.user).filter(is_active=True).order_by("name"),
            initial={"partner": partner_id} if partner_id else None,
        )
    return render(
        request,
        "analytics/reviews.html",
        {
            "page": page,
            "form": form,
            "open_counts": {
                review.pk: review.actions.filter(done_on__isnull=True).count() for review in page
            },
            **list_queries(request.GET),
        },
    )


@manager_required
@require_POST
def review_open_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ReviewOpenForm(
        request.POST, partners=partners_visible_to(request.user).filter(is_active=True)
    )
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(map(str, errors)))
        return redirect("programme_figures:reviews")
    year, quarter = form.year_and_quarter()
    try:
        review = business_review_open(
            partner=form.cleaned_data["partner"], year=year, quarter=quarter, by=request.user
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("programme_figures:reviews")
    return redirect("programme_figures:review", pk=review.pk)


def _review(request: HttpRequest, pk: int) -> BusinessReview:
    return get_object_or_404(
        business_reviews_visible_to(request.user).select_related("partner", "created_by"), pk=pk
    )


@internal_required
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    manage = can_manage(request.user)
    return render(
        request,
        "analytics/review.html",
        {
            "review": review,
            "card": review_scorecard(review),
            "actions": review.actions.select_related("owner").order_by("done_on", "due_on", "id"),
            "record_form": ReviewRecordForm(
                initial={
                    "held_on": review.held_on,
                    "attendees": review.attendees,
                    "notes": review.notes,
                }
            )
            if manage
            else None,
            "action_form": ReviewActionForm() if manage else None,
            "contacts": review.partner.contacts.exclude(email="").order_by("name"),
            "today": timezone.localdate(),
        },
    )


@manager_required
@require_POST
def review_record_view(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    form = ReviewRecordForm(request.POST)
    if form.is_valid():
        try:
            business_review_record(review=review, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The review's notes are saved."))
    else:
        for errors in form.errors.values():
            messages.error(request, " ".join(map(str, errors)))
    return redirect("programme_figures:review", pk=review.pk)


@manager_required
@require_POST
@once_per_form_token
def review_action_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    form = ReviewActionForm(request.POST)
    if form.is_valid():
        try:
            review_action_add(review=review, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Action added."))
    else:
        for errors in form.errors.values():
            messages.error(request, " ".join(map(str, errors)))
    return redirect("programme_figures:review", pk=review.pk)


@internal_required
@require_POST
def review_action_done_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark an action done (or open again): its owner, or a manager."""
    action = get_object_or_404(
        ReviewAction.objects.filter(review__in=business_reviews_visible_to(request.user)), pk=pk
    )
    if not (can_manage(request.user) or action.owner_id == request.user.pk):
        raise Http404
    review_action_set_done(action=action, done=request.POST.get("done") != "no")
    messages.success(request, _("Action updated."))
    back = request.POST.get("next", "")
    if back == "home":
        return redirect("workspace:home")
    return redirect("programme_figures:review", pk=action.review_id)


@manager_required
@require_POST
def review_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    sent_to = review_summary_send(review=review, scorecard=review_scorecard(review))
    if sent_to:
        messages.success(
            request,
            _("The summary is on its way to %(addresses)s.") % {"addresses": ", ".join(sent_to)},
        )
    else:
        messages.error(
            request, _("No contact of this partner has an e-mail address; add one first.")
        )
    return redirect("programme_figures:review", pk=review.pk)


class OpenActions(TypedDict):
    rows: list[ReviewAction]
    count: int
    today: date
    tier_names: dict[str, str]


def open_actions_for(request: HttpRequest, *, limit: int = 8) -> OpenActions:
    """The manager's home: open review actions they own or follow, soonest due first."""
    actions = review_actions_open_for(request.user)
    return {
        "rows": list(actions[:limit]),
        "count": actions.count(),
        "today": timezone.localdate(),
        "tier_names": tier_names(),
    }
