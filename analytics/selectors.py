"""Reads for the metrics run: one day's market as integer arrays, or the whole market as frames.

- `week_read(d)`: the database evaluates the day's date rules row by row (rules 1 and 3a and
  rule 4's conversion test, the filters `crm.rules` and `channels.rules` state) and sends
  integers only: one per account (its segment and state) and one per running assignment. With
  the small tables of `week_context` that is everything `analytics.metrics` needs for a week:
  the fast path for a single week (README, "Metrics"). On PostgreSQL a worker keeps the
  accounts and assignments with the days of those rules (`kept_rows`), and a day of the whole
  market is a few comparisons over them once the rows changed since are read.
- `market_frames()`: the account-level columns, loaded once; a backfill evaluates many days in
  memory from them.

Nothing here computes a figure: the services hand what these return to `analytics.metrics`.
Every statement is built by the ORM or composed with `psycopg.sql`; no name or value is pasted
into SQL as text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import psycopg
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BigIntegerField,
    Case,
    DateField,
    F,
    Func,
    Model,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Coalesce, Greatest, Least, TruncDate
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from psycopg import sql

from analytics import metrics, programme
from analytics.kept_rows import RowRead, compact, kept_fields
from channels.change_logs import COVERAGE
from channels.models import CoverageAssignment, SalesRep
from channels.rules import COVERAGE_RUNNING
from crm.change_logs import ACCOUNTS
from crm.currencies import day_numbers
from crm.models import Account, Region, SizeBand, Vertical
from crm.rules import CONVERTED, IN_MARKET, DateRule
from crm.sql import export_snapshot, in_exported_snapshot, int8_gathered, int8_values
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackCategory,
    FeedbackSource,
    Partner,
    PartnerKind,
)

if TYPE_CHECKING:
    from django.db.models.sql.compiler import _AsSqlType

SIZE_BANDS: tuple[str, ...] = tuple(SizeBand.values)

T = TypeVar("T")
M = TypeVar("M", bound=Model)


def _case(field: str, values: Sequence[str], *, first: int = 0, default: int | None = None) -> Case:
    """`first + i` where `field` holds `values[i]`; `default` (or null) elsewhere."""
    return Case(
        *(When(**{field: value}, then=Value(first + i)) for i, value in enumerate(values)),
        default=None if default is None else Value(default),
    )


def _kind_by_owner(field: str = "kind") -> Case:
    """A coverage assignment's kind (or a deal's channel, `field`) as its index in
    `metrics.KINDS`, told by which owner it has: the database holds a direct row to a rep, an
    online row to no owner and a partner-kind row to a partner (`coverage_owner_matches_kind`,
    `opportunity_owner_matches_channel`), so only the two partner kinds compare their text,
    and the other half of the rows none."""
    index = metrics.KINDS.index
    return Case(
        When(rep_id__isnull=False, then=Value(index("direct"))),
        When(partner_id__isnull=True, then=Value(index("online"))),
        When(**{field: "partner"}, then=Value(index("partner"))),
        default=Value(index("distribution")),
    )


def _last_by_default(field: str, values: Sequence[str], *, first: int = 0) -> Case:
    """`first + i` where `field` holds `values[i]`, for a field the database holds to one of
    `values` (a check constraint): the last value is what is left when the others are not,
    so it is never compared (one text comparison fewer for each row that holds it)."""
    return _case(field, values[:-1], first=first, default=first + len(values) - 1)


def _account_state(d: date) -> Case:
    """An account's state on `d` as `metrics.DayStates.from_codes` reads it: 0 out of the
    market (rule 1), 1 in it and not converted by `d`, 2 + the winning kind's index (rule 4;
    a converted account has a winning kind, `account_converted_via_iff_converted_on`)."""
    won = _last_by_default("converted_via", metrics.KINDS, first=2)
    converted = Case(When(CONVERTED.q(d), then=won), default=Value(1))
    return Case(When(IN_MARKET.q(d), then=converted), default=Value(0))


def _converted_since(start: date, d: date) -> Case:
    """1 when the account's conversion day falls from `start` to `d`, else 0 (the programme's
    windows of rules 20 and 22)."""
    return Case(When(converted_on__gte=start, converted_on__lte=d, then=Value(1)), default=Value(0))


@dataclass(frozen=True)
class _Field:
    name: str
    expression: Combinable
    bits: int


def _scaled(expression: Combinable, scale: int) -> Combinable:
    """`expression` (an integer) times `scale`, as a bigint. A `Case` of integer constants
    (nested ones too) gets its constants multiplied instead: the database then evaluates no
    cast and no multiplication per row, which over a million rows is most of a read's cost
    after the scan itself."""
    case = _scaled_case(expression, scale)
    if case is not None:
        return case
    value = Cast(expression, BigIntegerField())
    return value if scale == 1 else value * Value(scale, output_field=BigIntegerField())


def _scaled_case(expression: Any, scale: int) -> Case | Value | None:
    """`_scaled` of a `Case` whose results are integer constants or such cases (and of such a
    constant); None for any other expression."""
    if isinstance(expression, Value):
        value = expression.value
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return None
        # Sent as bigint, so that sums of small codes never overflow a 32-bit integer.
        return Value(None if value is None else value * scale, output_field=BigIntegerField())
    if not isinstance(expression, Case):
        return None
    results = [_scaled_case(when.result, scale) for when in expression.cases]
    default = _scaled_case(expression.default, scale)
    if default is None or any(result is None for result in results):
        return None
    return Case(
        *(
            When(when.condition, then=result)
            for when, result in zip(expression.cases, results, strict=True)
        ),
        default=default,
        output_field=BigIntegerField(),
    )


class _Packing:
    """Non-negative integer fields packed side by side into as few bigint columns as their
    widths allow, so that the database sends one value where there would be several."""

    def __init__(self, fields: Sequence[_Field]) -> None:
        self.columns: list[list[tuple[_Field, int]]] = [[]]
        used = 0
        for field in fields:
            if used + field.bits > 63 and self.columns[-1]:
                self.columns.append([])
                used = 0
            self.columns[-1].append((field, used))
            used += field.bits

    def expressions(self) -> dict[str, Combinable]:
        """One bigint expression per packed column, named `packed0`, `packed1`, ..."""
        packed: dict[str, Combinable] = {}
        for number, column in enumerate(self.columns):
            parts = [_scaled(field.expression, 1 << shift) for field, shift in column]
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            packed[f"packed{number}"] = Cast(total, BigIntegerField())
        return packed

    def unpack(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        fields = {}
        for column, values in zip(self.columns, arrays, strict=True):
            top = max(shift + field.bits for field, shift in column)
            for field, shift in column:
                if field.bits >= 64:
                    # A field of 64 bits has its column to itself: taken whole, sign and all.
                    fields[field.name] = values
                    continue
                value = values >> shift
                # The packed values are non-negative: the highest field has nothing above it
                # to mask off; the others are masked in place (no second array of a million).
                if shift + field.bits < top:
                    value &= (1 << field.bits) - 1
                fields[field.name] = value
        return fields


def _highest_ids() -> dict[str, int]:
    """The highest id of each table whose ids are packed; rows above them are left out of the
    read, so a row added meanwhile can never overflow its field."""
    models: dict[
        str, type[Account] | type[Region] | type[Vertical] | type[Partner] | type[SalesRep]
    ] = {
        "account": Account,
        "region": Region,
        "vertical": Vertical,
        "partner": Partner,
        "rep": SalesRep,
    }
    return {name: _highest_id(model) for name, model in models.items()}


def _highest_id(model: type[Model]) -> int:
    """The highest id of `model`'s rows (0 when it has none)."""
    return model._default_manager.order_by("-id").values_list("id", flat=True).first() or 0


