"""Each account's covering channel kinds, stored on the account and kept exact.

`Account.coverage_kinds` holds one bit per channel kind (`crm.models.CHANNEL_KIND_BITS`) whose
coverage counts for the account (docs/metrics.md rule 3: a running assignment, and for a
partner or distributor an agreement of its own in force granting the account's region and
vertical), together with the days on which that stays true (`coverage_kinds_from` through
`coverage_kinds_until`): from the last day on which a running assignment or a granting
agreement began or ended, to the day before the next such change. So the stored kinds need no
nightly work to stay right: on a day outside its range (or when `coverage_kinds_from` is
missing) an account's kinds are simply not known (`crm.rules.COVERAGE_KINDS_KNOWN`), and the
account lists test that account's assignments themselves (`partners.selectors`).

Whatever changes what rule 3 reads refreshes the accounts it touches, in its own transaction:
the coverage services (through `channels.services.coverage_listen`), the agreement services,
the admin; the market import marks the accounts it touched not known and queues a refresh;
`coverage_kinds_refresh_stale` (hourly) recomputes every account not known today.

Concurrent writers: a refresh locks the accounts' rows (in id order) before it reads their
coverage and agreements. Every writer changes coverage or agreements first and refreshes after,
so the last refresh of an account to take its lock reads every change committed before it, and
its own: the stored kinds end up those of the committed rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from channels.models import PARTNER_KINDS, CoverageAssignment
from channels.rules import COVERAGE_RUNNING
from channels.services import CoverageOwner, coverage_owner_serialise
from crm.models import CHANNEL_KIND_BITS, Account
from crm.rules import COVERAGE_KINDS_KNOWN
from partners.models import Agreement, AgreementStatus, Partner
from partners.rules import AGREEMENT_IN_FORCE

__all__ = [
    "CoverageKinds",
    "coverage_kinds_compute",
    "coverage_kinds_forget",
    "coverage_kinds_forget_written",
    "coverage_kinds_refresh",
    "coverage_kinds_refresh_partner",
    "coverage_kinds_refresh_stale",
    "NO_COVERAGE",
]

_EPOCH = np.datetime64("1970-01-01", "D")
# Day numbers beyond these stand for "no bound" (crm.rules' spans use far larger ones).
_FIRST_DAY = (np.datetime64(date.min, "D") - _EPOCH).astype("int64")
_LAST_DAY = (np.datetime64(date.max, "D") - _EPOCH).astype("int64")
# What an account with no coverage assignment stores: no kinds, known from the first day for
# good (what `coverage_kinds_compute` gives it), as `crm.models.COVERAGE_KINDS_COLUMNS`.
NO_COVERAGE: dict[str, Any] = {
    "coverage_kinds": 0,
    "coverage_kinds_from": date.min,
    "coverage_kinds_until": None,
}
# Accounts refreshed per statement (and per transaction in `coverage_kinds_refresh_stale`).
BATCH = 5000
# Ids per statement that stores `NO_COVERAGE` in `coverage_kinds_refresh_stale`.
NO_COVERAGE_BATCH = 100_000


@dataclass(frozen=True)
class CoverageKinds:
    """Per account (in the order given): the kinds' bits on the day, and the first and last day
    (day numbers since 1970-01-01) on which they hold; `last` beyond `date.max` means for good."""

    kinds: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def stored(self, position: int) -> tuple[int, date, date | None]:
        """(coverage_kinds, coverage_kinds_from, coverage_kinds_until) of one account."""
        first = max(int(self.first[position]), int(_FIRST_DAY))
        last = int(self.last[position])
        return (
            int(self.kinds[position]),
            _date(first),
            None if last >= _LAST_DAY else _date(last),
        )


def _date(day_number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day_number)


def _dates(values: Sequence[date | None]) -> np.ndarray:
    return np.array([np.datetime64(v, "D") if v else np.datetime64("NaT") for v in values])


def coverage_kinds_compute(
    *,
    accounts: Mapping[str, np.ndarray],
    assignments: Mapping[str, np.ndarray],
    agreements: Mapping[str, np.ndarray],
    grants: Mapping[int, tuple[frozenset[int], frozenset[int]]],
    day: date,
) -> CoverageKinds:
    """The coverage kinds of `accounts` on `day` and the days around it on which they hold.

    `accounts`: `id`, `region`, `vertical`. `assignments` (all of these accounts'
    assignments, any dates): `account` (an id among the accounts), `kind`, `partner` (0 when
    none), `start_date`, `end_date`. `agreements` (all agreements of the assignments'
    partners): `id`, `partner` and the fields of rule 2 (`partners.rules.AGREEMENT_IN_FORCE`);
    `grants` maps an agreement id to the region and vertical ids it lists (empty: all).
    Dates as `datetime64[D]`, NaT where missing.

    A kind's coverage is a union of pieces of days: each running span of a direct or online
    assignment (rule 3a), and for a partner kind each span on which an assignment runs and one
    granting agreement of its partner is in force (rules 2 and 3b). The kinds change only where
    a piece begins or ends, so the days from the last such edge on or before `day` to the day
    before the next one all have the same kinds.
    """
    ids = np.asarray(accounts["id"], dtype="int64")
    size = len(ids)
    kinds = np.zeros(size, dtype="int64")
    first = np.full(size, _FIRST_DAY, dtype="int64")
    last = np.full(size, _LAST_DAY + 1, dtype="int64")
    if size == 0 or len(assignments["account"]) == 0:
        return CoverageKinds(kinds, first, last)
    order = np.argsort(ids, kind="stable")
    position = order[np.searchsorted(ids[order], np.asarray(assignments["account"], "int64"))]
    kind = np.asarray(assignments["kind"]).astype(str)
    bit = np.zeros(len(kind), dtype="int64")
    for code, value in CHANNEL_KIND_BITS.items():
        bit[kind == str(code)] = value
    a_first, a_last = COVERAGE_RUNNING.span(
        {"start_date": assignments["start_date"], "end_date": assignments["end_date"]}
    )
    by_partner = np.isin(kind, [str(k) for k in PARTNER_KINDS])

    pieces = [(position[~by_partner], bit[~by_partner], a_first[~by_partner], a_last[~by_partner])]
    pieces.append(
        _partner_pieces(
            accounts=accounts,
            position=position[by_partner],
            bit=bit[by_partner],
            partner=np.asarray(assignments["partner"], dtype="int64")[by_partner],
            a_first=a_first[by_partner],
            a_last=a_last[by_partner],
            agreements=agreements,
            grants=grants,
        )
    )
    at = np.concatenate([p[0] for p in pieces])
    bits = np.concatenate([p[1] for p in pieces])
    starts = np.concatenate([p[2] for p in pieces])
    ends = np.concatenate([p[3] for p in pieces])
    real = starts <= ends
    at, bits, starts, ends = at[real], bits[real], starts[real], ends[real]
    today = int((np.datetime64(day, "D") - _EPOCH).astype("int64"))
    held = (starts <= today) & (today <= ends)
    np.bitwise_or.at(kinds, at[held], bits[held])
    # The edges: a piece begins on `starts` and stops holding on `ends + 1`.
    stops = np.minimum(ends, _LAST_DAY) + 1
    for edge in (np.maximum(starts, _FIRST_DAY), stops):
        before = edge <= today
        np.maximum.at(first, at[before], edge[before])
        np.minimum.at(last, at[~before], edge[~before] - 1)
    return CoverageKinds(kinds, first, last)


def _partner_pieces(
    *,
    accounts: Mapping[str, np.ndarray],
    position: np.ndarray,
    bit: np.ndarray,
    partner: np.ndarray,
    a_first: np.ndarray,
    a_last: np.ndarray,
    agreements: Mapping[str, np.ndarray],
    grants: Mapping[int, tuple[frozenset[int], frozenset[int]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each (partner assignment, agreement of its partner granting the account's segment) as
    the days on which both hold."""
    empty = np.zeros(0, dtype="int64")
    if len(position) == 0 or len(agreements["id"]) == 0:
        return empty, empty, empty, empty
    g_first, g_last = AGREEMENT_IN_FORCE.span({f: agreements[f] for f in AGREEMENT_IN_FORCE.fields})
    g_partner = np.asarray(agreements["partner"], dtype="int64")
    g_id = np.asarray(agreements["id"], dtype="int64")
    order = np.argsort(g_partner, kind="stable")
    g_partner, g_id, g_first, g_last = g_partner[order], g_id[order], g_first[order], g_last[order]
    low = np.searchsorted(g_partner, partner, side="left")
    count = np.searchsorted(g_partner, partner, side="right") - low
    pair = np.repeat(np.arange(len(partner)), count)
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    agreement = np.repeat(low, count) + offset
    # Whether each agreement grants each region (vertical), as a table over compact indexes.
    granted = np.ones(len(pair), dtype=bool)
    for column, side in (("region", 0), ("vertical", 1)):
        values = np.asarray(accounts[column], dtype="int64")[position[pair]]
        codes, index = np.unique(values, return_inverse=True)
        table = np.ones((len(g_id), len(codes)), dtype=bool)
        for row, pk in enumerate(g_id):
            listed = grants.get(int(pk), (frozenset(), frozenset()))[side]
            if listed:
                table[row] = np.isin(codes, list(listed))
        granted &= table[agreement, index.reshape(-1)]
    pair, agreement = pair[granted], agreement[granted]
    return (
        position[pair],
        bit[pair],
        np.maximum(a_first[pair], g_first[agreement]),
        np.minimum(a_last[pair], g_last[agreement]),
    )


