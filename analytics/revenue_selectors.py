"""Reads for the revenue figures: the opportunities and what they need, as the frames
`analytics.revenue.PreparedRevenue` takes.

- `revenue_frames()`: every opportunity, loaded once; a backfill asks for many days.
- `revenue_frames(d)`: only the deals that can count on `d` (in the pipeline, won in the 52
  weeks ending on it, or a running subscription: the rules' own filters, `channels.rules`),
  and the coverage that can have influenced the won ones: the single week's read.

Nothing here computes a figure. On PostgreSQL the deals and coverage travel as integers
packed into a few bigint columns (`selectors._integer_columns`): amounts in cents (as the
database stores them beside the amount, `Opportunity.cents`), dates as day numbers (a week's
deals only as far as the rules of its day tell them apart, `_DAY_SPANS`), currencies, stages
and channels as codes, computed by the database; a week's deals take their segments from the
accounts the coverage pass already read, and rule 16's coverage from the assignments it read
in the same scan as its own (`RevenueRead.covered_in_window`).
Elsewhere through the ORM. Every statement is built by the ORM or composed with
`psycopg.sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TypedDict

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DateField,
    F,
    Func,
    IntegerField,
    Model,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from analytics import metrics, revenue
from analytics.kept_rows import kept_fields
from analytics.selectors import (
    _DAY_BITS,
    AGREEMENT_DATES,
    SIZE_BANDS,
    _bits,
    _case,
    _dates_of,
    _day_number,
    _days_between,
    _Field,
    _integer_columns,
    _kind_by_owner,
    _Packing,
    agreement_scopes,
    agreements_frame,
    partners_frame,
)
from channels.change_logs import OPPORTUNITIES
from channels.models import CoverageAssignment, Opportunity, OpportunitySubStage, SalesRep
from channels.rules import FORECAST_DAYS, IN_PIPELINE, SUBSCRIBED, WON_DAYS, WON_IN_52_WEEKS
from crm.currencies import RateTable, day_numbers
from crm.models import Account, Region, Vertical
from crm.selectors import rate_table
from crm.sql import export_snapshot, in_exported_snapshot
from partners.models import Agreement, Partner

_OPPORTUNITY_FIELDS: dict[str, str] = {
    "opportunity_id": "id",
    "account_id": "account_id",
    "region": "account__region_id",
    "vertical": "account__vertical_id",
    "size_band": "account__size_band",
    "channel": "channel",
    "partner_id": "partner_id",
    "rep_id": "rep_id",
    "stage": "stage",
    "recurring": "recurring",
    "amount": "amount",
    "currency": "currency",
    "probability": "sub_stage__probability",
    "opened_on": "opened_on",
    "expected_close_on": "expected_close_on",
    "closed_on": "closed_on",
    "ends_on": "ends_on",
}
_COVERAGE_FIELDS = ["account_id", "kind", "partner_id", "start_date", "end_date"]
_DATES = ["opened_on", "expected_close_on", "closed_on", "ends_on"]


def _frame(queryset: QuerySet[Model], fields: Sequence[str], columns: list[str]) -> pd.DataFrame:
    """The rows of `queryset` (its `fields`, named `columns`) as a frame; dates stay as read
    (`_dated` parses them)."""
    return pd.DataFrame(list(queryset.order_by().values_list(*fields)), columns=columns)


def _dated(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def _cents(values: pd.Series) -> pd.Series:
    """Amounts of at most two decimals (`Decimal`s, or their text) as whole cents, exactly:
    never through a float."""
    if not len(values) or isinstance(values.iloc[0], Decimal):
        return pd.Series([int(v.scaleb(2)) for v in values], index=values.index, dtype="int64")
    parts = values.astype(str).str.partition(".")
    whole = parts[0].astype("int64")
    fraction = parts[2].str.ljust(2, "0").str[:2].astype("int64")
    return whole * 100 + fraction


def _opportunities(opportunities: QuerySet[Opportunity]) -> pd.DataFrame:
    frame = _frame(opportunities, list(_OPPORTUNITY_FIELDS.values()), list(_OPPORTUNITY_FIELDS))
    regions = dict(Region.objects.values_list("id", "code"))
    verticals = dict(Vertical.objects.values_list("id", "code"))
    frame["opportunity_id"] = frame["opportunity_id"].astype("int64")
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["region"] = frame["region"].astype("int64").map(regions)
    frame["vertical"] = frame["vertical"].astype("int64").map(verticals)
    frame["partner_id"] = pd.to_numeric(frame["partner_id"]).fillna(0).astype("int64")
    frame["rep_id"] = pd.to_numeric(frame["rep_id"]).fillna(0).astype("int64")
    frame["recurring"] = frame["recurring"].isin([True, "t", "true", "True", 1, "1"])
    frame["amount_cents"] = _cents(frame["amount"])
    frame["probability_bp"] = _cents(frame["probability"])
    frame = _dated(frame, revenue.DATE_FIELDS)
    return frame[[*revenue.OPPORTUNITY_COLUMNS, "rep_id"]]


def _coverage(assignments: QuerySet[CoverageAssignment]) -> pd.DataFrame:
    frame = _frame(assignments, _COVERAGE_FIELDS, _COVERAGE_FIELDS)
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["partner_id"] = pd.to_numeric(frame["partner_id"]).fillna(0).astype("int64")
    return _dated(frame, ["start_date", "end_date"])


def _agreements(*, by_id: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every agreement (`selectors.agreements_frame`) with its annual target (cents) and its
    currency (both null when it has no target), and the region and vertical codes it lists
    (their ids with `by_id`: `selectors.agreement_scopes`)."""
    targets = list(
        Agreement.objects.filter(annual_target__isnull=False).values_list(
            "id", "annual_target", "currency"
        )
    )
    target_cents = {
        each: int(target.scaleb(2)) for each, target, _ in targets if target is not None
    }
    currencies = {each: currency for each, _, currency in targets}
    # Dates as `datetime64` on every database (`agreements_frame` gives SQLite's as dates).
    agreements = _dated(agreements_frame(), AGREEMENT_DATES)
    ids = agreements["agreement_id"]
    agreements["annual_target_cents"] = pd.array(
        [target_cents.get(agreement_id) for agreement_id in ids.tolist()], dtype="Int64"
    )
    agreements["currency"] = pd.array(
        [currencies.get(agreement_id) for agreement_id in ids.tolist()], dtype=object
    )
    return (
        agreements,
        agreement_scopes("region", codes=not by_id),
        agreement_scopes("vertical", codes=not by_id),
    )