def _bits(value: int) -> int:
    return max(1, value.bit_length())


@dataclass(frozen=True)
class _Bounds:
    """The highest ids (`_highest_ids`) a read packs, and whether it must leave out the rows
    above them: it must unless it reads the very snapshot the ids were read in, where every
    row's ids are within them by its foreign keys (a test per row, and per column, saved)."""

    highest: dict[str, int]
    tested: bool


# How deep this thread is in `_tuned_reads`: the settings the outermost makes hold to the end
# of its transaction, so the reads nested in it cost no round trip of their own.
_tuning = threading.local()


@contextmanager
def _tuned_reads() -> Iterator[None]:
    # On two cores a parallel plan is slower and hungrier than two serial readers, and
    # compiling these plans costs more than it saves.
    depth = getattr(_tuning, "depth", 0)
    with transaction.atomic(savepoint=depth == 0):
        if depth == 0 and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("SET LOCAL jit = off")
        _tuning.depth = depth + 1
        try:
            yield
        finally:
            _tuning.depth = depth


def _integer_columns(rows: QuerySet[Any], packing: _Packing) -> dict[str, np.ndarray]:
    """`packing`'s fields over `rows`, as one array each, in the same row order.

    On PostgreSQL each packed column is gathered into one value of bytes
    (`crm.sql.int8_gathered`): one message on the wire instead of one per row, and no Python
    object per value; elsewhere the rows are fetched as they are. Call inside
    `_tuned_reads()`.
    """
    expressions = packing.expressions()
    try:
        select, params = (
            rows.order_by().annotate(**expressions).values_list(*expressions).query
        ).sql_with_params()
    except EmptyResultSet:
        return packing.unpack([np.zeros(0, dtype="int64") for _ in expressions])
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(select, params)
            values = np.fromiter((value for row in cursor for value in row), dtype="int64")
        count = len(expressions)
        return packing.unpack([values[column::count] for column in range(count)])
    gathered = sql.SQL("SELECT count(*), {columns} FROM ({select}) AS {rows}").format(
        columns=sql.SQL(", ").join(
            int8_gathered(sql.Identifier("rows", name)) for name in expressions
        ),
        select=sql.SQL(select),
        rows=sql.Identifier("rows"),
    )
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(gathered, params, binary=True)
        count, *gathered_row = cursor.fetchone() or [0, *[None] * len(expressions)]
        return packing.unpack([int8_values(value, count) for value in gathered_row])


@dataclass(frozen=True)
class AccountRows:
    """One entry per account: id, region and vertical ids, size band, the state on the day
    (`metrics.DayStates.from_codes`), and whether it converted in the programme's 52 weeks
    ending on the day (`converted_in_window`) and since 1 January (`converted_in_year`)."""

    account_id: np.ndarray
    region: np.ndarray
    vertical: np.ndarray
    size_band: pd.Categorical[str]
    state: np.ndarray
    converted_in_window: np.ndarray
    converted_in_year: np.ndarray
    # These accounts indexed already (`metrics.Accounts`), when read from those kept.
    indexed: metrics.Accounts | None = None


@dataclass(frozen=True)
class AssignmentRows:
    """One entry per assignment read: account id, kind, partner id (0 for direct and online),
    rep id (0 when none); `running` marks those running on the day (all of them when None:
    the database's read of the day reads only those). With `influencing`, read for the
    revenue step: every assignment that can have influenced a deal won in the 52 weeks ending
    on the day (`_assignment_rows(influence=True)`). `indexed`: these assignments joined to
    the day's accounts already (`metrics.Accounts.assignments`), when read from those kept."""

    account_id: np.ndarray
    kind: pd.Categorical[str]
    partner_id: np.ndarray
    rep_id: np.ndarray
    influencing: dict[str, np.ndarray] | None = None
    running: np.ndarray | None = None
    indexed: metrics.Assignments | None = None


def _account_rows(d: date, region_ids: Sequence[int] | None, bounds: _Bounds) -> AccountRows:
    highest = bounds.highest
    accounts = Account.objects.all()
    if bounds.tested:
        accounts = accounts.filter(
            id__lte=highest["account"],
            region_id__lte=highest["region"],
            vertical_id__lte=highest["vertical"],
        )
    if region_ids is not None:
        accounts = accounts.filter(region_id__in=list(region_ids))
    packing = _Packing(
        [
            _Field("account_id", F("id"), _bits(highest["account"])),
            _Field("region", F("region_id"), _bits(highest["region"])),
            _Field("vertical", F("vertical_id"), _bits(highest["vertical"])),
            # `account_size_band_valid` holds the band to one of them.
            _Field("size_band", _last_by_default("size_band", SIZE_BANDS), 3),
            _Field("state", _account_state(d), 3),
            _Field("in_window", _converted_since(programme.window_start(d), d), 1),
            _Field("in_year", _converted_since(programme.year_start(d), d), 1),
        ]
    )
    fields = _integer_columns(accounts, packing)
    return AccountRows(
        account_id=fields["account_id"],
        region=fields["region"].astype("int32"),
        vertical=fields["vertical"].astype("int32"),
        size_band=pd.Categorical.from_codes(
            fields["size_band"].astype(np.int8), categories=pd.Index(SIZE_BANDS)
        ),
        state=fields["state"].astype("int8"),
        converted_in_window=fields["in_window"].astype(bool),
        converted_in_year=fields["in_year"].astype(bool),
    )


