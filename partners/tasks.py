"""Celery tasks for partners: thin wrappers over `partners.services`."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from partners import imports
from partners.services import agreements_expire


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
