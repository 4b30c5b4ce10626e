"""Print one week's snapshot figures as CSV or JSON, as `analytics.reports` reads them."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics import metrics, reports
from analytics.reports import EXPORT_DIMENSIONS


def week_report(week: str, *, by: str) -> pd.DataFrame:
    """The week's figures by `by` (one of `EXPORT_DIMENSIONS`), one row each: the dimension's
    codes, the counts, then the ratios; the channel columns for `channel`; a partner's figures
    for `partner`."""
    rows: list[Any]
    if by == "partner":
        rows, columns = reports.partners(week), reports.PARTNER_FIGURE_COLUMNS
    elif by == "channel":
        rows, columns = reports.channel_rollup(week), metrics.CHANNEL_COLUMNS
    else:
        keys = metrics.ROLLUP_DIMENSIONS[by]
        # Segments as stored; any other dimension from the week's rollup rows.
        rows = reports.segments(week) if by == "segment" else reports.rollup([week], by=keys)
        columns = [*keys, *metrics.COUNT_COLUMNS, *metrics.RATIO_COLUMNS]
    return pd.DataFrame([row._asdict() for row in rows], columns=list(columns))


class Command(BaseCommand):
    help = (
        "Export a week's snapshot. --by segment|region|vertical|size_band|total: dimension codes, "
        "the counts, then coverage, coverage_<kind>, penetration (empty when there are no "
        "accounts). --by channel: channel (the kind), accounts, covered, converted (won by that "
        "kind), coverage, penetration. --by partner: external_id, name, channel_kind, "
        "covered_accounts, converted_accounts, agreements_in_force, feedback_count, "
        "satisfaction_mean, nps (trailing 90 days). --report revenue: the grouping columns that "
        "apply (channel: the sourcing channel), pipeline_count, pipeline_amount, "
        "weighted_pipeline, won_count, won_amount, mrr, subscribers, arpa, influenced_amount."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--week", required=True, help='An ISO week, e.g. "2026-W46".')
        parser.add_argument("--by", choices=EXPORT_DIMENSIONS, default="segment")
        parser.add_argument("--format", choices=("csv", "json"), default="csv")
        parser.add_argument(
            "--report",
            choices=("coverage", "revenue"),
            default="coverage",
            help="coverage figures (default) or revenue (docs/metrics.md rules 10-17)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        week = options["week"]
        try:
            metrics.iso_week_as_of(week)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not reports.has_week(week):
            raise CommandError(f"no snapshot for {week}; run compute_metrics --week {week}")
        if options["report"] == "revenue":
            self._revenue(week, by=options["by"], fmt=options["format"])
            return
        report = week_report(week, by=options["by"])
        if options["format"] == "csv":
            self.stdout.write(report.to_csv(index=False, lineterminator="\n"), ending="")
            return
        records = [
            {key: _plain(value) for key, value in row.items()}
            for row in report.to_dict(orient="records")
        ]
        self.stdout.write(json.dumps({"week": week, "by": options["by"], "rows": records}))

    def _revenue(self, week: str, *, by: str, fmt: str) -> None:
        problem = reports.revenue_problem(week)
        if problem:
            raise CommandError(f"{week} has no revenue figures: {problem}")
        columns, rows = reports.revenue_export(week, by=by)
        if fmt == "json":
            records = [dict(zip(columns, row, strict=True)) for row in rows]
            self.stdout.write(
                json.dumps({"week": week, "report": "revenue", "by": by, "rows": records})
            )
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
        self.stdout.write(out.getvalue(), ending="")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value
