"""How pages show values that Django's own filters leave raw: money with its currency."""

from __future__ import annotations

from decimal import Decimal

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
