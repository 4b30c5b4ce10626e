"""Every read of deal registrations and webhooks, scoped to the user who asks.

Sales managers and executives see every registration; a rep those of the accounts they have
been assigned; a partner user their own organisation's, and of those only the history meant for
partners. Webhooks are the sales managers' alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from channels.selectors import accounts_of_rep, rep_for_user
from crm.roles import RequestUser, Role, role_of
from partners.registration_models import (
    DealRegistration,
    DealRegistrationEvent,
    RegistrationStatus,
)
from partners.selectors import partner_of_user
from partners.webhook_models import WebhookDelivery, WebhookEndpoint


def registrations_visible_to(user: RequestUser) -> QuerySet[DealRegistration]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE}:
        return DealRegistration.objects.all()
    if role == Role.SALES_REP:
        rep = rep_for_user(user)
        if rep is None:
            return DealRegistration.objects.none()
        return DealRegistration.objects.filter(account__in=accounts_of_rep(rep))
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return DealRegistration.objects.filter(partner=own)
    return DealRegistration.objects.none()


def registration_events_visible_to(
    user: RequestUser, registration: DealRegistration
) -> QuerySet[DealRegistrationEvent]:
    """The registration's history: all of it for internal users, the partner's part for
    partner users (never which account was linked, nor why auto-approval held back)."""
    events = registration.events.select_related("by").order_by("created_at", "id")
    if role_of(user) == Role.PARTNER_USER:
        return events.filter(partner_visible=True)
    return events


def webhook_endpoints_visible_to(user: RequestUser) -> QuerySet[WebhookEndpoint]:
    if role_of(user) == Role.SALES_MANAGER:
        return WebhookEndpoint.objects.all()
    return WebhookEndpoint.objects.none()


def webhook_deliveries_visible_to(user: RequestUser) -> QuerySet[WebhookDelivery]:
    if role_of(user) == Role.SALES_MANAGER:
        return WebhookDelivery.objects.all()
    return WebhookDelivery.objects.none()


# Deadlines ---------------------------------------------------------------------------------------


def business_days_between(start: date, end: date) -> int:
    """Whole business days (Monday to Friday) from `start` to `end`: 0 on the same day, 1 from
    a Friday to the Monday after."""
    if end <= start:
        return 0
    return int(np.busday_count(start, end))


def decision_due_on(submitted_on: date) -> date:
    """The day a decision is due: REGISTRATION_DECISION_BUSINESS_DAYS business days after
    submission (a registration of a weekend counts from the Monday)."""
    days = settings.REGISTRATION_DECISION_BUSINESS_DAYS
    # A day-unit datetime64 (what a date becomes) converts to a datetime.date.
    due: date = np.busday_offset(submitted_on, days, roll="forward").astype(date)
    return due


def decision_deadlines(submitted_days: list[date], today: date) -> list[tuple[int, date]]:
    """(business days since submission, decision due day) for each submission day, computed
    for a whole page at once."""
    if not submitted_days:
        return []
    days = np.array(submitted_days, dtype="datetime64[D]")
    ages = np.busday_count(days, np.datetime64(today))
    due = np.busday_offset(days, settings.REGISTRATION_DECISION_BUSINESS_DAYS, roll="forward")
    return [(max(int(age), 0), day.astype(date)) for age, day in zip(ages, due, strict=True)]


@dataclass(frozen=True)
class DecisionClock:
    """A registration of the queue with its wait: business days since submission, the day its
    decision is due, and whether a submitted one is past it."""

    registration: DealRegistration
    age: int
    due_on: date
    overdue: bool


def decision_clocks(registrations: list[DealRegistration], today: date) -> list[DecisionClock]:
    """The decision clock of each registration on `today`, computed for a page at once."""
    deadlines = decision_deadlines(
        [timezone.localdate(r.submitted_at) for r in registrations], today
    )
    return [
        DecisionClock(
            registration=registration,
            age=age,
            due_on=due,
            overdue=registration.status == RegistrationStatus.SUBMITTED and due < today,
        )
        for registration, (age, due) in zip(registrations, deadlines, strict=True)
    ]


def due_by_before(last_due: date) -> date:
    """Registrations submitted before this day have their decision due on or before
    `last_due` (lists filter on it, so the database does the counting)."""
    day = last_due + timedelta(days=1)
    while decision_due_on(day - timedelta(days=1)) > last_due:
        day -= timedelta(days=1)
    return day


def overdue_before(today: date) -> date:
    """Registrations submitted before this day are overdue on `today`: their decision was due
    before it."""
    return due_by_before(today - timedelta(days=1))


def due_soon_before(today: date) -> date:
    """Registrations submitted before this day are overdue on `today` or due by the next
    business day (on a weekend, by the Monday)."""
    next_business_day = np.busday_offset(today, 1, roll="backward").astype(date)
    return due_by_before(next_business_day)


def registrations_awaiting_decision(user: RequestUser) -> QuerySet[DealRegistration]:
    """The submitted registrations `user` may see, oldest first."""
    return registrations_visible_to(user).filter(status=RegistrationStatus.SUBMITTED)


# Partner summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationSummary:
    by_status: dict[str, int]
    won: int
    decided_outcomes: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def present(self) -> list[tuple[str, int]]:
        """(status label, count) of the statuses that have registrations."""
        return [
            (RegistrationStatus(status).label.lower(), count)
            for status, count in self.by_status.items()
            if count
        ]

    @property
    def win_rate(self) -> float | None:
        """Won over the approved registrations that have ended (won, lost, expired, or
        withdrawn after approval); None before any has ended."""
        return self.won / self.decided_outcomes if self.decided_outcomes else None


def registration_summary(registrations: QuerySet[DealRegistration]) -> RegistrationSummary:
    counts = dict(
        registrations.order_by()
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    ended = registrations.filter(
        Q(status__in=[RegistrationStatus.WON, RegistrationStatus.LOST, RegistrationStatus.EXPIRED])
        | Q(status=RegistrationStatus.WITHDRAWN, protected_from__isnull=False)
    ).count()
    return RegistrationSummary(
        by_status={status: counts.get(status, 0) for status in RegistrationStatus.values},
        won=counts.get(RegistrationStatus.WON, 0),
        decided_outcomes=ended,
    )