def has_deals() -> bool:
    """Whether there is any opportunity at all: a week without one has no revenue to read
    coverage for (rule 16)."""
    return Opportunity.objects.exists()


def _highest_id(model: type[Model]) -> int:
    return int(model._default_manager.order_by("-id").values_list("id", flat=True).first() or 0)


def _highest_ids() -> dict[str, int]:
    """The highest id of each table whose ids are packed (`selectors._Packing`); rows above
    them are left out of the read, so a row added meanwhile can never overflow its field."""
    models = {
        "opportunity": Opportunity,
        "account": Account,
        "region": Region,
        "vertical": Vertical,
        "partner": Partner,
        "rep": SalesRep,
        "sub_stage": OpportunitySubStage,
    }
    return {name: _highest_id(model) for name, model in models.items()}


# Whole cents of `amount` (numeric(14, 2)): below 10^14 < 2^47.
_CENT_BITS = 47


@dataclass(frozen=True)
class _DealFields:
    """The deals as read (`_read_deals`), before each deal's segment is known: the integer
    fields, and the small tables they are coded against, from the same snapshot."""

    fields: dict[str, np.ndarray]
    currencies: list[str]
    probabilities: np.ndarray
    regions: dict[int, str]
    verticals: dict[int, str]


def _deal_stage() -> Case:
    """A deal's stage as its index in `revenue.STAGES`: the database holds a close date on
    exactly the won and lost deals (`opportunity_closed_on_iff_closed`), so an open deal
    compares no text and a closed one its stage with one value."""
    index = revenue.STAGES.index
    return Case(
        When(closed_on__isnull=True, then=Value(index("open"))),
        When(stage="won", then=Value(index("won"))),
        default=Value(index("lost")),
    )


# A day's read of the deals (`_read_deals(day=...)`) codes each date as a small number of days:
# the rules of the day (12-14) and the rates, influence and programme revenue of its won
# deals (10, 13, 16, 22) ask nothing else of them. The days kept apart are read as they are,
# and every day before them as the day before the first, every day after them as the day
# after the last: no question about the day tells those apart.
#   opened_on: the day itself (rule 12);
#   closed_on: each day of the 52 weeks ending on the day (rules 12-14, 16, the rate of a
#     won deal's close, and rule 22's won deals since 1 January, which are among them);
#   ends_on: the day itself (rule 14);
#   expected_close_on: the day and the 13 weeks after it (rule 12's forecast; any day before
#     is overdue, in its first week).
# Each as (first day kept apart, last day kept apart), counted from the day.
_DAY_SPANS: dict[str, tuple[int, int]] = {
    "opened_on": (0, 0),
    "closed_on": (1 - WON_DAYS, 0),
    "ends_on": (0, 0),
    "expected_close_on": (0, FORECAST_DAYS),
}


def _clamped(day: date, name: str) -> tuple[date, date]:
    """The earliest and latest date a day's read of `day` tells a date of `name` by
    (`_DAY_SPANS`): the day before the first kept apart and the day after the last. An earlier
    date is read as the earliest, a later one as the latest."""
    first, last = _DAY_SPANS[name]
    return day + timedelta(days=first - 1), day + timedelta(days=last + 1)


