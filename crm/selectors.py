"""Reads of the market core. Who-may-see rules that depend on coverage live in the apps above."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from crm.currencies import RateTable
from crm.models import Account, ApiToken, CurrencyRate, Region, Vertical
from crm.roles import can_manage


@dataclass(frozen=True)
class AccountFilter:
    """Segment filters as they appear in a list URL (codes, not ids, so links stay readable)."""

    q: str = ""
    region: str = ""
    vertical: str = ""
    size_band: str = ""


def accounts_filtered(
    accounts: QuerySet[Account], account_filter: AccountFilter
) -> QuerySet[Account]:
    """Narrow an already user-scoped account queryset by the segment filters and search text."""
    # Codes become ids first, so counting and sorting never join the region or vertical table.
    if account_filter.region:
        region_id = (
            Region.objects.filter(code=account_filter.region).values_list("pk", flat=True).first()
        )
        # An unknown code matches no account.
        accounts = accounts.filter(region_id=region_id) if region_id else accounts.none()
    if account_filter.vertical:
        vertical_id = (
            Vertical.objects.filter(code=account_filter.vertical)
            .values_list("pk", flat=True)
            .first()
        )
        accounts = accounts.filter(vertical_id=vertical_id) if vertical_id else accounts.none()
    if account_filter.size_band:
        accounts = accounts.filter(size_band=account_filter.size_band)
    if account_filter.q:
        exact = accounts.filter(external_id=account_filter.q)
        # An external id answers from its unique index; only otherwise are names searched.
        if exact.exists():
            return exact
        accounts = accounts.filter(name__icontains=account_filter.q)
    return accounts


def regions_all() -> QuerySet[Region]:
    return Region.objects.order_by("name")


def verticals_all() -> QuerySet[Vertical]:
    return Vertical.objects.order_by("name")


def api_tokens_visible_to(user: User) -> QuerySet[ApiToken]:
    """A user's own API tokens; a sales manager sees (and may revoke) everyone's."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if can_manage(user) else tokens.filter(user=user)


def rate_table() -> RateTable:
    """Every stored rate into the reporting currency, ready for lookups (docs/metrics.md
    rule 10). The rates are the same for everyone who asks."""
    return RateTable(
        settings.REPORTING_CURRENCY,
        CurrencyRate.objects.values_list("currency", "valid_from", "rate_to_reporting"),
    )
