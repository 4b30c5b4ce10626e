"""Rule 10 (docs/metrics.md): a currency's rate on a day, the reporting currency's 1, and a
missing rate as an error, never 0; and the stored rates' own checks."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from crm.currencies import MissingRate, RateTable, day_numbers
from crm.models import CurrencyRate
from crm.rules import DateRule
from crm.selectors import rate_table
from partners.rules import AGREEMENT_IN_FORCE

JAN, MAR = date(2026, 1, 1), date(2026, 3, 1)
TABLE = RateTable(
    "USD",
    [("EUR", MAR, Decimal("1.2")), ("EUR", JAN, Decimal("1.1")), ("CNY", JAN, Decimal("0.14"))],
)


class TestRateTable:
    def test_the_rate_is_the_latest_valid_from_on_or_before_the_day(self) -> None:
        assert TABLE.rate_on("EUR", JAN) == Decimal("1.1")
        assert TABLE.rate_on("EUR", MAR - timedelta(days=1)) == Decimal("1.1")
        assert TABLE.rate_on("EUR", MAR) == Decimal("1.2")
        assert TABLE.rate_on("EUR", date(2199, 12, 31)) == Decimal("1.2")

    def test_the_reporting_currency_is_always_one(self) -> None:
        assert TABLE.rate_on("USD", date(1900, 1, 1)) == 1

    def test_a_day_before_the_first_rate_or_an_unknown_currency_is_missing(self) -> None:
        with pytest.raises(MissingRate, match="no EUR rate valid on 2025-12-31"):
            TABLE.rate_on("EUR", JAN - timedelta(days=1))
        with pytest.raises(MissingRate, match="GBP"):
            TABLE.rate_on("GBP", MAR)

    def test_the_lookup_over_arrays_agrees_with_one_at_a_time(self) -> None:
        currencies = ["USD", "EUR", "EUR", "EUR", "CNY", "CNY", "GBP"]
        days = [JAN, JAN - timedelta(days=1), JAN, MAR, MAR, JAN - timedelta(days=1), MAR]
        periods = TABLE.periods(TABLE.currency_codes(currencies), day_numbers(days))
        for currency, day, period in zip(currencies, days, periods, strict=True):
            if period < 0:
                with pytest.raises(MissingRate):
                    TABLE.rate_on(currency, day)
            else:
                assert TABLE.rates[period] == TABLE.rate_on(currency, day)


@pytest.mark.django_db
class TestStoredRates:
    def test_it_reads_the_stored_rates(self) -> None:
        CurrencyRate.objects.create(currency="EUR", valid_from=JAN, rate_to_reporting="1.0850")
        assert rate_table().rate_on("EUR", MAR) == Decimal("1.085")

    def test_the_reporting_currency_and_unknown_codes_are_refused(self) -> None:
        for currency in ("USD", "EURO", "eur"):
            with pytest.raises(ValidationError):
                CurrencyRate(currency=currency, valid_from=JAN, rate_to_reporting=1).full_clean()

    def test_one_rate_per_currency_and_day_above_zero(self) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CurrencyRate.objects.create(currency="EUR", valid_from=JAN, rate_to_reporting=0)
        CurrencyRate.objects.create(currency="EUR", valid_from=JAN, rate_to_reporting=1)
        with pytest.raises(IntegrityError), transaction.atomic():
            CurrencyRate.objects.create(currency="EUR", valid_from=JAN, rate_to_reporting=2)


def test_a_rules_span_is_exactly_the_days_its_mask_holds_on() -> None:
    rng = np.random.default_rng(5)
    size = 400

    def dates() -> np.ndarray:
        days = pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 90, size), "D")
        values = days.to_numpy(dtype="datetime64[D]")
        values[rng.random(size) < 0.2] = np.datetime64("NaT")
        return values

    columns = {field: dates() for field in AGREEMENT_IN_FORCE.fields if field != "status"}
    columns["status"] = rng.choice(["draft", "active", "expired"], size).astype(object)
    rule: DateRule = AGREEMENT_IN_FORCE
    first, last = rule.span(columns)
    for offset in range(-5, 100):
        day = JAN + timedelta(days=offset)
        number = int(day_numbers([day])[0])
        assert np.array_equal(rule.mask(columns, day), (first <= number) & (number <= last))
