"""Queueing a Celery task by its registered name (`@shared_task(name=...)`), so that a service
never imports the task module that wraps it: tasks import services, services enqueue by name,
and no import runs the other way.

Call it after the commit (`transaction.on_commit(lambda: task_enqueue(...))`), so the task sees
what the request wrote. Tasks run in the calling process when the settings say so
(`CELERY_TASK_ALWAYS_EAGER`: `make demo` and the tests without Redis).
"""

from __future__ import annotations

from typing import TypedDict

from celery import current_app


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
    cannot be reached; each caller decides what waits for a flush job and what runs at once."""
    tasks = current_app.tasks
    if name not in tasks:
        # A web process has imported no task module yet: load every app's (autodiscovery).
        current_app.loader.import_default_modules()
    tasks[name].delay(*args)
