"""Reads for the metrics: the market as frames, one date's account states, and the snapshots.

Two ways to feed `analytics.metrics`:

- `market_frames()` loads the account-level columns once; the backfill evaluates many as-of
  dates in memory from them.
- `week_aggregates_on(d)` lets the database answer the date tests of one as-of date row by row
  and hands back only integers (one per account, one per active assignment), which
  `metrics.AccountStates` joins and counts. This is the fast path for a single week (see
  DESIGN.md, "Measured on this machine").

Dashboards, exports and the API read only the snapshot tables, through the `snapshot_*`
functions at the end.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics import metrics
from analytics.models import PartnerSnapshot, SegmentSnapshot
from channels.models import CoverageAssignment
from crm.models import Account, Region, SizeBand, Vertical
from partners.models import Agreement, Feedback, Partner


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
    """SQL for the (`partner_id, region_id, vertical_id`) cells granted by agreements in force
    on %(d)s.

    An agreement with no regions grants every region, and likewise for verticals; expanding to
    cells makes "the same agreement satisfies both" a plain equality test.
    """
    return """
        SELECT DISTINCT granted_regions.partner_id, granted_regions.region_id,
                        granted_verticals.vertical_id
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
    """.format(in_force=IN_FORCE_SQL, **_tables())


def _region_filter(region_ids: Sequence[int] | None, params: dict[str, Any]) -> str:
    if region_ids is None:
        return ""
    names = []
    for position, region_id in enumerate(region_ids):
        params[f"r{position}"] = region_id
        names.append(f"%(r{position})s")
    return f"AND a.region_id IN ({', '.join(names) or 'NULL'})"


SIZE_BANDS: tuple[str, ...] = tuple(SizeBand.values)


def _case(column: str, values: Sequence[str], first: int = 0) -> str:
    whens = " ".join(f"WHEN '{value}' THEN {first + index}" for index, value in enumerate(values))
    return f"CASE {column} {whens} END"


# An account's state on %(d)s: 0 (out of market), 1 (in market, not converted by the date) or
# 2 + the index of the kind that won it.
_IN_MARKET = "a.entered_on <= %(d)s AND (a.archived_on IS NULL OR a.archived_on > %(d)s)"
_STATE_SQL = (
    f"CASE WHEN {_IN_MARKET} THEN CASE WHEN a.converted_on <= %(d)s"
    f" THEN {_case('a.converted_via', metrics.KINDS, first=2)} ELSE 1 END ELSE 0 END"
)
_ACTIVE_ON = "c.start_date <= %(d)s AND (c.end_date IS NULL OR %(d)s <= c.end_date)"


@dataclass(frozen=True)
class _Field:
    name: str
    sql: str
    bits: int


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

    def sql(self) -> list[str]:
        return [
            " + ".join(f"CAST({field.sql} AS BIGINT) * {1 << shift}" for field, shift in column)
            for column in self.columns
        ]

    def unpack(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        fields = {}
        for column, values in zip(self.columns, arrays, strict=True):
            for field, shift in column:
                fields[field.name] = (values >> shift) & ((1 << field.bits) - 1)
        return fields


def _highest_ids() -> dict[str, int]:
    """The highest id of each table whose ids are packed; rows above them are left out of the
    read, so a row added meanwhile can never overflow its field."""
    models: dict[str, type[Account | Region | Vertical | Partner]] = {
        "account": Account,
        "region": Region,
        "vertical": Vertical,
        "partner": Partner,
    }
    return {
        name: model.objects.order_by("-id").values_list("id", flat=True).first() or 0
        for name, model in models.items()
    }


def _bits(value: int) -> int:
    return max(1, value.bit_length())


def _read_params(d: date, highest: dict[str, int]) -> dict[str, Any]:
    """`d` and the highest ids (`highest_account`, ...) as query parameters."""
    return {"d": d, **{f"highest_{name}": value for name, value in highest.items()}}


@contextmanager
def _tuned_reads() -> Any:
    # On two cores a parallel plan is slower and hungrier than two serial readers, and
    # compiling these plans costs more than it saves.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("SET LOCAL jit = off")
        yield


def _int8_array(data: bytes | memoryview | None) -> np.ndarray:
    """A one-dimensional bigint array without nulls, as PostgreSQL's `array_send` writes it:
    a header (dimensions, flags, element type, then length and lower bound), then a 4-byte
    length and an 8-byte big-endian value per element."""
    if data is None:
        return np.zeros(0, dtype="int64")
    dimensions, _, _ = struct.unpack_from(">iii", data)
    if dimensions == 0:
        return np.zeros(0, dtype="int64")
    (length,) = struct.unpack_from(">i", data, 12)
    elements = np.frombuffer(
        data, dtype=[("size", ">i4"), ("value", ">i8")], count=length, offset=20
    )
    if (elements["size"] != 8).any():
        raise ValueError("expected a bigint array without nulls")
    return elements["value"].astype("int64")


def _integer_columns(
    expressions: Sequence[str], source: str, params: dict[str, Any]
) -> list[np.ndarray]:
    """The integer `expressions` over the rows of `source` (a FROM ... WHERE clause), as one
    array each, in the same row order.

    On PostgreSQL each expression is gathered into one array (`array_agg`) received as bytes:
    one message on the wire instead of one per row, and no Python object per value;
    elsewhere the rows are fetched as they are. Call inside `_tuned_reads()`.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(expressions)} {source}", params)
            values = np.fromiter((value for row in cursor for value in row), dtype="int64")
        return [values[column :: len(expressions)] for column in range(len(expressions))]
    columns = ", ".join(f"array_send(array_agg({expression}))" for expression in expressions)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"SELECT {columns} {source}", params, binary=True)
        return [_int8_array(value) for value in cursor.fetchone() or ()]


