"""A second, independent implementation of the revenue figures: plain SQL statements.

It answers docs/metrics.md rules 10-17 (pipeline, weighted pipeline, forecast, won in the 52
weeks, won accounts, MRR and subscribers, sourced and influenced revenue, per segment and
sourcing channel and per partner) straight from the tables, in SQL that runs on SQLite and
PostgreSQL alike, written without the rule statements of `channels.rules`, `crm.rules` and
`partners.rules`, and without `crm.currencies.RateTable`, on purpose. Tests hold the weekly
run equal to it on random markets.

The database chooses each deal's rate row (the latest `valid_from` on or before the day the
figure is about) and sums whole cents per rate and probability; Python only multiplies those
few sums by the exact rates, at full precision. "Covered on some day of the 13 weeks before the
close" is written as ranges that meet: every first day on or before every last day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Context, Decimal
from typing import Literal, NamedTuple, NotRequired, TypedDict, TypeVar

from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from analytics import metrics
from channels.models import CoverageAssignment, Opportunity, OpportunitySubStage
from crm.models import Account, CurrencyRate, Region, Vertical
from crm.sql import as_text
from partners.models import Agreement, AgreementStatus

_EXACT = Context(prec=80)
FORECAST_DAYS = 91
INFLUENCE_DAYS = 91
WON_DAYS = 364


def _tables() -> dict[str, sql.Identifier]:
    return {
        "opportunity": sql.Identifier(Opportunity._meta.db_table),
        "sub_stage": sql.Identifier(OpportunitySubStage._meta.db_table),
        "account": sql.Identifier(Account._meta.db_table),
        "region": sql.Identifier(Region._meta.db_table),
        "vertical": sql.Identifier(Vertical._meta.db_table),
        "rate": sql.Identifier(CurrencyRate._meta.db_table),
        "coverage": sql.Identifier(CoverageAssignment._meta.db_table),
        "agreement": sql.Identifier(Agreement._meta.db_table),
        "agreement_regions": sql.Identifier(Agreement.regions.through._meta.db_table),
        "agreement_verticals": sql.Identifier(Agreement.verticals.through._meta.db_table),
    }


def _cents(column: str) -> sql.Composable:
    """A decimal column as whole cents (SQLite keeps decimals as floating point numbers)."""
    if connection.vendor == "postgresql":
        return sql.SQL("CAST({} * 100 AS bigint)").format(sql.SQL(column))
    return sql.SQL("CAST(ROUND({} * 100) AS INTEGER)").format(sql.SQL(column))


def _days_before(column: str, days: int) -> sql.Composable:
    """The date `days` before a date column."""
    if connection.vendor == "postgresql":
        return sql.SQL("({} - {})").format(sql.SQL(column), sql.Literal(days))
    return sql.SQL("date({}, {})").format(sql.SQL(column), sql.Literal(f"-{days} days"))


def _rate_row(day: str) -> sql.Composable:
    """The id of the rate row of the deal's currency valid on `day` (an SQL date expression),
    0 for the reporting currency, null when there is none."""
    return sql.SQL(
        "CASE WHEN o.currency = %(reporting)s THEN 0 ELSE "
        "(SELECT r.id FROM {rate} r WHERE r.currency = o.currency AND r.valid_from <= {day} "
        "ORDER BY r.valid_from DESC LIMIT 1) END"
    ).format(rate=_tables()["rate"], day=sql.SQL(day))


def _params(d: date) -> dict[str, date | str]:
    return {
        "d": d,
        "won_from": d - timedelta(days=WON_DAYS - 1),
        "forecast_to": d + timedelta(days=FORECAST_DAYS),
        "reporting": settings.REPORTING_CURRENCY,
        "won": "won",
        "draft": AgreementStatus.DRAFT.value,
        **{f"kind_{kind}": kind for kind in metrics.KINDS},
    }


_SEGMENT = """
    FROM {opportunity} o
    JOIN {account} a ON a.id = o.account_id
    JOIN {region} rg ON rg.id = a.region_id
    JOIN {vertical} vt ON vt.id = a.vertical_id
    JOIN {sub_stage} ss ON ss.id = o.sub_stage_id
