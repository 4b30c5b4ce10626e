from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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


def _agreement(model: type, partner: object, start: date, **fields: object) -> object:
    values = {
        "partner": partner,
        "agreement_type": "reseller",
        "status": "active",
        "signed_on": start,
        "start_date": start,
        "end_date": date(start.year, 12, 31),
        **fields,
    }
    return model.objects.create(external_id=f"AG-{model.objects.count() + 1}", **values)


@pytest.mark.django_db(transaction=True)
def test_it_chains_the_renewals_of_an_agreement_renewed_more_than_once() -> None:
    migrate(BEFORE)
    # The models as they were at BEFORE: later migrations add columns these rows must not need.
    state = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    Partner = state.get_model("partners", "Partner")
    Agreement = state.get_model("partners", "Agreement")
    partner = Partner.objects.create(
        external_id="P-1", name="Old Partner", channel_kind="partner", partner_type="reseller"
    )
    original = _agreement(Agreement, partner, date(2024, 1, 1))
    first = _agreement(Agreement, partner, date(2025, 1, 1), renews=original)
    second = _agreement(
        Agreement, partner, date(2026, 1, 1), status="draft", signed_on=None, renews=original
    )
    other = _agreement(Agreement, partner, date(2025, 1, 1))
    other_renewal = _agreement(Agreement, partner, date(2026, 1, 1), renews=other)

    migrate(AFTER)

    links = dict(
        MigrationExecutor(connection)
        .loader.project_state(AFTER)
        .apps.get_model("partners", "Agreement")
        .objects.values_list("pk", "renews")
    )
    assert links[first.pk] == original.pk
    assert links[second.pk] == first.pk  # it follows the first renewal in time
    assert links[other_renewal.pk] == other.pk
