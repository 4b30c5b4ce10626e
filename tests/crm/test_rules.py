"""Rule 1 and the conversion test of rule 4 (docs/metrics.md): the boundaries, and the three
readings of each statement (filter, arrays, one object) giving the same answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from crm.models import Account
from crm.rules import CONVERTED, IN_MARKET, DateRule, in_market_q
from tests.factories import AccountFactory

D = date(2026, 11, 15)
BEFORE, AFTER = D - timedelta(days=1), D + timedelta(days=1)


def readings(rule: DateRule, objects: list[Any], model: Any, day: date) -> tuple[list, list, list]:
    """Which `objects` the rule holds for on `day`: by the database filter, over arrays, and
    one object at a time, each as a list of primary keys."""
    by_filter = sorted(
        model.objects.filter(rule.q(day), pk__in=[o.pk for o in objects]).values_list(
            "pk", flat=True
        )
    )
    columns = {
        field: np.array(
            [getattr(o, field) for o in objects],
            dtype="datetime64[D]" if field.endswith(("_on", "_date")) else object,
        )
        for field in rule.fields
    }
    held = rule.mask(columns, day)
    by_arrays = sorted(o.pk for o, h in zip(objects, held, strict=True) if h)
    by_object = sorted(o.pk for o in objects if rule.holds(o, day))
    return by_filter, by_arrays, by_object


@pytest.mark.django_db
def test_it_counts_an_account_in_market_from_its_entry_day_until_the_day_before_archiving() -> None:
    inside = [
        AccountFactory(entered_on=D),
        AccountFactory(entered_on=BEFORE, archived_on=AFTER),
        AccountFactory(entered_on=date(2020, 1, 1)),
    ]
    outside = [
        AccountFactory(entered_on=AFTER),
        AccountFactory(entered_on=BEFORE, archived_on=D),
        AccountFactory(entered_on=date(2020, 1, 1), archived_on=BEFORE),
    ]
    expected = sorted(a.pk for a in inside)
    assert readings(IN_MARKET, inside + outside, Account, D) == (expected, expected, expected)
    assert sorted(Account.objects.filter(in_market_q(D)).values_list("pk", flat=True)) == expected


@pytest.mark.django_db
def test_it_counts_a_conversion_on_its_day_and_never_without_a_date() -> None:
    converted = [
        AccountFactory(converted_on=D, converted_via="direct"),
        AccountFactory(converted_on=BEFORE, converted_via="online"),
    ]
    not_yet = [AccountFactory(converted_on=AFTER, converted_via="direct"), AccountFactory()]
    expected = sorted(a.pk for a in converted)
    assert readings(CONVERTED, converted + not_yet, Account, D) == (expected, expected, expected)


def test_a_rule_lists_the_fields_it_reads_once_each() -> None:
    assert IN_MARKET.fields == ["entered_on", "archived_on"]
