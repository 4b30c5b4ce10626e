"""Authentication that also honours the partner organisation's state."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

from crm.roles import RequestUser, remember_role, role_flags
from partners.models import PartnerUser


class ActivePartnerBackend(ModelBackend):
    """Django's model backend, refusing portal users whose partner has been deactivated.

    ModelBackend.get_user applies the same check on every request, so deactivating a
    partner also ends its users' open sessions.
    """

    def user_can_authenticate(self, user: RequestUser | None) -> bool:
        if not super().user_can_authenticate(user):
            return False
        membership: PartnerUser | None = getattr(user, "partner_membership", None)
        return membership is None or membership.partner.is_active

    def get_user(self, user_id: int) -> User | None:
        """The signed-in user of a request, in one query: its row, its partner membership and
        partner (which the check above reads) and its role's groups (which every page reads
        through `crm.roles.role_of`), instead of one query for each."""
        users = User.objects.select_related("partner_membership__partner")
        try:
            user = users.annotate(**role_flags()).get(pk=user_id)
        except User.DoesNotExist:
            return None
        remember_role(user)
        return user if self.user_can_authenticate(user) else None
