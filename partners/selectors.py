"""Every read of partner data goes through here, scoped to the user who asks.

Partner users see their own organisation only; everything else is as if it did not exist.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from channels.models import CoverageAssignment
from crm.models import Account
from crm.roles import RequestUser, Role, role_of
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    Partner,
    PartnerKind,
    PartnerUser,
)


def partner_of_user(user: RequestUser) -> Partner | None:
    """The active partner a partner user belongs to, or None."""
    if role_of(user) != Role.PARTNER_USER:
        return None
    membership: PartnerUser | None = getattr(user, "partner_membership", None)
    if membership is None or not membership.partner.is_active:
        return None
    return membership.partner


def partners_visible_to(user: RequestUser, *, kind: str | None = None) -> QuerySet[Partner]:
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


def agreements_visible_to(user: RequestUser) -> QuerySet[Agreement]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        return Agreement.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        # Partners never see drafts being prepared for them.
        return Agreement.objects.filter(partner=own).exclude(status="draft")
    return Agreement.objects.none()


def feedback_visible_to(user: RequestUser) -> QuerySet[Feedback]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        return Feedback.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return Feedback.objects.filter(partner=own)
    return Feedback.objects.none()


def agreements_in_force_q(day: date, prefix: str = "") -> Q:
    """DESIGN.md rule 2 as a filter: signed by `day`, within the term, not terminated before."""
    p = prefix
    return (
        Q(**{f"{p}signed_on__isnull": False, f"{p}signed_on__lte": day})
        & Q(**{f"{p}start_date__lte": day, f"{p}end_date__gte": day})
        & (Q(**{f"{p}terminated_on__isnull": True}) | Q(**{f"{p}terminated_on__gte": day}))
        & ~Q(**{f"{p}status": AgreementStatus.DRAFT})
    )


def partner_granted_segments_q(*, partner: Partner, day: date) -> Q | None:
    """A filter on accounts matching the region and vertical some agreement of `partner` in
    force on `day` grants (empty lists grant all); None when no agreement is in force."""
    agreements = Agreement.objects.filter(
        agreements_in_force_q(day), partner=partner
    ).prefetch_related("regions", "verticals")
    granted: Q | None = None
    for agreement in agreements:
        regions = [r.pk for r in agreement.regions.all()]
        verticals = [v.pk for v in agreement.verticals.all()]
        clause = Q()
        if regions:
            clause &= Q(region_id__in=regions)
        if verticals:
            clause &= Q(vertical_id__in=verticals)
        granted = clause if granted is None else granted | clause
    return granted


def accounts_outside_agreements(
    *, partner: Partner, accounts: QuerySet[Account], day: date
) -> QuerySet[Account]:
    """The accounts whose coverage by `partner` would not count on `day`: no agreement of the
    partner in force on that day grants their region and vertical."""
    granted = partner_granted_segments_q(partner=partner, day=day)
    if granted is None:
        return accounts
    return accounts.exclude(granted)


def portal_accounts_for(user: RequestUser) -> QuerySet[Account]:
    """Accounts assigned to the partner user's own organisation (any time), nothing else."""
    own = partner_of_user(user)
    if own is None:
        return Account.objects.none()
    assigned = CoverageAssignment.objects.filter(account=OuterRef("pk"), partner=own)
    return Account.objects.filter(Exists(assigned))


def accounts_visible_to(user: RequestUser) -> QuerySet[Account]:
    """Accounts anyone may see: internal users as `internal_accounts_visible_to` allows,
    partner users the accounts assigned to their organisation, nobody else any."""
    from channels.selectors import internal_accounts_visible_to

    if role_of(user) == Role.PARTNER_USER:
        return portal_accounts_for(user)
    return internal_accounts_visible_to(user)