# Rule 16 on the revenue of the 52 weeks ending on d: a deal won on a day from d - 363 to d was
# influenced by coverage running on a day of the 91 before it, from d - 454 to d - 1.
_INFLUENCE_SPAN_DAYS = 363 + 91


def _assignment_rows(
    d: date, region_ids: Sequence[int] | None, bounds: _Bounds, *, influence: bool = False
) -> AssignmentRows:
    """The assignments running on `d`; with `influence` (PostgreSQL), in the same scan, those
    that ran on a day of rule 16's window too (`_INFLUENCE_SPAN_DAYS` before `d`), with their
    days (`AssignmentRows.influencing`): the revenue step then need not scan the coverage
    again."""
    highest = bounds.highest
    # One owner per row, its partner or its rep: the database holds a direct row to a rep and
    # no partner, a partner-kind row to a partner and no rep, an online row to neither
    # (`coverage_owner_matches_kind`), so the kind says which the owner is.
    window_start = d - timedelta(days=_INFLUENCE_SPAN_DAYS)
    read = _ran_since(window_start, d) if influence else COVERAGE_RUNNING.q(d)
    assignments = CoverageAssignment.objects.filter(read).annotate(
        owner=Coalesce("partner_id", "rep_id", Value(0))
    )
    if bounds.tested:
        assignments = assignments.filter(
            Q(partner_id__isnull=True) | Q(partner_id__lte=highest["partner"]),
            Q(rep_id__isnull=True) | Q(rep_id__lte=highest["rep"]),
            account_id__lte=highest["account"],
        )
    if region_ids is not None:
        regional = Account.objects.filter(region_id__in=list(region_ids)).values("id")
        assignments = assignments.filter(account_id__in=regional)
    days = [] if not influence else _window_days(window_start, d)
    packing = _Packing(
        [
            _Field("account_id", F("account_id"), _bits(highest["account"])),
            _Field("kind", _kind_by_owner(), 3),
            _Field("owner", F("owner"), _bits(max(highest["partner"], highest["rep"]))),
            *days,
        ]
    )
    fields = _integer_columns(assignments, packing)
    influencing = None
    if influence:
        influencing = _influencing(fields, window_start, d)
        running = fields["end_date"] == (d - window_start).days + 1
        fields = {name: fields[name][running] for name in ("account_id", "kind", "owner")}
    kind = fields["kind"].astype(np.int8)
    owner = fields["owner"]
    return AssignmentRows(
        account_id=fields["account_id"],
        kind=pd.Categorical.from_codes(kind, categories=pd.Index(metrics.KINDS)),
        partner_id=np.where(_PARTNER_KIND[kind], owner, 0),
        rep_id=np.where(kind == metrics.KINDS.index("direct"), owner, 0),
        influencing=influencing,
    )


def _ran_since(first: date, d: date) -> Q:
    """Assignments running on some day from `first` to `d` (rule 3a over a range of days)."""
    return Q(start_date__lte=d) & (Q(end_date__isnull=True) | Q(end_date__gte=first))


def _window_days(first: date, d: date) -> list[_Field]:
    """An assignment's first and last day of running within `first` to `d`, counted from the
    day before `first` (0 when it started earlier; the last is `d`'s count when it runs on
    `d`): two small integers instead of two dates, exact for any question about those days.
    PostgreSQL's LEAST ignores a missing end date: such an assignment runs on `d`."""
    before = Value(first - timedelta(days=1), output_field=DateField())
    width = _bits((d - first).days + 1)
    started = Greatest(F("start_date"), before, output_field=DateField())
    ended = Least(F("end_date"), Value(d, output_field=DateField()), output_field=DateField())
    return [
        _Field("start_date", _days_between(started, before), width),
        _Field("end_date", _days_between(ended, before), width),
    ]


def _days_between(day: Combinable, before: Value) -> Combinable:
    # `date - date` is an integer number of days in PostgreSQL.
    return Func(
        day, before, arg_joiner=" - ", template="(%(expressions)s)", output_field=BigIntegerField()
    )


def _influencing(fields: dict[str, np.ndarray], first: date, d: date) -> dict[str, np.ndarray]:
    """The window's assignments as `revenue_selectors._coverage_frame` takes them: account id,
    kind (position in `KINDS`), partner id (0 for direct and online), and the first and last
    day of running within the window (`_day_number`s)."""
    kind = fields["kind"]
    # A `_day_number` is the date's proleptic Gregorian ordinal.
    before = (first - timedelta(days=1)).toordinal()
    return {
        "account_id": fields["account_id"],
        "kind": kind,
        "partner_id": np.where(_PARTNER_KIND[kind], fields["owner"], 0),
        "start_date": fields["start_date"] + before,
        "end_date": fields["end_date"] + before,
    }


_PARTNER_KIND = np.array([kind in metrics.PARTNER_KINDS for kind in metrics.KINDS])


@dataclass(frozen=True)
class WeekContext:
    """The small tables of a day: every agreement (`metrics.AGREEMENT_COLUMNS`) with its
    region and vertical ids (`agreement_id, region` / `agreement_id, vertical`), the partners,
    the feedback of the 90 days ending on the day (and any after it), and the codes of region
    and vertical ids."""

    agreements: pd.DataFrame
    agreement_regions: pd.DataFrame
    agreement_verticals: pd.DataFrame
    partners: pd.DataFrame
    feedback: pd.DataFrame
    region_codes: dict[int, str]
    vertical_codes: dict[int, str]


def _codes(model: type[Model]) -> dict[int, str]:
    """The code of each row of a table of codes (regions, verticals) by id."""
    return dict(model._default_manager.values_list("id", "code"))


def week_context(d: date, *, figures: bool = True) -> WeekContext:
    """The small tables a week's counts need besides the accounts and assignments, and with
    `figures` those its partner figures need (partners, feedback: `week_figure_tables`; empty
    frames otherwise)."""
    partners, feedback = pd.DataFrame(), pd.DataFrame()
    if figures:
        partners, feedback = week_figure_tables(d)
    return WeekContext(
        agreements=agreements_frame(),
        agreement_regions=agreement_scopes("region"),
        agreement_verticals=agreement_scopes("vertical"),
        partners=partners,
        feedback=feedback,
        region_codes=_codes(Region),
        vertical_codes=_codes(Vertical),
    )


