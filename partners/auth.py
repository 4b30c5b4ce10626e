"""Authentication that also honours the partner organisation's state."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

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
