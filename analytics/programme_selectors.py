"""Reads for the weekly programme step: the day's programme counts that the metrics snapshot
does not hold (docs/metrics.md rules 20, 22 and 23), each with the database doing the
grouping and handing over one small row per partner or rep.

Nothing here computes a figure beyond counting rows: `analytics.programme` does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections
from django.db.models import Case, Count, Min, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from analytics import metrics, programme
from analytics.selectors import EpochMicroseconds, week_context
from channels.models import CoverageAssignment
from channels.opportunity_models import Opportunity, OpportunityStage
from channels.rules import COVERAGE_RUNNING
from crm.currencies import RateTable
from crm.models import ChannelKind
from crm.rules import IN_MARKET
from crm.sql import driver_rows
from partners.models import Agreement, Feedback, FeedbackReply, FeedbackSource, Partner
from partners.programme_models import Certification, Target
from partners.registration_models import DealRegistration, RegistrationStatus
from partners.rules import AGREEMENT_IN_FORCE


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConversionCounts:
    """Per partner (`partner_id, conversions, conversions_ytd`) and per rep (`rep_id,
    conversions_ytd`): the accounts they cover on the day (rules 3 and 6) that converted in the
    52 weeks, and since 1 January."""

    partners: pd.DataFrame
    reps: pd.DataFrame


def conversions(d: date) -> ConversionCounts:
    """Rule 20's and rule 22's conversions on `d`. The database hands over only the running
    coverage of in-market accounts converted since the earlier of the two window starts (a
    small share of the market); the agreement grant of rule 3b is applied here, over arrays,
    by `metrics.grant_table`."""
    since = min(programme.window_start(d), programme.year_start(d))
    rows = list(
        CoverageAssignment.objects.filter(COVERAGE_RUNNING.q(d))
        .filter(IN_MARKET.q(d, "account__"))
        .filter(account__converted_on__gte=since, account__converted_on__lte=d)
        .values_list(
            "account_id",
            "kind",
            "partner_id",
            "rep_id",
            "account__region_id",
            "account__vertical_id",
            "account__converted_on",
        )
    )
    columns = ["account_id", "kind", "partner_id", "rep_id", "region", "vertical", "converted_on"]
    frame = pd.DataFrame(rows, columns=columns)
    empty = ConversionCounts(
        pd.DataFrame(columns=["partner_id", "conversions", "conversions_ytd"]),
        pd.DataFrame(columns=["rep_id", "conversions_ytd"]),
    )
    if frame.empty:
        return empty
    converted = pd.to_datetime(frame["converted_on"])
    frame["in_window"] = converted >= pd.Timestamp(programme.window_start(d))
    frame["in_year"] = converted >= pd.Timestamp(programme.year_start(d))

    by_partner = frame[frame["kind"].isin(metrics.PARTNER_KINDS)].copy()
    if not by_partner.empty:
        context = week_context(d, figures=False)
        partners = pd.Index(by_partner["partner_id"].astype("int64").unique())
        regions = pd.Index(by_partner["region"].unique())
        verticals = pd.Index(by_partner["vertical"].unique())
        granted = metrics.grant_table(
            in_force=metrics.agreements_in_force(context.agreements, d),
            agreement_regions=context.agreement_regions,
            agreement_verticals=context.agreement_verticals,
            partners=partners,
            regions=regions,
            verticals=verticals,
        )
        allowed = granted[
            partners.get_indexer(by_partner["partner_id"].astype("int64")),
            regions.get_indexer(by_partner["region"]),
            verticals.get_indexer(by_partner["vertical"]),
        ]
        by_partner = by_partner[allowed].drop_duplicates(["partner_id", "account_id"])
    partner_counts = (
        by_partner.groupby("partner_id")
        .agg(conversions=("in_window", "sum"), conversions_ytd=("in_year", "sum"))
        .reset_index()
        .astype("int64")
    )
    direct = frame[frame["kind"] == ChannelKind.DIRECT].drop_duplicates(["rep_id", "account_id"])
    rep_counts = (
        direct.groupby("rep_id").agg(conversions_ytd=("in_year", "sum")).reset_index()
    ).astype("int64")
    return ConversionCounts(partner_counts, rep_counts)


def rep_covered_accounts(d: date, rep_ids: list[int]) -> dict[int, int]:
    """Per rep of `rep_ids`: the in-market accounts its direct coverage covers on `d` (rule
    3; direct coverage needs no agreement), each counted once."""
    if not rep_ids:
        return {}
    rows = (
        CoverageAssignment.objects.filter(
            COVERAGE_RUNNING.q(d), kind=ChannelKind.DIRECT, rep_id__in=rep_ids
        )
        .filter(IN_MARKET.q(d, "account__"))
        .values("rep_id")
        .annotate(accounts=Count("account_id", distinct=True))
        .values_list("rep_id", "accounts")
    )
    return dict(rows)


def partner_inputs(d: date) -> pd.DataFrame:
    """Per partner (`PARTNER_INPUT_COLUMNS`), in id order: its channel kind, whether it is
    active, its tier now (`current_tier`), the day its first agreement was signed (none yet:
    NaT), the certifications it holds on `d`, and
    its deal registrations submitted, won and lost in the 52 weeks ending on `d` and won since
    1 January (rule 20). One query: the database counts each source per partner and joins
    the counts to the partners."""
    start, first_of_year = programme.window_start(d), programme.year_start(d)
    partners = Partner.objects.order_by().values_list("id", "channel_kind", "is_active", "tier")
    signed = (
        Agreement.objects.filter(signed_on__isnull=False, signed_on__lte=d)
        .order_by()
        .values("partner_id")
        .annotate(first=Min("signed_on"))
        .values_list("partner_id", "first")
    )
    held = (
        Certification.objects.filter(earned_on__lte=d)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=d))
        .order_by()
        .values("partner_id")
        .annotate(n=Count("id"))
        .values_list("partner_id", "n")
    )
    won = Q(status=RegistrationStatus.WON)
    registrations = (
        DealRegistration.objects.filter(
            Q(submitted_at__gte=_start_of(start), submitted_at__lt=_start_of(d + timedelta(1)))
            | Q(closed_on__gte=min(start, first_of_year), closed_on__lte=d)
        )
        .order_by()
        .values("partner_id")
        .annotate(
            submitted=Count(
                "id",
                filter=Q(
                    submitted_at__gte=_start_of(start),
                    submitted_at__lt=_start_of(d + timedelta(1)),
                ),
            ),
            won=Count("id", filter=won & Q(closed_on__gte=start, closed_on__lte=d)),
            lost=Count(
                "id",
                filter=Q(status=RegistrationStatus.LOST, closed_on__gte=start, closed_on__lte=d),
            ),
            won_ytd=Count("id", filter=won & Q(closed_on__gte=first_of_year, closed_on__lte=d)),
        )
        .values_list("partner_id", "submitted", "won", "lost", "won_ytd")
    )
    parts = [_compiled(query) for query in (partners, signed, held, registrations)]
    select = (
        "SELECT p.id, p.channel_kind, p.is_active, p.tier, a.first, COALESCE(c.n, 0), "
        "COALESCE(r.submitted, 0), COALESCE(r.won, 0), COALESCE(r.lost, 0), "
        "COALESCE(r.won_ytd, 0) FROM ({}) p "
        "LEFT JOIN ({}) a ON a.partner_id = p.id "
        "LEFT JOIN ({}) c ON c.partner_id = p.id "
        "LEFT JOIN ({}) r ON r.partner_id = p.id ORDER BY p.id"
    ).format(*(text for text, _params in parts))
    with connections[partners.db].cursor() as cursor:
        cursor.execute(select, [param for _text, params in parts for param in params])
        rows = cursor.fetchall()
    # The select's columns are in `PARTNER_INPUT_COLUMNS`' order; each column is typed at
    # once as it is made into an array (the rows turned into one array of objects first cost
    # more than the rest of the frame).
    values = list(zip(*rows, strict=True)) if rows else [()] * len(PARTNER_INPUT_COLUMNS)
    kinds: dict[str, Any] = {"partner_id": "int64", "is_active": bool, "certifications": "int64"}
    kinds |= dict.fromkeys(REGISTRATION_COLUMNS, "int64")
    frame = pd.DataFrame(
        {
            column: np.array(values[position], dtype=kinds.get(column, object))
            for position, column in enumerate(PARTNER_INPUT_COLUMNS)
        }
    )
    # A date from PostgreSQL, its ISO text from SQLite; none yet: NaT.
    frame["first_signed"] = pd.to_datetime(frame["first_signed"])
    return frame


def partner_inputs_of_days(days: Sequence[date]) -> dict[date, pd.DataFrame]:
    """`partner_inputs(d)` of each of `days` (a backfill's), from one read of each source
    instead of one query a day: the partners, each partner's first signing (the first
    signing on or before a day is the first of all when that is on or before the day, and
    none otherwise), the certifications and the deal registrations of the days' windows with
    their dates, counted for each day over arrays. Each partner's tier is its tier now, as
    when the days are read."""
    if not days:
        return {}
    first, last = min(days), max(days)
    earliest = min(min(programme.window_start(day), programme.year_start(day)) for day in days)
    partners = np.array(
        driver_rows(
            Partner.objects.order_by("id").values_list("id", "channel_kind", "is_active", "tier")
        ),
        dtype=object,
    ).reshape(-1, 4)
    ids = partners[:, 0].astype("int64")
    index = pd.Index(ids)
    signed = dict(
        Agreement.objects.filter(signed_on__isnull=False)
        .order_by()
        .values("partner_id")
        .annotate(first=Min("signed_on"))
        .values_list("partner_id", "first")
    )
    first_signed = pd.to_datetime(
        pd.Series([signed.get(pk) for pk in ids.tolist()], dtype=object)
    ).to_numpy()
    held = _dated(
        Certification.objects.filter(earned_on__lte=last)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=first))
        .order_by()
        .values_list("partner_id", "earned_on", "expires_on"),
        width=3,
        dates=(1, 2),
    )
    registrations = _dated(
        DealRegistration.objects.filter(
            Q(
                submitted_at__gte=_start_of(earliest),
                submitted_at__lt=_start_of(last + timedelta(1)),
            )
            | Q(closed_on__gte=earliest, closed_on__lte=last)
        )
        .order_by()
        .values_list(
            "partner_id",
            EpochMicroseconds("submitted_at"),
            "closed_on",
            Case(
                When(status=RegistrationStatus.WON, then=Value(1)),
                When(status=RegistrationStatus.LOST, then=Value(2)),
                default=Value(0),
            ),
        ),
        width=4,
        dates=(2,),
    )
    held_at = index.get_indexer(held[:, 0])
    registered_at = index.get_indexer(registrations[:, 0])
    held, registrations = held[held_at >= 0], registrations[registered_at >= 0]
    held_at, registered_at = held_at[held_at >= 0], registered_at[registered_at >= 0]
    _partner, submitted, closed, outcome = registrations.T
    won, lost = outcome == 1, outcome == 2

    def per_partner(at: np.ndarray, counted: np.ndarray) -> np.ndarray:
        return np.bincount(at[counted], minlength=len(ids)).astype("int64")

    inputs = {}
    for day in days:
        number = day.toordinal()
        start, year = programme.window_start(day).toordinal(), programme.year_start(day).toordinal()
        in_window = (closed >= start) & (closed <= number)
        this_year = (closed >= year) & (closed <= number)
        begins = _microseconds(_start_of(programme.window_start(day)))
        ends = _microseconds(_start_of(day + timedelta(1)))
        frame = pd.DataFrame(
            {
                "partner_id": ids,
                "channel_kind": partners[:, 1],
                "is_active": partners[:, 2].astype(bool),
                "current_tier": partners[:, 3],
                # NaT (none signed yet) compares false.
                "first_signed": np.where(
                    first_signed <= np.datetime64(day), first_signed, np.datetime64("NaT")
                ),
                "certifications": per_partner(
                    held_at,
                    (held[:, 1] <= number) & ((held[:, 2] == 0) | (held[:, 2] >= number)),
                ),
                "registrations_submitted": per_partner(
                    registered_at, (submitted >= begins) & (submitted < ends)
                ),
                "registrations_won": per_partner(registered_at, won & in_window),
                "registrations_lost": per_partner(registered_at, lost & in_window),
                "registrations_won_ytd": per_partner(registered_at, won & this_year),
            }
        )
        frame["first_signed"] = pd.to_datetime(frame["first_signed"])
        inputs[day] = frame[PARTNER_INPUT_COLUMNS]
    return inputs


def _dated(rows: QuerySet[Any], *, width: int, dates: tuple[int, ...]) -> np.ndarray:
    """The rows of a `values_list()` of `width` integers and dates as one array of integers,
    each date at a position of `dates` as its ordinal (`date.toordinal()`), 0 when none."""
    found = [
        tuple(
            (value.toordinal() if value is not None else 0) if at in dates else value
            for at, value in enumerate(row)
        )
        for row in rows
    ]
    return np.array(found, dtype="int64").reshape(-1, width)


REGISTRATION_COLUMNS = [
    "registrations_submitted",
    "registrations_won",
    "registrations_lost",
    "registrations_won_ytd",
]
PARTNER_INPUT_COLUMNS = [
    "partner_id",
    "channel_kind",
    "is_active",
    "current_tier",
    "first_signed",
    "certifications",
    *REGISTRATION_COLUMNS,
]


def _compiled(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    """The SQL of `queryset` and its parameters, as the database it reads takes them."""
    text, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    return text, tuple(params)


FEEDBACK_INPUT_COLUMNS = [
    "partner_id",
    "response_days",
    *programme.FEEDBACK_COUNT_COLUMNS.values(),
]


def _category_counts(entries: QuerySet[Feedback]) -> pd.DataFrame:
    """Per partner with `entries` (`partner_id`, then `programme.FEEDBACK_COUNT_COLUMNS`): its
    entries of each category. The database counts in one pass
    and hands over one small row per partner; a check constraint keeps every entry's category
    one of `FeedbackCategory`, so the columns count them all."""
    columns = list(programme.FEEDBACK_COUNT_COLUMNS.values())
    rows = driver_rows(
        entries.order_by()
        .values("partner_id")
        .annotate(
            **{
                column: Count("id", filter=Q(category=category))
                for category, column in programme.FEEDBACK_COUNT_COLUMNS.items()
            }
        )
        .values_list("partner_id", *columns)
    )
    return pd.DataFrame(rows, columns=["partner_id", *columns])


def _microseconds(moment: datetime) -> int:
    """`moment` as whole microseconds since 1970-01-01 UTC (what `EpochMicroseconds` gives)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class _Entries:
    """The columns of the week's feedback frame (`analytics.selectors.feedback_frame` with its
    moments) that the programme reads, as arrays: one value per entry."""

    id: np.ndarray
    partner_id: np.ndarray
    category: np.ndarray
    source: np.ndarray
    created_us: np.ndarray

    @classmethod
    def within(cls, entries: pd.DataFrame, start: datetime, end: datetime) -> _Entries:
        """The entries of `entries` created from `start` to before `end`, compared as
        integers (microseconds)."""
        created = entries["created_us"].to_numpy(dtype="int64")
        inside = (created >= _microseconds(start)) & (created < _microseconds(end))
        return cls(
            id=entries["id"].to_numpy(dtype="int64")[inside],
            partner_id=entries["partner_id"].to_numpy(dtype="int64")[inside],
            category=entries["category"].to_numpy(dtype=object)[inside],
            source=entries["source"].to_numpy(dtype=object)[inside],
            created_us=created[inside],
        )