def week_figure_tables(d: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partners and the feedback of the 90 days ending on `d` (and any after it), with the
    moments the partner programme's step reads after the week's figures."""
    feedback = feedback_frame(
        since=d - timedelta(days=metrics.FEEDBACK_WINDOW_DAYS - 1), moments=True
    )
    return partners_frame(), feedback


def _rest(
    d: date, region_ids: Sequence[int] | None, bounds: _Bounds, influence: bool
) -> tuple[AssignmentRows, WeekContext]:
    """The running assignments and the day's small tables (a region share of a week needs no
    partners or feedback: its counts are merged and the figures computed once)."""
    with _tuned_reads():
        return (
            _assignment_rows(d, region_ids, bounds, influence=influence),
            week_context(d, figures=region_ids is None),
        )


def _in_snapshot(snapshot: str, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`read(*args, **kwargs)` on this thread's own connection, reading the exported
    `snapshot`."""
    with in_exported_snapshot(snapshot), _tuned_reads():
        return read(*args, **kwargs)


@contextmanager
def _one_snapshot() -> Iterator[bool]:
    """A transaction whose reads all see one snapshot (REPEATABLE READ on PostgreSQL when no
    transaction is open yet; an open one is joined as it is). Yields whether it is new."""
    fresh = connection.vendor == "postgresql" and not connection.in_atomic_block
    # An open transaction is joined without a savepoint: a read has nothing to take back.
    with transaction.atomic(savepoint=False):
        if fresh:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield fresh


class WeekRead:
    """One day's market as the database gives it: `accounts` at once, and the running
    assignments and the small tables, which may still be on their way from other connections
    (`assignments()`, `context()`: each waits for its own; `counted()`, the small tables the
    counts need, may come before the partners and the feedback)."""

    def __init__(
        self,
        accounts: AccountRows,
        assignments: Future[AssignmentRows] | AssignmentRows,
        context: Future[WeekContext] | Callable[[], WeekContext] | WeekContext,
        counted: Future[WeekContext] | None = None,
    ) -> None:
        self.accounts = accounts
        self._assignments = assignments
        self._context = context
        self._counted = counted

    def counted(self) -> WeekContext:
        """The small tables the counts need: agreements and codes, maybe without the partners
        and the feedback yet (waits for them)."""
        if self._counted is not None:
            return self._counted.result()
        return self.context()

    def assignments(self) -> AssignmentRows:
        """The running assignments (waits for them)."""
        if isinstance(self._assignments, Future):
            return self._assignments.result()
        return self._assignments

    def context(self) -> WeekContext:
        """The small tables (waits for them)."""
        if isinstance(self._context, Future):
            return self._context.result()
        if callable(self._context):
            return self._context()
        return self._context

    def rest(self) -> tuple[AssignmentRows, WeekContext]:
        """The running assignments and the small tables (waits for both)."""
        return self.assignments(), self.context()


@contextmanager
def week_read(
    d: date,
    *,
    region_ids: Sequence[int] | None = None,
    parallel: bool = True,
    influence: bool = False,
) -> Iterator[WeekRead]:
    """One day's accounts (rule 1 and rule 4's conversion test evaluated in the database) and
    running assignments (rule 3a), with the day's small tables (`week_context`); only accounts
    in `region_ids`, and their assignments, when given. With `influence`, on PostgreSQL, the
    assignments come with those the revenue step's rule 16 reads
    (`AssignmentRows.influencing`).

    Everything is read from one snapshot. With `parallel` on PostgreSQL, outside a
    transaction, the assignments and the small tables are each read on a connection of their
    own while this one reads the accounts, all three from one exported snapshot: the same
    rows one reader would get, sooner on two cores (the small tables' reads are mostly
    Python's work, which runs while the accounts' read waits for the database; read after
    the accounts they were the last to arrive). Index the accounts before calling `rest()`
    and they overlap.
    """
    with _one_snapshot() as fresh:
        # In a snapshot of its own the rows cannot name ids above those read in it.
        bounds = _Bounds(_highest_ids(), tested=not fresh)
        influence = influence and connection.vendor == "postgresql"
        if fresh and region_ids is None and not influence and settings.METRICS_KEEP_MARKET:
            with _kept_week_read(d, bounds.highest, parallel=parallel) as read:
                yield read
            return
        if not (parallel and fresh):
            with _tuned_reads():
                accounts = _account_rows(d, region_ids, bounds)
            yield WeekRead(accounts, *_rest(d, region_ids, bounds, influence))
            return
        snapshot = export_snapshot()
        with ThreadPoolExecutor(max_workers=2) as pool:
            assignments = pool.submit(
                _in_snapshot,
                snapshot,
                _assignment_rows,
                d,
                region_ids,
                bounds,
                influence=influence,
            )
            context = pool.submit(
                _in_snapshot, snapshot, week_context, d, figures=region_ids is None
            )
            with _tuned_reads():
                accounts = _account_rows(d, region_ids, bounds)
            yield WeekRead(accounts, assignments, context)


# The kept market (`week_read` with `METRICS_KEEP_MARKET`): each account's and assignment's
# fields that do not depend on the day, with the first and last day of its rules' spans (days
# since 1970-01-01, open ends within a 32-bit integer), so that a day's rows are a few
# comparisons.
_INT32 = np.iinfo("int32")


def _spans(rule: DateRule, dates: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    first, last = rule.span({field: dates[field] for field in rule.fields})
    return np.clip(first, _INT32.min, _INT32.max), np.clip(last, _INT32.min, _INT32.max)


# A first read of the kept rows reads the ids of this many rows at a time, each range's fields
# made compact before the next is read: a market of millions is never held as 64-bit
# integers all at once.
_KEPT_RANGE_IDS = 1_000_000


def _in_ranges(read: Callable[[Sequence[int]], dict[str, np.ndarray]], highest: int) -> RowRead:
    """`read` of every row as the reads of `_KEPT_RANGE_IDS` ids at a time, concatenated;
    `read` takes the ids (a list, or a `range` read as an id range)."""

    def every(ids: Sequence[int] | None) -> dict[str, np.ndarray]:
        if ids is not None:
            return read(ids)
        pieces = [
            {
                name: compact(values)
                for name, values in read(range(low, low + _KEPT_RANGE_IDS)).items()
            }
            for low in range(0, highest + 1, _KEPT_RANGE_IDS)
        ]
        return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}

    return every


