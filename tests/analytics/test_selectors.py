"""The metrics reads: the packing of integer fields (`analytics.selectors._Packing`) and a
week's rows (`analytics.selectors.week_read`)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import pytest
from django.db import connection
from django.db.models import F

from analytics import metrics, programme, revenue, revenue_selectors, selectors
from channels.models import CoverageAssignment, Opportunity
from channels.rules import (
    COVERAGE_RUNNING,
    IN_FORECAST,
    IN_PIPELINE,
    SUBSCRIBED,
    WON_IN_52_WEEKS,
)
from crm.models import Account, SizeBand
from crm.rules import CONVERTED, IN_MARKET
from crm.selectors import rate_table
from tests.analytics.market import random_market, random_revenue
from tests.factories import AccountFactory, OpportunityFactory


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
    for day, influence in itertools.product(days, (False, True)):
        window, year = programme.window_start(day), programme.year_start(day)
        with selectors.week_read(day, parallel=False, influence=influence) as read:
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
        if influence and connection.vendor == "postgresql":
            assert running.influencing is not None
            assert _influencing(running.influencing) == _ran_in_influence_window(
                assignments, day
            ), day
        else:
            assert running.influencing is None


def _influencing(fields: dict[str, np.ndarray]) -> list[tuple[int, ...]]:
    return sorted(
        zip(
            *(
                fields[name].tolist()
                for name in ("account_id", "kind", "partner_id", "start_date", "end_date")
            ),
            strict=True,
        )
    )


def _ran_in_influence_window(
    assignments: list[CoverageAssignment], day: date
) -> list[tuple[int, ...]]:
    """Each assignment running on some day of the 454 before `day` or on it (rule 16's days
    for a deal won in the 52 weeks ending on `day`), its days as ordinals, clamped to the day
    before those (start) and to `day` (end)."""
    first = day - timedelta(days=454)
    return sorted(
        (
            each.account_id,
            metrics.KINDS.index(each.kind),
            each.partner_id or 0,
            max(each.start_date, first - timedelta(days=1)).toordinal(),
            min(each.end_date or day, day).toordinal(),
        )
        for each in assignments
        if each.start_date <= day and (each.end_date is None or each.end_date >= first)
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_deals_read_codes_each_deal_as_it_is_stored() -> None:
    # The channel is told by the owner and the stage by the close date (the database's
    # constraints hold both), the dates as day numbers: each deal as it is stored. (SQLite
    # reads the deals another way, `revenue_selectors.read_revenue`.)
    random_market(71, accounts=60)
    random_revenue(71, opportunities=150)
    with selectors._tuned_reads():
        read = revenue_selectors._read_deals(
            Opportunity.objects.all(),
            rate_table(),
            revenue_selectors._highest_ids(),
            joined=True,
        )
    fields = read.fields
    got = {
        int(deal_id): (
            metrics.KINDS[channel],
            revenue.STAGES[stage],
            *(selectors._dates_of(fields[name][row : row + 1])[0] for name in revenue.DATE_FIELDS),
        )
        for row, (deal_id, channel, stage) in enumerate(
            zip(fields["opportunity_id"], fields["channel"], fields["stage"], strict=True)
        )
    }

    def day(value: date | None) -> np.datetime64:
        return np.datetime64(value, "D") if value else np.datetime64("NaT", "D")

    stored = {
        deal.id: (
            deal.channel,
            deal.stage,
            *(day(getattr(deal, name)) for name in revenue.DATE_FIELDS),
        )
        for deal in Opportunity.objects.all()
    }
    assert got.keys() == stored.keys()
    for deal_id, values in stored.items():
        channel, stage, *dates = got[deal_id]
        assert (channel, stage) == values[:2], deal_id
        assert all(
            (np.isnat(a) and np.isnat(b)) or a == b for a, b in zip(dates, values[2:], strict=True)
        ), deal_id
    assert {channel for channel, *_ in stored.values()} == set(metrics.KINDS)
    assert {stage for _, stage, *_ in stored.values()} == set(revenue.STAGES)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_days_read_tells_the_deals_dates_apart_as_the_days_rules_do() -> None:
    # Read for one day, each date is kept within the days its rules ask about and clamped
    # to one day on either side (`revenue_selectors._DAY_SPANS`); a missing date stays
    # missing. Every rule of the day then holds for the same deals as on the stored dates.
    day = date(2026, 6, 14)
    account = AccountFactory()
    near = [-400, -365, -364, -363, -200, -92, -1, 0, 1, 2, 91, 92, 93, 400]

    def deal(stage: str, opened: int, **offsets: int | None) -> None:
        OpportunityFactory(
            account=account,
            stage=stage,
            recurring=True,
            opened_on=day + timedelta(days=opened),
            **{
                f"{name}_on" if name != "expected" else "expected_close_on": (
                    None if offset is None else day + timedelta(days=offset)
                )
                for name, offset in offsets.items()
            },
        )

    for offset in near:
        # Open deals opened on and around the day, expected to close on and around it.
        deal("open", min(offset, 1), expected=offset)
        # Won deals (subscriptions) closed on and around it, running past it or not.
        for ends in (None, offset, max(offset, 0), max(offset, 1), max(offset, 400)):
            deal("won", offset - 10, closed=offset, ends=ends)
        deal("lost", offset - 10, closed=offset, expected=None)
    with selectors._tuned_reads():
        highest = revenue_selectors._highest_ids()
        whole = revenue_selectors._read_deals(
            Opportunity.objects.all(), rate_table(), highest, joined=True
        ).fields
        of_day = revenue_selectors._read_deals(
            Opportunity.objects.all(), rate_table(), highest, joined=True, day=day
        ).fields
    assert "opportunity_id" not in of_day
    spans = {"opened_on": (0, 0), "closed_on": (-363, 0), "ends_on": (0, 0)}
    spans["expected_close_on"] = (0, 91)
    for name, (first, last) in spans.items():
        low = (day + timedelta(days=first - 1)).toordinal()
        high = (day + timedelta(days=last + 1)).toordinal()
        stored = whole[name]
        expected = np.where(stored > 0, np.clip(stored, low, high), 0)
        assert of_day[name].tolist() == expected.tolist(), name
    columns = {
        "stage": np.asarray(revenue.STAGES, dtype="U4")[whole["stage"]],
        "recurring": whole["recurring"].astype(bool),
    }
    for rule in (IN_PIPELINE, IN_FORECAST, WON_IN_52_WEEKS, SUBSCRIBED):
        held = [
            rule.mask(
                {
                    **columns,
                    **{name: selectors._dates_of(fields[name]) for name in revenue.DATE_FIELDS},
                },
                day,
            ).tolist()
            for fields in (whole, of_day)
        ]
        assert held[0] == held[1], rule
        assert any(held[0]), rule
