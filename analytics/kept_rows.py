"""The rows of a logged table a process keeps between runs, brought up to date from the
database's log of changed rows (`crm.change_logs`) instead of read whole each time.

A week's metrics need every account, coverage assignment and deal: millions of rows, of which
a few hundred change from one night to the next. `kept_fields` answers every row's fields as
the caller's `read` reads them, in the snapshot of the caller's transaction:

- the first time in a process (or for another database), by reading every row;
- afterwards from the rows kept from the last call: those whose change the kept snapshot did
  not see are read again (the deleted ones are dropped), the others are kept as they are.

Exact by construction: a transaction that changes a row logs it in the same transaction, so
the log row is visible in a snapshot exactly when the change is. What the log cannot vouch
for makes the call read every row again: log rows pruned since (`crm.change_logs.prune`), a
`TRUNCATE`, a statement that changed more than `crm.change_logs.MOST_ROWS` rows, many changed
rows, another database under the same settings, or a `key` other than the kept one (what else
the read's values depend on, e.g. the rate table's currencies).

PostgreSQL only, inside a REPEATABLE READ transaction the caller opened (one snapshot for the
log and the rows), never inside a transaction that may yet roll back what it read: the caller
checks both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from psycopg import sql

from crm.change_logs import ChangeLog
from crm.sql import as_text

logger = logging.getLogger(__name__)

# Changed rows read again by their ids up to this many; more are read with all the others.
MOST_CHANGES = 50_000

# Reads the fields of the rows of these ids (every row with None), one array per field, with
# the rows' ids in the field named as the log names them (`ChangeLog.id_column`).
RowRead = Callable[[Sequence[int] | None], dict[str, np.ndarray]]


@dataclass(frozen=True)
class _Kept:
    key: tuple[Hashable, ...]
    snapshot: str
    xmin: int
    fields: dict[str, np.ndarray]


_kept: dict[tuple[str, str], _Kept] = {}
_kept_lock = threading.Lock()


def kept_fields(
    log: ChangeLog, read: RowRead, *, key: tuple[Hashable, ...] = ()
) -> dict[str, np.ndarray]:
    """Every row's fields of `log`'s table as `read(None)` would read them now, in the current
    transaction's snapshot (see the module's text), each in the smallest integer type that
    holds it; the rows in no particular order."""
    with connection.cursor() as cursor:
        cursor.execute(
            as_text(
                sql.SQL(
                    "SELECT pg_current_snapshot()::text,"
                    " pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
                    " (SELECT xid FROM {horizon}),"
                    " (SELECT oid FROM pg_database WHERE datname = current_database()),"
                    " pg_postmaster_start_time()"
                ).format(horizon=sql.Identifier(log.horizon))
            )
        )
        snapshot, xmin, horizon, database, started = cursor.fetchone()
    settings = connection.settings_dict
    full_key = (settings["HOST"], settings["PORT"], settings["NAME"], database, started, *key)
    place = (connection.alias, log.table)
    with _kept_lock:
        kept = _kept.get(place)
    fields = None
    if kept is not None and kept.key == full_key and horizon is not None and horizon < kept.xmin:
        changed = _changed_since(log, kept)
        if changed is not None:
            fields = _patched(log, kept.fields, changed, read)
            logger.info(
                "kept %s: %d changed since read again, %d kept",
                log.table,
                len(changed),
                len(fields[log.id_column]),
            )
    if fields is None:
        fields = {name: compact(values) for name, values in read(None).items()}
        logger.info(
            "kept %s: all %d read (%s)",
            log.table,
            len(fields[log.id_column]),
            "none kept" if kept is None else "the log cannot vouch for those kept",
        )
    with _kept_lock:
        _kept[place] = _Kept(full_key, snapshot, xmin, fields)
    return fields


def forget_kept_rows() -> None:
    """Drop every kept row (the next call of each table reads them all)."""
    with _kept_lock:
        _kept.clear()


def _changed_since(log: ChangeLog, kept: _Kept) -> list[int] | None:
    """The ids of the rows changed by transactions `kept`'s snapshot did not see and this
    one does; None when every row must be read again."""
    with connection.cursor() as cursor:
        # A transaction older than the snapshot's xmin was seen by it (or rolled back).
        cursor.execute(
            as_text(
                sql.SQL(
                    "SELECT DISTINCT {id} FROM {log} WHERE xid >= %s"
                    " AND NOT pg_visible_in_snapshot(xid::text::xid8, %s::pg_snapshot)"
                ).format(id=sql.Identifier(log.id_column), log=sql.Identifier(log.log))
            ),
            [kept.xmin, kept.snapshot],
        )
        changed = [row[0] for row in cursor.fetchall()]
    if None in changed or len(changed) > MOST_CHANGES:
        return None
    return changed


def _patched(
    log: ChangeLog, fields: dict[str, np.ndarray], changed: list[int], read: RowRead
) -> dict[str, np.ndarray]:
    """`fields` with the `changed` rows as `read` reads them now (gone when deleted)."""
    if not changed:
        return fields
    ids = np.asarray(changed, dtype="int64")
    stay = ~np.isin(fields[log.id_column], ids)
    fresh = read(changed)
    return {
        name: compact(np.concatenate([values[stay], fresh[name]]))
        for name, values in fields.items()
    }


def compact(values: np.ndarray) -> np.ndarray:
    """`values` (integers) in the smallest integer type that holds them."""
    if not len(values):
        return values.astype("int8")
    low, high = int(values.min()), int(values.max())
    for kind in ("int8", "int16", "int32"):
        limits = np.iinfo(kind)
        if limits.min <= low and high <= limits.max:
            return values.astype(kind)
    return values.astype("int64")