def _kept_account_read(highest: dict[str, int]) -> RowRead:
    def read(ids: Sequence[int]) -> dict[str, np.ndarray]:
        columns = _market_account_columns(highest, ids)
        dates = {
            name: _dates_of(columns.pop(name))
            for name in ("entered_on", "archived_on", "converted_on")
        }
        market_first, market_last = _spans(IN_MARKET, dates)
        converted_first, _ = _spans(CONVERTED, dates)
        return {
            **columns,
            "market_first": market_first,
            "market_last": market_last,
            "converted_first": converted_first,
        }

    return _in_ranges(read, highest["account"])


def _kept_coverage_read(highest: dict[str, int]) -> RowRead:
    def read(ids: Sequence[int]) -> dict[str, np.ndarray]:
        columns = _market_coverage_columns(highest, ids)
        dates = {name: _dates_of(columns.pop(name)) for name in ("start_date", "end_date")}
        running_first, running_last = _spans(COVERAGE_RUNNING, dates)
        return {**columns, "running_first": running_first, "running_last": running_last}

    return _in_ranges(read, highest["assignment"])


def _kept_accounts(d: date, highest: dict[str, int]) -> AccountRows:
    """`_account_rows(d)` of the whole market from the accounts this process keeps
    (`kept_rows`): only those changed since its last read are read. Call in a REPEATABLE
    READ transaction of the read's own, in which `highest` was read."""
    kept = kept_fields(ACCOUNTS, _kept_account_read(highest))
    segments = _kept_segments(kept)
    day = int(day_numbers([d])[0])
    live = (kept["market_first"] <= day) & (day <= kept["market_last"])
    converted = kept["converted_first"]
    # `converted_via` is 1 + the winning kind's index: the state codes of `_account_state`.
    won = np.where(converted <= day, kept["converted_via"].astype("int8") + 1, 1)
    window = int(day_numbers([programme.window_start(d)])[0])
    year = int(day_numbers([programme.year_start(d)])[0])
    return replace(
        segments,
        state=np.where(live, won, 0).astype("int8"),
        converted_in_window=(window <= converted) & (converted <= day),
        converted_in_year=(year <= converted) & (converted <= day),
    )


# The kept accounts last indexed, with their segments and index; the kept assignments last
# joined to that index, and the join: kept rows are replaced, never changed in place, so the
# same fields are the same rows.
_indexed: tuple[dict[str, np.ndarray], AccountRows] | None = None
_joined: (
    tuple[dict[str, np.ndarray], metrics.Accounts, metrics.Assignments, pd.Categorical[str]] | None
) = None
_indexed_lock = threading.Lock()


def _kept_segments(kept: dict[str, np.ndarray]) -> AccountRows:
    """The kept accounts `kept` with their segments and indexed (`metrics.Accounts`), their
    states not yet told, once for as long as they are the accounts kept: a day's accounts
    differ from the day before's in their states only."""
    global _indexed
    with _indexed_lock:
        if _indexed is not None and _indexed[0] is kept:
            return _indexed[1]
    size_band = pd.Categorical.from_codes(
        kept["size_band"].astype(np.int8), categories=pd.Index(SIZE_BANDS)
    )
    account_id = kept["account_id"].astype("int64")
    region, vertical = kept["region"].astype("int32"), kept["vertical"].astype("int32")
    untold = np.zeros(0, dtype=bool)
    segments = AccountRows(
        account_id=account_id,
        region=region,
        vertical=vertical,
        size_band=size_band,
        state=untold,
        converted_in_window=untold,
        converted_in_year=untold,
        indexed=metrics.Accounts(
            account_id=account_id, region=region, vertical=vertical, size_band=size_band
        ),
    )
    with _indexed_lock:
        _indexed = (kept, segments)
    return segments


def _kept_coverage(highest: dict[str, int]) -> dict[str, np.ndarray]:
    """Every assignment this process keeps, as `_kept_accounts` keeps the accounts."""
    assignment = _highest_id(CoverageAssignment)
    return kept_fields(COVERAGE, _kept_coverage_read({**highest, "assignment": assignment}))


def _kept_assignments(
    kept: dict[str, np.ndarray], d: date, accounts: metrics.Accounts
) -> AssignmentRows:
    """The kept assignments `kept` (`_kept_coverage`), with those running on `d` marked
    (`AssignmentRows.running`): `_assignment_rows(d)` of the whole market are the marked
    ones. Joined to `accounts` (the kept accounts as indexed) once for as long as both are
    those kept."""
    global _joined
    day = int(day_numbers([d])[0])
    with _indexed_lock:
        joined = _joined
    if joined is None or joined[0] is not kept or joined[1] is not accounts:
        kind = pd.Categorical.from_codes(
            kept["kind"].astype(np.int8), categories=pd.Index(metrics.KINDS)
        )
        indexed = accounts.assignments(
            account_id=kept["account_id"], kind=kind, partner_id=kept["partner_id"]
        )
        joined = (kept, accounts, indexed, kind)
        with _indexed_lock:
            _joined = joined
    return AssignmentRows(
        account_id=kept["account_id"],
        kind=joined[3],
        partner_id=kept["partner_id"],
        rep_id=kept["rep_id"],
        running=(kept["running_first"] <= day) & (day <= kept["running_last"]),
        indexed=joined[2],
    )


def _indexed_of(accounts: AccountRows) -> metrics.Accounts:
    if accounts.indexed is None:
        raise ValueError("kept accounts come indexed")
    return accounts.indexed