def _day_before(day: date, name: str) -> date:
    """The day a date of `name` is counted from in a read of `day` alone: the day before the
    earliest (`_clamped`), so that 0 stays free for a missing date."""
    return _clamped(day, name)[0] - timedelta(days=1)


def _day_fields(day: date) -> list[_Field]:
    """`_read_deals`' date fields for a read of `day` alone: per date, 0 when missing, else its
    day (`_clamped`) counted from the day before the earliest (`_day_before`)."""
    fields = []
    for name in _DAY_SPANS:
        earliest, latest = _clamped(day, name)
        before = _day_before(day, name)
        count = (latest - before).days
        fields.append(
            _Field(
                name,
                Case(
                    When(**{f"{name}__isnull": True}, then=Value(0)),
                    When(**{f"{name}__lte": earliest}, then=Value(1)),
                    When(**{f"{name}__gte": latest}, then=Value(count)),
                    default=_days_between(F(name), Value(before, output_field=DateField())),
                    output_field=BigIntegerField(),
                ),
                _bits(count),
            )
        )
    return fields


def _day_numbers(fields: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray]:
    """The date fields of `_day_fields` back as `_day_number`s (0 when missing)."""
    numbers = {}
    for name in _DAY_SPANS:
        before = _day_before(day, name).toordinal()
        numbers[name] = np.where(fields[name] > 0, fields[name] + before, 0)
    return numbers


def _read_deals(
    opportunities: QuerySet[Opportunity],
    rates: RateTable,
    highest: dict[str, int],
    *,
    joined: bool,
    guarded: bool = True,
    day: date | None = None,
) -> _DealFields:
    """The deals of `opportunities` (`_deal_fields`) with the small tables they are coded
    against."""
    fields = _deal_fields(opportunities, rates, highest, joined=joined, guarded=guarded, day=day)
    return _coded(fields, rates, highest)


def _coded(fields: dict[str, np.ndarray], rates: RateTable, highest: dict[str, int]) -> _DealFields:
    """Deals' `fields` (`_deal_fields` with `rates` and `highest`) with the small tables they
    are coded against."""
    probabilities = np.zeros(highest["sub_stage"] + 1, dtype="int64")
    for sub_stage, probability in OpportunitySubStage.objects.values_list("id", "probability"):
        if sub_stage <= highest["sub_stage"]:
            probabilities[sub_stage] = int(probability.scaleb(2))
    return _DealFields(
        fields, list(rates.currencies), probabilities, _codes(Region), _codes(Vertical)
    )


def _deal_fields(
    opportunities: QuerySet[Opportunity],
    rates: RateTable,
    highest: dict[str, int],
    *,
    joined: bool,
    guarded: bool = True,
    day: date | None = None,
) -> dict[str, np.ndarray]:
    """The deals of `opportunities` read as integers packed into a few bigint columns
    (`selectors._integer_columns`): the database evaluates the filter and sends no text and no
    row, and nothing is parsed or looked up row by row in Python.

    `joined`: each deal's segment comes through its account in the read itself; otherwise
    `_deal_arrays` takes it from the accounts the coverage pass indexed, so the database need
    not join a million accounts to name it.

    `guarded`: rows whose ids exceed `highest` are left out (added since `highest` was read);
    unguarded, when both were read from one snapshot, none can, and the database spares
    those tests on every row.

    `day`: the deals are read for that day's figures alone (`_day_fields`): their dates
    told apart only as far as a question about `day` tells them apart, and without their
    ids. At a million accounts that is two packed columns instead of four."""
    # A deal's owner is its partner or its rep, never both (a constraint holds it): one
    # field, told apart by the channel.
    highest_owner = max(highest["partner"], highest["rep"])
    opportunities = opportunities.annotate(owner=Coalesce("partner_id", "rep_id", Value(0)))
    if guarded:
        opportunities = opportunities.filter(
            id__lte=highest["opportunity"],
            account_id__lte=highest["account"],
            owner__lte=highest_owner,
            sub_stage_id__lte=highest["sub_stage"],
        )
    segment_fields = []
    if joined:
        if guarded:
            opportunities = opportunities.filter(
                account__region_id__lte=highest["region"],
                account__vertical_id__lte=highest["vertical"],
            )
        segment_fields = [
            _Field("region", F("account__region_id"), _bits(highest["region"])),
            _Field("vertical", F("account__vertical_id"), _bits(highest["vertical"])),
            _Field("size_band", _case("account__size_band", SIZE_BANDS), 3),
        ]
    currencies = list(rates.currencies)
    dates = (
        [_Field(field, _day_number(field), _DAY_BITS) for field in revenue.DATE_FIELDS]
        if day is None
        else _day_fields(day)
    )
    id_bits = _bits(highest["opportunity"])
    # Packed in this order, the fields of a day's read fill two columns at a million accounts.
    packing = _Packing(
        [
            *segment_fields,
            *([] if day is not None else [_Field("opportunity_id", F("id"), id_bits)]),
            _Field("account_id", F("account_id"), _bits(highest["account"])),
            _Field("owner", F("owner"), _bits(highest_owner)),
            _Field("channel", _kind_by_owner("channel"), 3),
            _Field("stage", _deal_stage(), 2),
            _Field("recurring", Case(When(recurring=True, then=Value(1)), default=Value(0)), 1),
            # 0 for a currency without any rate, else 1 + its code in the rate table.
            _Field(
                "currency",
                _case("currency", currencies, first=1, default=0),
                _bits(len(currencies)),
            ),
            _Field("sub_stage", F("sub_stage_id"), _bits(highest["sub_stage"])),
            *(field for field in dates if field.name != "expected_close_on"),
            # Stored by the database (`Opportunity.cents`): no decimal converted per read.
            _Field("cents", F("cents"), _CENT_BITS),
            *(field for field in dates if field.name == "expected_close_on"),
        ]
    )
    fields = _integer_columns(opportunities, packing)
    if day is not None:
        fields.update(_day_numbers(fields, day))
    return fields


