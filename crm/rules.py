"""The date rules of docs/metrics.md, each written once, as data.

A `DateRule` is a list of conditions on one row's fields against the as-of day `d`, all of
which must hold. The one statement is read three ways, so the pages, the weekly run and a
backfill cannot drift apart:

- `rule.q(d, prefix="")`: a filter for querysets (pages, selectors, and through the ORM the SQL
  of the weekly run's database read);
- `rule.mask(columns, d)`: the test over arrays, one value per row (a backfill's vectorised
  pass over many days);
- `rule.holds(obj, d)`: the test of one object.

A missing date behaves as SQL's NULL does: it is never on or before `d`, nor on or after it.
`analytics/sql_reference.py` states the same rules again, independently, as the check.

This module states the rules of the market core (`IN_MARKET`, `CONVERTED`); the apps above
state theirs with the same conditions (`channels.rules`, `partners.rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from operator import and_, or_
from typing import Any

import numpy as np
from django.db.models import Q


@dataclass(frozen=True)
class OnOrBefore:
    """`field <= d + days`."""

    field: str
    days: int = 0


@dataclass(frozen=True)
class OnOrAfter:
    """`d + days <= field` (e.g. `days=-363`: on or after the day 363 days before `d`)."""

    field: str
    days: int = 0


@dataclass(frozen=True)
class After:
    """`d < field`."""

    field: str


@dataclass(frozen=True)
class Unset:
    """`field` is missing."""

    field: str


@dataclass(frozen=True)
class Other:
    """`field` (never missing) holds another value than `value`."""

    field: str
    value: str


@dataclass(frozen=True)
class Is:
    """`field` (never missing) holds `value`."""

    field: str
    value: str | bool


@dataclass(frozen=True)
class AnyOf:
    """At least one of `conditions`."""

    conditions: tuple[Condition, ...]


Condition = OnOrBefore | OnOrAfter | After | Unset | Other | Is | AnyOf


def _q(condition: Condition, day: date, prefix: str) -> Q:
    match condition:
        case OnOrBefore(field, days):
            return Q(**{f"{prefix}{field}__lte": day + timedelta(days=days)})
        case OnOrAfter(field, days):
            return Q(**{f"{prefix}{field}__gte": day + timedelta(days=days)})
        case After(field):
            return Q(**{f"{prefix}{field}__gt": day})
        case Unset(field):
            return Q(**{f"{prefix}{field}__isnull": True})
        case Other(field, value):
            return ~Q(**{f"{prefix}{field}": value})
        case Is(field, value):
            return Q(**{f"{prefix}{field}": value})
        case AnyOf(conditions):
            return reduce(or_, (_q(each, day, prefix) for each in conditions))
    raise TypeError(f"not a condition: {condition!r}")


def _mask(condition: Condition, columns: Mapping[str, np.ndarray], day: np.datetime64) -> Any:
    # Comparisons with NaT are false, as SQL's comparisons with NULL are.
    match condition:
        case OnOrBefore(field, days):
            return columns[field] <= day + np.timedelta64(days, "D")
        case OnOrAfter(field, days):
            return day + np.timedelta64(days, "D") <= columns[field]
        case After(field):
            return day < columns[field]
        case Unset(field):
            return np.isnat(columns[field])
        case Other(field, value):
            return columns[field] != value
        case Is(field, value):
            return columns[field] == value
        case AnyOf(conditions):
            return reduce(np.logical_or, (_mask(each, columns, day) for each in conditions))
    raise TypeError(f"not a condition: {condition!r}")


def _holds(condition: Condition, obj: object, day: date) -> bool:
    match condition:
        case OnOrBefore(field, days):
            value = getattr(obj, field)
            return value is not None and value <= day + timedelta(days=days)
        case OnOrAfter(field, days):
            value = getattr(obj, field)
            return value is not None and day + timedelta(days=days) <= value
        case After(field):
            value = getattr(obj, field)
            return value is not None and day < value
        case Unset(field):
            return getattr(obj, field) is None
        case Other(field, value):
            return bool(getattr(obj, field) != value)
        case Is(field, value):
            return bool(getattr(obj, field) == value)
        case AnyOf(conditions):
            return any(_holds(each, obj, day) for each in conditions)
    raise TypeError(f"not a condition: {condition!r}")


def _fields(condition: Condition) -> list[str]:
    if isinstance(condition, AnyOf):
        return [field for each in condition.conditions for field in _fields(each)]
    return [condition.field]


# Bounds of the days a rule holds on, as day numbers (days since 1970-01-01): wider than any
# date a row may carry.
_NO_LOWER = np.iinfo("int64").min // 2
_NO_UPPER = np.iinfo("int64").max // 2
_EPOCH = np.datetime64("1970-01-01", "D")


def _day_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dates as day numbers, and where they are missing."""
    dates = np.asarray(values, dtype="datetime64[D]")
    missing = np.isnat(dates)
    return np.where(missing, 0, (dates - _EPOCH).astype("int64")), missing


