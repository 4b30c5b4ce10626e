"""Writes with business rules for coverage: who works which account from when to when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from channels.models import PARTNER_KINDS, CoverageAssignment, SalesRep
from crm.models import Account, ChannelKind

if TYPE_CHECKING:
    # For the type checker only: partners sit above channels and are not imported at run time
    # (the coverage model's foreign key names partners.Partner the same way).
    from partners.models import Partner

BULK_LIMIT = 100_000


@dataclass(frozen=True)
class CoverageOwner:
    """Who works the accounts: a rep (direct), a partner (distribution, partner) or a source."""

    kind: str
    rep: SalesRep | None = None
    partner: Partner | None = None
    online_source: str = ""

    def validate(self) -> None:
        """Raises ValidationError when the owner does not fit the kind or is deactivated."""
        if self.kind not in ChannelKind.values:
            raise ValidationError({"kind": f"Unknown channel kind {self.kind!r}."})
        if self.kind == ChannelKind.DIRECT:
            if self.rep is None:
                raise ValidationError({"rep": "Choose the sales rep who works these accounts."})
            if not self.rep.is_active:
                raise ValidationError({"rep": f"{self.rep.name} is deactivated."})
        if self.kind in PARTNER_KINDS:
            if self.partner is None:
                raise ValidationError({"partner": "Choose the partner who works these accounts."})
            if self.partner.channel_kind != self.kind:
                label = (
                    "a distributor" if self.partner.channel_kind == "distribution" else "a partner"
                )
                raise ValidationError(
                    {
                        "partner": f"{self.partner.name} is {label}; "
                        "choose the matching channel kind."
                    }
                )
            if not self.partner.is_active:
                raise ValidationError({"partner": f"{self.partner.name} is deactivated."})
        if self.kind == ChannelKind.ONLINE and not self.online_source.strip():
            raise ValidationError({"online_source": "Name the online source, e.g. web-signup."})

    def owner_filter(self) -> Q:
        if self.kind == ChannelKind.DIRECT:
            return Q(rep=self.rep)
        if self.kind == ChannelKind.ONLINE:
            return Q(online_source=self.online_source.strip())
        return Q(partner=self.partner)


@dataclass(frozen=True)
class CoverageResult:
    created: int
    already_covered: int


@transaction.atomic
def coverage_assign(
    *,
    accounts: QuerySet[Account],
    owner: CoverageOwner,
    start_date: date,
    end_date: date | None = None,
) -> CoverageResult:
    """Assign every account in `accounts` to `owner` from `start_date`.

    Accounts this owner already works on `start_date` are left alone (counted as already
    covered), so assigning twice changes nothing, even when the same assignment is made
    concurrently. Raises ValidationError for an owner that does not fit the kind or is
    deactivated, an end before the start, or more than BULK_LIMIT accounts.
    """
    owner.validate()
    if end_date is not None and end_date < start_date:
        raise ValidationError({"end_date": "The end date cannot be before the start date."})
    account_ids = list(accounts.values_list("pk", flat=True)[: BULK_LIMIT + 1])
    if len(account_ids) > BULK_LIMIT:
        raise ValidationError(
            f"At most {BULK_LIMIT:,} accounts can be assigned at once; narrow the filter."
        )
    covering = _accounts_covered(
        owner=owner, account_ids=account_ids, start_date=start_date, end_date=end_date
    )
    while True:
        rows = [
            CoverageAssignment(
                account_id=account_id,
                kind=owner.kind,
                rep=owner.rep if owner.kind == ChannelKind.DIRECT else None,
                partner=owner.partner if owner.kind in PARTNER_KINDS else None,
                online_source=(
                    owner.online_source.strip() if owner.kind == ChannelKind.ONLINE else ""
                ),
                start_date=start_date,
                end_date=end_date,
            )
            for account_id in account_ids
            if account_id not in covering
        ]
        if rows:
            rows[0].full_clean(exclude=["account"])
        try:
            # A savepoint: when an identical assignment made at the same time commits between
            # the check above and this insert, the unique constraint refuses only this step.
            with transaction.atomic():
                CoverageAssignment.objects.bulk_create(rows, batch_size=5000)
        except IntegrityError:
            # The other request's rows are committed now, so a fresh check sees them; those
            # accounts count as already covered, as they would for a sequential repeat.
            now_covering = _accounts_covered(
                owner=owner, account_ids=account_ids, start_date=start_date, end_date=end_date
            )
            if now_covering <= covering:
                raise  # not a duplicate: nothing new covers these accounts
            covering = now_covering
            continue
        return CoverageResult(created=len(rows), already_covered=len(covering))


def _accounts_covered(
    *, owner: CoverageOwner, account_ids: list[int], start_date: date, end_date: date | None
) -> set[int]:
    """The ids among `account_ids` that `owner` already works at some point in the period."""
    return set(
        CoverageAssignment.objects.filter(
            owner.owner_filter(), kind=owner.kind, account_id__in=account_ids
        )
        .filter(
            Q(end_date__isnull=True) | Q(end_date__gte=start_date),
            start_date__lte=end_date or date.max,
        )
        .values_list("account_id", flat=True)
    )


@transaction.atomic
def coverage_end(*, assignments: QuerySet[CoverageAssignment], end_date: date) -> int:
    """End the open or later-ending assignments in `assignments` on `end_date` (inclusive).

    Assignments starting after `end_date` cannot end before they start, so they are refused
    with a message. Returns how many assignments changed.
    """
    late = assignments.filter(start_date__gt=end_date).select_related("account").first()
    if late is not None:
        raise ValidationError(
            {
                "end_date": f"Coverage of {late.account.name} starts on "
                f"{late.start_date:%Y-%m-%d}; the end date cannot be earlier."
            }
        )
    return assignments.filter(Q(end_date__isnull=True) | Q(end_date__gt=end_date)).update(
        end_date=end_date, updated_at=timezone.now()
    )
