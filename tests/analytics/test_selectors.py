"""The metrics reads' packing of integer fields (`analytics.selectors._Packing`)."""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import F

from analytics import metrics, selectors
from crm.models import Account, SizeBand
from tests.factories import AccountFactory


@pytest.mark.django_db
def test_it_unpacks_coded_fields_packed_above_the_first_32_bits() -> None:
    # A wide first field puts the coded fields' constants above 2**32: they must reach the
    # database as 64-bit integers (the sums then never wrap).
    bands = list(SizeBand.values)
    won = ["", *metrics.KINDS]
    for number, band in enumerate(bands * 3):
        via = won[number % len(won)]
        AccountFactory(
            size_band=band,
            converted_on=date(2026, 3, 1) if via else None,
            converted_via=via,
        )
    packing = selectors._Packing(
        [
            selectors._Field("account_id", F("id"), 40),
            selectors._Field("size_band", selectors._case("size_band", selectors.SIZE_BANDS), 3),
            selectors._Field(
                "won", selectors._case("converted_via", metrics.KINDS, first=1, default=0), 3
            ),
            selectors._Field("id_again", F("id"), 17),
        ]
    )
    assert len(packing.columns) == 1

    with selectors._tuned_reads():
        fields = selectors._integer_columns(Account.objects.all(), packing)

    read = {
        int(account_id): (selectors.SIZE_BANDS[band], won[via], int(again))
        for account_id, band, via, again in zip(
            fields["account_id"],
            fields["size_band"],
            fields["won"],
            fields["id_again"],
            strict=True,
        )
    }
    stored = {
        account.id: (account.size_band, account.converted_via, account.id)
        for account in Account.objects.all()
    }
    assert read == stored
