"""A second, independent implementation of the weekly counts: plain SQL statements.

It answers the same questions as the weekly run (docs/metrics.md rules 1-4, and rule 6's
accounts covered, converted and agreements in force per partner) straight from the tables, in
SQL that runs on SQLite and PostgreSQL alike, written without the rule statements of
`crm.rules` and the apps' `rules.py` on purpose. Tests hold the weekly run equal to it on random
markets; `bench_metrics` times it as the yardstick for the pipeline.

Statements are composed with `psycopg.sql`: table names as identifiers, the day and the channel
kinds as parameters.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from django.db import connection, transaction
from psycopg import sql

from analytics import metrics
from channels.models import CoverageAssignment
from crm.models import Account, Region, Vertical
from crm.sql import as_text
from partners.models import Agreement, AgreementStatus, Partner


def _tables() -> dict[str, sql.Identifier]:
    return {
        "account": sql.Identifier(Account._meta.db_table),
        "coverage": sql.Identifier(CoverageAssignment._meta.db_table),
        "agreement": sql.Identifier(Agreement._meta.db_table),
        "agreement_regions": sql.Identifier(Agreement.regions.through._meta.db_table),
        "agreement_verticals": sql.Identifier(Agreement.verticals.through._meta.db_table),
        "partner": sql.Identifier(Partner._meta.db_table),
        "region": sql.Identifier(Region._meta.db_table),
        "vertical": sql.Identifier(Vertical._meta.db_table),
    }


def _kind(kind: str) -> sql.Placeholder:
    return sql.Placeholder(f"kind_{kind}")


def _params(d: date) -> dict[str, date | str]:
    return {
        "d": d,
        "draft": AgreementStatus.DRAFT.value,
        **{f"kind_{kind}": kind for kind in metrics.KINDS},
    }


# Agreements in force on the day, and the (partner, region, vertical) cells they grant: the
# listed regions, or every region when none is listed; likewise verticals.
_GRANTED = """
    in_force AS (
        SELECT g.id AS agreement_id, g.partner_id AS partner_id
        FROM {agreement} g
        WHERE g.status <> %(draft)s
          AND g.signed_on IS NOT NULL AND g.signed_on <= %(d)s
          AND g.start_date <= %(d)s AND g.end_date >= %(d)s
          AND (g.terminated_on IS NULL OR g.terminated_on >= %(d)s)
    ),
    cells AS MATERIALIZED (
        SELECT DISTINCT f.partner_id AS partner_id, r.id AS region_id, v.id AS vertical_id
        FROM in_force f
        CROSS JOIN {region} r
        CROSS JOIN {vertical} v
        WHERE (r.id IN (SELECT x.region_id FROM {agreement_regions} x
                        WHERE x.agreement_id = f.agreement_id)
               OR NOT EXISTS (SELECT 1 FROM {agreement_regions} x
                              WHERE x.agreement_id = f.agreement_id))
          AND (v.id IN (SELECT y.vertical_id FROM {agreement_verticals} y
                        WHERE y.agreement_id = f.agreement_id)
               OR NOT EXISTS (SELECT 1 FROM {agreement_verticals} y
                              WHERE y.agreement_id = f.agreement_id))
    )
"""
# The granted test is an uncorrelated IN over the cells packed into one integer, which
# PostgreSQL answers from one hash table while the join streams in account order.
_IS_GRANTED = """
    ((c.partner_id * 1048576 + a.region_id) * 1048576 + a.vertical_id) IN
    (SELECT (partner_id * 1048576 + region_id) * 1048576 + vertical_id FROM cells)
