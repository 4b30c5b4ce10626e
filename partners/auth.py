"""Authentication that also honours the partner organisation's state."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

from crm.roles import RequestUser
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
        """The signed-in user of a request with its partner membership and partner, which the
        check above reads, in one query instead of three (Django's reads the user, then the
        membership and the partner one by one on every request)."""
        try:
            user = User.objects.select_related("partner_membership__partner").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