"""
_IN_PIPELINE = "o.opened_on <= %(d)s AND (o.closed_on IS NULL OR o.closed_on > %(d)s)"
_IN_FORECAST = (
    _IN_PIPELINE + " AND o.expected_close_on IS NOT NULL AND o.expected_close_on <= %(forecast_to)s"
)
_WON = "o.stage = %(won)s AND o.closed_on >= %(won_from)s AND o.closed_on <= %(d)s"
_SUBSCRIBED = (
    "o.stage = %(won)s AND o.recurring AND o.closed_on <= %(d)s "
    "AND (o.ends_on IS NULL OR o.ends_on > %(d)s)"
)
_YEAR_CENTS = "CASE WHEN o.recurring THEN 12 ELSE 1 END"


def _influenced_by(kind_test: str) -> str:
    """Coverage of the deal's account matching `kind_test` (over `c`) that actively covered it
    on some day from 91 days before the close to the day before it: for the partner kinds, on a
    day one of the partner's agreements in force granted the account's region and vertical."""
    low, high = "{close_low}", "{close_high}"
    coverage_meets = f"c.start_date <= {high} AND (c.end_date IS NULL OR c.end_date >= {low})"
    # Every first day (coverage start, window start, signature, agreement start) on or
    # before every last day (coverage end, window end, agreement end, termination).
    firsts = ["c.start_date", low, "g.signed_on", "g.start_date"]
    lasts = ["c.end_date", high, "g.end_date", "g.terminated_on"]
    meets = " AND ".join(
        f"({first} <= {last}"
        + (f" OR {last} IS NULL)" if last in ("c.end_date", "g.terminated_on") else ")")
        for first in firsts
        for last in lasts
    )
    granted = (
        "(NOT EXISTS (SELECT 1 FROM {agreement_regions} x WHERE x.agreement_id = g.id)"
        " OR EXISTS (SELECT 1 FROM {agreement_regions} x WHERE x.agreement_id = g.id"
        " AND x.region_id = a.region_id))"
        " AND (NOT EXISTS (SELECT 1 FROM {agreement_verticals} y WHERE y.agreement_id = g.id)"
        " OR EXISTS (SELECT 1 FROM {agreement_verticals} y WHERE y.agreement_id = g.id"
        " AND y.vertical_id = a.vertical_id))"
    )
    return (
        "EXISTS (SELECT 1 FROM {coverage} c WHERE c.account_id = o.account_id AND "
        + kind_test
        + " AND "
        + coverage_meets
        + " AND (c.kind IN (%(kind_direct)s, %(kind_online)s) OR EXISTS ("
        + "SELECT 1 FROM {agreement} g WHERE g.partner_id = c.partner_id"
        + " AND g.status <> %(draft)s AND g.signed_on IS NOT NULL AND "
        + meets
        + " AND "
        + granted
        + ")))"
    )


def _statement(template: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(template).format(
        **_tables(),
        close_low=_days_before("o.closed_on", INFLUENCE_DAYS),
        close_high=_days_before("o.closed_on", 1),
        **parts,
    )


# The rows of the statements below, as the driver returns them: a sum of cents is an integer on
# SQLite and a Decimal on PostgreSQL (numeric), a probability a float or a Decimal.
Cents = int | Decimal
Probability = Decimal | float | None


class SegmentGroup(NamedTuple):
    region: str
    vertical: str
    size_band: str
    channel: str
    rate_row: int | None
    probability: Probability
    number: int
    cents: Cents


class SegmentDistinct(NamedTuple):
    region: str
    vertical: str
    size_band: str
    channel: str
    number: int


class SegmentInfluence(NamedTuple):
    region: str
    vertical: str
    size_band: str
    rate_row: int | None
    number: int
    cents: Cents


class PartnerGroup(NamedTuple):
    partner: int
    rate_row: int | None
    probability: Probability
    number: int
    cents: Cents


class PartnerCount(NamedTuple):
    partner: int
    number: int


class PartnerInfluence(NamedTuple):
    partner: int
    rate_row: int | None
    number: int
    cents: Cents


class PartnerTarget(NamedTuple):
    partner: int
    target: Decimal | float
    rate_row: int | None


Row = TypeVar("Row", bound=tuple[object, ...])


def _rows(statement: sql.Composed, d: date, shape: Callable[..., Row]) -> list[Row]:
    """The statement's rows on `d`, each as `shape` (the NamedTuple of its columns)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(as_text(statement), _params(d))
        return [shape(*row) for row in cursor.fetchall()]


def _rates() -> dict[int, Decimal]:
    """Rate row ids to exact rates; 0 is the reporting currency's 1."""
    rates = {0: Decimal(1)}
    for pk, rate in CurrencyRate.objects.values_list("id", "rate_to_reporting"):
        rates[pk] = Decimal(str(rate))
    return rates


