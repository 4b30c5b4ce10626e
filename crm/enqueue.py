"""Queueing a Celery task by its registered name (`@shared_task(name=...)`), so that a service
never imports the task module that wraps it: tasks import services, services enqueue by name,
and no import runs the other way.

Call it after the commit (`transaction.on_commit(lambda: task_enqueue(...))`), so the task sees
what the request wrote. Tasks run in the calling process when the settings say so
(`CELERY_TASK_ALWAYS_EAGER`: `make demo` and the tests without Redis).

A request never waits on a dead broker for long. Queueing touches the broker only: no caller
reads a queued task's result, so none is stored and the result store (a second Redis connection,
with retries of its own) is not consulted. One failed publish (the broker's connect timeout and
one retry, crm/settings.py) marks the broker down for `BROKER_DOWN_SECONDS`; until then queueing
fails at once, without a connection attempt, and each caller's fallback (a flush job, or running
the work in place) takes over.
"""

from __future__ import annotations

import logging
import time
from typing import TypedDict

from celery import current_app
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# After a failed publish, queueing fails at once for this long in this process.
BROKER_DOWN_SECONDS = 5.0


def broker_down_for() -> float:
    """Seconds until queueing tries the broker again (0 when it is not marked down)."""
    return max(0.0, _broker_down_until - time.monotonic())


class BrokerUnavailable(OperationalError):
    """The broker failed a moment ago; the task was not queued."""


_broker_down_until = 0.0


class TaskOptions(TypedDict, total=False):
    """Options several tasks of a module share (`@shared_task(**OPTIONS)`), checked against
    `shared_task`'s own parameters."""

    acks_late: bool
    reject_on_worker_lost: bool
    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int
    soft_time_limit: int
    time_limit: int


def task_enqueue(name: str, *args: object) -> None:
    """Queue the task registered as `name` with `args`. Raises what the broker raises when it
    cannot be reached (`BrokerUnavailable` while it is marked down); each caller decides what
    waits for a flush job and what runs at once."""
    global _broker_down_until
    tasks = current_app.tasks
    if name not in tasks:
        # A web process has imported no task module yet: load every app's (autodiscovery).
        current_app.loader.import_default_modules()
    task = tasks[name]
    eager = task.app.conf.task_always_eager
    if not eager and time.monotonic() < _broker_down_until:
        raise BrokerUnavailable(f"the broker failed less than {BROKER_DOWN_SECONDS:.0f} s ago")
    try:
        task.apply_async(args, ignore_result=True)
    except (OperationalError, OSError):
        if not eager:
            _broker_down_until = time.monotonic() + BROKER_DOWN_SECONDS
            logger.warning(
                "broker unavailable: queueing fails at once for %.0f s", BROKER_DOWN_SECONDS
            )
        raise
