"""Auth events into the audit log (receivers only record; no business rules here)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from crm.observability import audit


@receiver(user_logged_in)
def _logged_in(sender: type[User], request: HttpRequest, user: User, **kwargs: Any) -> None:
    audit("login", request=request, user=user)


@receiver(user_logged_out)
def _logged_out(sender: type[User], request: HttpRequest, user: User | None, **kwargs: Any) -> None:
    audit("logout", request=request, user=user)


@receiver(user_login_failed)
def _login_failed(
    sender: str, credentials: dict[str, object], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the username: credentials also hold the password, which is never stored.
    audit("login_failed", request=request, username=str(credentials.get("username", ""))[:150])


@receiver(user_locked_out)
def _locked_out(
    sender: str, request: HttpRequest | None, username: str | None = None, **kwargs: Any
) -> None:
    audit("locked_out", request=request, username=username or "")
