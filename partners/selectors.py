"""Every read of partner data goes through here, scoped to the user who asks.

Partner users see their own organisation only; everything else is as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.lookups import GreaterThan, In

from channels.models import PARTNER_KINDS, CoverageAssignment, Opportunity
from channels.selectors import (
    active_coverage_q,
    internal_accounts_visible_to,
    internal_opportunities_visible_to,
    reps_visible_to,
)
from crm.models import CHANNEL_KIND_BITS, Account, ChannelKind, Region, Vertical
from crm.roles import RequestUser, Role, role_of
from crm.rules import COVERAGE_KINDS_KNOWN, in_market_q
from crm.selectors import AccountFilter, accounts_filtered
from crm.sql import by_index_lookups
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackReply,
    FeedbackStatus,
    Partner,
    PartnerKind,
    PartnerUser,
)
from partners.rules import AGREEMENT_IN_FORCE


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
    """Agreements in force on `day` (docs/metrics.md rule 2)."""
    return AGREEMENT_IN_FORCE.q(day, prefix)


def partner_granted_segments_q(*, partner: Partner, day: date) -> Q | None:
    """Rule 3b as a filter on accounts (docs/metrics.md): those whose region and vertical some
    agreement of `partner` in force on `day` grants (empty lists grant all); None when no
    agreement is in force. (The weekly run applies the same rule over arrays; docs/metrics.md
    says where.)"""
    agreements = Agreement.objects.filter(
        agreements_in_force_q(day), partner=partner
    ).prefetch_related("regions", "verticals")
    granted: Q | None = None
    for agreement in agreements:
        regions = [r.pk for r in agreement.regions.all()]
        verticals = [v.pk for v in agreement.verticals.all()]
        if not regions and not verticals:
            # Grants every account. (An empty Q would match nothing here: Django drops it
            # from `|` and from `exclude`.)
            return Q(pk__isnull=False)
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


def portal_accounts_count(user: RequestUser) -> int:
    """How many accounts `portal_accounts_for(user)` holds, counted from the partner's own
    coverage rows (an index-only scan of its assignments) instead of testing every account."""
    own = partner_of_user(user)
    if own is None:
        return 0
    return (
        CoverageAssignment.objects.filter(partner=own)
        .values("account_id")
        .distinct()
        .order_by()
        .count()
    )


def portal_accounts_outside_count(user: RequestUser, *, granted: Q) -> int:
    """How many accounts of `portal_accounts_for(user)` the filter `granted` (on accounts) leaves
    out, counted from the partner's own coverage rows in their index's order (by account), each
    account looked up by its key (`by_index_lookups`) instead of testing every account of the
    market. In that order the lookups walk the accounts' key in order: about half the database's
    time of looking them up in the order a hashed `IN` list hands them over."""
    own = partner_of_user(user)
    if own is None:
        return 0
    assigned = CoverageAssignment.objects.filter(partner=own).exclude(_on_account(granted))
    with by_index_lookups():
        counted = assigned.aggregate(outside=Count("account_id", distinct=True))
    return int(counted["outside"])


def _on_account(q: Q) -> Q:
    """`q`, a filter on accounts (lookups and nested filters), as a filter on the rows whose
    `account` they are."""
    children: list[Q | tuple[str, Any]] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(_on_account(child))
        else:
            lookup, value = cast(tuple[str, Any], child)
            children.append((f"account__{lookup}", value))
    return Q(*children, _connector=q.connector, _negated=q.negated)


def accounts_visible_to(user: RequestUser) -> QuerySet[Account]:
    """Accounts anyone may see: internal users as `internal_accounts_visible_to` allows,
    partner users the accounts assigned to their organisation, nobody else any."""
    if role_of(user) == Role.PARTNER_USER:
        return portal_accounts_for(user)
    return internal_accounts_visible_to(user)


def opportunities_visible_to(user: RequestUser) -> QuerySet[Opportunity]:
    """Opportunities anyone may see: internal users as `internal_opportunities_visible_to`
    allows, a partner user only the deals its own organisation sourced, nobody else any."""
    if role_of(user) == Role.PARTNER_USER:
        own = partner_of_user(user)
        return Opportunity.objects.filter(partner=own) if own else Opportunity.objects.none()
    return internal_opportunities_visible_to(user)


def _in_market_q(day: date) -> Q:
    """Rule 1 of docs/metrics.md on accounts: entered by `day` and not archived by then."""
    return in_market_q(day)


@dataclass(frozen=True)
class Grants:
    """The agreements in force on one day, each as (partner id, region ids, vertical ids) it
    grants, an empty list meaning all (rules 2 and 3 of docs/metrics.md)."""

    agreements: tuple[tuple[int, frozenset[int], frozenset[int]], ...]

    @classmethod
    def on(cls, day: date) -> Grants:
        """Read with three small queries."""
        partners = dict(
            Agreement.objects.filter(agreements_in_force_q(day)).values_list("pk", "partner_id")
        )
        regions: dict[int, set[int]] = {}
        verticals: dict[int, set[int]] = {}
        for links, ids, column in (
            (Agreement.regions.through.objects, regions, "region_id"),
            (Agreement.verticals.through.objects, verticals, "vertical_id"),
        ):
            rows = links.filter(agreement_id__in=list(partners)).values_list("agreement_id", column)
            for agreement_id, target in rows:
                ids.setdefault(agreement_id, set()).add(target)
        return cls(
            tuple(
                (partner, frozenset(regions.get(pk, ())), frozenset(verticals.get(pk, ())))
                for pk, partner in sorted(partners.items())
            )
        )

    def grant(self, *, partner: int | None, region: int, vertical: int) -> bool:
        """Whether some agreement of `partner` grants the region and vertical."""
        return any(
            owner == partner
            and (not regions or region in regions)
            and (not verticals or vertical in verticals)
            for owner, regions, verticals in self.agreements
        )

    def q(
        self,
        *,
        region: str | OuterRef,
        vertical: str | OuterRef,
        region_id: int | None,
        vertical_id: int | None,
    ) -> Q:
        """On coverage rows: their partner has an agreement here that grants the account's
        region and vertical, read from the fields named `region` and `vertical` (or, for a
        subquery of an account query, from the enclosing account: `OuterRef("region_id")`,
        which spares joining the accounts a second time).

        A plain expression the database checks per row, rather than a correlated subquery
        over agreements and their regions and verticals, which made PostgreSQL run a subplan
        per coverage row (eight times slower on a million accounts). When the list is already
        narrowed to one region (`region_id`) or vertical, agreements that do not grant it are
        left out and its test is dropped, which keeps the expression short."""
        everywhere: set[int] = set()
        clauses: dict[tuple[frozenset[int], frozenset[int]], set[int]] = {}
        for partner, regions, verticals in self.agreements:
            if region_id is not None:
                if regions and region_id not in regions:
                    continue
                regions = frozenset()
            if vertical_id is not None:
                if verticals and vertical_id not in verticals:
                    continue
                verticals = frozenset()
            if not (regions or verticals):
                everywhere.add(partner)
            else:
                clauses.setdefault((regions, verticals), set()).add(partner)
        granted = Q(partner_id__in=sorted(everywhere)) if everywhere else Q(pk__in=[])
        for (regions, verticals), partners in clauses.items():
            partners -= everywhere
            if not partners:
                continue
            clause = Q(partner_id__in=sorted(partners))
            if regions:
                clause &= _among(region, regions)
            if verticals:
                clause &= _among(vertical, verticals)
            granted |= clause
        return granted


def _among(field: str | OuterRef, ids: frozenset[int]) -> Q:
    if isinstance(field, str):
        return Q(**{f"{field}__in": sorted(ids)})
    return Q(In(field, sorted(ids)))


def coverage_counts(assignment: CoverageAssignment, account: Account, grants: Grants) -> bool:
    """Whether an active assignment counts as coverage (rule 3): direct and online always, a
    partner or distributor only under an agreement of its own in force for the account's
    region and vertical."""
    if assignment.kind not in PARTNER_KINDS:
        return True
    return grants.grant(
        partner=assignment.partner_id, region=account.region_id, vertical=account.vertical_id
    )


def _account_coverage(day: date) -> QuerySet[CoverageAssignment]:
    """Coverage rows of the enclosing account query that are active on `day` (dates only)."""
    return CoverageAssignment.objects.filter(active_coverage_q(day), account=OuterRef("pk"))


ACCOUNT_COVERAGE_CHOICES: tuple[str, ...] = ("none", "any", *ChannelKind.values, "outside")


@dataclass(frozen=True)
class AccountListFilter:
    """Everything that narrows the account list, as its URL (and the bulk-assign form, which
    must act on exactly the rows the list shows) carries it, read through
    `partners.filters.AccountListFilterSet`.

    - the segment and search filters (`crm.selectors.AccountFilter`);
    - `coverage`: "none" (white space: in the market, no coverage that counts), "any" or a
      channel kind (in the market and covered, counted as the metrics count it), or "outside"
      (assigned to a partner or distributor outside its agreements in force);
    - `partner` / `rep`: in the market and assigned to that partner or rep (with `coverage`,
      its own assignments are the ones tested);
    - `as_of`: the day all of it is evaluated on, today unless a past day is asked for (the
      dashboard links to its week's as-of date, so its counts and the list agree).
    """

    segment: AccountFilter = AccountFilter()
    coverage: str = ""
    partner: int | None = None
    rep: int | None = None
    as_of: date | None = None

    def day(self, today: date) -> date:
        return self.as_of or today

    def query(self) -> dict[str, str]:
        """The GET parameters of this filter, blanks left out."""
        values = {
            "q": self.segment.q,
            "region": self.segment.region,
            "vertical": self.segment.vertical,
            "size_band": self.segment.size_band,
            "coverage": self.coverage,
            "partner": str(self.partner or ""),
            "rep": str(self.rep or ""),
            "as_of": self.as_of.isoformat() if self.as_of else "",
        }
        return {key: value for key, value in values.items() if value}


def _code_id(model: type[Region] | type[Vertical], code: str) -> int | None:
    if not code:
        return None
    return model.objects.filter(code=code).values_list("pk", flat=True).first()


def accounts_listed(
    user: RequestUser,
    account_filter: AccountListFilter,
    *,
    today: date,
    accounts: QuerySet[Account] | None = None,
    grants: Grants | None = None,
) -> QuerySet[Account]:
    """The accounts the internal user's list shows for `account_filter`: the user's own
    accounts (`internal_accounts_visible_to`, or `accounts` when the caller has already scoped
    them to the user) narrowed by every filter, evaluated on `account_filter.day(today)`. A
    partner or rep the user may not see matches nothing. `grants`: `Grants.on` that day, when
    the caller has read them already (a page that also marks its rows' coverage)."""
    day = account_filter.day(today)
    if accounts is None:
        accounts = internal_accounts_visible_to(user)
    accounts = accounts_filtered(accounts, account_filter.segment)
    own = _account_coverage(day)
    if account_filter.partner is not None or account_filter.rep is not None:
        accounts = accounts.filter(_in_market_q(day))
        if account_filter.partner is not None:
            partner = partners_visible_to(user).filter(pk=account_filter.partner).first()
            own = own.filter(partner=partner) if partner else own.none()
        if account_filter.rep is not None:
            rep = reps_visible_to(user).filter(pk=account_filter.rep).first()
            own = own.filter(kind=ChannelKind.DIRECT, rep=rep) if rep else own.none()
        accounts = accounts.filter(Exists(own))
    coverage = account_filter.coverage
    if not coverage:
        return accounts
    region_id = _code_id(Region, account_filter.segment.region)
    vertical_id = _code_id(Vertical, account_filter.segment.vertical)
    if grants is None:
        grants = Grants.on(day)
    if coverage == "outside":
        granted = grants.q(
            region=OuterRef("region_id"),
            vertical=OuterRef("vertical_id"),
            region_id=region_id,
            vertical_id=vertical_id,
        )
        outside = own.filter(kind__in=PARTNER_KINDS).exclude(granted)
        return accounts.filter(_in_market_q(day), Exists(outside))
    # Narrowed to one owner, only its own assignments count: the stored kinds speak of all.
    one_owner = account_filter.partner is not None or account_filter.rep is not None
    return accounts.filter(
        _in_market_q(day),
        account_coverage_q(
            coverage=coverage,
            day=day,
            region_id=region_id,
            vertical_id=vertical_id,
            assignments=own if one_owner else None,
            stored=not one_owner,
            grants=grants,
        ),
    )


def account_coverage_q(
    *,
    coverage: str,
    day: date,
    region_id: int | None = None,
    vertical_id: int | None = None,
    assignments: QuerySet[CoverageAssignment] | None = None,
    stored: bool = True,
    grants: Grants | None = None,
) -> Q:
    """A filter on accounts by the coverage that counts for them on `day` (docs/metrics.md
    rule 3, not rule 1: combine it with the in-market filter): `coverage` "none" (not covered),
    "any" (covered by some kind) or a channel kind. Pass `region_id` / `vertical_id` when the
    accounts are already narrowed to one region or vertical (it shortens the grant test), and
    `assignments` (coverage rows of the enclosing account, `OuterRef("pk")`) to test only some
    owners' assignments.

    Reads each account's stored kinds (`partners.coverage_kinds`) where they are known on
    `day`, and tests the assignments of the other accounts, so the answer is the rule's either
    way; `stored=False` always tests the assignments. `grants`: `Grants.on(day)`, when read
    already."""
    own = assignments if assignments is not None else _account_coverage(day)
    granted = (grants if grants is not None else Grants.on(day)).q(
        region=OuterRef("region_id"),
        vertical=OuterRef("vertical_id"),
        region_id=region_id,
        vertical_id=vertical_id,
    )
    counted = own.filter(~Q(kind__in=PARTNER_KINDS) | (Q(kind__in=PARTNER_KINDS) & granted))
    tested: Q
    if coverage == "none":
        tested = Q(~Exists(counted))
        held = Q(coverage_kinds=0)
    elif coverage == "any":
        tested = Q(Exists(counted))
        held = ~Q(coverage_kinds=0)
    else:
        bit = CHANNEL_KIND_BITS[coverage]
        tested = Q(Exists(counted.filter(kind=coverage)))
        held = Q(GreaterThan(F("coverage_kinds").bitand(bit), 0))
    if not stored:
        return tested
    known = COVERAGE_KINDS_KNOWN.q(day)
    return (known & held) | (~known & tested)


def partner_account_counts(*, partner: Partner, day: date) -> dict[str, int]:
    """How many accounts in the market `partner` is assigned on `day` ("assigned"), how many
    of those its coverage counts for under an agreement of its own in force ("counted"), and
    the rest ("outside"): the numbers the account list shows for `AccountListFilter(partner=…)`
    with no coverage filter, "any" and "outside". Counted in one pass over the partner's own
    assignment rows (its index), each account looked up by its key rather than every account
    read (`by_index_lookups`). One query and the grants' three."""
    rows = CoverageAssignment.objects.filter(active_coverage_q(day), partner=partner).filter(
        in_market_q(day, "account__")
    )
    own = Grants(tuple(g for g in Grants.on(day).agreements if g[0] == partner.pk))
    granted = own.q(
        region="account__region_id",
        vertical="account__vertical_id",
        region_id=None,
        vertical_id=None,
    )
    with by_index_lookups():
        counts = rows.aggregate(
            assigned=Count("account_id", distinct=True),
            counted=Count("account_id", distinct=True, filter=granted),
        )
    assigned, counted = counts["assigned"], counts["counted"]
    return {"assigned": assigned, "counted": counted, "outside": assigned - counted}


DUE_WINDOWS: tuple[int, ...] = (30, 60, 90)


def agreements_due(user: RequestUser, *, by: str, days: int, today: date) -> list[Agreement]:
    """Active agreements the user may see whose end date (`by="end"`) or notice deadline
    (`by="notice"`: the end date less the notice period) falls within the next `days` days,
    today included, soonest first. The renewals page and the workspace home count these."""
    horizon = today + timedelta(days=days)
    agreements = agreements_visible_to(user).filter(status=AgreementStatus.ACTIVE)
    if by == "notice":
        # A notice deadline lies at most the longest notice period before the end.
        longest = agreements.aggregate(longest=Max("notice_days"))["longest"] or 0
        candidates = agreements.filter(
            end_date__gte=today, end_date__lte=horizon + timedelta(days=longest)
        ).select_related("partner")
        # Active agreements all have a notice deadline; the check only tells the type checker.
        due = [
            a
            for a in candidates
            if (deadline := a.notice_deadline) is not None and today <= deadline <= horizon
        ]
        return sorted(due, key=lambda a: (a.notice_deadline, a.external_id))
    return list(
        agreements.filter(end_date__gte=today, end_date__lte=horizon)
        .select_related("partner")
        .order_by("end_date", "external_id")
    )


def feedback_awaiting_answer(user: RequestUser) -> QuerySet[Feedback]:
    """Open feedback partners sent that nobody of ours has answered yet, oldest first: not
    resolved or closed, and no reply but the partner's own follow-ups. Feedback a manager
    logged on a partner's behalf is not waiting for anyone."""
    answered = FeedbackReply.objects.filter(
        feedback=OuterRef("pk"), author__partner_membership__isnull=True
    )
    return (
        feedback_visible_to(user)
        .filter(logged_by__isnull=True)
        .exclude(status__in=[FeedbackStatus.RESOLVED, FeedbackStatus.CLOSED])
        .exclude(Exists(answered))
        .order_by("created_at", "pk")
    )
