"""Reads for the metrics: the market as frames, database pre-aggregations, and the snapshots.

Two ways to feed `analytics.metrics`:

- `market_frames()` loads the account-level columns once; the backfill evaluates many as-of
  dates in memory from them.
- `mask_groups_on(d)` and `partner_coverage_on(d)` let the database do the heavy part for one
  date and return only small frames (one row per segment and kinds mask; one row per partner).
  This is the fast path for a single week (see DESIGN.md, "Measured on this machine").

Dashboards, exports and the API read only the snapshot tables, through the `snapshot_*`
functions at the end.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import Any

import pandas as pd
from django.db import connection, transaction
from django.db.models import Max, Min
from django.db.models.functions import TruncDate

from analytics import metrics
from analytics.models import PartnerSnapshot, SegmentSnapshot
from channels.models import CoverageAssignment
from crm.models import Account, Region, Vertical
from partners.models import Agreement, Feedback, Partner

# A partner-kind assignment counts only where an agreement in force grants its cell. The test is
# an uncorrelated IN, which PostgreSQL runs as one hash table probed per row (a "hashed SubPlan")
# instead of a join that would break the account order the grouping streams on. The cell is
# packed into one bigint, which hashes several times faster than a row of three columns; it is
# unique while region and vertical ids stay below 2**20 and partner ids below 2**23 (checked).
CELL_BITS = 20
_CELL = f"((c.partner_id * {1 << CELL_BITS} + a.region_id) * {1 << CELL_BITS} + a.vertical_id)"
_GRANTED = f"{_CELL} IN (SELECT cell FROM scope)"


def _mask_sql() -> str:
    """The per-account kinds mask: one BIT_OR on PostgreSQL, a sum of per-kind MAXes elsewhere
    (SQLite has no bitwise aggregate)."""
    if connection.vendor == "postgresql":
        cases = " ".join(
            f"WHEN '{kind}' THEN "
            + (
                f"CASE WHEN {_GRANTED} THEN {bit} END"
                if kind in metrics.PARTNER_KINDS
                else str(bit)
            )
            for kind, bit in metrics.KIND_BITS.items()
        )
        return f"COALESCE(BIT_OR(CASE c.kind {cases} END), 0)"
    return " + ".join(
        f"COALESCE(MAX(CASE WHEN c.kind = '{kind}'"
        + (f" AND {_GRANTED}" if kind in metrics.PARTNER_KINDS else "")
        + f" THEN {bit} END), 0)"
        for kind, bit in metrics.KIND_BITS.items()
    )


def _tables() -> dict[str, str]:
    return {
        "account": Account._meta.db_table,
        "coverage": CoverageAssignment._meta.db_table,
        "agreement": Agreement._meta.db_table,
        "agreement_regions": Agreement.regions.through._meta.db_table,
        "agreement_verticals": Agreement.verticals.through._meta.db_table,
        "region": Region._meta.db_table,
        "vertical": Vertical._meta.db_table,
    }


IN_FORCE_SQL = """
    g.signed_on IS NOT NULL AND g.signed_on <= %(d)s
    AND g.start_date <= %(d)s AND %(d)s <= g.end_date
    AND (g.terminated_on IS NULL OR %(d)s <= g.terminated_on)
