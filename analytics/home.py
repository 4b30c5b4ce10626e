"""The workspace home each internal role starts the day with (`/workspace/`).

Sales managers and executives: what falls due, what waits for an answer, which partners fell
this week, coverage that does not count and the largest white space. Sales reps: their own
accounts' coverage and what changed in it this week. Every count links to the list that shows
exactly what it counts; every read goes through the asking user's selectors. It lives in the top
layer because it reads the weekly figures (through `analytics/reports.py`) beside the live records.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypedDict
from urllib.parse import urlencode

from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django_stubs_ext import StrOrPromise

from analytics import reports
from analytics.models import MetricsRun, RunStatus
from analytics.programme_views import open_actions_for
from channels.models import CoverageAssignment
from channels.selectors import active_coverage_q, rep_for_user
from crm.models import Account, ChannelKind, Region, SizeBand, Vertical
from crm.pagination import capped_count
from crm.roles import Role, role_of, role_required
from crm.selectors import AccountFilter
from partners.models import Feedback
from partners.registration_models import DealRegistration
from partners.registration_selectors import (
    decision_deadlines,
    due_soon_before,
    overdue_before,
    registrations_awaiting_decision,
)
from partners.selectors import (
    DUE_WINDOWS,
    AccountListFilter,
    accounts_listed,
    agreements_due,
    feedback_awaiting_answer,
    partners_visible_to,
)

WAITING_SHOWN = 5
WHITE_SPACE_SHOWN = 5
RECENT_DAYS = 7

# A closed week as the runs name it: (ISO week, the Sunday that closes it).
WeekAsOf = tuple[str, date]


class LinkedCount(TypedDict):
    count: int
    url: str


class DueWindow(TypedDict):
    days: int
    end: LinkedCount
    notice: LinkedCount


class WaitingEntry(TypedDict):
    feedback: Feedback
    age_days: int


class Waiting(TypedDict):
    count: int
    oldest: list[WaitingEntry]
    url: str


class RegistrationWaiting(TypedDict):
    registration: DealRegistration
    age: int
    due_on: date
    overdue: bool


class RegistrationsWaiting(TypedDict):
    count: int
    url: str
    soon: int
    soon_url: str
    overdue: int
    overdue_url: str
    oldest: list[RegistrationWaiting]


class PartnerFall(TypedDict):
    partner_id: int
    name: str
    covered_before: int
    covered_now: int
    coverage_fell: bool
    satisfaction_before: float | None
    satisfaction_now: float | None
    satisfaction_fell: bool


class WhiteSpaceSegment(TypedDict):
    region: str
    vertical: str
    size_band: str
    white_space: int
    accounts: int
    region_name: str
    vertical_name: str
    size_band_name: StrOrPromise
    url: str


class CappedCount(TypedDict):
    count: int
    capped: bool
    url: str


def _account_list_url(account_filter: AccountListFilter) -> str:
    return reverse("partners:account_list") + "?" + urlencode(account_filter.query())


def _due(request: HttpRequest, today: date) -> list[DueWindow]:
    """Per window of 30, 60 and 90 days: agreements ending, and notice deadlines falling."""

    def falling(by: str, days: int) -> LinkedCount:
        return {
            "count": len(agreements_due(request.user, by=by, days=days, today=today)),
            "url": reverse("partners:renewals_due") + "?" + urlencode({"by": by, "within": days}),
        }

    return [
        {"days": days, "end": falling("end", days), "notice": falling("notice", days)}
        for days in DUE_WINDOWS
    ]


def _waiting(request: HttpRequest, now: datetime) -> Waiting:
    waiting = feedback_awaiting_answer(request.user).select_related("partner")
    oldest: list[WaitingEntry] = [
        {"feedback": entry, "age_days": (now - entry.created_at).days}
        for entry in waiting[:WAITING_SHOWN]
    ]
    query = urlencode({"status": "open", "waiting": "answer", "sort": "created_at"})
    return {
        "count": waiting.count(),
        "oldest": oldest,
        "url": reverse("partners:feedback_list") + "?" + query,
    }


def _registrations_waiting(request: HttpRequest, today: date) -> RegistrationsWaiting:
    """Deal registrations waiting for a decision: how many, how many are overdue or due by
    the next business day (and of those, overdue), each linking to the queue filtered to
    exactly those, and the oldest few with their age against the deadline."""
    waiting = registrations_awaiting_decision(request.user)
    queue = reverse("registrations:queue")
    soon = waiting.filter(submitted_at__date__lt=due_soon_before(today))
    overdue = waiting.filter(submitted_at__date__lt=overdue_before(today))
    oldest = list(waiting.select_related("partner").order_by("submitted_at", "id")[:WAITING_SHOWN])
    deadlines = decision_deadlines(
        [timezone.localdate(registration.submitted_at) for registration in oldest], today
    )
    return {
        "count": waiting.count(),
        "url": queue + "?" + urlencode({"status": "submitted"}),
        "soon": soon.count(),
        "soon_url": queue + "?" + urlencode({"status": "submitted", "overdue": "soon"}),
        "overdue": overdue.count(),
        "overdue_url": queue + "?" + urlencode({"status": "submitted", "overdue": "yes"}),
        "oldest": [
            {"registration": registration, "age": age, "due_on": due, "overdue": due < today}
            for registration, (age, due) in zip(oldest, deadlines, strict=True)
        ],
    }


def _latest_final_weeks() -> tuple[WeekAsOf | None, WeekAsOf | None]:
    """The latest two succeeded final runs' (week, as_of), newest first (None when missing)."""
    runs = list(
        MetricsRun.objects.filter(status=RunStatus.SUCCEEDED, final=True)
        .order_by("-week")
        .values_list("week", "as_of")
        .distinct()[:2]
    )
    return (runs[0] if runs else None), (runs[1] if len(runs) > 1 else None)