def _category_counts_of(entries: _Entries) -> pd.DataFrame:
    """`_category_counts` of `entries`, counted over arrays instead of read again: each
    entry's partner and category coded by hashing (the few categories against
    `FeedbackCategory`), then one count per partner and category."""
    columns = list(programme.FEEDBACK_COUNT_COLUMNS.values())
    partner_codes, partner_ids = pd.factorize(entries.partner_id, sort=True)
    codes, categories = pd.factorize(entries.category)
    known = pd.Index(list(programme.FEEDBACK_COUNT_COLUMNS)).get_indexer(pd.Index(categories))
    if (codes < 0).any() or (known < 0).any():
        raise ValueError("a feedback entry's category is not one of FeedbackCategory")
    category_codes = known[codes]
    counts = np.bincount(
        partner_codes * len(columns) + category_codes,
        minlength=len(partner_ids) * len(columns),
    ).reshape(len(partner_ids), len(columns))
    frame = pd.DataFrame(counts.astype("int64"), columns=columns)
    frame.insert(0, "partner_id", np.asarray(partner_ids, dtype="int64"))
    return frame


def _messages_of(entries: _Entries) -> np.ndarray:
    """The messages (entries not from a survey) of `entries`: one row each of `id,
    partner_id, created` (microseconds since 1970), as the database hands them over in
    `feedback_inputs`."""
    message = entries.source != FeedbackSource.SURVEY.value
    return np.column_stack(
        [entries.id[message], entries.partner_id[message], entries.created_us[message]]
    ).reshape(-1, 3)


