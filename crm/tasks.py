"""Celery tasks of the market core: thin wrappers over crm.services."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from crm import services


@shared_task(
    name="crm.outbound_email_send",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=10,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def outbound_email_send(email_id: int) -> bool:
    return services.outbound_email_send(email_id=email_id)


@shared_task(
    name="crm.outbound_emails_flush",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    soft_time_limit=5 * 60,
    time_limit=6 * 60,
)
def outbound_emails_flush() -> int:
    return services.outbound_emails_flush()


@shared_task(
    name="crm.password_reset_send",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=10,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def password_reset_send(request_id: int) -> int:
    return services.password_reset_send(request_id=request_id)


@shared_task(
    name="crm.housekeeping",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    soft_time_limit=10 * 60,
    time_limit=11 * 60,
)
def housekeeping() -> dict[str, int]:
    return services.housekeeping()
