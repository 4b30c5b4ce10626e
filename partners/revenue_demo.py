"""Demo revenue: rates for two foreign currencies that move over the year, and opportunities
of every channel (one-off deals and subscriptions, open, won and lost, some subscriptions
ended), so every revenue chart of the dashboard has a story.

Deterministic for a seed and a day; drawn from a random generator of its own, so the demo
market stays what `partners.demo` makes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from crm.models import CurrencyRate

# Rates into the reporting currency (USD in the demo), one a quarter over two years: the euro
# strengthens, the yuan weakens a little, so won revenue in USD moves with them.
DEMO_RATES: dict[str, tuple[str, ...]] = {
    "EUR": ("1.0500", "1.0620", "1.0710", "1.0850", "1.0930", "1.1040", "1.1120", "1.0980"),
    "CNY": ("0.1410", "0.1398", "0.1385", "0.1392", "0.1379", "0.1371", "0.1366", "0.1374"),
}


def demo_rates(*, today: date, say: Callable[[str], None] | None = None) -> int:
    """Quarterly rates for EUR and CNY over the two years before `today` (nothing for the
    reporting currency, whose rate is always 1), unless rates exist. Returns how many."""
    if CurrencyRate.objects.exists():
        return 0
    first = date(today.year - 2, 1, 1)
    rows = []
    for currency, rates in DEMO_RATES.items():
        if currency == settings.REPORTING_CURRENCY:
            continue
        for quarter, rate in enumerate(rates):
            year, month = first.year + quarter // 4, 1 + 3 * (quarter % 4)
            rows.append(
                CurrencyRate(
                    currency=currency,
                    valid_from=date(year, month, 1) if quarter else first - timedelta(days=365),
                    rate_to_reporting=Decimal(rate),
                )
            )
    with transaction.atomic():
        CurrencyRate.objects.bulk_create(rows)
    if say:
        say(f"{len(rows)} currency rates")
    return len(rows)