def first_replies(d: date) -> np.ndarray:
    """Rule 23: the first reply written by one of our users on or before `d` to each message
    (an entry not from a survey) of the 90 days ending on `d`: one row each of `feedback_id,
    first` (microseconds since 1970). Found by a join on the same 90 days rather than by a
    list of ids (tens of thousands at 10,000 partners)."""
    since = d - timedelta(days=metrics.FEEDBACK_WINDOW_DAYS - 1)
    end = _start_of(d + timedelta(days=1))
    rows = driver_rows(
        _our_replies(since, end)
        .filter(created_at__lt=end)
        .annotate(first=EpochMicroseconds(Min("created_at")))
        .values_list("feedback_id", "first")
    )
    return np.array(rows, dtype="int64").reshape(-1, 2)


def _our_replies(since: date, end: datetime) -> QuerySet[FeedbackReply, Any]:
    """The replies written by one of our users to the messages (entries not from a survey)
    created from the start of `since` to before `end`, by message (`feedback_id`)."""
    return (
        FeedbackReply.objects.filter(
            feedback__created_at__gte=_start_of(since),
            feedback__created_at__lt=end,
            author__isnull=False,
            author__partner_membership__isnull=True,
        )
        .exclude(feedback__source=FeedbackSource.SURVEY)
        .order_by()
        .values("feedback_id")
    )