"""
_IN_MARKET = "a.entered_on <= %(d)s AND (a.archived_on IS NULL OR a.archived_on > %(d)s)"
_RUNNING = "c.start_date <= %(d)s AND (c.end_date IS NULL OR c.end_date >= %(d)s)"


def reference_sql() -> sql.Composed:
    """The segment counts' statement; its parameters are `_params(d)`.

    Per account (in the inner query): whether it is in the market, whether some active
    assignment of each kind covers it (for partner kinds: joined to a cell granted by an
    agreement in force), and the kind that won it by `d`. The outer query sums those flags per
    segment.
    """
    flags = {kind: sql.Identifier(f"flag_{kind}") for kind in metrics.KINDS}
    flag_columns = sql.SQL(",\n").join(
        sql.SQL(
            "MAX(CASE WHEN c.kind = {kind} AND " + _IS_GRANTED + " THEN 1 ELSE 0 END) AS {flag}"
            if kind in metrics.PARTNER_KINDS
            else "MAX(CASE WHEN c.kind = {kind} THEN 1 ELSE 0 END) AS {flag}"
        ).format(kind=_kind(kind), flag=flags[kind])
        for kind in metrics.KINDS
    )
    covered = sql.SQL(" + ").join(sql.SQL("f.{}").format(flag) for flag in flags.values())
    sums = sql.SQL(",\n").join(
        [
            sql.SQL("SUM(f.live) AS accounts"),
            *(
                sql.SQL("SUM(f.live * f.{flag}) AS {name}").format(
                    flag=flags[kind], name=sql.Identifier(f"covered_{kind}")
                )
                for kind in metrics.KINDS
            ),
            sql.SQL("SUM(CASE WHEN f.live = 1 AND {} > 0 THEN 1 ELSE 0 END) AS covered_any").format(
                covered
            ),
            sql.SQL("SUM(CASE WHEN f.live = 1 AND {} >= 2 THEN 1 ELSE 0 END) AS overlap").format(
                covered
            ),
            sql.SQL("SUM(CASE WHEN f.live = 1 AND f.won <> '' THEN 1 ELSE 0 END) AS converted"),
            *(
                sql.SQL(
                    "SUM(CASE WHEN f.live = 1 AND f.won = {kind} THEN 1 ELSE 0 END) AS {name}"
                ).format(kind=_kind(kind), name=sql.Identifier(f"converted_{kind}"))
                for kind in metrics.KINDS
            ),
            sql.SQL(
                "SUM(f.live) - SUM(CASE WHEN f.live = 1 AND {} > 0 THEN 1 ELSE 0 END)"
                " AS white_space"
            ).format(covered),
        ]
    )
    columns = sql.SQL(", ").join(
        sql.Identifier("segment", column) for column in metrics.COUNT_COLUMNS
    )
    template = (
        "WITH "
        + _GRANTED
        + """
        SELECT r.code AS region, v.code AS vertical, segment.size_band AS size_band,
               {columns}
        FROM (
        SELECT f.region_id AS region_id, f.vertical_id AS vertical_id, f.size_band AS size_band,
               {sums}
        FROM (
            SELECT a.id AS account_id, a.region_id AS region_id, a.vertical_id AS vertical_id,
                   a.size_band AS size_band,
                   CASE WHEN """
        + _IN_MARKET
        + """ THEN 1 ELSE 0 END AS live,
                   CASE WHEN a.converted_on <= %(d)s THEN a.converted_via ELSE '' END AS won,
                   {flag_columns}
            FROM {account} a
            LEFT JOIN {coverage} c ON c.account_id = a.id AND """
        + _RUNNING
        + """
            GROUP BY a.id, a.region_id, a.vertical_id, a.size_band, a.entered_on, a.archived_on,
                     a.converted_on, a.converted_via
        ) f
        GROUP BY f.region_id, f.vertical_id, f.size_band
        ) segment
        JOIN {region} r ON r.id = segment.region_id
        JOIN {vertical} v ON v.id = segment.vertical_id
        ORDER BY r.code, v.code, segment.size_band
        """
    )
    return sql.SQL(template).format(
        columns=columns, sums=sums, flag_columns=flag_columns, **_tables()
    )


def reference_partner_sql() -> sql.Composed:
    """Per partner (every one, by id): the in-market accounts its own assignments actively
    cover (granted by an agreement in force), of those the ones converted by the day, and its
    agreements in force. Parameters: `_params(d)`."""
    covering = (
        "FROM {coverage} c JOIN {account} a ON a.id = c.account_id"
        " WHERE c.partner_id = p.id AND c.kind IN ({distribution}, {partner_kind})"
        " AND " + _RUNNING + " AND " + _IN_MARKET + " AND " + _IS_GRANTED
    )
    template = (
        "WITH "
        + _GRANTED
        + """
        SELECT p.id AS partner_id,
               (SELECT COUNT(DISTINCT c.account_id) """
        + covering
        + """) AS covered_accounts,
               (SELECT COUNT(DISTINCT c.account_id) """
        + covering
        + """ AND a.converted_on <= %(d)s) AS converted_accounts,
               (SELECT COUNT(*) FROM in_force f WHERE f.partner_id = p.id)
                   AS agreements_in_force
        FROM {partner} p
        ORDER BY p.id
        """
    )
    return sql.SQL(template).format(
        distribution=_kind("distribution"), partner_kind=_kind("partner"), **_tables()
    )


def _rows(statement: sql.Composed, d: date) -> list[tuple[object, ...]]:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Serial plans win on two cores (measured: README, "Metrics").
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(as_text(statement), _params(d))
        rows: list[tuple[object, ...]] = cursor.fetchall()  # the driver's values, column by column
        return rows


def reference_segment_counts(d: date) -> pd.DataFrame:
    """The segment counts on `d` (`metrics.SEGMENT_KEYS` + `metrics.COUNT_COLUMNS`, int64),
    one row per segment holding any account, sorted by segment, from the single statement."""
    frame = pd.DataFrame(
        _rows(reference_sql(), d), columns=[*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]
    )
    return frame.astype({column: "int64" for column in metrics.COUNT_COLUMNS})


def reference_partner_counts(d: date) -> pd.DataFrame:
    """Per partner, sorted by id: `partner_id, covered_accounts, converted_accounts,
    agreements_in_force` on `d` (int64)."""
    columns = ["partner_id", "covered_accounts", "converted_accounts", "agreements_in_force"]
    return pd.DataFrame(_rows(reference_partner_sql(), d), columns=columns).astype("int64")
