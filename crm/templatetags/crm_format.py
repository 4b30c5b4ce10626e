"""How pages show values that Django's own filters leave raw: money with its currency, and a
code by its label or name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def money(amount: Decimal | int | float | None, currency: str = "") -> str:
    """`1250000` and "USD" as "1,250,000.00 USD", grouped as the reader's language groups
    thousands; "—" without an amount."""
    if amount is None or amount == "":
        return "—"
    shown = number_format(amount, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{shown} {currency}".strip()


@register.filter
def label_in(value: Any, labels: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> Any:
    """`value`'s label among `labels` (a mapping, or (value, label) pairs such as a model
    field's `choices`); the value itself when it has none. `{{ row.channel|label_in:channels }}`"""
    if isinstance(labels, Mapping):
        return labels.get(value, value)
    for option, label in labels:
        if option == value:
            return label
    return value
