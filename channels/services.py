"""Writes with business rules for coverage: who works which account from when to when."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from channels.change_logs import COVERAGE, OPPORTUNITIES
from channels.models import PARTNER_KINDS, CoverageAssignment, SalesRep
from crm import change_logs
from crm.models import Account, ChannelKind


class CoveringPartner(Protocol):
    """What coverage needs of a partner (`partners.Partner`, an app above this one, which
    this app does not import: the coverage model's foreign key names it by string)."""

    @property
    def pk(self) -> Any: ...

    @property
    def name(self) -> str: ...

    @property
    def channel_kind(self) -> str: ...

    @property
    def is_active(self) -> bool: ...


BULK_LIMIT = 100_000

# Who keeps state derived from coverage rows (`partners.coverage_kinds` keeps each account's
# covering kinds): called with the accounts whose coverage a service changed, in the same
# transaction. Registered by the apps above, which this app does not import.
CoverageListener = Callable[[Collection[int]], object]
_coverage_listeners: list[CoverageListener] = []


def coverage_listen(listener: CoverageListener) -> None:
    """Call `listener(account_ids)` after every coverage change (once per listener)."""
    if listener not in _coverage_listeners:
        _coverage_listeners.append(listener)


def coverage_changed(*, account_ids: Collection[int]) -> None:
    """Tell the listeners that the coverage of `account_ids` changed in this transaction."""
    if account_ids:
        for listener in _coverage_listeners:
            listener(account_ids)


@dataclass(frozen=True)
class CoverageOwner:
    """Who works the accounts: a rep (direct), a partner (distribution, partner) or a source."""

    kind: str
    rep: SalesRep | None = None
    partner: CoveringPartner | None = None
    online_source: str = ""

    def validate(self) -> None:
        """Raises ValidationError when the owner does not fit the kind or is deactivated."""
        if self.kind not in ChannelKind.values:
            raise ValidationError(
                {"kind": _("Unknown channel kind %(kind)r.") % {"kind": self.kind}}
            )
        if self.kind == ChannelKind.DIRECT:
            if self.rep is None:
                raise ValidationError({"rep": _("Choose the sales rep who works these accounts.")})
            if not self.rep.is_active:
                raise ValidationError(
                    {"rep": _("%(name)s is deactivated.") % {"name": self.rep.name}}
                )
        if self.kind in PARTNER_KINDS:
            if self.partner is None:
                raise ValidationError(
                    {"partner": _("Choose the partner who works these accounts.")}
                )
            if self.partner.channel_kind != self.kind:
                text = (
                    _("%(name)s is a distributor; choose the matching channel kind.")
                    if self.partner.channel_kind == "distribution"
                    else _("%(name)s is a partner; choose the matching channel kind.")
                )
                raise ValidationError({"partner": text % {"name": self.partner.name}})
            if not self.partner.is_active:
                raise ValidationError(
                    {"partner": _("%(name)s is deactivated.") % {"name": self.partner.name}}
                )
        if self.kind == ChannelKind.ONLINE and not self.online_source.strip():
            raise ValidationError({"online_source": _("Name the online source, e.g. web-signup.")})

    def owner_filter(self) -> Q:
        if self.kind == ChannelKind.DIRECT:
            return Q(rep=self.rep)
        if self.kind == ChannelKind.ONLINE:
            return Q(online_source=self.online_source.strip())
        return Q(partner_id=self.partner.pk if self.partner else None)

    def lock_key(self) -> int:
        """A 32-bit number naming this owner, for `_serialise_owner`."""
        if self.kind == ChannelKind.DIRECT:
            name = f"rep:{self.rep.pk if self.rep else ''}"
        elif self.kind == ChannelKind.ONLINE:
            name = f"online:{self.online_source.strip()}"
        else:
            name = f"partner:{self.partner.pk if self.partner else ''}"
        return zlib.crc32(name.encode()) - 2**31


# The first key of the advisory locks that serialise coverage writes per owner.
COVERAGE_LOCK_CLASS = 7301


def coverage_owner_serialise(owner: CoverageOwner) -> None:
    """Wait until no other transaction is assigning coverage to `owner`, and keep the next one
    waiting until this transaction ends. For a write that depends on which accounts an owner
    covers (a change to a partner's agreements refreshes the kinds of the partner's accounts),
    so that assignments made meanwhile are either seen or see the change."""
    _serialise_owner(owner)


def _serialise_owner(owner: CoverageOwner) -> None:
    """Make concurrent assignments to the same owner wait for each other until commit.

    The exclusion constraints already refuse overlapping coverage of one owner, but two
    transactions inserting overlapping rows at once each wait for the other while checking the
    constraint, and PostgreSQL breaks that deadlock by failing one request. Taken before the
    check, this lock makes the second request wait for the first to commit, then see its rows
    and count those accounts as already covered. SQLite serialises writers already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [COVERAGE_LOCK_CLASS, owner.lock_key()]
            )


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

    Accounts this owner already works at some point in the period are left alone (counted as
    already covered), so assigning twice changes nothing, even when overlapping assignments
    are made at the same moment: on PostgreSQL an exclusion constraint
    (`coverage_<owner>_no_overlap`) refuses the second insert, which then finds the first.
    Raises ValidationError for an owner that does not fit the kind or is deactivated, an end
    before the start, or more than BULK_LIMIT accounts.
    """
    owner.validate()
    if end_date is not None and end_date < start_date:
        raise ValidationError({"end_date": _("The end date cannot be before the start date.")})
    account_ids = list(accounts.values_list("pk", flat=True)[: BULK_LIMIT + 1])
    if len(account_ids) > BULK_LIMIT:
        raise ValidationError(
            _("At most %(count)s accounts can be assigned at once; narrow the filter.")
            % {"count": number_format(BULK_LIMIT, force_grouping=True)}
        )
    _serialise_owner(owner)
    covering = _accounts_covered(
        owner=owner, account_ids=account_ids, start_date=start_date, end_date=end_date
    )
    while True:
        rows = [
            CoverageAssignment(
                account_id=account_id,
                kind=owner.kind,
                rep=owner.rep if owner.kind == ChannelKind.DIRECT else None,
                partner_id=owner.partner.pk
                if owner.kind in PARTNER_KINDS and owner.partner
                else None,
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
            # A savepoint: when an overlapping assignment made at the same time commits between
            # the check above and this insert, the database refuses only this step.
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
        coverage_changed(account_ids=[row.account_id for row in rows])
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
                "end_date": _(
                    "Coverage of %(account)s starts on %(day)s; the end date cannot be earlier."
                )
                % {"account": late.account.name, "day": date_format(late.start_date)}
            }
        )
    ending = assignments.filter(Q(end_date__isnull=True) | Q(end_date__gt=end_date))
    account_ids = set(ending.values_list("account_id", flat=True))
    changed = ending.update(end_date=end_date, updated_at=timezone.now())
    coverage_changed(account_ids=account_ids)
    return changed


def change_logs_prune(*, older_than: timedelta = change_logs.CHANGES_KEPT) -> int:
    """Delete the rows of the logs of changed accounts, coverage assignments and opportunities
    logged more than `older_than` ago and move each log's horizon past them
    (`crm.change_logs.prune`), so that a process whose rows were read before those changes
    reads them all again (`analytics.kept_rows`). Returns the rows deleted; 0 on a database
    that keeps no log (SQLite)."""
    return sum(
        change_logs.prune(log, older_than=older_than)
        for log in (change_logs.ACCOUNTS, COVERAGE, OPPORTUNITIES)
    )