def _partners_that_fell(
    request: HttpRequest, latest: WeekAsOf | None, before: WeekAsOf | None
) -> list[PartnerFall]:
    """Partners whose counted coverage or 90-day satisfaction fell from the week before to
    the latest closed week, from their snapshots; largest coverage fall first."""
    if latest is None or before is None:
        return []
    visible = set(partners_visible_to(request.user).values_list("pk", flat=True))
    earlier = {row.partner_id: row for row in reports.partners(before[0])}
    fell: list[PartnerFall] = []
    for now in reports.partners(latest[0]):
        then = earlier.get(now.partner_id)
        if then is None or now.partner_id not in visible:
            continue
        coverage_fell = now.covered_accounts < then.covered_accounts
        satisfaction_fell = (
            now.satisfaction_mean is not None
            and then.satisfaction_mean is not None
            and now.satisfaction_mean < then.satisfaction_mean - 1e-9
        )
        if coverage_fell or satisfaction_fell:
            fell.append(
                {
                    "partner_id": now.partner_id,
                    "name": now.name,
                    "covered_before": then.covered_accounts,
                    "covered_now": now.covered_accounts,
                    "coverage_fell": coverage_fell,
                    "satisfaction_before": then.satisfaction_mean,
                    "satisfaction_now": now.satisfaction_mean,
                    "satisfaction_fell": satisfaction_fell,
                }
            )
    fell.sort(key=lambda row: (row["covered_now"] - row["covered_before"], row["name"]))
    return fell


