"""The revenue step of a weekly run: a week's revenue figures (docs/metrics.md rules 10-17) as
the rows of the revenue snapshot tables, for `analytics.services` to write in the week's
transaction, under the week's lock, beside the coverage rows.

A step is called with the as-of day and the day's coverage counts per segment (rule 15 needs
them), and answers the rows of every revenue table; for a week it cannot convert (a missing
rate, rule 10) it raises `MissingRate`, and the run then writes the coverage figures with no
revenue rows and records why (`MetricsRun.revenue_problem`).

- `revenue_from_database`: one week, reading only the deals that can count on its day.
- `RevenueBackfill`: many weeks, reading every deal once. Each day is computed from the same
  prepared deals and nothing carries over from one day to the next, so the weeks may be asked
  for in any order, once or twice, or split between workers, with the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd
from django.conf import settings
from django.db.models import Model

from analytics import revenue
from analytics.metrics import WeekFigures
from analytics.models import (
    PartnerRevenueRollup,
    PartnerRevenueSnapshot,
    RevenueForecast,
    RevenueRollup,
    RevenueSnapshot,
)
from analytics.revenue_selectors import revenue_frames

# Money columns of the figures (units, then cents) and the model fields that store them.
STORED_AS: dict[str, str] = {
    "pipeline_amount": "pipeline_cents",
    "weighted_pipeline": "weighted_pipeline_cents",
    "won_amount": "won_cents",
    "mrr": "mrr_cents",
    "influenced_amount": "influenced_cents",
    "forecast_amount": "forecast_cents",
    "white_space_value": "white_space_value_cents",
    "sales_revenue": "sales_revenue_cents",
    "target_amount": "target_cents",
}
REVENUE_MODELS: tuple[type[Model], ...] = (
    RevenueSnapshot,
    RevenueRollup,
    PartnerRevenueSnapshot,
    PartnerRevenueRollup,
    RevenueForecast,
)

# Per model: its rows and the fields they set (the week, as-of day, finality and currency
# are added by the writer).
RevenueTables = dict[type[Model], tuple[pd.DataFrame, list[str]]]
# A step takes the as-of day and the week's coverage figures (rule 15 reads its segment
# counts; a single week's pass hands its indexed accounts too).
RevenueStep = Callable[[date, WeekFigures], RevenueTables]


def _stored(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    cents = revenue.in_cents(frame[columns]).rename(columns=STORED_AS)
    return cents, [STORED_AS.get(column, column) for column in columns]


def revenue_tables(figures: revenue.WeekRevenue) -> RevenueTables:
    """A week's revenue figures as rows per revenue model, money in cents."""
    rows = [*revenue.ROW_KEYS, *revenue.FIGURE_COLUMNS]
    return {
        RevenueSnapshot: _stored(figures.segments, rows),
        RevenueRollup: _stored(figures.rollups, rows),
        PartnerRevenueSnapshot: _stored(figures.partners, revenue.PARTNER_COLUMNS),
        PartnerRevenueRollup: _stored(figures.partner_rollups, revenue.PARTNER_ROLLUP_COLUMNS),
        RevenueForecast: _stored(figures.forecast, revenue.FORECAST_COLUMNS),
    }


def no_revenue_tables() -> RevenueTables:
    """Empty rows for every revenue model: a week written without revenue figures."""
    return {model: (pd.DataFrame(), []) for model in REVENUE_MODELS}


def revenue_common() -> dict[str, str]:
    """The values every revenue row of a run carries besides the week's."""
    return {"currency": settings.REPORTING_CURRENCY}


def revenue_from_database(as_of: date, week: WeekFigures) -> RevenueTables:
    """One week's revenue rows, reading only the deals that can count on `as_of` (their
    segments from the accounts the week's pass indexed, when it hands them). Raises
    MissingRate."""
    prepared = revenue.PreparedRevenue(**revenue_frames(as_of, accounts=week.accounts))
    return revenue_tables(prepared.figures(as_of, week.segments))


class RevenueBackfill:
    """Every deal read and prepared once (the influence on each won deal included); each
    call gives one day's revenue rows. Raises MissingRate from a call."""

    def __init__(self) -> None:
        self.prepared = revenue.PreparedRevenue(**revenue_frames())

    def __call__(self, as_of: date, week: WeekFigures) -> RevenueTables:
        return revenue_tables(self.prepared.figures(as_of, week.segments))