def first_replies_of_days(days: Sequence[date]) -> dict[date, np.ndarray]:
    """`first_replies(d)` of each of `days` (a backfill's), from one read: each message of
    the days' windows with its first reply by one of our users, whatever its day. A day's
    first reply on or before it is that first reply when it is written on or before the
    day's end, and there is none otherwise."""
    if not days:
        return {}
    since = min(days) - timedelta(days=metrics.FEEDBACK_WINDOW_DAYS - 1)
    last_end = _start_of(max(days) + timedelta(days=1))
    rows = driver_rows(
        _our_replies(since, last_end)
        .annotate(
            created=EpochMicroseconds(Min("feedback__created_at")),
            first=EpochMicroseconds(Min("created_at")),
        )
        .values_list("feedback_id", "created", "first")
    )
    found = np.array(rows, dtype="int64").reshape(-1, 3)
    feedback_id, created, first = found.T
    replies = {}
    for day in days:
        start = _microseconds(_start_of(day - timedelta(days=metrics.FEEDBACK_WINDOW_DAYS - 1)))
        end = _microseconds(_start_of(day + timedelta(days=1)))
        kept = (created >= start) & (created < end) & (first < end)
        replies[day] = np.column_stack([feedback_id[kept], first[kept]]).reshape(-1, 2)
    return replies