def _account_states(
    d: date, region_ids: Sequence[int] | None, highest: dict[str, int]
) -> pd.DataFrame:
    params = _read_params(d, highest)
    source = (
        "FROM {account} a WHERE a.id <= %(highest_account)s"
        " AND a.region_id <= %(highest_region)s AND a.vertical_id <= %(highest_vertical)s"
        " {region_filter}"
    ).format(region_filter=_region_filter(region_ids, params), **_tables())
    packing = _Packing(
        [
            _Field("account_id", "a.id", _bits(highest["account"])),
            _Field("region", "a.region_id", _bits(highest["region"])),
            _Field("vertical", "a.vertical_id", _bits(highest["vertical"])),
            _Field("size_band", _case("a.size_band", SIZE_BANDS), 3),
            _Field("state", _STATE_SQL, 3),
        ]
    )
    fields = packing.unpack(_integer_columns(packing.sql(), source, params))
    state = fields.pop("state").astype("int8")
    return pd.DataFrame(
        {
            "account_id": fields["account_id"],
            "region": fields["region"].astype("int32"),
            "vertical": fields["vertical"].astype("int32"),
            "size_band": pd.Categorical.from_codes(  # type: ignore[call-overload]
                fields["size_band"].astype("int8"), categories=list(SIZE_BANDS)
            ),
            "in_market": state > 0,
            "converted_via": pd.Categorical.from_codes(  # type: ignore[call-overload]
                np.maximum(state - 1, 0), categories=["", *metrics.KINDS]
            ),
        }
    )


def _active_assignments(
    d: date, region_ids: Sequence[int] | None, highest: dict[str, int]
) -> pd.DataFrame:
    params = _read_params(d, highest)
    narrowing = ""
    if region_ids is not None:
        narrowing = "AND c.account_id IN (SELECT a.id FROM {account} a WHERE 1 = 1 {filter})"
        narrowing = narrowing.format(filter=_region_filter(region_ids, params), **_tables())
    source = (
        f"FROM {_tables()['coverage']} c WHERE {_ACTIVE_ON}"
        " AND c.account_id <= %(highest_account)s"
        f" AND COALESCE(c.partner_id, 0) <= %(highest_partner)s {narrowing}"
    )
    packing = _Packing(
        [
            _Field("account_id", "c.account_id", _bits(highest["account"])),
            _Field("partner_id", "COALESCE(c.partner_id, 0)", _bits(highest["partner"])),
            _Field("kind", _case("c.kind", metrics.KINDS), 3),
        ]
    )
    fields = packing.unpack(_integer_columns(packing.sql(), source, params))
    return pd.DataFrame(
        {
            "account_id": fields["account_id"],
            "kind": pd.Categorical.from_codes(  # type: ignore[call-overload]
                fields["kind"].astype("int8"), categories=list(metrics.KINDS)
            ),
            "partner_id": fields["partner_id"],
        }
    )


def _granted_cells(d: date) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(scope_sql(), {"d": d})
        rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=["partner_id", "region", "vertical"])


WeekAggregates = tuple[pd.DataFrame, pd.DataFrame]
AssignmentRows = tuple[pd.DataFrame, pd.DataFrame]


