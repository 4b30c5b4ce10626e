"""docs/metrics.md rules 10-17, computed by hand on small markets: each rule's boundary days,
currency changes, rounding once, and who influenced a deal."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import revenue
from crm.currencies import MissingRate, RateTable

D = date(2026, 6, 7)  # a Sunday
SEGMENT = {"region": "EAST", "vertical": "FIN", "size_band": "smb"}
RATES = RateTable(
    "USD",
    [
        ("EUR", date(2026, 1, 1), Decimal("1.1")),
        ("EUR", D, Decimal("1.2")),  # changes on the as-of day itself
        ("CNY", date(2026, 1, 1), Decimal("0.14")),
    ],
)


def deal(number: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "opportunity_id": number,
        "account_id": number,
        **SEGMENT,
        "channel": "direct",
        "partner_id": 0,
        "stage": "open",
        "recurring": False,
        "amount_cents": 100_00,
        "currency": "USD",
        "probability_bp": 50_00,
        "opened_on": date(2026, 1, 5),
        "expected_close_on": None,
        "closed_on": None,
        "ends_on": None,
    }
    row.update(values)
    for field in revenue.DATE_FIELDS:
        row[field] = pd.Timestamp(row[field]) if row[field] else pd.NaT
    return row


def prepared(
    deals: list[dict[str, Any]],
    *,
    coverage: list[dict[str, Any]] = (),  # type: ignore[assignment]
    agreements: list[dict[str, Any]] = (),  # type: ignore[assignment]
    regions: list[tuple[int, str]] = (),  # type: ignore[assignment]
    partners: list[dict[str, Any]] = (),  # type: ignore[assignment]
    rates: RateTable = RATES,
    many_days: bool = False,
) -> revenue.PreparedRevenue:
    agreement_rows = [
        {
            "agreement_id": 1,
            "partner_id": 7,
            "status": "active",
            "signed_on": date(2026, 1, 1),
            "start_date": date(2026, 1, 1),
            "end_date": date(2026, 12, 31),
            "terminated_on": None,
            "annual_target_cents": None,
            "currency": "USD",
            **each,
        }
        for each in agreements
    ]
    return revenue.PreparedRevenue(
        opportunities=pd.DataFrame(deals, columns=revenue.OPPORTUNITY_COLUMNS),
        coverage=pd.DataFrame(
            [{"partner_id": 0, "end_date": None, **each} for each in coverage],
            columns=revenue.COVERAGE_COLUMNS,
        ),
        agreements=pd.DataFrame(
            agreement_rows,
            columns=[
                "agreement_id",
                "partner_id",
                "status",
                "signed_on",
                "start_date",
                "end_date",
                "terminated_on",
                "annual_target_cents",
                "currency",
            ],
        ),
        agreement_regions=pd.DataFrame(regions, columns=["agreement_id", "region"]),
        agreement_verticals=pd.DataFrame(columns=["agreement_id", "vertical"]),
        partners=pd.DataFrame(
            [
                {"partner_id": 7, "external_id": "P7", "name": "Seven", "channel_kind": "partner"},
                {"partner_id": 8, "external_id": "P8", "name": "Eight", "channel_kind": "partner"},
                *partners,
            ]
        ),
        rates=rates,
        many_days=many_days,
    )


def random_days(generator: np.random.Generator, first: date) -> dict[str, Any]:
    """A random deal's stage and dates from `first` on: open, won or lost, recurring four times
    in ten, and a won subscription ended half the time."""
    opened = first + timedelta(days=int(generator.integers(0, 400)))
    stage = str(generator.choice(["open", "won", "lost"]))
    closed = opened + timedelta(days=int(generator.integers(0, 120)))
    recurring = bool(generator.random() < 0.4)
    ends = closed + timedelta(days=int(generator.integers(1, 200)))
    return {
        "stage": stage,
        "recurring": recurring,
        "opened_on": opened,
        "expected_close_on": closed,
        "closed_on": closed if stage != "open" else None,
        "ends_on": ends if stage == "won" and recurring and generator.random() < 0.5 else None,
    }


COUNTS = pd.DataFrame(
    [{**SEGMENT, "accounts": 10, "covered_any": 4, "converted": 2, "white_space": 6}]
)


def figures(deals: list[dict[str, Any]], day: date = D, **market: Any) -> dict[str, Any]:
    """The all-channel row of the segment, money in cents (rules 10's rounding applied)."""
    rows = revenue.in_cents(prepared(deals, **market).figures(day, COUNTS).segments)
    chosen = rows[rows["channel"] == ""]
    return chosen.iloc[0].to_dict() if len(chosen) else {}


def channel_row(deals: list[dict[str, Any]], channel: str, **market: Any) -> dict[str, Any]:
    rows = revenue.in_cents(prepared(deals, **market).figures(D, COUNTS).segments)
    chosen = rows[rows["channel"] == channel]
    return chosen.iloc[0].to_dict() if len(chosen) else {}


class TestPipeline:
    """Rule 12."""

    def test_it_counts_deals_opened_on_or_before_d_and_not_closed_by_then(self) -> None:
        deals = [
            deal(1, opened_on=D),  # opened on d: in
            deal(2, opened_on=D + timedelta(days=1)),  # not yet opened
            deal(3, stage="won", closed_on=D),  # closed on d: out
            deal(4, stage="won", closed_on=D + timedelta(days=1)),  # won after d: still in
            deal(5, stage="lost", closed_on=D + timedelta(days=30)),  # lost after d: in
        ]
        row = figures(deals)
        assert row["pipeline_count"] == 3
        assert row["pipeline_amount"] == 300_00

    def test_a_recurring_deal_counts_twelve_monthly_fees(self) -> None:
        row = figures([deal(1, recurring=True, amount_cents=250_00)])
        assert row["pipeline_amount"] == 3000_00

    def test_the_weighted_pipeline_is_rounded_once_after_adding(self) -> None:
        # Three deals of 10.00 at 33.33 %: 3 x 3.333 = 9.999, stored 10.00, not 3 x 3.33.
        deals = [deal(n, amount_cents=10_00, probability_bp=33_33) for n in (1, 2, 3)]
        assert figures(deals)["weighted_pipeline"] == 10_00

    def test_it_converts_at_the_rate_valid_on_d(self) -> None:
        # EUR is 1.1 until the day before d, 1.2 from d on.
        assert figures([deal(1, currency="EUR")])["pipeline_amount"] == 120_00
        day_before = figures([deal(1, currency="EUR")], D - timedelta(days=1))
        assert day_before["pipeline_amount"] == 110_00

    def test_a_missing_rate_is_an_error_naming_the_currency_and_day(self) -> None:
        with pytest.raises(MissingRate, match=r"no GBP rate valid on 2026-06-07"):
            figures([deal(1, currency="GBP")])
        early = figures([deal(1, currency="EUR", opened_on=date(2025, 6, 1))], date(2026, 1, 1))
        assert early["pipeline_amount"] == 110_00
        with pytest.raises(MissingRate, match=r"EUR rate valid on 2025-12-31"):
            figures([deal(1, currency="EUR", opened_on=date(2025, 6, 1))], date(2025, 12, 31))


class TestForecast:
    """Rule 12's forecast."""

    def test_it_takes_the_13_weeks_after_d_and_overdue_deals(self) -> None:
        deals = [
            deal(1, expected_close_on=D + timedelta(days=91)),  # last day: in
            deal(2, expected_close_on=D + timedelta(days=92)),  # out
            deal(3, expected_close_on=D - timedelta(days=10), opened_on=date(2026, 1, 1)),
            deal(4),  # no expected close
        ]
        row = figures(deals)
        assert row["forecast_count"] == 2
        assert row["forecast_amount"] == 100_00  # 2 x 100.00 at 50 %

    def test_it_is_split_by_the_week_of_the_expected_close(self) -> None:
        deals = [
            deal(1, expected_close_on=D + timedelta(days=7)),
            deal(2, expected_close_on=D + timedelta(days=8)),
            deal(3, expected_close_on=D - timedelta(days=3), opened_on=date(2026, 1, 1)),
            deal(
                4, expected_close_on=D + timedelta(days=91), channel="online", online_source="web"
            ),
        ]
        weeks = prepared(deals).figures(D, COUNTS).forecast
        everything = weeks[weeks["channel"] == ""].set_index("weeks_ahead")["forecast_count"]
        assert everything.to_dict() == {1: 2, 2: 1, 13: 1}
        online = weeks[weeks["channel"] == "online"]
        assert online["weeks_ahead"].tolist() == [13]


class TestWon:
    """Rule 13."""

    def test_it_takes_the_52_weeks_ending_on_d(self) -> None:
        deals = [
            deal(1, stage="won", opened_on=date(2025, 1, 1), closed_on=D - timedelta(days=363)),
            deal(2, stage="won", opened_on=date(2025, 1, 1), closed_on=D - timedelta(days=364)),
            deal(3, stage="won", closed_on=D),
            deal(4, stage="lost", closed_on=D),
        ]
        row = figures(deals)
        assert (row["won_count"], row["won_amount"], row["won_accounts"]) == (2, 200_00, 2)

    def test_each_win_keeps_the_rate_of_its_close(self) -> None:
        deals = [
            deal(1, stage="won", currency="EUR", closed_on=D - timedelta(days=1)),  # 1.1
            deal(2, stage="won", currency="EUR", closed_on=D),  # 1.2
        ]
        assert figures(deals)["won_amount"] == 230_00
        later = figures(deals, D + timedelta(days=100))
        assert later["won_amount"] == 230_00

    def test_d_is_revenue_per_won_account(self) -> None:
        deals = [
            deal(1, stage="won", closed_on=D, amount_cents=300_00),
            deal(2, account_id=1, stage="won", closed_on=D, amount_cents=100_00),
            deal(3, stage="won", closed_on=D, amount_cents=200_00),
        ]
        row = figures(deals)
        assert (row["won_amount"], row["won_accounts"]) == (600_00, 2)  # D = 300.00


class TestSubscriptions:
    """Rule 14."""

    def test_mrr_counts_running_subscriptions_at_the_rate_of_d(self) -> None:
        deals = [
            deal(1, stage="won", recurring=True, closed_on=D, currency="EUR", amount_cents=10_00),
            deal(2, stage="won", recurring=True, closed_on=date(2026, 2, 1), ends_on=D),
            deal(
                3,
                stage="won",
                recurring=True,
                closed_on=date(2026, 2, 1),
                ends_on=D + timedelta(days=1),
                amount_cents=50_00,
            ),
            deal(4, stage="won", recurring=False, closed_on=date(2026, 2, 1)),
            deal(5, stage="won", recurring=True, closed_on=D + timedelta(days=1)),
        ]
        row = figures(deals)
        assert row["mrr"] == 12_00 + 50_00
        assert row["subscribers"] == 2

    def test_subscribers_are_distinct_accounts_and_mrr_is_u_times_p(self) -> None:
        deals = [
            deal(1, stage="won", recurring=True, closed_on=D, amount_cents=10_00),
            deal(2, account_id=1, stage="won", recurring=True, closed_on=D, amount_cents=10_00),
            deal(3, stage="won", recurring=True, closed_on=D, amount_cents=10_01),
        ]
        row = figures(deals)
        assert (row["mrr"], row["subscribers"]) == (30_01, 2)
        arpa = Decimal(row["mrr"]).scaleb(-2) / row["subscribers"]
        assert (arpa * row["subscribers"]).quantize(Decimal("0.01")) == Decimal("30.01")


class TestWhiteSpaceValue:
    """Rule 15: 10 accounts, 4 covered, 2 converted, 6 white space."""

    def test_it_values_the_white_space_at_the_segments_conversion(self) -> None:
        deals = [deal(1, stage="won", closed_on=D, amount_cents=900_00)]
        row = figures(deals)
        # D = 900.00; white space value = 6 x 900 x 2 / 4 = 2,700.00; I = 10 x 0.2 x 900.
        assert row["white_space_value"] == 2700_00
        assert row["sales_revenue"] == 1800_00

    def test_without_a_won_account_there_is_no_value(self) -> None:
        row = figures([deal(1)])
        assert pd.isna(row["white_space_value"]) and pd.isna(row["sales_revenue"])
        assert pd.isna(
            channel_row([deal(1, stage="won", closed_on=D)], "direct")["white_space_value"]
        )


class TestLargeValues:
    """Rule 15's values stay exact when their products pass the 28 digits of Python's
    default decimal context."""

    def test_white_space_value_and_sales_revenue_are_exact(self) -> None:
        won = 10**30 + 7  # units
        everything = pd.DataFrame([{**SEGMENT, "won_amount": won, "won_accounts": 3}])
        counts = pd.DataFrame(
            [
                {
                    **SEGMENT,
                    "accounts": 5003,
                    "covered_any": 1009,
                    "converted": 991,
                    "white_space": 997,
                }
            ]
        )
        row = revenue._with_values(everything, counts).iloc[0]
        precise = revenue._PRECISE
        assert row["white_space_value"] == precise.divide(
            Decimal(997 * won * 991), Decimal(3 * 1009)
        )
        assert row["sales_revenue"] == precise.divide(Decimal(5003 * 991 * won), Decimal(5003 * 3))


class TestInfluence:
    """Rule 16: a deal won on d by the online channel, account 1."""

    WON = deal(1, stage="won", closed_on=D, channel="online", online_source="web")

    def influenced(self, *coverage: dict[str, Any], **market: Any) -> dict[str, Any]:
        rows = revenue.in_cents(
            prepared([self.WON], coverage=list(coverage), **market).figures(D, COUNTS).segments
        )
        return {row["channel"]: row["influenced_count"] for row in rows.to_dict("records")}

    def test_coverage_on_some_day_of_the_13_weeks_before_the_close_influences(self) -> None:
        direct = {"account_id": 1, "kind": "direct"}
        ended_too_early = {**direct, "start_date": date(2026, 1, 1), "end_date": D - timedelta(92)}
        assert self.influenced(ended_too_early)[""] == 0
        last_day = {**direct, "start_date": date(2026, 1, 1), "end_date": D - timedelta(91)}
        assert self.influenced(last_day)["direct"] == 1
        on_the_close = {**direct, "start_date": D}
        assert self.influenced(on_the_close)[""] == 0
        day_before = {**direct, "start_date": D - timedelta(days=1)}
        assert self.influenced(day_before)["direct"] == 1

    def test_the_sourcing_channel_does_not_influence_itself(self) -> None:
        online = {"account_id": 1, "kind": "online", "start_date": date(2026, 1, 1)}
        assert self.influenced(online)[""] == 0

    def test_a_partner_influences_only_under_an_agreement_in_force_that_day(self) -> None:
        covering = {
            "account_id": 1,
            "kind": "partner",
            "partner_id": 7,
            "start_date": date(2026, 1, 1),
            "end_date": D - timedelta(days=50),
        }
        assert self.influenced(covering)[""] == 0  # no agreement
        assert self.influenced(covering, agreements=[{}])["partner"] == 1
        # In force only after the coverage ended: never on the same day.
        later = {"signed_on": D - timedelta(40), "start_date": D - timedelta(40)}
        assert self.influenced(covering, agreements=[later])[""] == 0
        # Granting another region only.
        assert self.influenced(covering, agreements=[{}], regions=[(1, "WEST")])[""] == 0
        assert self.influenced(covering, agreements=[{}], regions=[(1, "EAST")])["partner"] == 1

    def test_sourced_and_influenced_sit_apart_and_partners_get_both(self) -> None:
        sourced = deal(
            1, stage="won", closed_on=D, channel="partner", partner_id=7, amount_cents=500_00
        )
        covering = [
            {"account_id": 1, "kind": "partner", "partner_id": 8, "start_date": date(2026, 1, 1)},
            {"account_id": 1, "kind": "partner", "partner_id": 7, "start_date": date(2026, 1, 1)},
            {"account_id": 1, "kind": "direct", "start_date": date(2026, 1, 1)},
        ]
        agreements = [{"agreement_id": 1, "partner_id": 7}, {"agreement_id": 2, "partner_id": 8}]
        week = prepared([sourced], coverage=covering, agreements=agreements).figures(D, COUNTS)
        rows = revenue.in_cents(week.segments).set_index("channel")
        assert rows.loc["partner", "won_amount"] == 500_00
        assert rows.loc["partner", "influenced_amount"] == 0  # the source's own channel
        assert rows.loc["direct", "influenced_amount"] == 500_00
        partners = revenue.in_cents(week.partners).set_index("external_id")
        assert partners.loc["P7", "won_amount"] == 500_00
        assert partners.loc["P7", "influenced_amount"] == 0
        assert partners.loc["P8", "influenced_amount"] == 500_00
        assert partners.loc["P8", "won_amount"] == 0


class TestRollupsAndTargets:
    """Rule 17."""

    def test_a_rollup_is_rounded_once(self) -> None:
        # Two half cents in two segments: each segment rounds up to 0.01; the region's exact
        # sum is 0.01.
        deals = [
            deal(1, currency="EUR", amount_cents=1),
            deal(2, currency="EUR", amount_cents=1, size_band="enterprise"),
        ]
        rates = RateTable("USD", [("EUR", date(2026, 1, 1), Decimal("0.5"))])
        week = prepared(deals, rates=rates).figures(D, COUNTS)
        segments = revenue.in_cents(week.segments)
        assert segments[segments["channel"] == ""]["pipeline_amount"].tolist() == [1, 1]
        rollups = revenue.in_cents(week.rollups)
        region = rollups[(rollups["region"] == "EAST") & (rollups["vertical"] == "")]
        region = region[(region["size_band"] == "") & (region["channel"] == "")]
        assert region["pipeline_amount"].tolist() == [1]

    def test_a_partners_target_is_a_quarter_of_its_annual_targets_in_force(self) -> None:
        agreements = [
            {"agreement_id": 1, "annual_target_cents": 400_000_00, "currency": "EUR"},
            {"agreement_id": 2, "annual_target_cents": 100_000_00, "status": "draft"},
            {"agreement_id": 3, "annual_target_cents": 40_000_00, "end_date": D},
        ]
        week = prepared([deal(1)], agreements=agreements).figures(D, COUNTS)
        partners = revenue.in_cents(week.partners).set_index("external_id")
        assert partners.loc["P7", "target_amount"] == 120_000_00 + 10_000_00
        totals = revenue.in_cents(week.partner_rollups).set_index("channel_kind")
        assert totals.loc["", "target_amount"] == 130_000_00


class TestExactSums:
    """Rule 10: sums over whole cents are exact however large, by either way of adding."""

    @pytest.mark.parametrize("largest", [10**6, 10**14 - 1])
    def test_each_key_sums_its_cents_exactly(self, largest: int) -> None:
        # With the largest amount a numeric(14, 2) holds, a million rows' sums pass 2^53 and
        # a float64 would lose cents; small amounts stay below it.
        generator = np.random.default_rng(3)
        keys = generator.integers(0, 7, size=1_000_000)
        cents = generator.integers(0, largest, size=1_000_000, endpoint=True)
        cents[:3] = largest
        sums = revenue._exact_sums(keys, cents, 8)
        expected = [sum(int(value) for value in cents[keys == key]) for key in range(8)]
        assert list(sums) == expected
        assert all(type(value) is int for value in sums)


class TestMoney:
    """Sums of cents times factors are exact whatever the sizes of the two."""

    @pytest.mark.parametrize(
        ("largest", "factor_count", "widest_factor"),
        [(10**6, 5, 10**14), (10**14 - 1, 40, 2**80), (10**14 - 1, 1500, 10**18)],
    )
    def test_each_key_sums_cents_times_its_factors(
        self, largest: int, factor_count: int, widest_factor: int
    ) -> None:
        generator = np.random.default_rng(7)
        rows = 200_000
        keys = generator.integers(0, 9, size=rows)
        cents = generator.integers(0, largest, size=rows, endpoint=True)
        cents[:3] = largest
        factors = generator.integers(0, factor_count, size=rows) * 3  # codes, not positions
        values = {code: int(generator.integers(0, 2**62)) % widest_factor for code in set(factors)}
        values[int(factors[0])] = widest_factor
        units = revenue._money(
            keys, cents, factors, lambda codes: np.array([values[int(c)] for c in codes]), 10
        )
        expected = [0] * 10
        for key, amount, factor in zip(
            keys.tolist(), cents.tolist(), factors.tolist(), strict=True
        ):
            expected[key] += amount * values[factor]
        assert list(units) == expected
        assert all(type(value) is int for value in units)

    def test_shifted_pieces_add_up_exactly_carries_and_all(self) -> None:
        # The largest int64 values at every shift `_money` uses and more: each word carries.
        generator = np.random.default_rng(11)
        largest = np.full(6, 2**63 - 1, dtype="int64")
        pieces = [(largest, shift) for shift in (0, 24, 26, 27, 29, 30, 50, 53, 77, 91)]
        pieces += [(generator.integers(0, 2**63 - 1, size=6), shift) for shift in range(0, 70, 7)]
        pieces.append((np.zeros(6, dtype="int64"), 200))
        total = revenue._shifted_sum(pieces, 6)
        expected = [sum(int(values[at]) << shift for values, shift in pieces) for at in range(6)]
        assert list(total) == expected
        assert all(type(value) is int for value in total)


class TestManyDays:
    """A backfill's preparation (each deal's days as spans) gives every day the figures a
    single day's gives (the rules tested once)."""

    def test_each_day_has_the_same_figures_either_way(self) -> None:
        generator = np.random.default_rng(18)
        first = date(2025, 6, 1)
        deals = []
        for number in range(1, 301):
            deals.append(
                deal(
                    number,
                    **random_days(generator, first),
                    account_id=int(generator.integers(1, 60)),
                    size_band=str(generator.choice(["smb", "enterprise"])),
                    channel=str(generator.choice(["direct", "partner", "online"])),
                    amount_cents=int(generator.integers(1, 10**9)),
                    currency=str(generator.choice(["USD", "EUR", "CNY"])),
                    probability_bp=int(generator.choice([10_00, 50_00, 90_00])),
                )
            )
        rates = RateTable(
            "USD",
            [
                ("EUR", date(2024, 1, 1), Decimal("1.1")),
                ("EUR", date(2026, 2, 1), Decimal("1.2")),
                ("CNY", date(2024, 1, 1), Decimal("0.14")),
            ],
        )
        once = prepared(deals, rates=rates)
        swept = prepared(deals, rates=rates, many_days=True)
        for day in [date(2026, 1, 4) + timedelta(weeks=week) for week in range(0, 40, 3)]:
            alone, among = once.figures(day, COUNTS), swept.figures(day, COUNTS)
            for name in ("segments", "rollups", "partners", "partner_rollups", "forecast"):
                pd.testing.assert_frame_equal(getattr(alone, name), getattr(among, name))

    @pytest.mark.parametrize("one_segment_per_account", [True, False])
    def test_a_sweep_over_days_in_any_order_has_each_days_figures(
        self, one_segment_per_account: bool
    ) -> None:
        """A backfill keeps its sums from one day to the next: days forward, repeated and
        backward, across rate changes, with partners, targets and influence, agree with a
        pass over the day's deals; a day a counting deal has no rate for raises as it. (An
        account's deals are in its segment as read from the market; read otherwise, they may
        not be.)"""
        generator = np.random.default_rng(20)
        first = date(2025, 6, 1)
        partner_ids = [7, 8, 9, 10]
        deals = []
        for number in range(1, 401):
            channel = str(generator.choice(["direct", "partner", "distribution", "online"]))
            account = int(generator.integers(1, 40))
            region = str(generator.choice(["EAST", "WEST"]))
            size_band = str(generator.choice(["smb", "enterprise"]))
            if one_segment_per_account:
                region, size_band = ("EAST", "WEST")[account % 2], ("smb", "mid")[account % 3 // 2]
            deals.append(
                deal(
                    number,
                    **random_days(generator, first),
                    account_id=account,
                    region=region,
                    size_band=size_band,
                    channel=channel,
                    partner_id=(
                        int(generator.choice(partner_ids))
                        if channel in ("partner", "distribution")
                        else 0
                    ),
                    # Some amounts past 2^53 cents a year: sums that no float holds.
                    amount_cents=int(
                        generator.integers(1, 2**50 if generator.random() < 0.05 else 10**9)
                    ),
                    currency=str(generator.choice(["USD", "EUR", "CNY"])),
                    probability_bp=int(generator.choice([0, 10_00, 50_00, 90_00, 100_00])),
                )
            )
        deals += [
            deal(number, currency="GBP", opened_on=date(2026, 1, 10), account_id=number - 360)
            for number in (401, 402)
        ]
        coverage = [
            {
                "account_id": int(generator.integers(1, 40)),
                "kind": kind,
                "partner_id": int(generator.choice(partner_ids)) if kind == "partner" else 0,
                "start_date": first + timedelta(days=int(generator.integers(0, 400))),
                "end_date": (
                    first + timedelta(days=int(generator.integers(400, 600)))
                    if generator.random() < 0.5
                    else None
                ),
            }
            for kind in generator.choice(["direct", "partner", "distribution", "online"], 120)
        ]
        agreements = [
            {
                "agreement_id": number,
                "partner_id": partner,
                "start_date": date(2025, 1, 1),
                "end_date": date(2027, 12, 31),
                "annual_target_cents": 10**6 * number,
                "currency": "EUR" if number % 2 else "USD",
            }
            for number, partner in enumerate(partner_ids, start=1)
        ]
        market = {
            "coverage": coverage,
            "agreements": agreements,
            "partners": [
                {"partner_id": 9, "external_id": "P9", "name": "Nine", "channel_kind": "partner"},
                {
                    "partner_id": 10,
                    "external_id": "A10",
                    "name": "Ten",
                    "channel_kind": "distributor",
                },
            ],
            "rates": RateTable(
                "USD",
                [
                    ("EUR", date(2024, 1, 1), Decimal("1.1")),
                    ("EUR", date(2026, 2, 1), Decimal("1.2")),
                    ("EUR", date(2026, 2, 8), Decimal("1.25")),
                    ("CNY", date(2025, 1, 1), Decimal("0.1412345678")),
                    ("CNY", date(2025, 12, 28), Decimal("0.15")),
                    # The pipeline's GBP deals have no rate before March.
                    ("GBP", date(2026, 3, 1), Decimal("1.3")),
                ],
            ),
        }
        once = prepared(deals, **market)
        swept = prepared(deals, many_days=True, **market)
        weeks = [date(2025, 8, 3) + timedelta(weeks=week) for week in range(60)]
        days = [*weeks[::2], weeks[20], weeks[20], weeks[5], *weeks[6:40], date(2026, 2, 3)]
        agreed = 0
        for day in days:
            try:
                alone = once.figures(day, COUNTS)
            except MissingRate as missing:
                with pytest.raises(MissingRate, match=re.escape(str(missing))):
                    swept.figures(day, COUNTS)
                continue
            among = swept.figures(day, COUNTS)
            for name in ("segments", "rollups", "partners", "partner_rollups", "forecast"):
                pd.testing.assert_frame_equal(getattr(alone, name), getattr(among, name))
            agreed += 1
        # Rule 22's revenue since 1 January likewise, on each day.
        sourced_days = 0
        for day in days:
            try:
                alone_sourced = once.sourced(date(day.year, 1, 1), day)
            except MissingRate as missing:
                with pytest.raises(MissingRate, match=re.escape(str(missing))):
                    swept.sourced(date(day.year, 1, 1), day)
                continue
            assert swept.sourced(date(day.year, 1, 1), day) == alone_sourced
            sourced_days += bool(alone_sourced.partners and alone_sourced.reps)
        # The sums were kept (the days after the first asked are not passes over the deals),
        # and most days had every rate.
        assert swept.sweep is not None
        assert agreed > len(days) // 2
        assert sourced_days > len(days) // 2
        assert (swept.account_segment is not None) == one_segment_per_account

    def test_a_backfill_with_too_large_sums_takes_each_day_from_its_deals(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Say, daily rates over years: each day's figures are computed from its deals.
        monkeypatch.setattr(revenue, "_SWEEP_MOST_CELLS", 10)
        deals = [
            deal(1, stage="won", closed_on=D, channel="partner", partner_id=7),
            deal(2, currency="EUR", probability_bp=10_00),
        ]
        once, swept = prepared(deals), prepared(deals, many_days=True)
        for day in (D - timedelta(days=7), D):
            alone, among = once.figures(day, COUNTS), swept.figures(day, COUNTS)
            for name in ("segments", "rollups", "partners", "partner_rollups", "forecast"):
                pd.testing.assert_frame_equal(getattr(alone, name), getattr(among, name))
            assert swept.sourced(date(2026, 1, 1), day) == once.sourced(date(2026, 1, 1), day)
        assert swept.sweep is None

    def test_a_short_backfill_takes_each_day_from_its_deals(self) -> None:
        deals = [
            deal(1, stage="won", closed_on=D, channel="partner", partner_id=7),
            deal(2, currency="EUR", probability_bp=10_00),
        ]
        once, few, many = prepared(deals), *(prepared(deals, many_days=True) for _ in (1, 2))
        few.sweep_ready(revenue.SWEEP_FROM_DAYS - 1)
        many.sweep_ready(revenue.SWEEP_FROM_DAYS)
        for day in (D - timedelta(days=7), D):
            alone = once.figures(day, COUNTS)
            for backfill in (few, many):
                among = backfill.figures(day, COUNTS)
                for name in ("segments", "rollups", "partners", "partner_rollups", "forecast"):
                    pd.testing.assert_frame_equal(getattr(alone, name), getattr(among, name))
        assert few.sweep is None
        assert many.sweep is not None

    def test_a_sweep_raises_for_the_years_deal_without_a_rate_as_a_pass_does(self) -> None:
        """Rule 22 in a backfill: a deal of any channel won this year in a currency without a
        rate on its close makes the year's revenue an error, as it does for a single day; the
        next year it no longer counts."""
        rates = RateTable("USD", [("GBP", date(2026, 3, 1), Decimal("1.3"))])
        deals = [
            deal(1, stage="won", closed_on=date(2026, 1, 20), channel="online", currency="GBP"),
            deal(2, stage="won", closed_on=date(2026, 1, 6), channel="partner", partner_id=7),
            deal(3, stage="won", closed_on=date(2027, 1, 12), channel="partner", partner_id=8),
        ]
        once = prepared(deals, rates=rates)
        swept = prepared(deals, rates=rates, many_days=True)
        errors = 0
        for day in [date(2026, 1, 11), date(2026, 1, 25), date(2026, 12, 27), date(2027, 1, 17)]:
            start = date(day.year, 1, 1)
            try:
                alone = once.sourced(start, day)
            except MissingRate as missing:
                errors += 1
                with pytest.raises(MissingRate, match=re.escape(str(missing))):
                    swept.sourced(start, day)
                continue
            assert swept.sourced(start, day) == alone
        assert errors == 2
        assert swept.sourced(date(2027, 1, 1), date(2027, 1, 17)).partners == {8: 100_00}


class TestLimbs:
    """Money in units summed as int64 limbs joins back to the exact integers."""

    def test_limbs_join_back_to_the_integers(self) -> None:
        values = [0, 5, -7, 2**46 - 1, 2**46, -(2**46), 2**200 + 3, -(2**150) + 1]
        limbs = revenue._limbs(values)
        assert list(revenue._joined(limbs)) == values
        assert all(limb.dtype == np.int64 for limb in limbs)
        assert all(((limb >= 0) & (limb < 2**46)).all() for limb in limbs[:-1])

    def test_a_rollup_of_huge_sums_is_exact(self) -> None:
        # A year of deals in a currency worth far more than the reporting one: sums of units
        # far past 2^63, each segment's and their total exact to the unit.
        huge = [3**80 + 1, 2**90 - 1, 7**40]
        deals = [
            deal(1, amount_cents=10**13, currency="XAU"),
            deal(2, amount_cents=10**13 - 1, currency="XAU", size_band="enterprise"),
            deal(3, amount_cents=3, currency="XAU", vertical="GOV"),
        ]
        rates = RateTable("USD", [("XAU", date(2026, 1, 1), Decimal("123456789.0123456789"))])
        week = prepared(deals, rates=rates).figures(D, COUNTS)
        segments = week.segments[week.segments["channel"] == ""]
        total = week.rollups
        total = total[(total["region"] == "") & (total["vertical"] == "")]
        total = total[(total["size_band"] == "") & (total["channel"] == "")]
        assert total["pipeline_amount"].tolist() == [sum(segments["pipeline_amount"])]
        assert sum(segments["pipeline_amount"]) == (10**13 + 10**13 - 1 + 3) * (
            1234567890123456789 * revenue.PROBABILITY_SCALE
        )
        assert revenue._joined(revenue._limbs(huge)).tolist() == huge


class TestSegments:
    """Segments coded from integer keys group the rows as segments coded from any values."""

    def test_integer_keys_group_as_text_keys_do(self) -> None:
        generator = np.random.default_rng(5)
        keys = [generator.integers(0, n, size=5_000) for n in (48, 10, 4)]
        codes, values = revenue.segments_of(keys)
        text_codes, text_values = revenue.segments_of(
            [key.astype(str).astype(object) for key in keys]
        )
        assert len(np.unique(codes)) == len(np.unique(text_codes))
        for key, key_values, key_text in zip(keys, values, text_values, strict=True):
            assert (key_values[codes] == key).all()
            assert (key_text[text_codes].astype(int) == key).all()
