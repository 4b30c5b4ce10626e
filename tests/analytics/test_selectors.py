"""The metrics reads: the packing of integer fields (`analytics.selectors._Packing`) and a
week's rows (`analytics.selectors.week_read`)."""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import F

from analytics import metrics, programme, selectors
from channels.models import CoverageAssignment
from channels.rules import COVERAGE_RUNNING
from crm.models import Account, SizeBand
from crm.rules import CONVERTED, IN_MARKET
from tests.analytics.market import random_market
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


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [61, 62])
def test_a_week_read_gives_each_row_what_the_rules_say_of_it(seed: int) -> None:
    # The read takes integer codes (stored, or told by the owner columns) instead of the text
    # and evaluates the date rules in the database: each row as the rules state it, object by
    # object.
    days = random_market(seed, accounts=100)
    accounts = list(Account.objects.all())
    assignments = list(CoverageAssignment.objects.all())
    for day in days:
        window, year = programme.window_start(day), programme.year_start(day)
        with selectors.week_read(day, parallel=False) as read:
            rows = read.accounts
            running, _ = read.rest()
        got = {
            int(account_id): (band, int(state), bool(in_window), bool(in_year))
            for account_id, band, state, in_window, in_year in zip(
                rows.account_id,
                rows.size_band,
                rows.state,
                rows.converted_in_window,
                rows.converted_in_year,
                strict=True,
            )
        }
        expected = {}
        for account in accounts:
            state = 0
            if IN_MARKET.holds(account, day):
                converted = CONVERTED.holds(account, day)
                state = 2 + metrics.KINDS.index(account.converted_via) if converted else 1
            converted_on = account.converted_on
            expected[account.id] = (
                account.size_band,
                state,
                converted_on is not None and window <= converted_on <= day,
                converted_on is not None and year <= converted_on <= day,
            )
        assert got == expected, day
        got_running = sorted(
            (int(account_id), kind, int(partner_id), int(rep_id))
            for account_id, kind, partner_id, rep_id in zip(
                running.account_id, running.kind, running.partner_id, running.rep_id, strict=True
            )
        )
        expected_running = sorted(
            (each.account_id, each.kind, each.partner_id or 0, each.rep_id or 0)
            for each in assignments
            if COVERAGE_RUNNING.holds(each, day)
        )
        assert got_running == expected_running, day
