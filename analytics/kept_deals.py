"""The deals a process keeps between runs, brought up to date from the database's log of
changed deals (`channels` migration 0009) instead of read whole each time.

A week's revenue step needs up to two million deals; from one night to the next a few hundred
change. `kept_deal_fields` answers every deal's fields as the caller's `read` reads them, in
the snapshot of the caller's transaction:

- the first time in a process (or for another database), by reading every deal;
- afterwards from the deals kept from the last call: those whose change the kept snapshot
  did not see are read again (the deleted ones are dropped), the others are kept as they are.

Exact by construction: a transaction that changes a deal logs it in the same transaction, so
the log row is visible in a snapshot exactly when the change is. What the log cannot vouch
for makes the call read every deal again: log rows pruned since (`opportunity_changes_prune`),
a `TRUNCATE`, a statement that changed more than 10,000 deals, many changed deals, another
database under the same settings, or a `key` other than the kept one (what else the read's
values depend on, e.g. the rate table's currencies).

PostgreSQL only, inside a REPEATABLE READ transaction the caller opened (one snapshot for the
log and the deals), never inside a transaction that may yet roll back what it read: the
caller checks both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

logger = logging.getLogger(__name__)

# Changed deals read again one by one up to this many; more are read with all the others.
MOST_CHANGES = 50_000

# Reads the fields of the deals of these ids (every deal with None), one array per field, with
# the deals' ids in `ID_FIELD`.
DealRead = Callable[[Sequence[int] | None], dict[str, np.ndarray]]
ID_FIELD = "opportunity_id"


@dataclass(frozen=True)
class _Kept:
    key: tuple[Hashable, ...]
    snapshot: str
    xmin: int
    fields: dict[str, np.ndarray]


_kept: dict[str, _Kept] = {}
_kept_lock = threading.Lock()


def kept_deal_fields(read: DealRead, *, key: tuple[Hashable, ...] = ()) -> dict[str, np.ndarray]:
    """Every deal's fields as `read(None)` would read them now, in the current transaction's
    snapshot (see the module's text), each in the smallest integer type that holds it; the
    deals in no particular order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_current_snapshot()::text,"
            " pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
            " (SELECT xid FROM channels_opportunity_change_horizon),"
            " (SELECT oid FROM pg_database WHERE datname = current_database()),"
            " pg_postmaster_start_time()"
        )
        snapshot, xmin, horizon, database, started = cursor.fetchone()
    settings = connection.settings_dict
    full_key = (settings["HOST"], settings["PORT"], settings["NAME"], database, started, *key)
    with _kept_lock:
        kept = _kept.get(connection.alias)
    fields = None
    if kept is not None and kept.key == full_key and horizon is not None and horizon < kept.xmin:
        changed = _changed_since(kept)
        if changed is not None:
            fields = _patched(kept.fields, changed, read)
            logger.info(
                "kept deals: %d changed since read again, %d kept",
                len(changed),
                len(fields[ID_FIELD]),
            )
    if fields is None:
        fields = {name: _compact(values) for name, values in read(None).items()}
        logger.info(
            "kept deals: all %d read (%s)",
            len(fields[ID_FIELD]),
            "none kept" if kept is None else "the log cannot vouch for those kept",
        )
    with _kept_lock:
        _kept[connection.alias] = _Kept(full_key, snapshot, xmin, fields)
    return fields


def forget_kept_deals() -> None:
    """Drop every kept deal (the next call reads them all)."""
    with _kept_lock:
        _kept.clear()


def _changed_since(kept: _Kept) -> list[int] | None:
    """The ids of the deals changed by transactions `kept`'s snapshot did not see and this
    one does; None when every deal must be read again."""
    with connection.cursor() as cursor:
        # A transaction older than the snapshot's xmin was seen by it (or rolled back).
        cursor.execute(
            "SELECT DISTINCT opportunity_id FROM channels_opportunity_change"
            " WHERE xid >= %s AND NOT pg_visible_in_snapshot(xid::text::xid8, %s::pg_snapshot)",
            [kept.xmin, kept.snapshot],
        )
        changed = [row[0] for row in cursor.fetchall()]
    if None in changed or len(changed) > MOST_CHANGES:
        return None
    return changed


def _patched(
    fields: dict[str, np.ndarray], changed: list[int], read: DealRead
) -> dict[str, np.ndarray]:
    """`fields` with the `changed` deals as `read` reads them now (gone when deleted)."""
    if not changed:
        return fields
    ids = np.asarray(changed, dtype="int64")
    stay = ~np.isin(fields[ID_FIELD], ids)
    fresh = read(changed)
    return {
        name: _compact(np.concatenate([values[stay], fresh[name]]))
        for name, values in fields.items()
    }


def _compact(values: np.ndarray) -> np.ndarray:
    """`values` (integers) in the smallest integer type that holds them."""
    if not len(values):
        return values.astype("int8")
    low, high = int(values.min()), int(values.max())
    for kind in ("int8", "int16", "int32"):
        limits = np.iinfo(kind)
        if limits.min <= low and high <= limits.max:
            return values.astype(kind)
    return values.astype("int64")
