"""Template filters of the registration queue: a registration's conflicts, its wait and its
amount, in the reader's language (`partners.registration_text` writes the words)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django import template
from django.utils.translation import ngettext

from partners import registration_text
from partners.registration_facts import StoredConflict

register = template.Library()


@register.filter
def conflicts_shown(conflicts: Sequence[StoredConflict]) -> list[dict[str, str]]:
    """Stored conflicts as a page shows them: each with its code, name and sentence."""
    return registration_text.conflicts_shown(conflicts)


@register.filter
def business_days(days: int) -> str:
    """`3` as "3 business days"."""
    return ngettext("%(days)s business day", "%(days)s business days", days) % {"days": days}


@register.filter
def whole_amount(amount: Decimal | int | float, currency: str) -> str:
    """An amount in whole units with thousands grouped, and its currency: "12,500 EUR"."""
    return f"{amount:,.0f} {currency}"