class ReferenceMissingRate(Exception):
    """A deal that counts has no rate for the day its figure is about."""


def _value(
    cents: Cents, rate_id: int | None, probability: Probability, rates: dict[int, Decimal]
) -> Decimal:
    if rate_id is None:
        raise ReferenceMissingRate("a deal that counts has no rate")
    fraction = Decimal(1) if probability is None else Decimal(str(probability)) / 100
    return (
        _EXACT.multiply(_EXACT.multiply(Decimal(int(cents)), rates[int(rate_id)]), fraction) / 100
    )


Key = tuple[str, str, str, str]
CountColumn = Literal[
    "pipeline_count",
    "won_count",
    "won_accounts",
    "subscribers",
    "influenced_count",
    "forecast_count",
]
AmountColumn = Literal[
    "pipeline_amount",
    "weighted_pipeline",
    "won_amount",
    "mrr",
    "influenced_amount",
    "forecast_amount",
]


class SegmentRevenue(TypedDict):
    """A segment's and channel's figures: counts, money at full precision, and rule 15's
    values once `with_values` has given them (on the "" channel rows)."""

    pipeline_count: int
    won_count: int
    won_accounts: int
    subscribers: int
    influenced_count: int
    forecast_count: int
    pipeline_amount: Decimal
    weighted_pipeline: Decimal
    won_amount: Decimal
    mrr: Decimal
    influenced_amount: Decimal
    forecast_amount: Decimal
    white_space_value: NotRequired[Decimal | None]
    sales_revenue: NotRequired[Decimal | None]


class PartnerRevenue(TypedDict):
    """A partner's figures: counts, money at full precision."""

    pipeline_count: int
    won_count: int
    subscribers: int
    influenced_count: int
    forecast_count: int
    pipeline_amount: Decimal
    weighted_pipeline: Decimal
    won_amount: Decimal
    mrr: Decimal
    influenced_amount: Decimal
    forecast_amount: Decimal
    target_amount: Decimal