def _span(
    condition: Condition, columns: Mapping[str, np.ndarray], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first and last day (day numbers) on which `condition` holds, per row; first > last
    when it never does."""
    first = np.full(size, _NO_LOWER, dtype="int64")
    last = np.full(size, _NO_UPPER, dtype="int64")
    match condition:
        case OnOrBefore(field, days):  # field <= d + days: from field - days on
            value, missing = _day_numbers(columns[field])
            first = np.where(missing, _NO_UPPER, value - days)
        case OnOrAfter(field, days):  # d + days <= field: until field - days
            value, missing = _day_numbers(columns[field])
            last = np.where(missing, _NO_LOWER, value - days)
        case After(field):  # d < field: until the day before
            value, missing = _day_numbers(columns[field])
            last = np.where(missing, _NO_LOWER, value - 1)
        case Unset(field):
            _, missing = _day_numbers(columns[field])
            last = np.where(missing, _NO_UPPER, _NO_LOWER)
        case Other(field, value):
            last = np.where(np.asarray(columns[field]) != value, _NO_UPPER, _NO_LOWER)
        case Is(field, value):
            last = np.where(np.asarray(columns[field]) == value, _NO_UPPER, _NO_LOWER)
        case AnyOf(conditions):
            # Only "missing, or a bound" has one span: the bound applies where the date is set.
            unset = [each for each in conditions if isinstance(each, Unset)]
            bounded = [each for each in conditions if not isinstance(each, Unset)]
            if (
                len(unset) != 1
                or len(bounded) != 1
                or unset[0].field != getattr(bounded[0], "field", None)
            ):
                raise ValueError(f"no single span for {condition!r}")
            first, last = _span(bounded[0], columns, size)
            _, missing = _day_numbers(columns[unset[0].field])
            first = np.where(missing, _NO_LOWER, first)
            last = np.where(missing, _NO_UPPER, last)
    return first, last


@dataclass(frozen=True)
class DateRule:
    """A rule of docs/metrics.md over one row's fields on a day: every condition must hold."""

    rule: str  # where docs/metrics.md states it, e.g. "rule 2"
    conditions: tuple[Condition, ...]

    @property
    def fields(self) -> list[str]:
        """The fields the rule reads, each once, in order."""
        return list(dict.fromkeys(f for each in self.conditions for f in _fields(each)))

    @property
    def value_fields(self) -> set[str]:
        """The fields compared with a value rather than with the day."""
        return {each.field for each in self.conditions if isinstance(each, Other | Is)}

    def q(self, day: date, prefix: str = "") -> Q:
        """The rule as a queryset filter; `prefix` (e.g. "agreements__") reaches a related
        model's fields."""
        return reduce(and_, (_q(each, day, prefix) for each in self.conditions))

    def mask(self, columns: Mapping[str, np.ndarray], day: date) -> np.ndarray:
        """Per row, whether the rule holds on `day`. `columns` maps each of `fields` to an
        array: dates as `datetime64[D]` (NaT where missing), other fields as their values."""
        moment = np.datetime64(day, "D")
        held = reduce(np.logical_and, (_mask(each, columns, moment) for each in self.conditions))
        return np.asarray(held, dtype=bool)

    def holds(self, obj: object, day: date) -> bool:
        """Whether the rule holds for `obj` (anything with the fields as attributes) on `day`."""
        return all(_holds(each, obj, day) for each in self.conditions)

    def span(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the first and the last day on which the rule holds, as day numbers (days
        since 1970-01-01, int64; far beyond any date where a side is open), first > last when
        it never does. `columns` as for `mask`. The rule holds on exactly the days between the
        two, so a question about a range of days ("on some day of these 13 weeks") is a
        comparison of ranges. Raises ValueError for a rule whose days are not one range (an
        `AnyOf` other than "unset, or one bound on the same field")."""
        size = len(next(iter(columns.values()))) if columns else 0
        first = np.full(size, _NO_LOWER, dtype="int64")
        last = np.full(size, _NO_UPPER, dtype="int64")
        for condition in self.conditions:
            lower, upper = _span(condition, columns, size)
            first, last = np.maximum(first, lower), np.minimum(last, upper)
        return first, last


# Rule 1: in the market on d, from the day it entered the market list until the day before it
# was archived.
IN_MARKET = DateRule(
    "rule 1", (OnOrBefore("entered_on"), AnyOf((Unset("archived_on"), After("archived_on"))))
)

# Rule 4: converted on or before d (a missing conversion date never is).
CONVERTED = DateRule("rule 4", (OnOrBefore("converted_on"),))


def in_market_q(day: date, prefix: str = "") -> Q:
    """Accounts in the market on `day` (docs/metrics.md rule 1)."""
    return IN_MARKET.q(day, prefix)


# Not a metric rule: the days on which an account's stored coverage kinds
# (`Account.coverage_kinds`, kept by `partners.coverage_kinds`) are known to hold, from
# `coverage_kinds_from` through `coverage_kinds_until` (for good when it has none). A missing
# `coverage_kinds_from` is never on or before a day, so an account whose kinds are not known is
# outside this rule on every day.
COVERAGE_KINDS_KNOWN = DateRule(
    "rule 3",
    (
        OnOrBefore("coverage_kinds_from"),
        AnyOf((Unset("coverage_kinds_until"), OnOrAfter("coverage_kinds_until"))),
    ),
)
