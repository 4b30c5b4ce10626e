from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from partners.models import Agreement
from tests.factories import AgreementFactory, PartnerFactory

BEFORE = [("partners", "0002_import_job")]
AFTER = [("partners", "0003_agreement_dates_and_renewed_once")]


def migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


@pytest.fixture(autouse=True)
def _latest_schema_after() -> Iterator[None]:
    """Leave the database at the latest migrations, as the rest of the suite expects."""
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_it_chains_the_renewals_of_an_agreement_renewed_more_than_once() -> None:
    migrate(BEFORE)
    partner = PartnerFactory()
    original = AgreementFactory(partner=partner, start_date=date(2024, 1, 1))
    first = AgreementFactory(partner=partner, start_date=date(2025, 1, 1), renews=original)
    second = AgreementFactory(
        partner=partner, status="draft", signed_on=None, start_date=date(2026, 1, 1)
    )
    Agreement.objects.filter(pk=second.pk).update(renews=original)
    other = AgreementFactory(partner=partner, start_date=date(2025, 1, 1))
    other_renewal = AgreementFactory(partner=partner, start_date=date(2026, 1, 1), renews=other)

    migrate(AFTER)

    links = dict(Agreement.objects.values_list("pk", "renews"))
    assert links[first.pk] == original.pk
    assert links[second.pk] == first.pk  # it follows the first renewal in time
    assert links[other_renewal.pk] == other.pk