def reference_revenue(d: date) -> dict[Key, SegmentRevenue]:
    """The revenue figures on `d` per (region, vertical, size band, channel) with any deal
    counted; channel "" is all channels together. Counts as integers, money at full precision
    (`Decimal`, not rounded), `white_space_value` and `sales_revenue` on the "" rows (None
    without a won account). Raises ReferenceMissingRate."""
    rates = _rates()
    figures: dict[Key, SegmentRevenue] = defaultdict(
        lambda: {
            "pipeline_count": 0,
            "won_count": 0,
            "won_accounts": 0,
            "subscribers": 0,
            "influenced_count": 0,
            "forecast_count": 0,
            "pipeline_amount": Decimal(0),
            "weighted_pipeline": Decimal(0),
            "won_amount": Decimal(0),
            "mrr": Decimal(0),
            "influenced_amount": Decimal(0),
            "forecast_amount": Decimal(0),
        }
    )
    keys = "rg.code, vt.code, a.size_band, o.channel"

    def grouped(where: str, rate_day: str, cents: str) -> list[SegmentGroup]:
        statement = _statement(
            "SELECT "
            + keys
            + ", {rate_row} AS rate_row, ss.probability, COUNT(*), SUM({cents})"
            + _SEGMENT
            + " WHERE "
            + where
            + " GROUP BY "
            + keys
            + ", {rate_row}, ss.probability",
            rate_row=_rate_row(rate_day),
            cents=sql.SQL("{} * " + cents).format(_cents("o.amount")),
        )
        return _rows(statement, d, SegmentGroup)

    def add(
        rows: list[SegmentGroup],
        count: CountColumn | None,
        amount: AmountColumn,
        weighted: AmountColumn | None = None,
    ) -> None:
        for region, vertical, band, channel, rate_row, probability, number, cents in rows:
            for key in ((region, vertical, band, channel), (region, vertical, band, "")):
                if count:
                    figures[key][count] += number
                figures[key][amount] += _value(cents, rate_row, None, rates)
                if weighted:
                    figures[key][weighted] += _value(cents, rate_row, probability, rates)

    add(
        grouped(_IN_PIPELINE, "%(d)s", _YEAR_CENTS),
        "pipeline_count",
        "pipeline_amount",
        "weighted_pipeline",
    )
    forecast = grouped(_IN_FORECAST, "%(d)s", _YEAR_CENTS)
    for region, vertical, band, channel, rate_row, probability, number, cents in forecast:
        for key in ((region, vertical, band, channel), (region, vertical, band, "")):
            figures[key]["forecast_count"] += number
            figures[key]["forecast_amount"] += _value(cents, rate_row, probability, rates)
    add(grouped(_WON, "o.closed_on", _YEAR_CENTS), "won_count", "won_amount")
    add(grouped(_SUBSCRIBED, "%(d)s", "1"), None, "mrr")

    def distinct(where: str, column: Literal["won_accounts", "subscribers"]) -> None:
        for by_channel in (True, False):
            channel = "o.channel" if by_channel else "''"
            statement = _statement(
                "SELECT rg.code, vt.code, a.size_band, "
                + channel
                + ", COUNT(DISTINCT o.account_id)"
                + _SEGMENT
                + " WHERE "
                + where
                + " GROUP BY rg.code, vt.code, a.size_band"
                + (", o.channel" if by_channel else "")
            )
            for region, vertical, band, chosen, number in _rows(statement, d, SegmentDistinct):
                figures[(region, vertical, band, chosen)][column] = number

    distinct(_WON, "won_accounts")
    distinct(_SUBSCRIBED, "subscribers")

    # Influence: per channel kind other than the source, and over any other channel.
    for kind in metrics.KINDS:
        test = "c.kind = %(kind_" + kind + ")s AND o.channel <> %(kind_" + kind + ")s"
        statement = _statement(
            "SELECT rg.code, vt.code, a.size_band, {rate_row}, COUNT(*), SUM({cents})"
            + _SEGMENT
            + " WHERE "
            + _WON
            + " AND "
            + _influenced_by(test)
            + " GROUP BY rg.code, vt.code, a.size_band, {rate_row}",
            rate_row=_rate_row("o.closed_on"),
            cents=sql.SQL("{} * " + _YEAR_CENTS).format(_cents("o.amount")),
        )
        for region, vertical, band, rate_row, number, cents in _rows(
            statement, d, SegmentInfluence
        ):
            key = (region, vertical, band, kind)
            figures[key]["influenced_count"] += number
            figures[key]["influenced_amount"] += _value(cents, rate_row, None, rates)
    statement = _statement(
        "SELECT rg.code, vt.code, a.size_band, {rate_row}, COUNT(*), SUM({cents})"
        + _SEGMENT
        + " WHERE "
        + _WON
        + " AND "
        + _influenced_by("c.kind <> o.channel")
        + " GROUP BY rg.code, vt.code, a.size_band, {rate_row}",
        rate_row=_rate_row("o.closed_on"),
        cents=sql.SQL("{} * " + _YEAR_CENTS).format(_cents("o.amount")),
    )
    for region, vertical, band, rate_row, number, cents in _rows(statement, d, SegmentInfluence):
        key = (region, vertical, band, "")
        figures[key]["influenced_count"] += number
        figures[key]["influenced_amount"] += _value(cents, rate_row, None, rates)
    return dict(figures)


def with_values(
    figures: dict[Key, SegmentRevenue], segment_counts: dict[tuple[str, str, str], dict[str, int]]
) -> dict[Key, SegmentRevenue]:
    """Rule 15 on the "" rows from the coverage counts per segment (`accounts`,
    `covered_any`, `converted`, `white_space`): D, the white-space value and I."""
    for (region, vertical, band, channel), row in figures.items():
        if channel:
            continue
        counts = segment_counts.get((region, vertical, band))
        row["white_space_value"] = row["sales_revenue"] = None
        if not row["won_accounts"] or counts is None:
            continue
        # White space x D x converted / covered, and I = converted x D, each divided once.
        won = row["won_amount"]
        if counts["covered_any"]:
            row["white_space_value"] = _EXACT.divide(
                _EXACT.multiply(won, Decimal(counts["white_space"] * counts["converted"])),
                Decimal(row["won_accounts"] * counts["covered_any"]),
            )
        if counts["accounts"]:
            row["sales_revenue"] = _EXACT.divide(
                _EXACT.multiply(won, Decimal(counts["converted"])), Decimal(row["won_accounts"])
            )
    return figures


