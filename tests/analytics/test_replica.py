"""With a read replica configured (`DATABASE_REPLICA_URL`), the figures that the dashboard and
the API show are read from it, and everything else from the primary (`analytics.routers`):
shown with a second PostgreSQL database that holds other figures than the primary."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.db import connections, transaction
from django.db.models import F
from django.test import Client
from psycopg import sql

from analytics import reports, services
from analytics.models import MetricsRun, SegmentRollup, SegmentSnapshot
from analytics.routers import REPLICA, primary_reads
from tests.analytics.market import random_market
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WEEK = "2026-W10"
MORE = 1000  # accounts the primary's rows gain after the replica was copied


def _admin(statement: sql.Composable) -> None:
    params = connections["default"].get_connection_params()
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(statement)


@pytest.fixture
def copy_to_replica() -> Iterator[Callable[[], None]]:
    """Copies the test database, as it is, into a second database configured as `replica`."""
    primary = connections["default"].settings_dict["NAME"]
    name = f"{primary}_replica"

    def copy() -> None:
        # A template database takes no other connection: close this thread's, and end those
        # that earlier tests' threads left idle on the (private) test database.
        connections.close_all()
        _admin(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = {} AND pid <> pg_backend_pid()"
            ).format(sql.Literal(primary))
        )
        _admin(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        _admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(primary)
            )
        )
        connections.settings[REPLICA] = {**connections["default"].settings_dict, "NAME": name}
        # Connected here: the test case allows only the aliases it knew when it started.
        connections[REPLICA].connect()

    yield copy
    if REPLICA in connections.settings:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]
    _admin(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _accounts() -> int:
    return sum(row.accounts for row in reports.segments(WEEK))


def test_the_figures_come_from_the_replica_and_writes_and_transactions_use_the_primary(
    copy_to_replica: Callable[[], None],
) -> None:
    random_market(61, accounts=60)
    services.metrics_compute_week(week=WEEK, final=True)
    on_both = _accounts()
    segments = SegmentSnapshot.objects.filter(week=WEEK).count()
    copy_to_replica()

    # Written on the primary only: the replica keeps the figures it was copied with.
    SegmentSnapshot.objects.filter(week=WEEK).update(accounts=F("accounts") + MORE)
    SegmentRollup.objects.filter(week=WEEK).update(accounts=F("accounts") + MORE)
    assert SegmentSnapshot.objects.using("default").filter(accounts__gte=MORE).count() == segments

    assert _accounts() == on_both  # reports read the replica
    with transaction.atomic():
        assert _accounts() == on_both + MORE * segments  # a transaction reads the primary
    with primary_reads():
        assert _accounts() == on_both + MORE * segments  # so does code reading its own writes
    # Other tables are read on the primary.
    MetricsRun.objects.filter(week=WEEK).update(error="on the primary")
    assert MetricsRun.objects.get(week=WEEK).error == "on the primary"

    executive = UserFactory(role="executive")
    client = Client()
    client.force_login(executive)
    response = client.get("/dashboard/", {"week": WEEK})
    assert response.status_code == 200
    headlines = {h.key: h for h in response.context["report"]["headlines"]}
    assert headlines["accounts"].value == on_both

    # A run writes the primary and reads its own writes there (its programme step reads the
    # partner rows just written); the replica is untouched.
    services.metrics_compute_week(week=WEEK, final=True)
    with transaction.atomic():
        assert _accounts() == on_both
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_metricsrun")
        assert cursor.fetchone() == (1,)
