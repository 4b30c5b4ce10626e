"""Who may call which API endpoint, by role (crm.roles), before any object is looked up.

Which objects a caller sees is decided by the selectors each view's queryset comes from; these
classes only decide whether the endpoint exists for the caller. An endpoint a role may never
reach answers 404, like the HTML views (`role_required`), so nothing is revealed; a write on an
endpoint the caller may read answers 403.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from crm.roles import INTERNAL_ROLES, Role, role_of


class RolesMayReach(BasePermission):
    """The endpoint exists for the roles in `reach` (404 for any other signed-in user); unsafe
    methods additionally need one of the roles in `write` (403 otherwise)."""

    reach: frozenset[Role] = frozenset(INTERNAL_ROLES)
    write: frozenset[Role] = frozenset({Role.SALES_MANAGER})

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        role = role_of(request.user)
        if role not in self.reach:
            raise NotFound()
        if request.method in SAFE_METHODS:
            return True
        if role in self.write or role in getattr(view, "extra_writers", frozenset()):
            return True
        _refuse_unseen_object(view)
        return False


def _refuse_unseen_object(view: APIView) -> None:
    """A refused write aimed at one object: 404 unless the caller can see that object, so a
    403 never confirms that another partner's id exists."""
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
    value = getattr(view, "kwargs", {}).get(lookup)
    if value is None or not hasattr(view, "get_queryset"):
        return
    try:
        field = getattr(view, "lookup_field", "pk")
        visible = view.get_queryset().filter(**{field: value}).exists()
    except (TypeError, ValueError, OverflowError):
        visible = False
    if not visible:
        raise NotFound()


class InternalReadManagerWrite(RolesMayReach):
    """Internal users read; sales managers write; partner users find nothing here."""


class InternalAndPartnerReadManagerWrite(RolesMayReach):
    """Internal users and partner users read (their selectors scope what they see); sales
    managers write, plus whatever roles the view lists in `extra_writers`."""

    reach = frozenset({*INTERNAL_ROLES, Role.PARTNER_USER})


class LeadershipOnly(RolesMayReach):
    """Metrics: the dashboard's audience, sales managers and executives; read only."""

    reach = frozenset({Role.SALES_MANAGER, Role.EXECUTIVE})
    write: frozenset[Role] = frozenset()


class InternalOnlyDocs(BasePermission):
    """The schema and its viewers are for internal users; others get 404."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if role_of(request.user) not in INTERNAL_ROLES:
            raise NotFound()
        return True