def feedback_inputs(
    d: date, entries: pd.DataFrame | None = None, replies: np.ndarray | None = None
) -> pd.DataFrame:
    """Per partner with feedback in the 90 days ending on `d` (rule 23, `FEEDBACK_INPUT_COLUMNS`):
    its entries per category (one count per category, `programme.FEEDBACK_COUNT_COLUMNS`),
    and the mean days to our first
    reply over the entries that are messages (not survey scores): from creation to the first
    reply written by one of our users on or before `d`, or to the end of `d` when none, at most
    `programme.RESPONSE_DAYS_CAP` (none when it sent no message).

    `entries`: the week's feedback frame of the same 90 days or more with the entries' moments,
    as the week's pass read it (`analytics.selectors.feedback_frame` with `moments`), whose
    categories and messages are taken instead of read again; the database hands them over when
    none. `replies`: `first_replies(d)` when read already (read here when none)."""
    since = d - timedelta(days=metrics.FEEDBACK_WINDOW_DAYS - 1)
    end = _start_of(d + timedelta(days=1))
    stored = Feedback.objects.filter(created_at__gte=_start_of(since), created_at__lt=end)
    if entries is None:
        counts = _category_counts(stored)
        messages = np.array(
            driver_rows(
                stored.exclude(source=FeedbackSource.SURVEY)
                .order_by()
                .values_list("id", "partner_id", EpochMicroseconds("created_at"))
            ),
            dtype="int64",
        ).reshape(-1, 3)
    else:
        within = _Entries.within(entries, _start_of(since), end)
        counts = _category_counts_of(within)
        messages = _messages_of(within)
    # Moments arrive as integers (microseconds) and the waits are computed over arrays.
    replied = first_replies(d) if replies is None else replies
    counted_ids = counts["partner_id"].to_numpy(dtype="int64")
    response = np.full(len(counted_ids), np.nan)
    if len(messages):
        # Newest first (ties by id), the order entries are listed in: each mean adds its
        # waits in the same order every run.
        ids, partner_ids, created = messages[np.lexsort((messages[:, 0], -messages[:, 2]))].T
        end_us = _microseconds(end)
        answered = np.full(len(ids), end_us, dtype="int64")
        if len(replied):
            position = pd.Index(replied[:, 0]).get_indexer(ids)
            found = position >= 0
            answered[found] = replied[position[found], 1]
        waits = pd.TimedeltaIndex((answered - created).astype("timedelta64[us]"))
        days = waits.total_seconds().to_numpy(dtype="float64") / 86400
        days = np.clip(days, 0.0, programme.RESPONSE_DAYS_CAP)
        means = pd.Series(days).groupby(partner_ids).mean()
        response = means.reindex(counted_ids).to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "partner_id": counted_ids,
            "response_days": response,
            **{
                column: counts[column].to_numpy(dtype="int64")
                for column in programme.FEEDBACK_COUNT_COLUMNS.values()
            },
        }
    )[FEEDBACK_INPUT_COLUMNS]