def _kept_deals(rates: RateTable, highest: dict[str, int], d: date | None) -> _DealFields:
    """`_read_deals(joined=False, guarded=False)` of every deal, or with `d` of those that can
    count on `d` (with their ids and dates as they are), from the deals this process kept
    since its last read (`kept_rows`): only those changed since are read. Call in a
    REPEATABLE READ transaction of the read's own, in which `highest` was read."""

    def read(ids: Sequence[int] | None) -> dict[str, np.ndarray]:
        opportunities = Opportunity.objects.all()
        if ids is not None:
            opportunities = opportunities.filter(id__in=ids)
        fields = _deal_fields(opportunities, rates, highest, joined=False, guarded=False)
        return {**fields, **_counting_spans(fields)}

    # A deal's currency is coded by its place among the rate table's currencies.
    kept = kept_fields(OPPORTUNITIES, read, key=tuple(rates.currencies))
    rows = slice(None) if d is None else np.flatnonzero(_counting_on(kept, d))
    fields = {
        name: values[rows].astype("int64")
        for name, values in kept.items()
        if name not in _SPAN_FIELDS
    }
    return _coded(fields, rates, highest)


# Rules 12-14, which decide whether a deal can count on a day (`read_revenue(d)`'s filter),
# each with the fields holding the first and last day of its span per kept deal.
_COUNTING_SPANS = [
    (IN_PIPELINE, "pipeline_first", "pipeline_last"),
    (WON_IN_52_WEEKS, "won_first", "won_last"),
    (SUBSCRIBED, "subscribed_first", "subscribed_last"),
]
_SPAN_FIELDS = {name for _, first, last in _COUNTING_SPANS for name in (first, last)}