def _assignment_rows(
    d: date, region_ids: Sequence[int] | None, highest: dict[str, int]
) -> AssignmentRows:
    """The active assignments and the granted cells on `d`."""
    with _tuned_reads():
        return _active_assignments(d, region_ids, highest), _granted_cells(d)


def _assignment_rows_in_snapshot(
    d: date, region_ids: Sequence[int] | None, highest: dict[str, int], snapshot: str
) -> AssignmentRows:
    """`_assignment_rows` on this thread's own connection, reading the exported `snapshot`."""
    if not re.fullmatch(r"[0-9A-F]+(-[0-9A-F]+)+", snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return _assignment_rows(d, region_ids, highest)
    finally:
        connection.close()


@contextmanager
def _one_snapshot() -> Any:
    """A transaction whose reads all see one snapshot (REPEATABLE READ on PostgreSQL when no
    transaction is open yet; an open one is joined as it is)."""
    fresh = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if fresh:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield fresh


def _states_and_rows(
    d: date, region_ids: Sequence[int] | None, parallel: bool
) -> tuple[metrics.AccountStates, AssignmentRows]:
    with _one_snapshot() as fresh:
        highest = _highest_ids()
        if not (parallel and fresh):
            with _tuned_reads():
                states = metrics.AccountStates(_account_states(d, region_ids, highest))
            return states, _assignment_rows(d, region_ids, highest)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_assignment_rows_in_snapshot, d, region_ids, highest, snapshot)
            with _tuned_reads():
                accounts = _account_states(d, region_ids, highest)
            # Indexing the accounts overlaps the rest of the assignments' read.
            states = metrics.AccountStates(accounts)
            return states, pending.result()


def _codes(model: type[Region] | type[Vertical]) -> dict[int, str]:
    return dict(model.objects.values_list("id", "code"))


def week_aggregates_on(
    d: date, *, region_ids: Sequence[int] | None = None, parallel: bool = True
) -> WeekAggregates:
    """The mask groups (`metrics.MASK_GROUP_COLUMNS`) and the partner coverage counts on `d`;
    only accounts in `region_ids` when given.

    The database evaluates the date tests and sends integers only: one per account (its
    segment and state) and one per active assignment; `metrics.AccountStates` joins and
    counts them. With `parallel` on PostgreSQL, outside a transaction, the assignments are
    read on a second connection while this one reads the accounts, both from one exported
    snapshot: the same rows one reader would get, sooner on two cores.
    """
    states, (active, granted) = _states_and_rows(d, region_ids, parallel)
    groups, coverage = states.aggregates(active, granted)
    groups["region"] = groups["region"].map(_codes(Region))
    groups["vertical"] = groups["vertical"].map(_codes(Vertical))
    return groups[metrics.MASK_GROUP_COLUMNS], coverage


def _frame(rows: Iterable[Sequence[Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def agreements_frame() -> pd.DataFrame:
    """Every agreement's dates (`agreement_id, partner_id, signed_on, start_date, end_date,
    terminated_on`)."""
    columns = ["agreement_id", "partner_id", "signed_on", "start_date", "end_date", "terminated_on"]
    fields = ["id", "partner_id", "signed_on", "start_date", "end_date", "terminated_on"]
    return _frame(Agreement.objects.values_list(*fields), columns)


FEEDBACK_FRAME_COLUMNS = [
    "partner_id",
    "channel_kind",
    "created_on",
    "category",
    "satisfaction",
    "nps",
]


def feedback_frame(since: date | None = None) -> pd.DataFrame:
    """Every feedback entry's partner and its channel kind, created date (in the project's time
    zone), category, satisfaction and NPS; only those created on or after `since` when
    given."""
    entries = Feedback.objects.all()
    if since is not None:
        entries = entries.filter(
            created_at__gte=timezone.make_aware(datetime.combine(since, time.min))
        )
    rows = entries.annotate(
        channel_kind=F("partner__channel_kind"), created_on=TruncDate("created_at")
    ).values_list(*FEEDBACK_FRAME_COLUMNS)
    frame = _frame(rows, FEEDBACK_FRAME_COLUMNS)
    frame["nps"] = frame["nps"].astype("float64")
    return frame


def partners_frame() -> pd.DataFrame:
    """Every partner (`partner_id, external_id, name, channel_kind`)."""
    rows = Partner.objects.values_list("id", "external_id", "name", "channel_kind")
    return _frame(rows, ["partner_id", "external_id", "name", "channel_kind"])


def _bulk_frame(queryset: QuerySet[Any], fields: list[str], columns: list[str]) -> pd.DataFrame:
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
    *metrics.NPS_COUNT_COLUMNS,
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
