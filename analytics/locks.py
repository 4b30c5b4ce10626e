"""A named lock that expires: Redis when `settings.REDIS_URL` is set, a database row otherwise.

Either way a holder that dies stops blocking others once its time-to-live has passed, and a
holder releases only its own lock (a token guards against releasing a lock taken over after
expiry).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.models import MetricsLock


class LockBusy(Exception):
    """Another holder has the lock and it has not expired."""


@contextmanager
def named_lock(name: str, *, ttl_seconds: int) -> Iterator[None]:
    """Hold the lock `name` for the body of the `with` block, at most `ttl_seconds`.

    Raises LockBusy at once (no waiting) when another live holder has it.
    """
    if getattr(settings, "REDIS_URL", None):
        with _redis_lock(name, ttl_seconds=ttl_seconds):
            yield
    else:
        with _database_lock(name, ttl_seconds=ttl_seconds):
            yield


@contextmanager
def _redis_lock(name: str, *, ttl_seconds: int) -> Iterator[None]:
    # Only reached with REDIS_URL set (see the caller).
    client = redis.Redis.from_url(
        settings.REDIS_URL or "", socket_connect_timeout=2, socket_timeout=5
    )
    lock = client.lock(f"crm:lock:{name}", timeout=ttl_seconds, blocking=False)
    if not lock.acquire():
        raise LockBusy(f"{name} is held by another run")
    try:
        yield
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            # Expired and possibly taken over: the new holder's lock is not ours to release.
            pass


@contextmanager
def _database_lock(name: str, *, ttl_seconds: int) -> Iterator[None]:
    token = uuid.uuid4().hex
    now = timezone.now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    with transaction.atomic():
        taken_over = MetricsLock.objects.filter(name=name, expires_at__lte=now).update(
            token=token, expires_at=expires_at, updated_at=now
        )
        if not taken_over:
            try:
                with transaction.atomic():
                    MetricsLock.objects.create(name=name, token=token, expires_at=expires_at)
            except IntegrityError:
                raise LockBusy(f"{name} is held by another run") from None
    try:
        yield
    finally:
        MetricsLock.objects.filter(name=name, token=token).delete()