def _read(
    account_ids: Sequence[int],
) -> tuple[dict[str, np.ndarray], CoverageKinds, list[tuple[Any, ...]]]:
    """Read what rule 3 needs for `account_ids` and compute their kinds today. Returns the
    accounts' columns, the kinds and the stored values (id, kinds, from, until) per account."""
    rows = list(
        Account.objects.filter(pk__in=account_ids)
        .order_by("pk")
        .values_list(
            "pk",
            "region_id",
            "vertical_id",
            "coverage_kinds",
            "coverage_kinds_from",
            "coverage_kinds_until",
        )
    )
    accounts = {
        "id": np.array([r[0] for r in rows], dtype="int64"),
        "region": np.array([r[1] for r in rows], dtype="int64"),
        "vertical": np.array([r[2] for r in rows], dtype="int64"),
    }
    covering = list(
        CoverageAssignment.objects.filter(account_id__in=account_ids)
        .order_by()
        .values_list("account_id", "kind", "partner_id", "start_date", "end_date")
    )
    assignments = {
        "account": np.array([c[0] for c in covering], dtype="int64"),
        "kind": np.array([c[1] for c in covering], dtype=object),
        "partner": np.array([c[2] or 0 for c in covering], dtype="int64"),
        "start_date": _dates([c[3] for c in covering]),
        "end_date": _dates([c[4] for c in covering]),
    }
    partners = {c[2] for c in covering if c[2]}
    agreement_rows = list(
        Agreement.objects.filter(partner_id__in=partners)
        .exclude(status=AgreementStatus.DRAFT)
        .order_by()
        .values_list("pk", "partner_id", *AGREEMENT_IN_FORCE.fields)
    )
    fields = AGREEMENT_IN_FORCE.fields
    agreements: dict[str, np.ndarray] = {
        "id": np.array([g[0] for g in agreement_rows], dtype="int64"),
        "partner": np.array([g[1] for g in agreement_rows], dtype="int64"),
    }
    for offset, name in enumerate(fields, start=2):
        values = [g[offset] for g in agreement_rows]
        if name in AGREEMENT_IN_FORCE.value_fields:
            agreements[name] = np.array(values, dtype=object).astype(str)
        else:
            agreements[name] = _dates(values)
    grants = _grants([g[0] for g in agreement_rows])
    computed = coverage_kinds_compute(
        accounts=accounts,
        assignments=assignments,
        agreements=agreements,
        grants=grants,
        day=timezone.localdate(),
    )
    return accounts, computed, rows


