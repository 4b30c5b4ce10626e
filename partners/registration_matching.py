"""Which account a deal registration is about, found without showing the partner our market.

A registration names a company; it is matched to an account by the partner's own account id
(only among the accounts assigned to that partner), by website domain (through earlier
registrations tied to an account: the market list carries no websites) and by folded name
(`crm.names`). What matched, and why, is for the manager; the partner learns nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet

from channels.models import CoverageAssignment
from crm.models import Account
from partners.models import Partner
from partners.registration_models import DealRegistration, MatchReason
from partners.registration_text import same_company

CANDIDATE_LIMIT = 10


@dataclass(frozen=True)
class AccountCandidate:
    account: Account
    reasons: tuple[str, ...]

    @property
    def reason_text(self) -> str:
        """Why it matched, in the reader's language."""
        return same_company(self.reasons)


@dataclass
class MatchResult:
    """The account the registration is about (None: a prospect) and every account that
    matched, with why."""

    account: Account | None = None
    reason: str = MatchReason.NONE
    candidates: list[AccountCandidate] = field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        return self.account is None and len(self.candidates) > 1


def accounts_assigned_to(partner: Partner) -> QuerySet[Account]:
    """The accounts ever assigned to `partner`: the only ones it may name by id."""
    assigned = CoverageAssignment.objects.filter(account=OuterRef("pk"), partner=partner)
    return Account.objects.filter(Exists(assigned))


def registration_match(
    *,
    partner: Partner,
    name_key: str,
    domain: str,
    region_id: int | None,
    own_account: Account | None = None,
    exclude_pk: int | None = None,
) -> MatchResult:
    """Match a registration's company to an account.

    `own_account` (one of the partner's assigned accounts it named by id) wins outright. Else
    the accounts of earlier registrations with the same domain, then accounts with the same
    name key; a single one is the match, and among several the only one in the registration's
    region. Several left over: no match, and every candidate listed for the manager.
    """
    if own_account is not None:
        return MatchResult(
            account=own_account,
            reason=MatchReason.EXTERNAL_ID,
            candidates=[AccountCandidate(own_account, (MatchReason.EXTERNAL_ID,))],
        )
    reasons: dict[int, list[str]] = {}
    accounts: dict[int, Account] = {}
    if domain:
        registered = DealRegistration.objects.filter(domain=domain, account__isnull=False)
        if exclude_pk is not None:
            registered = registered.exclude(pk=exclude_pk)
        by_domain = registered.values_list("account_id", flat=True).distinct()[:CANDIDATE_LIMIT]
        for account in Account.objects.filter(pk__in=list(by_domain)).select_related(
            "region", "vertical"
        ):
            accounts[account.pk] = account
            reasons[account.pk] = [MatchReason.DOMAIN]
    if name_key:
        for account in Account.objects.filter(name_key=name_key).select_related(
            "region", "vertical"
        )[:CANDIDATE_LIMIT]:
            accounts.setdefault(account.pk, account)
            reasons.setdefault(account.pk, []).append(MatchReason.NAME)
    candidates = [AccountCandidate(accounts[pk], tuple(why)) for pk, why in reasons.items()]
    # The strongest evidence first: both keys, then the domain, then the name alone.
    candidates.sort(
        key=lambda c: (-len(c.reasons), MatchReason.DOMAIN not in c.reasons, c.account.pk)
    )
    if not candidates:
        return MatchResult()
    best = candidates[0]
    strongest = [c for c in candidates if c.reasons == best.reasons]
    if len(strongest) > 1 and region_id is not None:
        strongest = [c for c in strongest if c.account.region_id == region_id] or strongest
    if len(strongest) == 1:
        chosen = strongest[0]
        reason = MatchReason.DOMAIN if MatchReason.DOMAIN in chosen.reasons else MatchReason.NAME
        return MatchResult(account=chosen.account, reason=reason, candidates=candidates)
    return MatchResult(candidates=candidates)


def similar_registrations(registration: DealRegistration) -> QuerySet[DealRegistration]:
    """Other registrations of the same company: the same account, folded name or domain."""
    same = Q()
    if registration.account_id:
        same |= Q(account_id=registration.account_id)
    if registration.name_key:
        same |= Q(name_key=registration.name_key)
    if registration.domain:
        same |= Q(domain=registration.domain)
    if not same:
        return DealRegistration.objects.none()
    return (
        DealRegistration.objects.filter(same)
        .exclude(pk=registration.pk)
        .select_related("partner")
        .order_by("-submitted_at", "-id")
    )


def similarity_keys(registration: DealRegistration, other: DealRegistration) -> list[str]:
    """Why `other` looks like the same company as `registration`: "account", "domain",
    "name" (`registration_text.SAME`)."""
    keys = []
    if registration.account_id and other.account_id == registration.account_id:
        keys.append("account")
    if registration.domain and other.domain == registration.domain:
        keys.append("domain")
    if registration.name_key and other.name_key == registration.name_key:
        keys.append("name")
    return keys


def similarity_reasons(registration: DealRegistration, other: DealRegistration) -> str:
    """Why `other` looks like the same company as `registration`, in the reader's words."""
    return same_company(similarity_keys(registration, other))