def _counting_spans(fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per deal of `fields` (`_deal_fields` without a day), the first and last day of the
    span of each rule of `_COUNTING_SPANS` (`DateRule.span`, days since 1970-01-01, open ends
    within a 32-bit integer): a deal counts on a day exactly when the day is in one of them."""
    columns = {
        "stage": np.asarray(revenue.STAGES, dtype="U4")[fields["stage"]],
        "recurring": fields["recurring"].astype(bool),
        **{name: _dates_of(fields[name]) for name in ("opened_on", "closed_on", "ends_on")},
    }
    limits = np.iinfo("int32")
    spans = {}
    for rule, first, last in _COUNTING_SPANS:
        starts, ends = rule.span({field: columns[field] for field in rule.fields})
        spans[first] = np.clip(starts, limits.min, limits.max)
        spans[last] = np.clip(ends, limits.min, limits.max)
    return spans


def _counting_on(fields: dict[str, np.ndarray], d: date) -> np.ndarray:
    """Which of the kept deals' `fields` (with `_counting_spans`) can count on `d`: in the
    pipeline, won in the 52 weeks ending on it, or a running subscription (rules 12-14), as
    `read_revenue(d)` filters."""
    day = int(day_numbers([d])[0])
    counting = np.zeros(len(fields["pipeline_first"]), dtype=bool)
    for _, first, last in _COUNTING_SPANS:
        counting |= (fields[first] <= day) & (day <= fields[last])
    return counting


def _deal_arrays(read: _DealFields, accounts: metrics.Accounts | None) -> revenue.Deals:
    """The read deals as `revenue.Deals`. Each deal's segment is its account's in `accounts`
    (the week's accounts as the coverage pass indexed them, or a backfill's market) when
    given, an account not among them looked up; without `accounts` the read holds it
    (`_read_deals(joined=True)`)."""
    fields = dict(read.fields)
    regions, verticals = read.regions, read.verticals
    rows = None if accounts is None else accounts.positions(fields["account_id"])
    if accounts is not None and rows is not None and bool((rows >= 0).all()):
        # Segments coded as the accounts code them, then named: three lookups per deal.
        segment, (region_codes, vertical_codes, band_codes) = revenue.segments_of(
            [accounts.region[rows], accounts.vertical[rows], accounts.size_band[rows]]
        )
        region_ids = _as_ids(accounts.regions, regions)[region_codes]
        vertical_ids = _as_ids(accounts.verticals, verticals)[vertical_codes]
        band_names = np.asarray(accounts.size_bands.astype(object))[band_codes]
        fields["region"], fields["vertical"] = region_ids[segment], vertical_ids[segment]
    else:
        if accounts is not None:
            fields.update(_segments(fields["account_id"], accounts, regions, verticals))
        segment, (region_ids, vertical_ids, size_bands) = revenue.segments_of(
            [fields["region"], fields["vertical"], fields["size_band"]]
        )
        band_names = np.asarray(SIZE_BANDS, dtype=object)[size_bands.astype("int64")]
    segment_index = pd.MultiIndex.from_arrays(
        [
            np.array([regions[int(key)] for key in region_ids], dtype=object),
            np.array([verticals[int(key)] for key in vertical_ids], dtype=object),
            np.asarray(band_names, dtype=object),
        ]
    )
    direct = fields["channel"] == revenue.DIRECT_CHANNEL
    by_partner = np.isin(np.arange(len(metrics.KINDS)), revenue.PARTNER_CHANNELS)[fields["channel"]]
    currency = fields["currency"] - 1
    names = np.asarray([*read.currencies, ""], dtype=object)[currency]
    unknown = np.flatnonzero(currency < 0)
    opportunity_id = fields.get("opportunity_id")
    if len(unknown) and opportunity_id is not None:
        # Named for the message of a missing rate (rule 10); a day's read has no ids: its
        # step reads the deals again to name one (`revenue_services._ReadAhead`).
        ids = opportunity_id[unknown]
        named = dict(Opportunity.objects.filter(id__in=ids.tolist()).values_list("id", "currency"))
        names[unknown] = [named.get(int(key), "") for key in ids]
    return revenue.Deals(
        opportunity_id=opportunity_id,
        account_id=fields["account_id"],
        segment=segment,
        segment_index=segment_index,
        region=fields["region"],
        vertical=fields["vertical"],
        channel=fields["channel"],
        partner_id=np.where(by_partner, fields["owner"], 0),
        rep_id=np.where(direct, fields["owner"], 0),
        stage=np.asarray(revenue.STAGES, dtype="U4")[fields["stage"]],
        recurring=fields["recurring"].astype(bool),
        cents=fields["cents"],
        currency=currency,
        currency_names=names,
        probability_bp=read.probabilities[fields["sub_stage"]],
        dates={field: _dates_of(fields[field]) for field in revenue.DATE_FIELDS},
    )


def _as_ids(values: pd.Index, codes: dict[int, str]) -> np.ndarray:
    """The regions (or verticals) an `Accounts` indexed, as ids: a week's are ids, a backfill's
    market names them by their `codes`."""
    if values.dtype.kind in "iu":
        return values.to_numpy(dtype="int64")
    ids = {code: key for key, code in codes.items()}
    return np.array([ids[value] for value in values], dtype="int64")


def _segments(
    account_ids: np.ndarray,
    accounts: metrics.Accounts,
    regions: dict[int, str],
    verticals: dict[int, str],
) -> dict[str, np.ndarray]:
    """Region id, vertical id and size band (position in `SIZE_BANDS`) of each account id, from
    `accounts` (the week's, or a backfill's market; its regions and verticals as ids or as the
    codes of `regions` and `verticals`); those it does not hold (added since it was read) from
    the database."""
    rows = accounts.positions(account_ids)
    found = rows >= 0
    band_codes = pd.Index(SIZE_BANDS).get_indexer(pd.Index(accounts.size_bands.astype(object)))
    segments = {
        "region": np.zeros(len(rows), dtype="int64"),
        "vertical": np.zeros(len(rows), dtype="int64"),
        "size_band": np.zeros(len(rows), dtype="int64"),
    }
    segments["region"][found] = _as_ids(accounts.regions, regions)[accounts.region[rows[found]]]
    segments["vertical"][found] = _as_ids(accounts.verticals, verticals)[
        accounts.vertical[rows[found]]
    ]
    segments["size_band"][found] = band_codes[accounts.size_band[rows[found]]]
    missing = np.flatnonzero(~found)
    if len(missing):
        wanted = np.unique(account_ids[missing])
        known = {
            key: (region, vertical, SIZE_BANDS.index(band))
            for key, region, vertical, band in Account.objects.filter(
                id__in=wanted.tolist()
            ).values_list("id", "region_id", "vertical_id", "size_band")
        }
        for row in missing:
            segment = known[int(account_ids[row])]
            segments["region"][row], segments["vertical"][row], segments["size_band"][row] = segment
    return segments


def _coverage_read(
    assignments: QuerySet[CoverageAssignment],
    highest: dict[str, int],
    *,
    guarded: bool = True,
    accounts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`assignments` as integer arrays (`_coverage_frame` keeps those of the won deals'
    accounts); `guarded` as in `_deal_arrays`. With `accounts` (ids, none above
    `highest["account"]`; unguarded only) only their assignments are read: the database tests
    each row's account against a bitmap of them sent as one `bytea` (a bit test per row, far
    cheaper than packing and sending a row that no won deal needs)."""
    assignments = assignments.annotate(owner=Coalesce("partner_id", Value(0)))
    if guarded:
        assignments = assignments.filter(
            account_id__lte=highest["account"], owner__lte=highest["partner"]
        )
    elif accounts is not None:
        wanted = np.zeros(highest["account"] + 1, dtype=bool)
        wanted[accounts] = True
        # `get_bit` numbers a byte's bits from its least significant one.
        bitmap = np.packbits(wanted, bitorder="little").tobytes()
        assignments = assignments.annotate(
            wanted=Func(
                Value(bitmap), F("account_id"), function="get_bit", output_field=IntegerField()
            )
        ).filter(wanted=1)
    return _integer_columns(
        assignments,
        _Packing(
            [
                _Field("account_id", F("account_id"), _bits(highest["account"])),
                _Field("partner_id", F("owner"), _bits(highest["partner"])),
                _Field("kind", _kind_by_owner(), 3),
                *(
                    _Field(name, _day_number(name), _DAY_BITS)
                    for name in ("start_date", "end_date")
                ),
            ]
        ),
    )


# Every agreement (with the region and vertical each lists) and every partner: what rule 16's
# grants and rule 17's targets read besides the deals and the coverage.
_Terms = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]