def _grants(agreement_ids: list[int]) -> dict[int, tuple[frozenset[int], frozenset[int]]]:
    regions: dict[int, set[int]] = {}
    verticals: dict[int, set[int]] = {}
    for links, ids, column in (
        (Agreement.regions.through.objects, regions, "region_id"),
        (Agreement.verticals.through.objects, verticals, "vertical_id"),
    ):
        for agreement_id, target in links.filter(agreement_id__in=agreement_ids).values_list(
            "agreement_id", column
        ):
            ids.setdefault(agreement_id, set()).add(target)
    return {
        pk: (frozenset(regions.get(pk, ())), frozenset(verticals.get(pk, ())))
        for pk in agreement_ids
    }


def _chunks(ids: Sequence[int], size: int = BATCH) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def coverage_kinds_refresh(account_ids: Collection[int]) -> int:
    """Recompute and store the coverage kinds of `account_ids` (in the caller's transaction,
    or one of its own). Locks the accounts' rows first (see the module's docstring). Returns
    how many accounts' stored values changed."""
    changed = 0
    with transaction.atomic():
        ordered = sorted(set(account_ids))
        for chunk in _chunks(ordered):
            # Row locks that key-share locks (a new assignment's foreign key) do not wait for.
            list(
                Account.objects.filter(pk__in=chunk)
                .order_by("pk")
                .select_for_update(no_key=True)
                .values_list("pk", flat=True)
            )
        for chunk in _chunks(ordered):
            changed += _store(*_read(chunk))
    return changed


