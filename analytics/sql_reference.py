"""A second, independent implementation of the segment counts: one SQL statement.

It answers the same question as `analytics.metrics` (docs/metrics.md rules 1-4) straight from the
tables, in SQL that runs on SQLite and PostgreSQL alike. Tests check the pandas path against
it on random markets; `bench_metrics` times it as the yardstick for the pipeline.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from django.db import connection, transaction

from analytics import metrics
from channels.models import CoverageAssignment
from crm.models import Account, Region, Vertical
from partners.models import Agreement

_FLAGS = {
    "direct": "d_",
    "distribution": "s_",
    "partner": "p_",
    "online": "o_",
}


def reference_sql() -> str:
    """The statement; its only parameter is `%(d)s`, the as-of date.

    Per account (in the inner query): whether it is in the market, whether some active
    assignment of each kind covers it (for partner kinds: joined to a cell granted by an
    agreement in force, where "no regions" and "no verticals" mean all), and the kind that won
    it by `d`. The outer query sums those flags per segment.
    """
    tables = {
        "account": Account._meta.db_table,
        "coverage": CoverageAssignment._meta.db_table,
        "agreement": Agreement._meta.db_table,
        "agreement_regions": Agreement.regions.through._meta.db_table,
        "agreement_verticals": Agreement.verticals.through._meta.db_table,
        "region": Region._meta.db_table,
        "vertical": Vertical._meta.db_table,
    }
    # The granted test is an uncorrelated IN over the cells packed into one integer, which
    # PostgreSQL answers from one hash table while the join streams in account order.
    packed = "((c.partner_id * 1048576 + a.region_id) * 1048576 + a.vertical_id)"
    granted = (
        f"{packed} IN "
        "(SELECT (partner_id * 1048576 + region_id) * 1048576 + vertical_id FROM cells)"
    )
    flag = {
        kind: (
            f"MAX(CASE WHEN c.kind = '{kind}' AND {granted} THEN 1 ELSE 0 END)"
            if kind in metrics.PARTNER_KINDS
            else f"MAX(CASE WHEN c.kind = '{kind}' THEN 1 ELSE 0 END)"
        )
        for kind in metrics.KINDS
    }
    covered = " + ".join(f"f.{prefix}covered" for prefix in _FLAGS.values())
    sums = ",\n".join(
        [
            "SUM(f.live) AS accounts",
            *(f"SUM(f.live * f.{_FLAGS[kind]}covered) AS covered_{kind}" for kind in metrics.KINDS),
            f"SUM(CASE WHEN f.live = 1 AND {covered} > 0 THEN 1 ELSE 0 END) AS covered_any",
            f"SUM(CASE WHEN f.live = 1 AND {covered} >= 2 THEN 1 ELSE 0 END) AS overlap",
            "SUM(CASE WHEN f.live = 1 AND f.won <> '' THEN 1 ELSE 0 END) AS converted",
            *(
                f"SUM(CASE WHEN f.live = 1 AND f.won = '{kind}' THEN 1 ELSE 0 END)"
                f" AS converted_{kind}"
                for kind in metrics.KINDS
            ),
            f"SUM(f.live) - SUM(CASE WHEN f.live = 1 AND {covered} > 0 THEN 1 ELSE 0 END)"
            " AS white_space",
        ]
    )
    columns = ", ".join(f"segment.{column}" for column in metrics.COUNT_COLUMNS)
    flags = ",\n".join(f"{flag[kind]} AS {prefix}covered" for kind, prefix in _FLAGS.items())
    return f"""
        WITH in_force AS (
            SELECT g.id AS agreement_id, g.partner_id AS partner_id
            FROM {tables["agreement"]} g
            WHERE g.signed_on IS NOT NULL AND g.signed_on <= %(d)s
              AND g.start_date <= %(d)s AND g.end_date >= %(d)s
              AND (g.terminated_on IS NULL OR g.terminated_on >= %(d)s)
        ),
        cells AS MATERIALIZED (
            SELECT DISTINCT f.partner_id AS partner_id, r.id AS region_id, v.id AS vertical_id
            FROM in_force f
            CROSS JOIN {tables["region"]} r
            CROSS JOIN {tables["vertical"]} v
            WHERE (r.id IN (SELECT x.region_id FROM {tables["agreement_regions"]} x
                            WHERE x.agreement_id = f.agreement_id)
                   OR NOT EXISTS (SELECT 1 FROM {tables["agreement_regions"]} x
                                  WHERE x.agreement_id = f.agreement_id))
              AND (v.id IN (SELECT y.vertical_id FROM {tables["agreement_verticals"]} y
                            WHERE y.agreement_id = f.agreement_id)
                   OR NOT EXISTS (SELECT 1 FROM {tables["agreement_verticals"]} y
                                  WHERE y.agreement_id = f.agreement_id))
        )
        SELECT r.code AS region, v.code AS vertical, segment.size_band AS size_band,
               {columns}
        FROM (
        SELECT f.region_id AS region_id, f.vertical_id AS vertical_id, f.size_band AS size_band,
               {sums}
        FROM (
            SELECT a.id AS account_id, a.region_id AS region_id, a.vertical_id AS vertical_id,
                   a.size_band AS size_band,
                   CASE WHEN a.entered_on <= %(d)s
                             AND (a.archived_on IS NULL OR a.archived_on > %(d)s)
                        THEN 1 ELSE 0 END AS live,
                   CASE WHEN a.converted_on <= %(d)s THEN a.converted_via ELSE '' END AS won,
                   {flags}
            FROM {tables["account"]} a
            LEFT JOIN {tables["coverage"]} c
              ON c.account_id = a.id AND c.start_date <= %(d)s
             AND (c.end_date IS NULL OR c.end_date >= %(d)s)
            GROUP BY a.id, a.region_id, a.vertical_id, a.size_band, a.entered_on, a.archived_on,
                     a.converted_on, a.converted_via
        ) f
        GROUP BY f.region_id, f.vertical_id, f.size_band
        ) segment
        JOIN {tables["region"]} r ON r.id = segment.region_id
        JOIN {tables["vertical"]} v ON v.id = segment.vertical_id
        ORDER BY r.code, v.code, segment.size_band
    """


def reference_segment_counts(d: date) -> pd.DataFrame:
    """The segment counts on `d` (`metrics.SEGMENT_KEYS` + `metrics.COUNT_COLUMNS`, int64),
    one row per segment holding any account, sorted by segment, from the single statement."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Serial plans win on two cores (measured: README, "Metrics").
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(reference_sql(), {"d": d})
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=[*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS])
    return frame.astype({column: "int64" for column in metrics.COUNT_COLUMNS})