def _white_space(latest: WeekAsOf | None) -> list[WhiteSpaceSegment]:
    """The latest closed week's largest white-space segments, each linking to the account
    list on that week's as-of date (the accounts the week counted)."""
    if latest is None:
        return []
    week, as_of = latest
    rows = reports.white_space(week, limit=WHITE_SPACE_SHOWN)
    regions = {
        r.code: r.display_name for r in Region.objects.filter(code__in=[r.region for r in rows])
    }
    verticals = {
        v.code: v.display_name for v in Vertical.objects.filter(code__in=[r.vertical for r in rows])
    }
    size_bands = dict(SizeBand.choices)
    return [
        {
            "region": row.region,
            "vertical": row.vertical,
            "size_band": row.size_band,
            "white_space": row.white_space,
            "accounts": row.accounts,
            "region_name": regions.get(row.region, row.region),
            "vertical_name": verticals.get(row.vertical, row.vertical),
            "size_band_name": size_bands.get(row.size_band, row.size_band),
            "url": _account_list_url(
                AccountListFilter(
                    segment=AccountFilter(
                        region=row.region, vertical=row.vertical, size_band=row.size_band
                    ),
                    coverage="none",
                    as_of=as_of if as_of < timezone.localdate() else None,
                )
            ),
        }
        for row in rows
    ]


def _capped(rows: QuerySet[Account], url: str) -> CappedCount:
    count, capped = capped_count(rows)
    return {"count": count, "capped": capped, "url": url}


def manager_home(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    latest, before = _latest_final_weeks()
    outside = AccountListFilter(coverage="outside")
    return render(
        request,
        "analytics/manager_home.html",
        {
            "today": today,
            "due": _due(request, today),
            "waiting": _waiting(request, timezone.now()),
            "registrations": _registrations_waiting(request, today),
            "latest_week": latest,
            "previous_week": before,
            "fell": _partners_that_fell(request, latest, before),
            "outside": _capped(
                accounts_listed(request.user, outside, today=today), _account_list_url(outside)
            ),
            "white_space": _white_space(latest),
            "review_actions": open_actions_for(request),
        },
    )


def rep_home(request: HttpRequest) -> HttpResponse:
    """A rep's accounts today: how many, how each channel covers them, and what changed in
    the last seven days (assignments that started or ended, accounts won)."""
    today = timezone.localdate()
    rep = rep_for_user(request.user)
    context: dict[str, object] = {"today": today, "rep": rep}
    if rep is None:
        return render(request, "analytics/rep_home.html", context)
    mine = AccountListFilter(rep=rep.pk)
    accounts = accounts_listed(request.user, mine, today=today)
    since = today - timedelta(days=RECENT_DAYS - 1)
    assignments = CoverageAssignment.objects.filter(
        account__in=accounts.values("pk")
    ).select_related("account", "rep", "partner")
    by_kind = dict(
        assignments.filter(active_coverage_q(today))
        .values("kind")
        .annotate(n=Count("account", distinct=True))
        .values_list("kind", "n")
    )
    context.update(
        {
            "accounts": _capped(accounts, _account_list_url(mine)),
            "customers": accounts.filter(converted_on__lte=today).count(),
            "kinds": [
                {"kind": kind, "label": label, "count": by_kind.get(kind, 0)}
                for kind, label in ChannelKind.choices
            ],
            "since": since,
            "started": assignments.filter(
                kind=ChannelKind.DIRECT, rep=rep, start_date__gte=since, start_date__lte=today
            ).order_by("-start_date")[:20],
            "ended": CoverageAssignment.objects.filter(
                kind=ChannelKind.DIRECT, rep=rep, end_date__gte=since, end_date__lt=today
            )
            .select_related("account")
            .order_by("-end_date")[:20],
            "others": assignments.exclude(kind=ChannelKind.DIRECT)
            .filter(start_date__gte=since, start_date__lte=today)
            .order_by("-start_date")[:20],
            "won": accounts.filter(converted_on__gte=since, converted_on__lte=today).order_by(
                "-converted_on"
            )[:20],
        }
    )
    return render(request, "analytics/rep_home.html", context)


@role_required(Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP)
def workspace_home(request: HttpRequest) -> HttpResponse:
    """Each internal role's own home at one address."""
    if role_of(request.user) == Role.SALES_REP:
        return rep_home(request)
    return manager_home(request)
