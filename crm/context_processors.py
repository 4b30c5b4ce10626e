from __future__ import annotations

from django.http import HttpRequest

from crm.roles import Role, role_of


def navigation(request: HttpRequest) -> dict[str, str | bool]:
    """The signed-in user's role, so the base layout can show the navigation for it."""
    role = role_of(getattr(request, "user", None))
    return {
        "user_role": role.value if role else "",
        "is_manager": role == Role.SALES_MANAGER,
        "is_internal_user": role in {Role.SALES_MANAGER, Role.SALES_REP, Role.EXECUTIVE},
        "is_partner_user": role == Role.PARTNER_USER,
    }
