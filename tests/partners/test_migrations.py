from __future__ import annotations

from datetime import date

import pytest

from tests.schema_trip import schema_trip

BEFORE = [("partners", "0002_import_job")]
AFTER = [("partners", "0003_agreement_dates_and_renewed_once")]


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
    with schema_trip() as trip:
        trip.migrate(BEFORE)
        # The models as they were at BEFORE: later migrations add columns these rows must not
        # need.
        Partner = trip.apps.get_model("partners", "Partner")
        Agreement = trip.apps.get_model("partners", "Agreement")
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

        trip.migrate(AFTER)

        links = dict(
            trip.apps.get_model("partners", "Agreement").objects.values_list("pk", "renews")
        )
        assert links[first.pk] == original.pk
        assert links[second.pk] == first.pk  # it follows the first renewal in time
        assert links[other_renewal.pk] == other.pk
