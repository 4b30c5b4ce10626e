"""Celery tasks for partners: thin wrappers over `partners.services`."""

from __future__ import annotations

from datetime import date

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from crm.enqueue import TaskOptions
from partners import imports, webhooks
from partners.coverage_kinds import coverage_kinds_refresh_stale
from partners.registration_services import registrations_expire, registrations_warn_expiring
from partners.services import agreements_expire
from partners.survey_services import survey_wave_open_if_due, surveys_send_due

# The survey and coverage-kinds jobs: run once whatever the worker does (acks_late), retried on a
# lost database connection, and allowed half an hour over a whole market.
LONG_RETRIED: TaskOptions = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 30,
    "max_retries": 5,
    "soft_time_limit": 30 * 60,
    "time_limit": 35 * 60,
}


@shared_task(
    name="partners.agreements_expire",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    max_retries=5,
    soft_time_limit=10 * 60,
    time_limit=15 * 60,
)
def agreements_expire_task(today: str | None = None) -> int:
    """Mark active agreements whose end date has passed as expired; returns how many.

    `today` is an ISO date (defaults to the local date when the task runs); re-running is
    harmless, as already expired agreements are left alone.
    """
    day = date.fromisoformat(today) if today else timezone.localdate()
    return agreements_expire(today=day)


@shared_task(
    name="partners.import_job_validate", acks_late=True, soft_time_limit=30 * 60, time_limit=35 * 60
)
def import_job_validate(job_id: int) -> str:
    return imports.import_job_validate(job_id=job_id).status


@shared_task(
    name="partners.import_job_apply", acks_late=True, soft_time_limit=30 * 60, time_limit=35 * 60
)
def import_job_apply(job_id: int) -> str:
    return imports.import_job_apply(job_id=job_id).status


@shared_task(
    name="partners.registrations_daily",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    max_retries=5,
    soft_time_limit=10 * 60,
    time_limit=15 * 60,
)
def registrations_daily(today: str | None = None) -> dict[str, int]:
    """Expire deal registrations past their protection and warn partners of protection ending
    soon. `today` is an ISO date (default: the local date); re-running is harmless."""
    day = date.fromisoformat(today) if today else timezone.localdate()
    return {
        "expired": registrations_expire(today=day),
        "warned": registrations_warn_expiring(today=day),
    }


@shared_task(
    bind=True,
    name="partners.webhook_deliver",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=10,
    max_retries=webhooks.MAX_ATTEMPTS,
    soft_time_limit=60,
    time_limit=90,
)
def webhook_deliver(self: Task[[int], bool], delivery_id: int) -> bool:
    """One attempt at a webhook delivery; a failed one is retried after its backoff. Run
    eagerly (no broker), the next attempt waits for the flush instead of blocking a request."""
    outcome = webhooks.webhook_deliver(delivery_id=delivery_id)
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in, max_retries=webhooks.MAX_ATTEMPTS)
    return outcome.delivered


@shared_task(
    name="partners.webhook_deliveries_flush",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def webhook_deliveries_flush() -> int:
    """Queue the webhook deliveries whose next attempt is due."""
    return webhooks.webhook_deliveries_flush()


@shared_task(
    name="partners.surveys_daily",
    **LONG_RETRIED,
)
def surveys_daily(today: str | None = None) -> dict[str, int]:
    """Open the survey waves due (their schedule's month and day) and send the reminders due.
    `today` is an ISO date (default: the local date); re-running opens and reminds nothing
    twice."""
    day = date.fromisoformat(today) if today else timezone.localdate()
    opened = surveys_send_due(today=day)
    return {"waves": len(opened), "invitations": sum(w.invitations for w in opened)}


@shared_task(
    name="partners.survey_wave_open",
    **LONG_RETRIED,
)
def survey_wave_open_task(survey_id: int, opens_on: str) -> int:
    """Open and send a wave of a survey (a manager's "send now"); returns the invitations
    sent (0 for a day already taken)."""
    return survey_wave_open_if_due(survey_id=survey_id, opens_on=date.fromisoformat(opens_on))


@shared_task(
    name="partners.coverage_kinds_refresh",
    **LONG_RETRIED,
)
def coverage_kinds_refresh_task() -> int:
    """Store the coverage kinds of every account whose stored kinds are not known today;
    returns how many were recomputed (re-running is harmless)."""
    return coverage_kinds_refresh_stale()