TARGET_COLUMNS = [
    "partner_id",
    "rep_id",
    "accounts_covered",
    "conversions",
    "revenue",
    "external_id",
    "name",
]


def targets(year: int) -> pd.DataFrame:
    """The yearly targets of `year` (`TARGET_COLUMNS`): `partner_id` or `rep_id` (the other
    null), the three figures (null where not targeted), and a rep's `external_id` and `name`
    (null for a partner's target), read with the targets."""
    query = (
        Target.objects.filter(year=year)
        .order_by()
        .values_list(
            "partner_id",
            "rep_id",
            "accounts_covered",
            "conversions",
            "revenue",
            "rep__external_id",
            "rep__name",
        )
    )
    # PostgreSQL's driver gives the revenue as Decimals; elsewhere the ORM makes them.
    rows = driver_rows(query) if connections[query.db].vendor == "postgresql" else list(query)
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def agreement_revenue_targets(d: date, rates: RateTable) -> dict[int, Decimal]:
    """Rule 22: per partner, the annual targets of its agreements in force on `d`, summed in
    the reporting currency at the rates of `d` (rule 10), exact and rounded to the cent once.
    Raises MissingRate for an agreement whose currency has no rate on `d`."""
    exact: dict[int, Decimal] = {}
    rows = Agreement.objects.filter(AGREEMENT_IN_FORCE.q(d), annual_target__isnull=False)
    for pk, partner_id, amount, currency in rows.values_list(
        "pk", "partner_id", "annual_target", "currency"
    ):
        if amount is None:
            continue
        rate = rates.rate_on(currency, d, what=f"agreement {pk}")
        exact[partner_id] = exact.get(partner_id, Decimal(0)) + _EXACT.multiply(amount, rate)
    return {partner_id: _to_cent(value) for partner_id, value in exact.items()}


