"""The stored coverage kinds stay exact when coverage and agreements change at the same moment
(PostgreSQL: each change runs in its own thread and connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.utils import timezone

from channels.models import CoverageAssignment
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.models import Account, ChannelKind
from crm.rules import COVERAGE_KINDS_KNOWN
from partners.coverage_kinds import coverage_kinds_refresh_stale
from partners.models import Agreement, AgreementStatus
from partners.selectors import account_coverage_q
from partners.services import agreement_terminate
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    PartnerFactory,
    RegionFactory,
    SalesRepFactory,
    UserFactory,
    VerticalFactory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 20


def _together(*calls: Callable[[], Any]) -> None:
    """Run the calls at the same moment, each in its own thread and database connection."""
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            start.wait()
            call()
        except BaseException as error:  # noqa: BLE001 - re-raised below in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _assert_exact(accounts: list[int]) -> None:
    today = timezone.localdate()
    rows = Account.objects.filter(pk__in=accounts)
    known = rows.filter(COVERAGE_KINDS_KNOWN.q(today))
    assert known.count() == len(accounts), "every account changed is stored again"
    for coverage in ("none", "any", *ChannelKind.values):
        stored = set(
            rows.filter(account_coverage_q(coverage=coverage, day=today)).values_list(
                "pk", flat=True
            )
        )
        tested = set(
            rows.filter(account_coverage_q(coverage=coverage, day=today, stored=False)).values_list(
                "pk", flat=True
            )
        )
        assert stored == tested, coverage


def _race_round(round_: int, *, region: Any, vertical: Any, manager: User, rep: Any) -> None:
    today = timezone.localdate()
    partner = PartnerFactory(channel_kind=ChannelKind.PARTNER)
    agreement = AgreementFactory(
        partner=partner,
        start_date=today - timedelta(days=30),
        end_date=today + timedelta(days=300),
        regions=[region],
    )
    accounts = [AccountFactory(region=region, vertical=vertical).pk for _ in range(6)]
    coverage_assign(
        accounts=Account.objects.filter(pk__in=accounts[:3]),
        owner=CoverageOwner(kind=ChannelKind.PARTNER, partner=partner),
        start_date=today - timedelta(days=10),
    )
    coverage_kinds_refresh_stale()
    chosen = Account.objects.filter(pk__in=accounts)

    def assign_partner() -> None:
        coverage_assign(
            accounts=chosen,
            owner=CoverageOwner(kind=ChannelKind.PARTNER, partner=partner),
            start_date=today,
        )

    def assign_rep() -> None:
        coverage_assign(
            accounts=chosen,
            owner=CoverageOwner(kind=ChannelKind.DIRECT, rep=rep),
            start_date=today - timedelta(days=round_ + 1),
        )

    def end_partner() -> None:
        end = today - timedelta(days=1) if round_ % 2 else today
        coverage_end(
            assignments=CoverageAssignment.objects.filter(
                partner=partner, account__in=accounts, start_date__lte=end
            ),
            end_date=end,
        )

    def terminate() -> None:
        agreement_terminate(
            agreement=Agreement.objects.get(pk=agreement.pk),
            terminated_on=today - timedelta(days=1),
            reason="race",
            by=manager,
        )

    calls = [assign_partner, assign_rep, end_partner, terminate]
    # Each round a different pair or trio fired together.
    _together(*[calls[i % 4] for i in range(round_ % 4, round_ % 4 + 2 + round_ % 2)])
    _assert_exact(accounts)


def test_concurrent_coverage_and_agreement_changes_leave_the_stored_kinds_exact() -> None:
    assert connection.vendor == "postgresql", "these races only show on PostgreSQL"
    region, vertical = RegionFactory(), VerticalFactory()
    manager: User = UserFactory()
    rep = SalesRepFactory()
    for round_ in range(ROUNDS):
        _race_round(round_, region=region, vertical=vertical, manager=manager, rep=rep)
    assert Agreement.objects.filter(status=AgreementStatus.TERMINATED).count() >= ROUNDS // 4