@contextmanager
def _kept_week_read(d: date, highest: dict[str, int], *, parallel: bool) -> Iterator[WeekRead]:
    """`week_read(d)` of the whole market from the accounts and assignments this process
    keeps (`_kept_accounts`, `_kept_coverage`: a few passes over arrays once the changes are
    read), with the small tables read as ever; with `parallel`, the kept assignments, the
    small tables of the counts and those of the figures (`week_figure_tables`) each on a
    connection of its own from this transaction's exported snapshot (a worker's first run
    reads the assignments beside the accounts; the feedback's read is mostly the database's
    work, done beside the others)."""
    if not parallel:
        with _tuned_reads():
            accounts = _kept_accounts(d, highest)
            coverage = _kept_coverage(highest)
            assignments = _kept_assignments(coverage, d, _indexed_of(accounts))
            yield WeekRead(accounts, assignments, week_context(d))
        return
    snapshot = export_snapshot()
    with ThreadPoolExecutor(max_workers=3) as pool:
        kept_coverage = pool.submit(_in_snapshot, snapshot, _kept_coverage, highest)
        figure_tables = pool.submit(_in_snapshot, snapshot, week_figure_tables, d)
        counted = pool.submit(_in_snapshot, snapshot, week_context, d, figures=False)
        with _tuned_reads():
            accounts = _kept_accounts(d, highest)
        running = _kept_assignments(kept_coverage.result(), d, _indexed_of(accounts))

        def context() -> WeekContext:
            partners, feedback = figure_tables.result()
            return replace(counted.result(), partners=partners, feedback=feedback)

        yield WeekRead(accounts, running, context, counted)


