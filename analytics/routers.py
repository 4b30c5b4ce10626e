"""Reads of the figures from a read replica (README, "Production: how it scales").

With `DATABASE_REPLICA_URL` set, the database alias `replica` is a streaming replica of the
primary. The figures that pages, the digest, the API and exports read (the snapshot and rollup
rows that only `analytics/reports.py` reads) are read there: they change once a run writes a
week, so a replica a moment behind shows what the primary showed a moment before, and the
primary is left to the writes and the live lists. Everything else, every write, every read made
inside a transaction on the primary, and every read of a metrics run (`primary_reads`, which
reads back the week it has just written) stays on the primary, so no code reads its own writes
from a replica that may lag.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

REPLICA = "replica"
# The read model: written by a metrics run, read only through analytics/reports.py.
READ_MODEL = frozenset(
    {
        "analytics.segmentsnapshot",
        "analytics.segmentrollup",
        "analytics.partnersnapshot",
        "analytics.partnerrollup",
        "analytics.feedbackrollup",
        "analytics.registrationrollup",
        "analytics.revenuesnapshot",
        "analytics.revenuerollup",
        "analytics.partnerrevenuesnapshot",
        "analytics.partnerrevenuerollup",
        "analytics.revenueforecast",
        "analytics.partnerprogramme",
        "analytics.repprogramme",
        "analytics.satisfactionfit",
        "analytics.satisfactiondriver",
    }
)

_on_primary: ContextVar[bool] = ContextVar("figures_read_on_primary", default=False)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Read the figures from the primary inside this block: for code that reads back what it
    has just written (a metrics run, its programme step, a rollup rebuild)."""
    token = _on_primary.set(True)
    try:
        yield
    finally:
        _on_primary.reset(token)


def figures_database() -> str:
    """The alias the figures are read from now: the replica when one is configured, unless
    inside `primary_reads` or a transaction on the primary."""
    if (
        REPLICA not in connections.settings
        or _on_primary.get()
        or connections[DEFAULT_DB_ALIAS].in_atomic_block
    ):
        return DEFAULT_DB_ALIAS
    return REPLICA


class ReadReplicaRouter:
    """Sends reads of the read model to `replica` when that alias is configured."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if model._meta.label_lower not in READ_MODEL:
            return None
        return figures_database()

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, first: Model, second: Model, **hints: Any) -> bool:
        # A replica holds the primary's rows: an object read there relates like one read here.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # A replica replays the primary's schema; nothing is migrated on it directly.
        return db != REPLICA