"""


def scope_sql() -> str:
    """SQL for the (partner, region, vertical) cells granted by agreements in force on %(d)s,
    each packed into one integer `cell` (see `_CELL`).

    An agreement with no regions grants every region, and likewise for verticals; expanding to
    cells makes "the same agreement satisfies both" a plain equality join. Duplicates are
    harmless to the callers, which only test for presence.
    """
    return """
        SELECT DISTINCT (granted_regions.partner_id * {cell} + granted_regions.region_id) * {cell}
                        + granted_verticals.vertical_id AS cell
        FROM (
            SELECT g.id AS agreement_id, g.partner_id AS partner_id, x.region_id AS region_id
            FROM {agreement} g JOIN {agreement_regions} x ON x.agreement_id = g.id
            WHERE {in_force}
            UNION ALL
            SELECT g.id, g.partner_id, r.id
            FROM {agreement} g CROSS JOIN {region} r
            WHERE {in_force}
              AND NOT EXISTS (SELECT 1 FROM {agreement_regions} x WHERE x.agreement_id = g.id)
        ) granted_regions
        JOIN (
            SELECT g.id AS agreement_id, y.vertical_id AS vertical_id
            FROM {agreement} g JOIN {agreement_verticals} y ON y.agreement_id = g.id
            WHERE {in_force}
            UNION ALL
            SELECT g.id, v.id
            FROM {agreement} g CROSS JOIN {vertical} v
            WHERE {in_force}
              AND NOT EXISTS (SELECT 1 FROM {agreement_verticals} y WHERE y.agreement_id = g.id)
        ) granted_verticals ON granted_verticals.agreement_id = granted_regions.agreement_id
    """.format(in_force=IN_FORCE_SQL, cell=1 << CELL_BITS, **_tables())


def _region_filter(region_ids: Sequence[int] | None, params: dict[str, Any]) -> str:
    if region_ids is None:
        return ""
    names = []
    for position, region_id in enumerate(region_ids):
        params[f"r{position}"] = region_id
        names.append(f"%(r{position})s")
    return f"AND a.region_id IN ({', '.join(names) or 'NULL'})"


IdRange = tuple[int | None, int | None]


def _id_range_sql(id_range: IdRange | None, params: dict[str, Any]) -> tuple[str, str]:
    """The clauses keeping accounts with `low <= id < high` (an end left open when None): one
    on the account, one on the assignment, so that both index scans read only their range."""
    if id_range is None:
        return "", ""
    low, high = id_range
    on_account, on_coverage = [], []
    for bound, name, operator in ((low, "id_low", ">="), (high, "id_high", "<")):
        if bound is not None:
            params[name] = bound
            on_account.append(f"AND a.id {operator} %({name})s")
            on_coverage.append(f"AND c.account_id {operator} %({name})s")
    return " ".join(on_account), " ".join(on_coverage)


def _check_cell_ids() -> None:
    limits = ((Region, CELL_BITS), (Vertical, CELL_BITS), (Partner, 63 - 2 * CELL_BITS - 1))
    for model, bits in limits:
        highest = model.objects.order_by("-id").values_list("id", flat=True).first() or 0
        if highest >= 1 << bits:
            raise RuntimeError(f"{model.__name__} ids outgrew the packed cell key; widen it")


@contextmanager
def _tuned_cursor() -> Any:
    # On two cores the parallel plan is slower and hungrier than a serial one, and the merge
    # join over the (account, kind) index beats hashing a million accounts (DESIGN.md).
    _check_cell_ids()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            # Compiling this plan costs more than it saves at these sizes.
            cursor.execute("SET LOCAL jit = off")
        yield cursor


def mask_groups_sql(
    region_ids: Sequence[int] | None, params: dict[str, Any], id_range: IdRange | None = None
) -> str:
    """One statement that yields `metrics.MASK_GROUP_COLUMNS`, with region and vertical ids in
    place of codes; `params` receives the filters' parameters (`d` is the caller's)."""
    on_account, on_coverage = _id_range_sql(id_range, params)
    return """
        WITH scope AS MATERIALIZED ({scope})
        SELECT region_id, vertical_id, size_band, in_market, mask, converted_via, COUNT(*) AS n
        FROM (
            SELECT a.region_id AS region_id, a.vertical_id AS vertical_id,
                   a.size_band AS size_band,
                   CASE WHEN a.entered_on <= %(d)s
                             AND (a.archived_on IS NULL OR a.archived_on > %(d)s)
                        THEN 1 ELSE 0 END AS in_market,
                   CASE WHEN a.entered_on <= %(d)s
                             AND (a.archived_on IS NULL OR a.archived_on > %(d)s)
                        THEN {mask} ELSE 0 END AS mask,
                   CASE WHEN a.entered_on <= %(d)s
                             AND (a.archived_on IS NULL OR a.archived_on > %(d)s)
                             AND a.converted_on <= %(d)s
                        THEN a.converted_via ELSE '' END AS converted_via
            FROM {account} a
            LEFT JOIN {coverage} c
              ON c.account_id = a.id
             AND c.start_date <= %(d)s AND (c.end_date IS NULL OR %(d)s <= c.end_date)
             {on_coverage}
            WHERE 1 = 1 {region_filter} {on_account}
            GROUP BY a.id, a.region_id, a.vertical_id, a.size_band, a.entered_on, a.archived_on,
                     a.converted_on, a.converted_via
        ) per_account
        GROUP BY region_id, vertical_id, size_band, in_market, mask, converted_via
    """.format(
        scope=scope_sql(),
        mask=_mask_sql(),
        region_filter=_region_filter(region_ids, params),
        on_account=on_account,
        on_coverage=on_coverage,
        **_tables(),
    )


def _codes(model: type[Region] | type[Vertical]) -> dict[int, str]:
    return dict(model.objects.values_list("id", "code"))


def mask_groups_on(
    d: date, *, region_ids: Sequence[int] | None = None, id_range: IdRange | None = None
) -> pd.DataFrame:
    """The mask groups frame (`metrics.MASK_GROUP_COLUMNS`) for `d`, aggregated in the
    database; only accounts in `region_ids` and in `id_range` when given."""
    params: dict[str, Any] = {"d": d}
    sql = mask_groups_sql(region_ids, params, id_range)
    with _tuned_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame(
        rows,
        columns=[
            "region_id",
            "vertical_id",
            "size_band",
            "in_market",
            "mask",
            "converted_via",
            "n",
        ],
    )
    frame["region"] = frame["region_id"].map(_codes(Region))
    frame["vertical"] = frame["vertical_id"].map(_codes(Vertical))
    frame["in_market"] = frame["in_market"].astype(bool)
    frame["converted_via"] = frame["converted_via"].fillna("")
    return frame[metrics.MASK_GROUP_COLUMNS]


def partner_coverage_on(
    d: date, *, region_ids: Sequence[int] | None = None, id_range: IdRange | None = None
) -> pd.DataFrame:
    """`metrics.partner_coverage_counts` for `d`, aggregated in the database; only accounts in
    `region_ids` and in `id_range` when given (the sum over disjoint account sets is the
    whole)."""
    params: dict[str, Any] = {"d": d}
    on_account, on_coverage = _id_range_sql(id_range, params)
    # The granted test sits inside COALESCE so that PostgreSQL probes one hash table per row
    # (a hashed SubPlan) instead of sorting half a million rows for a semi-join.
    sql = """
        WITH scope AS MATERIALIZED ({scope})
        SELECT c.partner_id, COUNT(DISTINCT c.account_id),
               COUNT(DISTINCT CASE WHEN a.converted_on <= %(d)s THEN c.account_id END)
        FROM {coverage} c
        JOIN {account} a ON a.id = c.account_id
        WHERE c.kind IN ('distribution', 'partner')
          AND c.start_date <= %(d)s AND (c.end_date IS NULL OR %(d)s <= c.end_date)
          AND a.entered_on <= %(d)s AND (a.archived_on IS NULL OR a.archived_on > %(d)s)
          AND COALESCE({granted}, FALSE)
          {region_filter} {on_account} {on_coverage}
        GROUP BY c.partner_id
    """.format(
        scope=scope_sql(),
        granted=_GRANTED,
        region_filter=_region_filter(region_ids, params),
        on_account=on_account,
        on_coverage=on_coverage,
        **_tables(),
    )
    with _tuned_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pd.DataFrame(
        rows, columns=["partner_id", "covered_accounts", "converted_accounts"]
    ).astype("int64")


def _id_ranges(parts: int) -> list[IdRange]:
    """`parts` consecutive account id ranges of about equal width; the first and last are open,
    so an account added since is never outside them all."""
    low, high = Account.objects.aggregate(low=Min("id"), high=Max("id")).values()
    if low is None or parts <= 1:
        return [(None, None)]
    step = max(1, (high - low + 1) // parts)
    bounds = [low + step * position for position in range(1, parts)]
    edges: list[int | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


WeekAggregates = tuple[pd.DataFrame, pd.DataFrame]


def _aggregates_on(d: date, id_range: IdRange | None) -> WeekAggregates:
    return mask_groups_on(d, id_range=id_range), partner_coverage_on(d, id_range=id_range)


def _aggregates_in_snapshot(d: date, id_range: IdRange, snapshot: str) -> WeekAggregates:
    """`_aggregates_on` on this thread's own connection, reading the exported `snapshot`."""
    if not re.fullmatch(r"[0-9A-F]+(-[0-9A-F]+)+", snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return _aggregates_on(d, id_range)
    finally:
        connection.close()


def week_aggregates_on(d: date, *, parts: int = 1) -> WeekAggregates:
    """The mask groups (`metrics.MASK_GROUP_COLUMNS`) and the partner coverage counts on `d`.

    With `parts` > 1 on PostgreSQL, outside a transaction, the accounts are split into that
    many id ranges read at once, each on a connection of its own, all from one exported
    snapshot: the same figures one reader would get, sooner on several cores. Otherwise one
    reader on this connection. Mask groups of different parts may repeat a key (the counts
    add); partner counts are summed here (the parts hold disjoint accounts).
    """
    if parts <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return _aggregates_on(d, None)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
        first, *others = _id_ranges(parts)
        with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
            pending = [
                pool.submit(_aggregates_in_snapshot, d, id_range, snapshot) for id_range in others
            ]
            results = [_aggregates_on(d, first), *(future.result() for future in pending)]
    groups = pd.concat([result[0] for result in results], ignore_index=True)
    return groups, metrics.summed_partner_coverage([result[1] for result in results])


def _frame(rows: Iterable[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def agreements_frame() -> pd.DataFrame:
    """Every agreement's dates (`agreement_id, partner_id, signed_on, start_date, end_date,
    terminated_on`)."""
    columns = ["agreement_id", "partner_id", "signed_on", "start_date", "end_date", "terminated_on"]
    fields = ["id", "partner_id", "signed_on", "start_date", "end_date", "terminated_on"]
    return _frame(Agreement.objects.values_list(*fields), columns)


def feedback_frame() -> pd.DataFrame:
    """Every feedback entry's partner, created date (in the project's time zone), satisfaction
    and NPS."""
    rows = Feedback.objects.annotate(created_on=TruncDate("created_at")).values_list(
        "partner_id", "created_on", "satisfaction", "nps"
    )
    frame = _frame(rows, ["partner_id", "created_on", "satisfaction", "nps"])
    frame["nps"] = frame["nps"].astype("float64")
    return frame


def partners_frame() -> pd.DataFrame:
    """Every partner (`partner_id, external_id, name, channel_kind`)."""
    rows = Partner.objects.values_list("id", "external_id", "name", "channel_kind")
    return _frame(rows, ["partner_id", "external_id", "name", "channel_kind"])


def _bulk_frame(queryset: Any, fields: list[str], columns: list[str]) -> pd.DataFrame:
    """Rows of a parameterless queryset as a frame; through `COPY ... TO STDOUT` and
    `read_csv` on PostgreSQL, which moves a million rows in a fraction of the time and memory
    Python tuples take."""
    if connection.vendor != "postgresql":
        return _frame(queryset.values_list(*fields), columns)
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    if params:
        raise ValueError("a bulk frame takes a queryset without parameters")
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer, names=columns, header=None)


def market_frames() -> dict[str, pd.DataFrame]:
    """The account-level frames `metrics.week_metrics` takes, loaded once for any as-of date.

    Keys: accounts, coverage, agreements, agreement_regions, agreement_verticals, feedback,
    partners. Region and vertical are codes; dates are datetime64 (NaT when missing).
    """
    regions, verticals = _codes(Region), _codes(Vertical)
    accounts = _bulk_frame(
        Account.objects.order_by(),
        ["id", "region_id", "vertical_id", "size_band", "entered_on", "archived_on"]
        + ["converted_on", "converted_via"],
        ["account_id", "region", "vertical", "size_band", "entered_on", "archived_on"]
        + ["converted_on", "converted_via"],
    )
    accounts["region"] = accounts["region"].map(regions)
    accounts["vertical"] = accounts["vertical"].map(verticals)
    # All empty reads back as a float column of NaN: make it text first.
    accounts["converted_via"] = accounts["converted_via"].astype(object).fillna("").astype(str)
    for column in ("entered_on", "archived_on", "converted_on"):
        accounts[column] = pd.to_datetime(accounts[column])
    coverage_columns = ["account_id", "kind", "partner_id", "start_date", "end_date"]
    coverage = _bulk_frame(
        CoverageAssignment.objects.order_by(), coverage_columns, coverage_columns
    )
    coverage["partner_id"] = coverage["partner_id"].astype("Int64")
    for column in ("start_date", "end_date"):
        coverage[column] = pd.to_datetime(coverage[column])
    agreement_regions = _frame(
        Agreement.regions.through.objects.values_list("agreement_id", "region_id"),
        ["agreement_id", "region"],
    )
    agreement_regions["region"] = agreement_regions["region"].map(regions)
    agreement_verticals = _frame(
        Agreement.verticals.through.objects.values_list("agreement_id", "vertical_id"),
        ["agreement_id", "vertical"],
    )
    agreement_verticals["vertical"] = agreement_verticals["vertical"].map(verticals)
    return {
        "accounts": accounts,
        "coverage": coverage,
        "agreements": agreements_frame(),
        "agreement_regions": agreement_regions,
        "agreement_verticals": agreement_verticals,
        "feedback": feedback_frame(),
        "partners": partners_frame(),
    }


SEGMENT_SNAPSHOT_FIELDS = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS]
PARTNER_SNAPSHOT_FIELDS = [
    "external_id",
    "name",
    "channel_kind",
    "covered_accounts",
    "converted_accounts",
    "agreements_in_force",
    "feedback_count",
    "satisfaction_mean",
    "nps",
]
EXPORT_DIMENSIONS = ("segment", "region", "vertical", "size_band", "channel", "partner", "total")


def snapshot_weeks() -> list[str]:
    """The weeks that have segment snapshot rows, oldest first."""
    weeks = SegmentSnapshot.objects.order_by("week").values_list("week", flat=True).distinct()
    return list(weeks)


def snapshot_segments(week: str) -> pd.DataFrame:
    """The stored segment counts of `week` (`metrics.SEGMENT_KEYS` + `COUNT_COLUMNS`), sorted by
    segment; empty when the week has no snapshot."""
    rows = SegmentSnapshot.objects.filter(week=week).order_by(*metrics.SEGMENT_KEYS)
    frame = _frame(rows.values_list(*SEGMENT_SNAPSHOT_FIELDS), SEGMENT_SNAPSHOT_FIELDS)
    return frame.astype({column: "int64" for column in metrics.COUNT_COLUMNS})


def snapshot_partners(week: str) -> pd.DataFrame:
    """The stored per-partner figures of `week`, sorted by partner external id."""
    rows = PartnerSnapshot.objects.filter(week=week).order_by("external_id")
    frame = _frame(rows.values_list(*PARTNER_SNAPSHOT_FIELDS), PARTNER_SNAPSHOT_FIELDS)
    return frame.astype({"satisfaction_mean": "float64", "nps": "float64"})


def snapshot_report(week: str, *, by: str) -> pd.DataFrame:
    """The week's figures for an export or a dashboard, read from snapshot tables only.

    `by` is one of `EXPORT_DIMENSIONS`: segment/region/vertical/size_band/total give the
    dimension columns, `COUNT_COLUMNS` then `RATIO_COLUMNS` (counts summed, then divided);
    channel gives `metrics.CHANNEL_COLUMNS`; partner gives `PARTNER_SNAPSHOT_FIELDS`.
    Raises ValueError on an unknown `by`.
    """
    if by == "partner":
        return snapshot_partners(week)
    if by == "channel":
        return metrics.channel_rollup(snapshot_segments(week))
    if by not in metrics.ROLLUP_DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; choose from {', '.join(EXPORT_DIMENSIONS)}")
    return metrics.rollup(snapshot_segments(week), by)


def snapshot_trend(weeks: Sequence[str], *, by: str, **segment: str) -> pd.DataFrame:
    """A series over `weeks` from the segment snapshots: one row per week (and per value of
    `by`'s dimension columns) with `COUNT_COLUMNS` summed in the database, then the ratios.

    `by` is one of `metrics.ROLLUP_DIMENSIONS`; `segment` may narrow the rows by region,
    vertical or size_band code. Weeks without a snapshot are absent. Raises ValueError on an
    unknown `by`.
    """
    from django.db.models import Sum

    if by not in metrics.ROLLUP_DIMENSIONS:
        choices = ", ".join(metrics.ROLLUP_DIMENSIONS)
        raise ValueError(f"unknown rollup {by!r}; choose from {choices}")
    keys = ["week", *metrics.ROLLUP_DIMENSIONS[by]]
    rows = SegmentSnapshot.objects.filter(week__in=list(weeks))
    narrowing = {key: value for key, value in segment.items() if key in metrics.SEGMENT_KEYS}
    rows = rows.filter(**{key: value for key, value in narrowing.items() if value})
    summed = (
        rows.order_by(*keys)
        .values(*keys)
        .annotate(**{f"sum_{column}": Sum(column) for column in metrics.COUNT_COLUMNS})
    )
    frame = _frame(
        (
            [row[key] for key in keys] + [row[f"sum_{c}"] for c in metrics.COUNT_COLUMNS]
            for row in summed
        ),
        [*keys, *metrics.COUNT_COLUMNS],
    )
    return metrics.with_ratios(frame.astype({c: "int64" for c in metrics.COUNT_COLUMNS}))


def snapshot_latest_week() -> str | None:
    """The newest week with segment snapshot rows, or None (one step down the unique index)."""
    return SegmentSnapshot.objects.order_by("-week").values_list("week", flat=True).first()


def snapshot_week_exists(week: str) -> bool:
    return SegmentSnapshot.objects.filter(week=week).exists()


def snapshot_segment_rows(week: str, **segment: str) -> list[dict[str, Any]]:
    """The stored rows of `week` as plain dicts (segment codes, counts and the ratios stored
    with them), sorted by segment; `segment` may narrow by region, vertical or size_band code.
    No pandas: this is the hot path of the API's segment list."""
    narrowing = {key: value for key, value in segment.items() if key in metrics.SEGMENT_KEYS}
    rows = SegmentSnapshot.objects.filter(week=week, **{k: v for k, v in narrowing.items() if v})
    fields = [*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS, *metrics.RATIO_COLUMNS]
    return list(rows.order_by(*metrics.SEGMENT_KEYS).values(*fields))
