"""The workspace home each internal role starts the day with (`/workspace/`).

Sales managers and executives: what falls due, what waits for an answer, which partners fell
this week, coverage that does not count and the largest white space. Sales reps: their own
accounts' coverage and what changed in it this week. Every count links to the list that shows
exactly what it counts; every read goes through the asking user's selectors. It lives in the top
layer because it reads the weekly snapshots beside the live records.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from analytics.models import MetricsRun, PartnerSnapshot, RunStatus, SegmentSnapshot
from analytics.programme_views import open_actions_for
from channels.models import CoverageAssignment
from channels.selectors import rep_for_user
from crm.models import ChannelKind, Region, SizeBand, Vertical
from crm.pagination import capped_count
from crm.roles import Role, role_of, role_required
from crm.selectors import AccountFilter
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


def _account_list_url(account_filter: AccountListFilter) -> str:
    return reverse("partners:account_list") + "?" + urlencode(account_filter.query())


def _due(request: HttpRequest, today: date) -> list[dict[str, Any]]:
    """Per window of 30, 60 and 90 days: agreements ending, and notice deadlines falling."""
    rows = []
    for days in DUE_WINDOWS:
        row: dict[str, Any] = {"days": days}
        for by in ("end", "notice"):
            row[by] = {
                "count": len(agreements_due(request.user, by=by, days=days, today=today)),
                "url": reverse("partners:renewals_due")
                + "?"
                + urlencode({"by": by, "within": days}),
            }
        rows.append(row)
    return rows


def _waiting(request: HttpRequest, now: Any) -> dict[str, Any]:
    waiting = feedback_awaiting_answer(request.user).select_related("partner")
    oldest = [
        {"feedback": entry, "age_days": (now - entry.created_at).days}
        for entry in waiting[:WAITING_SHOWN]
    ]
    query = urlencode({"status": "open", "waiting": "answer", "sort": "created_at"})
    return {
        "count": waiting.count(),
        "oldest": oldest,
        "url": reverse("partners:feedback_list") + "?" + query,
    }


def _latest_final_weeks() -> tuple[Any, Any]:
    """The latest two succeeded final runs' (week, as_of), newest first (None when missing)."""
    runs = list(
        MetricsRun.objects.filter(status=RunStatus.SUCCEEDED, final=True)
        .order_by("-week")
        .values_list("week", "as_of")
        .distinct()[:2]
    )
    return (runs[0] if runs else None), (runs[1] if len(runs) > 1 else None)


def _partners_that_fell(request: HttpRequest, latest: Any, before: Any) -> list[dict[str, Any]]:
    """Partners whose counted coverage or 90-day satisfaction fell from the week before to
    the latest closed week, from their snapshots; largest coverage fall first."""
    if latest is None or before is None:
        return []
    visible = partners_visible_to(request.user).values("pk")
    snapshots = PartnerSnapshot.objects.filter(week__in=[latest[0], before[0]], partner__in=visible)
    by_partner: dict[int, dict[str, PartnerSnapshot]] = {}
    for snapshot in snapshots:
        by_partner.setdefault(snapshot.partner_id, {})[snapshot.week] = snapshot
    fell = []
    for weeks in by_partner.values():
        now, then = weeks.get(latest[0]), weeks.get(before[0])
        if now is None or then is None:
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


def _white_space(latest: Any) -> list[dict[str, Any]]:
    """The latest closed week's largest white-space segments, each linking to the account
    list on that week's as-of date (the accounts the week counted)."""
    if latest is None:
        return []
    week, as_of = latest
    rows = list(
        SegmentSnapshot.objects.filter(week=week, white_space__gt=0)
        .order_by("-white_space", "region", "vertical", "size_band")
        .values("region", "vertical", "size_band", "white_space", "accounts")[:WHITE_SPACE_SHOWN]
    )
    regions = {
        r.code: r.display_name for r in Region.objects.filter(code__in=[r["region"] for r in rows])
    }
    verticals = {
        v.code: v.display_name
        for v in Vertical.objects.filter(code__in=[r["vertical"] for r in rows])
    }
    size_bands = dict(SizeBand.choices)
    for row in rows:
        row["region_name"] = regions.get(row["region"], row["region"])
        row["vertical_name"] = verticals.get(row["vertical"], row["vertical"])
        row["size_band_name"] = size_bands.get(row["size_band"], row["size_band"])
        row["url"] = _account_list_url(
            AccountListFilter(
                segment=AccountFilter(
                    region=row["region"], vertical=row["vertical"], size_band=row["size_band"]
                ),
                coverage="none",
                as_of=as_of if as_of < timezone.localdate() else None,
            )
        )
    return rows


def _capped(rows: Any, url: str) -> dict[str, Any]:
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
    context: dict[str, Any] = {"today": today, "rep": rep}
    if rep is None:
        return render(request, "analytics/rep_home.html", context)
    mine = AccountListFilter(rep=rep.pk)
    accounts = accounts_listed(request.user, mine, today=today)
    since = today - timedelta(days=RECENT_DAYS - 1)
    assignments = CoverageAssignment.objects.filter(
        account__in=accounts.values("pk")
    ).select_related("account", "rep", "partner")
    by_kind = dict(
        assignments.filter(start_date__lte=today)
        .exclude(end_date__lt=today)
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