def _terms() -> _Terms:
    """The agreements (their regions and verticals by id) and the partners."""
    return (*_agreements(by_id=True), partners_frame())


def _terms_in_snapshot(snapshot: str) -> _Terms:
    """`_terms` on this thread's own connection, reading the exported `snapshot`."""
    with in_exported_snapshot(snapshot):
        return _terms()


def _coverage_frame(fields: dict[str, np.ndarray], account_ids: np.ndarray) -> pd.DataFrame:
    """The read coverage of `account_ids` as the frame `revenue.influence` takes (kept here:
    cheaper than a second pass of the deals in the database)."""
    wanted = np.zeros(int(fields["account_id"].max(initial=0)) + 1, dtype=bool)
    wanted[account_ids[account_ids < len(wanted)]] = True
    rows = np.flatnonzero(wanted[fields["account_id"]])
    fields = {name: values[rows] for name, values in fields.items()}
    return pd.DataFrame(
        {
            "account_id": fields["account_id"],
            "kind": fields["kind"],  # positions in `KINDS`
            "partner_id": fields["partner_id"],
            "start_date": _dates_of(fields["start_date"]),
            "end_date": _dates_of(fields["end_date"]),
        }
    )


def _codes(model: type[Region] | type[Vertical]) -> dict[int, str]:
    return dict(model.objects.values_list("id", "code"))


class DealFrames(TypedDict, total=False):
    """The deals, as integer-coded `deals` (PostgreSQL) or as the `opportunities` frame."""

    deals: revenue.Deals
    opportunities: pd.DataFrame


class RevenueFrames(DealFrames):
    """The keyword arguments of `revenue.PreparedRevenue`."""

    coverage: pd.DataFrame
    agreements: pd.DataFrame
    agreement_regions: pd.DataFrame
    agreement_verticals: pd.DataFrame
    partners: pd.DataFrame
    rates: RateTable


def _won_accounts(deals: _DealFields, d: date | None) -> np.ndarray:
    """The accounts of the read deals won in the 52 weeks ending on `d` (of every won deal
    without `d`): the accounts whose coverage can have influenced them (rule 16)."""
    fields = deals.fields
    won = np.flatnonzero(fields["stage"] == revenue.STAGES.index("won"))
    if d is not None:
        # The rule tested on the won deals alone.
        won = won[
            WON_IN_52_WEEKS.mask(
                {
                    "stage": np.full(len(won), "won", dtype="U4"),
                    "closed_on": _dates_of(fields["closed_on"][won]),
                },
                d,
            )
        ]
    accounts: np.ndarray = fields["account_id"][won]
    return accounts


