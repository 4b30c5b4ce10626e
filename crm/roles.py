"""Roles and the per-user access rules every view, export and API call relies on.

A role is a Django group. A user normally holds one; when several are held, the most
trusted internal role wins (superusers count as sales managers).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase


class Role(StrEnum):
    SALES_MANAGER = "sales_manager"
    SALES_REP = "sales_rep"
    EXECUTIVE = "executive"
    PARTNER_USER = "partner_user"


INTERNAL_ROLES = frozenset({Role.SALES_MANAGER, Role.SALES_REP, Role.EXECUTIVE})

# Where each role lands after login (URL names; the pages live in the apps above this one).
HOME_URL_NAME = {
    Role.SALES_MANAGER: "workspace:home",
    Role.SALES_REP: "workspace:home",
    Role.EXECUTIVE: "analytics:dashboard",
    Role.PARTNER_USER: "portal:home",
}

_PRECEDENCE = [Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP, Role.PARTNER_USER]

# Whoever a request comes from: a signed-in user or the anonymous one.
RequestUser = User | AnonymousUser


def ensure_role_groups() -> None:
    """Create the four role groups if they are missing (idempotent)."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def role_of(user: RequestUser | None) -> Role | None:
    """The user's role, or None for anonymous users and users with no role."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.SALES_MANAGER
    cached = getattr(user, "_crm_role", False)
    if cached is not False:
        return cast(Role | None, cached)
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in _PRECEDENCE if r.value in names), None)
    user._crm_role = role  # type: ignore[attr-defined]  # cached on this request's user object
    return role


def is_internal(user: RequestUser | None) -> bool:
    return role_of(user) in INTERNAL_ROLES


def can_manage(user: RequestUser | None) -> bool:
    """Sales managers read and edit everything internal."""
    return role_of(user) == Role.SALES_MANAGER


def is_partner_user(user: RequestUser | None) -> bool:
    return role_of(user) == Role.PARTNER_USER


class AuthenticatedHttpRequest(HttpRequest):
    """The request a view behind `role_required` receives: its user is signed in. For the type
    checker only; at run time it is the plain HttpRequest."""

    user: User


def signed_in_user(user: RequestUser) -> User:
    """The user of a request that a view's role or permission check has let through: signed in,
    since the anonymous user never gets that far (PermissionDenied if it did)."""
    if not user.is_authenticated:
        raise PermissionDenied
    return user


def role_required(
    *roles: Role,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Login required, then one of `roles`; anyone else gets a 404 so nothing is revealed."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if role_of(request.user) not in roles:
                raise Http404("No such page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


internal_required = role_required(*INTERNAL_ROLES)
manager_required = role_required(Role.SALES_MANAGER)
