"""Celery tasks of coverage and opportunities: thin wrappers over channels.services."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from channels import services


@shared_task(
    name="channels.change_logs_prune",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    soft_time_limit=5 * 60,
    time_limit=6 * 60,
)
def change_logs_prune() -> int:
    return services.change_logs_prune()
