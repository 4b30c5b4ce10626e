"""Template filters of the partner programme."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.conf import settings
from django.utils.formats import number_format

from crm.templatetags.crm_format import money
from partners.programme_models import REQUIREMENTS
from partners.programme_selectors import tier_names

register = template.Library()


@register.filter
def tier_name(code: str) -> str:
    """A tier's name in the reader's language; the code itself for a tier the programme does
    not define."""
    return tier_names().get(code, code)


@register.filter
def requirement_label(key: str) -> str:
    """A tier requirement's label in the reader's language (an e-mail written in two
    languages renders each part in its own)."""
    return next((str(r.label) for r in REQUIREMENTS if r.key == key), key)


DASH = "—"


@register.filter
def figure(value: Any, kind: str) -> str:
    """A programme figure shown as its kind says: a count with thousands grouped, money in the
    reporting currency, a satisfaction score with two decimals, an NPS with one, a share as a
    percentage with one decimal; "—" without a value."""
    if value is None or value == "":
        return DASH
    if kind == "count":
        return number_format(int(value), use_l10n=True, force_grouping=True)
    if kind == "money":
        return money(Decimal(str(value)), reporting_currency())
    if kind == "score":
        return number_format(float(value), decimal_pos=2, use_l10n=True)
    if kind == "nps":
        return number_format(float(value), decimal_pos=1, use_l10n=True)
    if kind == "percent":
        return f"{number_format(float(value) * 100, decimal_pos=1, use_l10n=True)} %"
    return str(value)


def reporting_currency() -> str:
    return str(getattr(settings, "REPORTING_CURRENCY", "USD"))
