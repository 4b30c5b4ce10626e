from __future__ import annotations

from datetime import date

import pytest

from channels.models import CoverageAssignment
from crm.models import ChannelKind
from tests.factories import AccountFactory, PartnerFactory, SalesRepFactory
from tests.schema_trip import schema_trip

BEFORE = [("channels", "0002_coverage_partner_account_index")]
AFTER = [("channels", "0003_coverage_owner_no_overlap")]


@pytest.mark.django_db(transaction=True)
def test_it_merges_overlapping_coverage_of_one_owner_into_the_same_days() -> None:
    # Made with today's models, before the schema goes back (later migrations of other apps,
    # such as the programme's tiers, are unapplied with it).
    account, other = AccountFactory(), AccountFactory()
    rep, partner = SalesRepFactory(), PartnerFactory()
    with schema_trip() as trip:
        trip.migrate(BEFORE)

        def add(
            owner: dict[str, object], start: date, end: date | None, on: object = account
        ) -> None:
            CoverageAssignment.objects.create(account=on, start_date=start, end_date=end, **owner)

        direct = {"kind": ChannelKind.DIRECT, "rep": rep}
        reseller = {"kind": ChannelKind.PARTNER, "partner": partner}
        add(direct, date(2025, 1, 1), date(2025, 3, 31))
        add(direct, date(2025, 3, 1), date(2025, 6, 30))  # overlaps the first: merged into it
        add(direct, date(2025, 7, 1), None)  # the day after: a coverage of its own
        add(reseller, date(2025, 1, 1), None)
        add(reseller, date(2025, 2, 1), date(2025, 2, 28))  # inside the open one: merged
        add(reseller, date(2025, 1, 1), None, on=other)  # another account: untouched

        trip.migrate(AFTER)

        rows = sorted(
            CoverageAssignment.objects.values_list("account_id", "kind", "start_date", "end_date")
        )
        assert rows == sorted(
            [
                (account.pk, "direct", date(2025, 1, 1), date(2025, 6, 30)),
                (account.pk, "direct", date(2025, 7, 1), None),
                (account.pk, "partner", date(2025, 1, 1), None),
                (other.pk, "partner", date(2025, 1, 1), None),
            ]
        )