def _deals_and_coverage(
    opportunities: QuerySet[Opportunity],
    assignments: QuerySet[CoverageAssignment],
    rates: RateTable,
    highest: dict[str, int],
    d: date | None,
    *,
    joined: bool,
    in_snapshot: bool,
    with_coverage: bool,
    day: date | None = None,
) -> tuple[_DealFields, np.ndarray, dict[str, np.ndarray], _Terms]:
    """The deals, the accounts of those won that can count on `d` (`_won_accounts`), the
    coverage, read as integers, and the agreements and partners. `in_snapshot`: read in a
    transaction of our own, opened REPEATABLE READ, in which `highest` was read too: no row
    exceeds it and none is tested against it, and the coverage, read after the deals, is only
    their won accounts' (a third of the assignments at a million accounts). Without
    `with_coverage` no coverage is read (and no won account sought). `day`: the deals read
    for that day alone (`_read_deals`)."""
    nothing = np.zeros(0, dtype="int64")
    with ThreadPoolExecutor(max_workers=1) as pool:
        terms: Callable[[], _Terms] = _terms
        if in_snapshot:
            # The small tables on a connection of their own meanwhile: they are mostly
            # Python's work, which runs while the deals' and the coverage's reads wait for the
            # database.
            terms = pool.submit(_terms_in_snapshot, export_snapshot()).result
        deals = _deals_read(
            opportunities, rates, highest, d, joined=joined, in_snapshot=in_snapshot, day=day
        )
        if not with_coverage:
            return deals, nothing, {name: nothing for name in _COVERAGE_FIELDS}, terms()
        won_accounts = _won_accounts(deals, d)
        # In the snapshot only the won accounts' assignments are read (and none is tested).
        covering = _coverage_read(
            assignments,
            highest,
            guarded=not in_snapshot,
            accounts=won_accounts if in_snapshot else None,
        )
        return deals, won_accounts, covering, terms()


def _deals_read(
    opportunities: QuerySet[Opportunity],
    rates: RateTable,
    highest: dict[str, int],
    d: date | None,
    *,
    joined: bool,
    in_snapshot: bool,
    day: date | None,
) -> _DealFields:
    """The deals of `opportunities` (every deal, or with `d` those that can count on `d`) as
    `_read_deals` reads them; in a transaction of the read's own, without their segments, from
    the deals this process keeps (`_kept_deals`) unless `settings.METRICS_KEEP_DEALS` is off."""
    if in_snapshot and not joined and settings.METRICS_KEEP_DEALS:
        return _kept_deals(rates, highest, d)
    return _read_deals(
        opportunities, rates, highest, joined=joined, guarded=not in_snapshot, day=day
    )


@dataclass(frozen=True)
class RevenueRead:
    """What `read_revenue` read, in one snapshot: the deals (integer fields on PostgreSQL,
    the opportunities frame elsewhere), the coverage that can have influenced the won ones,
    and the small tables. `frames` makes `revenue.PreparedRevenue`'s arguments of them."""

    deals: _DealFields | None
    opportunities: pd.DataFrame | None
    coverage: pd.DataFrame
    agreements: pd.DataFrame
    agreement_regions: pd.DataFrame
    agreement_verticals: pd.DataFrame
    partners: pd.DataFrame
    rates: RateTable

    def covered_by(self, coverage: pd.DataFrame) -> RevenueRead:
        """This read with the coverage of its won deals' accounts taken from `coverage` (every
        assignment: `account_id, kind, partner_id, start_date, end_date`, `partner_id` 0 for
        direct and online, dates `datetime64[D]`), as `read_revenue` would have read it, for a
        read made `with_coverage=False` on PostgreSQL."""
        if self.deals is None:
            raise ValueError("only deals read on PostgreSQL take a coverage of their own")
        fields = self.deals.fields
        won = fields["account_id"][fields["stage"] == revenue.STAGES.index("won")]
        account_id = coverage["account_id"].to_numpy(dtype="int64")
        wanted = np.zeros(int(account_id.max(initial=0)) + 1, dtype=bool)
        wanted[won[won < len(wanted)]] = True
        rows = wanted[account_id]
        kinds = metrics.kind_codes(coverage["kind"].array[rows])
        frame = pd.DataFrame(
            {
                "account_id": account_id[rows],
                "kind": np.asarray(metrics.KINDS, dtype=object)[kinds],
                "partner_id": coverage["partner_id"].to_numpy(dtype="int64")[rows],
                "start_date": coverage["start_date"].to_numpy(dtype="datetime64[D]")[rows],
                "end_date": coverage["end_date"].to_numpy(dtype="datetime64[D]")[rows],
            }
        )
        return replace(self, coverage=frame)

    def covered_in_window(self, influencing: dict[str, np.ndarray], d: date) -> RevenueRead:
        """This read of the deals of `d` with the coverage of the accounts of those won in the
        52 weeks ending on `d` taken from `influencing` (the assignments the week's pass read
        for rule 16, `selectors.AssignmentRows.influencing`), for a read made
        `with_coverage=False` on PostgreSQL: the coverage is then scanned once a week."""
        if self.deals is None:
            raise ValueError("only deals read on PostgreSQL take a coverage of their own")
        return replace(self, coverage=_coverage_frame(influencing, _won_accounts(self.deals, d)))

    def frames(self, accounts: metrics.Accounts | None = None) -> RevenueFrames:
        """The keyword arguments of `revenue.PreparedRevenue`; on PostgreSQL each deal's
        segment from `accounts` when the read did not join them (`read_revenue(joined=False)`,
        which needs `accounts`)."""
        deals: DealFrames
        if self.deals is not None:
            if accounts is None and "region" not in self.deals.fields:
                raise ValueError("the deals were read without their segments: give the accounts")
            deals = {"deals": _deal_arrays(self.deals, accounts)}
        else:
            assert self.opportunities is not None
            deals = {"opportunities": self.opportunities}
        return {
            **deals,
            "coverage": self.coverage,
            "agreements": self.agreements,
            "agreement_regions": self.agreement_regions,
            "agreement_verticals": self.agreement_verticals,
            "partners": self.partners,
            "rates": self.rates,
        }