def _frame(rows: Iterable[Sequence[Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def agreements_frame() -> pd.DataFrame:
    """Every agreement's partner, status and dates (`metrics.AGREEMENT_COLUMNS`). On PostgreSQL
    they arrive as integer arrays (`_agreement_arrays`), the dates as `datetime64[D]`."""
    if connection.vendor == "postgresql":
        with _one_snapshot(), _tuned_reads():
            frame = _agreement_arrays()
        if frame is not None:
            return frame
    fields = ["id", *metrics.AGREEMENT_COLUMNS[1:]]
    return _frame(Agreement.objects.order_by().values_list(*fields), metrics.AGREEMENT_COLUMNS)


_AGREEMENT_STATUSES: tuple[str, ...] = tuple(AgreementStatus.values)
# The date columns of `metrics.AGREEMENT_COLUMNS`.
AGREEMENT_DATES: list[str] = [name for name in metrics.AGREEMENT_COLUMNS[2:] if name != "status"]


def _agreement_arrays() -> pd.DataFrame | None:
    """`agreements_frame`'s rows, every column sent as integers gathered into arrays
    (`_integer_columns`): the status as its place in `AgreementStatus`, each date as a day
    number. In id order. None when there are none, or when a status is none of
    `AgreementStatus`'s (the caller then reads the rows as they are)."""
    highest = {"agreement": _highest_id(Agreement), "partner": _highest_id(Partner)}
    if not highest["agreement"]:
        return None
    statuses = _AGREEMENT_STATUSES
    fields = _integer_columns(
        Agreement.objects.filter(id__lte=highest["agreement"], partner_id__lte=highest["partner"]),
        _Packing(
            [
                _Field("agreement_id", F("id"), _bits(highest["agreement"])),
                _Field("partner_id", F("partner_id"), _bits(highest["partner"])),
                _Field(
                    "status", _case("status", statuses, default=len(statuses)), _bits(len(statuses))
                ),
                *(_Field(name, _day_number(name), _DAY_BITS) for name in AGREEMENT_DATES),
            ]
        ),
    )
    if (fields["status"] >= len(statuses)).any():
        return None
    order = np.argsort(fields["agreement_id"], kind="stable")
    columns = {
        "agreement_id": fields["agreement_id"],
        "partner_id": fields["partner_id"],
        "status": np.array(statuses, dtype=object)[fields["status"]],
        **{name: _dates_of(fields[name]) for name in AGREEMENT_DATES},
    }
    return pd.DataFrame({name: columns[name][order] for name in metrics.AGREEMENT_COLUMNS})


def agreement_scopes(column: str, *, codes: bool = False) -> pd.DataFrame:
    """The regions (`column` "region") or verticals ("vertical") the agreements list:
    `agreement_id, <column>`, the second its id (with `codes`, its code); on PostgreSQL read
    as integer arrays."""
    through = getattr(Agreement, f"{column}s").through
    scoped = through._meta.get_field(column).related_model
    if connection.vendor != "postgresql":
        rows = through.objects.values_list("agreement_id", f"{column}_id")
        scopes = _frame(rows, ["agreement_id", column])
    else:
        with _one_snapshot(), _tuned_reads():
            highest = {"agreement_id": _highest_id(Agreement), column: _highest_id(scoped)}
            fields = _integer_columns(
                through.objects.filter(
                    agreement_id__lte=highest["agreement_id"],
                    **{f"{column}_id__lte": highest[column]},
                ),
                _Packing(
                    [
                        _Field("agreement_id", F("agreement_id"), _bits(highest["agreement_id"])),
                        _Field(column, F(f"{column}_id"), _bits(highest[column])),
                    ]
                ),
            )
        scopes = pd.DataFrame(fields)
    if codes:
        scopes[column] = scopes[column].map(_codes(scoped))
    return scopes


FEEDBACK_FRAME_COLUMNS = [
    "partner_id",
    "channel_kind",
    "created_on",
    "category",
    "satisfaction",
    "nps",
]


class EpochMicroseconds(Func):
    """A moment as whole microseconds since 1970-01-01 UTC, computed exactly by the database,
    so a wait can be taken over integers instead of tens of thousands of datetimes built in
    Python."""

    output_field = BigIntegerField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> _AsSqlType:
        # EXTRACT(EPOCH ...) is numeric (exact to the microsecond) since PostgreSQL 14.
        template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> _AsSqlType:
        # The function Django's SQLite backend computes `datetime - datetime` with, in whole
        # microseconds: moments are kept as UTC text there.
        template = "django_timestamp_diff(%(expressions)s, '1970-01-01 00:00:00')"
        return self.as_sql(compiler, connection, template=template, **extra)


# Each entry's id, source and the moment it was created (microseconds since 1970): what the
# partner programme's response times read (docs/metrics.md rule 23).
FEEDBACK_MOMENT_COLUMNS = ["id", "source", "created_us"]


def feedback_frame(since: date | None = None, *, moments: bool = False) -> pd.DataFrame:
    """Every feedback entry's partner and its channel kind, created date (in the project's time
    zone), category, satisfaction and NPS; only those created on or after `since` when
    given. With `moments`, also `FEEDBACK_MOMENT_COLUMNS`."""
    columns = FEEDBACK_FRAME_COLUMNS + (FEEDBACK_MOMENT_COLUMNS if moments else [])
    entries = Feedback.objects.all()
    if since is not None:
        entries = entries.filter(
            created_at__gte=timezone.make_aware(datetime.combine(since, time.min))
        )
    if connection.vendor == "postgresql":
        # One snapshot: the highest ids and the rows they bound are read as of one moment.
        with _one_snapshot(), _tuned_reads():
            frame = _feedback_arrays(entries)
        if frame is not None:
            return frame[columns]
    rows = entries.annotate(
        channel_kind=F("partner__channel_kind"),
        created_on=TruncDate("created_at"),
        created_us=EpochMicroseconds("created_at"),
    ).values_list(*columns)
    frame = _frame(rows, columns)
    frame["nps"] = frame["nps"].astype("float64")
    return frame


# The coded text columns of the feedback frame and the values each may hold (the database's
# check constraints hold them to these).
_FEEDBACK_CODES: dict[str, tuple[str, ...]] = {
    "channel_kind": tuple(PartnerKind.values),
    "category": tuple(FeedbackCategory.values),
    "source": tuple(FeedbackSource.values),
}


def _feedback_arrays(entries: QuerySet[Feedback]) -> pd.DataFrame | None:
    """`feedback_frame`'s rows of `entries` with its moments, every column sent as integers
    gathered into arrays (`_integer_columns`): tens of thousands of entries arrive as a few
    array values instead of a Python tuple each. Newest first, as the model lists them (ties
    by id). None when there are none, or when a text column holds a value outside its codes
    (the caller then reads the rows as they are)."""
    highest = {
        "feedback": entries.order_by("-id").values_list("id", flat=True).first() or 0,
        "partner": _highest_id(Partner),
    }
    if not highest["feedback"]:
        return None
    coded = {
        name: _case(
            "partner__channel_kind" if name == "channel_kind" else name,
            values,
            default=len(values),
        )
        for name, values in _FEEDBACK_CODES.items()
    }
    fields = _integer_columns(
        entries.filter(id__lte=highest["feedback"], partner_id__lte=highest["partner"]),
        _Packing(
            [
                _Field("id", F("id"), _bits(highest["feedback"])),
                _Field("partner_id", F("partner_id"), _bits(highest["partner"])),
                _Field("satisfaction", F("satisfaction"), 16),
                # 0 for no score, else the score + 1.
                _Field("nps", Coalesce(F("nps") + Value(1), Value(0)), 16),
                _Field("created_on", _day_number_of(TruncDate("created_at")), _DAY_BITS),
                # Wide enough for the default too (a value outside the codes).
                *(
                    _Field(name, expression, _bits(len(_FEEDBACK_CODES[name])))
                    for name, expression in coded.items()
                ),
                _Field("created_us", EpochMicroseconds("created_at"), 64),
            ]
        ),
    )
    if not len(fields["id"]) or any(
        (fields[name] >= len(values)).any() for name, values in _FEEDBACK_CODES.items()
    ):
        return None
    order = np.lexsort((-fields["id"], -fields["created_us"]))
    nps = fields["nps"][order]
    return pd.DataFrame(
        {
            "partner_id": fields["partner_id"][order],
            "channel_kind": _labels(fields["channel_kind"][order], "channel_kind"),
            "created_on": _dates_of(fields["created_on"][order]).astype(object),
            "category": _labels(fields["category"][order], "category"),
            "satisfaction": fields["satisfaction"][order],
            "nps": np.where(nps > 0, nps - 1, np.nan).astype("float64"),
            "id": fields["id"][order],
            "source": _labels(fields["source"][order], "source"),
            "created_us": fields["created_us"][order],
        }
    )


def _labels(codes: np.ndarray, column: str) -> np.ndarray:
    """The text values of `_FEEDBACK_CODES[column]` that `codes` stand for."""
    labels: np.ndarray = np.array(_FEEDBACK_CODES[column], dtype=object)[codes]
    return labels


def partners_frame() -> pd.DataFrame:
    """Every partner (`partner_id, external_id, name, channel_kind`)."""
    rows = Partner.objects.values_list("id", "external_id", "name", "channel_kind")
    return _frame(rows, ["partner_id", "external_id", "name", "channel_kind"])


# A date sent as an integer: 1 + its day number counted from 0001-01-01, 0 when missing; every
# date up to 9999-12-31 fits in 22 bits.
_DAY_ONE = np.datetime64("0001-01-01", "D")
_DAY_BITS = 22


def _day_number(field: str) -> Combinable:
    return _day_number_of(F(field))


def _day_number_of(day: Combinable) -> Combinable:
    # `date - date` is an integer number of days in PostgreSQL; counted from the day before
    # 0001-01-01 (1 BC's last day: there is no year 0), it is the number without an addition.
    return Coalesce(
        Func(
            day,
            template="(%(expressions)s - DATE '0001-12-31 BC')",
            output_field=BigIntegerField(),
        ),
        Value(0),
    )


def _dates_of(numbers: np.ndarray) -> np.ndarray:
    """`_day_number`'s integers back as `datetime64[D]`, NaT where 0 (missing)."""
    # Days since 1970-01-01 are `datetime64[D]`'s own integers: one addition, then a view.
    days = (numbers.astype("int64") + (int(_DAY_ONE.astype("int64")) - 1)).view("datetime64[D]")
    days[numbers <= 0] = np.datetime64("NaT", "D")
    return days


def _names_of(ids: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """Each id's name (code) from `names`, as an object array."""
    known = np.array(sorted(names), dtype="int64")
    labels = np.array([names[int(key)] for key in known], dtype=object)
    return labels[np.searchsorted(known, ids)] if len(known) else np.zeros(0, dtype=object)


def _of_ids(rows: QuerySet[M], ids: Sequence[int] | None) -> QuerySet[M]:
    """The rows of `ids` (a `range`: the ids from its start up to its stop), all with None."""
    if isinstance(ids, range):
        return rows.filter(id__gte=ids.start, id__lt=ids.stop)
    return rows if ids is None else rows.filter(id__in=ids)


def _market_account_columns(
    highest: dict[str, int], ids: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Every account's id, region and vertical ids, size band, winning kind and dates (day
    numbers), as `_market_arrays` reads them; only the accounts of `ids` when given (a `range`
    is read as the range of ids it spans)."""
    accounts = Account.objects.filter(
        id__lte=highest["account"],
        region_id__lte=highest["region"],
        vertical_id__lte=highest["vertical"],
    )
    return _integer_columns(
        _of_ids(accounts, ids),
        _Packing(
            [
                _Field("account_id", F("id"), _bits(highest["account"])),
                _Field("region", F("region_id"), _bits(highest["region"])),
                _Field("vertical", F("vertical_id"), _bits(highest["vertical"])),
                _Field("size_band", _last_by_default("size_band", SIZE_BANDS), 3),
                # Most accounts are not converted: their empty kind is tested first.
                _Field("converted_via", _last_by_default("converted_via", ["", *metrics.KINDS]), 3),
                *(
                    _Field(name, _day_number(name), _DAY_BITS)
                    for name in ("entered_on", "archived_on", "converted_on")
                ),
            ]
        ),
    )


def _market_coverage_columns(
    highest: dict[str, int], ids: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Every assignment's account, partner (0 for none), kind, rep (0 for none) and dates (day
    numbers), as `_market_arrays` reads them; each with its id (`assignment_id`) when
    `highest` names the highest assignment id (`"assignment"`); only those of `ids` when
    given (a `range` is read as the range of ids it spans)."""
    assignments = (
        CoverageAssignment.objects.filter(account_id__lte=highest["account"])
        .annotate(owner=Coalesce("partner_id", Value(0)), seller=Coalesce("rep_id", Value(0)))
        .filter(owner__lte=highest["partner"], seller__lte=highest["rep"])
    )
    named = []
    if "assignment" in highest:
        assignments = assignments.filter(id__lte=highest["assignment"])
        named = [_Field("assignment_id", F("id"), _bits(highest["assignment"]))]
    return _integer_columns(
        _of_ids(assignments, ids),
        _Packing(
            [
                *named,
                _Field("account_id", F("account_id"), _bits(highest["account"])),
                _Field("partner_id", F("owner"), _bits(highest["partner"])),
                _Field("kind", _kind_by_owner(), 3),
                _Field("rep_id", F("seller"), _bits(highest["rep"])),
                *(
                    _Field(name, _day_number(name), _DAY_BITS)
                    for name in ("start_date", "end_date")
                ),
            ]
        ),
    )


def _market_arrays(
    regions: dict[int, str], verticals: dict[int, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accounts and coverage frames of `market_frames` on PostgreSQL: every column sent as
    integers gathered into arrays (`_integer_columns`), dates as day numbers, in one snapshot.
    A million accounts and their assignments arrive in a few array values instead of millions
    of rows. Outside a transaction the coverage is read on a second connection from this one's
    exported snapshot while this one reads the accounts, as a week's read does (`week_read`):
    the same rows, sooner on two cores."""
    with _one_snapshot() as fresh:
        highest = _highest_ids()
        if not fresh:
            with _tuned_reads():
                accounts = _market_account_columns(highest)
                coverage = _market_coverage_columns(highest)
        else:
            snapshot = export_snapshot()
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(_in_snapshot, snapshot, _market_coverage_columns, highest)
                with _tuned_reads():
                    accounts = _market_account_columns(highest)
                coverage = pending.result()
    account_frame = pd.DataFrame(
        {
            "account_id": accounts["account_id"],
            "region": _names_of(accounts["region"], regions),
            "vertical": _names_of(accounts["vertical"], verticals),
            "size_band": np.array(SIZE_BANDS, dtype=object)[accounts["size_band"]],
            **{
                name: _dates_of(accounts[name])
                for name in ("entered_on", "archived_on", "converted_on")
            },
            "converted_via": np.array(["", *metrics.KINDS], dtype=object)[
                accounts["converted_via"]
            ],
        }
    )
    coverage_frame = pd.DataFrame(
        {
            "account_id": coverage["account_id"],
            "kind": pd.Categorical.from_codes(
                coverage["kind"].astype(np.int8), categories=pd.Index(metrics.KINDS)
            ),
            # 0 for direct and online, as `metrics.Accounts.assignments` takes it.
            "partner_id": coverage["partner_id"],
            "rep_id": coverage["rep_id"],
            "start_date": _dates_of(coverage["start_date"]),
            "end_date": _dates_of(coverage["end_date"]),
        }
    )
    return account_frame, coverage_frame


def _market_rows(
    regions: dict[int, str], verticals: dict[int, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accounts and coverage frames of `market_frames`, row by row (SQLite)."""
    account_columns = ["account_id", "region", "vertical", "size_band", "entered_on"]
    account_columns += ["archived_on", "converted_on", "converted_via"]
    accounts = _frame(
        Account.objects.order_by().values_list("id", *account_columns[1:]), account_columns
    )
    accounts["region"] = accounts["region"].map(regions)
    accounts["vertical"] = accounts["vertical"].map(verticals)
    accounts["converted_via"] = accounts["converted_via"].astype(object).fillna("").astype(str)
    for column in ("entered_on", "archived_on", "converted_on"):
        accounts[column] = pd.to_datetime(accounts[column])
    coverage_columns = ["account_id", "kind", "partner_id", "rep_id", "start_date", "end_date"]
    coverage = _frame(
        CoverageAssignment.objects.order_by().values_list(*coverage_columns), coverage_columns
    )
    coverage["partner_id"] = coverage["partner_id"].astype("Int64")
    coverage["rep_id"] = coverage["rep_id"].fillna(0).astype("int64")
    for column in ("start_date", "end_date"):
        coverage[column] = pd.to_datetime(coverage[column])
    return accounts, coverage


def market_frames() -> dict[str, pd.DataFrame]:
    """The account-level frames `metrics.PreparedMarket` takes, loaded once for any as-of date.

    Keys: accounts, coverage (with each row's `rep_id`, 0 when none), agreements,
    agreement_regions, agreement_verticals, feedback, partners. Region and vertical are codes;
    dates are datetime64 (NaT when missing).
    """
    regions, verticals = _codes(Region), _codes(Vertical)
    read = _market_arrays if connection.vendor == "postgresql" else _market_rows
    accounts, coverage = read(regions, verticals)
    return {
        "accounts": accounts,
        "coverage": coverage,
        "agreements": agreements_frame(),
        "agreement_regions": agreement_scopes("region", codes=True),
        "agreement_verticals": agreement_scopes("vertical", codes=True),
        # With the moments the partner programme's steps count each day's entries from.
        "feedback": feedback_frame(moments=True),
        "partners": partners_frame(),
    }