# Exact money: amounts of 14 digits times rates of at most ten decimals, summed, fit easily.
_EXACT = Context(prec=60)
_CENT = Decimal("0.01")


def _to_cent(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP, context=_EXACT)


@dataclass(frozen=True)
class SourcedRevenue:
    """Won revenue sourced per partner (`partners`) and per rep (`reps`), in the reporting
    currency; an owner that sourced nothing is absent."""

    partners: dict[int, Decimal]
    reps: dict[int, Decimal]


def sourced_revenue_since(start: date, d: date, rates: RateTable) -> SourcedRevenue:
    """Rule 22's revenue: the deals won from `start` to `d` (by the day closed), per partner
    that sourced them (a distributor or partner) and per rep (direct), each at the rate of its
    own close (rule 13), a recurring deal as 12 monthly fees (rule 11); summed exactly and
    rounded to the cent once (rule 10).

    The database sums the amounts per owner, currency, close day and kind of fee; the rates
    apply to those few sums. Raises MissingRate for a deal whose currency had no rate on the
    day it closed."""
    grouped = (
        Opportunity.objects.filter(
            stage=OpportunityStage.WON, closed_on__gte=start, closed_on__lte=d
        )
        .filter(Q(partner__isnull=False) | Q(rep__isnull=False))
        .values("partner_id", "rep_id", "currency", "closed_on", "recurring")
        .annotate(amount=Sum("amount"))
        .values_list("partner_id", "rep_id", "currency", "closed_on", "recurring", "amount")
    )
    partners: dict[int, Decimal] = {}
    reps: dict[int, Decimal] = {}
    rate_of: dict[tuple[str, date], Decimal] = {}
    for partner_id, rep_id, currency, closed_on, recurring, amount in grouped:
        if closed_on is None:
            continue  # a won deal always has its close day (a constraint holds it)
        key = (currency, closed_on)
        if key not in rate_of:
            rate_of[key] = rates.rate_on(currency, closed_on, what=f"a deal won on {closed_on}")
        value = _EXACT.multiply(Decimal(amount) * (12 if recurring else 1), rate_of[key])
        owners, owner = (partners, partner_id) if partner_id is not None else (reps, rep_id)
        owners[owner] = owners.get(owner, Decimal(0)) + value
    return SourcedRevenue(
        {pk: _to_cent(value) for pk, value in partners.items()},
        {pk: _to_cent(value) for pk, value in reps.items()},
    )