def revenue_frames(
    d: date | None = None, *, accounts: metrics.Accounts | None = None
) -> RevenueFrames:
    """The keyword arguments of `revenue.PreparedRevenue`: every opportunity, or with `d` only
    those that can count on `d` and the coverage that can have influenced its won deals
    (`read_revenue`). On PostgreSQL the deals come as integer-coded `revenue.Deals` (regions
    and verticals as ids; each deal's segment from `accounts`, the week's accounts as the
    coverage pass indexed them, when given), elsewhere as the opportunities frame (codes)."""
    return read_revenue(d, joined=accounts is None).frames(accounts)


def read_revenue(
    d: date | None = None,
    *,
    joined: bool = True,
    with_coverage: bool = True,
    for_the_day: bool = False,
) -> RevenueRead:
    """Every opportunity, or with `d` only those that can count on `d`, and the coverage that
    can have influenced its won deals, all read in one snapshot (REPEATABLE READ on
    PostgreSQL, when no transaction is open yet). `joined` False: on PostgreSQL the deals'
    segments are not read (`RevenueRead.frames` takes them from the week's accounts).
    `with_coverage` False: on PostgreSQL no coverage is read (a backfill that has read every
    assignment with its market hands it over, `RevenueRead.covered_by`; a week's pass the
    assignments of rule 16's window, `RevenueRead.covered_in_window`). `for_the_day`: on
    PostgreSQL the deals are read for the figures of `d` alone, with their dates told apart
    only as far as `d`'s rules ask and without their ids (`_read_deals(day=d)`); a missing
    rate then cannot name its deal."""
    postgresql = connection.vendor == "postgresql"
    fresh = postgresql and not connection.in_atomic_block
    with transaction.atomic():
        if postgresql:
            with connection.cursor() as cursor:
                if fresh:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # On two cores a parallel plan is slower than a serial one; the deals' accounts
                # are hashed whole (a million at a million accounts): in memory rather than
                # spilled in batches to disk; and no plan compiling.
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL jit = off")
        opportunities = Opportunity.objects.all()
        assignments = CoverageAssignment.objects.all()
        # Coverage counts only through the won deals it influenced (rule 16): without a won
        # deal that can count on `d` there is none to read (1.6M rows at a million accounts).
        handed = postgresql and not with_coverage
        influenced = not handed and (
            d is None or Opportunity.objects.filter(WON_IN_52_WEEKS.q(d)).exists()
        )
        if d is not None:
            opportunities = opportunities.filter(
                IN_PIPELINE.q(d) | WON_IN_52_WEEKS.q(d) | SUBSCRIBED.q(d)
            )
            # Coverage running on some day of the 13 weeks before a close in the window, of the
            # accounts of those deals (on PostgreSQL those of the won deals the read found).
            earliest = d - timedelta(days=WON_DAYS - 1 + revenue.INFLUENCE_DAYS)
            assignments = assignments.filter(
                Q(end_date__isnull=True) | Q(end_date__gte=earliest), start_date__lt=d
            )
            if not influenced:
                assignments = assignments.none()
            elif not postgresql:
                won = Opportunity.objects.filter(WON_IN_52_WEEKS.q(d)).values("account_id")
                assignments = assignments.filter(account_id__in=won)
        elif not postgresql:
            won_accounts = Opportunity.objects.filter(stage="won").values("account_id")
            assignments = assignments.filter(account_id__in=won_accounts)
        elif handed:
            assignments = assignments.none()
        rates = rate_table()
        read: _DealFields | None = None
        opportunity_frame: pd.DataFrame | None = None
        if postgresql:
            highest = _highest_ids()
            read, accounts_won, covering, terms = _deals_and_coverage(
                opportunities,
                assignments,
                rates,
                highest,
                d,
                joined=joined,
                in_snapshot=fresh,
                with_coverage=not handed,
                day=d if for_the_day else None,
            )
            coverage = _coverage_frame(covering, accounts_won)
        else:
            opportunity_frame = _opportunities(opportunities)
            coverage = _coverage(assignments)
            terms = (*_agreements(by_id=False), partners_frame())
        agreements, agreement_regions, agreement_verticals, partners = terms
        return RevenueRead(
            read,
            opportunity_frame,
            coverage,
            agreements,
            agreement_regions,
            agreement_verticals,
            partners,
            rates,
        )
