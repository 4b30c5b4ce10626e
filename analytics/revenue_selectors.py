"""Reads for the revenue figures: the opportunities and what they need, as the frames
`analytics.revenue.PreparedRevenue` takes.

- `revenue_frames()`: every opportunity, loaded once; a backfill asks for many days.
- `revenue_frames(d)`: only the deals that can count on `d` (in the pipeline, won in the 52
  weeks ending on it, or a running subscription: the rules' own filters, `channels.rules`),
  and the coverage that can have influenced the won ones: the single week's read.

Nothing here computes a figure. On PostgreSQL the rows travel as one text value the database
joins (`string_agg`), with amounts in cents and dates as day numbers computed there, which
moves a million rows in a fraction of the time Python tuples or a row-by-row `COPY` take;
elsewhere through the ORM. Every statement is built by the ORM or composed with `psycopg.sql`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Func, IntegerField, Q, QuerySet
from django.db.models.functions import Cast
from psycopg import sql

from analytics import revenue
from channels.models import CoverageAssignment, Opportunity
from channels.rules import IN_PIPELINE, SUBSCRIBED, WON_DAYS, WON_IN_52_WEEKS
from crm.models import Region, Vertical
from crm.selectors import rate_table
from partners.models import Agreement, Partner

_OPPORTUNITY_FIELDS: dict[str, str] = {
    "opportunity_id": "id",
    "account_id": "account_id",
    "region": "account__region_id",
    "vertical": "account__vertical_id",
    "size_band": "account__size_band",
    "channel": "channel",
    "partner_id": "partner_id",
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


class _DayNumber(Func):
    """A date as days since 1970-01-01 (PostgreSQL's date difference is an integer): the
    read sends a number instead of a date's text, which pandas would then parse."""

    template = "(%(expressions)s - DATE '1970-01-01')"
    output_field = IntegerField()


def _postgresql_numbers(
    opportunities: QuerySet[Opportunity],
) -> tuple[QuerySet[Any], dict[str, str]]:
    """On PostgreSQL, the amount and probability as whole hundredths and the dates as day
    numbers, computed by the database (exact: numeric times 100), and the fields to read."""
    numbers = {
        "amount_cents": Cast(F("amount") * 100, BigIntegerField()),
        "probability_bp": Cast(F("sub_stage__probability") * 100, BigIntegerField()),
        **{f"{field}_day": _DayNumber(F(field)) for field in _DATES},
    }
    fields = _OPPORTUNITY_FIELDS | {
        "amount": "amount_cents",
        "probability": "probability_bp",
        **{field: f"{field}_day" for field in _DATES},
    }
    return opportunities.annotate(**numbers), fields


def _frame(
    queryset: QuerySet[Any],
    fields: Sequence[str],
    columns: list[str],
    dtypes: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The rows of `queryset` (its `fields`, named `columns`) as a frame of text and numbers;
    dates stay text (`_dated` parses them), or day numbers where the read asks for them. On
    PostgreSQL a column is read as `dtypes` names it (text by default), a null as NaN."""
    rows = queryset.order_by().values_list(*fields)
    if connection.vendor != "postgresql":
        return pd.DataFrame(list(rows), columns=columns)
    select, params = rows.query.sql_with_params()
    # The rows joined into one text value by the database: one message on the wire instead of
    # one per row (a million messages cost more than the rows' text). Tab-separated: no field
    # read here (numbers, dates, codes) holds a tab; a null is an empty field.
    names = [sql.Identifier(f"c{number}") for number in range(len(columns))]
    statement = sql.SQL(
        "SELECT string_agg(concat_ws(E'\\t', {fields}), E'\\n') FROM ({select}) AS rows({names})"
    ).format(
        fields=sql.SQL(", ").join(sql.SQL("coalesce({}::text, '')").format(name) for name in names),
        select=sql.SQL(select),
        names=sql.SQL(", ").join(names),
    )
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, params)
        (text,) = cursor.fetchone() or (None,)
    dtypes = {column: (dtypes or {}).get(column, "str") for column in columns}
    return pd.read_csv(
        io.StringIO(text or ""),
        sep="\t",
        names=columns,
        header=None,
        dtype=dtypes,
        keep_default_na=False,
        na_values=[""],
        quoting=csv.QUOTE_NONE,
    )


def _dated(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):  # day numbers (PostgreSQL)
            frame[column] = pd.to_datetime(values, unit="D")
        else:
            frame[column] = pd.to_datetime(values, format="ISO8601")
    return frame


def _cents(values: pd.Series) -> pd.Series:
    """Amounts of at most two decimals (`Decimal`s, or their text as PostgreSQL writes it) as
    whole cents, exactly: never through a float."""
    if not len(values) or isinstance(values.iloc[0], Decimal):
        return pd.Series([int(v.scaleb(2)) for v in values], index=values.index, dtype="int64")
    parts = values.astype(str).str.partition(".")
    whole = parts[0].astype("int64")
    fraction = parts[2].str.ljust(2, "0").str[:2].astype("int64")
    return whole * 100 + fraction


def _opportunities(opportunities: QuerySet[Opportunity]) -> pd.DataFrame:
    fields, numbers = _OPPORTUNITY_FIELDS, {}
    if connection.vendor == "postgresql":
        opportunities, fields = _postgresql_numbers(opportunities)
        numbers = {
            "opportunity_id": "int64",
            "account_id": "int64",
            "region": "int64",
            "vertical": "int64",
            "partner_id": "float64",
            "amount": "int64",
            "probability": "int64",
            **{field: "float64" for field in _DATES},
        }
    frame = _frame(opportunities, list(fields.values()), list(fields), numbers)
    regions = dict(Region.objects.values_list("id", "code"))
    verticals = dict(Vertical.objects.values_list("id", "code"))
    frame["opportunity_id"] = frame["opportunity_id"].astype("int64")
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["region"] = frame["region"].astype("int64").map(regions)
    frame["vertical"] = frame["vertical"].astype("int64").map(verticals)
    frame["partner_id"] = pd.to_numeric(frame["partner_id"]).fillna(0).astype("int64")
    frame["recurring"] = frame["recurring"].isin([True, "t", "true", "True", 1, "1"])
    if numbers:  # whole hundredths already
        frame["amount_cents"] = frame["amount"].astype("int64")
        frame["probability_bp"] = frame["probability"].astype("int64")
    else:
        frame["amount_cents"] = _cents(frame["amount"])
        frame["probability_bp"] = _cents(frame["probability"])
    frame = _dated(frame, revenue.DATE_FIELDS)
    return frame[revenue.OPPORTUNITY_COLUMNS]


def _coverage(assignments: QuerySet[CoverageAssignment]) -> pd.DataFrame:
    numbers = {"account_id": "int64", "partner_id": "float64"}
    frame = _frame(assignments, _COVERAGE_FIELDS, _COVERAGE_FIELDS, numbers)
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["partner_id"] = pd.to_numeric(frame["partner_id"]).fillna(0).astype("int64")
    return _dated(frame, ["start_date", "end_date"])


def _agreements() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every agreement with its annual target (cents) and currency, and the region and
    vertical codes it lists."""
    columns = ["agreement_id", "partner_id", "status", "signed_on", "start_date", "end_date"]
    columns += ["terminated_on", "annual_target", "currency"]
    rows = Agreement.objects.order_by().values_list("id", *columns[1:])
    agreements = pd.DataFrame(list(rows), columns=columns)
    agreements = _dated(agreements, ["signed_on", "start_date", "end_date", "terminated_on"])
    agreements["annual_target_cents"] = pd.array(
        [
            None if target is None else int(target.scaleb(2))
            for target in agreements["annual_target"]
        ],
        dtype="Int64",
    )
    regions = pd.DataFrame(
        list(Agreement.regions.through.objects.values_list("agreement_id", "region__code")),
        columns=["agreement_id", "region"],
    )
    verticals = pd.DataFrame(
        list(Agreement.verticals.through.objects.values_list("agreement_id", "vertical__code")),
        columns=["agreement_id", "vertical"],
    )
    return agreements.drop(columns="annual_target"), regions, verticals


def revenue_frames(d: date | None = None) -> dict[str, Any]:
    """The keyword arguments of `revenue.PreparedRevenue`: every opportunity, or with `d` only
    those that can count on `d` and the coverage that can have influenced its won deals. All
    read in one snapshot (REPEATABLE READ on PostgreSQL, when no transaction is open yet)."""
    fresh = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if fresh:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                # The deals' accounts are hashed whole (a million at a million accounts): in
                # memory rather than spilled in batches to disk; and no plan compiling.
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL jit = off")
        opportunities = Opportunity.objects.all()
        assignments = CoverageAssignment.objects.all()
        if d is not None:
            opportunities = opportunities.filter(
                IN_PIPELINE.q(d) | WON_IN_52_WEEKS.q(d) | SUBSCRIBED.q(d)
            )
            won = Opportunity.objects.filter(WON_IN_52_WEEKS.q(d)).values("account_id")
            # Coverage running on some day of the 13 weeks before a close in the window.
            earliest = d - timedelta(days=WON_DAYS - 1 + revenue.INFLUENCE_DAYS)
            assignments = assignments.filter(
                Q(end_date__isnull=True) | Q(end_date__gte=earliest),
                start_date__lt=d,
                account_id__in=won,
            )
        else:
            won_accounts = Opportunity.objects.filter(stage="won").values("account_id")
            assignments = assignments.filter(account_id__in=won_accounts)
        agreements, agreement_regions, agreement_verticals = _agreements()
        partners = pd.DataFrame(
            list(Partner.objects.values_list("id", "external_id", "name", "channel_kind")),
            columns=["partner_id", "external_id", "name", "channel_kind"],
        )
        return {
            "opportunities": _opportunities(opportunities),
            "coverage": _coverage(assignments),
            "agreements": agreements,
            "agreement_regions": agreement_regions,
            "agreement_verticals": agreement_verticals,
            "partners": partners,
            "rates": rate_table(),
        }
