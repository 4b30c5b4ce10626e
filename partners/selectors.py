"""Every read of partner data goes through here, scoped to the user who asks.

Partner users see their own organisation only; everything else is as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from crm.roles import Role, role_of
from partners.models import Agreement, Feedback, Partner, PartnerKind


def partner_of_user(user: Any) -> Partner | None:
    """The active partner a partner user belongs to, or None."""
    if role_of(user) != Role.PARTNER_USER:
        return None
    membership = getattr(user, "partner_membership", None)
    if membership is None or not membership.partner.is_active:
        return None
    return membership.partner


def partners_visible_to(user: Any, *, kind: str | None = None) -> QuerySet[Partner]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        partners = Partner.objects.all()
    elif role == Role.PARTNER_USER and (own := partner_of_user(user)):
        partners = Partner.objects.filter(pk=own.pk)
    else:
        return Partner.objects.none()
    if kind in PartnerKind.values:
        partners = partners.filter(channel_kind=kind)
    return partners


def agreements_visible_to(user: Any) -> QuerySet[Agreement]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        return Agreement.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        # Partners never see drafts being prepared for them.
        return Agreement.objects.filter(partner=own).exclude(status="draft")
    return Agreement.objects.none()


def feedback_visible_to(user: Any) -> QuerySet[Feedback]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        return Feedback.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return Feedback.objects.filter(partner=own)
    return Feedback.objects.none()
