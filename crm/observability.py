"""The audit log of security events."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

from crm.models import AuditEvent
from crm.request_id import request_id_var
from crm.roles import RequestUser, Role, role_of

logger = logging.getLogger("crm.audit")


def client_address(request: HttpRequest | None) -> str | None:
    """The client's address as settings.TRUSTED_PROXY_COUNT promises: with N proxies in front,
    the address the outermost of them saw (the N-th entry of X-Forwarded-For from the right,
    each proxy appending the one it received from); with none, the connection's own address.
    The sign-in lockout, the audit log and the API throttles all count by it."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",")]
    candidate = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def audit(
    kind: str,
    *,
    request: HttpRequest | None = None,
    user: RequestUser | None = None,
    username: str = "",
) -> None:
    """Record a security event; never raises (an audit failure must not break the request)."""
    if isinstance(user, AnonymousUser):
        user = None
    membership = getattr(user, "partner_membership", None) if user is not None else None
    try:
        AuditEvent.objects.create(
            kind=kind,
            user=user,
            username=(username or (user.get_username() if user else ""))[:150],
            partner_id=getattr(membership, "partner_id", None),
            ip_address=client_address(request),
            path=(request.path if request is not None else "")[:500],
            request_id=request_id_var.get() if request is not None else "",
        )
    except Exception:  # noqa: BLE001 - logged below; the event still reaches the log stream
        logger.exception("audit: could not store %s event", kind)
    logger.info(
        "audit %s user=%s path=%s",
        kind,
        username or getattr(user, "pk", "-"),
        request.path if request is not None else "-",
    )


class AuditNotFoundMiddleware:
    """Audit permission denials (403) for everyone and 404s met by partner users, which is
    what probing another partner's ids looks like."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if response.status_code == 403 and getattr(user, "is_authenticated", False):
            audit("permission_denied", request=request, user=user)
        elif response.status_code == 404 and role_of(user) == Role.PARTNER_USER:
            audit("not_found", request=request, user=user)
        return response
