"""Currencies: the ISO 4217 codes in use, for validating amounts entered by people and
integrations, and the rates that convert amounts into the reporting currency
(docs/metrics.md rule 10, stated here once: `RateTable`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

import numpy as np
from numpy.typing import ArrayLike

ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG
    """.split()
)


def is_currency_code(value: str) -> bool:
    """True for an ISO 4217 code in use, written in capitals ("USD", "EUR", "CNY")."""
    return value in ISO_4217_CODES


class MissingRate(Exception):
    """No rate of `currency` is valid on `day` (docs/metrics.md rule 10): the figure cannot be
    converted, and is never taken as 0."""

    def __init__(self, currency: str, day: date, what: str = "") -> None:
        self.currency = currency
        self.day = day
        self.what = what
        about = f" ({what})" if what else ""
        super().__init__(
            f"no {currency} rate valid on {day.isoformat()}{about}: add a rate of {currency} "
            f"from {day.isoformat()} or earlier in fx_rates.csv or the admin"
        )


_EPOCH = np.datetime64("1970-01-01", "D")


def day_numbers(days: np.ndarray | Sequence[date | None]) -> np.ndarray:
    """Dates (`datetime64` or `date` values, NaT/None when missing) as days since 1970-01-01,
    int64; a missing date as `NO_DAY`."""
    values = np.asarray(days, dtype="datetime64[D]")
    numbers = (values - _EPOCH).astype("int64")
    return np.where(np.isnat(values), NO_DAY, numbers)


# A missing date among day numbers: later than any real one.
NO_DAY = np.iinfo("int64").max


class RateTable:
    """The rates of docs/metrics.md rule 10, looked up one at a time or over arrays.

    A currency's rate on a day is the rate with the latest `valid_from` on or before it; the
    reporting currency's is always 1. Built from `(currency, valid_from, rate)` triples; every
    rate is a `Decimal`, kept exact. Each rate row is a *period* with a number: the lookup over
    arrays answers period numbers (`periods`), whose rates are `rates[number]`; period 0 is the
    reporting currency's.
    """

    def __init__(self, reporting: str, rows: Iterable[tuple[str, date, Decimal]]) -> None:
        self.reporting = reporting
        ordered = sorted(
            (currency, valid_from, Decimal(rate))
            for currency, valid_from, rate in rows
            if currency != reporting
        )
        self.currencies: list[str] = [reporting]
        codes: dict[str, int] = {reporting: 0}
        for currency, _, _ in ordered:
            codes.setdefault(currency, len(codes))
            if currency not in self.currencies:
                self.currencies.append(currency)
        self.codes = codes
        self.rates: list[Decimal] = [Decimal(1)] + [rate for _, _, rate in ordered]
        self.valid_from: list[date | None] = [None] + [valid_from for _, valid_from, _ in ordered]
        # One sortable key per period: currency code, then the first day it is valid on.
        self._keys = np.array(
            [
                codes[currency] * _KEY_SPAN + _key_day(day_numbers([valid_from]))[0]
                for currency, valid_from, _ in ordered
            ],
            dtype="int64",
        )
        self._period_currency = np.array([codes[c] for c, _, _ in ordered], dtype="int64")

    def currency_codes(self, currencies: ArrayLike) -> np.ndarray:
        """Each currency's code in this table (its index in `currencies`), -1 when it has no
        rate at all."""
        index = {currency: code for code, currency in enumerate(self.currencies)}
        values = np.asarray(currencies, dtype=object)
        return np.array([index.get(str(c), -1) for c in values], dtype="int64")

    def periods(self, currency: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Per entry, the number of the rate period of `currency[i]` (codes from
        `currency_codes`) valid on `days[i]` (day numbers, `day_numbers`); 0 for the reporting
        currency; -1 when none is valid (no rate from that day or earlier)."""
        currency = np.asarray(currency, dtype="int64")
        days = np.asarray(days, dtype="int64")
        found = np.full(len(currency), -1, dtype="int64")
        found[currency == 0] = 0
        foreign = np.flatnonzero(currency > 0)
        if len(foreign) and len(self._keys):
            keys = currency[foreign] * _KEY_SPAN + _key_day(days[foreign])
            position = np.searchsorted(self._keys, keys, side="right") - 1
            valid = position >= 0
            valid[valid] &= self._period_currency[position[valid]] == currency[foreign][valid]
            found[foreign[valid]] = position[valid] + 1
        return found

    def rate_on(self, currency: str, day: date, *, what: str = "") -> Decimal:
        """The rate of `currency` on `day`. Raises MissingRate when none is valid."""
        if currency == self.reporting:
            return Decimal(1)
        code = self.codes.get(currency, -1)
        period = int(self.periods(np.array([code]), day_numbers([day]))[0]) if code > 0 else -1
        if period < 0:
            raise MissingRate(currency, day, what)
        return self.rates[period]


# Days from 1900-01-01 stay below this up to the year 2199 (about 110,000), so a currency code
# times it plus such a day sorts by currency, then day.
_KEY_SPAN = 1 << 20
_FIRST_DAY = -25_567  # 1900-01-01, the earliest date an amount may carry


def _key_day(days: np.ndarray) -> np.ndarray:
    shifted: np.ndarray = np.clip(np.asarray(days, dtype="int64") - _FIRST_DAY, 0, _KEY_SPAN - 1)
    return shifted