def reference_partner_revenue(d: date) -> dict[int, PartnerRevenue]:
    """Per partner id with any deal or target: what it sourced (pipeline, weighted, forecast,
    won, MRR, subscribers), the won deals of the window its coverage influenced (deals it did
    not source), and a quarter of its agreements' annual targets in force on `d` at the rates
    of `d`. Money at full precision. Raises ReferenceMissingRate."""
    rates = _rates()
    figures: dict[int, PartnerRevenue] = defaultdict(
        lambda: {
            "pipeline_count": 0,
            "won_count": 0,
            "subscribers": 0,
            "influenced_count": 0,
            "forecast_count": 0,
            "pipeline_amount": Decimal(0),
            "weighted_pipeline": Decimal(0),
            "won_amount": Decimal(0),
            "mrr": Decimal(0),
            "influenced_amount": Decimal(0),
            "forecast_amount": Decimal(0),
            "target_amount": Decimal(0),
        }
    )

    def grouped(where: str, rate_day: str, cents: str) -> list[PartnerGroup]:
        statement = _statement(
            "SELECT o.partner_id, {rate_row}, ss.probability, COUNT(*), SUM({cents})"
            + _SEGMENT
            + " WHERE o.partner_id IS NOT NULL AND "
            + where
            + " GROUP BY o.partner_id, {rate_row}, ss.probability",
            rate_row=_rate_row(rate_day),
            cents=sql.SQL("{} * " + cents).format(_cents("o.amount")),
        )
        return _rows(statement, d, PartnerGroup)

    for partner, rate_row, probability, number, cents in grouped(
        _IN_PIPELINE, "%(d)s", _YEAR_CENTS
    ):
        figures[partner]["pipeline_count"] += number
        figures[partner]["pipeline_amount"] += _value(cents, rate_row, None, rates)
        figures[partner]["weighted_pipeline"] += _value(cents, rate_row, probability, rates)
    for partner, rate_row, probability, number, cents in grouped(
        _IN_FORECAST, "%(d)s", _YEAR_CENTS
    ):
        figures[partner]["forecast_count"] += number
        figures[partner]["forecast_amount"] += _value(cents, rate_row, probability, rates)
    for partner, rate_row, _, number, cents in grouped(_WON, "o.closed_on", _YEAR_CENTS):
        figures[partner]["won_count"] += number
        figures[partner]["won_amount"] += _value(cents, rate_row, None, rates)
    for partner, rate_row, _, _, cents in grouped(_SUBSCRIBED, "%(d)s", "1"):
        figures[partner]["mrr"] += _value(cents, rate_row, None, rates)
    statement = _statement(
        "SELECT o.partner_id, COUNT(DISTINCT o.account_id)"
        + _SEGMENT
        + " WHERE o.partner_id IS NOT NULL AND "
        + _SUBSCRIBED
        + " GROUP BY o.partner_id"
    )
    for partner, number in _rows(statement, d, PartnerCount):
        figures[partner]["subscribers"] = number
    # Influence by each partner: its own coverage, on deals sourced by anyone else.
    statement = _statement(
        "SELECT p.partner_id, {rate_row}, COUNT(*), SUM({cents})"
        + _SEGMENT
        + " JOIN (SELECT DISTINCT partner_id FROM {coverage} WHERE partner_id IS NOT NULL) p"
        + " ON (o.partner_id IS NULL OR o.partner_id <> p.partner_id)"
        + " WHERE "
        + _WON
        + " AND "
        + _influenced_by("c.partner_id = p.partner_id")
        + " GROUP BY p.partner_id, {rate_row}",
        rate_row=_rate_row("o.closed_on"),
        cents=sql.SQL("{} * " + _YEAR_CENTS).format(_cents("o.amount")),
    )
    for partner, rate_row, number, cents in _rows(statement, d, PartnerInfluence):
        figures[partner]["influenced_count"] += number
        figures[partner]["influenced_amount"] += _value(cents, rate_row, None, rates)
    # Targets: agreements in force on d, a quarter of the annual target at d's rate.
    statement = sql.SQL(
        "SELECT g.partner_id, g.annual_target, "
        "CASE WHEN g.currency = %(reporting)s THEN 0 ELSE "
        "(SELECT r.id FROM {rate} r WHERE r.currency = g.currency AND r.valid_from <= %(d)s "
        "ORDER BY r.valid_from DESC LIMIT 1) END "
        "FROM {agreement} g WHERE g.annual_target IS NOT NULL AND g.status <> %(draft)s "
        "AND g.signed_on IS NOT NULL AND g.signed_on <= %(d)s AND g.start_date <= %(d)s "
        "AND g.end_date >= %(d)s AND (g.terminated_on IS NULL OR g.terminated_on >= %(d)s)"
    ).format(**_tables())
    for partner, target, rate_row in _rows(statement, d, PartnerTarget):
        cents = int(Decimal(str(target)).scaleb(2))
        figures[partner]["target_amount"] += _value(cents, rate_row, None, rates) / 4
    return dict(figures)