def _store(
    accounts: dict[str, np.ndarray], computed: CoverageKinds, rows: list[tuple[Any, ...]]
) -> int:
    updates = []
    for position, row in enumerate(rows):
        value = computed.stored(position)
        if value != tuple(row[3:6]):
            updates.append((row[0], *value))
    if not updates:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crm_account a SET coverage_kinds = u.kinds, "
                "coverage_kinds_from = u.known_from, coverage_kinds_until = u.known_until "
                "FROM unnest(%s::bigint[], %s::smallint[], %s::date[], %s::date[]) "
                "AS u(id, kinds, known_from, known_until) WHERE a.id = u.id",
                [list(column) for column in zip(*updates, strict=True)],
            )
    else:
        Account.objects.bulk_update(
            [
                Account(
                    pk=pk,
                    coverage_kinds=kinds,
                    coverage_kinds_from=known_from,
                    coverage_kinds_until=known_until,
                )
                for pk, kinds, known_from, known_until in updates
            ],
            ["coverage_kinds", "coverage_kinds_from", "coverage_kinds_until"],
            batch_size=500,
        )
    return len(updates)


def coverage_kinds_refresh_partner(*, partner: Partner) -> int:
    """Refresh the accounts `partner` has ever been assigned: after a change to one of its
    agreements (status, dates, the regions or verticals it grants), in the same transaction.

    Takes the partner's coverage lock first: an assignment to the partner made at the same
    moment either commits before this reads the partner's accounts (and is refreshed here), or
    waits and then reads the changed agreement in its own refresh."""
    coverage_owner_serialise(CoverageOwner(kind=partner.channel_kind, partner=partner))
    account_ids = set(
        CoverageAssignment.objects.filter(partner=partner)
        .order_by()
        .values_list("account_id", flat=True)
    )
    return coverage_kinds_refresh(account_ids)


def coverage_kinds_forget(account_ids: Q) -> int:
    """Mark the coverage kinds of the accounts matching `account_ids` not known (readers then
    test their assignments) until the next refresh. Cheaper than a refresh for many accounts
    at once; returns how many accounts it marked."""
    return (
        Account.objects.filter(account_ids, coverage_kinds_from__isnull=False)
        .order_by()
        .update(coverage_kinds_from=None)
    )


def coverage_kinds_refresh_stale(*, today: date | None = None, batch: int = 20_000) -> int:
    """Recompute the coverage kinds of every account whose stored kinds are not known on
    `today` (never computed, marked not known, or past the last day they held), a batch of
    accounts per transaction so that other writers wait at most one batch. Returns how many
    accounts were recomputed."""
    day = today or timezone.localdate()
    stale = Account.objects.exclude(COVERAGE_KINDS_KNOWN.q(day)).order_by("pk")
    # Those with no assignment at all hold no kind on any day: one statement per range of ids
    # sets them. A writer adding an assignment meanwhile refreshes the account in the same
    # transaction (waiting for this statement's row lock, then reading its assignment), or has
    # refreshed it already, and then the account is no longer stale when this statement
    # reaches it.
    unassigned = stale.exclude(
        Exists(CoverageAssignment.objects.filter(account_id=OuterRef("pk")))
    ).order_by()
    done = 0
    last = stale.aggregate(last=Max("pk"))["last"] or 0
    for low in range(0, last, NO_COVERAGE_BATCH):
        with transaction.atomic():
            done += unassigned.filter(pk__gt=low, pk__lte=low + NO_COVERAGE_BATCH).update(
                **NO_COVERAGE
            )
    after = 0
    while True:
        ids = list(stale.filter(pk__gt=after).values_list("pk", flat=True)[:batch])
        if not ids:
            return done
        coverage_kinds_refresh(ids)
        done += len(ids)
        after = ids[-1]


def coverage_kinds_forget_written(*, at: datetime) -> int:
    """After a bulk write (the market import) that stamped every row it created or changed with
    `updated_at = at` (and `created_at = at` the rows it created): mark not known the accounts
    whose rule-3 facts it may have changed (the accounts it changed, for their region and
    vertical; those of the coverage rows; every account of a partner one of whose agreements
    changed). An account it created is left as written: `NO_COVERAGE` is right for it unless
    a coverage row of the same write names it. Returns how many were marked; a
    `coverage_kinds_refresh_stale` run stores them again."""
    if not Account.objects.filter(coverage_kinds_from__isnull=False).exists():
        return 0  # nothing stored yet (a first load): nothing to forget
    agreements = Agreement.objects.filter(updated_at=at).values("partner_id")
    touched = (
        (Q(updated_at=at) & ~Q(created_at=at))
        | Q(pk__in=CoverageAssignment.objects.filter(updated_at=at).values("account_id"))
        | Q(
            pk__in=CoverageAssignment.objects.filter(partner_id__in=agreements).values("account_id")
        )
    )
    return coverage_kinds_forget(touched)
