"""Who may see which accounts, reps and coverage on the direct side."""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from channels.models import CoverageAssignment, Opportunity, OpportunitySubStage, SalesRep
from channels.rules import COVERAGE_RUNNING
from crm.models import Account, ChannelKind
from crm.roles import RequestUser, Role, role_of


def rep_for_user(user: RequestUser) -> SalesRep | None:
    if not user.is_authenticated or role_of(user) != Role.SALES_REP:
        return None
    return SalesRep.objects.filter(user=user).first()


def active_coverage_q(day: date, prefix: str = "") -> Q:
    """Coverage running on `day` (docs/metrics.md rule 3a: the dates only)."""
    return COVERAGE_RUNNING.q(day, prefix)


def accounts_of_rep(rep: SalesRep) -> QuerySet[Account]:
    """Accounts the rep has ever been assigned (current and past), without duplicates."""
    assigned = CoverageAssignment.objects.filter(
        account=OuterRef("pk"), kind=ChannelKind.DIRECT, rep=rep
    )
    return Account.objects.filter(Exists(assigned))


def internal_accounts_visible_to(user: RequestUser) -> QuerySet[Account]:
    """Accounts an internal user may see: all for managers and executives, their own for reps."""
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE}:
        return Account.objects.all()
    if role == Role.SALES_REP:
        rep = rep_for_user(user)
        return accounts_of_rep(rep) if rep else Account.objects.none()
    return Account.objects.none()


def reps_visible_to(user: RequestUser) -> QuerySet[SalesRep]:
    if role_of(user) in {Role.SALES_MANAGER, Role.EXECUTIVE, Role.SALES_REP}:
        return SalesRep.objects.all()
    return SalesRep.objects.none()


def coverage_visible_to(user: RequestUser) -> QuerySet[CoverageAssignment]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE}:
        return CoverageAssignment.objects.all()
    if role == Role.SALES_REP:
        return CoverageAssignment.objects.filter(account__in=internal_accounts_visible_to(user))
    return CoverageAssignment.objects.none()


def internal_opportunities_visible_to(user: RequestUser) -> QuerySet[Opportunity]:
    """Opportunities an internal user may see: all for managers and executives; for a rep, the
    deals they own and the deals on the accounts they have been assigned."""
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE}:
        return Opportunity.objects.all()
    if role == Role.SALES_REP:
        rep = rep_for_user(user)
        if rep is None:
            return Opportunity.objects.none()
        return Opportunity.objects.filter(Q(rep=rep) | Q(account__in=accounts_of_rep(rep)))
    return Opportunity.objects.none()


def sub_stages_all() -> QuerySet[OpportunitySubStage]:
    """The open pipeline's steps, in board order (the same for everyone)."""
    return OpportunitySubStage.objects.order_by("position", "code")
